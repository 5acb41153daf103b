"""The one stack: it only composes the constructs."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.approvals import RegistryApproval
from stacks.config import PipelineConfig
from stacks.dashboard import PipelineDashboard
from stacks.images import PipelineImages
from stacks.inference_pipeline import InferencePipeline, InferencePipelineProps
from stacks.model_monitoring import ModelMonitoring, ModelMonitoringProps
from stacks.monitoring import EndpointAlarms, ExecutionAlarm, endpoint_alarm_names
from stacks.notifications import PipelineNotifications
from stacks.pipeline_functions import PipelineFunctions
from stacks.sagemaker_role import SageMakerExecutionRole
from stacks.storage import DataStorage, DataStorageProps
from stacks.training_pipeline import TrainingPipeline, TrainingPipelineProps
from stacks.triggers import S3UploadTrigger

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class MlPipelineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig,
                 removal_policy: RemovalPolicy = RemovalPolicy.RETAIN, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not self.region or self.region.startswith("${Token"):
            raise ValueError("MlPipelineStack needs a concrete region (image URIs are regional): pass env=Environment(region=...)")

        storage = DataStorage(
            self,
            "Storage",
            DataStorageProps(
                processing_code_dir=PROJECT_ROOT / "processing_scripts",
                raw_prefix=config.raw_prefix,
                removal_policy=removal_policy,
            ),
        )
        notifications = PipelineNotifications(self, "Notifications", key=storage.key, email=config.notification_email)
        sagemaker_role = SageMakerExecutionRole(self, "SageMakerRole", bucket=storage.bucket, key=storage.key)
        EndpointAlarms(self, "EndpointAlarms", endpoint_name=config.endpoint_name, name_prefix=construct_id)
        functions = PipelineFunctions(
            self, "Functions", bucket=storage.bucket, rollback_alarm_names=endpoint_alarm_names(construct_id),
            endpoint_instance_count=config.endpoint_instance_count,
            endpoint_name=config.endpoint_name,
            job_timeout_seconds=config.job_timeout_seconds,
        )
        sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=config.model_package_group,
            model_package_group_description="Models trained and gated by the ML pipeline",
        )
        images = PipelineImages.for_region(self.region)
        pipeline = TrainingPipeline(
            self,
            "TrainingPipeline",
            TrainingPipelineProps(
                config=config,
                images=images,
                bucket=storage.bucket,
                key=storage.key,
                sagemaker_role=sagemaker_role.role,
                validate_input=functions.validate_input,
                quality_gate=functions.quality_gate,
                select_winner=functions.select_winner,
                topic=notifications.topic,
            ),
        )
        RegistryApproval(self, "RegistryApproval", state_machine=pipeline.state_machine,
                         model_package_group=config.model_package_group)
        # The state machine copies the processing scripts' destination; make sure they are there first.
        pipeline.state_machine.node.add_dependency(storage.code_deployment)
        S3UploadTrigger(
            self,
            "Trigger",
            bucket=storage.bucket,
            raw_prefix=config.raw_prefix,
            state_machine=pipeline.state_machine,
            key=storage.key,
        )
        ExecutionAlarm(self, "Alarms", state_machine=pipeline.state_machine, topic=notifications.topic)
        # Records dropped under inference/ are scored through the endpoint the training pipeline deploys.
        inference = InferencePipeline(
            self,
            "InferencePipeline",
            InferencePipelineProps(
                config=config,
                images=PipelineImages.for_region(self.region),
                bucket=storage.bucket,
                key=storage.key,
                sagemaker_role=sagemaker_role.role,
                topic=notifications.topic,
            ),
        )
        inference.state_machine.node.add_dependency(storage.code_deployment)  # the report job's script
        S3UploadTrigger(
            self,
            "InferenceTrigger",
            bucket=storage.bucket,
            raw_prefix=config.inference_prefix,
            state_machine=inference.state_machine,
            key=storage.key,
            suffixes=(".csv", ".jsonl"),
            rule_id="RecordsUploaded",
            started="the inference pipeline",
        )
        ExecutionAlarm(self, "InferenceAlarms", state_machine=inference.state_machine, topic=notifications.topic)
        monitoring = ModelMonitoring(
            self,
            "ModelMonitoring",
            ModelMonitoringProps(
                config=config, sklearn_image=images.sklearn, bucket=storage.bucket, key=storage.key,
                sagemaker_role=sagemaker_role.role, topic=notifications.topic,
                training_state_machine=pipeline.state_machine, name_prefix=construct_id,
            ),
        )
        monitoring.state_machine.node.add_dependency(storage.code_deployment)
        ExecutionAlarm(self, "MonitoringAlarms", state_machine=monitoring.state_machine, topic=notifications.topic,
                       description="A monitoring execution failed or timed out")
        PipelineDashboard(
            self, "Dashboard", dashboard_name=f"{construct_id}-operations", endpoint_name=config.endpoint_name,
            state_machines=[("Training", pipeline.state_machine), ("Inference", inference.state_machine),
                            ("Monitoring", monitoring.state_machine)],
        )

        self.bucket = storage.bucket
        self.state_machine = pipeline.state_machine
        self.inference_state_machine = inference.state_machine
        CfnOutput(self, "DataBucketName", value=storage.bucket.bucket_name)
        CfnOutput(self, "RawDataUri", value=f"s3://{storage.bucket.bucket_name}/{config.raw_prefix}")
        CfnOutput(self, "StateMachineArn", value=pipeline.state_machine.state_machine_arn)
        CfnOutput(self, "InferenceStateMachineArn", value=inference.state_machine.state_machine_arn)
        CfnOutput(self, "InferenceUri", value=f"s3://{storage.bucket.bucket_name}/{config.inference_prefix}")
        CfnOutput(self, "NotificationTopicArn", value=notifications.topic.topic_arn)
        CfnOutput(self, "MonitoringStateMachineArn", value=monitoring.state_machine.state_machine_arn)
