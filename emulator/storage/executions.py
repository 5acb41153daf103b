"""An execution's record on disk, durable while it runs, in its folder:

    status.json       how it stands (RUNNING with its owner process, then how it ended); written first
    definition.json   the definition it runs (a redrive re-runs the same one)
    journal.jsonl     its history, one event per line, appended and flushed as each event happens,
                      so a killed run leaves every event it recorded
    history.json      the whole history once it ended (the journal's events as one document)
    output.json       its output once it ended
    redrive.json      once it failed, timed out or was aborted: where a redrive picks up

The interpreter writes it (claim, Journal, finish); the Step Functions API and the CLI read it. A
RUNNING record names its owner (pid and start time): when that process is gone, the execution can
never end by itself, and ``settle_orphan`` records it FAILED with what the journal shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from emulator.storage import processes
from emulator.storage.records import write_json_atomic

STATUS, DEFINITION, JOURNAL, HISTORY, OUTPUT = "status.json", "definition.json", "journal.jsonl", "history.json", "output.json"
REDRIVE = "redrive.json"
OWNER = "owner"  # the status key naming the process that runs the execution (RUNNING only)
ORPHANED = "Emulator.ExecutionOrphaned"  # the error of an execution whose process died


class ExecutionExists(Exception):
    """The folder already holds an execution (names are unique per state machine, as on AWS)."""

    def __init__(self, folder: Path, status: dict | None):
        self.folder, self.status = folder, status or {}
        super().__init__(f"an execution named {folder.name!r} already exists ({self.status.get('status', 'unknown')}) "
                         f"in {folder}")


def claim(folder: Path, status: dict, definition: Any = None) -> None:
    """Create the record of a new execution, or raise ExecutionExists: atomic across processes
    (the status file is linked into place, which fails if one is there)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    status = {**status, OWNER: processes.identity()}
    fd, tmp = tempfile.mkstemp(prefix=f".{STATUS}-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(status, handle, indent=2, ensure_ascii=False, default=str)
            handle.write("\n")
        try:
            os.link(tmp, folder / STATUS)
        except FileExistsError:
            raise ExecutionExists(folder, _read(folder / STATUS)) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    (folder / JOURNAL).unlink(missing_ok=True)  # a journal without a status is a claim that failed
    if definition is not None:
        text = definition if isinstance(definition, str) else json.dumps(definition)
        write_json_atomic(folder / DEFINITION, {"definition": text}, indent=None)


def reclaim(folder: Path, status: dict) -> None:
    """Own an ended execution's record again (a redrive): RUNNING, with this process as its owner."""
    write_status(folder, {**status, OWNER: processes.identity()})


class Journal:
    """The history as it happens: each event one JSON line, flushed before the next state runs (to
    the operating system, which keeps it if the process is killed; not fsynced per event)."""

    def __init__(self, folder: Path):
        self._handle: IO[str] | None = open(Path(folder) / JOURNAL, "a", encoding="utf-8")  # noqa: SIM115

    def append(self, event: dict) -> None:
        if self._handle is not None:
            self._handle.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def restart_journal(folder: Path, events: list[dict]) -> None:
    """The journal cut back to ``events`` (a continuation records the waiting state's events again)."""
    text = "".join(json.dumps(event, ensure_ascii=False, default=str) + "\n" for event in events)
    fd, tmp = tempfile.mkstemp(prefix=f".{JOURNAL}-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, Path(folder) / JOURNAL)


def finish(folder: Path, history: list[dict], status: dict, output: Any) -> None:
    """The ended execution: history.json, output.json and then status.json (what readers poll)."""
    status = {k: v for k, v in status.items() if k != OWNER}
    write_json_atomic(Path(folder) / HISTORY, history, indent=2)
    write_json_atomic(Path(folder) / OUTPUT, output, indent=2)
    write_json_atomic(Path(folder) / STATUS, status, indent=2)


write_history = finish  # StopExecution rewrites an ended record through the same path


def write_status(folder: Path, status: dict) -> None:
    write_json_atomic(Path(folder) / STATUS, status, indent=2)


def read_journal(folder: Path) -> list[dict]:
    """The events journaled so far (a line cut short by a kill is left out)."""
    events = []
    try:
        lines = (Path(folder) / JOURNAL).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            events.append(json.loads(line))
    return events


def read_definition(folder: Path) -> str | None:
    """The definition the execution ran (None for a record written without one)."""
    document = _read(Path(folder) / DEFINITION)
    return document.get("definition") if isinstance(document, dict) else None


def write_redrive(folder: Path, point: dict | None) -> None:
    """What RedriveExecution needs (the definition run, the failed state, its input and variables,
    the finished branches and iterations), or None once the execution succeeded."""
    path = Path(folder) / REDRIVE
    if point is None:
        path.unlink(missing_ok=True)
    else:
        write_json_atomic(path, point)


def read_execution(folder: Path) -> dict:
    """{"status": {...}, "history": [...], "output": ...} from ``folder``: while it runs, the history
    is what the journal holds."""
    folder = Path(folder)
    status = _read(folder / STATUS)
    if status is None:
        raise FileNotFoundError(f"{folder} holds no execution record (no status.json); run the execution with history_dir")
    history = _read(folder / HISTORY)
    return {"status": status, "history": history if history is not None else read_journal(folder),
            "output": _read(folder / OUTPUT), "redrive": _read(folder / REDRIVE)}


def owner_gone(status: dict) -> bool:
    """A RUNNING record whose owner process is gone: nothing will ever end it."""
    return status.get("status") == "RUNNING" and not processes.alive(status.get(OWNER))


def settle_orphan(folder: Path, why: str) -> dict | None:
    """Record a RUNNING execution whose owner died as FAILED (error ``ORPHANED``), with an
    ExecutionFailed event closing its journal; the settled record, or None when it was not an
    orphan (another process settled it first, or its owner lives)."""
    folder = Path(folder)
    with open(folder / ".settle.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        status = _read(folder / STATUS)
        if status is None or not owner_gone(status):
            return None
        history = read_journal(folder)
        last_state = next((e["stateEnteredEventDetails"]["name"] for e in reversed(history)
                           if "stateEnteredEventDetails" in e), None)
        owner = status.get(OWNER) or {}
        cause = (f"The emulator process that ran this execution (pid {owner.get('pid')}) exited without ending it"
                 f"{f' while in state {last_state!r}' if last_state else ''}: {why}. Its history up to then is "
                 f"kept; start a new execution (or redrive this one).")
        now = datetime.now(UTC)
        stamp = now.isoformat(timespec="milliseconds")[:-6] + "Z"
        last_id = max((e.get("id", 0) for e in history), default=0)
        event = {"id": last_id + 1, "previousEventId": last_id, "timestamp": stamp, "type": "ExecutionFailed",
                 "executionFailedEventDetails": {"error": ORPHANED, "cause": cause}}
        Journal(folder).append(event)
        history.append(event)
        settled = {**status, "status": "FAILED", "stopDate": stamp, "error": ORPHANED, "cause": cause}
        finish(folder, history, settled, None)
        return settled


def orphans(executions_root: Path) -> list[Path]:
    """Every execution folder under ``executions_root`` (<machine>/<name>) that is an orphan now."""
    found = []
    for folder in sorted(Path(executions_root).glob("*/*")):
        status = _read(folder / STATUS)
        if isinstance(status, dict) and owner_gone(status):
            found.append(folder)
    return found


def _read(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except json.JSONDecodeError:
        return None
