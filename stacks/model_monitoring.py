"""The monitoring state machine: on a schedule and on demand, collect the window's captured traffic,
analyse drift and live quality against the champion's baseline (a processing job running
processing_scripts/drift.py), publish the results as CloudWatch metrics with alarms on them, and
start the training state machine on a retraining set when drift or degraded quality cross their
thresholds. Every Task has Retry on transient errors and a Catch to a failure handler that notifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
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
from stacks.job_permissions import grant_processing_jobs, grant_put_metric_data
from stacks.pipeline_functions import LAMBDAS_DIR, RUNTIME
from stacks.storage import CODE_PREFIX
from stacks.task_policies import LAMBDA_TRANSIENT, SAGEMAKER_TRANSIENT, SNS_TRANSIENT, guard, notify_then_fail

J = sfn.JsonPath
PROCESSING = "/opt/ml/processing"
# The namespace of every metric the monitoring loop publishes (and the inference pipeline's
# LowConfidenceRate), each with an EndpointName dimension.
METRICS_NAMESPACE = "MlPipeline/ModelMonitor"
CLOUDWATCH_TRANSIENT = ["CloudWatch.CloudWatchException", "CloudWatch.SdkClientException"]
# states:startExecution: throttling, too many running executions, the service's faults
SFN_TRANSIENT = ["StepFunctions.ExecutionLimitExceededException", "StepFunctions.AWSStepFunctionsException",
                 "StepFunctions.SdkClientException"]
ANALYSIS_TIMEOUT_SECONDS = 3600


def drift_alarm_name(prefix: str) -> str:
    return f"{prefix}-data-drift"


def quality_alarm_name(prefix: str) -> str:
    return f"{prefix}-live-quality"


@dataclass(frozen=True)
class ModelMonitoringProps:
    config: PipelineConfig
    sklearn_image: str
    bucket: s3.IBucket
    key: kms.IKey
    sagemaker_role: iam.IRole
    topic: sns.ITopic
    training_state_machine: sfn.IStateMachine
    name_prefix: str


class ModelMonitoring(Construct):
    """Exposes ``state_machine``, ``schedule`` (the EventBridge rule), ``drift_alarm``,
    ``quality_alarm`` and the three functions ``collect``, ``summarize`` and ``retraining_set``."""

    def __init__(self, scope: Construct, construct_id: str, props: ModelMonitoringProps) -> None:
        super().__init__(scope, construct_id)
        config = props.config
        if not props.name_prefix:
            raise ValueError("ModelMonitoring needs a name_prefix for its alarms")
        self.props = props
        self._stack = Stack.of(self)
        self.collect = self._function("CollectCapture", "collect_capture", "Collects a monitoring window's capture, "
                                      "baseline and ground truth", {"ENDPOINT_NAME": config.endpoint_name})
        props.bucket.grant_read(self.collect)
        props.bucket.grant_put(self.collect, "monitoring/*")
        self.summarize = self._function("DriftMetrics", "drift_metrics", "Turns a drift summary into CloudWatch metric data", {})
        props.bucket.grant_read(self.summarize, "monitoring/*")
        self.retraining_set = self._function("RetrainingSet", "build_retraining_set",
                                             "Builds a retraining set from the champion's input and labelled traffic", {},
                                             memory_mb=1024, timeout_s=600)
        props.bucket.grant_read(self.retraining_set)
        props.bucket.grant_put(self.retraining_set, "retraining/*")

        failure = self._failure_handler()
        definition = (
            settings_with_defaults(self, failure, '{} or {"window_start": "2026-01-31T10:00:00Z", '
                                   '"window_end": "2026-01-31T11:00:00Z"}', self._defaults(), keep_defaults=False)
            .next(self._collect(failure))
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.seconds(ANALYSIS_TIMEOUT_SECONDS * 2),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            comment="Drift and live-quality monitoring of the endpoint's captured traffic; retrains on degradation",
        )
        self._permissions(self.state_machine.role)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"Runs the monitoring state machine {config.monitoring_schedule}",
            schedule=events.Schedule.expression(config.monitoring_schedule),
        )
        self.schedule.add_target(targets.SfnStateMachine(
            self.state_machine,
            # the window ends when the schedule fired, however late the execution starts
            input=events.RuleTargetInput.from_object({"trigger": "schedule", "window_end": events.EventField.time}),
            retry_attempts=4,
            max_event_age=Duration.hours(1),
        ))
        self._alarms()

    # ------------------------------------------------------------------ functions

    def _function(self, construct_id: str, folder: str, description: str, environment: dict,
                  memory_mb: int = 256, timeout_s: int = 120) -> lambda_.Function:
        log_group = logs.LogGroup(self, f"{construct_id}Logs", retention=logs.RetentionDays.ONE_MONTH)
        return lambda_.Function(
            self, construct_id, runtime=RUNTIME, handler="handler.handler",
            code=lambda_.Code.from_asset(str(Path(LAMBDAS_DIR) / folder), exclude=["__pycache__", "*.pyc", "__init__.py"]),
            description=description, memory_size=memory_mb, timeout=Duration.seconds(timeout_s),
            environment={"DATA_BUCKET": self.props.bucket.bucket_name, **environment},
            log_group=log_group, tracing=lambda_.Tracing.ACTIVE,
        )

    def _lambda_step(self, construct_id: str, function: lambda_.IFunction, payload: dict, result_path: str,
                     failure: sfn.IChainable, timeout_s: int = 180) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self, construct_id, lambda_function=function, payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True, retry_on_service_exceptions=False, result_path=result_path,
            task_timeout=sfn.Timeout.duration(Duration.seconds(timeout_s)),
        )
        return guard(task, LAMBDA_TRANSIENT, failure)

    # ------------------------------------------------------------------ the run

    def _defaults(self) -> dict:
        config = self.props.config
        return {"window_minutes": config.monitoring_window_minutes,
                "max_drifted_feature_share": config.max_drifted_feature_share,
                "retrain": config.retrain_on_drift,
                # training settings the retraining execution overrides (e.g. a tuning budget); the
                # training pipeline validates them as it validates any execution input
                "retraining_settings": {}}

    def _collect(self, failure: sfn.IChainable) -> sfn.IChainable:
        collect = self._lambda_step("Collect capture", self.collect, {
            "config.$": "$.config", "execution_name.$": "$$.Execution.Name", "started.$": "$$.Execution.StartTime",
        }, "$.collect", failure)
        quiet = sfn.Pass(self, "Nothing to analyse", parameters={
            "status": "NO_TRAFFIC", "message.$": "$.collect.message", "window.$": "$.collect.window"})
        analyse = self._analyse(failure)
        return collect.next(
            sfn.Choice(self, "Traffic in the window?")
            .when(sfn.Condition.boolean_equals("$.collect.traffic", True), analyse)
            .otherwise(quiet.next(sfn.Succeed(self, "No traffic")))
        )

    def _job(self, construct_id: str, with_ground_truth: bool, failure: sfn.IChainable) -> sfn.CustomState:
        inputs = [("code", f"s3://{self.props.bucket.bucket_name}/{CODE_PREFIX}", f"{PROCESSING}/input/code"),
                  ("capture", "$.collect.paths.capture", f"{PROCESSING}/capture"),
                  ("baseline", "$.collect.paths.baseline", f"{PROCESSING}/baseline")]
        config = self.props.config
        # live quality is judged on the gate's own metric and threshold (drift.py reads "auto" as the gate does)
        arguments = ["--capture-dir", f"{PROCESSING}/capture", "--baseline-dir", f"{PROCESSING}/baseline",
                     "--output-dir", f"{PROCESSING}/output", "--quality-metric", config.quality_metric,
                     "--quality-threshold", str(config.quality_threshold)]
        if with_ground_truth:
            inputs.append(("ground_truth", "$.collect.paths.ground_truth", f"{PROCESSING}/ground_truth"))
            arguments += ["--ground-truth-dir", f"{PROCESSING}/ground_truth"]

        def uri(value: str) -> dict:
            return {"S3Uri.$": value} if value.startswith("$") else {"S3Uri": value}

        parameters = {
            "ProcessingJobName.$": "$.collect.job_name",
            "RoleArn": self.props.sagemaker_role.role_arn,
            "AppSpecification": {
                "ImageUri": self.props.sklearn_image,
                "ContainerEntrypoint": ["python3", f"{PROCESSING}/input/code/drift.py"],
                "ContainerArguments": arguments,
            },
            "ProcessingInputs": [{"InputName": name, "S3Input": {
                **uri(source), "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated"}} for name, source, local in inputs],
            "ProcessingOutputConfig": {
                "Outputs": [{"OutputName": "analysis", "S3Output": {
                    "S3Uri.$": "$.collect.paths.analysis", "LocalPath": f"{PROCESSING}/output", "S3UploadMode": "EndOfJob"}}],
                "KmsKeyId": self.props.key.key_arn,
            },
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": self.props.config.processing_instance_type, "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": self.props.key.key_arn}},
            "StoppingCondition": {"MaxRuntimeInSeconds": ANALYSIS_TIMEOUT_SECONDS},
            "Environment": {"PYTHONUNBUFFERED": "1"},
        }
        state = sfn.CustomState(self, construct_id, state_json={
            "Type": "Task",
            "Comment": "Drift (PSI, KS) and, with labels, live quality against the champion's baseline",
            "Resource": f"arn:{self._stack.partition}:states:::sagemaker:createProcessingJob.sync",
            "Parameters": parameters,
            "ResultSelector": {"ProcessingJobName.$": "$.ProcessingJobName", "ProcessingJobStatus.$": "$.ProcessingJobStatus"},
            "ResultPath": "$.analysis",
            "TimeoutSeconds": ANALYSIS_TIMEOUT_SECONDS + 900,
        })
        return guard(state, SAGEMAKER_TRANSIENT, failure)

    def _analyse(self, failure: sfn.IChainable) -> sfn.IChainable:
        summarize = self._lambda_step("Read drift summary", self.summarize, {
            "summary_key.$": "$.collect.paths.summary_key", "endpoint.$": "$.collect.endpoint"}, "$.drift", failure)
        with_labels = self._job("Analyse drift and quality", True, failure)
        without_labels = self._job("Analyse drift", False, failure)
        with_labels.next(summarize)
        without_labels.next(summarize)
        # A CustomState, not CallAwsService: PutMetricData takes no resource, and CallAwsService would
        # grant it on "*" unconditioned; _permissions grants it for this namespace only.
        publish = sfn.CustomState(self, "Publish metrics", state_json={
            "Type": "Task",
            "Comment": "Drift share, max PSI, per-feature drift flags and live quality, for the alarms and the dashboard",
            "Resource": f"arn:{self._stack.partition}:states:::aws-sdk:cloudwatch:putMetricData",
            "Parameters": {"Namespace": METRICS_NAMESPACE, "MetricData.$": "$.drift.metric_data"},
            # not None: jsii drops None values, and the output would replace the whole state
            "ResultSelector": {"RequestId.$": "$.SdkResponseMetadata.RequestId"},
            "ResultPath": "$.published",
        })
        guard(publish, CLOUDWATCH_TRANSIENT, failure)
        summarize.next(publish).next(self._decide(failure))
        return (
            sfn.Choice(self, "Ground truth?")
            .when(sfn.Condition.number_greater_than("$.collect.ground_truth_files", 0), with_labels)
            .otherwise(without_labels)
        )

    def _report(self, construct_id: str, status: str, retraining: bool = False) -> sfn.Pass:
        """The execution's output: what was found and where the report is."""
        return sfn.Pass(self, construct_id, parameters={
            "status": status,
            "window.$": "$.collect.window",
            "report.$": "$.collect.paths.report",
            "violations.$": "$.collect.paths.violations",
            "drifted_features.$": "$.drift.drifted_features",
            "drifted_feature_share.$": "$.drift.summary.drifted_feature_share",
            "max_psi.$": "$.drift.summary.max_psi",
            "live_quality.$": "$.drift.summary.live_quality",
            "quality_degraded.$": "$.drift.summary.quality_degraded",
            **({"retraining.$": "$.retraining", "retraining_execution.$": "$.retraining_execution.ExecutionArn"}
               if retraining else {}),
        })

    def _notify(self, construct_id: str, subject: str, message: dict, failure: sfn.IChainable) -> tasks.SnsPublish:
        notify = tasks.SnsPublish(self, construct_id, topic=self.props.topic, subject=subject,
                                  message=sfn.TaskInput.from_object(message), result_path=J.DISCARD)
        return guard(notify, SNS_TRANSIENT, failure)

    def _decide(self, failure: sfn.IChainable) -> sfn.IChainable:
        degraded = sfn.Condition.or_(
            sfn.Condition.number_greater_than_json_path("$.drift.summary.drifted_feature_share",
                                                        "$.config.max_drifted_feature_share"),
            sfn.Condition.boolean_equals("$.drift.summary.quality_degraded", True),
        )
        finding = {
            "execution.$": "$$.Execution.Id", "window.$": "$.collect.window.text",
            "drifted_features.$": "$.drift.drifted_features",
            "drifted_feature_share.$": "$.drift.summary.drifted_feature_share",
            "max_drifted_feature_share.$": "$.config.max_drifted_feature_share",
            "live_quality.$": "$.drift.summary.live_quality", "quality_degraded.$": "$.drift.summary.quality_degraded",
            "report.$": "$.collect.paths.report", "violations.$": "$.collect.paths.violations",
        }
        build = self._lambda_step("Build retraining set", self.retraining_set, {
            "previous_input.$": "$.collect.champion_run.input",
            "schema.$": "States.Format('{}schema.json', $.collect.paths.baseline)",
            "capture.$": "$.collect.paths.capture",
            "ground_truth.$": "$.collect.paths.ground_truth",
            "output.$": "$.collect.paths.retraining",
        }, "$.retraining", failure, timeout_s=900)
        start = tasks.StepFunctionsStartExecution(
            self, "Start retraining", state_machine=self.props.training_state_machine,
            integration_pattern=sfn.IntegrationPattern.REQUEST_RESPONSE,
            input=sfn.TaskInput.from_json_path_at("$.retraining_input.value"),
            name=J.format("retrain-{}", J.string_at("$$.Execution.Name")),
            result_selector={"ExecutionArn.$": "$.ExecutionArn"}, result_path="$.retraining_execution",
        )
        guard(start, SFN_TRANSIENT, failure)
        retraining_input = sfn.Pass(self, "Retraining input", result_path="$.retraining_input", parameters={
            "value.$": "States.JsonMerge($.config.retraining_settings, $.retraining.start, false)"})
        retraining_notice = self._notify("Notify retraining", "ML monitoring: drift or degraded quality, retraining started", {
            **finding, "status": "RETRAINING", "retraining_input.$": "$.retraining.input_s3_uri",
            "labelled_records.$": "$.retraining.labelled_records",
            "retraining_execution.$": "$.retraining_execution.ExecutionArn"}, failure)
        start.next(retraining_notice).next(self._report("Retraining report", "RETRAINING", retraining=True)) \
            .next(sfn.Succeed(self, "Retraining started"))
        alert = self._notify("Notify degradation", "ML monitoring: drift or degraded quality", {
            **finding, "status": "DEGRADED",
            "retraining": "not started: retraining is off (retrain_on_drift) or no captured record has a label yet; "
                          "upload ground truth under ground-truth/ (README) and monitor again"}, failure)
        alert.next(self._report("Degradation report", "DEGRADED")).next(sfn.Succeed(self, "Degradation notified"))
        labelled = (
            sfn.Choice(self, "Labelled records?")
            .when(sfn.Condition.number_greater_than("$.retraining.labelled_records", 0), retraining_input.next(start))
            .otherwise(alert)
        )
        build.next(labelled)
        return (
            sfn.Choice(self, "Drift or degraded quality?")
            .when(sfn.Condition.and_(degraded, sfn.Condition.boolean_equals("$.config.retrain", True)), build)
            .when(degraded, alert)
            .otherwise(self._report("Healthy report", "HEALTHY").next(sfn.Succeed(self, "No drift")))
        )

    def _failure_handler(self) -> sfn.IChainable:
        return notify_then_fail(self, self.props.topic, "ML monitoring failed", "Monitoring failed")

    # ------------------------------------------------------------------ IAM, alarms

    def _permissions(self, role: iam.IRole) -> None:
        grant_processing_jobs(role, sid="DriftProcessingJobs", job_names="*", sagemaker_role=self.props.sagemaker_role,
                              key=self.props.key)
        grant_put_metric_data(role, sid="PublishMonitoringMetrics", namespace=METRICS_NAMESPACE)

    def metric(self, name: str, statistic: str = "Maximum", **dimensions: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE, metric_name=name, statistic=statistic,
            dimensions_map={"EndpointName": self.props.config.endpoint_name, **dimensions},
            period=Duration.minutes(min(self.props.config.monitoring_window_minutes, 24 * 60)),
        )

    def _alarms(self) -> None:
        config = self.props.config
        self.drift_alarm = cloudwatch.Alarm(
            self, "DriftAlarm", alarm_name=drift_alarm_name(self.props.name_prefix),
            alarm_description=f"More than {config.max_drifted_feature_share:g} of the features drifted from the "
                              f"champion's training baseline (endpoint {config.endpoint_name})",
            metric=self.metric("DriftedFeatureShare"), threshold=config.max_drifted_feature_share,
            evaluation_periods=1, comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.quality_alarm = cloudwatch.Alarm(
            self, "QualityAlarm", alarm_name=quality_alarm_name(self.props.name_prefix),
            alarm_description=f"The champion's quality on labelled live traffic fell below the gate (endpoint "
                              f"{config.endpoint_name})",
            metric=self.metric("QualityDegraded"), threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.drift_alarm, self.quality_alarm):
            alarm.add_alarm_action(actions.SnsAction(self.props.topic))
            alarm.add_ok_action(actions.SnsAction(self.props.topic))
