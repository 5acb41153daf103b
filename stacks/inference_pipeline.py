"""The inference state machine: records dropped under inference/ are validated against the deployed
model's schema, scored through the endpoint in batches, flagged when low-confidence, written to
predictions/<execution>/, drawn with the endpoint's captured traffic, and the execution fails loudly
(LowConfidencePrediction) when too many are low-confidence — every Task with Retry and Catch, every
outcome published to SNS.

Scoring is a Map over the batches the read step wrote: getObject -> the AWS SDK integration
``sagemakerruntime:invokeEndpoint`` -> putObject. No Lambda sits in the request path, so the endpoint
(its metrics, its data capture) sees exactly the calls a client makes, and each batch's body stays
out of the execution's state (only its key and scores' key travel). The capture report is a
processing job (CDK has no L2 task for it: a CustomState with the IAM written in ``_job_permissions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, Stack, SymlinkFollowMode
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.config import PipelineConfig
from stacks.execution_input import settings_with_defaults
from stacks.images import PipelineImages
from stacks.job_permissions import grant_processing_jobs, grant_put_metric_data
from stacks.model_monitoring import CLOUDWATCH_TRANSIENT, METRICS_NAMESPACE
from stacks.storage import CAPTURE_PREFIX, CODE_PREFIX
from stacks.task_policies import (
    LAMBDA_TRANSIENT,
    S3_SDK_TRANSIENT,
    SAGEMAKER_TRANSIENT,
    SNS_TRANSIENT,
    guard,
    notify_then_fail,
)

J = sfn.JsonPath
PROCESSING = "/opt/ml/processing"
LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
PREDICTIONS_PREFIX = "predictions/"
REPORTS_PREFIX = "reports/capture/"
REPORT_TIMEOUT_SECONDS = 1800
# InvokeEndpoint through the AWS SDK integration: the runtime model's errors keep their names; throttling
# and other unmodelled codes are SageMakerRuntime.SageMakerRuntimeException. These pass with time.
INVOKE_TRANSIENT = [
    "SageMakerRuntime.ServiceUnavailableException", "SageMakerRuntime.InternalFailureException",
    "SageMakerRuntime.ModelNotReadyException", "SageMakerRuntime.InternalDependencyException",
    "SageMakerRuntime.SageMakerRuntimeException", "SageMakerRuntime.SdkClientException",
]
# A model error may be a container that restarted (5xx) or a record it refuses (4xx): one more try.
INVOKE_MODEL_ERROR = ["SageMakerRuntime.ModelErrorException"]


@dataclass(frozen=True)
class InferencePipelineProps:
    config: PipelineConfig
    images: PipelineImages
    bucket: s3.IBucket
    key: kms.IKey
    sagemaker_role: iam.IRole
    topic: sns.ITopic


class InferencePipeline(Construct):
    """Exposes ``state_machine``, ``read_records``, ``filter_predictions`` and ``log_group``."""

    def __init__(self, scope: Construct, construct_id: str, props: InferencePipelineProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        self._stack = Stack.of(self)
        config = props.config
        self.read_records = self._function(
            "ReadRecords", "read_records", "Validates an inference file against the deployed model and writes its batches",
            {"DATA_BUCKET": props.bucket.bucket_name, "ENDPOINT_NAME": config.endpoint_name,
             "INFERENCE_PREFIX": config.inference_prefix})
        self.filter_predictions = self._function(
            "FilterPredictions", "filter_predictions", "Flags low-confidence predictions and writes every record's",
            {"DATA_BUCKET": props.bucket.bucket_name})
        self._function_permissions()

        failure = self._failure_handler()
        definition = (
            settings_with_defaults(self, failure, '{"input_s3_uri": "s3://<bucket>/' + config.inference_prefix
                                   + 'records.csv"}', config.inference_defaults())
            .next(self._lambda_step("Read and validate", self.read_records, {
                "defaults.$": "$.defaults", "config.$": "$.config", "execution_name.$": "$$.Execution.Name"},
                "$.plan", failure))
            .next(self._score(failure))
            .next(self._lambda_step("Flag low confidence", self.filter_predictions,
                                    {"plan.$": "$.plan", "config.$": "$.config"}, "$.filter", failure))
            .next(self._publish_low_confidence_rate())
            .next(self._report())
            .next(self._decide(failure))
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.hours(2),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            comment="Score records dropped under inference/ through the endpoint; fail on low confidence",
        )
        self._job_permissions(self.state_machine.role)

    # ------------------------------------------------------------------ Lambdas

    def _function(self, construct_id: str, folder: str, description: str, environment: dict) -> lambda_.Function:
        log_group = logs.LogGroup(self, f"{construct_id}Logs", retention=logs.RetentionDays.ONE_MONTH)
        return lambda_.Function(
            self, construct_id, runtime=lambda_.Runtime.PYTHON_3_12, handler="handler.handler",
            # the folder's rule modules are symlinks to processing_scripts/, staged as files
            code=lambda_.Code.from_asset(str(LAMBDAS_DIR / folder), exclude=["__pycache__", "*.pyc", "__init__.py"],
                                         follow_symlinks=SymlinkFollowMode.ALWAYS),
            description=description, memory_size=1024, timeout=Duration.seconds(120), environment=environment,
            log_group=log_group, tracing=lambda_.Tracing.ACTIVE,
        )

    def _function_permissions(self) -> None:
        """Each function reads and writes only the prefixes it uses; the read step may describe the
        pipeline's endpoint and the config and model behind it."""
        bucket, config = self.props.bucket, self.props.config
        bucket.grant_read(self.read_records, f"{config.inference_prefix}*")
        bucket.grant_read(self.read_records, "runs/*/processed/schema/*")
        bucket.grant_put(self.read_records, f"{PREDICTIONS_PREFIX}*")
        self.read_records.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{CAPTURE_PREFIX}*", f"{config.inference_prefix}*"]}}))
        self.read_records.add_to_role_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            resources=[self._endpoint_arn(), self._arn("endpoint-config", "*"), self._arn("model", "*")]))
        bucket.grant_read(self.filter_predictions, f"{PREDICTIONS_PREFIX}*")
        bucket.grant_read(self.filter_predictions, "runs/*/processed/schema/*")
        bucket.grant_put(self.filter_predictions, f"{PREDICTIONS_PREFIX}*")

    def _lambda_step(self, construct_id: str, function: lambda_.IFunction, payload: dict, result_path: str,
                     failure: sfn.IChainable) -> tasks.LambdaInvoke:
        """A Lambda call; only Lambda's own service errors are retried (the function's name bad input)."""
        task = tasks.LambdaInvoke(
            self, construct_id, lambda_function=function, payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True, retry_on_service_exceptions=False, result_path=result_path,
            task_timeout=sfn.Timeout.duration(Duration.minutes(3)),
        )
        return guard(task, LAMBDA_TRANSIENT, failure)

    # ------------------------------------------------------------------ steps

    def _score(self, failure: sfn.IChainable) -> sfn.Map:
        """Every batch through the endpoint, ``inference_max_concurrency`` at a time."""
        bucket = self.props.bucket
        score = sfn.Map(
            self, "Score batches",
            comment="Each batch: read it, InvokeEndpoint with its CSV records, write the answers beside it",
            items_path="$.plan.batches",
            item_selector={"batch.$": "$$.Map.Item.Value"},
            max_concurrency=self.props.config.inference_max_concurrency,
            result_path="$.scoring",
        )
        reraise = sfn.Fail(self, "Batch failed", error_path="$.error.Error", cause_path="$.error.Cause")
        read = tasks.CallAwsService(
            self, "Read batch", service="s3", action="getObject",
            iam_resources=[bucket.arn_for_objects(f"{PREDICTIONS_PREFIX}*")],
            parameters={"Bucket": bucket.bucket_name, "Key": J.string_at("$.batch.key")},
            result_selector={"body.$": "$.Body"}, result_path="$.input",
        )
        invoke = tasks.CallAwsService(
            self, "Invoke endpoint", service="sagemakerruntime", action="invokeEndpoint",
            iam_action="sagemaker:InvokeEndpoint", iam_resources=[self._endpoint_arn()],
            parameters={
                "EndpointName": self.props.config.endpoint_name,
                "ContentType": "text/csv",
                "Accept": "text/csv",
                "Body": J.string_at("$.input.body"),
                # eventMetadata.inferenceId of the batch's capture line
                "InferenceId": J.string_at("$.batch.inference_id"),
            },
            result_selector={"body.$": "$.Body", "variant.$": "$.InvokedProductionVariant"},
            result_path="$.scored",
            task_timeout=sfn.Timeout.duration(Duration.seconds(90)),
        )
        write = tasks.CallAwsService(
            self, "Write scores", service="s3", action="putObject",
            iam_resources=[bucket.arn_for_objects(f"{PREDICTIONS_PREFIX}*")],
            parameters={"Bucket": bucket.bucket_name, "Key": J.string_at("$.batch.scores_key"),
                        "Body": J.string_at("$.scored.body"), "ContentType": "text/csv"},
            result_path=J.DISCARD,
        )
        guard(read, S3_SDK_TRANSIENT, reraise)
        invoke.add_retry(errors=INVOKE_TRANSIENT, interval=Duration.seconds(1), max_attempts=5, backoff_rate=2.0,
                         max_delay=Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
        invoke.add_retry(errors=INVOKE_MODEL_ERROR, interval=Duration.seconds(2), max_attempts=1)
        invoke.add_catch(reraise, errors=[sfn.Errors.ALL], result_path="$.error")
        guard(write, S3_SDK_TRANSIENT, reraise)
        done = sfn.Pass(self, "Batch scored", parameters={
            "index.$": "$.batch.index", "records.$": "$.batch.count", "variant.$": "$.scored.variant"})
        score.item_processor(read.next(invoke).next(write).next(done))
        score.add_catch(failure, errors=[sfn.Errors.ALL], result_path="$.error")
        return score

    def _report(self) -> sfn.IChainable:
        """The capture report of the endpoint's traffic in the last ``capture_report_hours``; best
        effort: a report that cannot be drawn is noted, never the execution's failure. Skipped when
        nothing was captured in that window."""
        out = f"{PROCESSING}/report"
        arguments = (
            f"States.Array('--capture-dir', '{PROCESSING}/capture', '--schema-dir', '{PROCESSING}/schema', "
            f"'--output-dir', '{out}', '--run', $$.Execution.Name, "
            "'--confidence-threshold', States.Format('{}', $.config.confidence_threshold))"
        )

        def s3_input(name: str, uri_path: str, data_type: str = "S3Prefix") -> dict:
            return {"InputName": name, "S3Input": {"S3Uri.$": uri_path, "LocalPath": f"{PROCESSING}/{name}",
                                                   "S3DataType": data_type, "S3InputMode": "File",
                                                   "S3DataDistributionType": "FullyReplicated"}}

        code = {"InputName": "code", "S3Input": {
            "S3Uri": f"s3://{self.props.bucket.bucket_name}/{CODE_PREFIX}", "LocalPath": f"{PROCESSING}/input/code",
            "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}
        job = sfn.CustomState(self, "Draw capture report", state_json={
            "Type": "Task",
            "Comment": "Requests, predictions, confidence and input features over time, from the capture files",
            "Resource": f"arn:{self._stack.partition}:states:::sagemaker:createProcessingJob.sync",
            "Parameters": {
                "ProcessingJobName.$": "$.plan.report.job_name",
                "RoleArn": self.props.sagemaker_role.role_arn,
                "AppSpecification": {
                    "ImageUri": self.props.images.sklearn,
                    "ContainerEntrypoint": ["python3", f"{PROCESSING}/input/code/capture_report.py"],
                    "ContainerArguments.$": arguments,
                },
                # the capture of the last capture_report_hours, listed by read_records in a manifest
                "ProcessingInputs": [code, s3_input("capture", "$.plan.capture", "ManifestFile"),
                                     s3_input("schema", "$.plan.schema_prefix")],
                "ProcessingOutputConfig": {
                    "Outputs": [{"OutputName": "report", "S3Output": {
                        "S3Uri.$": "$.plan.report.output", "LocalPath": out, "S3UploadMode": "EndOfJob"}}],
                    "KmsKeyId": self.props.key.key_arn,
                },
                "ProcessingResources": {"ClusterConfig": {
                    "InstanceCount": 1, "InstanceType": self.props.config.processing_instance_type,
                    "VolumeSizeInGB": 30, "VolumeKmsKeyId": self.props.key.key_arn}},
                "StoppingCondition": {"MaxRuntimeInSeconds": REPORT_TIMEOUT_SECONDS},
                "Environment": {"PYTHONUNBUFFERED": "1"},
            },
            "ResultSelector": {"job.$": "$.ProcessingJobName", "status.$": "$.ProcessingJobStatus"},
            "ResultPath": "$.report",
            "TimeoutSeconds": REPORT_TIMEOUT_SECONDS + 600,
        })
        drawn = sfn.Pass(self, "Report drawn", parameters={
            "report.$": "States.Format('{}report.html', $.plan.report.output)"}, result_path="$.report")
        not_drawn = sfn.Pass(self, "Report not drawn", parameters={
            "report": "none", "why.$": "$.report_error.Cause"}, result_path="$.report")
        skipped = sfn.Pass(self, "Nothing captured in the window", parameters={
            "report": "none", "why.$": "States.Format('the endpoint wrote no capture file in the last {} hour(s)', "
                                       "$.plan.capture_window_hours)"}, result_path="$.report")
        job.add_retry(errors=SAGEMAKER_TRANSIENT, interval=Duration.seconds(5), max_attempts=3, backoff_rate=2.0,
                      max_delay=Duration.seconds(120), jitter_strategy=sfn.JitterType.FULL)
        job.add_catch(not_drawn, errors=[sfn.Errors.ALL], result_path="$.report_error")
        joined = sfn.Pass(self, "Report done")
        job.next(drawn)
        for state in (drawn, not_drawn, skipped):
            state.next(joined)
        return sfn.Chain.custom(
            sfn.Choice(self, "Anything captured?")
            .when(sfn.Condition.boolean_equals("$.plan.capture_exists", True), job)
            .otherwise(skipped),
            [joined], joined)

    def _publish_low_confidence_rate(self) -> sfn.IChainable:
        """The share of low-confidence records as LowConfidenceRate (the monitoring namespace, dimension
        EndpointName), for the dashboard, before the decision so a failing file counts too. A metric
        that cannot be published after the retries is noted, never the reason an inference fails."""
        # A CustomState, not CallAwsService: PutMetricData takes no resource; _job_permissions grants
        # it for the monitoring namespace only.
        publish = sfn.CustomState(self, "Publish low-confidence rate", state_json={
            "Type": "Task",
            "Comment": "LowConfidenceRate for the dashboard (MlPipeline/ModelMonitor, per endpoint)",
            "Resource": f"arn:{self._stack.partition}:states:::aws-sdk:cloudwatch:putMetricData",
            "Parameters": {"Namespace": METRICS_NAMESPACE, "MetricData": [{
                "MetricName": "LowConfidenceRate", "Unit": "None", "Value.$": "$.filter.share",
                "Dimensions": [{"Name": "EndpointName", "Value": self.props.config.endpoint_name}]}]},
            # not None: jsii drops None values, and the output would replace the whole state
            "ResultSelector": {"RequestId.$": "$.SdkResponseMetadata.RequestId"},
            "ResultPath": "$.published",
        })
        not_published = sfn.Pass(self, "Rate not published", result_path="$.published",
                                 parameters={"error.$": "$.error.Error", "cause.$": "$.error.Cause"})
        joined = sfn.Pass(self, "Rate noted")
        guard(publish, CLOUDWATCH_TRANSIENT, not_published)
        publish.next(joined)
        not_published.next(joined)
        return sfn.Chain.custom(publish, [joined], joined)

    def _decide(self, failure: sfn.IChainable) -> sfn.IChainable:
        too_many = sfn.Pass(
            self, "Too many low-confidence",
            parameters={"Error": "LowConfidencePrediction", "Cause.$": "$.filter.reason"}, result_path="$.error",
        ).next(failure)
        notify = tasks.SnsPublish(
            self, "Notify success", topic=self.props.topic, subject="ML inference succeeded",
            message=sfn.TaskInput.from_object({
                "execution.$": "$$.Execution.Id", "status": "SUCCEEDED", "input.$": "$.plan.input",
                "records.$": "$.filter.records", "low_confidence.$": "$.filter.low_confidence",
                "predictions.$": "$.filter.predictions", "report.$": "$.report.report",
            }),
            result_path=J.DISCARD,
        )
        guard(notify, SNS_TRANSIENT, failure)
        summary = sfn.Pass(self, "Summarize", parameters={
            "input.$": "$.plan.input", "records.$": "$.filter.records", "low_confidence.$": "$.filter.low_confidence",
            "share.$": "$.filter.share", "predictions.$": "$.filter.predictions", "report.$": "$.report.report",
            "notes.$": "$.plan.notes"})
        notify.next(summary).next(sfn.Succeed(self, "Inference succeeded"))
        return (
            sfn.Choice(self, "Confident enough?")
            .when(sfn.Condition.boolean_equals("$.filter.passed", True), notify)
            .otherwise(too_many)
        )

    def _failure_handler(self) -> sfn.IChainable:
        return notify_then_fail(self, self.props.topic, "ML inference failed", "Inference failed")

    # ------------------------------------------------------------------ IAM

    def _arn(self, resource: str, name: str) -> str:
        return self._stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

    def _endpoint_arn(self) -> str:
        return self._arn("endpoint", self.props.config.endpoint_name.lower())  # SageMaker ARNs are lower-case

    def _job_permissions(self, role: iam.IRole) -> None:
        """What the report's CustomState needs (its processing job, the managed rule `.sync` uses, the
        SageMaker role passed to it, the data key for the objects the Map reads and writes) and the
        low-confidence rate's PutMetricData."""
        grant_processing_jobs(role, sid="CaptureReportJob", job_names="capture-report-*",
                              sagemaker_role=self.props.sagemaker_role, key=self.props.key)
        grant_put_metric_data(role, sid="PublishLowConfidenceRate", namespace=METRICS_NAMESPACE)
