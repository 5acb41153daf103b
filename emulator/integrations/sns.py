"""SNS: "sns:publish" appends the message to <state_dir>/outbox/<topic name>.jsonl.

One JSON line per message ({"TopicArn", "Subject", "Message", "MessageAttributes", "Timestamp",
"MessageId"}), written with a single append so concurrent publishers never interleave lines. The
task's output is what Step Functions records for sns:publish: {"MessageId", "SdkHttpMetadata",
"SdkResponseMetadata"}.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import (
    Integration,
    Integrations,
    TaskOutcome,
    TaskRequest,
)
from emulator.cloud.deploy import UnknownResource

log = logging.getLogger(__name__)
_LOCK = threading.Lock()


def outbox_file(state_dir: Path, topic_name: str) -> Path:
    return Path(state_dir) / "outbox" / f"{topic_name}.jsonl"


def read_outbox(state_dir: Path, topic_name: str) -> list[dict]:
    """Every message published to a topic so far, oldest first."""
    path = outbox_file(state_dir, topic_name)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class SnsPublish(Integration):
    def __init__(self, runtime: Any):
        self.runtime = runtime

    def publish(self, params: dict) -> dict:
        if not isinstance(params, dict):
            raise StatesError("SNS.InvalidParameterException", "Parameters must be an object")
        arn = params.get("TopicArn") or params.get("TargetArn")
        if not arn:
            raise StatesError("SNS.InvalidParameterException",
                              "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter "
                              "(Service: Sns, Status Code: 400)")
        try:
            topic = self.runtime.deployment.topic(arn)
        except UnknownResource:
            raise StatesError("SNS.NotFoundException",
                              f"Topic does not exist: {arn} (Service: Sns, Status Code: 404, "
                              f"Request ID: {uuid.uuid4()})") from None
        message = params.get("Message")
        if message is None:
            raise StatesError("SNS.InvalidParameterException", "Invalid parameter: Message Reason: no value for "
                                                               "required parameter (Service: Sns, Status Code: 400)")
        if not isinstance(message, str):
            message = json.dumps(message, separators=(",", ":"))  # Step Functions sends JSON as text
        if topic.fifo and not params.get("MessageGroupId"):
            raise StatesError("SNS.InvalidParameterException",
                              "Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
        message_id = str(uuid.uuid4())
        record = {
            "TopicArn": topic.arn,
            "Subject": params.get("Subject"),
            "Message": message,
            "MessageAttributes": params.get("MessageAttributes") or {},
            "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "MessageId": message_id,
        }
        for key in ("MessageGroupId", "MessageDeduplicationId", "MessageStructure"):
            if key in params:
                record[key] = params[key]
        path = outbox_file(self.runtime.state_dir, topic.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record) + "\n").encode()
        with _LOCK:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        log.info("SNS %s: %s", topic.name, record["Subject"] or message[:80])
        request_id = str(uuid.uuid4())
        headers = {"Content-Type": "text/xml", "Date": formatdate(usegmt=True), "x-amzn-RequestId": request_id}
        return {
            "MessageId": message_id,
            "SdkHttpMetadata": {
                "AllHttpHeaders": {k: [v] for k, v in headers.items()},
                "HttpHeaders": headers,
                "HttpStatusCode": 200,
            },
            "SdkResponseMetadata": {"RequestId": request_id},
        }

    def start(self, request: TaskRequest) -> dict:
        return self.publish(request.parameters)

    def poll(self, handle: dict) -> TaskOutcome:
        return TaskOutcome(handle)


def register(integrations: Integrations, runtime: Any) -> None:
    integrations.register("sns:publish", SnsPublish(runtime))
