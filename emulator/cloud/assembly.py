"""Read the cloud assembly `cdk synth` writes (cdk.out/) and resolve its templates to local values.

CloudFormation intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split, Fn::If and the
condition functions, Fn::FindInMap, Fn::GetAZs, Fn::Base64, Fn::ImportValue against the assembly's
own exports) and pseudo parameters resolve to stable values: the physical names CloudFormation would
pick (a resource's name property when set, else one derived from the stack and logical id) and ARNs
in AWS format for account 000000000000. The same template always resolves to the same values, so a
definition, an environment variable and an event pattern all agree on a bucket's name.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
# SSM parameters CDK templates read through parameter defaults (the bootstrap version check).
SSM_VALUES = {"/cdk-bootstrap/hnb659fds/version": "30"}


class AssemblyError(Exception):
    """Base of every error reading or resolving a cloud assembly."""


class AssemblyNotFound(AssemblyError):
    def __init__(self, path: Path):
        super().__init__(
            f"cdk.out not found at {path} (no manifest.json): run `make synth` "
            f"(or `python -m emulator synth`) in the project first"
        )


class ManifestError(AssemblyError):
    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}; re-run `make synth` with the pinned CDK CLI (package.json)")


class StackNotFound(AssemblyError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"no stack named {name!r} in the assembly; stacks: {', '.join(known) or 'none'}")


class ResolutionError(AssemblyError):
    """An intrinsic that cannot be resolved locally; ``where`` names the stack and property."""

    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: {why}")
        self.where = where


class UnsupportedIntrinsic(ResolutionError):
    pass


class ImportValueNotFound(ResolutionError):
    pass


class AssetNotFound(AssemblyError):
    def __init__(self, where: str, key: str, path: Path | None = None):
        detail = f" (expected at {path})" if path else ""
        super().__init__(
            f"{where}: asset {key!r} is not in the assembly{detail}; "
            f"cdk.out is incomplete or stale: run `make synth` again"
        )


class _NoValue:
    """AWS::NoValue: removes the property (or list element) it stands for."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class FileAsset:
    """A file asset from ``<stack>.assets.json``: ``path`` is a folder (packaging zip) or a file."""

    hash: str
    path: Path
    packaging: str  # "zip" (a folder CDK zips on publish) or "file" (published as is)
    object_key: str
    display_name: str = ""

    @property
    def is_directory(self) -> bool:
        return self.packaging == "zip" and self.path.is_dir()


@dataclass(frozen=True)
class ImageAsset:
    hash: str
    directory: Path
    repository: str
    image_tag: str
    dockerfile: str | None = None


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict
    cdk_path: str = ""  # Metadata aws:cdk:path, for messages

    def describe(self) -> str:
        return f"{self.logical_id} ({self.type})"


def _sanitize(name: str, *, lower: bool, max_len: int, allowed: str = r"[^A-Za-z0-9-]") -> str:
    cleaned = re.sub(allowed, "-", name)
    cleaned = re.sub("-+", "-", cleaned).strip("-")
    return (cleaned.lower() if lower else cleaned)[:max_len].strip("-")


