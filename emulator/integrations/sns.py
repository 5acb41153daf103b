"""Step Functions' "sns:publish" over the local SNS backend, with the output and errors Step
Functions records: {"MessageId", "SdkHttpMetadata", "SdkResponseMetadata"}; SNS.<Code> errors."""

from __future__ import annotations

import uuid

from emulator.asl.errors import StatesError
from emulator.asl.ports import Integration, Integrations, TaskOutcome, TaskRequest
from emulator.integrations.sdk import http_metadata
from emulator.services.sns import SnsBackend, SnsError


class SnsPublish(Integration):
    def __init__(self, sns: SnsBackend):
        self.sns = sns

    def start(self, request: TaskRequest) -> dict:
        params = request.parameters
        if not isinstance(params, dict):
            raise StatesError("SNS.InvalidParameterException", "Parameters must be an object")
        request_id = str(uuid.uuid4())
        try:
            result = self.sns.publish(**params)
        except SnsError as error:
            raise StatesError(f"SNS.{error.code}", f"{error.message} (Service: Sns, Status Code: {error.status}, "
                                                   f"Request ID: {request_id})") from None
        except TypeError as error:  # a parameter SNS does not have
            raise StatesError("SNS.InvalidParameterException", str(error)) from None
        return {**result, **http_metadata(request_id, content_type="text/xml")}

    def poll(self, handle: dict) -> TaskOutcome:
        return TaskOutcome(handle)


def register(integrations: Integrations, sns: SnsBackend) -> None:
    integrations.register("sns:publish", SnsPublish(sns))
