"""cdk-nag findings that are accepted, each with its reason. Nothing else is suppressed."""

from __future__ import annotations

from aws_cdk import Stack
from cdk_nag import NagPackSuppression, NagSuppressions


def apply_suppressions(stack: Stack) -> None:
    NagSuppressions.add_stack_suppressions(
        stack,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason="AWSLambdaBasicExecutionRole is the AWS-managed minimum for Lambda logging; it is "
                "attached by CDK to the pipeline's functions and to CDK's own BucketDeployment handler.",
                applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="Wildcards are scoped to this pipeline: objects of its own bucket, SageMaker resources "
                "of its own account and region whose names are derived per execution, its log groups, "
                "KMS data-key actions on its own key, and X-Ray/ECR/CloudWatch actions that take no resource.",
            ),
            NagPackSuppression(
                id="AwsSolutions-L1",
                reason="Only CDK's own BucketDeployment handler is affected; its runtime is chosen by aws-cdk-lib.",
            ),
            NagPackSuppression(
                id="AwsSolutions-SQS3",
                reason="This queue is itself the dead-letter queue of the S3 upload trigger.",
            ),
        ],
    )
