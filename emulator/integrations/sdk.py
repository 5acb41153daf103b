"""The response and error shapes Step Functions records for AWS SDK and optimized integrations."""

from __future__ import annotations

import time
import uuid
from email.utils import formatdate


def http_metadata(request_id: str, *, content_type: str = "application/json", status: int = 200,
                  extra_headers: dict[str, str] | None = None) -> dict:
    """{"SdkHttpMetadata", "SdkResponseMetadata"} as the Java SDK behind Step Functions reports them."""
    headers = {"Content-Type": content_type, "Date": formatdate(usegmt=True), "x-amzn-RequestId": request_id,
               **(extra_headers or {})}
    return {
        "SdkHttpMetadata": {
            "AllHttpHeaders": {k: [v] for k, v in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": status,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
    }


def trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
