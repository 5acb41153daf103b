"""LocalS3: an S3 bucket is a folder, an object is a file at <root>/<bucket>/<key>.

Every write is atomic (a hidden temp file in the target folder, then ``os.replace``) so a reader in
another process — a SageMaker job, the S3 server, a Lambda handler — never sees half an object, and
an object is never changed in place: a write replaces the file. That is what lets a job's input be a
hard link to the object (``link_prefix``) and a job's output be renamed into the bucket (``move_in``):
no byte is copied either way.

The ETag is computed once, while the object is written, and kept beside it in a hidden sidecar
(``META_PREFIX``) stamped with the file's size, mtime and inode; a request reads the sidecar, never
the object. A file put into a bucket folder by hand has no valid sidecar: its ETag is computed on
first use, then kept. Temp files and sidecars are invisible to ``list`` and ``download_prefix``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import stat as stat_mode
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from emulator.services.s3.exceptions import (  # noqa: F401 - re-exported
    ConditionalRequestConflict,
    InvalidBucketName,
    InvalidManifest,
    InvalidS3Uri,
    KeyConflict,
    KeyTooLong,
    NoSuchBucket,
    NoSuchKey,
    NotImplementedCondition,
    PreconditionFailed,
    S3Error,
)

log = logging.getLogger(__name__)

TEMP_PREFIX = ".~s3tmp-"
META_PREFIX = ".~s3meta-"  # the sidecar of object <name> is <folder>/.~s3meta-<name>
HIDDEN_PREFIXES = (TEMP_PREFIX, META_PREFIX)
CHUNK = 1 << 20
MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
# A key segment longer than a file name may be (255 bytes) is stored as a chain of folders named
# LONG_PREFIX + piece, then the last piece as the file or folder: S3 keys go to 1,024 bytes.
LONG_PREFIX = ".~s3long-"
_NAME_MAX = 255
_PIECE = 200
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

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


def valid_bucket_name(name: str) -> bool:
    """S3's rules for a (general purpose) bucket name: 3-63 characters of lowercase letters, digits,
    '.' and '-', a letter or digit at both ends, no '..', not an IP address, no reserved prefix or suffix."""
    if not isinstance(name, str) or not _BUCKET_NAME.match(name) or ".." in name:
        return False
    if name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or name.endswith(("-s3alias", "--ol-s3", "--x-s3")):
        return False
    with contextlib.suppress(ValueError):
        ipaddress.IPv4Address(name)
        return False
    return True


def _check_key(uri: str, key: str) -> None:
    if len(key.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLong(key)
    parts = key.split("/")
    if any(part in (".", "..") for part in parts) or "\\" in key or "\x00" in key:
        raise InvalidS3Uri(uri, "the key must not contain '.' or '..' segments, backslashes or NUL")
    if any(part.startswith(LONG_PREFIX) for part in parts):
        raise InvalidS3Uri(uri, f"a key segment must not start with {LONG_PREFIX!r} (the local S3's own marker)")


def _pieces(segment: str) -> list[str]:
    """A key segment as file names no longer than the file system allows (see LONG_PREFIX)."""
    if len(segment.encode("utf-8", errors="surrogatepass")) <= _NAME_MAX:
        return [segment]
    pieces, current = [], ""
    for char in segment:
        if len((current + char).encode("utf-8", errors="surrogatepass")) > _PIECE:
            pieces.append(LONG_PREFIX + current)
            current = ""
        current += char
    return [*pieces, current]


def disk_key(key: str) -> str:
    """The relative path of ``key`` under its bucket folder (the key itself unless a segment is long)."""
    return "/".join(piece for segment in key.split("/") for piece in _pieces(segment))


def key_of(relative: str) -> str:
    """The inverse of disk_key: the key of a path relative to its bucket folder."""
    key = ""
    for part in relative.split("/"):
        key += part[len(LONG_PREFIX):] if part.startswith(LONG_PREFIX) else part + "/"
    return key[:-1]


def etag_of(path: Path) -> str:
    """The MD5 ETag of a file, by reading it (once per write: see ``stored_etag``)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return f'"{digest.hexdigest()}"'


def multipart_etag(part_md5s: list[str]) -> str:
    """S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, then ``-<parts>``."""
    digest = hashlib.md5(b"".join(bytes.fromhex(m) for m in part_md5s), usedforsecurity=False)
    return f'"{digest.hexdigest()}-{len(part_md5s)}"'


def meta_path(path: Path) -> Path:
    name = META_PREFIX + path.name
    if len(name.encode("utf-8", errors="surrogatepass")) > _NAME_MAX:  # a long key's last piece
        name = META_PREFIX + hashlib.sha256(path.name.encode("utf-8", errors="surrogatepass")).hexdigest()
    return path.with_name(name)


