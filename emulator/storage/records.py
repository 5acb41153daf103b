"""One record store for every local service: atomic JSON files, one datetime encoding, one lock,
and one rule for a record whose owner process died.

A record is ``<root>/<kind>/<key>.json``. Datetimes are stored tagged (``{"__datetime__": iso}``)
and come back as timezone-aware datetimes, so a record reads back exactly as it was written.
A record written with ``owned=True`` names the process that keeps it current; when that process
is gone, ``owner_dead`` says so and the service decides what the record becomes (a job: Failed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from emulator.aws.jsontree import map_datetimes

DATETIME_TAG = "__datetime__"
OWNER_KEY = "__owner_pid__"


def encode(value: Any) -> Any:
    """``value`` with every datetime tagged, ready for json.dump."""
    return map_datetimes(value, lambda moment: {DATETIME_TAG: moment.isoformat()})


def decode(value: Any) -> Any:
    """The inverse of ``encode``."""
    if isinstance(value, dict):
        if len(value) == 1 and DATETIME_TAG in value:
            return dt.datetime.fromisoformat(value[DATETIME_TAG])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def write_json_atomic(path: Path, document: Any, *, indent: int | None = 1) -> None:
    """Write ``document`` as JSON to ``path`` so a reader sees the old file or the new one, never
    half of one: a hidden temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(encode(document), handle, indent=indent, ensure_ascii=False, default=str)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """What write_json_atomic wrote (datetimes decoded), or None when there is no such file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return decode(json.loads(text))


def pid_alive(pid: object) -> bool:
    """Whether a process with this id exists."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def owner_dead(record: dict | None) -> bool:
    """The one dead-owner rule: the record names an owner process and that process is gone."""
    return bool(record) and OWNER_KEY in record and not pid_alive(record[OWNER_KEY])


def without_owner(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != OWNER_KEY}


_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(key: str) -> threading.RLock:
    # flock is per open file description, so two threads of one process need their own exclusion too.
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.RLock())


class RecordStore:
    """Records of one service under ``root``; ``casefold`` keys for services whose names are
    case-insensitive (SageMaker)."""

    def __init__(self, root: Path, *, casefold: bool = False):
        self.root = Path(root)
        self.casefold = casefold

    def key(self, name: str) -> str:
        return name.lower() if self.casefold else name

    def path(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{self.key(name)}.json"

    def read(self, kind: str, name: str) -> dict | None:
        try:
            return read_json(self.path(kind, name))
        except json.JSONDecodeError:
            return None  # never happens with atomic writes; a hand-edited file reads as absent

    def write(self, kind: str, name: str, record: dict, *, owned: bool = False) -> None:
        """Store ``record``; ``owned`` marks it as kept current by this process (see owner_dead)."""
        record = {**record, OWNER_KEY: os.getpid()} if owned else without_owner(record)
        write_json_atomic(self.path(kind, name), record)

    def delete(self, kind: str, name: str) -> None:
        self.path(kind, name).unlink(missing_ok=True)

    def exists(self, kind: str, name: str) -> bool:
        return self.path(kind, name).is_file()

    def names(self, kind: str) -> list[str]:
        folder = self.root / kind
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def all(self, kind: str) -> list[dict]:
        records = []
        for name in self.names(kind):
            record = self.read(kind, name)
            if record is not None:
                records.append(record)
        return records

    @contextlib.contextmanager
    def lock(self, kind: str, name: str) -> Iterator[None]:
        """Exclusive across processes and threads, for a read-modify-write of one record."""
        folder = self.root / ".locks"
        folder.mkdir(parents=True, exist_ok=True)
        key = f"{kind}-{self.key(name)}"
        with _thread_lock(f"{self.root}/{key}"), open(folder / f"{key}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def update(self, kind: str, name: str, change: Callable[[dict | None], dict | None], *,
               owned: bool = False) -> dict | None:
        """Read, ``change`` and write back under the lock; ``change`` returning None deletes."""
        with self.lock(kind, name):
            record = change(self.read(kind, name))
            if record is None:
                self.delete(kind, name)
            else:
                self.write(kind, name, record, owned=owned)
            return record
