"""Processes across emulator processes: who owns a record (a pid and its start time, so a reused pid
is not mistaken for the owner) and the child process groups each emulator process started, recorded
so that a later emulator process can end them when their owner died (SIGKILL, a crash).

Every job, Lambda and tuning-trial process is started in a session of its own (its process group
id is its pid) and recorded in ``<root>/<owner pid>.json`` until it ends; ``reap`` kills every group
of an owner that is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import psutil

from emulator.storage.records import RecordStore

log = logging.getLogger(__name__)

GROUPS = "groups"


def identity(pid: int | None = None) -> dict:
    """{"pid", "started"}: a process, told apart from a later one that reuses its pid."""
    pid = os.getpid() if pid is None else pid
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        started = None
    return {"pid": pid, "started": started}


def alive(who: dict | None) -> bool:
    """Whether the process ``identity`` described still runs (a zombie counts as gone)."""
    if not isinstance(who, dict) or not isinstance(who.get("pid"), int):
        return False
    try:
        process = psutil.Process(who["pid"])
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = process.create_time()
    except psutil.Error:
        return False
    recorded = who.get("started")
    return recorded is None or abs(started - recorded) < 1.0


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, grace: float = 2.0) -> None:
    """SIGTERM the group, then SIGKILL what is left after ``grace`` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_alive(pgid):
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class ProcessGroups:
    """The child process groups of the emulator processes of one state folder."""

    def __init__(self, root: Path):
        self.records = RecordStore(Path(root))

    def started(self, pid: int, what: str) -> None:
        """Record the group of a child started with start_new_session (its pgid is its pid)."""
        member = {**identity(pid), "what": what}
        owner = identity()
        self.records.update(GROUPS, str(owner["pid"]), lambda record: {
            "owner": owner, "groups": [*(record or {}).get("groups", []), member]})

    def ended(self, pid: int) -> None:
        def change(record: dict | None) -> dict | None:
            left = [g for g in (record or {}).get("groups", []) if g["pid"] != pid]
            return {**record, "groups": left} if record and left else None
        self.records.update(GROUPS, str(os.getpid()), change)

    def reap(self) -> list[dict]:
        """Kill every recorded group whose owner is gone; the groups that were still running."""
        killed = []
        for name in self.records.names(GROUPS):
            with self.records.lock(GROUPS, name):
                record = self.records.read(GROUPS, name)
                if record is None or alive(record.get("owner")):
                    continue
                for group in record.get("groups", []):
                    # the leader's identity guards against a reused pid; a group whose leader
                    # exited may still hold its children, so those are ended by pgid too
                    if group_alive(group["pid"]) and (alive(group) or not _pid_exists(group["pid"])):
                        log.warning("ending %s (process group %d) left running by emulator process %d, which is gone",
                                    group.get("what", "a process"), group["pid"], record["owner"]["pid"])
                        kill_group(group["pid"])
                        killed.append(group)
                self.records.delete(GROUPS, name)
        return killed


def _pid_exists(pid: int) -> bool:
    return psutil.pid_exists(pid)