def _stamp(stat: os.stat_result) -> list[int]:
    # size, mtime and inode: a rename keeps all three, a rewrite changes at least the inode
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _record_etag(target: Path, etag: str, stat: os.stat_result) -> None:
    """The sidecar of ``target``, for the file whose stat is ``stat`` (taken before it was renamed
    into place, so a concurrent writer's file is never stamped with this ETag)."""
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"etag": etag, "stamp": _stamp(stat)}, handle)
        os.replace(tmp, meta_path(target))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stored_etag(path: Path) -> str:
    """The ETag recorded when the object at ``path`` was written; a file written behind the store's
    back (no sidecar, or one for another file) is hashed once and its sidecar written."""
    path = Path(path)
    stat = path.stat()
    try:
        meta = json.loads(meta_path(path).read_text())
    except (OSError, ValueError):
        meta = None
    if isinstance(meta, dict) and meta.get("stamp") == _stamp(stat) and isinstance(meta.get("etag"), str):
        return meta["etag"]
    etag = etag_of(path)
    try:
        _record_etag(path, etag, stat)
    except OSError:
        pass  # a read-only bucket folder still answers, it hashes again next time
    return etag


def hidden(name: str) -> bool:
    """A temp file or an ETag sidecar: never an object."""
    return name.startswith(HIDDEN_PREFIXES)


