"""One walk over JSON-like trees (dicts, lists, tuples) for the forms a datetime takes on disk and
on the wire: epoch seconds or milliseconds, ISO-8601 text, a tagged {"__datetime__": ...} object."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any


def map_datetimes(value: Any, convert: Callable[[dt.datetime], Any]) -> Any:
    """A copy of ``value`` with every datetime replaced by ``convert(it)`` (tuples become lists)."""
    if isinstance(value, dt.datetime):
        return convert(value)
    if isinstance(value, dict):
        return {k: map_datetimes(v, convert) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [map_datetimes(v, convert) for v in value]
    return value
