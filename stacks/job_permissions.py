"""What a state machine's role needs to run SageMaker processing jobs through `.sync` CustomStates.

CDK has no task for processing jobs, so nothing grants these for us: the jobs themselves (scoped to
their names), the managed EventBridge rule `.sync` polls through, passing the SageMaker role to the
service, and the data key (the objects the jobs read and write, the volumes SageMaker encrypts).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

SYNC_RULE = "StepFunctionsGetEventsForSageMakerProcessingJobsRule"


def grant_processing_jobs(role: iam.IRole, *, sid: str, job_names: str, sagemaker_role: iam.IRole,
                          key: kms.IKey) -> None:
    """``job_names``: the processing-job name pattern the role may create, describe and stop."""
    stack = Stack.of(role)
    role.add_to_principal_policy(iam.PolicyStatement(
        sid=sid,
        actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                 "sagemaker:AddTags"],
        resources=[stack.format_arn(service="sagemaker", resource="processing-job", resource_name=job_names)]))
    role.add_to_principal_policy(iam.PolicyStatement(
        sid="SyncJobEventRule", actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        resources=[stack.format_arn(service="events", resource="rule", resource_name=SYNC_RULE)]))
    role.add_to_principal_policy(iam.PolicyStatement(
        sid="PassSageMakerRole", actions=["iam:PassRole"], resources=[sagemaker_role.role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
    key.grant_encrypt_decrypt(role)
    role.add_to_principal_policy(iam.PolicyStatement(
        sid="VolumeKeyGrants", actions=["kms:CreateGrant", "kms:DescribeKey"], resources=[key.key_arn],
        conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))


def grant_put_metric_data(role: iam.IRole, *, sid: str, namespace: str) -> None:
    """PutMetricData supports no resource: the grant is conditioned on our namespace instead."""
    role.add_to_principal_policy(iam.PolicyStatement(
        sid=sid, actions=["cloudwatch:PutMetricData"], resources=["*"],
        conditions={"StringEquals": {"cloudwatch:namespace": namespace}}))
