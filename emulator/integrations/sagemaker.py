"""SageMaker service integrations: the optimized ``sagemaker:*`` ones and ``aws-sdk:sagemaker:*``.

Every call goes through ``SageMakerBackend.call`` (injected faults, validation against the botocore
model, then the backend method named after the operation). What Step Functions sees:

- request-response (``sagemaker:createModel``...): the API response.
- ``.sync`` (``sagemaker:createTrainingJob.sync``...): the job is polled with its Describe* call;
  Completed -> the Describe* response is the output; Failed/Stopped -> ``States.TaskFailed`` with
  the Describe* response (FailureReason included) as the JSON cause. A state timeout stops the job.
  A transient error of a Describe* poll (throttling, a 5xx) is retried by the integration itself, as
  AWS does: the state's Retry, which re-runs the Create* call, never sees it (that would re-submit a
  job whose name is taken, ResourceInUse). Only ``MAX_POLL_FAILURES`` in a row end the task.
- optimized integrations give timestamps as epoch milliseconds; AWS SDK integrations as ISO-8601.
- API errors (emulator.services.sagemaker.exceptions) become a ``StatesError`` here (``states_error``).
  Both integration kinds keep the names of the exceptions the SageMaker model declares, with an
  ``Exception`` suffix (``SageMaker.ResourceNotFoundException``), and fold every other error code
  (ValidationException, ThrottlingException, ...) into the SDK's base exception, because the Java SDK
  Step Functions runs on has no class for them:

  - optimized: ``SageMaker.AmazonSageMakerException``, cause ``<message> (Service: AmazonSageMaker;
    Status Code: 400; Error Code: <code>; Request ID: <id>; Proxy: null)`` (SDK v1's wording);
  - AWS SDK: ``SageMaker.SageMakerException``, cause ``<message> (Service: SageMaker, Status Code: 400,
    Request ID: <id>)`` (SDK v2's). Workflows catch a missing endpoint from describeEndpoint
    (SageMaker's ValidationException) by that name.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import (
    Integration,
    Integrations,
    TaskOutcome,
    TaskRequest,
)
from emulator.aws.jsontree import map_datetimes
from emulator.services.sagemaker.exceptions import SageMakerError
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.services.sagemaker.validation import method_name, operation_name, service_model

log = logging.getLogger("emulator.integrations.sagemaker")

SERVICE = "SageMaker"


def error_name(error: SageMakerError, sdk: bool) -> str:
    """The error name a Task state sees: ServiceName.ErrorName(Exception) for modelled errors."""
    if error.modelled:
        return f"{SERVICE}.{error.code if error.code.endswith('Exception') else error.code + 'Exception'}"
    return f"{SERVICE}.SageMakerException" if sdk else f"{SERVICE}.AmazonSageMakerException"


def states_error(error: SageMakerError, sdk: bool = False) -> StatesError:
    """A SageMaker API error as the Task state reports it (``sdk`` for aws-sdk:sagemaker:* resources)."""
    request_id = uuid.uuid4()
    if sdk:
        cause = f"{error.message} (Service: {SERVICE}, Status Code: {error.status}, Request ID: {request_id})"
    else:
        cause = (f"{error.message} (Service: AmazonSageMaker; Status Code: {error.status}; "
                 f"Error Code: {error.code}; Request ID: {request_id}; Proxy: null)")
    return StatesError(error_name(error, sdk), cause)


@dataclass(frozen=True)
class SyncJob:
    """How to follow one job type to its end: the Describe* operation, name and status members."""

    describe: str
    name_key: str
    status_key: str
    stop: str
    kind: str  # the backend's name for the job type (SageMakerBackend.ended_event)


SYNC_JOBS: dict[str, SyncJob] = {
    "createProcessingJob": SyncJob("DescribeProcessingJob", "ProcessingJobName", "ProcessingJobStatus", "StopProcessingJob", "processing"),
    "createTrainingJob": SyncJob("DescribeTrainingJob", "TrainingJobName", "TrainingJobStatus", "StopTrainingJob", "training"),
    "createHyperParameterTuningJob": SyncJob(
        "DescribeHyperParameterTuningJob", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus", "StopHyperParameterTuningJob", "tuning"
    ),
    "createTransformJob": SyncJob("DescribeTransformJob", "TransformJobName", "TransformJobStatus", "StopTransformJob", "transform"),
}
# Describe* errors a poll waits out rather than reporting (the error codes AWS SDKs retry).
TRANSIENT_CODES = frozenset({"ThrottlingException", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
                             "InternalFailure", "InternalServerError", "ServiceUnavailable", "RequestTimeout"})
MAX_POLL_FAILURES = 8
REQUEST_RESPONSE = ("createModel", "createEndpointConfig", "createEndpoint", "updateEndpoint")
RUNNING = ("InProgress", "Stopping")


def epoch_millis(value: Any) -> Any:
    """Datetimes -> epoch milliseconds, as optimized integrations return them (recursively)."""
    return map_datetimes(value, lambda moment: round(moment.timestamp() * 1000))


def iso_timestamps(value: Any) -> Any:
    """Datetimes -> ISO-8601 UTC strings with milliseconds, as AWS SDK integrations return them."""
    return map_datetimes(
        value, lambda moment: moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def _parameters(request: TaskRequest) -> dict:
    if not isinstance(request.parameters, dict):
        raise StatesError("States.Runtime", f"State {request.state_name!r}: the parameters of {request.resource} must be a JSON object")
    return request.parameters


@dataclass
class _Done:
    output: Any


@dataclass
class _Following:
    job: SyncJob
    name: str
    poll_failures: int = 0  # transient Describe* errors in a row


def is_transient(error: SageMakerError) -> bool:
    return error.code in TRANSIENT_CODES or error.status >= 500


class OptimizedSageMaker(Integration):
    """``arn:aws:states:::sagemaker:<operation>[.sync]``."""

    def __init__(self, backend: SageMakerBackend, operation: str, sync: bool):
        self.backend = backend
        self.operation = operation
        self.sync = sync

    def _call(self, operation: str, parameters: dict) -> dict:
        try:
            return self.backend.call(operation, parameters)
        except SageMakerError as error:
            raise states_error(error, sdk=False) from error

    def start(self, request: TaskRequest) -> Any:
        parameters = _parameters(request)
        response = self._call(self.operation, parameters)
        if not self.sync:
            return _Done(epoch_millis(response))
        job = SYNC_JOBS[self.operation]
        return _Following(job, parameters[job.name_key])

    def poll(self, handle: Any) -> TaskOutcome | None:
        if isinstance(handle, _Done):
            return TaskOutcome(handle.output)
        try:
            described = self.backend.call(handle.job.describe, {handle.job.name_key: handle.name})
        except SageMakerError as error:
            handle.poll_failures += 1
            if not is_transient(error) or handle.poll_failures > MAX_POLL_FAILURES:
                raise states_error(error, sdk=False) from error
            log.info("%s %s: %s (%s), polling again", handle.job.describe, handle.name, error.code, error.message)
            return None
        handle.poll_failures = 0
        status = described.get(handle.job.status_key)
        if status in RUNNING:
            return None
        output = epoch_millis(described)
        if status == "Completed":
            return TaskOutcome(output)
        raise StatesError("States.TaskFailed", json.dumps(output, default=str))

    def stop(self, handle: Any) -> None:
        if isinstance(handle, _Following):
            try:
                self.backend.call(handle.job.stop, {handle.job.name_key: handle.name})
            except SageMakerError as error:  # already finished: nothing to stop
                log.debug("stop %s %s: %s", handle.job.stop, handle.name, error.message)

    def poll_interval(self, handle: Any) -> float:
        return 0.0 if isinstance(handle, _Done) else 0.05

    def wait(self, handle: Any, seconds: float) -> None:
        ended = self.backend.ended_event(handle.job.kind, handle.name) if isinstance(handle, _Following) else None
        if ended is None or ended.is_set():  # set, yet Describe said running: poll at the interval, never spin
            super().wait(handle, seconds)
        else:  # the next state starts as soon as the job ends, not up to a poll interval later
            ended.wait(seconds)


class SdkSageMaker(Integration):
    """``arn:aws:states:::aws-sdk:sagemaker:<action>``: any operation the backends implement."""

    def __init__(self, backend: SageMakerBackend):
        self.backend = backend

    def start(self, request: TaskRequest) -> Any:
        action = request.key.split(":", 2)[2]
        if "." in action:
            raise StatesError("States.Runtime", f"State {request.state_name!r}: {request.resource}: the emulator runs AWS SDK integrations as request-response only")
        operation = operation_name(action)
        if operation not in service_model().operation_names:
            raise StatesError("States.Runtime", f"State {request.state_name!r}: {action!r} is not a SageMaker API action")
        parameters = _parameters(request)
        try:
            response = self.backend.call(operation, parameters)
        except SageMakerError as error:
            raise states_error(error, sdk=True) from error
        return _Done(iso_timestamps(response))

    def poll(self, handle: Any) -> TaskOutcome | None:
        return TaskOutcome(handle.output)

    def poll_interval(self, handle: Any) -> float:
        return 0.0


def register(integrations: Integrations, backend: SageMakerBackend) -> None:
    """Register every SageMaker resource key the emulator serves, sharing one backend."""
    for operation in SYNC_JOBS:
        integrations.register(f"sagemaker:{operation}", OptimizedSageMaker(backend, operation, sync=False))
        integrations.register(f"sagemaker:{operation}.sync", OptimizedSageMaker(backend, operation, sync=True))
    for operation in REQUEST_RESPONSE:
        integrations.register(f"sagemaker:{operation}", OptimizedSageMaker(backend, operation, sync=False))
    integrations.register("aws-sdk:sagemaker:*", SdkSageMaker(backend))
    log.debug("SageMaker integrations registered (%s)", ", ".join(method_name(o) for o in (*SYNC_JOBS, *REQUEST_RESPONSE)))
