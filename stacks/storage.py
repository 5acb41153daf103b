"""Data storage: the KMS-encrypted data bucket, its access-log bucket, and the deployed job code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

# Key prefixes inside the data bucket (the contract between the stack, the Lambdas and the jobs).
CODE_PREFIX = "code/processing/"
# The endpoint's data capture (DataCaptureConfig.DestinationS3Uri): <endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl
CAPTURE_PREFIX = "capture/"


@dataclass(frozen=True)
class DataStorageProps:
    processing_code_dir: Path
    raw_prefix: str = "raw/"
    # Keep data when the stack is deleted; tests and throw-away stacks may set DESTROY.
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN


class DataStorage(Construct):
    """The pipeline's bucket layout: raw/ (uploads), runs/<execution>/ (every job's outputs),
    champion/ (the deployed model's evaluation), code/ (processing scripts), scoring/ (batch input).
    """

    def __init__(self, scope: Construct, construct_id: str, props: DataStorageProps) -> None:
        super().__init__(scope, construct_id)
        if not props.processing_code_dir.is_dir():
            raise ValueError(f"processing code folder {props.processing_code_dir} does not exist")
        self.raw_prefix = props.raw_prefix

        self.key = kms.Key(
            self,
            "DataKey",
            description="Encrypts the ML pipeline's data, models and job volumes",
            enable_key_rotation=True,
            removal_policy=props.removal_policy,
        )
        # Server access logs cannot go to a KMS-encrypted bucket; S3-managed keys are the supported choice.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=props.removal_policy,
        )
        self.bucket = s3.Bucket(
            self,
            "DataBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data-bucket/",
            # The S3 -> EventBridge trigger needs bucket notifications on.
            event_bridge_enabled=True,
            removal_policy=props.removal_policy,
        )
        self.code_deployment = s3deploy.BucketDeployment(
            self,
            "ProcessingCode",
            sources=[s3deploy.Source.asset(str(props.processing_code_dir), exclude=["__pycache__", "*.pyc"])],
            destination_bucket=self.bucket,
            destination_key_prefix=CODE_PREFIX,
            prune=True,
            retain_on_delete=False,
        )

    def uri(self, prefix: str) -> str:
        """s3:// URI of a prefix in the data bucket (a token until deploy)."""
        return self.bucket.s3_url_for_object(prefix)
