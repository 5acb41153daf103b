"""Wall-clock time as AWS records it (timezone-aware UTC) and the time scale of simulated waits."""

from __future__ import annotations

import datetime as dt
import time


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def epoch_millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def scaled_sleep(seconds: float, time_scale: float) -> None:
    """Sleep ``seconds`` of simulated time: Wait states and service delays shrink by ``time_scale``."""
    if seconds > 0 and time_scale > 0:
        time.sleep(seconds * time_scale)
