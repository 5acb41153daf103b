"""SNS, locally: topics from the deployment, Publish appends one JSON line to the topic's outbox.

One line per message ({"TopicArn", "Subject", "Message", "MessageAttributes", "Timestamp",
"MessageId", ...}), written with a single append so concurrent publishers never interleave lines.
Errors are classes named after SNS's error codes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from emulator.aws.clock import utcnow
from emulator.services.errors import ServiceError
from emulator.storage.layout import Layout

log = logging.getLogger(__name__)
_APPEND_LOCK = threading.Lock()


@dataclass
class TopicSpec:
    stack: str
    logical_id: str
    name: str
    arn: str
    fifo: bool = False


class SnsError(ServiceError):
    code = "InternalError"
    status = 500


class NotFound(SnsError):
    code, status = "NotFoundException", 404

    def __init__(self, arn: str):
        super().__init__(f"Topic does not exist: {arn}")


class InvalidParameter(SnsError):
    code, status = "InvalidParameterException", 400

    def __init__(self, parameter: str, reason: str):
        super().__init__(f"Invalid parameter: {parameter} Reason: {reason}")


class SnsBackend:
    def __init__(self, layout: Layout, topics: list[TopicSpec]):
        self.layout = layout
        self.topics = topics

    def topic(self, arn_or_name: str) -> TopicSpec:
        for topic in self.topics:
            if arn_or_name in (topic.arn, topic.name):
                return topic
        raise NotFound(arn_or_name)

    def publish(self, TopicArn: str | None = None, TargetArn: str | None = None, Message: Any = None,
                Subject: str | None = None, MessageAttributes: dict | None = None, **rest: Any) -> dict:
        arn = TopicArn or TargetArn
        if not arn:
            raise InvalidParameter("TopicArn or TargetArn", "no value for required parameter")
        topic = self.topic(arn)
        if Message is None:
            raise InvalidParameter("Message", "no value for required parameter")
        if not isinstance(Message, str):
            Message = json.dumps(Message, separators=(",", ":"))  # Step Functions sends JSON as text
        if topic.fifo and not rest.get("MessageGroupId"):
            raise InvalidParameter("MessageGroupId", "The MessageGroupId parameter is required for FIFO topics")
        record = {
            "TopicArn": topic.arn,
            "Subject": Subject,
            "Message": Message,
            "MessageAttributes": MessageAttributes or {},
            "Timestamp": utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "MessageId": str(uuid.uuid4()),
        }
        for key in ("MessageGroupId", "MessageDeduplicationId", "MessageStructure"):
            if key in rest:
                record[key] = rest[key]
        path = self.layout.outbox_file(topic.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record) + "\n").encode()
        with _APPEND_LOCK:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        log.info("SNS %s: %s", topic.name, record["Subject"] or Message[:80])
        return {"MessageId": record["MessageId"]}

    def read_outbox(self, topic_name: str) -> list[dict]:
        """Every message published to a topic so far, oldest first."""
        return read_outbox(self.layout, topic_name)


def read_outbox(layout: Layout, topic_name: str) -> list[dict]:
    path = layout.outbox_file(topic_name)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
