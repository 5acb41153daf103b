"""The execution history: AWS's HistoryEvent shape, event ids, and writing it to disk.

Each event is ``{"id", "previousEventId", "timestamp", "type", "<detailsKey>": {...}}`` with the
details key AWS's GetExecutionHistory uses for that type (``stateEnteredEventDetails`` for every
``*StateEntered``, ``taskScheduledEventDetails`` for ``TaskScheduled``, ...). Concurrent branches
each keep their own ``previousEventId`` chain, as AWS does.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Event types without details in AWS's model.
_NO_DETAILS = frozenset(
    {
        "ParallelStateStarted",
        "ParallelStateSucceeded",
        "ParallelStateFailed",
        "ParallelStateAborted",
        "MapStateSucceeded",
        "MapStateFailed",
        "MapStateAborted",
        "LambdaFunctionStarted",
        "TaskStateAborted",
        "WaitStateAborted",
    }
)


@functools.cache
def details_key(event_type: str) -> str | None:
    if event_type in _NO_DETAILS:
        return None
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    return event_type[0].lower() + event_type[1:] + "EventDetails"


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, the way the context object shows times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Cursor:
    """One thread of control's place in the history (the top level, a branch, a Map iteration)."""

    __slots__ = ("last_id", "offset")

    def __init__(self, last_id: int = 0, offset: float = 0.0):
        self.last_id = last_id
        self.offset = offset  # seconds of skipped (not slept) Wait/Retry time: a virtual clock

    def child(self) -> Cursor:
        return Cursor(self.last_id, self.offset)


class History:
    def __init__(self, clock: Callable[[], datetime], on_event: Callable[[dict], None] | None = None):
        self._clock = clock
        self._on_event = on_event
        self._lock = threading.Lock()
        self.events: list[dict] = []

    def now(self, cursor: Cursor) -> datetime:
        moment = self._clock()
        return moment + timedelta(seconds=cursor.offset) if cursor.offset else moment

    def add(self, cursor: Cursor, event_type: str, details: dict | None = None) -> dict:
        timestamp = format_timestamp(self.now(cursor))
        with self._lock:
            event_id = len(self.events) + 1
            event: dict[str, Any] = {
                "id": event_id,
                "previousEventId": cursor.last_id,
                "timestamp": timestamp,
                "type": event_type,
            }
            key = details_key(event_type)
            if key is not None:
                event[key] = details or {}
            self.events.append(event)
            cursor.last_id = event_id
            if self._on_event is not None:  # under the lock: callers see events in id order
                try:
                    self._on_event(event)
                except Exception:  # a broken progress printer must not break the execution
                    log.exception("on_event callback failed for event %s", event_type)
        return event


def write_history(folder: Path, history: list[dict], status: dict, output: Any) -> None:
    """history.json, status.json and output.json in ``folder``, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "history.json", history)
    _write(folder / "status.json", status)
    _write(folder / "output.json", output)


def write_status(folder: Path, status: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "status.json", status)


def _write(path: Path, value: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False, default=str)
        handle.write("\n")
    os.replace(tmp, path)


def read_execution(folder: Path) -> dict:
    """What write_history left in ``folder``: {"status": {...}, "history": [...], "output": ...}.

    An execution still running (or killed) has a status.json only; its history is then [].
    """
    folder = Path(folder)
    status_path = folder / "status.json"
    if not status_path.is_file():
        raise FileNotFoundError(f"{folder} holds no execution record (no status.json); run the execution with history_dir")
    record: dict[str, Any] = {"status": json.loads(status_path.read_text(encoding="utf-8")), "history": [], "output": None}
    for key, name in (("history", "history.json"), ("output", "output.json")):
        path = folder / name
        if path.is_file():
            record[key] = json.loads(path.read_text(encoding="utf-8"))
    return record
