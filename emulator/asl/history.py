"""The execution history: AWS's HistoryEvent shape and event ids (the record on disk: storage.executions).

Each event is ``{"id", "previousEventId", "timestamp", "type", "<detailsKey>": {...}}`` with the
details key AWS's GetExecutionHistory uses for that type (``stateEnteredEventDetails`` for every
``*StateEntered``, ``taskScheduledEventDetails`` for ``TaskScheduled``, ...). Concurrent branches
each keep their own ``previousEventId`` chain, as AWS does.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator.storage.executions import read_execution, write_history, write_status  # noqa: F401 - the record format

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
        "MapRunSucceeded",
        "MapRunAborted",
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
    def __init__(self, clock: Callable[[], datetime], on_event: Callable[[dict], None] | None = None,
                 virtual_clock: bool = True, journal: Callable[[dict], None] | None = None):
        self._clock = clock
        self._on_event = on_event
        self._journal = journal  # where each event is made durable before the execution goes on
        # virtual: skipped Wait/Retry time advances the recorded times, so a history reads as it would
        # on AWS (the conformance corpus checks backoff gaps this way); otherwise every time recorded
        # is the wall clock's, so a local execution's record never claims a time that did not happen
        self._virtual = virtual_clock
        self._lock = threading.Lock()
        self.events: list[dict] = []

    def fresh(self) -> History:
        """An empty history on the same clock (a Distributed Map's child execution has its own)."""
        return History(self._clock, None, self._virtual)

    def now(self, cursor: Cursor) -> datetime:
        moment = self._clock()
        return moment + timedelta(seconds=cursor.offset) if cursor.offset and self._virtual else moment

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
            if self._journal is not None:
                try:
                    self._journal(event)
                except OSError:  # a full disk must not break the execution; the end writes it all
                    log.exception("could not journal event %s", event_type)
            if self._on_event is not None:  # under the lock: callers see events in id order
                try:
                    self._on_event(event)
                except Exception:  # a broken progress printer must not break the execution
                    log.exception("on_event callback failed for event %s", event_type)
        return event


