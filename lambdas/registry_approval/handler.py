"""Resume a training execution waiting for approval when its model package is approved or rejected
in the SageMaker model registry (Studio, the console, `aws sagemaker update-model-package`, boto3).

Event: EventBridge's "SageMaker Model Package State Change" for the pipeline's group with status
Approved or Rejected. The package names the execution that registered it in its
CustomerMetadataProperties (REGISTERED_BY); if that execution is RUNNING and waiting at its approval
state, the task token is read from the approval request the state machine published (the
TaskScheduled event of the sns:publish.waitForTaskToken state) and answered: SendTaskSuccess on
Approved, SendTaskFailure ModelRejected (the ApprovalDescription as cause) on Rejected. A token
already answered (the reviewer also used Step Functions, or the state machine's own status update
came back as an event) is TaskTimedOut: nothing to do, so an execution is never resumed twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import boto3

log = logging.getLogger()
log.setLevel(logging.INFO)

REGISTERED_BY = "registered-by-execution"  # the package's metadata key naming its execution
WAIT_RESOURCE = "publish.waitForTaskToken"  # the approval state's integration, as history events show it
REJECTED = "ModelRejected"
ANSWERED = ("TaskTimedOut", "TaskDoesNotExist")


def waiting_token(events_newest_first: Iterable[dict]) -> str | None:
    """The token of the approval request still waiting for an answer, or None (answered, timed out,
    or not published yet). Events as GetExecutionHistory(reverseOrder=True) lists them."""
    return approval_request(events_newest_first)[1]


def approval_request(events_newest_first: Iterable[dict]) -> tuple[str, str | None]:
    """("waiting", token), ("answered", None) or ("absent", None): the newest approval request's state."""
    for event in events_newest_first:
        kind = event["type"]
        details = event.get(kind[0].lower() + kind[1:] + "EventDetails") or {}
        if details.get("resource") != WAIT_RESOURCE:
            continue
        if kind in ("TaskSucceeded", "TaskFailed", "TaskTimedOut"):
            return "answered", None
        if kind == "TaskScheduled":
            message = json.loads(details["parameters"]).get("Message")
            if isinstance(message, str):
                message = json.loads(message)
            return "waiting", (message or {}).get("task_token")
    return "absent", None


def decide(detail: dict) -> tuple[str, dict] | None:
    """('success', output) or ('failure', {error, cause}) for a package's new status; None otherwise."""
    status = detail.get("ModelApprovalStatus")
    reviewer = (detail.get("LastModifiedBy") or {}).get("UserProfileName") or "the model registry"
    description = detail.get("ApprovalDescription") or ""
    if status == "Approved":
        return "success", {"decision": "Approved", "source": "model registry", "reviewer": reviewer,
                           "reason": description or "approved in the model registry"}
    if status == "Rejected":
        cause = description or f"rejected in the model registry by {reviewer}"
        return "failure", {"error": REJECTED, "cause": cause[:32768]}
    return None


def resume(detail: dict, describe_package: Callable[[str], dict], execution_status: Callable[[str], str],
           history: Callable[[str], Iterable[dict]], send: Callable[[str, str, dict], None],
           state_machine_arn: str | None = None, attempts: int = 10, pause: float = 1.0) -> dict:
    """The pure core (every AWS call injected): what was done for this event."""
    decision = decide(detail)
    if decision is None:
        return {"action": "ignored", "why": f"status {detail.get('ModelApprovalStatus')!r} needs no answer"}
    if detail.get("LastModifiedTime") in (None, detail.get("CreationTime")):
        # a registration (approval_mode auto registers Approved): nobody decided anything
        return {"action": "ignored", "why": "the package was registered with this status, not changed to it"}
    metadata = detail.get("CustomerMetadataProperties")
    if metadata is None:  # the event did not carry it: read the package
        metadata = describe_package(detail["ModelPackageArn"]).get("CustomerMetadataProperties") or {}
    execution = metadata.get(REGISTERED_BY)
    if not execution:
        return {"action": "ignored", "why": "the package does not name the execution that registered it"}
    if state_machine_arn and execution.split(":")[6:7] != state_machine_arn.split(":")[6:7]:
        return {"action": "ignored", "why": f"{execution} is not an execution of {state_machine_arn}"}
    for attempt in range(attempts):
        if execution_status(execution) != "RUNNING":
            return {"action": "ignored", "why": f"{execution} is not running"}
        state, token = approval_request(history(execution))
        if state == "answered":
            return {"action": "already-answered", "execution": execution}
        if token:
            kind, payload = decision
            try:
                send(kind, token, payload)
            except Exception as error:
                code = getattr(error, "response", {}).get("Error", {}).get("Code")
                if code in ANSWERED:
                    return {"action": "already-answered", "execution": execution}
                raise
            log.info("%s: approval answered (%s) from the model registry", execution, kind)
            return {"action": kind, "execution": execution}
        if attempt + 1 < attempts:  # approved before the request was published: it comes shortly
            time.sleep(pause)
    return {"action": "ignored", "why": f"{execution} is not waiting for an approval"}


def handler(event: dict[str, Any], context: Any) -> dict:
    sfn = boto3.client("stepfunctions")
    sagemaker = boto3.client("sagemaker")

    def history(arn: str) -> Iterable[dict]:
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn, reverseOrder=True,
                                                                     PaginationConfig={"MaxItems": 1000})
        for page in pages:
            yield from page["events"]

    def send(kind: str, token: str, payload: dict) -> None:
        if kind == "success":
            sfn.send_task_success(taskToken=token, output=json.dumps(payload))
        else:
            sfn.send_task_failure(taskToken=token, error=payload["error"], cause=payload["cause"])

    outcome = resume(
        event["detail"],
        describe_package=lambda arn: sagemaker.describe_model_package(ModelPackageName=arn),
        execution_status=lambda arn: sfn.describe_execution(executionArn=arn)["status"],
        history=history, send=send, state_machine_arn=os.environ.get("STATE_MACHINE_ARN"),
    )
    log.info(json.dumps(outcome))
    return outcome
