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


class KeyTooLong(S3Error):
    code = "KeyTooLongError"

    def __init__(self, key: str):
        super().__init__(f"Your key is too long: {len(key.encode('utf-8'))} bytes; S3 keys are at most 1024 bytes "
                         f"(UTF-8)")
        self.key = key


class InvalidBucketName(S3Error):
    code = "InvalidBucketName"

    def __init__(self, bucket: str):
        super().__init__(f"The specified bucket is not valid: {bucket!r} (3-63 characters: lowercase letters, digits, "
                         f"'.' and '-', starting and ending with a letter or digit, no '..', not an IP address)")
        self.bucket = bucket


class PreconditionFailed(S3Error):
    """A conditional write (If-Match / If-None-Match) whose condition does not hold."""

    code = "PreconditionFailed"

    def __init__(self, uri: str, condition: str):
        super().__init__(f"At least one of the pre-conditions you specified did not hold ({condition} on {uri})")
        self.uri = uri
        self.condition = condition


class ConditionalRequestConflict(S3Error):
    """Another conditional write of the same key is in progress."""

    code = "ConditionalRequestConflict"

    def __init__(self, uri: str):
        super().__init__(f"A conflicting conditional operation is currently in progress against {uri}. "
                         f"Please try again.")
        self.uri = uri


class NotImplementedCondition(S3Error):
    code = "NotImplemented"

    def __init__(self, header: str, value: str):
        super().__init__(f"A header you provided implies functionality that is not implemented: {header}: {value} "
                         f"(PutObject accepts If-None-Match: * only)")


class InvalidManifest(S3Error):
    """A SageMaker manifest file (S3DataType ManifestFile) that is not ``[{"prefix": "s3://..."}, "key", ...]``
    or names an object that does not exist."""

    code = "InvalidManifest"

    def __init__(self, uri: str, why: str):
        super().__init__(f"The manifest {uri} is not usable: {why}. A manifest is a JSON array: "
                         f'[{{"prefix": "s3://bucket/prefix/"}}, "relative/key-1", "relative/key-2", ...]')
        self.uri = uri
