"""The hosting resources: Model, EndpointConfig and Endpoint, each with its record and its Describe
answer, and the blue/green traffic shift an endpoint advances through (hosting.py runs the API)."""

from __future__ import annotations

import copy
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from emulator.services.sagemaker import serving

log = logging.getLogger("emulator.services.sagemaker.hosting")

IN_PROGRESS = ("Creating", "Updating")


def moment(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


# -- resources --------------------------------------------------------------------------------


@dataclass
class Model:
    name: str
    arn: str
    creation_time: dt.datetime
    spec: dict  # PrimaryContainer or Containers, ExecutionRoleArn, VpcConfig, ... as requested

    @property
    def containers(self) -> list[dict]:
        """The containers that serve, in invocation order (several: a serial inference pipeline)."""
        return serving.model_containers(self.spec)

    def describe(self) -> dict:
        return {"ModelName": self.name, "ModelArn": self.arn, "CreationTime": self.creation_time, **copy.deepcopy(self.spec)}

    @classmethod
    def from_record(cls, record: dict) -> Model:
        spec = {k: v for k, v in record.items() if k not in ("ModelName", "ModelArn", "CreationTime")}
        return cls(record["ModelName"], record["ModelArn"], record["CreationTime"], spec)


@dataclass
class EndpointConfig:
    name: str
    arn: str
    creation_time: dt.datetime
    variants: list[dict]
    spec: dict = field(default_factory=dict)  # DataCaptureConfig, KmsKeyId, ...

    def describe(self) -> dict:
        return {"EndpointConfigName": self.name, "EndpointConfigArn": self.arn, "CreationTime": self.creation_time,
                "ProductionVariants": copy.deepcopy(self.variants), **copy.deepcopy(self.spec)}

    @classmethod
    def from_record(cls, record: dict) -> EndpointConfig:
        spec = {k: v for k, v in record.items()
                if k not in ("EndpointConfigName", "EndpointConfigArn", "CreationTime", "ProductionVariants")}
        return cls(record["EndpointConfigName"], record["EndpointConfigArn"], record["CreationTime"],
                   record["ProductionVariants"], spec)


@dataclass
class Endpoint:
    """An endpoint and what serves it: ``live`` variants, and ``pending`` ones during a change
    (times in ``pending`` are epoch seconds: the invoke server does arithmetic on them)."""

    name: str
    arn: str
    config_name: str
    status: str
    creation_time: dt.datetime
    last_modified_time: dt.datetime
    failure_reason: str | None = None
    production_variants: list[dict] = field(default_factory=list)
    data_capture: dict | None = None
    last_deployment_config: dict | None = None
    live: list[dict] = field(default_factory=list)
    pending: dict | None = None
    deployment_config: dict | None = None  # CreateEndpoint's, kept, never described
    previous: dict | None = None  # what served before the last change: {EndpointConfigName, Variants, ProductionVariants}

    @property
    def unprepared(self) -> bool:
        """A change requested whose variants nobody has prepared yet."""
        return self.pending is not None and self.pending.get("ShiftStart") is None

    def describe(self) -> dict:
        out: dict[str, Any] = {
            "EndpointName": self.name, "EndpointArn": self.arn, "EndpointConfigName": self.config_name,
            "EndpointStatus": self.status, "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
        }
        if self.production_variants:
            out["ProductionVariants"] = copy.deepcopy(self.production_variants)
        if self.data_capture:
            out["DataCaptureConfig"] = dict(self.data_capture)
        if self.last_deployment_config:
            out["LastDeploymentConfig"] = copy.deepcopy(self.last_deployment_config)
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        pending = self.pending
        if pending and self.status == "Updating":
            since = moment(pending.get("ShiftStart") or pending["Requested"])
            out["PendingDeploymentSummary"] = {
                "EndpointConfigName": pending["EndpointConfigName"],
                "ProductionVariants": [
                    {**variant_summary(v, since),
                     "VariantStatus": [{"Status": "Baking" if pending.get("ShiftStart") else "Creating", "StartTime": since}]}
                    for v in pending["Variants"]
                ],
                "StartTime": moment(pending["Requested"]),
            }
        return out

    def summary(self) -> dict:
        return {"EndpointName": self.name, "EndpointArn": self.arn, "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time, "EndpointStatus": self.status}

    def to_record(self) -> dict:
        record = {k: v for k, v in self.describe().items() if k != "PendingDeploymentSummary"}
        record["_hosting"] = {"Variants": self.live, "Pending": self.pending, "DeploymentConfig": self.deployment_config,
                              "Previous": self.previous}
        return record

    @classmethod
    def from_record(cls, record: dict) -> Endpoint:
        hosting = serving.serving_state(record)
        return cls(
            record["EndpointName"], record["EndpointArn"], record["EndpointConfigName"], record["EndpointStatus"],
            record["CreationTime"], record["LastModifiedTime"], record.get("FailureReason"),
            record.get("ProductionVariants") or [], record.get("DataCaptureConfig"),
            record.get("LastDeploymentConfig"), hosting.get("Variants") or [], hosting.get("Pending"),
            hosting.get("DeploymentConfig"), hosting.get("Previous"),
        )

    def fail(self, reason: str) -> None:
        self.pending = None
        self.last_modified_time = dt.datetime.now(dt.UTC)
        if self.status == "Creating":
            self.status = "Failed"
            self.failure_reason = reason
        else:  # a failed update leaves the old fleet serving
            self.status = "InService"
            self.failure_reason = f"Update to endpoint config {self.config_name!r} failed: {reason}"

    def rollback_alarms(self) -> list[str]:
        """The alarms of the update in progress (AutoRollbackConfiguration), while it shifts or bakes."""
        pending = self.pending
        if not pending or pending.get("ShiftStart") is None or not self.live:
            return []
        rollback = (pending.get("DeploymentConfig") or {}).get("AutoRollbackConfiguration") or {}
        return [alarm["AlarmName"] for alarm in rollback.get("Alarms") or []]

    def roll_back(self, alarms: list[str], now: float) -> None:
        """As SageMaker does when a rollback alarm fires: all traffic back on the old fleet, the new
        one removed, InService on the previous config, the reason in FailureReason."""
        pending = self.pending
        share = serving.new_traffic_share(pending, now)
        self.pending = None
        self.status = "InService"
        self.last_modified_time = moment(now)
        self.failure_reason = (
            f"Automatic rollback: alarm(s) {', '.join(alarms)} went into ALARM while the update to endpoint config "
            f"{pending['EndpointConfigName']!r} was shifting traffic or baking (new fleet at {share:.0%} of traffic); "
            f"endpoint config {self.config_name!r} serves all traffic again")
        log.warning("endpoint %s rolled back: %s", self.name, self.failure_reason)

    def advance(self, now: float) -> bool:
        """Move Creating/Updating on once the traffic shift is over; True if anything changed."""
        pending = self.pending
        if not pending or pending.get("ShiftStart") is None:
            return False
        if self.live and now < pending["ShiftStart"] + pending["End"]:
            return False
        if self.live:
            self.previous = {"EndpointConfigName": self.config_name, "Variants": self.live,
                             "ProductionVariants": self.production_variants}
        self.live = pending["Variants"]
        self.pending = None
        self.config_name = pending["EndpointConfigName"]
        capture = next((v["DataCapture"] for v in self.live if v.get("DataCapture")), None)
        self.data_capture = capture_summary(capture) if capture else None  # the new config's
        self.production_variants = [variant_summary(v, moment(pending["ShiftStart"])) for v in pending["Variants"]]
        self.status = "InService"
        self.last_modified_time = moment(now)
        log.debug("endpoint %s InService with config %s", self.name, pending["EndpointConfigName"])
        return True


# -- the backend ------------------------------------------------------------------------------


def variant_summary(variant: dict, since: dt.datetime) -> dict:
    return {
        "VariantName": variant["VariantName"],
        "DeployedImages": [{"SpecifiedImage": variant["Image"], "ResolvedImage": variant["Image"], "ResolutionTime": since}],
        "CurrentWeight": variant["Weight"], "DesiredWeight": variant["Weight"],
        "CurrentInstanceCount": variant["InstanceCount"], "DesiredInstanceCount": variant["InstanceCount"],
    }


def capture_summary(capture: dict) -> dict:
    return {"EnableCapture": bool(capture.get("EnableCapture", True)), "CaptureStatus": "Started",
            "CurrentSamplingPercentage": capture.get("InitialSamplingPercentage", 100),
            "DestinationS3Uri": capture.get("DestinationS3Uri", "")}


def recorded_deployment(deployment: dict) -> dict:
    return copy.deepcopy(deployment)
