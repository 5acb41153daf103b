"""The training state machine: validate, preprocess, train the competing candidates (stacks/candidates.py),
select the winner, gate it, register every candidate, score and deploy the winner — every Task with
Retry and Catch, every outcome published to SNS.

CDK has L2 tasks for endpoint configs, endpoints and transform jobs; they are used here.
Processing and tuning have no L2 task, and the training L2 cannot take its hyperparameters as one
object from the state (the tuned values are only known at run time), so those three are
CustomStates whose IAM is written out in ``_job_permissions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Duration, Size, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from processing_scripts.serving.package import CONTAINER_ENVIRONMENT
from stacks import preprocessing
from stacks.approvals import REGISTERED_BY
from stacks.candidates import CandidateFanOut, CandidateProps
from stacks.config import PipelineConfig
from stacks.execution_input import settings_with_defaults
from stacks.images import PipelineImages
from stacks.storage import CAPTURE_PREFIX, CODE_PREFIX
from stacks.task_policies import (
    LAMBDA_TRANSIENT,
    S3_SDK_TRANSIENT,
    SAGEMAKER_SDK_CLIENT,
    SAGEMAKER_SDK_TRANSIENT,
    SAGEMAKER_TRANSIENT,
    SNS_TRANSIENT,
    guard,
    notify_then_fail,
)
from stacks.training_code import ScriptModeCode

J = sfn.JsonPath
PROCESSING = "/opt/ml/processing"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
WINNER = "$.selection.winner"  # the candidate Select winner chose: its entry from the fan-out
ENDPOINT_POLL_SECONDS = 30
ENDPOINT_MAX_POLLS = 60  # 30 minutes of Creating/Updating before the deploy is declared failed
# "Find endpoint" retries a SageMaker error that does not say "no such endpoint" (throttling, a 5xx:
# the AWS SDK integration names them all SageMaker.SageMakerException) after these waits, in seconds.
LOOKUP_BACKOFF_SECONDS = (2, 5, 10, 20, 40)
# One deployment per endpoint at a time: executions queue on an S3 lock object for up to this long.
DEPLOY_LOCK_WAIT_SECONDS = 30
DEPLOY_LOCK_MAX_WAITS = 240  # 2 hours: several other executions' full deployments
S3_CONDITION_CONFLICT = ["S3.ConditionalRequestConflictException"]  # 409: another conditional write, retry
S3_PRECONDITION_FAILED = ["S3.PreconditionFailedException"]  # 412: If-Match / If-None-Match did not hold
SFN_SDK_TRANSIENT = ["Sfn.SfnException", "Sfn.SdkClientException"]


# The cause of DescribeEndpoint's ValidationException for an endpoint that does not exist yet.
ENDPOINT_MISSING_PATTERN = '*Could not find endpoint "*'

@dataclass(frozen=True)
class TrainingPipelineProps:
    config: PipelineConfig
    images: PipelineImages
    bucket: s3.IBucket
    key: kms.IKey
    sagemaker_role: iam.IRole
    validate_input: lambda_.IFunction
    quality_gate: lambda_.IFunction
    select_winner: lambda_.IFunction
    topic: sns.ITopic


class TrainingPipeline(Construct):
    """Exposes ``state_machine`` and ``log_group``."""

    def __init__(self, scope: Construct, construct_id: str, props: TrainingPipelineProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        self._stack = Stack.of(self)

        failure = self._failure_handler()
        # the Random Forest's script-mode code: sourcedir.tar.gz, a CDK file asset the jobs read
        self.forest_code = ScriptModeCode(self, "RandomForestCode", source_dir=PROJECT_ROOT / "training_scripts" / "random_forest",
                                          entry_point="train.py")
        self.forest_code.grant_read(props.sagemaker_role)
        self.candidates = CandidateFanOut(self, "Candidates", CandidateProps(
            config=props.config, images=props.images, key=props.key, sagemaker_role=props.sagemaker_role,
            forest_code=self.forest_code, job_state=self.job_state, processing_parameters=self.processing_parameters))
        self.candidates.fan_out.add_catch(failure, errors=[sfn.Errors.ALL], result_path="$.error")
        # The pipeline, in order; each step is a method below and every Task in it is guarded
        # (Retry on transient errors, Catch -> the failure handler).
        definition = (
            settings_with_defaults(self, failure, '{"input_s3_uri": "s3://<bucket>/raw/data.csv"} (see docs/execution-input.md)',
                                   self.props.config.execution_defaults())
            .next(self._validate(failure))
            .next(self._preprocess(failure))
            .next(self.candidates.fan_out)
            .next(self._select_winner(failure))
            .next(self.candidates.register_losers(failure, props.config.model_package_group,
                                                  lambda path: self._serving_containers(False, path)))
            .next(self._score_champion(failure))
            .next(self._gate(failure))
            .next(self._create_model(failure))
            .next(self._register(failure))
            .next(self._approval(failure))
            .next(self._score_and_deploy(failure))
            .next(self._notify_success(failure))
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.seconds(props.config.execution_timeout_seconds),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            comment="Train competing models on a CSV in S3, then gate, register and deploy the winner",
        )
        self._job_permissions(self.state_machine.role)

    # ------------------------------------------------------------------ input

    def _lambda_step(self, construct_id: str, function: lambda_.IFunction, payload: dict, result_path: str,
                     failure: sfn.IChainable) -> tasks.LambdaInvoke:
        """A Lambda call whose returned value lands at ``result_path``. Only Lambda's own service
        errors are retried: the function's exceptions name bad input, which a retry cannot fix."""
        task = tasks.LambdaInvoke(
            self,
            construct_id,
            lambda_function=function,
            payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path,
            task_timeout=sfn.Timeout.duration(Duration.minutes(3)),
        )
        return guard(task, LAMBDA_TRANSIENT, failure)

    def _validate(self, failure: sfn.IChainable) -> sfn.IChainable:
        payload = {
            "defaults.$": "$.defaults",
            "config.$": "$.config",
            "execution_name.$": "$$.Execution.Name",
            "execution_arn.$": "$$.Execution.Id",
        }
        return self._lambda_step("Validate input", self.props.validate_input, payload, "$.plan", failure)

    # ------------------------------------------------------------------ jobs

    def job_state(self, construct_id: str, action: str, parameters: dict, result_selector: dict, result_path: str,
                   failure: sfn.IChainable, comment: str, timeout_path: str | None = None) -> sfn.CustomState:
        """A `.sync` job. Its state times out a margin after the job's own StoppingCondition, or at
        ``timeout_path`` when the job's length is only known at run time (a tuning search)."""
        timeout = ({"TimeoutSecondsPath": timeout_path} if timeout_path
                   else {"TimeoutSeconds": self.props.config.job_timeout_seconds + 900})
        state = sfn.CustomState(
            self,
            construct_id,
            state_json={
                "Type": "Task",
                "Comment": comment,
                "Resource": f"arn:{self._stack.partition}:states:::sagemaker:{action}.sync",
                "Parameters": parameters,
                "ResultSelector": result_selector,
                "ResultPath": result_path,
                **timeout,
            },
        )
        return guard(state, SAGEMAKER_TRANSIENT, failure)

    def processing_parameters(self, name_path: str, image: str, script: str, arguments: list | str,
                               inputs: list[tuple[str, str, str]], outputs: list[tuple[str, str, str]]) -> dict:
        """A CreateProcessingJob request; ``image`` a URI or a JSONPath; inputs/outputs are (name, S3 URI
        or JSONPath, local folder)."""

        def uri(key: str, value: str) -> dict:
            return {f"{key}.$": value} if value.startswith(("$", "States.")) else {key: value}

        return {
            "ProcessingJobName.$": name_path,
            "RoleArn": self.props.sagemaker_role.role_arn,
            "AppSpecification": {
                **uri("ImageUri", image),
                "ContainerEntrypoint": ["python3", f"{PROCESSING}/input/code/{script}"],
                **({"ContainerArguments.$": arguments} if isinstance(arguments, str) else {"ContainerArguments": arguments}),
            },
            "ProcessingInputs": [
                {
                    "InputName": name,
                    "S3Input": {
                        **uri("S3Uri", source),
                        "LocalPath": local,
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                        "S3DataDistributionType": "FullyReplicated",
                    },
                }
                for name, source, local in [("code", self._code_uri(), f"{PROCESSING}/input/code"), *inputs]
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {"OutputName": name, "S3Output": {**uri("S3Uri", dest), "LocalPath": local, "S3UploadMode": "EndOfJob"}}
                    for name, dest, local in outputs
                ],
                "KmsKeyId": self.props.key.key_arn,
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType.$": "$.plan.config.processing_instance_type",
                    "VolumeSizeInGB": 30,
                    "VolumeKmsKeyId": self.props.key.key_arn,
                }
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.props.config.job_timeout_seconds},
            "Environment": {"PYTHONUNBUFFERED": "1"},
        }

    def _code_uri(self) -> str:
        return f"s3://{self.props.bucket.bucket_name}/{CODE_PREFIX}"

    def _preprocess(self, failure: sfn.IChainable) -> sfn.IChainable:
        return preprocessing.preprocess_steps(self, failure, self.props.config.processing_instance_count)

    def _select_winner(self, failure: sfn.IChainable) -> sfn.IChainable:
        """The leaderboard and the winner (lambdas/select_winner): AllCandidatesFailed when none trained."""
        payload = {"candidates.$": "$.candidates", "metric.$": "$.plan.quality.metric",
                   "direction.$": "$.plan.quality.direction"}
        return self._lambda_step("Select winner", self.props.select_winner, payload, "$.selection", failure)

    def _score_champion(self, failure: sfn.IChainable) -> sfn.IChainable:
        """Like for like: the deployed champion scored on this run's test split, through its own serving
        pipeline (a batch transform of its model over this run's raw test rows, then its metrics), so the
        gate compares both models on the same rows — a retrain on new data against the champion on that
        data, not on the split it was once tested on. Skipped (the gate then uses the champion record's
        own test value, and says so) when there is no champion run record, the run does not compare with
        the champion, or the champion was trained on another table (other columns or target)."""
        p = PROCESSING
        this_run = sfn.Pass(self, "Describe this run", result_path="$.this_run", parameters={
            "columns.$": "States.JsonToString($.plan.dataset.columns)", "target.$": "$.plan.config.target_column"})
        find = tasks.CallAwsService(
            self, "Find champion run", service="s3", action="getObject", iam_resources=self._lock_arns(),
            parameters={"Bucket": self.props.bucket.bucket_name, "Key": J.string_at("$.plan.paths.champion_run_key")},
            result_selector={"record.$": "States.StringToJson($.Body)"}, result_path="$.champion_run",
        )
        # "report" empty, not null: jsii drops None values, and the gate reads this path
        unscored = sfn.Pass(self, "Champion not rescored", result_path="$.champion_score",
                            parameters={"scored": False, "report": ""})
        find.add_retry(errors=S3_SDK_TRANSIENT, interval=Duration.seconds(2), max_attempts=3, backoff_rate=2.0,
                       max_delay=Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
        find.add_catch(unscored, errors=["S3.NoSuchKeyException"], result_path=J.DISCARD)
        find.add_catch(failure, errors=[sfn.Errors.ALL], result_path="$.error")
        transform = tasks.SageMakerCreateTransformJob(
            self, "Score champion",
            comment="The serving champion's answers on this run's raw test rows",
            transform_job_name=J.string_at("$.plan.job_names.champion_transform"),
            model_name=J.string_at("$.champion_run.record.model"),
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            role=self.props.sagemaker_role,
            batch_strategy=tasks.BatchStrategy.MULTI_RECORD,
            max_payload=Size.mebibytes(6),
            transform_input=tasks.TransformInput(
                transform_data_source=tasks.TransformDataSource(s3_data_source=tasks.TransformS3DataSource(
                    s3_uri=J.string_at("$.plan.paths.batch"), s3_data_type=tasks.S3DataType.S3_PREFIX)),
                content_type="text/csv", split_type=tasks.SplitType.LINE),
            transform_output=tasks.TransformOutput(
                s3_output_path=J.string_at("$.plan.paths.champion_predictions"), accept="text/csv",
                assemble_with=tasks.AssembleWith.LINE, encryption_key=self.props.key),
            transform_resources=tasks.TransformResources(
                instance_count=1, instance_type=ec2.InstanceType(J.string_at("$.plan.config.transform_instance_type")),
                volume_encryption_key=self.props.key),
            result_path=J.DISCARD,
            task_timeout=sfn.Timeout.duration(Duration.seconds(self.props.config.job_timeout_seconds + 900)),
        )
        guard(transform, SAGEMAKER_TRANSIENT, failure)
        parameters = self.processing_parameters(
            "$.plan.job_names.champion_evaluate", self.props.images.sklearn, "champion_metrics.py",
            ["--predictions-dir", f"{p}/predictions", "--test-dir", f"{p}/test", "--schema-dir", f"{p}/schema",
             "--output-dir", f"{p}/evaluation"],
            inputs=[("predictions", "$.plan.paths.champion_predictions", f"{p}/predictions"),
                    ("test", "$.plan.paths.test", f"{p}/test"),
                    ("schema", "$.plan.paths.schema", f"{p}/schema")],
            outputs=[("evaluation", "$.plan.paths.champion_evaluation", f"{p}/evaluation")],
        )
        evaluate = self.job_state(
            "Evaluate champion", "createProcessingJob", parameters,
            {"ProcessingJobName.$": "$.ProcessingJobName", "ProcessingJobStatus.$": "$.ProcessingJobStatus"},
            "$.champion_evaluation_job", failure, "The champion's metrics on this run's test split",
        )
        scored = sfn.Pass(self, "Champion rescored", result_path="$.champion_score",
                          parameters={"scored": True, "report.$": "$.plan.paths.champion_evaluation_report"})
        same_table = sfn.Condition.and_(
            sfn.Condition.boolean_equals("$.plan.config.no_worse_than_champion", True),
            sfn.Condition.is_present("$.champion_run.record.model"),
            sfn.Condition.is_present("$.champion_run.record.columns"),
            sfn.Condition.string_equals_json_path("$.champion_run.record.columns", "$.this_run.columns"),
            sfn.Condition.string_equals_json_path("$.champion_run.record.target", "$.this_run.target"),
        )
        done = sfn.Pass(self, "Champion compared")
        unscored.next(done)
        transform.next(evaluate).next(scored).next(done)
        find.next(sfn.Choice(self, "Score the champion here?").when(same_table, transform).otherwise(unscored))
        this_run.next(find)
        return sfn.Chain.custom(this_run, [done], done)

    # ------------------------------------------------------------------ gate, register, deploy

    def _gate_payload(self) -> dict:
        return {
            "evaluation_s3_uri.$": f"{WINNER}.evaluation_report",
            "champion_s3_uri.$": "$.plan.paths.champion_report",
            "metric.$": "$.plan.quality.metric",
            "threshold.$": "$.plan.quality.threshold",
            "direction.$": "$.plan.quality.direction",
            "no_worse_than_champion.$": "$.plan.config.no_worse_than_champion",
            "champion_rescored_s3_uri.$": "$.champion_score.report",
        }

    def _gate(self, failure: sfn.IChainable) -> sfn.IChainable:
        gate = self._lambda_step("Quality gate", self.props.quality_gate, self._gate_payload(), "$.gate", failure)
        rejected = sfn.Pass(
            self,
            "Model below threshold",
            parameters={"Error": "ModelQualityBelowThreshold", "Cause.$": "$.gate.reason"},
            result_path="$.error",
        ).next(failure)
        passed = sfn.Pass(self, "Gate passed")
        return gate.next(
            sfn.Choice(self, "Good enough?")
            .when(sfn.Condition.boolean_equals("$.gate.passed", True), passed)
            .otherwise(rejected)
            .afterwards(include_otherwise=False)
        )

    def _serving_containers(self, custom_state: bool, source: str = WINNER) -> list[dict]:
        """The serial inference pipeline: raw rows -> featurizer (preprocess's fitted encoding, in the
        scikit-learn image) -> the candidate's model (the XGBoost image, or the scikit-learn image with
        the forest's serving code) -> label decoder (scores -> the table's own labels). Each container's
        Environment chooses the format it hands the next (package.CONTAINER_ENVIRONMENT; the candidate's
        from the fan-out: ``<source>.serving``). ``custom_state``: raw "Key.$" paths, else JsonPath
        tokens (CallAwsService)."""
        images = self.props.images

        def fixed(name: str, data: str) -> dict:
            return {"ContainerHostname": name, "Image": images.sklearn,
                    **({"ModelDataUrl.$": data} if custom_state else {"ModelDataUrl": J.string_at(data)}),
                    "Environment": CONTAINER_ENVIRONMENT[name]}

        if custom_state:
            model = {"ContainerHostname": "model", "Image.$": f"{source}.serving.Image",
                     "ModelDataUrl.$": f"{source}.model_data", "Environment.$": f"{source}.serving.Environment"}
        else:
            model = {"ContainerHostname": "model", "Image": J.string_at(f"{source}.serving.Image"),
                     "ModelDataUrl": J.string_at(f"{source}.model_data"),
                     "Environment": J.object_at(f"{source}.serving.Environment")}
        return [fixed("featurizer", "$.plan.paths.featurizer_model"), model, fixed("decoder", "$.plan.paths.decoder_model")]

    def _create_model(self, failure: sfn.IChainable) -> sfn.IChainable:
        # A CustomState, not tasks.SageMakerCreateModel: the L2 (aws-cdk-lib 2.275) requires a
        # PrimaryContainer (CreateModel refuses one beside Containers), renders each of `containers`
        # wrapped in {"parameters": ...} and has no InferenceExecutionConfig. IAM: _job_permissions.
        create = sfn.CustomState(
            self,
            "Create model",
            state_json={
                "Type": "Task",
                "Comment": "A serial inference pipeline: featurizer -> the winning candidate's model -> label decoder",
                "Resource": f"arn:{self._stack.partition}:states:::sagemaker:createModel",
                "Parameters": {
                    "ModelName.$": "$.plan.job_names.model",
                    "ExecutionRoleArn": self.props.sagemaker_role.role_arn,
                    "Containers": self._serving_containers(custom_state=True),
                    "InferenceExecutionConfig": {"Mode": "Serial"},
                },
                "ResultSelector": {"ModelArn.$": "$.ModelArn"},
                "ResultPath": "$.model",
            },
        )
        return guard(create, SAGEMAKER_TRANSIENT, failure)

    def _register(self, failure: sfn.IChainable) -> sfn.IChainable:
        register = tasks.CallAwsService(
            self,
            "Register model package",
            service="sagemaker",
            action="createModelPackage",
            iam_resources=[
                self._stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{self.props.config.model_package_group}/*"),
                self._stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=self.props.config.model_package_group),
            ],
            parameters={
                "ModelPackageGroupName": self.props.config.model_package_group,
                "ModelApprovalStatus": J.string_at("$.plan.approval.registration_status"),
                # the registry's approval Lambda finds the waiting execution through it
                "CustomerMetadataProperties": {REGISTERED_BY: J.string_at("$$.Execution.Id"),
                                               "candidate": J.string_at(f"{WINNER}.name"),
                                               "explainability": J.string_at(f"{WINNER}.explainability")},
                "ModelPackageDescription": J.format("Candidate {} ({}), the winner of execution {} on {}: {}",
                                                    J.string_at(f"{WINNER}.name"), J.string_at(f"{WINNER}.family"),
                                                    J.string_at("$$.Execution.Name"), J.string_at("$.plan.paths.input"),
                                                    J.string_at(f"{WINNER}.reason")),
                "InferenceSpecification": {
                    # the same three containers the deployed model runs; requests are raw rows
                    "Containers": self._serving_containers(custom_state=False),
                    "SupportedContentTypes": ["text/csv", "application/json"],
                    "SupportedResponseMIMETypes": ["text/csv", "application/json"],
                },
                "ModelMetrics": {
                    "ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                    "S3Uri": J.string_at(f"{WINNER}.evaluation_report")}},
                    # the winner's SHAP feature importances (evaluate.py), on the table's own columns
                    "Explainability": {"Report": {"ContentType": "application/json",
                                                  "S3Uri": J.string_at(f"{WINNER}.explainability")}},
                },
            },
            result_selector={"ModelPackageArn.$": "$.ModelPackageArn"},
            result_path="$.registration",
        )
        return guard(register, SAGEMAKER_SDK_TRANSIENT, failure)

    def _score_and_deploy(self, failure: sfn.IChainable) -> sfn.IChainable:
        score_and_deploy = sfn.Parallel(
            self,
            "Score and deploy",
            comment="Batch scoring and the endpoint rollout run side by side",
            result_selector={"transform.$": "$[0]", "endpoint.$": "$[1]"},
            result_path="$.outcome",
        )
        score_and_deploy.branch(self._batch_transform())
        score_and_deploy.branch(self._deploy())
        score_and_deploy.add_catch(failure, errors=[sfn.Errors.ALL], result_path="$.error")
        return score_and_deploy

    def _approval(self, failure: sfn.IChainable) -> sfn.Chain:
        """approval_mode manual: publish the approval request (the evaluation summary and the exact
        commands) and wait on its task token, answered through Step Functions (SendTaskSuccess /
        SendTaskFailure ModelRejected) or the model registry (UpdateModelPackage -> EventBridge ->
        the registry approval Lambda). Approved: the package becomes Approved and the deploy goes on.
        Rejected: the package is Rejected with the reviewer's reason, ModelRejected. No answer within
        approval_timeout_seconds: Rejected, ApprovalTimedOut. Auto: straight on."""
        package = J.string_at("$.registration.ModelPackageArn")
        request = tasks.SnsPublish(
            self,
            "Request approval",
            topic=self.props.topic,
            subject="ML pipeline: a model waits for your approval",
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            message=sfn.TaskInput.from_object({
                "execution": J.string_at("$$.Execution.Id"),
                "model_package": package,
                "evaluation": J.object_at("$.gate"),
                "evaluation_report": J.string_at(f"{WINNER}.evaluation_report"),
                "leaderboard": J.list_at("$.selection.table"),
                "timeout_seconds": J.number_at("$.plan.approval.timeout_seconds"),
                "task_token": J.task_token,
                "approve": {
                    "model_registry": J.format("aws sagemaker update-model-package --model-package-arn {} "
                                               "--model-approval-status Approved", package),
                    "step_functions": J.format("aws stepfunctions send-task-success --task-output true --task-token {}",
                                               J.task_token),
                    "emulator": J.format("python -m emulator approve {}", J.string_at("$$.Execution.Name")),
                },
                "reject": {
                    "model_registry": J.format("aws sagemaker update-model-package --model-package-arn {} "
                                               "--model-approval-status Rejected --approval-description WHY", package),
                    "step_functions": J.format("aws stepfunctions send-task-failure --error ModelRejected --cause WHY "
                                               "--task-token {}", J.task_token),
                    "emulator": J.format("python -m emulator reject {} --reason WHY", J.string_at("$$.Execution.Name")),
                },
            }),
            task_timeout=sfn.Timeout.at("$.plan.approval.timeout_seconds"),
            result_path="$.approval",
        )

        def set_status(construct_id: str, status: str, description: str | None, comment: str) -> tasks.CallAwsService:
            parameters = {"ModelPackageArn": package, "ModelApprovalStatus": status}
            if description:
                parameters["ApprovalDescription"] = description
            return tasks.CallAwsService(
                self, construct_id, comment=comment, service="sagemaker", action="updateModelPackage",
                iam_resources=[self._stack.format_arn(service="sagemaker", resource="model-package",
                                                      resource_name=f"{self.props.config.model_package_group}/*")],
                parameters=parameters, result_path=J.DISCARD)

        approved = set_status("Mark approved", "Approved", None, "The registry shows the decision, whoever made it")
        guard(approved, SAGEMAKER_SDK_TRANSIENT, failure)
        # The decision is the error from here on ($.error); only a registry update that fails after its
        # retries replaces it (its own error, notified like every other).
        mark_rejected = set_status("Mark rejected", "Rejected", J.string_at("$.error.Cause"),
                                   "The reviewer's reason becomes the package's ApprovalDescription")
        timed_out = sfn.Pass(self, "Approval timed out", result_path="$.error", parameters={
            "Error": "ApprovalTimedOut",
            "Cause.$": "States.Format('No approval within approval_timeout_seconds ({} s): the model was rejected and "
                       "nothing was deployed', $.plan.approval.timeout_seconds)"})
        mark_timed_out = set_status("Mark timed out", "Rejected", "No approval within approval_timeout_seconds",
                                    "An unanswered approval rejects the model")
        for mark in (mark_rejected, mark_timed_out):
            mark.add_retry(errors=SAGEMAKER_SDK_TRANSIENT, interval=Duration.seconds(5), max_attempts=3,
                           backoff_rate=2.0, jitter_strategy=sfn.JitterType.FULL)
            mark.add_catch(failure, errors=[sfn.Errors.ALL], result_path="$.error")
            mark.next(failure)
        timed_out.next(mark_timed_out)
        request.add_retry(errors=SNS_TRANSIENT, interval=Duration.seconds(5), max_attempts=3, backoff_rate=2.0,
                          jitter_strategy=sfn.JitterType.FULL)
        request.add_catch(mark_rejected, errors=["ModelRejected"], result_path="$.error")
        request.add_catch(timed_out, errors=[sfn.Errors.TIMEOUT], result_path="$.error")
        request.add_catch(failure, errors=[sfn.Errors.ALL], result_path="$.error")
        return (
            sfn.Choice(self, "Approval needed?")
            .when(sfn.Condition.string_equals("$.plan.approval.mode", "manual"), request.next(approved))
            .otherwise(sfn.Pass(self, "Approved automatically", comment="approval_mode auto: registered as configured"))
            .afterwards()
        )

    def _batch_transform(self) -> sfn.IChainable:
        transform = tasks.SageMakerCreateTransformJob(
            self,
            "Batch transform",
            transform_job_name=J.string_at("$.plan.job_names.transform"),
            model_name=J.string_at("$.plan.job_names.model"),
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            role=self.props.sagemaker_role,  # without it the L2 creates a role with AmazonSageMakerFullAccess
            batch_strategy=tasks.BatchStrategy.MULTI_RECORD,
            max_payload=Size.mebibytes(6),
            transform_input=tasks.TransformInput(
                transform_data_source=tasks.TransformDataSource(
                    s3_data_source=tasks.TransformS3DataSource(
                        s3_uri=J.string_at("$.plan.paths.batch"), s3_data_type=tasks.S3DataType.S3_PREFIX
                    )
                ),
                content_type="text/csv",
                split_type=tasks.SplitType.LINE,
            ),
            transform_output=tasks.TransformOutput(
                s3_output_path=J.string_at("$.plan.paths.transform_output"),
                accept="text/csv",
                assemble_with=tasks.AssembleWith.LINE,
                encryption_key=self.props.key,
            ),
            transform_resources=tasks.TransformResources(
                instance_count=self.props.config.transform_instance_count,
                instance_type=ec2.InstanceType(J.string_at("$.plan.config.transform_instance_type")),
                volume_encryption_key=self.props.key,
            ),
            result_selector={
                "TransformJobName.$": "$.TransformJobName",
                "TransformJobStatus.$": "$.TransformJobStatus",
                "S3OutputPath.$": "$.TransformOutput.S3OutputPath",
            },
            task_timeout=sfn.Timeout.duration(Duration.seconds(self.props.config.job_timeout_seconds + 900)),
        )
        return guard(transform, SAGEMAKER_TRANSIENT, self._reraise("Scoring failed"))

    def _reraise(self, name: str) -> sfn.Fail:
        """A branch's Catch target: fails the branch with the caught error, unchanged, so the
        Parallel's own Catch hands it to the failure handler."""
        return sfn.Fail(self, name, error_path="$.error.Error", cause_path="$.error.Cause")

    def _deploy(self) -> sfn.IChainable:
        """Create the endpoint config, then, holding the endpoint's deploy lock: check the champion
        again, create or update the endpoint, wait for it, record the champion, release the lock."""
        config = self._endpoint_config()
        find = tasks.CallAwsService(
            self,
            "Find endpoint",
            service="sagemaker",
            action="describeEndpoint",
            iam_resources=[self._endpoint_arn()],
            parameters={"EndpointName": J.string_at("$.plan.endpoint_name")},
            result_selector={"EndpointStatus.$": "$.EndpointStatus"},
            result_path="$.existing",
        )
        create = tasks.SageMakerCreateEndpoint(
            self,
            "Create endpoint",
            endpoint_name=J.string_at("$.plan.endpoint_name"),
            endpoint_config_name=J.string_at("$.plan.job_names.endpoint_config"),
            result_path=J.DISCARD,
        )
        update = sfn.CustomState(
            self,
            "Update endpoint",
            state_json={
                "Type": "Task",
                "Comment": "Blue/green update with auto-rollback alarms",
                "Resource": f"arn:{self._stack.partition}:states:::sagemaker:updateEndpoint",
                "Parameters": {
                    "EndpointName.$": "$.plan.endpoint_name",
                    "EndpointConfigName.$": "$.plan.job_names.endpoint_config",
                    "DeploymentConfig.$": "$.plan.deployment_config",
                },
                # Not None: jsii drops None values, and the output would replace the whole state.
                "ResultPath": "$.endpoint_update",
            },
        )
        deploy_failed = self._reraise("Deploy failed")
        # DescribeEndpoint on a missing endpoint is SageMaker's ValidationException, which the AWS SDK
        # integration reports as SageMaker.SageMakerException: no endpoint yet, so create one.
        find.add_retry(errors=SAGEMAKER_SDK_CLIENT, interval=Duration.seconds(5), max_attempts=3, backoff_rate=2.0,
                       max_delay=Duration.seconds(120), jitter_strategy=sfn.JitterType.FULL)
        lookup = sfn.Pass(self, "Start lookup", parameters={"attempts": 0}, result_path="$.lookup")
        retry_lookup = self._lookup_again(find)
        missing = (
            sfn.Choice(self, "Endpoint missing?")
            # SageMaker's words for a missing endpoint (not "...endpoint configuration"), matched only here
            .when(sfn.Condition.string_matches("$.existing.Cause", ENDPOINT_MISSING_PATTERN), create)
            # anything else it answers is throttling or a fault (the name is one for all): retried, bounded
            .when(sfn.Condition.number_less_than("$.lookup.attempts", len(LOOKUP_BACKOFF_SECONDS)), retry_lookup)
            .otherwise(sfn.Pass(self, "Lookup failed", parameters={"Error.$": "$.existing.Error", "Cause.$": "$.existing.Cause"},
                                result_path="$.error").next(deploy_failed))
        )
        find.add_catch(missing, errors=["SageMaker.SageMakerException"], result_path="$.existing")
        find.add_catch(deploy_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        for state in (config, create, update):
            guard(state, SAGEMAKER_TRANSIENT, deploy_failed)

        wait = self._wait_in_service(deploy_failed)
        create.next(wait)
        update.next(wait)
        find.next(update)
        return (config.next(self._take_deploy_lock(deploy_failed))
                .next(self._check_champion_again(deploy_failed)).next(lookup).next(find))

    def _endpoint_config(self) -> sfn.CustomState:
        """CreateEndpointConfig with data capture (input and output, CSV and JSON bodies as text) to
        s3://<bucket>/capture/. A CustomState: the L2 task (aws-cdk-lib 2.275) has no DataCaptureConfig.
        IAM: _job_permissions."""
        percentage = self.props.config.capture_sampling_percentage
        return sfn.CustomState(self, "Create endpoint config", state_json={
            "Type": "Task",
            "Resource": f"arn:{self._stack.partition}:states:::sagemaker:createEndpointConfig",
            "Parameters": {
                "EndpointConfigName.$": "$.plan.job_names.endpoint_config",
                "KmsKeyId": self.props.key.key_arn,
                "ProductionVariants": [{
                    "InitialInstanceCount": self.props.config.endpoint_instance_count,
                    "InstanceType.$": "$.plan.config.endpoint_instance_type",
                    "ModelName.$": "$.plan.job_names.model",
                    "VariantName": "AllTraffic",
                }],
                "DataCaptureConfig": {
                    "EnableCapture": percentage > 0,
                    "InitialSamplingPercentage": percentage,
                    "DestinationS3Uri": f"s3://{self.props.bucket.bucket_name}/{CAPTURE_PREFIX}",
                    "KmsKeyId": self.props.key.key_arn,
                    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"],
                                                 "JsonContentTypes": ["application/json"]},
                },
            },
            "ResultSelector": {"EndpointConfigArn.$": "$.EndpointConfigArn"},
            "ResultPath": "$.endpoint_config",  # not None: jsii drops None values
        })

    def _lookup_again(self, find: sfn.IChainable) -> sfn.IChainable:
        """Wait the next backoff step, count the attempt and describe the endpoint again."""
        backoff = ", ".join(str(s) for s in LOOKUP_BACKOFF_SECONDS)
        step = sfn.Pass(
            self, "Back off lookup",
            parameters={"attempts.$": "States.MathAdd($.lookup.attempts, 1)",
                        "seconds.$": f"States.ArrayGetItem(States.Array({backoff}), $.lookup.attempts)"},
            result_path="$.lookup",
        )
        pause = sfn.Wait(self, "Wait before lookup", time=sfn.WaitTime.seconds_path("$.lookup.seconds"))
        return step.next(pause).next(find)

    # ------------------------------------------------------------------ one deployment at a time

    def _lock_key(self) -> str:
        """The endpoint's deploy lock: an S3 object whose body is the holding execution's ARN."""
        return f"champion/{self.props.config.endpoint_name}/deploy.lock"

    def _lock_arns(self) -> list[str]:
        return [self.props.bucket.arn_for_objects(f"champion/{self.props.config.endpoint_name}/*")]

    def _take_deploy_lock(self, deploy_failed: sfn.IChainable) -> sfn.IChainable:
        """Queue for the endpoint: create the lock object only if absent (If-None-Match: *). While
        another execution holds it and still runs, wait (bounded); a holder that ended without
        releasing it (failed, aborted, timed out) is replaced under If-Match on the ETag read."""
        bucket = self.props.bucket.bucket_name
        start = sfn.Pass(self, "Queue for deployment", parameters={"waits": 0}, result_path="$.deploy_lock")
        take = tasks.CallAwsService(
            self, "Take deploy lock", service="s3", action="putObject", iam_resources=self._lock_arns(),
            parameters={"Bucket": bucket, "Key": self._lock_key(), "Body": J.string_at("$$.Execution.Id"),
                        "IfNoneMatch": "*", "ContentType": "text/plain"},
            result_selector={"ETag.$": "$.ETag"}, result_path="$.deploy_lock.held",
        )
        read = tasks.CallAwsService(
            self, "Read deploy lock", service="s3", action="getObject", iam_resources=self._lock_arns(),
            parameters={"Bucket": bucket, "Key": self._lock_key()},
            result_selector={"holder.$": "$.Body", "ETag.$": "$.ETag"}, result_path="$.deploy_lock.current",
        )
        holder = tasks.CallAwsService(
            self, "Is the holder running?", service="sfn", action="describeExecution",
            iam_resources=[self._stack.format_arn(service="states", resource="execution", resource_name="*",
                                                  arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            iam_action="states:DescribeExecution",
            parameters={"ExecutionArn": J.string_at("$.deploy_lock.current.holder")},
            result_selector={"Status.$": "$.Status"}, result_path="$.deploy_lock.holder",
        )
        take_over = tasks.CallAwsService(
            self, "Take over deploy lock", service="s3", action="putObject", iam_resources=self._lock_arns(),
            parameters={"Bucket": bucket, "Key": self._lock_key(), "Body": J.string_at("$$.Execution.Id"),
                        "IfMatch": J.string_at("$.deploy_lock.current.ETag"), "ContentType": "text/plain"},
            result_selector={"ETag.$": "$.ETag"}, result_path="$.deploy_lock.held",
        )
        pause = sfn.Wait(self, "Wait for deploy lock", time=sfn.WaitTime.duration(Duration.seconds(DEPLOY_LOCK_WAIT_SECONDS)))
        count = sfn.Pass(self, "Count lock wait", parameters={"waits.$": "States.MathAdd($.deploy_lock.waits, 1)"},
                         result_path="$.deploy_lock")
        timed_out = sfn.Pass(
            self, "Deploy lock timed out",
            parameters={"Error": "DeploymentLockTimeout", "Cause": J.format(
                f"Execution {{}} has held the deployment lock s3://{{}}/{self._lock_key()} of endpoint "
                f"{self.props.config.endpoint_name} for over {DEPLOY_LOCK_WAIT_SECONDS * DEPLOY_LOCK_MAX_WAITS // 60} "
                "minutes while this one waited. Let it finish (or stop it), then start this execution again.",
                J.string_at("$.deploy_lock.current.holder"), bucket)},
            result_path="$.error",
        ).next(deploy_failed)
        held = sfn.Pass(self, "Deploy lock held")
        for state in (take, take_over):
            state.add_retry(errors=[*S3_SDK_TRANSIENT, *S3_CONDITION_CONFLICT], interval=Duration.seconds(1),
                            max_attempts=4, backoff_rate=2.0, max_delay=Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
            # someone holds it (412), or took it over first: see who
            state.add_catch(read, errors=S3_PRECONDITION_FAILED, result_path=J.DISCARD)
            state.next(held)
        take_over.add_catch(take, errors=["S3.NoSuchKeyException"], result_path=J.DISCARD)  # released meanwhile
        read.add_catch(take, errors=["S3.NoSuchKeyException"], result_path=J.DISCARD)  # released meanwhile
        guard(read, S3_SDK_TRANSIENT, deploy_failed)
        holder.add_catch(take_over, errors=["Sfn.ExecutionDoesNotExistException"], result_path=J.DISCARD)
        guard(holder, SFN_SDK_TRANSIENT, deploy_failed)
        for state in (take, take_over):
            state.add_catch(deploy_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        running = sfn.Condition.string_equals("$.deploy_lock.holder.Status", "RUNNING")
        read.next(holder).next(
            sfn.Choice(self, "Holder still running?")
            .when(sfn.Condition.and_(running, sfn.Condition.number_greater_than_equals("$.deploy_lock.waits", DEPLOY_LOCK_MAX_WAITS)),
                  timed_out)
            .when(running, pause.next(count).next(take))
            .otherwise(take_over)
        )
        start.next(take)  # take and take_over lead to held; the chain goes on from there
        return sfn.Chain.custom(start, [held], held)

    def _check_champion_again(self, deploy_failed: sfn.IChainable) -> sfn.IChainable:
        """Inside the lock, the gate again: a champion recorded since this run's gate must be beaten.
        A refused model's package is set Rejected with the reason, and the run fails by name."""
        payload = {**self._gate_payload(), "gate_champion_etag.$": "$.gate.champion_etag",
                   "execution_started.$": "$$.Execution.StartTime"}
        check = self._lambda_step("Check champion again", self.props.quality_gate, payload, "$.recheck", deploy_failed)
        refused = sfn.Pass(
            self, "Champion not beaten",
            parameters={"Error": "NotBetterThanNewChampion", "Cause.$": "$.recheck.reason"}, result_path="$.error",
        ).next(deploy_failed)
        reject = tasks.CallAwsService(
            self, "Reject model package", service="sagemaker", action="updateModelPackage",
            iam_resources=[self._stack.format_arn(service="sagemaker", resource="model-package",
                                                  resource_name=f"{self.props.config.model_package_group}/*")],
            parameters={"ModelPackageArn": J.string_at("$.registration.ModelPackageArn"), "ModelApprovalStatus": "Rejected",
                        "ApprovalDescription": J.format("Not deployed: {}", J.string_at("$.recheck.reason"))},
            result_path=J.DISCARD,
        )
        reject.add_retry(errors=SAGEMAKER_SDK_TRANSIENT, interval=Duration.seconds(2), max_attempts=3, backoff_rate=2.0,
                         max_delay=Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
        reject.add_catch(refused, errors=[sfn.Errors.ALL], result_path="$.rejection_error")  # the refusal is what matters
        reject.next(refused)
        return check.next(
            sfn.Choice(self, "Still the best?")
            .when(sfn.Condition.boolean_equals("$.recheck.passed", True), sfn.Pass(self, "Champion check passed"))
            .otherwise(reject)
            .afterwards(include_otherwise=False)
        )

    def _record_champion(self, deploy_failed: sfn.IChainable) -> sfn.IChainable:
        """The deployed model's evaluation becomes the bar the next model must beat, written only if the
        record is still the one checked under the lock (S3 If-Match on its ETag, If-None-Match: * when
        there was none); then the lock is released and the branch's output is the endpoint."""
        def copy(construct_id: str, condition: dict) -> tasks.CallAwsService:
            state = tasks.CallAwsService(
                self, construct_id, service="s3", action="copyObject",
                # CopyObject is authorized as GetObject on the source and PutObject on the target.
                iam_action="s3:PutObject",
                iam_resources=[self.props.bucket.arn_for_objects("champion/*")],
                additional_iam_statements=[
                    iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.props.bucket.arn_for_objects("runs/*")])
                ],
                parameters={
                    "Bucket": self.props.bucket.bucket_name,
                    "CopySource": J.string_at(f"{WINNER}.evaluation_copy_source"),
                    "Key": J.string_at("$.plan.paths.champion_key"),
                    **condition,
                },
                result_path=J.DISCARD,
            )
            state.add_retry(errors=[*S3_SDK_TRANSIENT, *S3_CONDITION_CONFLICT], interval=Duration.seconds(2), max_attempts=3,
                            backoff_rate=2.0, max_delay=Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
            state.add_catch(changed, errors=[*S3_PRECONDITION_FAILED, "S3.NoSuchKeyException"], result_path="$.cas_error")
            state.add_catch(deploy_failed, errors=[sfn.Errors.ALL], result_path="$.error")
            return state

        changed = sfn.Pass(
            self, "Champion record changed",
            parameters={"Error": "ChampionRecordChanged", "Cause": J.format(
                "The champion record {} changed while this execution held the deploy lock (written outside the "
                "pipeline?), so it was not replaced; the endpoint serves this run's model. Check the record "
                "against the endpoint's model and put back the right one (docs/runbook.md).",
                J.string_at("$.plan.paths.champion_report"))},
            result_path="$.error",
        ).next(deploy_failed)
        replace = copy("Record champion", {"IfMatch": J.string_at("$.recheck.champion_etag")})
        first = copy("Record first champion", {"IfNoneMatch": "*"})
        release = tasks.CallAwsService(
            self, "Release deploy lock", service="s3", action="deleteObject", iam_resources=self._lock_arns(),
            parameters={"Bucket": self.props.bucket.bucket_name, "Key": self._lock_key()}, result_path=J.DISCARD,
        )
        release.add_retry(errors=S3_SDK_TRANSIENT, interval=Duration.seconds(2), max_attempts=3, backoff_rate=2.0,
                          max_delay=Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
        done = sfn.Pass(self, "Deployed", output_path="$.endpoint")
        # A lock left behind is taken over by the next execution once this one has ended.
        release.add_catch(done, errors=[sfn.Errors.ALL], result_path="$.release_error")
        run = self._record_champion_run(deploy_failed)
        replace.next(run)
        first.next(run)
        run.next(release)
        release.next(done)
        return (
            sfn.Choice(self, "Champion before?")
            .when(sfn.Condition.is_null("$.recheck.champion_etag"), first)
            .otherwise(replace)
        )

    def _record_champion_run(self, deploy_failed: sfn.IChainable) -> sfn.IChainable:
        """Beside the champion's evaluation, where it came from (champion/<endpoint>/run.json): its
        training input, its schema folder (the Model Monitor baseline the monitoring state machine
        compares traffic with) and its test split. Written inside the deploy lock, after the record."""
        describe = sfn.Pass(self, "Describe champion run", result_path="$.champion_run", parameters={
            "execution.$": "$$.Execution.Id", "recorded.$": "$$.State.EnteredTime",
            "input.$": "$.plan.paths.input", "run.$": "$.plan.paths.run", "schema.$": "$.plan.paths.schema",
            "test.$": "$.plan.paths.test", "batch.$": "$.plan.paths.batch",
            "evaluation.$": f"{WINNER}.evaluation_report", "model.$": "$.plan.job_names.model",
            "endpoint_config.$": "$.plan.job_names.endpoint_config", "metric.$": "$.plan.quality.metric",
            "columns.$": "States.JsonToString($.plan.dataset.columns)", "target.$": "$.plan.config.target_column",
            "direction.$": "$.plan.quality.direction",
        })
        put = tasks.CallAwsService(
            self, "Record champion run", service="s3", action="putObject", iam_resources=self._lock_arns(),
            parameters={"Bucket": self.props.bucket.bucket_name,
                        "Key": f"champion/{self.props.config.endpoint_name}/run.json",
                        "Body": J.json_to_string(J.object_at("$.champion_run")), "ContentType": "application/json"},
            result_path=J.DISCARD,
        )
        guard(put, S3_SDK_TRANSIENT, deploy_failed)
        return describe.next(put)

    def _release_lock_on_failure(self, notify: sfn.IChainable) -> sfn.IChainable:
        """Before the failure notification: delete the deploy lock if this execution holds it."""
        read = tasks.CallAwsService(
            self, "Read lock on failure", service="s3", action="getObject", iam_resources=self._lock_arns(),
            parameters={"Bucket": self.props.bucket.bucket_name, "Key": self._lock_key()},
            result_selector={"holder.$": "$.Body"}, result_path="$.lock_on_failure",
        )
        release = tasks.CallAwsService(
            self, "Release lock on failure", service="s3", action="deleteObject", iam_resources=self._lock_arns(),
            parameters={"Bucket": self.props.bucket.bucket_name, "Key": self._lock_key()}, result_path=J.DISCARD,
        )
        for state in (read, release):
            state.add_retry(errors=S3_SDK_TRANSIENT, interval=Duration.seconds(2), max_attempts=3, backoff_rate=2.0,
                            max_delay=Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
            # no lock (NoSuchKey), or it cannot be read: the failure is still notified, its error kept
            state.add_catch(notify, errors=[sfn.Errors.ALL], result_path=J.DISCARD)
        release.next(notify)
        return read.next(
            sfn.Choice(self, "Holding the deploy lock?")
            .when(sfn.Condition.string_equals_json_path("$.lock_on_failure.holder", "$$.Execution.Id"), release)
            .otherwise(notify)
        )

    def _endpoint_arn(self) -> str:
        return self._stack.format_arn(service="sagemaker", resource="endpoint", resource_name="*")

    def _wait_in_service(self, deploy_failed: sfn.IChainable) -> sfn.IChainable:
        start = sfn.Pass(self, "Start polling", parameters={"polls": 0}, result_path="$.rollout")
        wait = sfn.Wait(self, "Wait for endpoint", time=sfn.WaitTime.duration(Duration.seconds(ENDPOINT_POLL_SECONDS)))
        describe = tasks.CallAwsService(
            self,
            "Describe endpoint",
            service="sagemaker",
            action="describeEndpoint",
            iam_resources=[self._endpoint_arn()],
            parameters={"EndpointName": J.string_at("$.plan.endpoint_name")},
            result_selector={
                "EndpointName.$": "$.EndpointName",
                "EndpointArn.$": "$.EndpointArn",
                "EndpointStatus.$": "$.EndpointStatus",
                "EndpointConfigName.$": "$.EndpointConfigName",
            },
            result_path="$.endpoint",
        )
        guard(describe, SAGEMAKER_SDK_TRANSIENT, deploy_failed)
        count = sfn.Pass(self, "Count poll", parameters={"polls.$": "States.MathAdd($.rollout.polls, 1)"}, result_path="$.rollout")
        in_service = sfn.Pass(self, "Endpoint in service")
        in_service.next(self._record_champion(deploy_failed))
        failed = sfn.Fail(
            self, "Endpoint rollout failed", error="EndpointDeploymentFailed",
            cause="The endpoint did not reach InService (failed, rolled back, or timed out); see its FailureReason in SageMaker",
        )
        rolled_back = sfn.Fail(
            self, "Endpoint rolled back", error="EndpointDeploymentRolledBack",
            cause="The endpoint is InService on its previous config: the blue/green update failed or an alarm rolled "
                  "it back; the new model is not serving",
        )
        serving_new = sfn.Condition.string_equals_json_path("$.endpoint.EndpointConfigName", "$.plan.job_names.endpoint_config")
        check = (
            sfn.Choice(self, "Endpoint ready?")
            .when(sfn.Condition.and_(sfn.Condition.string_equals("$.endpoint.EndpointStatus", "InService"), serving_new),
                  in_service)
            .when(sfn.Condition.string_equals("$.endpoint.EndpointStatus", "InService"), rolled_back)
            .when(sfn.Condition.or_(
                sfn.Condition.string_equals("$.endpoint.EndpointStatus", "Failed"),
                sfn.Condition.number_greater_than_equals("$.rollout.polls", ENDPOINT_MAX_POLLS),
            ), failed)
            .otherwise(count)
        )
        count.next(wait)
        return start.next(wait).next(describe).next(check)

    def _notify_success(self, failure: sfn.IChainable) -> sfn.IChainable:
        notify = tasks.SnsPublish(
            self,
            "Notify success",
            topic=self.props.topic,
            subject="ML pipeline succeeded",
            message=sfn.TaskInput.from_object(
                {
                    "execution.$": "$$.Execution.Id",
                    "status": "SUCCEEDED",
                    "gate.$": "$.gate",
                    "winner.$": f"{WINNER}.name",
                    "leaderboard.$": "$.selection.table",
                    "model_package.$": "$.registration.ModelPackageArn",
                    "endpoint.$": "$.outcome.endpoint",
                    "batch_predictions.$": "$.outcome.transform.S3OutputPath",
                }
            ),
            result_path=J.DISCARD,
        )
        guard(notify, SNS_TRANSIENT, failure)
        summary = sfn.Pass(
            self,
            "Summarize",
            parameters={
                "problem_type.$": "$.plan.problem_type",
                "gate.$": "$.gate",
                "winner.$": f"{WINNER}.name",
                "leaderboard.$": "$.selection.leaderboard",
                "leaderboard_table.$": "$.selection.table",
                "selection_rule.$": "$.selection.rule",
                "hyperparameters.$": f"{WINNER}.hyperparameters",
                "explainability.$": f"{WINNER}.explainability",
                "model_name.$": "$.plan.job_names.model",
                "model_package.$": "$.registration.ModelPackageArn",
                "endpoint.$": "$.outcome.endpoint",
                "batch_input.$": "$.plan.paths.batch",
                "batch_predictions.$": "$.outcome.transform.S3OutputPath",
                "evaluation_report.$": f"{WINNER}.evaluation_report",
                # what was decided about the user's table: the plan's notes and schema.json's "report"
                "target.$": "$.plan.target",
                "notes.$": "$.plan.notes",
                "schema.$": "$.plan.paths.schema_file",
            },
        )
        return notify.next(summary).next(sfn.Succeed(self, "Pipeline succeeded"))

    # ------------------------------------------------------------------ failure

    def _failure_handler(self) -> sfn.IChainable:
        return self._release_lock_on_failure(
            notify_then_fail(self, self.props.topic, "ML pipeline failed", "Pipeline failed"))

    # ------------------------------------------------------------------ IAM

    def _job_permissions(self, role: iam.IRole) -> None:
        """What the CustomStates need: their SageMaker actions, the managed EventBridge rules that
        `.sync` uses to learn a job finished, and passing the SageMaker role."""
        arn = lambda resource: self._stack.format_arn(service="sagemaker", resource=resource, resource_name="*")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ProcessingTuningTrainingJobs",
                actions=[
                    "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                    "sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob", "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                    "sagemaker:UpdateEndpoint", "sagemaker:AddTags",
                    "sagemaker:CreateModel",  # the serial pipeline's CustomState (_create_model)
                    "sagemaker:CreateEndpointConfig",  # with data capture (_endpoint_config)
                ],
                resources=[arn("processing-job"), arn("hyper-parameter-tuning-job"), arn("training-job"),
                           arn("endpoint"), arn("endpoint-config"), arn("model")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SyncJobEventRules",
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    self._stack.format_arn(service="events", resource="rule", resource_name=f"StepFunctionsGetEventsForSageMaker{kind}JobsRule")
                    for kind in ("Processing", "Training", "Tuning", "Transform")
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassSageMakerRole",
                actions=["iam:PassRole"],
                resources=[self.props.sagemaker_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        self.props.key.grant_encrypt_decrypt(role)
        # Jobs and endpoints with VolumeKmsKeyId/KmsKeyId need grants on the key for their volumes.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="VolumeKeyGrants",
                actions=["kms:CreateGrant", "kms:DescribeKey"],
                resources=[self.props.key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )

