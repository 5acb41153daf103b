"""The approval step in the synthesized template: the states of a manual approval, the registry's
EventBridge rule and its Lambda, and IAM for SendTask* (built once per module, as app.py builds it)."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template
from definitions import parse_definition

from stacks.config import ConfigError, PipelineConfig

WAIT = "arn:aws:states:::sns:publish.waitForTaskToken"


@pytest.fixture(scope="module")
def stack(synthesized):
    return synthesized[0]


@pytest.fixture(scope="module")
def template(stack) -> Template:
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def states(template) -> dict:
    machine = next(iter(template.find_resources("AWS::StepFunctions::StateMachine").values()))
    return parse_definition(machine)["States"]


def test_registration_status_and_the_execution_come_from_the_plan(states):
    register = states["Register model package"]["Parameters"]
    assert register["ModelApprovalStatus.$"] == "$.plan.approval.registration_status"
    assert register["CustomerMetadataProperties"]["registered-by-execution.$"] == "$$.Execution.Id"
    assert states["Register model package"]["Next"] == "Approval needed?"


def test_manual_mode_waits_on_a_task_token_and_auto_goes_straight_to_the_deploy(states):
    choice = states["Approval needed?"]
    assert choice["Choices"] == [{"Variable": "$.plan.approval.mode", "StringEquals": "manual", "Next": "Request approval"}]
    assert choice["Default"] == "Approved automatically"
    assert states["Approved automatically"]["Next"] == states["Mark approved"]["Next"] == "Score and deploy"
    request = states["Request approval"]
    assert request["Resource"] == WAIT and request["TimeoutSecondsPath"] == "$.plan.approval.timeout_seconds"
    message = request["Parameters"]["Message"]
    assert message["task_token.$"] == "$$.Task.Token" and message["evaluation.$"] == "$.gate"
    # the exact commands, each naming the package or the token
    assert "update-model-package --model-package-arn {} --model-approval-status Approved" in message["approve"]["model_registry.$"]
    assert "send-task-success" in message["approve"]["step_functions.$"] and "$$.Task.Token" in message["approve"]["step_functions.$"]
    assert message["reject"]["emulator.$"].startswith("States.Format('python -m emulator reject {}")
    assert request["Next"] == "Mark approved"
    assert states["Mark approved"]["Resource"] == "arn:aws:states:::aws-sdk:sagemaker:updateModelPackage"
    assert states["Mark approved"]["Parameters"]["ModelApprovalStatus"] == "Approved"


def test_rejection_and_timeout_reject_the_package_and_end_with_their_error(states):
    catches = {tuple(c["ErrorEquals"]): c for c in states["Request approval"]["Catch"]}
    assert list(catches) == [("ModelRejected",), ("States.Timeout",), ("States.ALL",)]  # specific ones first
    assert catches[("ModelRejected",)]["Next"] == "Mark rejected"
    assert catches[("States.Timeout",)]["Next"] == "Approval timed out"
    assert states["Mark rejected"]["Parameters"] == {"ModelPackageArn.$": "$.registration.ModelPackageArn",
                                                     "ModelApprovalStatus": "Rejected", "ApprovalDescription.$": "$.error.Cause"}
    assert states["Approval timed out"]["Parameters"]["Error"] == "ApprovalTimedOut"
    assert states["Approval timed out"]["Next"] == "Mark timed out"
    assert states["Mark timed out"]["Parameters"]["ModelApprovalStatus"] == "Rejected"
    failure_handler = catches[("States.ALL",)]["Next"]  # where every other failure goes
    for mark in ("Mark rejected", "Mark timed out"):
        assert states[mark]["Next"] == failure_handler and states[mark]["ResultPath"] is None


def test_the_registry_rule_invokes_the_approval_lambda(template):
    template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": ["ml-pipeline-models"], "ModelApprovalStatus": ["Approved", "Rejected"]},
        },
        "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [Match.string_like_regexp("RegistryApprovalFunction"), "Arn"]},
                                       "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200}})],
    })
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "handler.handler",
        "Environment": {"Variables": {"STATE_MACHINE_ARN": {"Ref": Match.string_like_regexp("TrainingPipelineStateMachine")}}},
        "Timeout": 60,
    })
    template.has_resource_properties("AWS::Lambda::Permission", {
        "Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com",
        "FunctionName": {"Fn::GetAtt": [Match.string_like_regexp("RegistryApprovalFunction"), "Arn"]},
    })


def _statements(template, role_prefix: str) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    found = []
    for policy in policies.values():
        roles = json.dumps(policy["Properties"]["Roles"])
        if role_prefix in roles:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_the_lambda_may_send_task_answers_and_read_histories_of_this_state_machine_only(template):
    statements = _statements(template, "RegistryApprovalFunctionServiceRole")
    send = next(s for s in statements if "states:SendTaskSuccess" in s["Action"])
    assert {"states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess"} <= set(send["Action"])
    resources = send["Resource"] if isinstance(send["Resource"], list) else [send["Resource"]]
    assert resources == [{"Ref": resources[0]["Ref"]}] and resources[0]["Ref"].startswith("TrainingPipelineStateMachine")
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"states:GetExecutionHistory", "states:DescribeExecution", "sagemaker:DescribeModelPackage"} <= actions
    assert "states:*" not in actions and "sagemaker:*" not in actions


def test_the_state_machine_may_publish_the_request_and_update_its_packages(template):
    statements = _statements(template, "TrainingPipelineStateMachineRole")
    update = [s for s in statements if s["Action"] == "sagemaker:updateModelPackage"
              or "sagemaker:updateModelPackage" in s.get("Action", [])]
    assert update and all("model-package/ml-pipeline-models/*" in json.dumps(s["Resource"]) for s in update)
    assert any(s["Action"] == "sns:Publish" or "sns:Publish" in s["Action"] for s in statements)


@pytest.mark.parametrize("context, words", [
    ({"approval_mode": "sometimes"}, "approval_mode 'sometimes'"),
    ({"approval_timeout_seconds": 0}, "approval_timeout_seconds"),
    ({"model_approval_status": "Maybe"}, "model_approval_status 'Maybe'"),
])
def test_bad_approval_settings_are_named(context, words):
    with pytest.raises(ConfigError, match=words):
        PipelineConfig.from_context(context)


def test_approval_settings_are_execution_settings():
    defaults = PipelineConfig().execution_defaults()
    assert defaults["approval_mode"] == "auto" and defaults["approval_timeout_seconds"] == 86400
