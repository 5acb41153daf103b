"""Read the cloud assembly `cdk synth` writes (cdk.out/) and resolve its templates to local values.

CloudFormation intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split, Fn::If and the
condition functions, Fn::FindInMap, Fn::GetAZs, Fn::Base64, Fn::ImportValue against the assembly's
own exports) and pseudo parameters resolve to stable values: the physical names CloudFormation would
pick (a resource's name property when set, else one derived from the stack and logical id) and ARNs
in AWS format for account 000000000000. The same template always resolves to the same values, so a
definition, an environment variable and an event pattern all agree on a bucket's name.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.aws.arns import ACCOUNT, DEFAULT_REGION
from emulator.cloud.errors import (  # noqa: F401 - the assembly's errors, importable from here
    AssemblyError,
    AssemblyNotFound,
    AssetNotFound,
    ImportValueNotFound,
    ManifestError,
    ResolutionError,
    StackNotFound,
    UnsupportedIntrinsic,
)
from emulator.cloud.intrinsics import NO_VALUE, IntrinsicResolver
from emulator.cloud.names import KINDS, extra_attributes, physical_name

log = logging.getLogger(__name__)

# SSM parameters CDK templates read through parameter defaults (the bootstrap version check).
SSM_VALUES = {"/cdk-bootstrap/hnb659fds/version": "30"}


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
        return IntrinsicResolver(self, where or self.name).resolve(value, where or self.name)

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
            name = physical_name(self, resource)
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
        kind = KINDS.get(resource.type)
        name = self.physical_name(logical_id, where)
        if kind and kind.ref == "arn":
            return self.arn(resource, name)
        if kind and kind.ref == "url":
            return f"https://sqs.{self.assembly.region}.amazonaws.com/{ACCOUNT}/{name}"
        return name

    def arn(self, resource: Resource, name: str | None = None) -> str:
        name = name if name is not None else self.physical_name(resource.logical_id)
        kind = KINDS.get(resource.type)
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
        attrs.update(extra_attributes(resource.type, name, arn, region))
        if attribute in attrs:
            return attrs[attribute]
        if resource.type.startswith("Custom::") or resource.type == "AWS::CloudFormation::CustomResource":
            # A custom resource's attributes come from its handler, which does not run locally.
            return f"{name}.{attribute}"
        # Unknown attributes of types the emulator does not model still get a stable value.
        if resource.type not in KINDS:
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
