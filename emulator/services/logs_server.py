"""The CloudWatch Logs API on localhost (awsJson1_1), over a LogsBackend: the SageMaker jobs' logs.

    aws logs --endpoint-url URL get-log-events --log-group-name /aws/sagemaker/TrainingJobs --log-stream-name JOB/algo-1
    boto3.client("logs", endpoint_url=URL).get_log_events(...)

POST / with ``X-Amz-Target: Logs_20140328.<Operation>``; errors are HTTP 400 with ``__type`` and
``message``, which botocore raises as ClientError with that code. The HTTP side is services/awsjson.py.
"""

from __future__ import annotations

from functools import partial

from emulator.services.awsjson import AwsJsonServer, answer
from emulator.services.logs import LogsBackend

TARGET_PREFIX = "Logs_20140328."


class LogsServer(AwsJsonServer):
    """The CloudWatch Logs API on a local port."""

    def __init__(self, api: LogsBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__("logs-api", partial(answer, service="CloudWatch Logs", prefix=TARGET_PREFIX, call=api.call),
                         "application/x-amz-json-1.1", host, port)
