"""The Step Functions API on localhost (the awsJson1_0 protocol), over a StepFunctionsBackend.

    boto3.client("stepfunctions", endpoint_url=URL).start_execution(stateMachineArn=..., input=...)
    aws stepfunctions --endpoint-url URL list-executions --state-machine-arn ...

POST / with ``X-Amz-Target: AWSStepFunctions.<Operation>``; errors are HTTP 400 with
``{"__type": <code>, "message": ...}``, which botocore raises as the modelled exception. The HTTP
side is services/awsjson.py, shared with the SageMaker API.
"""

from __future__ import annotations

import logging
from functools import partial

from emulator.services.awsjson import (
    AwsJsonServer,
    ProtocolError,
    error_document,
    internal_fault,
    operation_of,
    parse_request,
)
from emulator.services.stepfunctions.backend import StepFunctionsBackend
from emulator.services.stepfunctions.exceptions import StepFunctionsError

log = logging.getLogger(__name__)

TARGET_PREFIX = "AWSStepFunctions."


def answer(api: StepFunctionsBackend, target: str, body: bytes) -> tuple[int, dict]:
    """(HTTP status, JSON body) for one request; the whole protocol, without the socket."""
    try:
        operation = operation_of(target, TARGET_PREFIX, "Step Functions")
        return 200, api.call(operation, parse_request(body))
    except ProtocolError as error:
        return error.status, error_document(error.code, error.message)
    except StepFunctionsError as error:
        return 400, error_document(error.code, error.message)
    except Exception:
        log.exception("Step Functions API %s failed", target)
        return internal_fault("Step Functions")


class StepFunctionsServer(AwsJsonServer):
    """The Step Functions API on a local port."""

    def __init__(self, api: StepFunctionsBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__("stepfunctions-api", partial(answer, api), "application/x-amz-json-1.0", host, port)