class Stack:
    """One stack artifact: its template, its assets and a resolver over both."""

    def __init__(self, assembly: CloudAssembly, artifact_id: str, name: str, template_file: Path,
                 assets: dict[str, FileAsset], images: dict[str, ImageAsset]):
        self.assembly = assembly
        self.artifact_id = artifact_id
        self.name = name
        self.template_file = template_file
        try:
            self.template: dict = json.loads(template_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ManifestError(template_file, f"unreadable template ({exc})") from exc
        self.assets = assets
        self.images = images
        self._conditions: dict[str, bool] = {}
        self._physical: dict[str, str] = {}
        self._resolving: set[str] = set()
        self._resources = self._load_resources()

    def __repr__(self) -> str:
        return f"Stack({self.name!r})"

    # -- resources -------------------------------------------------------------------------
    def _load_resources(self) -> dict[str, Resource]:
        raw = self.template.get("Resources") or {}
        resources = {}
        for logical_id, body in raw.items():
            if not isinstance(body, dict) or "Type" not in body:
                raise ManifestError(self.template_file, f"resource {logical_id} has no Type")
            resources[logical_id] = Resource(
                logical_id, body["Type"], body.get("Properties") or {},
                (body.get("Metadata") or {}).get("aws:cdk:path", ""),
            )
        return resources

    @property
    def resources(self) -> dict[str, Resource]:
        """Resources whose Condition (if any) holds."""
        raw = self.template.get("Resources") or {}
        return {
            lid: res for lid, res in self._resources.items()
            if "Condition" not in raw[lid] or self.condition(raw[lid]["Condition"], f"{lid}/Condition")
        }

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == resource_type]

    @property
    def stack_id(self) -> str:
        stable = uuid.uuid5(uuid.NAMESPACE_URL, f"emulator:{self.assembly.region}:{self.name}")
        return f"arn:aws:cloudformation:{self.assembly.region}:{ACCOUNT}:stack/{self.name}/{stable}"

    def asset_for_key(self, object_key: str, where: str) -> FileAsset:
        """The file asset an ``S3Key`` of the assets bucket names (``<hash>.zip``, ``<hash>.py``...)."""
        for asset in self.assembly.all_assets():
            if asset.object_key == object_key:
                if not asset.path.exists():
                    raise AssetNotFound(where, object_key, asset.path)
                return asset
        raise AssetNotFound(where, object_key)

    # -- resolution ------------------------------------------------------------------------
    def resolve(self, value: Any, where: str = "") -> Any:
        """Resolve every intrinsic in ``value``; AWS::NoValue entries are removed."""
        return _Resolver(self, where or self.name).resolve(value, where or self.name)

    def condition(self, name: str, where: str = "") -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise ResolutionError(where or self.name, f"unknown condition {name!r}")
            result = self.resolve(conditions[name], f"{self.name}/Conditions/{name}")
            if not isinstance(result, bool):
                raise ResolutionError(where, f"condition {name!r} is not a boolean: {result!r}")
            self._conditions[name] = result
        return self._conditions[name]

    def parameter(self, name: str, where: str) -> Any:
        params = self.template.get("Parameters") or {}
        if name not in params:
            raise ResolutionError(where, f"Ref to unknown resource or parameter {name!r}")
        if name in self.assembly.parameters:
            return self.assembly.parameters[name]
        spec = params[name]
        if "Default" not in spec:
            raise ResolutionError(
                where, f"parameter {name!r} has no Default; pass a value (deploy --parameters {name}=...)"
            )
        default = spec["Default"]
        if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
            if default not in SSM_VALUES:
                raise ResolutionError(where, f"parameter {name!r} reads SSM parameter {default!r}, "
                                             f"which has no local value; pass one with --parameters")
            return SSM_VALUES[default]
        if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
            return [item.strip() for item in str(default).split(",")]
        return default

    def physical_name(self, logical_id: str, where: str = "") -> str:
        """The name CloudFormation would give the resource (its name property when set)."""
        if logical_id in self._physical:
            return self._physical[logical_id]
        resource = self._resources.get(logical_id)
        if resource is None:
            raise ResolutionError(where or self.name, f"unknown resource {logical_id!r}")
        if logical_id in self._resolving:
            raise ResolutionError(where or self.name, f"circular reference through {logical_id}")
        self._resolving.add(logical_id)
        try:
            name = _physical_name(self, resource)
        finally:
            self._resolving.discard(logical_id)
        self._physical[logical_id] = name
        return name

    def ref(self, logical_id: str, where: str) -> Any:
        if logical_id.startswith("AWS::"):
            return self._pseudo(logical_id, where)
        if logical_id not in self._resources:
            return self.parameter(logical_id, where)
        resource = self._resources[logical_id]
        kind = _KINDS.get(resource.type)
        name = self.physical_name(logical_id, where)
        if kind and kind.ref == "arn":
            return self.arn(resource, name)
        if kind and kind.ref == "url":
            return f"https://sqs.{self.assembly.region}.amazonaws.com/{ACCOUNT}/{name}"
        return name

    def arn(self, resource: Resource, name: str | None = None) -> str:
        name = name if name is not None else self.physical_name(resource.logical_id)
        kind = _KINDS.get(resource.type)
        region = self.assembly.region
        if kind is None:
            service = resource.type.split("::")[1].lower() if resource.type.startswith("AWS::") else "custom"
            return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource.type.split('::')[-1].lower()}/{name}"
        return kind.arn.format(region=region, account=ACCOUNT, name=name)

    def get_att(self, logical_id: str, attribute: str, where: str) -> Any:
        resource = self._resources.get(logical_id)
        if resource is None:
            raise ResolutionError(where, f"Fn::GetAtt of unknown resource {logical_id!r}")
        name = self.physical_name(logical_id, where)
        region = self.assembly.region
        arn = self.arn(resource, name)
        attrs = {
            "Arn": arn,
            "Name": name,
        }
        attrs.update(_extra_attributes(resource.type, name, arn, region))
        if attribute in attrs:
            return attrs[attribute]
        if resource.type.startswith("Custom::") or resource.type == "AWS::CloudFormation::CustomResource":
            # A custom resource's attributes come from its handler, which does not run locally.
            return f"{name}.{attribute}"
        # Unknown attributes of types the emulator does not model still get a stable value.
        if resource.type not in _KINDS:
            return f"{name}.{attribute}"
        raise ResolutionError(where, f"Fn::GetAtt {logical_id}.{attribute}: {resource.type} has no "
                                     f"attribute {attribute!r} in the emulator")

    def _pseudo(self, name: str, where: str) -> Any:
        region = self.assembly.region
        values = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.name,
            "AWS::StackId": self.stack_id,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise ResolutionError(where, f"unknown pseudo parameter {name!r}")
        return values[name]


