"""The Step Functions API on localhost (the awsJson1_0 protocol), over a StepFunctionsBackend.

    boto3.client("stepfunctions", endpoint_url=URL).start_execution(stateMachineArn=..., input=...)
    aws stepfunctions --endpoint-url URL list-executions --state-machine-arn ...

POST / with ``X-Amz-Target: AWSStepFunctions.<Operation>``; errors are HTTP 400 with
``{"__type": <code>, "message": ...}``, which botocore raises as the modelled exception. The HTTP
side is services/awsjson.py, shared with the SageMaker API.
"""

from __future__ import annotations

from functools import partial

from emulator.services.awsjson import AwsJsonServer, answer
from emulator.services.stepfunctions.backend import StepFunctionsBackend

TARGET_PREFIX = "AWSStepFunctions."


class StepFunctionsServer(AwsJsonServer):
    """The Step Functions API on a local port."""

    def __init__(self, api: StepFunctionsBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__("stepfunctions-api", partial(answer, service="Step Functions", prefix=TARGET_PREFIX, call=api.call),
                         "application/x-amz-json-1.0", host, port)
