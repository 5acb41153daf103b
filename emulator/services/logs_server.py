"""The CloudWatch Logs API on localhost (awsJson1_1), over a LogsBackend: the SageMaker jobs' logs.

    aws logs --endpoint-url URL get-log-events --log-group-name /aws/sagemaker/TrainingJobs --log-stream-name JOB/algo-1
    boto3.client("logs", endpoint_url=URL).get_log_events(...)

POST / with ``X-Amz-Target: Logs_20140328.<Operation>``; errors are HTTP 400 with ``__type`` and
``message``, which botocore raises as ClientError with that code. The HTTP side is services/awsjson.py.
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
from emulator.services.logs import LogsBackend, LogsError

log = logging.getLogger(__name__)

TARGET_PREFIX = "Logs_20140328."


def answer(api: LogsBackend, target: str, body: bytes) -> tuple[int, dict]:
    """(HTTP status, JSON body) for one request; the whole protocol, without the socket."""
    try:
        operation = operation_of(target, TARGET_PREFIX, "CloudWatch Logs")
        return 200, api.call(operation, parse_request(body))
    except ProtocolError as error:
        return error.status, error_document(error.code, error.message)
    except LogsError as error:
        return 400, error_document(error.code, error.message)
    except TypeError as error:  # a missing required field
        return 400, error_document("InvalidParameterException", str(error))
    except Exception:
        log.exception("CloudWatch Logs API %s failed", target)
        return internal_fault("CloudWatch Logs")


class LogsServer(AwsJsonServer):
    """The CloudWatch Logs API on a local port."""

    def __init__(self, api: LogsBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__("logs-api", partial(answer, api), "application/x-amz-json-1.1", host, port)