class _Resolver:
    def __init__(self, stack: Stack, root: str):
        self.stack = stack
        self.root = root

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item, f"{where}/{i}") for i, item in enumerate(value)]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.stack.ref(self._string(arg, f"{where}/Ref"), where)
            # {"Condition": "Name"} inside Fn::And/Or/Not; an IAM-style {"Condition": {...}} is data.
            if key.startswith("Fn::") or (key == "Condition" and isinstance(arg, str)):
                handler = _INTRINSICS.get(key)
                if handler is None:
                    raise UnsupportedIntrinsic(where, f"{key} is not supported by the emulator")
                return handler(self, arg, f"{where}/{key}")
        out = {}
        for key, item in value.items():
            resolved = self.resolve(item, f"{where}/{key}")
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def _string(self, value: Any, where: str) -> str:
        resolved = self.resolve(value, where)
        if not isinstance(resolved, str):
            raise ResolutionError(where, f"expected a string, got {resolved!r}")
        return resolved

    def _list(self, value: Any, where: str) -> list:
        resolved = self.resolve(value, where)
        if not isinstance(resolved, list):
            raise ResolutionError(where, f"expected a list, got {resolved!r}")
        return resolved

    # -- intrinsic functions ---------------------------------------------------------------
    def get_att(self, arg: Any, where: str) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, f"Fn::GetAtt takes [LogicalId, Attribute], got {arg!r}")
        return self.stack.get_att(self._string(arg[0], where), self._string(arg[1], where), where)

    def join(self, arg: Any, where: str) -> str:
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, "Fn::Join takes [delimiter, [values]]")
        delimiter = self._string(arg[0], where)
        parts = self._list(arg[1], where)
        return delimiter.join(_scalar(part, where) for part in parts)

    def sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, str):
            template, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            template = self._string(arg[0], where)
            variables = {k: self.resolve(v, f"{where}/{k}") for k, v in arg[1].items()}
        else:
            raise ResolutionError(where, "Fn::Sub takes a string or [string, {variables}]")

        def substitute(match: re.Match) -> str:
            body = match.group(1)
            if body.startswith("!"):
                return "${" + body[1:] + "}"
            if body in variables:
                return _scalar(variables[body], where)
            if "." in body and not body.startswith("AWS::"):
                logical_id, attribute = body.split(".", 1)
                return _scalar(self.stack.get_att(logical_id, attribute, where), where)
            return _scalar(self.stack.ref(body, where), where)

        return re.sub(r"\$\{([^}]*)\}", substitute, template)

    def select(self, arg: Any, where: str) -> Any:
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, "Fn::Select takes [index, list]")
        index = int(self.resolve(arg[0], where))
        items = self._list(arg[1], where)
        if not 0 <= index < len(items):
            raise ResolutionError(where, f"Fn::Select index {index} out of range for {len(items)} item(s)")
        return items[index]

    def split(self, arg: Any, where: str) -> list[str]:
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, "Fn::Split takes [delimiter, string]")
        return self._string(arg[1], where).split(self._string(arg[0], where))

    def if_(self, arg: Any, where: str) -> Any:
        if not isinstance(arg, list) or len(arg) != 3:
            raise ResolutionError(where, "Fn::If takes [condition, value_if_true, value_if_false]")
        chosen = arg[1] if self.stack.condition(arg[0], where) else arg[2]
        return self.resolve(chosen, where)

    def equals(self, arg: Any, where: str) -> bool:
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, "Fn::Equals takes two values")
        return self.resolve(arg[0], where) == self.resolve(arg[1], where)

    def and_(self, arg: Any, where: str) -> bool:
        return all(self._bool(item, where) for item in self._conditions_list(arg, where))

    def or_(self, arg: Any, where: str) -> bool:
        return any(self._bool(item, where) for item in self._conditions_list(arg, where))

    def not_(self, arg: Any, where: str) -> bool:
        items = self._conditions_list(arg, where)
        if len(items) != 1:
            raise ResolutionError(where, "Fn::Not takes one condition")
        return not self._bool(items[0], where)

    def condition_ref(self, arg: Any, where: str) -> bool:
        return self.stack.condition(self._string(arg, where), where)

    def _conditions_list(self, arg: Any, where: str) -> list:
        if not isinstance(arg, list):
            raise ResolutionError(where, "expected a list of conditions")
        return arg

    def _bool(self, item: Any, where: str) -> bool:
        value = self.resolve(item, where)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ResolutionError(where, f"expected a condition, got {value!r}")
        return value

    def find_in_map(self, arg: Any, where: str) -> Any:
        if not isinstance(arg, list) or len(arg) not in (3, 4):
            raise ResolutionError(where, "Fn::FindInMap takes [map, top-level key, second-level key]")
        names = [self._string(a, where) for a in arg[:3]]
        mappings = self.stack.template.get("Mappings") or {}
        try:
            return mappings[names[0]][names[1]][names[2]]
        except KeyError:
            if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                return self.resolve(arg[3]["DefaultValue"], where)
            raise ResolutionError(where, f"Fn::FindInMap: no entry {'/'.join(names)}") from None

    def get_azs(self, arg: Any, where: str) -> list[str]:
        region = self.resolve(arg, where) or self.stack.assembly.region
        return [f"{region}{zone}" for zone in "abc"]

    def base64(self, arg: Any, where: str) -> str:
        return base64.b64encode(self._string(arg, where).encode()).decode()

    def to_json_string(self, arg: Any, where: str) -> str:
        return json.dumps(self.resolve(arg, where), separators=(",", ":"))

    def length(self, arg: Any, where: str) -> int:
        return len(self._list(arg, where))

    def import_value(self, arg: Any, where: str) -> Any:
        name = self._string(arg, where)
        for stack in self.stack.assembly.stacks:
            for output_id, output in (stack.template.get("Outputs") or {}).items():
                export = output.get("Export") or {}
                if "Name" in export and stack.resolve(export["Name"], f"{stack.name}/Outputs/{output_id}") == name:
                    return stack.resolve(output["Value"], f"{stack.name}/Outputs/{output_id}/Value")
        raise ImportValueNotFound(
            where, f"Fn::ImportValue {name!r}: no stack in this assembly exports it; the emulator only "
                   f"resolves exports of stacks synthesized together (deploy them in one app)"
        )