def _copy_hashing(src: Path, dst_fd: int) -> str:
    """Copy ``src`` into the open ``dst_fd``, hashing as the bytes pass: one read for both."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(src, "rb") as source, os.fdopen(dst_fd, "wb") as out:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return f'"{digest.hexdigest()}"'


@dataclass(frozen=True)
class Materialized:
    """One object placed in a job folder: where, and how (``linked``, ``linked-shared-copy``, ``copied``)."""

    path: Path
    how: str


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
        target = (bucket_dir / disk_key(key)) if key else bucket_dir
        # Symlinks could still lead outside the bucket; resolve and check containment.
        resolved = target.resolve()
        if resolved != bucket_dir.resolve() and bucket_dir.resolve() not in resolved.parents:
            raise InvalidS3Uri(uri, "the key escapes its bucket")
        return target

    @staticmethod
    def uri(bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    # -- objects ---------------------------------------------------------------------------
    def put_bytes(self, uri: str, data: bytes) -> str | None:
        """Write an object; its ETag (None for a folder marker)."""
        target = self._writable(uri)
        if target is None:
            return None
        etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            self._place(Path(tmp), target, etag)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return etag

    def put_file(self, uri: str, src: Path) -> str | None:
        """Copy a local file in as an object (the file stays the caller's); its ETag."""
        target = self._writable(uri)
        if target is None:
            return None
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            etag = _copy_hashing(Path(src), fd)
            self._place(Path(tmp), target, etag)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return etag

    def move_in(self, uri: str, src: Path, etag: str | None = None) -> str | None:
        """Make the local file ``src`` the object ``uri`` by renaming it (a copy only when the bucket
        is on another filesystem); ``src`` is gone afterwards. ``etag`` when the caller knows it
        (multipart), else it is computed here, once."""
        target = self._writable(uri)
        if target is None:
            return None
        src = Path(src)
        etag = etag or etag_of(src)
        try:
            self._place(src, target, etag)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
            try:
                _copy_hashing(src, fd)
                self._place(Path(tmp), target, etag)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            src.unlink()
        return etag

    def _place(self, ready: Path, target: Path, etag: str) -> None:
        """The sidecar first (stamped with ``ready``'s own inode), then ``ready`` renamed to ``target``."""
        _record_etag(target, etag, ready.stat())
        os.replace(ready, target)

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
        if hidden(target.name):
            raise InvalidS3Uri(uri, f"names starting with {TEMP_PREFIX!r} or {META_PREFIX!r} are reserved by the "
                                    "local S3 store; rename the object")
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
        if not target.is_file() or hidden(target.name):
            raise NoSuchKey(uri)
        return target

    def exists(self, uri: str) -> bool:
        try:
            self._object(uri)
        except (NoSuchKey, NoSuchBucket):
            return False
        return True

    def etag(self, uri: str) -> str:
        return stored_etag(self._object(uri))

    def head(self, uri: str) -> dict:
        target = self._object(uri)
        stat = target.stat()
        return {
            "ContentLength": stat.st_size,
            "LastModified": datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            "ETag": stored_etag(target),
        }

    def delete(self, uri: str) -> None:
        """Delete an object (no error when absent, as S3); empty parent folders are pruned."""
        target = self.path(uri)
        if target.is_file() and not hidden(target.name):
            target.unlink()
            meta_path(target).unlink(missing_ok=True)
            bucket_dir = self.root / parse_uri(uri)[0]
            parent = target.parent
            while parent != bucket_dir and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def copy(self, src_uri: str, dst_uri: str) -> str | None:
        """CopyObject: a hard link to the source's file (objects are never changed in place, so two
        keys can share one), a byte copy only across filesystems; the copy keeps the source's ETag."""
        source = self._object(src_uri)
        target = self._writable(dst_uri)
        if target is None:
            return None
        if source == target:
            return stored_etag(source)
        etag = stored_etag(source)
        link = target.with_name(f"{TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}-copy")
        try:
            link.unlink(missing_ok=True)
            os.link(source, link)
        except OSError:
            return self.put_file(dst_uri, source)
        try:
            self._place(link, target, etag)
        except BaseException:
            link.unlink(missing_ok=True)
            raise
        return etag

    # -- prefixes --------------------------------------------------------------------------
    def list(self, prefix_uri: str) -> list[str]:
        bucket, prefix = parse_uri(prefix_uri)
        return [self.uri(bucket, key) for key in self.list_keys(bucket, prefix)]

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Sorted keys of ``bucket`` starting with ``prefix`` (temp files and sidecars excluded)."""
        _check_key(prefix, prefix)
        bucket_dir = self.root / bucket
        if not bucket_dir.is_dir():
            raise NoSuchBucket(bucket, self.root)
        # Walk only the deepest folder the prefix names, not the whole bucket.
        folder_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = bucket_dir / disk_key(folder_part) if folder_part else bucket_dir
        if not start.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not hidden(d)]
            rel_dir = Path(dirpath).relative_to(bucket_dir).as_posix()
            for name in filenames:
                if hidden(name):
                    continue
                key = key_of(name if rel_dir == "." else f"{rel_dir}/{name}")
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def _prefix_files(self, prefix_uri: str, dest: Path) -> list[tuple[Path, Path]]:
        """SageMaker S3Prefix semantics: each object under the prefix lands at dest/<key after the
        prefix's last '/'>, so ``s3://b/data/train/`` and ``s3://b/data/train.csv`` both work."""
        bucket, prefix = parse_uri(prefix_uri)
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        return [(self.root / bucket / disk_key(key), Path(dest) / key[len(base):])
                for key in self.list_keys(bucket, prefix)]

    def download_prefix(self, prefix_uri: str, dest: Path) -> list[Path]:
        """Copies of the objects under a prefix, laid out as ``_prefix_files`` says."""
        written = []
        for source, target in self._prefix_files(prefix_uri, dest):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(target)
        log.debug("downloaded %d object(s) from %s to %s", len(written), prefix_uri, dest)
        return written

    def link_prefix(self, prefix_uri: str, dest: Path, shared: Path | None = None,
                    shard: tuple[int, int] | None = None) -> list[Materialized]:
        """The objects under a prefix placed in ``dest`` without copying a byte: read-only hard links
        to the bucket's files, so a job reading its input can never change an object through it.
        ``shard`` (index, count): only every count-th object in key order from the index-th, as
        S3DataDistributionType ShardedByS3Key gives one instance of ``count`` its objects.

        Across filesystems (no hard link possible) each object is copied once into ``shared`` (on
        ``dest``'s filesystem, keyed by the object's file identity) and linked from there, so several
        jobs reading the same object — tuning trials — share one copy; without ``shared``, copied.
        """
        return self._link(self._prefix_files(prefix_uri, dest), prefix_uri, dest, shared, shard)

    def link_manifest(self, manifest_uri: str, dest: Path, shared: Path | None = None,
                      shard: tuple[int, int] | None = None) -> list[Materialized]:
        """``link_prefix`` for S3DataType ManifestFile: the objects a manifest lists, each at
        dest/<its relative key>. An unreadable manifest or a listed object that does not exist is
        InvalidManifest (SageMaker fails the job on either)."""
        return self._link(self._manifest_files(manifest_uri, dest), manifest_uri, dest, shared, shard)

    def _manifest_files(self, manifest_uri: str, dest: Path) -> list[tuple[Path, Path]]:
        try:
            manifest = json.loads(self.get_bytes(manifest_uri))
        except NoSuchKey:
            raise InvalidManifest(manifest_uri, "it does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidManifest(manifest_uri, f"it is not JSON ({error})") from None
        if (not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict)
                or not isinstance(manifest[0].get("prefix"), str)):
            raise InvalidManifest(manifest_uri, 'its first element must be {"prefix": "s3://bucket/prefix/"}')
        prefix = manifest[0]["prefix"]
        bucket, key_prefix = parse_uri(prefix)
        files = []
        for relative in manifest[1:]:
            if not isinstance(relative, str) or not relative or relative.startswith("/") or ".." in relative.split("/"):
                raise InvalidManifest(manifest_uri, f"{relative!r} is not a relative key")
            source = self.root / bucket / disk_key(key_prefix + relative)
            if not source.is_file():
                raise InvalidManifest(manifest_uri, f"it lists {prefix}{relative}, which does not exist")
            files.append((source, Path(dest) / relative))
        return files

    def _link(self, files: list[tuple[Path, Path]], uri: str, dest: Path, shared: Path | None,
              shard: tuple[int, int] | None) -> list[Materialized]:
        placed = []
        if shard is not None:
            files = files[shard[0]::shard[1]]
        for source, target in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            placed.append(Materialized(target, _link_read_only(source, target, shared)))
        log.debug("linked %d object(s) from %s to %s", len(placed), uri, dest)
        return placed

    def upload_dir(self, src: Path, prefix_uri: str) -> list[str]:
        """Copy every file under ``src`` in, under the prefix (``src`` is left as it was)."""
        items = self._dir_objects(src, prefix_uri)
        for file, uri in items:
            self.put_file(uri, file)
        return [uri for _, uri in items]

    def move_dir_in(self, src: Path, prefix_uri: str) -> list[str]:
        """Rename every file under ``src`` into the bucket under the prefix (no copy): a job's outputs
        promoted. Every target is checked before the first move, so a key conflict promotes nothing."""
        items = self._dir_objects(src, prefix_uri)
        for _, uri in items:
            self._writable(uri)
        for file, uri in items:
            self.move_in(uri, file)
        return [uri for _, uri in items]

    def _dir_objects(self, src: Path, prefix_uri: str) -> list[tuple[Path, str]]:
        bucket, prefix = parse_uri(prefix_uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        src = Path(src)
        return [(file, self.uri(bucket, prefix + file.relative_to(src).as_posix()))
                for file in sorted(p for p in src.rglob("*") if p.is_file())]

    # -- conditional writes ----------------------------------------------------------------
    @contextlib.contextmanager
    def write_condition(self, uri: str, *, if_match: str | None = None,
                        if_none_match: str | None = None) -> Iterator[None]:
        """Hold ``uri`` for one conditional write (PutObject/CopyObject with If-Match or If-None-Match,
        S3's compare-and-swap): the condition is checked and the write made while no other conditional
        write of the key can start. A second one meanwhile is ConditionalRequestConflict (409), as on
        S3; a condition that does not hold is PreconditionFailed (412); If-Match on a missing key is
        NoSuchKey (404). Without a condition this holds nothing."""
        if if_match is None and if_none_match is None:
            yield
            return
        if if_none_match is not None and if_none_match.strip() != "*":
            raise NotImplementedCondition("If-None-Match", if_none_match)
        self.path(uri)  # NoSuchBucket, a bad key: before any lock file is made
        digest = hashlib.sha256(uri.encode("utf-8", errors="surrogatepass")).hexdigest()
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(exist_ok=True)
        with _held(digest) as free:
            if not free:
                raise ConditionalRequestConflict(uri)
            with open(lock_dir / digest, "w") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ConditionalRequestConflict(uri) from None
                try:
                    exists = self.exists(uri)
                    if if_none_match is not None and exists:
                        raise PreconditionFailed(uri, "If-None-Match: *")
                    if if_match is not None:
                        if not exists:
                            raise NoSuchKey(uri)
                        wanted = {tag.strip() for tag in if_match.split(",")}
                        current = self.head(uri)["ETag"]
                        if "*" not in wanted and current not in wanted and current.strip('"') not in wanted:
                            raise PreconditionFailed(uri, f"If-Match: {if_match}")
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)


_held_keys: set[str] = set()
_held_guard = threading.Lock()


@contextlib.contextmanager
def _held(key: str) -> Iterator[bool]:
    """Whether this process may start a conditional write of ``key`` (flock alone would let two
    threads of one process through when they share nothing else)."""
    with _held_guard:
        free = key not in _held_keys
        if free:
            _held_keys.add(key)
    try:
        yield free
    finally:
        if free:
            with _held_guard:
                _held_keys.discard(key)


def _link_read_only(source: Path, target: Path, shared: Path | None) -> str:
    """Link ``target`` to ``source`` (made read-only: the mode belongs to the file, so the bucket's
    object is read-only too, which costs nothing: objects are replaced, never written in place)."""
    _make_read_only(source)
    try:
        os.link(source, target)
        return "linked"
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    if shared is not None:
        stat = source.stat()
        cached = Path(shared) / f"{stat.st_dev}-{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}"
        try:
            if not cached.is_file():
                cached.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=cached.parent)
                os.close(fd)
                shutil.copyfile(source, tmp)
                _make_read_only(Path(tmp))
                os.replace(tmp, cached)
            os.link(cached, target)
            return "linked-shared-copy"
        except OSError:
            pass  # the shared folder is not on dest's filesystem either: a copy of its own
    shutil.copyfile(source, target)
    _make_read_only(target)
    return "copied"


def _make_read_only(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & 0o222:
        os.chmod(path, stat_mode.S_IMODE(mode) & ~0o222)
