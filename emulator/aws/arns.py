"""ARNs of the local cloud: one account and one default region, built and parsed in one place."""

from __future__ import annotations

from dataclasses import dataclass

# The account every local resource belongs to (LocalStack's convention); a deployment records the
# region it was deployed to, so only the default region lives here.
ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
PARTITION = "aws"


def arn(service: str, resource: str, *, region: str = DEFAULT_REGION, account: str = ACCOUNT) -> str:
    """``arn:aws:<service>:<region>:<account>:<resource>``."""
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def state_machine_arn(name: str, *, region: str = DEFAULT_REGION, account: str = ACCOUNT) -> str:
    return arn("states", f"stateMachine:{name}", region=region, account=account)


def parse_state_machine_arn(text: str) -> tuple[str, str, str] | None:
    """(region, account, name) of ``arn:aws:states:<r>:<a>:stateMachine:<name>``, or None."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 7 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "stateMachine" or not parts[6]:
        return None
    return parts[3], parts[4], parts[6]


def execution_arn(state_machine: str, execution_name: str) -> str:
    """The ARN of an execution of ``state_machine`` (its ARN), as Step Functions forms it."""
    return state_machine.replace(":stateMachine:", ":execution:", 1) + f":{execution_name}"


@dataclass(frozen=True)
class ExecutionArn:
    region: str
    account: str
    state_machine_name: str
    execution_name: str

    @property
    def state_machine_arn(self) -> str:
        return state_machine_arn(self.state_machine_name, region=self.region, account=self.account)


def parse_execution_arn(text: str) -> ExecutionArn | None:
    """The parts of an execution ARN (``arn:aws:states:<r>:<a>:execution:<machine>:<name>``), or None."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 8 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "execution":
        return None
    if not parts[6] or not parts[7]:
        return None
    return ExecutionArn(parts[3], parts[4], parts[6], parts[7])


def sagemaker_arn(kind: str, name: str, *, region: str = DEFAULT_REGION, account: str = ACCOUNT) -> str:
    """SageMaker lower-cases the name in an ARN (names are case-insensitive there)."""
    return arn("sagemaker", f"{kind}/{name.lower()}", region=region, account=account)


def resource_name(text: str) -> str:
    """The last path or colon segment of an ARN (or the text itself when it is a bare name)."""
    if not text.startswith("arn:"):
        return text
    tail = text.split(":", 5)[-1]
    return tail.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def map_run_arn(state_machine: str, label: str, run_id: str) -> str:
    """A Map Run's ARN: ``arn:aws:states:<r>:<a>:mapRun:<machine>/<label>:<id>`` (from the machine's ARN)."""
    return state_machine.replace(":stateMachine:", ":mapRun:", 1) + f"/{label}:{run_id}"


def map_run_state_machine_arn(state_machine: str, label: str) -> str:
    """The ARN a Map Run's child executions report as their state machine: ``...:stateMachine:<machine>/<label>``."""
    return f"{state_machine}/{label}"


def child_execution_arn(state_machine: str, label: str, name: str, express: bool = False) -> str:
    """A Distributed Map child execution: ``...:execution:<machine>/<label>:<name>`` (``:express:`` for EXPRESS)."""
    kind = ":express:" if express else ":execution:"
    return state_machine.replace(":stateMachine:", kind, 1) + f"/{label}:{name}"


@dataclass(frozen=True)
class MapRunArn:
    region: str
    account: str
    state_machine_name: str
    label: str
    run_id: str


def parse_map_run_arn(text: str) -> MapRunArn | None:
    """The parts of ``arn:aws:states:<r>:<a>:mapRun:<machine>/<label>:<id>``, or None."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 8 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "mapRun":
        return None
    machine, _, label = parts[6].partition("/")
    if not machine or not label or not parts[7]:
        return None
    return MapRunArn(parts[3], parts[4], machine, label, parts[7])
