"""The SageMaker model registry, locally: model package groups and (versioned) model packages."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from emulator.aws.arns import resource_name
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.exceptions import (
    ModelPackageGroupExists,
    ModelPackageGroupNotFound,
    ModelPackageNotFound,
    ResourceLimitExceeded,
    ValidationException,
)
from emulator.services.sagemaker.listing import in_window, page

log = logging.getLogger("emulator.services.sagemaker.registry")

GROUPS, PACKAGES = "model-package-groups", "model-packages"  # record kinds
STATE_CHANGE = "SageMaker Model Package State Change"  # the registry's EventBridge detail-type
MAX_VERSIONS = 10000
_PACKAGE_ARN = re.compile(r"^arn:[\w-]+:sagemaker:[\w-]+:\d{12}:model-package/(?P<name>[^/]+)(?:/(?P<v>\d+))?$")
_SUMMARY_KEYS = ("ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn",
                 "ModelPackageDescription", "CreationTime", "ModelPackageStatus", "ModelApprovalStatus",
                 "ModelPackageRegistrationType")


@dataclass
class ModelPackageGroup:
    name: str
    arn: str
    creation_time: dt.datetime
    description: str | None = None
    latest_version: int = 0  # the last version handed out (never described)
    status: str = "Completed"

    def describe(self) -> dict:
        out = {"ModelPackageGroupName": self.name, "ModelPackageGroupArn": self.arn, "CreationTime": self.creation_time,
               "ModelPackageGroupStatus": self.status, "CreatedBy": {"UserProfileName": "local"}}
        if self.description:
            out["ModelPackageGroupDescription"] = self.description
        return out

    def to_record(self) -> dict:
        return {**self.describe(), "_LatestVersion": self.latest_version}

    @classmethod
    def from_record(cls, record: dict) -> ModelPackageGroup:
        return cls(record["ModelPackageGroupName"], record["ModelPackageGroupArn"], record["CreationTime"],
                   record.get("ModelPackageGroupDescription"), int(record.get("_LatestVersion", 0)),
                   record.get("ModelPackageGroupStatus", "Completed"))


@dataclass
class ModelPackage:
    """A registered model: versioned (in a group) or unversioned; ``fields`` is its Describe answer."""

    fields: dict

    @property
    def arn(self) -> str:
        return self.fields["ModelPackageArn"]

    @property
    def status(self) -> str:
        return self.fields["ModelPackageStatus"]

    @property
    def key(self) -> str:
        """Its record key: ``<group>.<version>``, or ``_unversioned.<name>``."""
        version = self.fields.get("ModelPackageVersion")
        return f"{self.fields['ModelPackageName']}.{version}" if version else f"_unversioned.{self.fields['ModelPackageName']}"

    def describe(self) -> dict:
        return copy.deepcopy(self.fields)

    def summary(self) -> dict:
        return {k: self.fields[k] for k in _SUMMARY_KEYS if k in self.fields}


def package_key(name_or_arn: str) -> str:
    """The record key of a package named by ARN (``.../model-package/<group>/<version>``) or name."""
    match = _PACKAGE_ARN.match(name_or_arn)
    if match:
        name, version = match.group("name"), match.group("v")
        return f"{name}.{version}" if version else f"_unversioned.{name}"
    return f"_unversioned.{name_or_arn}"


class RegistryBackend:
    """Model package groups and model packages of one local account."""

    def __init__(self, context: SageMakerContext):
        self.context = context
        self.records = context.records()

    # -- groups ---------------------------------------------------------------------------------

    def create_model_package_group(self, ModelPackageGroupName: str, ModelPackageGroupDescription: str | None = None,
                                   Tags: list | None = None) -> dict:
        arn = self.context.arn("model-package-group", ModelPackageGroupName)
        group = ModelPackageGroup(ModelPackageGroupName, arn, dt.datetime.now(dt.UTC), ModelPackageGroupDescription)
        with self.records.lock(GROUPS, ModelPackageGroupName):
            if self.records.exists(GROUPS, ModelPackageGroupName):
                raise ModelPackageGroupExists(arn)
            self.records.write(GROUPS, ModelPackageGroupName, group.to_record())
        return {"ModelPackageGroupArn": arn}

    def group(self, name_or_arn: str) -> ModelPackageGroup:
        name = resource_name(name_or_arn)
        record = self.records.read(GROUPS, name)
        if record is None:
            raise ModelPackageGroupNotFound(self.context.arn("model-package-group", name))
        return ModelPackageGroup.from_record(record)

    def describe_model_package_group(self, ModelPackageGroupName: str) -> dict:
        return self.group(ModelPackageGroupName).describe()

    def list_model_package_groups(self, CreationTimeAfter: Any = None, CreationTimeBefore: Any = None,
                                  MaxResults: int | None = None, NameContains: str | None = None,
                                  NextToken: str | None = None, SortBy: str = "CreationTime",
                                  SortOrder: str = "Ascending", CrossAccountFilterOption: str | None = None) -> dict:
        rows = []
        for record in self.records.all(GROUPS):
            group = ModelPackageGroup.from_record(record).describe()
            if NameContains and NameContains.lower() not in group["ModelPackageGroupName"].lower():
                continue
            if not in_window(group["CreationTime"], CreationTimeAfter, CreationTimeBefore):
                continue
            rows.append({k: group[k] for k in ("ModelPackageGroupName", "ModelPackageGroupArn",
                                               "ModelPackageGroupDescription", "CreationTime",
                                               "ModelPackageGroupStatus") if k in group})
        rows.sort(key=lambda r: r["ModelPackageGroupName"] if SortBy == "Name" else r["CreationTime"],
                  reverse=SortOrder == "Descending")
        return page(rows, NextToken, MaxResults, "ModelPackageGroupSummaryList")

    # -- packages -------------------------------------------------------------------------------

    def create_model_package(self, ModelPackageGroupName: str | None = None, ModelPackageName: str | None = None,
                             ModelApprovalStatus: str | None = None, **rest: Any) -> dict:
        if bool(ModelPackageGroupName) == bool(ModelPackageName):
            raise ValidationException(
                "Specify exactly one of ModelPackageGroupName (a versioned package) and ModelPackageName "
                "(an unversioned package)."
            )
        rest.pop("ClientToken", None)
        rest.pop("Tags", None)
        now = dt.datetime.now(dt.UTC)
        if ModelPackageName:
            fields: dict[str, Any] = {"ModelPackageName": ModelPackageName,
                                      "ModelPackageArn": self.context.arn("model-package", ModelPackageName)}
        else:
            name = self.group(ModelPackageGroupName).name
            with self.records.lock(GROUPS, name):
                group = self.group(name)
                if group.latest_version >= MAX_VERSIONS:
                    raise ResourceLimitExceeded(f"Model package group {name} has reached its limit of versions.")
                group.latest_version += 1
                self.records.write(GROUPS, name, group.to_record())
            version = group.latest_version
            fields = {"ModelPackageName": name, "ModelPackageGroupName": name, "ModelPackageVersion": version,
                      "ModelPackageArn": f"{self.context.arn('model-package', name)}/{version}"}
        fields.update({
            "CreationTime": now, "LastModifiedTime": now, "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "CertifyForMarketplace": bool(rest.pop("CertifyForMarketplace", False)),
            "ModelApprovalStatus": ModelApprovalStatus or "PendingManualApproval",
            "CreatedBy": {"UserProfileName": "local"},
            "ModelPackageRegistrationType": rest.pop("ModelPackageRegistrationType", "Logged"),
        })
        fields.update(rest)
        package = ModelPackage(fields)
        self.records.write(PACKAGES, package.key, package.fields)
        log.debug("model package %s registered (%s)", package.arn, fields["ModelApprovalStatus"])
        self._state_changed(package.fields)
        return {"ModelPackageArn": package.arn}

    def package(self, name_or_arn: str) -> ModelPackage:
        record = self.records.read(PACKAGES, package_key(name_or_arn))
        if record is None:
            arn = name_or_arn if name_or_arn.startswith("arn:") else self.context.arn("model-package", name_or_arn)
            raise ModelPackageNotFound(arn)
        return ModelPackage(record)

    def describe_model_package(self, ModelPackageName: str, IncludedData: Any = None) -> dict:
        return self.package(ModelPackageName).describe()

    def update_model_package(self, ModelPackageArn: str, ModelApprovalStatus: str | None = None,
                             ApprovalDescription: str | None = None, CustomerMetadataProperties: dict | None = None,
                             CustomerMetadataPropertiesToRemove: list | None = None, **rest: Any) -> dict:
        key = package_key(ModelPackageArn)
        with self.records.lock(PACKAGES, key):
            fields = self.package(ModelPackageArn).fields
            before = fields["ModelApprovalStatus"]
            if ModelApprovalStatus:
                fields["ModelApprovalStatus"] = ModelApprovalStatus
            if ApprovalDescription is not None:
                fields["ApprovalDescription"] = ApprovalDescription
            if CustomerMetadataProperties:
                fields.setdefault("CustomerMetadataProperties", {}).update(CustomerMetadataProperties)
            for prop in CustomerMetadataPropertiesToRemove or []:
                fields.get("CustomerMetadataProperties", {}).pop(prop, None)
            additional = rest.pop("AdditionalInferenceSpecificationsToAdd", None)
            if additional:
                fields.setdefault("AdditionalInferenceSpecifications", []).extend(additional)
            rest.pop("ClientToken", None)
            fields.update(rest)
            fields["LastModifiedTime"] = dt.datetime.now(dt.UTC)
            fields["LastModifiedBy"] = {"UserProfileName": "local"}
            self.records.write(PACKAGES, key, fields)
        if fields["ModelApprovalStatus"] != before:
            log.info("model package %s: %s -> %s", fields["ModelPackageArn"], before, fields["ModelApprovalStatus"])
            self._state_changed(fields)
        return {"ModelPackageArn": fields["ModelPackageArn"]}

    def _state_changed(self, fields: dict) -> None:
        """EventBridge's "SageMaker Model Package State Change" event, as the registry emits it on a
        registration and on every approval status change (the detail is the package's description)."""
        if self.context.emit_event is None:
            return
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": STATE_CHANGE, "source": "aws.sagemaker",
            "account": self.context.account, "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.context.region, "resources": [fields["ModelPackageArn"]], "detail": _event_detail(fields),
        }
        try:
            self.context.emit_event(event)
        except Exception:
            log.exception("model package %s: its state change event was not delivered", fields["ModelPackageArn"])

    def list_model_packages(self, ModelPackageGroupName: str | None = None, ModelApprovalStatus: str | None = None,
                            SortBy: str = "CreationTime", SortOrder: str = "Ascending", MaxResults: int | None = None,
                            NextToken: str | None = None, NameContains: str | None = None,
                            ModelPackageType: str = "Both", CreationTimeAfter: Any = None,
                            CreationTimeBefore: Any = None) -> dict:
        group = self.group(ModelPackageGroupName).name if ModelPackageGroupName else None
        rows = []
        for record in self.records.all(PACKAGES):
            package = ModelPackage(record)
            versioned = "ModelPackageVersion" in record
            if group and record.get("ModelPackageGroupName") != group:
                continue
            if ModelPackageType == "Versioned" and not versioned or ModelPackageType == "Unversioned" and versioned:
                continue
            if ModelApprovalStatus and record["ModelApprovalStatus"] != ModelApprovalStatus:
                continue
            if NameContains and NameContains.lower() not in record["ModelPackageName"].lower():
                continue
            if not in_window(record["CreationTime"], CreationTimeAfter, CreationTimeBefore):
                continue
            rows.append(package.summary())
        if SortBy == "Name":
            rows.sort(key=lambda r: (r["ModelPackageName"], r.get("ModelPackageVersion", 0)))
        else:
            rows.sort(key=lambda r: (r["CreationTime"], r.get("ModelPackageVersion", 0)))
        if SortOrder == "Descending":
            rows.reverse()
        return page(rows, NextToken, MaxResults, "ModelPackageSummaryList")


def _event_detail(value: Any) -> Any:
    """The package description as an event carries it: times as epoch milliseconds."""
    if isinstance(value, dict):
        return {k: _event_detail(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_event_detail(v) for v in value]
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return value
