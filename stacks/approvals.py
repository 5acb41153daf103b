"""Approving a model where ML engineers approve it: a change of the package's status in the model
registry resumes the training execution that waits for it.

SageMaker emits "SageMaker Model Package State Change" to EventBridge for every status change; a rule
on the pipeline's group (Approved or Rejected) invokes the registry approval Lambda, which answers
the waiting execution's task token (lambdas/registry_approval/handler.py)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.registry_approval.handler import REGISTERED_BY
from stacks.pipeline_functions import LAMBDAS_DIR, RUNTIME

__all__ = ["REGISTERED_BY", "RegistryApproval"]
STATE_CHANGE = "SageMaker Model Package State Change"


class RegistryApproval(Construct):
    """The rule and its Lambda for ``model_package_group``, answering executions of ``state_machine``.
    Exposes ``function`` and ``rule``."""

    def __init__(self, scope: Construct, construct_id: str, *, state_machine: sfn.IStateMachine,
                 model_package_group: str) -> None:
        super().__init__(scope, construct_id)
        if not model_package_group:
            raise ValueError("RegistryApproval needs the model package group whose approvals it forwards")
        stack = Stack.of(self)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(LAMBDAS_DIR / "registry_approval"), exclude=["__pycache__", "*.pyc", "__init__.py"]),
            description="Resumes a training execution waiting for approval when its model package is approved or rejected",
            memory_size=256,
            # a registry decision can come just before the approval request is published: it waits a little
            timeout=Duration.seconds(60),
            environment={"STATE_MACHINE_ARN": state_machine.state_machine_arn},
            log_group=logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_MONTH),
            tracing=lambda_.Tracing.ACTIVE,
        )
        # SendTaskSuccess/Failure/Heartbeat on this state machine's tasks; reading its executions'
        # histories (where the approval request, and so the task token, is recorded)
        state_machine.grant_task_response(self.function)
        state_machine.grant_read(self.function)
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribeModelPackage"],
            resources=[stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{model_package_group}/*")],
        ))
        self.rule = events.Rule(
            self,
            "PackageDecided",
            description=f"A model package of {model_package_group} was approved or rejected in the model registry",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[STATE_CHANGE],
                detail={"ModelPackageGroupName": [model_package_group], "ModelApprovalStatus": ["Approved", "Rejected"]},
            ),
        )
        self.rule.add_target(targets.LambdaFunction(self.function, retry_attempts=4, max_event_age=Duration.hours(2)))
