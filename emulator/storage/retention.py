"""Retention over the state folder: which executions a prune may remove, what a finished job's folder
keeps, and how many bytes a folder really holds (hard links counted once).

The policy, in one place:
- ``choose_prunable``: per state machine, the newest ``keep`` executions stay, a RUNNING one always
  stays (its record says RUNNING until it ends), and with ``older_than`` only executions that ended
  before that age go.
- ``scrub_job_folder``: a finished job's folder keeps its logs and configuration (what explains the
  job; its Describe record lives in the record store) and drops the data: input links or copies,
  and what was left of its outputs. A job that did not complete keeps its outputs: they were never
  promoted, and they are what someone investigating the failure reads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from emulator.storage.layout import Layout

# What a finished job's folder keeps, relative to it (a folder keeps everything under it).
JOB_FOLDER_KEEPS = ("logs", "ml/config", "ml/input/config", "ml/output/message", "ml/output/failure", "transform.log")


@dataclass(frozen=True)
class ExecutionEntry:
    machine: str
    name: str
    status: str
    started: dt.datetime | None
    stopped: dt.datetime | None
    folder: Path

    @property
    def running(self) -> bool:
        return self.status == "RUNNING"


def _when(text: object) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def list_executions(layout: Layout) -> list[ExecutionEntry]:
    """Every execution recorded under ``executions/``, newest first within each state machine."""
    found = []
    root = layout.executions_root
    for status_file in sorted(root.glob("*/*/status.json")) if root.is_dir() else []:
        try:
            status = json.loads(status_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a record being written, or not one of ours
        folder = status_file.parent
        found.append(ExecutionEntry(folder.parent.name, folder.name, str(status.get("status", "")),
                                    _when(status.get("startDate")), _when(status.get("stopDate")), folder))
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda e: (e.machine, -(e.started or epoch).timestamp()))


def choose_prunable(executions: Iterable[ExecutionEntry], *, keep: int, older_than: dt.timedelta | None = None,
                    now: dt.datetime | None = None) -> list[ExecutionEntry]:
    """The executions a prune removes (see the module's policy)."""
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, got {keep}")
    now = now or dt.datetime.now(dt.UTC)
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    by_machine: dict[str, list[ExecutionEntry]] = {}
    for entry in executions:
        by_machine.setdefault(entry.machine, []).append(entry)
    chosen = []
    for entries in by_machine.values():
        entries.sort(key=lambda e: e.started or epoch, reverse=True)
        for entry in entries[keep:]:
            if entry.running:
                continue
            ended = entry.stopped or entry.started
            if older_than is not None and (ended is None or now - ended < older_than):
                continue
            chosen.append(entry)
    return chosen


def disk_bytes(paths: Iterable[Path], *, only_unlinked: bool = False) -> int:
    """Bytes the files under ``paths`` occupy, each inode once; ``only_unlinked``: only files no other
    name links to (what deleting them gives back)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in paths:
        for file in _files(Path(path)):
            try:
                stat = file.lstat()
            except FileNotFoundError:
                continue
            if (stat.st_dev, stat.st_ino) in seen or (only_unlinked and stat.st_nlink > 1):
                continue
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_blocks * 512
    return total


def _files(path: Path) -> Iterable[Path]:
    if path.is_file() or path.is_symlink():
        yield path
        return
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            yield Path(dirpath) / name


def scrub_job_folder(folder: Path, *, keep_also: Iterable[str] = ()) -> int:
    """Delete a finished job's data from its folder, keeping ``JOB_FOLDER_KEEPS`` and ``keep_also``
    (relative paths: a failed job's outputs); the bytes given back."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    keeps = [Path(p) for p in (*JOB_FOLDER_KEEPS, *keep_also)]

    def kept(relative: Path) -> bool:
        return any(relative == k or k in relative.parents for k in keeps)

    def holds_kept(relative: Path) -> bool:
        return any(relative in k.parents for k in keeps)

    doomed = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath).relative_to(folder)
        for name in list(dirnames):
            relative = here / name
            if kept(relative):
                dirnames.remove(name)
            elif not holds_kept(relative):
                doomed.append(folder / relative)
                dirnames.remove(name)
        doomed.extend(folder / here / name for name in filenames if not kept(here / name))
    freed = disk_bytes(doomed, only_unlinked=True)
    for path in doomed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return freed


def prune_shared_inputs(folder: Path) -> int:
    """Drop the shared input copies no job folder links to any more; the bytes given back."""
    freed = 0
    if not Path(folder).is_dir():
        return 0
    for file in Path(folder).iterdir():
        try:
            stat = file.stat()
        except FileNotFoundError:
            continue
        if file.is_file() and stat.st_nlink == 1:
            file.unlink(missing_ok=True)
            freed += stat.st_blocks * 512
    return freed
