"""Deploy a cloud assembly locally, as CloudFormation would: buckets as folders, assets staged,
functions, state machines, rules and topics recorded (cloud/deployment.py) for any process to load.

Every resource the emulator cannot run is listed in ``Deployment.not_emulated`` with its type and
why, never silently skipped.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import shutil
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from emulator.aws.arns import ACCOUNT, DEFAULT_REGION
from emulator.cloud.assembly import (
    AssemblyError,
    CloudAssembly,
    Resource,
    Stack,
)
from emulator.cloud.deployment import (
    Deployment,
    DeploymentNotFound,
    NotEmulated,
    ResourceRecord,
)
from emulator.services.eventbridge import RuleSpec, RuleTargetSpec
from emulator.services.lambda_.functions import FunctionSpec
from emulator.services.s3.store import BucketSpec, LocalS3
from emulator.services.sns import TopicSpec
from emulator.services.stepfunctions.machines import StateMachineSpec
from emulator.storage.layout import Layout

log = logging.getLogger(__name__)

ASSETS_BUCKET = "cdk-hnb659fds-assets-{account}-{region}"
# CDK BucketDeployment markers (Source.data/jsonData with tokens) look like this in asset files.
_MARKER = "<<marker:0xbaba:{}>>"


class DeploymentError(AssemblyError):
    """A resource the emulator models but cannot deploy as written."""


# Why each non-emulated type is not emulated (shown by `deploy --verbose` and kept in the JSON).
_REASONS = {
    "AWS::IAM::": "IAM is not enforced locally: every call is allowed",
    "AWS::KMS::": "objects are stored unencrypted locally",
    "AWS::Logs::": "logs are files under the state folder",
    "AWS::CloudWatch::Alarm": "metric math and anomaly detection alarms are not evaluated locally",
    "AWS::CloudWatch::": "no dashboards locally",
    "AWS::SQS::": "no queues locally (dead-letter queues only receive on delivery failure)",
    "AWS::S3::BucketPolicy": "bucket policies are not enforced locally",
    "AWS::SNS::TopicPolicy": "topic policies are not enforced locally",
    "AWS::SNS::Subscription": "messages go to the outbox file, not to subscribers",
    "AWS::Lambda::Permission": "invoke permissions are not enforced locally",
    "AWS::Lambda::LayerVersion": "layers are not staged",
    "Custom::S3AutoDeleteObjects": "local buckets are folders: delete .emulator/ to clean up",
    "AWS::CloudFormation::Stack": "nested stacks are not deployed locally",
}


def _reason(resource_type: str) -> str:
    for prefix, reason in _REASONS.items():
        if resource_type.startswith(prefix):
            return reason
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return "custom resource handlers do not run locally"
    return "no local emulation for this resource type"


class _Deployer:
    def __init__(self, assembly: CloudAssembly, state_dir: Path):
        self.assembly = assembly
        self.state_dir = state_dir
        self.layout = Layout.at(state_dir)
        self.s3 = LocalS3(self.layout.s3_root, assembly.region)
        self.deployment = Deployment(
            assembly_dir=str(assembly.root), assembly_dirs=[str(assembly.root)], state_dir=str(state_dir),
            region=assembly.region,
            deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
            stacks=[s.name for s in assembly.stacks],
        )

    def run(self) -> Deployment:
        self._stage_assets()
        self.providers = _custom_resource_providers(self.assembly)
        self.staged_layers: set[str] = set()
        deferred: list[tuple[Stack, Resource]] = []
        for stack, resource in self.assembly.resources():
            handler = _HANDLERS.get(resource.type)
            if handler is None:
                self._record_other(stack, resource)
            elif resource.type in _AFTER_BUCKETS:
                deferred.append((stack, resource))
            else:
                handler(self, stack, resource)
        for stack, resource in deferred:
            _HANDLERS[resource.type](self, stack, resource)
        self.deployment.not_emulated = [
            n for n in self.deployment.not_emulated
            if not (n.type == "AWS::Lambda::LayerVersion" and n.logical_id in self.staged_layers)
        ]
        for stack in self.assembly.stacks:
            outputs = stack.template.get("Outputs") or {}
            self.deployment.outputs[stack.name] = {
                oid: stack.resolve(out["Value"], f"{stack.name}/Outputs/{oid}") for oid, out in outputs.items()
            }
        return self.deployment

    # -- assets ----------------------------------------------------------------------------
    def _stage_assets(self) -> None:
        """Put every file asset in the local CDK assets bucket, as `cdk deploy` publishes it, so
        templates that point jobs at asset objects (scripts, zips) find them."""
        bucket = ASSETS_BUCKET.format(account=ACCOUNT, region=self.assembly.region)
        self.s3.create_bucket(bucket)
        for asset in self.assembly.all_assets():
            uri = LocalS3.uri(bucket, asset.object_key)
            if self.s3.exists(uri) or not asset.path.exists():
                continue  # content-addressed: an existing key already holds these bytes
            if asset.path.is_dir():
                with tempfile.TemporaryDirectory() as tmp:
                    archive = shutil.make_archive(str(Path(tmp) / "asset"), "zip", asset.path)
                    self.s3.put_file(uri, Path(archive))
            else:
                target = self.s3.path(uri)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(asset.path, target)  # large layer zips: no copy when on one filesystem
                except OSError:
                    self.s3.put_file(uri, asset.path)

    def _asset_folder(self, stack: Stack, code: dict, where: str, dest: Path) -> Path:
        """Stage a Code/Content {S3Bucket, S3Key} asset as a folder at ``dest`` (replacing it)."""
        asset = stack.asset_for_key(str(code.get("S3Key")), where)
        tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=dest.parent))
        try:
            if asset.path.is_dir():
                shutil.copytree(asset.path, tmp, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif zipfile.is_zipfile(asset.path):
                with zipfile.ZipFile(asset.path) as archive:
                    archive.extractall(tmp)
            else:
                shutil.copy2(asset.path, tmp / asset.path.name)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    # -- resource handlers -----------------------------------------------------------------
    def bucket(self, stack: Stack, resource: Resource) -> None:
        name = stack.physical_name(resource.logical_id)
        self.s3.create_bucket(name)
        props = stack.resolve(resource.properties, f"{stack.name}/{resource.logical_id}")
        eventbridge = (props.get("NotificationConfiguration") or {}).get("EventBridgeConfiguration") or {}
        self.deployment.buckets.append(BucketSpec(
            stack.name, resource.logical_id, name, stack.arn(resource, name),
            eventbridge_enabled=str(eventbridge.get("EventBridgeEnabled", "false")).lower() == "true",
        ))

    def bucket_notifications(self, stack: Stack, resource: Resource) -> None:
        props = stack.resolve(resource.properties, f"{stack.name}/{resource.logical_id}")
        config = props.get("NotificationConfiguration") or {}
        bucket = self.deployment.bucket(props["BucketName"])
        if "EventBridgeConfiguration" in config:
            bucket.eventbridge_enabled = True
        others = [k for k in config if k != "EventBridgeConfiguration" and config[k]]
        if others:
            self.deployment.not_emulated.append(NotEmulated(
                stack.name, resource.logical_id, resource.type,
                f"only EventBridge notifications are emulated; {', '.join(others)} are not delivered"))

    def function(self, stack: Stack, resource: Resource) -> None:
        where = f"{stack.name}/{resource.logical_id}"
        props = stack.resolve(resource.properties, where)
        runtime = str(props.get("Runtime", ""))
        provider_of = self.providers.get((stack.name, resource.logical_id))
        if provider_of:
            self._not_emulated(stack, resource, f"handler of {provider_of}: "
                                                f"{'applied by the local deploy' if provider_of in _HANDLERS else 'custom resource handlers do not run locally'}")
            return
        if not runtime.startswith("python"):
            self._not_emulated(stack, resource, f"runtime {runtime or 'container image'}: only Python "
                                                f"functions run locally")
            return
        name = stack.physical_name(resource.logical_id)
        dest = self.layout.function_dir(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        code = props.get("Code") or {}
        if "ZipFile" in code:
            dest.mkdir(exist_ok=True)
            (dest / "index.py").write_text(code["ZipFile"])  # inline Python code is index.py
        else:
            self._asset_folder(stack, code, f"{where}/Code", dest)
        layer_dirs = []
        for layer_arn in props.get("Layers") or []:
            layer = self._layer_folder(stack, layer_arn)
            if layer:
                layer_dirs.append(str(layer))
        self.deployment.functions.append(FunctionSpec(
            stack.name, resource.logical_id, name, stack.arn(resource, name),
            handler=props.get("Handler", "index.handler"), runtime=runtime, code_dir=str(dest),
            environment={k: str(v) for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()},
            timeout=int(props.get("Timeout", 3)), memory=int(props.get("MemorySize", 128)),
            role_arn=str(props.get("Role", "")), layer_dirs=layer_dirs,
        ))

    def _layer_folder(self, stack: Stack, layer_arn: str) -> Path | None:
        for candidate in stack.of_type("AWS::Lambda::LayerVersion"):
            if stack.ref(candidate.logical_id, stack.name) == layer_arn:
                content = stack.resolve(candidate.properties.get("Content") or {})
                dest = self.layout.layer_dir(candidate.logical_id)
                dest.parent.mkdir(parents=True, exist_ok=True)
                self._asset_folder(stack, content, f"{stack.name}/{candidate.logical_id}", dest)
                self.staged_layers.add(candidate.logical_id)
                return dest
        return None

    def state_machine(self, stack: Stack, resource: Resource) -> None:
        where = f"{stack.name}/{resource.logical_id}"
        props = stack.resolve(resource.properties, where)
        if "DefinitionString" in props:
            definition = props["DefinitionString"]
        elif "Definition" in props:
            definition = json.dumps(props["Definition"])
        elif "DefinitionS3Location" in props:
            location = props["DefinitionS3Location"]
            definition = stack.asset_for_key(location["Key"], f"{where}/DefinitionS3Location").path.read_text()
        else:
            raise DeploymentError(f"{where}: the state machine has no DefinitionString, Definition or "
                                  f"DefinitionS3Location")
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", value if isinstance(value, str) else json.dumps(value))
        try:
            parsed = json.loads(definition)
        except json.JSONDecodeError as exc:
            raise DeploymentError(f"{where}: the resolved definition is not JSON ({exc}); a "
                                  f"DefinitionSubstitutions placeholder may be unfilled") from exc
        name = stack.physical_name(resource.logical_id)
        folder = self.state_dir / "state_machines"
        folder.mkdir(parents=True, exist_ok=True)
        definition_file = folder / f"{name}.asl.json"
        definition_file.write_text(json.dumps(parsed, indent=2))
        self.deployment.state_machines.append(StateMachineSpec(
            stack.name, resource.logical_id, name, stack.arn(resource, name), str(props.get("RoleArn", "")),
            definition=definition, definition_file=str(definition_file),
            type=props.get("StateMachineType", "STANDARD"), timeout_seconds=parsed.get("TimeoutSeconds"),
        ))
        for key in ("LoggingConfiguration", "TracingConfiguration"):
            if key in props:
                self._not_emulated(stack, resource, f"{key} is not emulated (histories are kept on disk)",
                                   suffix=f".{key}")

    def rule(self, stack: Stack, resource: Resource) -> None:
        props = stack.resolve(resource.properties, f"{stack.name}/{resource.logical_id}")
        name = stack.physical_name(resource.logical_id)
        targets = [
            RuleTargetSpec(
                id=t.get("Id", ""), arn=t["Arn"], role_arn=t.get("RoleArn"), input=t.get("Input"),
                input_path=t.get("InputPath"), input_transformer=t.get("InputTransformer"),
                retry_policy=t.get("RetryPolicy"), dead_letter_arn=(t.get("DeadLetterConfig") or {}).get("Arn"),
            )
            for t in props.get("Targets") or []
        ]
        bus = props.get("EventBusName", "default")
        self.deployment.rules.append(RuleSpec(
            stack.name, resource.logical_id, name, stack.arn(resource, name), props.get("EventPattern"),
            state=props.get("State", "ENABLED"), event_bus_name=bus.rsplit("/", 1)[-1],
            schedule_expression=props.get("ScheduleExpression"), targets=targets,
        ))
        # a ScheduleExpression fires under `serve` (services.eventbridge.SchedulePlayer)

    def topic(self, stack: Stack, resource: Resource) -> None:
        name = stack.physical_name(resource.logical_id)
        self.layout.outbox_dir.mkdir(parents=True, exist_ok=True)
        self.deployment.topics.append(TopicSpec(
            stack.name, resource.logical_id, name, stack.arn(resource, name),
            fifo=bool(resource.properties.get("FifoTopic")),
        ))

    def bucket_deployment(self, stack: Stack, resource: Resource) -> None:
        """Custom::CDKBucketDeployment: unzip each source asset into the destination prefix."""
        where = f"{stack.name}/{resource.logical_id}"
        props = stack.resolve(resource.properties, where)
        bucket = props["DestinationBucketName"]
        prefix = props.get("DestinationBucketKeyPrefix", "") or ""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        markers_list = props.get("SourceMarkers") or []
        written: set[str] = set()
        for index, key in enumerate(props.get("SourceObjectKeys") or []):
            asset = stack.asset_for_key(key, f"{where}/SourceObjectKeys/{index}")
            markers = markers_list[index] if index < len(markers_list) else {}
            if str(props.get("Extract", "true")).lower() == "false":
                uri = LocalS3.uri(bucket, prefix + Path(key).name)
                self._put_with_markers(uri, asset.path.read_bytes() if asset.path.is_file() else b"", markers)
                written.add(uri)
                continue
            for rel, data in _asset_files(asset.path):
                if not _included(rel, props.get("Include") or [], props.get("Exclude") or []):
                    continue
                uri = LocalS3.uri(bucket, prefix + rel)
                self._put_with_markers(uri, data, markers)
                written.add(uri)
        if str(props.get("Prune", "true")).lower() == "true" and prefix:
            for uri in self.s3.list(LocalS3.uri(bucket, prefix)):
                rel = uri[len(LocalS3.uri(bucket, prefix)):]
                if uri not in written and _included(rel, [], props.get("Exclude") or []):
                    self.s3.delete(uri)
        elif str(props.get("Prune", "true")).lower() == "true":
            log.warning("%s: Prune without a DestinationBucketKeyPrefix would delete every other object in "
                        "%s; the local deploy keeps them", where, bucket)
        log.info("deployed %d object(s) to s3://%s/%s", len(written), bucket, prefix)

    def _put_with_markers(self, uri: str, data: bytes, markers: dict) -> None:
        if markers:
            text = data.decode("utf-8")
            for marker, value in markers.items():
                text = text.replace(marker, str(value))
            data = text.encode("utf-8")
        self.s3.put_bytes(uri, data)

    # -- everything else -------------------------------------------------------------------
    def _record_other(self, stack: Stack, resource: Resource) -> None:
        where = f"{stack.name}/{resource.logical_id}"
        try:
            physical = str(stack.ref(resource.logical_id, where))
            arn = stack.arn(resource)
            props = stack.resolve(resource.properties, where)
        except AssemblyError as exc:
            log.debug("%s: kept unresolved (%s)", where, exc)
            physical, arn, props = resource.logical_id, "", resource.properties
        self.deployment.resources.append(ResourceRecord(stack.name, resource.logical_id, resource.type,
                                                        physical, arn, props))
        # a single-metric alarm is evaluated by the local CloudWatch (services.cloudwatch)
        evaluated = resource.type == "AWS::CloudWatch::Alarm" and isinstance(props, dict) and "MetricName" in props
        if resource.type not in _RECORDED_ONLY and not evaluated:
            self._not_emulated(stack, resource, _reason(resource.type))

    def _not_emulated(self, stack: Stack, resource: Resource, reason: str, suffix: str = "") -> None:
        self.deployment.not_emulated.append(NotEmulated(stack.name, resource.logical_id + suffix,
                                                        resource.type, reason))


def _custom_resource_providers(assembly: CloudAssembly) -> dict[tuple[str, str], str]:
    """(stack, function logical id) -> the custom resource type whose ServiceToken names it."""
    providers = {}
    for stack, resource in assembly.resources():
        if not (resource.type.startswith("Custom::") or resource.type == "AWS::CloudFormation::CustomResource"):
            continue
        token = resource.properties.get("ServiceToken")
        if isinstance(token, dict) and "Fn::GetAtt" in token:
            providers[(stack.name, token["Fn::GetAtt"][0])] = resource.type
    return providers


def _asset_files(path: Path) -> list[tuple[str, bytes]]:
    if path.is_dir():
        return [(p.relative_to(path).as_posix(), p.read_bytes()) for p in sorted(path.rglob("*")) if p.is_file()]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [(info.filename, archive.read(info)) for info in archive.infolist() if not info.is_dir()]
    return [(path.name, path.read_bytes())]


def _included(rel: str, include: list[str], exclude: list[str]) -> bool:
    """BucketDeployment filters: excluded unless a later include pattern matches."""
    if any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
        return any(fnmatch.fnmatch(rel, pattern) for pattern in include)
    return True


_HANDLERS = {
    "AWS::S3::Bucket": _Deployer.bucket,
    "Custom::S3BucketNotifications": _Deployer.bucket_notifications,
    "AWS::Lambda::Function": _Deployer.function,
    "AWS::StepFunctions::StateMachine": _Deployer.state_machine,
    "AWS::Events::Rule": _Deployer.rule,
    "AWS::SNS::Topic": _Deployer.topic,
    "Custom::CDKBucketDeployment": _Deployer.bucket_deployment,
}
# Handlers that need every bucket created first.
_AFTER_BUCKETS = {"Custom::S3BucketNotifications", "Custom::CDKBucketDeployment"}
# Recorded, not reported as "not emulated": template bookkeeping, and resources the service
# integrations create from deployment.resources when they start (runtime.provision_resources).
PROVISIONED_BY_INTEGRATIONS = {"AWS::SageMaker::ModelPackageGroup"}
_RECORDED_ONLY = {"AWS::CDK::Metadata", *PROVISIONED_BY_INTEGRATIONS}


def deploy(assembly_dir: Path, state_dir: Path, *, region: str = DEFAULT_REGION,
           parameters: dict | None = None) -> Deployment:
    """Deploy ``assembly_dir`` (cdk.out) into ``state_dir`` and save ``deployment.json`` there."""
    assembly = CloudAssembly.load(assembly_dir, region=region, parameters=parameters)
    state_dir = Path(state_dir).resolve()
    Layout(state_dir).check()
    deployment = _merge(_Deployer(assembly, state_dir).run())
    deployment.save()
    log.debug("deployed %s: %d bucket(s), %d function(s), %d state machine(s), %d rule(s), %d topic(s)",
             ", ".join(deployment.stacks), len(deployment.buckets), len(deployment.functions),
             len(deployment.state_machines), len(deployment.rules), len(deployment.topics))
    return deployment


def _merge(deployment: Deployment) -> Deployment:
    """Keep what an earlier deploy made of other stacks (a second use case beside the first, as
    CloudFormation keeps one account's stacks apart); this deploy's stacks replace their own."""
    try:
        earlier = Deployment.load(Path(deployment.state_dir))
    except (DeploymentNotFound, TypeError, KeyError, ValueError):
        return deployment
    mine = set(deployment.stacks)
    for name in ("buckets", "functions", "state_machines", "rules", "topics", "resources", "not_emulated"):
        kept = [item for item in getattr(earlier, name) if item.stack not in mine]
        setattr(deployment, name, kept + getattr(deployment, name))
    deployment.stacks = [s for s in earlier.stacks if s not in mine] + deployment.stacks
    deployment.outputs = {**{k: v for k, v in earlier.outputs.items() if k not in mine}, **deployment.outputs}
    deployment.assembly_dirs = sorted({*earlier.assembly_dirs, *deployment.assembly_dirs})
    return deployment
