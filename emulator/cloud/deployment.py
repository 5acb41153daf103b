"""What a local deployment made of the cloud assembly: every resource the emulator plays, by
service, saved as <state_dir>/deployment.json for any process (`run`, `serve`) to load.

Every resource the emulator cannot run is listed in ``not_emulated`` with its type and why, never
silently skipped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emulator.aws.arns import ACCOUNT, DEFAULT_REGION
from emulator.services.eventbridge import RuleSpec
from emulator.services.lambda_.functions import Functions, FunctionSpec
from emulator.services.s3.store import BucketSpec
from emulator.services.sns import TopicSpec
from emulator.services.stepfunctions.machines import StateMachines, StateMachineSpec
from emulator.storage.layout import Layout
from emulator.storage.records import write_json_atomic


class DeploymentNotFound(Exception):
    def __init__(self, state_dir: Path):
        super().__init__(f"no local deployment in {state_dir}: run `python -m emulator deploy` first")


class UnknownResource(Exception):
    def __init__(self, kind: str, ident: str, known: list[str]):
        super().__init__(f"no {kind} {ident!r} in the local deployment; deployed: {', '.join(known) or 'none'}")


@dataclass
class NotEmulated:
    stack: str
    logical_id: str
    type: str
    reason: str

    def __str__(self) -> str:
        return f"{self.logical_id} ({self.type})"


@dataclass
class ResourceRecord:
    """Any other resource, resolved, for integrations that read it (e.g. a model package group)."""

    stack: str
    logical_id: str
    type: str
    physical_id: str
    arn: str
    properties: dict


@dataclass
class Deployment:
    assembly_dir: str  # the cloud assembly deployed last
    state_dir: str
    region: str = DEFAULT_REGION
    account: str = ACCOUNT
    deployed_at: str = ""
    stacks: list[str] = field(default_factory=list)
    buckets: list[BucketSpec] = field(default_factory=list)
    functions: list[FunctionSpec] = field(default_factory=list)
    state_machines: list[StateMachineSpec] = field(default_factory=list)
    rules: list[RuleSpec] = field(default_factory=list)
    topics: list[TopicSpec] = field(default_factory=list)
    assembly_dirs: list[str] = field(default_factory=list)  # every cloud assembly deployed here (one per use case)
    resources: list[ResourceRecord] = field(default_factory=list)
    not_emulated: list[NotEmulated] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # stack -> output -> value

    # -- persistence -----------------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        return Layout.at(self.state_dir)

    def save(self) -> Path:
        target = self.layout.deployment_file
        write_json_atomic(target, asdict(self), indent=2)
        return target

    @classmethod
    def load(cls, state_dir: Path) -> Deployment:
        source = Layout.at(state_dir).deployment_file
        if not source.is_file():
            raise DeploymentNotFound(Path(state_dir))
        raw = json.loads(source.read_text())
        return cls(
            **{k: v for k, v in raw.items() if k not in _NESTED},
            **{k: [_NESTED[k](**item) for item in raw.get(k, [])] for k in _NESTED if k != "rules"},
            rules=[RuleSpec.from_json(r) for r in raw["rules"]],
        )

    # -- by service ------------------------------------------------------------------------
    def function_registry(self) -> Functions:
        return Functions(self.functions, region=self.region, account=self.account)

    def machine_registry(self) -> StateMachines:
        return StateMachines(self.state_machines)

    def deployed_at_epoch(self) -> float:
        return self.layout.deployment_file.stat().st_mtime

    # -- lookups ---------------------------------------------------------------------------
    def function(self, name_or_arn: str) -> FunctionSpec:
        """By name, full ARN or partial ARN; raises the Lambda service's ResourceNotFoundException."""
        return self.function_registry().get(name_or_arn)

    def state_machine(self, name_or_arn: str | None = None) -> StateMachineSpec:
        """By name, ARN or logical id (the only one when there is one); raises StateMachineDoesNotExist."""
        if name_or_arn is None and len(self.state_machines) == 1:
            return self.state_machines[0]
        return self.machine_registry().get(name_or_arn or "(none given)")

    def bucket(self, name: str) -> BucketSpec:
        for bucket in self.buckets:
            if name in (bucket.name, bucket.logical_id):
                return bucket
        raise UnknownResource("bucket", name, [b.name for b in self.buckets])

    def not_emulated_line(self) -> str:
        if not self.not_emulated:
            return "not emulated: nothing"
        counts: dict[str, int] = {}
        for item in self.not_emulated:
            counts[item.type] = counts.get(item.type, 0) + 1
        kinds = ", ".join(f"{n} {kind.removeprefix('AWS::')}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        return f"not emulated ({len(self.not_emulated)}, listed in deployment.json): {kinds}"


_NESTED = {
    "buckets": BucketSpec,
    "functions": FunctionSpec,
    "state_machines": StateMachineSpec,
    "rules": RuleSpec,
    "topics": TopicSpec,
    "resources": ResourceRecord,
    "not_emulated": NotEmulated,
}


_NESTED = {
    "buckets": BucketSpec,
    "functions": FunctionSpec,
    "state_machines": StateMachineSpec,
    "rules": RuleSpec,
    "topics": TopicSpec,
    "resources": ResourceRecord,
    "not_emulated": NotEmulated,
}
