"""The one interface every service integration implements, and the registry that finds them.

The interpreter knows nothing about SageMaker or Lambda: for a Task state it builds a TaskRequest,
looks the integration up by the Resource's key, calls ``start`` once and then ``poll`` until an
outcome arrives, blocking in ``wait`` between polls (or the state's TimeoutSeconds passes, when it
calls ``stop``). A failure is raised
as ``StatesError(name, cause)`` from either call.

Resource keys:
  arn:aws:states:::sagemaker:createTrainingJob.sync   -> "sagemaker:createTrainingJob.sync"
  arn:aws:states:::lambda:invoke                      -> "lambda:invoke"
  arn:aws:states:::aws-sdk:sagemaker:describeEndpoint -> "aws-sdk:sagemaker:describeEndpoint"
  arn:aws:lambda:us-east-1:123456789012:function:Fn   -> "lambda:function"  (bare function ARN)
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from emulator.asl.errors import StatesError

_SERVICE_ARN = re.compile(r"^arn:[\w-]+:states:::(?P<key>.+)$")
_FUNCTION_ARN = re.compile(r"^arn:[\w-]+:lambda:[\w-]+:\d{12}:function:[\w-]+(:[\w$-]+)?$")


def resource_key(resource: str) -> str:
    """The registry key of a Task state's Resource ARN (see the module docstring)."""
    match = _SERVICE_ARN.match(resource)
    if match:
        return match.group("key")
    if _FUNCTION_ARN.match(resource):
        return "lambda:function"
    raise StatesError("States.Runtime", f"Resource {resource!r} is not a service integration or Lambda function ARN the emulator supports")


def integration_pattern(key: str) -> str:
    """'sync', 'waitForTaskToken' or 'request-response', from the key's suffix."""
    if key.endswith(".sync") or ".sync:" in key:
        return "sync"
    if key.endswith(".waitForTaskToken"):
        return "waitForTaskToken"
    return "request-response"


@dataclass(frozen=True)
class TaskRequest:
    resource: str  # the Resource ARN exactly as the definition wrote it
    key: str  # resource_key(resource)
    parameters: Any  # the effective input after InputPath and Parameters
    state_name: str
    execution_arn: str
    execution_name: str
    timeout_seconds: float | None = None
    heartbeat_seconds: float | None = None
    task_token: str | None = None
    context: dict = field(default_factory=dict)  # the context object ($$) at this state

    @property
    def pattern(self) -> str:
        return integration_pattern(self.key)


@dataclass(frozen=True)
class TaskOutcome:
    """A finished task: ``output`` is the state's raw result (before ResultSelector)."""

    output: Any


class Integration(ABC):
    """One service. ``start`` returns an opaque handle; ``poll`` returns None while running."""

    @abstractmethod
    def start(self, request: TaskRequest) -> Any: ...

    @abstractmethod
    def poll(self, handle: Any) -> TaskOutcome | None: ...

    def stop(self, handle: Any) -> None:
        """Called when the state times out or the execution ends first. Default: nothing to stop."""

    def poll_interval(self, handle: Any) -> float:
        """Seconds (wall clock) between polls of a running task."""
        return 0.05

    def heartbeat(self, handle: Any) -> float | None:
        """Epoch seconds of the task's last SendTaskHeartbeat (a ``.waitForTaskToken`` task; HeartbeatSeconds
        counts from it), or None when the integration has no heartbeats."""
        return None

    def wait(self, handle: Any, seconds: float) -> None:
        """Block before the next poll for at most ``seconds``. An integration that is told when its
        task ends returns as soon as it does, so no poll interval is added to the task's time."""
        time.sleep(seconds)


class Integrations:
    """Registry of integrations by resource key; a key may end in ``*`` to match a prefix."""

    def __init__(self) -> None:
        self._exact: dict[str, Integration] = {}
        self._prefix: list[tuple[str, Integration]] = []

    def register(self, key: str, integration: Integration) -> None:
        if key.endswith("*"):
            self._prefix.append((key[:-1], integration))
        else:
            self._exact[key] = integration

    def lookup(self, resource: str) -> tuple[str, Integration]:
        key = resource_key(resource)
        if key in self._exact:
            return key, self._exact[key]
        for prefix, integration in sorted(self._prefix, key=lambda p: -len(p[0])):
            if key.startswith(prefix):
                return key, integration
        raise StatesError(
            "States.Runtime",
            f"No local integration for resource {resource!r} (key {key!r}); "
            f"the emulator supports: {', '.join(sorted(self.keys())) or 'none registered'}",
        )

    def keys(self) -> list[str]:
        return list(self._exact) + [p + "*" for p, _ in self._prefix]
