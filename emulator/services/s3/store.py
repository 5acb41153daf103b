"""LocalS3: an S3 bucket is a folder, an object is a file at <root>/<bucket>/<key>.

Every write is atomic (a hidden temp file in the target folder, then ``os.replace``) so a reader in
another process — a SageMaker job, the S3 server, a Lambda handler — never sees half an object.
Temp files carry the ``TEMP_PREFIX`` name and are invisible to ``list`` and ``download_prefix``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from emulator.services.s3.exceptions import InvalidS3Uri, KeyConflict, NoSuchBucket, NoSuchKey, S3Error  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

TEMP_PREFIX = ".~s3tmp-"

# Path-style and virtual-hosted-style HTTPS object URLs (legacy s3-<region> hosts too).
_PATH_STYLE_HOST = re.compile(r"^s3([.-][a-z0-9-]+)?\.amazonaws\.com(\.cn)?$")
_VHOST_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*)\.s3([.-][a-z0-9-]+)?\.amazonaws\.com(\.cn)?$")


@dataclass
class BucketSpec:
    stack: str
    logical_id: str
    name: str
    arn: str
    eventbridge_enabled: bool = False


def parse_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI or an S3 HTTPS URL (path- or virtual-hosted style)."""
    if not isinstance(uri, str) or not uri:
        raise InvalidS3Uri(str(uri), "expected s3://bucket/key")
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        bucket, key = parsed.netloc, uri[len("s3://") + len(parsed.netloc):].lstrip("/")
    elif parsed.scheme in ("https", "http"):
        host = (parsed.hostname or "").lower()
        path = unquote(parsed.path)
        vhost = _VHOST_HOST.match(host)
        if vhost and not _PATH_STYLE_HOST.match(host):
            bucket, key = vhost.group("bucket"), path.lstrip("/")
        elif _PATH_STYLE_HOST.match(host):
            bucket, _, key = path.lstrip("/").partition("/")
        else:
            raise InvalidS3Uri(uri, "the host is not an amazonaws.com S3 endpoint")
    else:
        raise InvalidS3Uri(uri, "expected s3://bucket/key or https://s3.<region>.amazonaws.com/bucket/key")
    if not bucket:
        raise InvalidS3Uri(uri, "no bucket name")
    if "/" in bucket or bucket in (".", ".."):
        raise InvalidS3Uri(uri, "bad bucket name")
    return bucket, key


def _check_key(uri: str, key: str) -> None:
    parts = key.split("/")
    if any(part in (".", "..") for part in parts) or "\\" in key or "\x00" in key:
        raise InvalidS3Uri(uri, "the key must not contain '.' or '..' segments, backslashes or NUL")


def etag_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f'"{digest.hexdigest()}"'


class LocalS3:
    def __init__(self, root: Path, region: str = "us-east-1"):
        self.root = Path(root).resolve()
        self.region = region
        self.root.mkdir(parents=True, exist_ok=True)

    # -- buckets ---------------------------------------------------------------------------
    def create_bucket(self, name: str) -> Path:
        if not name or "/" in name or name in (".", "..") or name.startswith(TEMP_PREFIX):
            raise InvalidS3Uri(name, "bad bucket name")
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def buckets(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def bucket_exists(self, name: str) -> bool:
        return (self.root / name).is_dir()

    # -- addressing ------------------------------------------------------------------------
    def path(self, uri: str) -> Path:
        bucket, key = parse_uri(uri)
        _check_key(uri, key)
        bucket_dir = self.root / bucket
        if not bucket_dir.is_dir():
            raise NoSuchBucket(bucket, self.root)
        target = (bucket_dir / key) if key else bucket_dir
        # Symlinks could still lead outside the bucket; resolve and check containment.
        resolved = target.resolve()
        if resolved != bucket_dir.resolve() and bucket_dir.resolve() not in resolved.parents:
            raise InvalidS3Uri(uri, "the key escapes its bucket")
        return target

    @staticmethod
    def uri(bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    # -- objects ---------------------------------------------------------------------------
    def put_bytes(self, uri: str, data: bytes) -> None:
        target = self._writable(uri)
        if target is None:
            return
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, uri: str, src: Path) -> None:
        target = self._writable(uri)
        if target is None:
            return
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _writable(self, uri: str) -> Path | None:
        """The file to write for ``uri``, parents created; None for a folder marker ("a/")."""
        target = self.path(uri)
        _, key = parse_uri(uri)
        if not key:
            raise InvalidS3Uri(uri, "no object key")
        if key.endswith("/"):
            # A console "folder" marker: the folder exists, there is no file to write.
            target.mkdir(parents=True, exist_ok=True)
            return None
        if target.is_dir():
            raise KeyConflict(uri)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise KeyConflict(uri) from exc
        return target

    def get_bytes(self, uri: str) -> bytes:
        return self._object(uri).read_bytes()

    def _object(self, uri: str) -> Path:
        target = self.path(uri)
        if not target.is_file() or target.name.startswith(TEMP_PREFIX):
            raise NoSuchKey(uri)
        return target

    def exists(self, uri: str) -> bool:
        try:
            self._object(uri)
        except (NoSuchKey, NoSuchBucket):
            return False
        return True

    def head(self, uri: str) -> dict:
        target = self._object(uri)
        stat = target.stat()
        return {
            "ContentLength": stat.st_size,
            "LastModified": datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            "ETag": etag_of(target),
        }

    def delete(self, uri: str) -> None:
        """Delete an object (no error when absent, as S3); empty parent folders are pruned."""
        target = self.path(uri)
        if target.is_file():
            target.unlink()
            bucket_dir = self.root / parse_uri(uri)[0]
            parent = target.parent
            while parent != bucket_dir and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def copy(self, src_uri: str, dst_uri: str) -> None:
        self.put_file(dst_uri, self._object(src_uri))

    # -- prefixes --------------------------------------------------------------------------
    def list(self, prefix_uri: str) -> list[str]:
        bucket, prefix = parse_uri(prefix_uri)
        return [self.uri(bucket, key) for key in self.list_keys(bucket, prefix)]

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Sorted keys of ``bucket`` starting with ``prefix`` (temp files excluded)."""
        _check_key(prefix, prefix)
        bucket_dir = self.root / bucket
        if not bucket_dir.is_dir():
            raise NoSuchBucket(bucket, self.root)
        # Walk only the deepest folder the prefix names, not the whole bucket.
        folder_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = bucket_dir / folder_part if folder_part else bucket_dir
        if not start.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
            rel_dir = Path(dirpath).relative_to(bucket_dir).as_posix()
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def download_prefix(self, prefix_uri: str, dest: Path) -> list[Path]:
        """SageMaker S3Prefix semantics: each object under the prefix lands at dest/<key after the
        prefix's last '/'>, so ``s3://b/data/train/`` and ``s3://b/data/train.csv`` both work."""
        bucket, prefix = parse_uri(prefix_uri)
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        dest = Path(dest)
        written = []
        for key in self.list_keys(bucket, prefix):
            target = dest / key[len(base):]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / bucket / key, target)
            written.append(target)
        log.debug("downloaded %d object(s) from %s to %s", len(written), prefix_uri, dest)
        return written

    def upload_dir(self, src: Path, prefix_uri: str) -> list[str]:
        bucket, prefix = parse_uri(prefix_uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        src = Path(src)
        uploaded = []
        for file in sorted(p for p in src.rglob("*") if p.is_file()):
            uri = self.uri(bucket, prefix + file.relative_to(src).as_posix())
            self.put_file(uri, file)
            uploaded.append(uri)
        return uploaded
