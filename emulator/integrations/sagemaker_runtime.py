"""``arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint``: a real HTTP InvokeEndpoint request to
the local runtime API (the invoke server that answers every endpoint of the state folder), never an
in-process shortcut, so the endpoint's metrics and data capture see the call as they see any client's.

Output, as the AWS SDK integration returns it: ``{"Body": <the answer as text>, "ContentType",
"InvokedProductionVariant"[, "CustomAttributes"]}``. A JSON object or array given as ``Body`` is sent
serialized. Errors keep the runtime model's names with the "Exception" suffix the Java SDK adds
(``SageMakerRuntime.ModelErrorException``, ``SageMakerRuntime.ValidationErrorException``,
``SageMakerRuntime.ServiceUnavailableException``, ...); unmodelled codes (throttling) are
``SageMakerRuntime.SageMakerRuntimeException``; a connection that fails is
``SageMakerRuntime.SdkClientException``. The cause is the SDK v2 wording.
"""

from __future__ import annotations

import http.client
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from emulator.asl.errors import StatesError
from emulator.asl.ports import Integration, Integrations, TaskOutcome, TaskRequest

log = logging.getLogger("emulator.integrations.sagemaker_runtime")

SERVICE = "SageMakerRuntime"
# the error codes the sagemaker-runtime service model declares for InvokeEndpoint
MODELLED = {"InternalFailure", "ServiceUnavailable", "ValidationError", "ModelError", "ModelNotReadyException",
            "InternalDependencyException"}
TIMEOUT_SECONDS = 70  # InvokeEndpoint's own limit is 60 s of model time
HEADERS = {"ContentType": "Content-Type", "Accept": "Accept", "CustomAttributes": "X-Amzn-SageMaker-Custom-Attributes",
           "TargetVariant": "X-Amzn-SageMaker-Target-Variant", "TargetModel": "X-Amzn-SageMaker-Target-Model",
           "InferenceId": "X-Amzn-SageMaker-Inference-Id", "EnableExplanations": "X-Amzn-SageMaker-Enable-Explanations",
           "InferenceComponentName": "X-Amzn-SageMaker-Inference-Component"}


def _error(code: str, message: str, status: int) -> StatesError:
    name = f"{SERVICE}.{code if code.endswith('Exception') else code + 'Exception'}" if code in MODELLED \
        else f"{SERVICE}.{SERVICE}Exception"
    return StatesError(name, f"{message} (Service: {SERVICE}, Status Code: {status}, Request ID: {uuid.uuid4()})")


class InvokeEndpoint(Integration):
    """``invoke_server_url``: the base URL of the runtime API serving this state folder (injected)."""

    def __init__(self, invoke_server_url: Callable[[], str]):
        self.invoke_server_url = invoke_server_url

    def start(self, request: TaskRequest) -> Any:
        params = request.parameters
        if not isinstance(params, dict) or not isinstance(params.get("EndpointName"), str) or "Body" not in params:
            raise StatesError("States.Runtime", f"State {request.state_name!r}: invokeEndpoint needs the parameters "
                                                "EndpointName (a string) and Body")
        unknown = sorted(set(params) - {"EndpointName", "Body", *HEADERS})
        if unknown:
            raise _error("ValidationError", f"Unknown parameter(s) {unknown} for InvokeEndpoint", 400)
        body = params["Body"]
        data = body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":")).encode()
        headers = {header: str(params[key]) for key, header in HEADERS.items() if params.get(key) is not None}
        headers.setdefault("Content-Type", "application/octet-stream")
        base = urlsplit(self.invoke_server_url())
        connection = http.client.HTTPConnection(base.hostname, base.port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request("POST", f"/endpoints/{quote(params['EndpointName'], safe='')}/invocations", data, headers)
            response = connection.getresponse()
            answer, status = response.read(), response.status
            reply_headers = {k.lower(): v for k, v in response.getheaders()}
        except OSError as error:
            raise StatesError(f"{SERVICE}.SdkClientException", f"Unable to execute HTTP request: {error}") from None
        finally:
            connection.close()
        if status >= 300:
            try:
                message = json.loads(answer).get("Message", "")
            except ValueError:
                message = answer.decode("utf-8", "replace")
            raise _error(reply_headers.get("x-amzn-errortype", "InternalFailure").split(":", 1)[0], message, status)
        output = {"Body": answer.decode("utf-8", "replace"), "ContentType": reply_headers.get("content-type", ""),
                  "InvokedProductionVariant": reply_headers.get("x-amzn-invoked-production-variant", "")}
        if "x-amzn-sagemaker-custom-attributes" in reply_headers:
            output["CustomAttributes"] = reply_headers["x-amzn-sagemaker-custom-attributes"]
        return output

    def poll(self, handle: Any) -> TaskOutcome:
        return TaskOutcome(handle)

    def poll_interval(self, handle: Any) -> float:
        return 0.0


def register(integrations: Integrations, invoke_server_url: Callable[[], str]) -> None:
    integrations.register("aws-sdk:sagemakerruntime:invokeEndpoint", InvokeEndpoint(invoke_server_url))
