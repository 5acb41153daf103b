"""Callback tasks: any request-response integration with ``.waitForTaskToken`` appended.

``lambda:invoke.waitForTaskToken`` invokes the function, ``sns:publish.waitForTaskToken`` publishes
the message (each carrying ``$$.Task.Token`` wherever Parameters put it), then the task waits until
someone answers the token with SendTaskSuccess (its output is the task's result), SendTaskFailure
(the task fails with that error and cause) or lets TimeoutSeconds / HeartbeatSeconds pass. The
token's record is on disk (services.stepfunctions.tokens), so the answer may come from any process,
and a resumed execution waits on its old token without sending the request again (unless its first
process died before the request went out).
"""

from __future__ import annotations

import json
import time
from typing import Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import Integration, Integrations, TaskOutcome, TaskRequest
from emulator.services.stepfunctions.tokens import FAILED, SUCCEEDED, TIMED_OUT, WAITING, TaskTokens

SUFFIX = ".waitForTaskToken"


class WaitForTaskToken(Integration):
    """``inner`` (the request-response integration) sends the request; the token record says when
    the task ends."""

    def __init__(self, inner: Integration, tokens: TaskTokens):
        self.inner = inner
        self.tokens = tokens

    def start(self, request: TaskRequest) -> str:
        token = request.task_token
        if not token:
            raise StatesError("States.Runtime", f"{request.state_name}: a .waitForTaskToken task has no task token")
        if not _mentions(request.parameters, token):
            # AWS rejects such a definition: nobody could ever answer the task
            raise StatesError("States.Runtime", f"{request.state_name}: the Parameters of a .waitForTaskToken task must pass "
                                                f"the task token ($$.Task.Token) to the service")
        unsent = self.tokens.register(token, execution_arn=request.execution_arn, state_name=request.state_name,
                                      resource=request.resource, timeout_seconds=request.timeout_seconds,
                                      heartbeat_seconds=request.heartbeat_seconds)
        if unsent:
            try:
                handle = self.inner.start(request)
                while self.inner.poll(handle) is None:  # the request itself (an invocation, a publish)
                    self.inner.wait(handle, self.inner.poll_interval(handle))
            except BaseException:
                self.tokens.close(token)
                raise
            self.tokens.mark_sent(token)
        return token

    def poll(self, token: str) -> TaskOutcome | None:
        record = self.tokens.read(token)
        status = record["status"] if record else None
        if status == WAITING:
            return None
        if status == SUCCEEDED:
            return TaskOutcome(json.loads(record["output"]))
        if status == FAILED:
            raise StatesError(record.get("error") or "", record.get("cause"))
        if status == TIMED_OUT:
            raise StatesError("States.Timeout", f"task token of state {record['stateName']!r} timed out before an answer")
        raise StatesError("States.Runtime", f"the record of task token {token[:16]}... is gone or closed ({status})")

    def heartbeat(self, token: str) -> float | None:
        record = self.tokens.read(token)
        return record.get("heartbeat") if record else None

    def stop(self, token: str) -> None:
        self.tokens.close(token)

    def poll_interval(self, token: str) -> float:
        return 0.1

    def wait(self, token: str, seconds: float) -> None:
        time.sleep(seconds)


def _mentions(value: Any, token: str) -> bool:
    if isinstance(value, str):
        return token in value
    if isinstance(value, dict):
        return any(_mentions(v, token) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, token) for v in value)
    return False


def register(integrations: Integrations, tokens: TaskTokens, keys: tuple[str, ...] = ("lambda:invoke", "sns:publish")) -> None:
    """Register ``<key>.waitForTaskToken`` for each request-response key already registered."""
    for key in keys:
        _, inner = integrations.lookup(f"arn:aws:states:::{key}")
        integrations.register(key + SUFFIX, WaitForTaskToken(inner, tokens))
