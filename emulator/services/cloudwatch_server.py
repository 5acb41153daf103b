"""The CloudWatch metrics API on localhost, over the one CloudWatchBackend of a state folder.

    boto3.client("cloudwatch", endpoint_url=URL).get_metric_data(MetricDataQueries=[...], ...)
    aws cloudwatch --endpoint-url URL list-metrics --namespace AWS/SageMaker

Two of the protocols botocore's CloudWatch model lists answer: Smithy RPC v2 CBOR (what boto3 and
the AWS CLI send by default: ``POST /service/GraniteServiceVersion20100801/operation/<Operation>``,
CBOR bodies, timestamps as epoch-seconds tags) and awsJson1_0 (``POST /`` with ``X-Amz-Target:
GraniteServiceVersion20100801.<Operation>``). Errors are HTTP 400 with ``__type`` and ``message``,
which botocore raises as ClientError with that code.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from http.server import BaseHTTPRequestHandler
from typing import Any

import cbor2

from emulator.services.awsjson import LocalServer, ProtocolError, answered, error_document, read_body, send_document
from emulator.services.cloudwatch import CloudWatchBackend, CloudWatchError

log = logging.getLogger(__name__)

SERVICE = "GraniteServiceVersion20100801"
CBOR_PATH = f"/service/{SERVICE}/operation/"


class CloudWatchServer(LocalServer):
    """The CloudWatch metrics API on a local port, in both protocols."""

    def __init__(self, api: CloudWatchBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__("cloudwatch-api", type("Handler", (_Handler,), {"api": api}), host, port)


def answer(api: CloudWatchBackend, operation: str, request: Any) -> tuple[int, dict]:
    """(HTTP status, document) for one decoded request; the protocol-independent part."""
    def work() -> dict:
        if not isinstance(request, dict):
            raise _Serialization("the request body must be a map of the operation's fields")
        return api.call(operation, request)

    return answered(work, "CloudWatch", operation)


class _Serialization(CloudWatchError):
    code = "SerializationException"


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON")


class _Handler(BaseHTTPRequestHandler):
    api: CloudWatchBackend
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle client does not hold a handler thread forever

    def do_POST(self) -> None:
        try:
            body = read_body(self)
        except ProtocolError as error:
            return self._send(error.status, error_document(error.code, error.message), cbor=self.path.startswith(CBOR_PATH))
        if self.path.startswith(CBOR_PATH):
            operation = self.path.removeprefix(CBOR_PATH).split("?")[0]
            try:
                request = cbor2.loads(body) if body else {}
            except (cbor2.CBORDecodeError, ValueError) as error:
                return self._send(400, {"__type": "SerializationException", "message": f"the body is not CBOR: {error}"},
                                  cbor=True)
            return self._send(*answer(self.api, operation, request), cbor=True)
        target = self.headers.get("X-Amz-Target", "")
        if not target.startswith(SERVICE + "."):
            return self._send(400, {"__type": "UnknownOperationException",
                                    "message": f"POST {self.path} with X-Amz-Target {target!r}: send "
                                               f"{CBOR_PATH}<Operation> (CBOR) or X-Amz-Target {SERVICE}.<Operation> (JSON)"})
        try:
            request = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return self._send(400, {"__type": "SerializationException", "message": f"the body is not JSON: {error}"})
        self._send(*answer(self.api, target.removeprefix(SERVICE + "."), request))

    def _send(self, status: int, document: dict, cbor: bool = False) -> None:
        if cbor:
            send_document(self, status, cbor2.dumps(document, datetime_as_timestamp=True, timezone=dt.UTC),
                          "application/cbor", {"smithy-protocol": "rpc-v2-cbor"})
        else:
            send_document(self, status, json.dumps(document, default=_json_default).encode(), "application/x-amz-json-1.0")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
