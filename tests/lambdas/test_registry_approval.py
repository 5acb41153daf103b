"""The registry approval Lambda's core: which token waits, what a status means, and that an answer
already given is not given twice (the handler's AWS calls are injected; the real path runs end to
end in tests/e2e/test_approvals.py)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from lambdas.registry_approval import handler as approval

EXECUTION = "arn:aws:states:us-east-1:000000000000:execution:MlPipeline-training:run-1"
MACHINE = "arn:aws:states:us-east-1:000000000000:stateMachine:MlPipeline-training"


def scheduled(token: str, message_as_text: bool = False) -> dict:
    message = {"task_token": token, "model_package": "arn:...:model-package/g/1"}
    parameters = {"TopicArn": "arn:aws:sns:us-east-1:000000000000:t", "Message": json.dumps(message) if message_as_text else message}
    return {"type": "TaskScheduled", "taskScheduledEventDetails": {"resourceType": "sns", "resource": "publish.waitForTaskToken",
                                                                   "parameters": json.dumps(parameters)}}


def ended(kind: str) -> dict:
    return {"type": kind, kind[0].lower() + kind[1:] + "EventDetails": {"resourceType": "sns", "resource": "publish.waitForTaskToken"}}


OTHER = {"type": "TaskSucceeded", "taskSucceededEventDetails": {"resourceType": "sagemaker", "resource": "createModel"}}


@pytest.mark.parametrize("events, token", [
    ([OTHER, scheduled("tok-1")], "tok-1"),                       # waiting (newest first)
    ([scheduled("tok-1", message_as_text=True)], "tok-1"),        # Message given as JSON text
    ([ended("TaskSucceeded"), scheduled("tok-1")], None),          # answered
    ([ended("TaskTimedOut"), scheduled("tok-1")], None),           # timed out
    ([scheduled("tok-2"), ended("TaskFailed"), scheduled("tok-1")], "tok-2"),  # a retried request: the newest
    ([OTHER], None),                                               # not published yet
])
def test_the_waiting_token_is_the_newest_unanswered_request(events, token):
    assert approval.waiting_token(events) == token


def detail(status: str, **extra) -> dict:
    return {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:000000000000:model-package/g/1", "ModelApprovalStatus": status,
            "CustomerMetadataProperties": {approval.REGISTERED_BY: EXECUTION},
            "CreationTime": 1_700_000_000_000, "LastModifiedTime": 1_700_000_060_000, **extra}


class Fake:
    def __init__(self, status="RUNNING", events=None, answer_error: str | None = None):
        self.status, self.events, self.answer_error = status, events or [scheduled("tok-1")], answer_error
        self.sent: list[tuple] = []

    def send(self, kind, token, payload):
        if self.answer_error:
            raise ClientError({"Error": {"Code": self.answer_error, "Message": "x"}}, "SendTaskSuccess")
        self.sent.append((kind, token, payload))

    def run(self, event_detail, **kwargs):
        return approval.resume(event_detail, describe_package=lambda arn: {"CustomerMetadataProperties": {approval.REGISTERED_BY: EXECUTION}},
                               execution_status=lambda arn: self.status, history=lambda arn: self.events, send=self.send,
                               state_machine_arn=MACHINE, pause=0, **kwargs)


def test_approved_sends_success_with_the_reviewer():
    fake = Fake()
    outcome = fake.run(detail("Approved", ApprovalDescription="fine", LastModifiedBy={"UserProfileName": "ana"}))
    assert outcome == {"action": "success", "execution": EXECUTION}
    assert fake.sent == [("success", "tok-1", {"decision": "Approved", "source": "model registry", "reviewer": "ana", "reason": "fine"})]


def test_rejected_sends_model_rejected_with_the_description_as_cause():
    fake = Fake()
    fake.run(detail("Rejected", ApprovalDescription="bias on group B"))
    assert fake.sent == [("failure", "tok-1", {"error": "ModelRejected", "cause": "bias on group B"})]


def test_an_answer_already_given_is_not_given_twice():
    assert Fake(answer_error="TaskTimedOut").run(detail("Approved"))["action"] == "already-answered"
    with pytest.raises(ClientError):  # anything else is a real failure: EventBridge retries the event
        Fake(answer_error="AccessDeniedException").run(detail("Approved"))


@pytest.mark.parametrize("fake, event_detail, why", [
    (Fake(), detail("PendingManualApproval"), "needs no answer"),
    (Fake(), detail("Approved", LastModifiedTime=1_700_000_000_000), "registered with this status"),
    (Fake(status="SUCCEEDED"), detail("Approved"), "not running"),
    (Fake(events=[OTHER]), detail("Approved"), "not waiting"),
    (Fake(), {**detail("Approved"), "CustomerMetadataProperties": {}}, "does not name"),
    (Fake(), {**detail("Approved"), "CustomerMetadataProperties": {approval.REGISTERED_BY: EXECUTION.replace("MlPipeline-training", "other")}},
     "is not an execution of"),
])
def test_events_with_nothing_to_answer_are_ignored_with_the_reason(fake, event_detail, why):
    outcome = fake.run(event_detail, attempts=2)
    assert outcome["action"] == "ignored" and why in outcome["why"] and fake.sent == []


def test_metadata_missing_from_the_event_is_read_from_the_package():
    fake = Fake()
    event_detail = detail("Approved")
    del event_detail["CustomerMetadataProperties"]
    assert fake.run(event_detail)["action"] == "success"


def test_a_request_already_answered_is_not_waited_for():
    fake = Fake(events=[ended("TaskSucceeded"), scheduled("tok-1")])
    assert fake.run(detail("Approved"), attempts=50, )["action"] == "already-answered" and fake.sent == []
