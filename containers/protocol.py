"""What every serving twin hands the HTTP layer: ``invoke(body, content_type, accept) -> Response``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Response:
    """One answer of a container's /invocations: HTTP status, body bytes and its media type."""

    status: int
    body: bytes
    content_type: str


class Predictor(Protocol):
    """A loaded model behind /invocations; ``invoke`` is safe to call from many threads at once.
    containers.xgboost.serving.Predictor, containers.sklearn.transformer.Predictor and
    containers.pipeline.SerialPipeline all have this shape."""

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Response: ...


def media_type(header: str | None) -> str:
    """'text/csv; charset=utf-8' -> 'text/csv' (lower-case, parameters dropped)."""
    return (header or "").split(";", 1)[0].strip().lower()
