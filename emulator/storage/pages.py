"""One paginator for every List* operation: a page of rows and an opaque NextToken."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class InvalidNextToken(ValueError):
    """The token was not one this paginator issued (services map it to their own error code)."""


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode(token: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        offset = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidNextToken(f"Invalid NextToken {token!r}") from exc
    if kind != "offset" or offset < 0:
        raise InvalidNextToken(f"Invalid NextToken {token!r}")
    return offset


def paginate(rows: Sequence[T], next_token: Any = None, max_results: Any = None, *,
             default_size: int = 100, max_size: int = 1000) -> tuple[list[T], str | None]:
    """The page of ``rows`` that ``next_token`` points at, at most ``max_results`` long (the service's
    default when not given), and the token of the next page (None on the last one)."""
    start = _decode(next_token) if next_token else 0
    size = default_size if max_results in (None, 0) else int(max_results)
    if size < 1 or size > max_size:
        raise ValueError(f"maxResults must be between 1 and {max_size}, got {max_results}")
    page = list(rows[start:start + size])
    return page, (_encode(start + size) if start + size < len(rows) else None)
