"""CloudWatch through the AWS SDK integration: "aws-sdk:cloudwatch:putMetricData" over the local
metric store. The alarms watching the namespace written to are evaluated at once (CloudWatch
evaluates every minute; locally the put is the moment something can change), so a state machine
that publishes a breaching value finds its alarm in ALARM and its SNS actions run. Errors are
``CloudWatch.<Code>Exception``, as the integration names modelled errors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import Integration, Integrations, TaskOutcome, TaskRequest
from emulator.integrations.sdk import http_metadata
from emulator.services.cloudwatch import CloudWatchBackend, CloudWatchError

ACTIONS = ("putMetricData",)


def _timestamp(value: Any) -> Any:
    """An ISO 8601 text (what a state passes) as epoch seconds; numbers and datetimes unchanged."""
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value).timestamp()
        except ValueError:
            raise StatesError("CloudWatch.InvalidParameterValueException",
                              f"Timestamp {value!r} is not an ISO 8601 time") from None
    return value


class PutMetricData(Integration):
    def __init__(self, backend: CloudWatchBackend):
        self.backend = backend

    def start(self, request: TaskRequest) -> Any:
        params = request.parameters if isinstance(request.parameters, dict) else {}
        request_id = str(uuid.uuid4())
        data = params.get("MetricData")
        if not isinstance(params.get("Namespace"), str) or not isinstance(data, list):
            raise StatesError("CloudWatch.MissingRequiredParameterException",
                              f"State {request.state_name!r}: putMetricData needs Namespace (a string) and MetricData "
                              f"(a list) (Service: CloudWatch, Status Code: 400, Request ID: {request_id})")
        if len(data) > 1000:
            raise StatesError("CloudWatch.InvalidParameterValueException",
                              f"MetricData holds {len(data)} items; PutMetricData takes at most 1000")
        datums = [{**d, **({"Timestamp": _timestamp(d["Timestamp"])} if "Timestamp" in d else {})}
                  for d in data if isinstance(d, dict)]
        try:
            self.backend.put_metric_data(Namespace=params["Namespace"], MetricData=datums)
        except (CloudWatchError, KeyError) as error:
            code = getattr(error, "code", "InvalidParameterValue")
            raise StatesError(f"CloudWatch.{code}Exception",
                              f"{getattr(error, 'message', error)} (Service: CloudWatch, Status Code: 400, "
                              f"Request ID: {request_id})") from None
        self.backend.evaluate_alarms(self.backend.alarms_watching(params["Namespace"]))
        return http_metadata(request_id, content_type="text/xml")

    def poll(self, handle: Any) -> TaskOutcome:
        return TaskOutcome(handle)


def register(integrations: Integrations, backend: CloudWatchBackend) -> None:
    for action in ACTIONS:
        integrations.register(f"aws-sdk:cloudwatch:{action}", PutMetricData(backend))
