"""What every SageMaker List* shares: filters, sort order, time windows and the one paginator
(storage.pages) with SageMaker's error for a bad token or page size."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from emulator.services.sagemaker.exceptions import ValidationException
from emulator.storage.pages import paginate


def page(rows: Sequence[dict], next_token: Any, max_results: Any, list_key: str, *,
         default_size: int = 100) -> dict:
    """``{list_key: <this page>, "NextToken": ...}`` (NextToken only when more rows follow)."""
    try:
        rows, token = paginate(rows, next_token, max_results, default_size=default_size, max_size=100)
    except ValueError as error:  # InvalidNextToken too
        raise ValidationException(str(error)) from error
    out: dict[str, Any] = {list_key: rows}
    if token:
        out["NextToken"] = token
    return out


def in_window(stamp: dt.datetime | None, after: Any, before: Any) -> bool:
    """CreationTimeAfter/Before-style filters (strictly after, strictly before)."""
    if stamp is None:
        return after is None and before is None
    return (after is None or stamp > _moment(after)) and (before is None or stamp < _moment(before))


def _moment(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return dt.datetime.fromisoformat(str(value))


def filter_sort(summaries: list[dict], status_key: str, name_key: str, filters: dict) -> list[dict]:
    """StatusEquals, NameContains, CreationTime windows, then SortBy/SortOrder (job List* calls)."""
    if filters.get("StatusEquals"):
        summaries = [s for s in summaries if s.get(status_key) == filters["StatusEquals"]]
    if filters.get("NameContains"):
        summaries = [s for s in summaries if filters["NameContains"] in s[name_key]]
    if filters.get("CreationTimeAfter") or filters.get("CreationTimeBefore"):
        summaries = [s for s in summaries
                     if in_window(s.get("CreationTime"), filters.get("CreationTimeAfter"), filters.get("CreationTimeBefore"))]
    by = filters.get("SortBy", "CreationTime")
    key = {"Name": name_key, "CreationTime": "CreationTime", "Status": status_key}.get(by, "CreationTime")
    summaries.sort(key=lambda s: s.get(key) or "", reverse=filters.get("SortOrder", "Descending") == "Descending")
    return summaries
