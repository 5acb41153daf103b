"""S3 errors, one class per S3 error code, built from the bucket, key or URI they concern."""

from __future__ import annotations

from pathlib import Path


class S3Error(Exception):
    """Base of LocalS3 errors; ``code`` is the AWS S3 error code."""

    code = "InternalError"


class NoSuchBucket(S3Error):
    code = "NoSuchBucket"

    def __init__(self, bucket: str, root: Path):
        super().__init__(
            f"The bucket {bucket!r} does not exist in the local S3 at {root}: "
            f"deploy the stack that creates it (`python -m emulator deploy`) or check the bucket name"
        )
        self.bucket = bucket


class NoSuchKey(S3Error):
    code = "NoSuchKey"

    def __init__(self, uri: str):
        super().__init__(f"The object {uri} does not exist: check the key, or upload it first")
        self.uri = uri


class InvalidS3Uri(S3Error):
    code = "InvalidURI"

    def __init__(self, uri: str, why: str):
        super().__init__(f"{uri!r} is not a usable S3 URI: {why}")
        self.uri = uri


class KeyConflict(S3Error):
    """A key that is a folder of other keys locally (``a`` when ``a/b`` exists, or the reverse)."""

    code = "InvalidRequest"

    def __init__(self, uri: str):
        super().__init__(
            f"{uri}: the local S3 stores keys as files, so a key cannot also be the prefix of another "
            f"key followed by '/'; rename one of them"
        )
        self.uri = uri
