"""The SageMaker control-plane API on localhost (awsJson1_1), over the one SageMakerBackend.

    aws sagemaker --endpoint-url URL list-endpoints
    boto3.client("sagemaker", endpoint_url=URL).describe_training_job(TrainingJobName=...)
    AWS_ENDPOINT_URL_SAGEMAKER=URL  (the SageMaker SDK's resource classes, unchanged)

POST / with ``X-Amz-Target: SageMaker.<Operation>``. The request's wire values are turned into what
the backend takes (timestamps: epoch seconds -> datetime) by walking botocore's input shape, then
``SageMakerBackend.call`` validates and runs it, exactly as for a Task state. Errors are HTTP 400
(500 for a server fault) with ``{"__type": <code>, "message": ...}``, which botocore raises as
ClientError with that code (the HTTP side is services/awsjson.py). Only SERVED operations answer; any other names itself in an
UnknownOperationException, so a client learns what is missing instead of getting a 404.
"""

from __future__ import annotations

import base64
import datetime as dt
from functools import partial
from typing import Any

from botocore.model import Shape

from emulator.services.awsjson import AwsJsonServer, ProtocolError, answer
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.services.sagemaker.validation import operation_model, service_model

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


def decode(operation: str, request: dict) -> dict:
    """Only SERVED operations answer; the request's wire values as the backend takes them."""
    if operation not in SERVED:
        known = operation in service_model().operation_names
        raise ProtocolError("UnknownOperationException",
                            f"The local SageMaker API does not serve {operation}"
                            + ("" if known else " (it is not a SageMaker operation)")
                            + f"; it serves: {', '.join(sorted(SERVED))}")
    return from_wire(request, operation_model(operation).input_shape)


class SageMakerServer(AwsJsonServer):
    """The SageMaker control-plane API on a local port."""

    def __init__(self, api: SageMakerBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__("sagemaker-api", partial(answer, service="SageMaker", prefix=TARGET_PREFIX, call=api.call,
                                                  decode=decode),
                         "application/x-amz-json-1.1", host, port, encode=_to_wire)