_INTRINSICS = {
    "Fn::GetAtt": _Resolver.get_att,
    "Fn::Join": _Resolver.join,
    "Fn::Sub": _Resolver.sub,
    "Fn::Select": _Resolver.select,
    "Fn::Split": _Resolver.split,
    "Fn::If": _Resolver.if_,
    "Fn::Equals": _Resolver.equals,
    "Fn::And": _Resolver.and_,
    "Fn::Or": _Resolver.or_,
    "Fn::Not": _Resolver.not_,
    "Condition": _Resolver.condition_ref,
    "Fn::FindInMap": _Resolver.find_in_map,
    "Fn::GetAZs": _Resolver.get_azs,
    "Fn::Base64": _Resolver.base64,
    "Fn::ToJsonString": _Resolver.to_json_string,
    "Fn::Length": _Resolver.length,
    "Fn::ImportValue": _Resolver.import_value,
}


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ResolutionError(where, f"expected a string in a Join/Sub, got {value!r}")


# -- physical names and ARNs per resource type ------------------------------------------------
@dataclass(frozen=True)
class _Kind:
    name_property: str | None
    arn: str
    ref: str = "name"  # what Ref returns: "name", "arn" or "url"
    lower: bool = False
    max_len: int = 64


_KINDS: dict[str, _Kind] = {
    "AWS::S3::Bucket": _Kind("BucketName", "arn:aws:s3:::{name}", lower=True, max_len=63),
    "AWS::Lambda::Function": _Kind("FunctionName", "arn:aws:lambda:{region}:{account}:function:{name}"),
    "AWS::StepFunctions::StateMachine": _Kind(
        "StateMachineName", "arn:aws:states:{region}:{account}:stateMachine:{name}", ref="arn", max_len=80),
    "AWS::SNS::Topic": _Kind("TopicName", "arn:aws:sns:{region}:{account}:{name}", ref="arn", max_len=256),
    "AWS::SQS::Queue": _Kind("QueueName", "arn:aws:sqs:{region}:{account}:{name}", ref="url", max_len=80),
    "AWS::IAM::Role": _Kind("RoleName", "arn:aws:iam::{account}:role/{name}"),
    "AWS::IAM::ManagedPolicy": _Kind("ManagedPolicyName", "arn:aws:iam::{account}:policy/{name}", ref="arn"),
    "AWS::IAM::Policy": _Kind("PolicyName", "arn:aws:iam::{account}:policy/{name}"),
    "AWS::IAM::InstanceProfile": _Kind("InstanceProfileName", "arn:aws:iam::{account}:instance-profile/{name}"),
    "AWS::KMS::Key": _Kind(None, "arn:aws:kms:{region}:{account}:key/{name}"),
    "AWS::KMS::Alias": _Kind("AliasName", "arn:aws:kms:{region}:{account}:{name}"),
    "AWS::Logs::LogGroup": _Kind("LogGroupName", "arn:aws:logs:{region}:{account}:log-group:{name}:*", max_len=512),
    "AWS::Events::Rule": _Kind("Name", "arn:aws:events:{region}:{account}:rule/{name}"),
    "AWS::Events::EventBus": _Kind("Name", "arn:aws:events:{region}:{account}:event-bus/{name}"),
    "AWS::CloudWatch::Alarm": _Kind("AlarmName", "arn:aws:cloudwatch:{region}:{account}:alarm:{name}", max_len=255),
    "AWS::Lambda::LayerVersion": _Kind("LayerName", "arn:aws:lambda:{region}:{account}:layer:{name}:1", ref="arn"),
    "AWS::Lambda::Alias": _Kind("Name", "arn:aws:lambda:{region}:{account}:function:{name}", ref="arn"),
    "AWS::SageMaker::ModelPackageGroup": _Kind(
        "ModelPackageGroupName", "arn:aws:sagemaker:{region}:{account}:model-package-group/{name}", ref="arn",
        max_len=63),
    "AWS::SageMaker::Model": _Kind("ModelName", "arn:aws:sagemaker:{region}:{account}:model/{name}", ref="arn",
                                   max_len=63),
    "AWS::SageMaker::EndpointConfig": _Kind(
        "EndpointConfigName", "arn:aws:sagemaker:{region}:{account}:endpoint-config/{name}", ref="arn", max_len=63),
    "AWS::SageMaker::Endpoint": _Kind("EndpointName", "arn:aws:sagemaker:{region}:{account}:endpoint/{name}",
                                      ref="arn", max_len=63),
    "AWS::ECR::Repository": _Kind("RepositoryName", "arn:aws:ecr:{region}:{account}:repository/{name}", lower=True),
    "AWS::SSM::Parameter": _Kind("Name", "arn:aws:ssm:{region}:{account}:parameter/{name}"),
}


