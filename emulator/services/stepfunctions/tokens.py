"""Task tokens of `.waitForTaskToken` states, one record per token on disk.

The process that runs an execution registers the token when its Task state starts waiting and
polls the record; SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat (from any process: a
`serve`, `python -m emulator approve`, a Lambda through the local API) write the outcome into it. So
a token outlives the process that waits on it: a restarted `serve` finds the waiting records whose
waiter is gone and resumes their executions.

A record: {"token", "executionArn", "stateMachineName", "executionName", "stateName", "resource",
"status" (WAITING | SUCCEEDED | FAILED | TIMED_OUT | CLOSED), "output" | "error"/"cause",
"created", "heartbeat", "heartbeatSeconds", "deadline" (epoch seconds), "waiterPid", "requestSent"}.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

from emulator.aws.arns import parse_execution_arn
from emulator.services.stepfunctions import exceptions as exc
from emulator.storage.records import RecordStore, pid_alive

KIND = "tokens"
WAITING, SUCCEEDED, FAILED, TIMED_OUT, CLOSED = "WAITING", "SUCCEEDED", "FAILED", "TIMED_OUT", "CLOSED"
# SendTaskSuccess's quota for its output (the same as any state's payload).
MAX_OUTPUT_BYTES = 262_144
# What a token looks like (AWS's are opaque, 1-2048 characters of base64-ish text).
_TOKEN = re.compile(r"^[A-Za-z0-9+/=_.\-]{1,2048}$")


def _key(token: str) -> str:
    # A token may hold "/" or "+": the record is named by its digest, never by the token itself.
    return hashlib.sha256(token.encode()).hexdigest()[:40]


class TaskTokens:
    """The token records of one state folder (``root`` is its stepfunctions/ folder)."""

    def __init__(self, root: Any, clock: Callable[[], float] = time.time):
        self.records = RecordStore(root)
        self.clock = clock

    # -- the waiting side (the execution's process) -------------------------------------------
    def register(self, token: str, *, execution_arn: str, state_name: str, resource: str,
                 timeout_seconds: float | None = None, heartbeat_seconds: float | None = None) -> bool:
        """Record a waiting task; True when the request that carries the token is still to be sent.
        A resumed execution waits on its old token again: the request is not sent twice, unless the
        process that registered the token died before the request went out (at least once, as a
        lost approval request would leave the execution waiting until its timeout)."""
        unsent = False

        def change(record: dict | None) -> dict:
            nonlocal unsent
            now = self.clock()
            if record is not None:
                unsent = record["status"] == WAITING and not record.get("requestSent")
                return {**record, "waiterPid": os.getpid()}
            unsent = True
            machine, name = _names(execution_arn)
            return {"token": token, "executionArn": execution_arn, "stateMachineName": machine, "executionName": name,
                    "stateName": state_name, "resource": resource, "status": WAITING, "created": now,
                    "heartbeat": now, "heartbeatSeconds": heartbeat_seconds,
                    "deadline": now + timeout_seconds if timeout_seconds else None, "waiterPid": os.getpid()}

        self.records.update(KIND, _key(token), change)
        return unsent

    def mark_sent(self, token: str) -> None:
        """The request carrying the token went out: a resumed execution must not send it again."""
        self.records.update(KIND, _key(token), lambda r: r if r is None else {**r, "requestSent": self.clock()})

    def read(self, token: str) -> dict | None:
        return self.records.read(KIND, _key(token))

    def close(self, token: str, status: str = CLOSED) -> None:
        """The task stopped waiting (its state timed out, the execution ended or was stopped): any
        later SendTask* answers TaskTimedOut, as AWS does."""
        def change(record: dict | None) -> dict | None:
            if record is None or record["status"] != WAITING:
                return record
            return {**record, "status": status}

        self.records.update(KIND, _key(token), change)

    def waiting(self) -> list[dict]:
        """Every token still waiting for an answer."""
        return [r for r in self.records.all(KIND) if r.get("status") == WAITING]

    def orphans(self) -> list[dict]:
        """The newest token of each execution whose waiting process is gone, answered or not (an
        answer may come while no process waits: the execution resumed later picks it up)."""
        newest: dict[str, dict] = {}
        for record in self.records.all(KIND):
            arn = record["executionArn"]
            if arn not in newest or record["created"] > newest[arn]["created"]:
                newest[arn] = record
        return [r for r in newest.values() if r["status"] != CLOSED and not self.waiter_alive(r)]

    def claim(self, token: str) -> bool:
        """Become the waiter of an orphaned token; False when another live process already did."""
        claimed = False

        def change(record: dict | None) -> dict | None:
            nonlocal claimed
            if record is None or self.waiter_alive(record):
                return record
            claimed = True
            return {**record, "waiterPid": os.getpid()}

        self.records.update(KIND, _key(token), change)
        return claimed

    @staticmethod
    def waiter_alive(record: dict) -> bool:
        return pid_alive(record.get("waiterPid"))

    # -- SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat ---------------------------------
    def _answer(self, token: Any, apply: Callable[[dict], dict]) -> dict:
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise exc.InvalidToken(token if isinstance(token, str) else type(token).__name__)

        def change(record: dict | None) -> dict:
            if record is None:
                raise exc.TaskDoesNotExist(token)
            if record["status"] == WAITING and self._expired(record):
                record = {**record, "status": TIMED_OUT}
                self.records.write(KIND, _key(token), record)
            if record["status"] != WAITING:
                # AWS's answer for a token whose task already ended (answered, timed out, stopped)
                raise exc.TaskTimedOut("Provided task does not exist anymore")
            return apply(record)

        return self.records.update(KIND, _key(token), change)

    def _expired(self, record: dict) -> bool:
        now = self.clock()
        if record.get("deadline") and now > record["deadline"]:
            return True
        beat = record.get("heartbeatSeconds")
        return bool(beat) and now > record["heartbeat"] + beat

    def send_success(self, token: Any, output: Any) -> None:
        if not isinstance(output, str):
            raise exc.InvalidOutput("output must be a JSON text")
        if len(output.encode()) > MAX_OUTPUT_BYTES:
            raise exc.InvalidOutput(f"output is {len(output.encode())} bytes, more than the {MAX_OUTPUT_BYTES}-byte quota")
        try:
            json.loads(output)
        except json.JSONDecodeError as error:
            raise exc.InvalidOutput(f"output is not JSON: {error}") from None
        self._answer(token, lambda r: {**r, "status": SUCCEEDED, "output": output, "answered": self.clock()})

    def send_failure(self, token: Any, error: str | None = None, cause: str | None = None) -> None:
        self._answer(token, lambda r: {**r, "status": FAILED, "error": error, "cause": cause, "answered": self.clock()})

    def send_heartbeat(self, token: Any) -> None:
        self._answer(token, lambda r: {**r, "heartbeat": self.clock()})


def _names(execution_arn: str) -> tuple[str, str]:
    parts = parse_execution_arn(execution_arn)
    return (parts.state_machine_name, parts.execution_name) if parts else ("", execution_arn)
