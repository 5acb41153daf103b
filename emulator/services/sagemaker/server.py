"""The SageMaker control-plane API on localhost (awsJson1_1), over the one SageMakerBackend.

    aws sagemaker --endpoint-url URL list-endpoints
    boto3.client("sagemaker", endpoint_url=URL).describe_training_job(TrainingJobName=...)
    AWS_ENDPOINT_URL_SAGEMAKER=URL  (the SageMaker SDK's resource classes, unchanged)

POST / with ``X-Amz-Target: SageMaker.<Operation>``. The request's wire values are turned into what
the backend takes (timestamps: epoch seconds -> datetime) by walking botocore's input shape, then
``SageMakerBackend.call`` validates and runs it, exactly as for a Task state. Errors are HTTP 400
(500 for a server fault) with ``{"__type": <code>, "message": ...}``, which botocore raises as
ClientError with that code. Only SERVED operations answer; any other names itself in an
UnknownOperationException, so a client learns what is missing instead of getting a 404.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.model import Shape

from emulator.services.sagemaker.exceptions import SageMakerError
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.services.sagemaker.validation import operation_model, service_model

log = logging.getLogger("emulator.services.sagemaker.server")

TARGET_PREFIX = "SageMaker."
# What the local control plane answers: reading every resource the pipelines make, the registry's
# approval, and the operator's levers on endpoints and jobs. Jobs are created by state machines.
SERVED = frozenset({
    "DescribeProcessingJob", "ListProcessingJobs", "StopProcessingJob",
    "DescribeTrainingJob", "ListTrainingJobs", "StopTrainingJob",
    "DescribeHyperParameterTuningJob", "ListHyperParameterTuningJobs", "StopHyperParameterTuningJob",
    "ListTrainingJobsForHyperParameterTuningJob",
    "DescribeTransformJob", "ListTransformJobs", "StopTransformJob",
    "DescribeModel", "ListModels",
    "DescribeEndpointConfig", "ListEndpointConfigs",
    "DescribeEndpoint", "ListEndpoints", "UpdateEndpoint", "DeleteEndpoint",
    "DescribeModelPackageGroup", "ListModelPackageGroups",
    "DescribeModelPackage", "ListModelPackages", "UpdateModelPackage",
})


class _ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def from_wire(value: Any, shape: Shape | None) -> Any:
    """A JSON-protocol request value as the backend takes it (timestamps and blobs decoded)."""
    if shape is None or value is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        return {key: from_wire(item, shape.members.get(key)) for key, item in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [from_wire(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: from_wire(item, shape.value) for key, item in value.items()}
    if shape.type_name == "timestamp":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                return value  # validation names it
    if shape.type_name == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _to_wire(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def answer(api: SageMakerBackend, target: str, body: bytes) -> tuple[int, dict]:
    """(HTTP status, JSON body) for one request; the whole protocol, without the socket."""
    try:
        if not target.startswith(TARGET_PREFIX):
            raise _ApiError("UnknownOperationException", f"X-Amz-Target {target!r} is not a SageMaker operation "
                                                         f"(expected {TARGET_PREFIX}<Operation>)")
        operation = target.removeprefix(TARGET_PREFIX)
        if operation not in SERVED:
            known = operation in service_model().operation_names
            raise _ApiError("UnknownOperationException",
                            f"The local SageMaker API does not serve {operation}"
                            + ("" if known else " (it is not a SageMaker operation)")
                            + f"; it serves: {', '.join(sorted(SERVED))}")
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError as error:
            raise _ApiError("SerializationException", f"the request body is not JSON: {error}") from None
        if not isinstance(request, dict):
            raise _ApiError("SerializationException", "the request body must be a JSON object")
        request = from_wire(request, operation_model(operation).input_shape)
        return 200, api.call(operation, request)
    except _ApiError as error:
        return error.status, {"__type": error.code, "message": error.message}
    except SageMakerError as error:
        return error.status, {"__type": error.code, "message": error.message}
    except Exception as error:  # an emulator bug: a 500 with the reason, never a dropped connection
        log.exception("SageMaker API %s failed", target)
        return 500, {"__type": "InternalFailure", "message": f"{type(error).__name__}: {error}"}


class SageMakerServer:
    """The API on a ThreadingHTTPServer thread; ``url`` is what clients take as endpoint_url."""

    def __init__(self, api: SageMakerBackend, host: str = "127.0.0.1", port: int = 0):
        handler = type("Handler", (_Handler,), {"api": api})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="sagemaker-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SageMakerServer:
        self._thread.start()
        log.debug("SageMaker API listening on %s", self.url)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    api: SageMakerBackend
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, document = answer(self.api, self.headers.get("X-Amz-Target", ""), body)
        payload = json.dumps(document, default=_to_wire).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