def _physical_name(stack: Stack, resource: Resource) -> str:
    kind = _KINDS.get(resource.type)
    where = f"{stack.name}/{resource.logical_id}"
    if kind and kind.name_property and kind.name_property in resource.properties:
        name = stack.resolve(resource.properties[kind.name_property], f"{where}/{kind.name_property}")
        if not isinstance(name, str):
            raise ResolutionError(where, f"{kind.name_property} is not a string: {name!r}")
        if resource.type == "AWS::SNS::Topic" and resource.properties.get("FifoTopic") and not name.endswith(".fifo"):
            name += ".fifo"
        return name
    if resource.type == "AWS::KMS::Key":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"emulator:{stack.name}:{resource.logical_id}"))
    lower = kind.lower if kind else False
    max_len = kind.max_len if kind else 64
    generated = _sanitize(f"{stack.name}-{resource.logical_id}", lower=lower, max_len=max_len)
    if resource.type == "AWS::Logs::LogGroup":
        return f"/aws/local/{generated}"
    if resource.type == "AWS::SNS::Topic" and resource.properties.get("FifoTopic"):
        generated = generated[: max_len - 5] + ".fifo"
    return generated


def _extra_attributes(resource_type: str, name: str, arn: str, region: str) -> dict[str, str]:
    if resource_type == "AWS::S3::Bucket":
        return {
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{region}.amazonaws.com",
        }
    if resource_type == "AWS::StepFunctions::StateMachine":
        return {"StateMachineRevisionId": arn}
    if resource_type == "AWS::SNS::Topic":
        return {"TopicArn": arn, "TopicName": name}
    if resource_type == "AWS::SQS::Queue":
        return {"QueueName": name, "QueueUrl": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{name}"}
    if resource_type == "AWS::IAM::Role":
        return {"RoleId": "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, arn).hex[:17].upper()}
    if resource_type == "AWS::KMS::Key":
        return {"KeyId": name}
    if resource_type == "AWS::SageMaker::ModelPackageGroup":
        return {"ModelPackageGroupArn": arn}
    if resource_type == "AWS::SageMaker::Model":
        return {"ModelName": name}
    if resource_type in ("AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"):
        return {"EndpointConfigName": name, "EndpointName": name}
    if resource_type == "AWS::Lambda::LayerVersion":
        return {"LayerVersionArn": arn}
    if resource_type == "AWS::ECR::Repository":
        return {"RepositoryUri": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{name}"}
    if resource_type == "AWS::SSM::Parameter":
        return {"Type": "String", "Value": name}
    return {}


# -- the assembly ---------------------------------------------------------------------------
@dataclass
class CloudAssembly:
    root: Path
    region: str = DEFAULT_REGION
    parameters: dict[str, Any] = field(default_factory=dict)
    stacks: list[Stack] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, *, region: str = DEFAULT_REGION, parameters: dict | None = None) -> CloudAssembly:
        root = Path(path).resolve()
        if not (root / "manifest.json").is_file():
            raise AssemblyNotFound(root)
        assembly = cls(root, region, dict(parameters or {}))
        assembly._read_manifest(root)
        if not assembly.stacks:
            raise ManifestError(root / "manifest.json", "the assembly has no stacks")
        return assembly

    def _read_manifest(self, directory: Path) -> None:
        manifest_file = directory / "manifest.json"
        try:
            manifest = json.loads(manifest_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ManifestError(manifest_file, f"unreadable manifest ({exc})") from exc
        artifacts = manifest.get("artifacts") or {}
        asset_manifests = {
            aid: art for aid, art in artifacts.items() if art.get("type") == "cdk:asset-manifest"
        }
        for artifact_id, artifact in artifacts.items():
            kind = artifact.get("type")
            props = artifact.get("properties") or {}
            if kind == "cdk:cloud-assembly":  # a Stage: a nested assembly folder
                self._read_manifest(directory / props["directoryName"])
            elif kind == "aws:cloudformation:stack":
                assets: dict[str, FileAsset] = {}
                images: dict[str, ImageAsset] = {}
                for dep in artifact.get("dependencies") or []:
                    if dep in asset_manifests:
                        file = directory / asset_manifests[dep]["properties"]["file"]
                        more_assets, more_images = _read_asset_manifest(file, self.region)
                        assets.update(more_assets)
                        images.update(more_images)
                name = props.get("stackName") or artifact_id
                self.stacks.append(Stack(self, artifact_id, name, directory / props["templateFile"], assets, images))

    def stack(self, name: str) -> Stack:
        for stack in self.stacks:
            if name in (stack.name, stack.artifact_id):
                return stack
        raise StackNotFound(name, [s.name for s in self.stacks])

    def resources(self, resource_type: str | None = None) -> Iterator[tuple[Stack, Resource]]:
        for stack in self.stacks:
            for resource in stack.resources.values():
                if resource_type is None or resource.type == resource_type:
                    yield stack, resource

    def all_assets(self) -> list[FileAsset]:
        seen: dict[str, FileAsset] = {}
        for stack in self.stacks:
            seen.update(stack.assets)
        return list(seen.values())

    def all_images(self) -> list[ImageAsset]:
        seen: dict[str, ImageAsset] = {}
        for stack in self.stacks:
            seen.update(stack.images)
        return list(seen.values())


def _local(text: str, region: str = DEFAULT_REGION) -> str:
    """Substitute the ${AWS::...} placeholders asset manifests use."""
    return (text.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", region)
            .replace("${AWS::Partition}", "aws").replace("${AWS::URLSuffix}", "amazonaws.com"))


def _read_asset_manifest(file: Path, region: str) -> tuple[dict[str, FileAsset], dict[str, ImageAsset]]:
    try:
        manifest = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(file, f"unreadable asset manifest ({exc})") from exc
    assets = {}
    for asset_hash, entry in (manifest.get("files") or {}).items():
        source = entry.get("source") or {}
        if "path" not in source:  # an executable-built asset: nothing on disk to stage
            continue
        destinations = list((entry.get("destinations") or {}).values())
        key = destinations[0]["objectKey"] if destinations else asset_hash
        assets[asset_hash] = FileAsset(
            asset_hash, file.parent / source["path"], source.get("packaging", "file"), key,
            entry.get("displayName", ""),
        )
    images = {}
    for asset_hash, entry in (manifest.get("dockerImages") or {}).items():
        source = entry.get("source") or {}
        destinations = list((entry.get("destinations") or {}).values())
        if "directory" not in source or not destinations:
            continue
        images[asset_hash] = ImageAsset(
            asset_hash, file.parent / source["directory"], _local(destinations[0]["repositoryName"], region),
            destinations[0]["imageTag"], source.get("dockerFile"),
        )
    return assets, images
