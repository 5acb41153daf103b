"""The deployed state machines and how a name, ARN or logical id finds one."""

from __future__ import annotations

import json
from dataclasses import dataclass

from emulator.services.stepfunctions.exceptions import StateMachineDoesNotExist


@dataclass
class StateMachineSpec:
    stack: str
    logical_id: str
    name: str
    arn: str
    role_arn: str
    definition: str  # the resolved definition string, exactly as Step Functions would receive it
    definition_file: str
    type: str = "STANDARD"
    timeout_seconds: int | None = None

    def definition_json(self) -> dict:
        return json.loads(self.definition)


class StateMachines:
    def __init__(self, machines: list[StateMachineSpec]):
        self.machines = list(machines)

    def get(self, name_or_arn: str) -> StateMachineSpec:
        for machine in self.machines:
            if name_or_arn in (machine.name, machine.arn, machine.logical_id):
                return machine
        raise StateMachineDoesNotExist(name_or_arn, [m.name for m in self.machines])

    def __iter__(self):
        return iter(self.machines)

    def __len__(self) -> int:
        return len(self.machines)
