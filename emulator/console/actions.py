"""What the console changes, each through the API call the AWS console and the CLI make: start, stop
and redrive executions (Step Functions), approve or reject a model package (UpdateModelPackage)."""

from __future__ import annotations

import json
from typing import Any

from emulator.console.clients import Clients

APPROVAL_STATUSES = ("Approved", "Rejected")


class BadRequest(Exception):
    """A request the page should not have sent; the message says what to send instead."""


def _text(body: dict, field: str, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{field!r} must be a non-empty string")
    return value


def start(c: Clients, body: dict) -> dict:
    text = _text(body, "input")
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequest(f"the execution input is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    request: dict[str, Any] = {"stateMachineArn": _text(body, "stateMachineArn"), "input": text}
    name = _text(body, "name", required=False)
    if name:
        request["name"] = name
    return c.sfn.start_execution(**request)


def stop(c: Clients, body: dict) -> dict:
    return c.sfn.stop_execution(executionArn=_text(body, "executionArn"),
                                error="Console.Stopped", cause="stopped from the local console")


def redrive(c: Clients, body: dict) -> dict:
    return c.sfn.redrive_execution(executionArn=_text(body, "executionArn"))


def decide(c: Clients, body: dict) -> dict:
    """Approve or reject a PendingManualApproval package; an execution waiting on it continues."""
    status = _text(body, "status")
    if status not in APPROVAL_STATUSES:
        raise BadRequest(f"status {status!r} is not one of {APPROVAL_STATUSES}")
    reason = _text(body, "reason", required=False) or f"{status.lower()} from the local console"
    return c.sagemaker.update_model_package(ModelPackageArn=_text(body, "modelPackageArn"),
                                            ModelApprovalStatus=status, ApprovalDescription=reason)


ACTIONS = {"start": start, "stop": stop, "redrive": redrive, "decide": decide}
