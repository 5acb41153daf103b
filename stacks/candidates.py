"""The competition's fan-out: one Map iteration per candidate — optionally tune, train, evaluate — and
the registration of every candidate that lost.

Why a Map over the execution's candidate list (and not a Parallel built from cdk.json at synth time):
the candidates are a setting like any other, overridable per execution ({"candidates": [...]} drops
one, or adds a second configuration of a family), and a Parallel's branches are fixed when the
template is synthesized. The Map reads the list validate_input checked and planned ($.plan.candidates:
each candidate's hyperparameters, search, job names and paths), runs at most
``max_concurrent_candidates`` at once, and a Choice on the family inside the iteration routes to the
built-in XGBoost's tasks or the Random Forest's (scikit-learn image, script mode). Both go through the
same evaluation job (evaluate.py, the same test split, the same bootstrap seed), each in the image that
will serve it, so the latency and the metrics are those of the library versions that serve the model.

A candidate's failure is caught inside its own iteration (every Task's Catch leads to "Candidate
failed") and becomes its leaderboard entry — name, family, error and cause — so one failing candidate
does not sink the others; "Select winner" fails the run (AllCandidatesFailed) only when none trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from processing_scripts.serving.package import CONTAINER_ENVIRONMENT
from stacks.config import PipelineConfig
from stacks.images import PipelineImages
from stacks.task_policies import SAGEMAKER_SDK_TRANSIENT, guard
from stacks.training_code import ScriptModeCode
from training_scripts.random_forest import contract

J = sfn.JsonPath
PROCESSING = "/opt/ml/processing"
# The metadata key naming a losing candidate's execution: not the approval Lambda's REGISTERED_BY,
# so registering a candidate as Rejected can never answer the winner's approval request.
CANDIDATE_OF = "candidate-of-execution"
# evaluate.py's bootstrap: the same count and seed for every candidate, so their resamples pair up.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class CandidateProps:
    config: PipelineConfig
    images: PipelineImages
    key: kms.IKey
    sagemaker_role: iam.IRole
    forest_code: ScriptModeCode
    # (construct id, action, parameters, result selector, result path, catch target, comment, timeout path)
    # -> a `.sync` job state with the pipeline's timeouts (TrainingPipeline.job_state)
    job_state: Callable[..., sfn.CustomState]
    # (job name path, image, script, arguments, inputs, outputs) -> a CreateProcessingJob request
    processing_parameters: Callable[..., dict]


class CandidateFanOut(Construct):
    """``fan_out``: the Map (its result, one entry per candidate, at ``$.candidates``), whose Catch the
    caller adds; ``register_losers(failure)``: a Map registering each losing candidate Rejected."""

    def __init__(self, scope: Construct, construct_id: str, props: CandidateProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        self._partition = Stack.of(self).partition
        failed = sfn.Pass(
            self, "Candidate failed",
            comment="The candidate's leaderboard entry: its error and cause; the other candidates go on",
            parameters={"name.$": "$.candidate.name", "family.$": "$.candidate.family", "status": "Failed",
                        "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
        )
        evaluate = self._evaluate(failed)
        route = (
            sfn.Choice(self, "Which family?")
            .when(sfn.Condition.string_equals("$.candidate.family", "xgboost"), self._xgboost(evaluate, failed))
            .when(sfn.Condition.string_equals("$.candidate.family", "random_forest"), self._random_forest(evaluate, failed))
            .otherwise(sfn.Pass(self, "Unknown family", parameters={
                "Error": "UnknownCandidateFamily",
                "Cause.$": "States.Format('Candidate {} has family {}, which this state machine cannot train', "
                           "$.candidate.name, $.candidate.family)"}, result_path="$.error").next(failed))
        )
        self.fan_out = sfn.Map(
            self, "Train candidates",
            comment="Each candidate tuned (optionally), trained and evaluated on the same test split",
            items_path="$.plan.candidates",
            item_selector={"candidate.$": "$$.Map.Item.Value", "plan.$": "$.plan"},
            max_concurrency=props.config.max_concurrent_candidates,
            result_path="$.candidates",
        )
        self.fan_out.item_processor(route)

    # ------------------------------------------------------------------ per family

    def _channels(self, distributed: bool) -> list[dict]:
        # preprocess writes train in one file per host: a distributed XGBoost host trains on its share
        # (every host needs all of validation, as the built-in container does)
        return [
            {"ChannelName": channel, "ContentType": "text/csv", "CompressionType": "None",
             "DataSource": {"S3DataSource": {
                 "S3DataType": "S3Prefix", "S3Uri.$": f"$.plan.paths.{channel}",
                 "S3DataDistributionType": "ShardedByS3Key" if distributed and channel == "train" else "FullyReplicated"}}}
            for channel in ("train", "validation")
        ]

    def _definition(self, algorithm: dict, family: str) -> dict:
        """What a candidate's tuning trials and its training job share. Only the built-in XGBoost trains
        across hosts (training_instance_count); the forest's script is single-node, so it takes one."""
        distributed = family == "xgboost"
        return {
            "AlgorithmSpecification": algorithm,
            "RoleArn": self.props.sagemaker_role.role_arn,
            "InputDataConfig": self._channels(distributed),
            "ResourceConfig": {
                "InstanceType.$": "$.plan.config.training_instance_type",
                **({"InstanceCount.$": "$.plan.config.training_instance_count"} if distributed else {"InstanceCount": 1}),
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": self.props.key.key_arn,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.props.config.job_timeout_seconds},
        }

    def _chain(self, family: str, label: str, algorithm: dict, static: str, values: str, serving: dict,
               evaluate: sfn.IChainable, failed: sfn.IChainable, names: dict[str, str],
               before: sfn.IChainable | None = None) -> sfn.IChainable:
        """Tune or not, train, note how the model serves, then the shared evaluation.
        ``static``/``values``: the JSONPath expressions of the search's static hyperparameters and of
        the training job's hyperparameters (intrinsics over $.candidate and $.hyperparameters)."""
        key = self.props.key.key_arn
        tune = self.props.job_state(
            names["tune"], "createHyperParameterTuningJob",
            {
                "HyperParameterTuningJobName.$": "$.candidate.job_names.tuning",
                "HyperParameterTuningJobConfig.$": "$.candidate.tuning_config",
                "TrainingJobDefinition": {
                    **self._definition(algorithm, family),
                    "StaticHyperParameters.$": static,
                    "OutputDataConfig": {"S3OutputPath.$": "$.candidate.paths.tuning_output", "KmsKeyId": key},
                },
            },
            {
                "BestTrainingJobName.$": "$.BestTrainingJob.TrainingJobName",
                "TunedHyperParameters.$": "$.BestTrainingJob.TunedHyperParameters",
                "BestObjective.$": "$.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric",
                "TrainingJobStatusCounters.$": "$.TrainingJobStatusCounters",
            },
            "$.tuning", failed, f"Search over the {label} hyperparameter ranges", "$.candidate.tuning_timeout_seconds",
        )
        merge_tuned = sfn.Pass(
            self, names["tuned"],
            parameters={"values.$": "States.JsonMerge($.candidate.hyperparameters, $.tuning.TunedHyperParameters, false)"},
            result_path="$.hyperparameters",
        )
        use_static = sfn.Pass(self, names["static"], parameters={"values.$": "$.candidate.hyperparameters"},
                              result_path="$.hyperparameters")
        train = self.props.job_state(
            names["train"], "createTrainingJob",
            {
                "TrainingJobName.$": "$.candidate.job_names.training",
                **self._definition(algorithm, family),
                "HyperParameters.$": values,
                "OutputDataConfig": {"S3OutputPath.$": "$.candidate.paths.model_output", "KmsKeyId": key},
            },
            {
                "TrainingJobName.$": "$.TrainingJobName",
                "ModelArtifacts.$": "$.ModelArtifacts.S3ModelArtifacts",
                "FinalMetricDataList.$": "$.FinalMetricDataList",
                "TrainingTimeInSeconds.$": "$.TrainingTimeInSeconds",
            },
            "$.training", failed, f"The {label} model, on the best (or configured) hyperparameters",
        )
        # how the winner serves, if it is this candidate: the middle container of the serial pipeline
        serves = sfn.Pass(self, names["serving"], result=sfn.Result.from_object(serving), result_path="$.serving")
        train.next(serves).next(evaluate)
        choice = (
            sfn.Choice(self, names["choice"])
            .when(sfn.Condition.boolean_equals("$.candidate.tuning_enabled", True), tune.next(merge_tuned).next(train))
            .otherwise(use_static.next(train))
        )
        return sfn.Chain.start(before).next(choice) if before else choice

    def _xgboost(self, evaluate: sfn.IChainable, failed: sfn.IChainable) -> sfn.IChainable:
        # the names the single-model pipeline had, so its history reads the same for XGBoost
        return self._chain(
            "xgboost", "XGBoost",
            {"TrainingImage": self.props.images.xgboost, "TrainingInputMode": "File"},
            "$.candidate.static_hyperparameters", "$.hyperparameters.values",
            {"Image": self.props.images.xgboost, "Environment": CONTAINER_ENVIRONMENT["model"]},
            evaluate, failed,
            {"tune": "Tune hyperparameters", "tuned": "Use tuned hyperparameters", "static": "Use configured hyperparameters",
             "train": "Train model", "serving": "Serve with XGBoost", "choice": "Tuning enabled?"},
        )

    def _random_forest(self, evaluate: sfn.IChainable, failed: sfn.IChainable) -> sfn.IChainable:
        """Script mode as the SageMaker Python SDK runs it: the scikit-learn training image, sourcedir.tar.gz
        (a CDK asset) named by sagemaker_submit_directory/sagemaker_program beside the forest's own
        hyperparameters, MetricDefinitions reading the lines train.py prints."""
        script_mode = sfn.Pass(
            self, "Random forest script mode",
            comment="The SDK's script-mode hyperparameters (JSON-encoded): where the code is and what to run",
            result=sfn.Result.from_object(self.props.forest_code.hyperparameters()),
            result_path="$.script_mode",
        )
        return self._chain(
            "random_forest", "Random Forest",
            {"TrainingImage": self.props.images.sklearn_training, "TrainingInputMode": "File",
             "MetricDefinitions": contract.METRIC_DEFINITIONS},
            "States.JsonMerge($.candidate.static_hyperparameters, $.script_mode, false)",
            "States.JsonMerge($.hyperparameters.values, $.script_mode, false)",
            # the artifact carries its serving code (code/inference.py): SAGEMAKER_SUBMIT_DIRECTORY
            # /opt/ml/model/code, as the SDK's SKLearnModel repacks it
            {"Image": self.props.images.sklearn, "Environment": contract.SERVING_ENVIRONMENT},
            evaluate, failed,
            {"tune": "Tune random forest", "tuned": "Use tuned forest hyperparameters",
             "static": "Use configured forest hyperparameters", "train": "Train random forest",
             "serving": "Serve with scikit-learn", "choice": "Tune the forest?"},
            before=script_mode,
        )

    # ------------------------------------------------------------------ shared evaluation

    def _evaluate(self, failed: sfn.IChainable) -> sfn.IChainable:
        p = PROCESSING
        arguments = (
            "States.Array('--model-dir', '/opt/ml/processing/model', '--test-dir', '/opt/ml/processing/test', "
            "'--schema-dir', '/opt/ml/processing/schema', '--output-dir', '/opt/ml/processing/evaluation', "
            "'--metric', $.plan.quality.metric, '--candidate', $.candidate.name, "
            f"'--bootstrap-resamples', '{BOOTSTRAP_RESAMPLES}', '--bootstrap-seed', '{BOOTSTRAP_SEED}')"
        )
        # each candidate is evaluated in the image that will serve it ($.serving.Image, set by its family's
        # branch): the forest is unpickled by the scikit-learn it is served with, never another release's
        parameters = self.props.processing_parameters(
            "$.candidate.job_names.evaluate",
            "$.serving.Image",
            "evaluate.py",
            arguments,
            inputs=[("model", "$.training.ModelArtifacts", f"{p}/model"),
                    ("test", "$.plan.paths.test", f"{p}/test"),
                    ("schema", "$.plan.paths.schema", f"{p}/schema")],
            outputs=[("evaluation", "$.candidate.paths.evaluation", f"{p}/evaluation")],
        )
        evaluate = self.props.job_state(
            "Evaluate model", "createProcessingJob", parameters,
            {"ProcessingJobName.$": "$.ProcessingJobName", "ProcessingJobStatus.$": "$.ProcessingJobStatus"},
            "$.evaluation", failed,
            "The candidate on the shared test split: metrics, paired bootstrap, latency, size, SHAP",
        )
        trained = sfn.Pass(
            self, "Candidate trained",
            comment="The candidate's leaderboard entry: where its model and reports are, how it serves",
            parameters={
                "name.$": "$.candidate.name", "family.$": "$.candidate.family", "status": "Succeeded",
                "training_job.$": "$.training.TrainingJobName", "model_data.$": "$.training.ModelArtifacts",
                "training_seconds.$": "$.training.TrainingTimeInSeconds", "hyperparameters.$": "$.hyperparameters.values",
                "evaluation_report.$": "$.candidate.paths.evaluation_report",
                "evaluation_copy_source.$": "$.candidate.paths.evaluation_copy_source",
                "explainability.$": "$.candidate.paths.explainability", "serving.$": "$.serving",
            },
        )
        return evaluate.next(trained)

    # ------------------------------------------------------------------ the losers in the registry

    def register_losers(self, failure: sfn.IChainable, group: str, serving_containers: Callable[[str], list]) -> sfn.Map:
        """Every candidate that trained and lost, registered Rejected with the reason it lost, so the
        registry shows the whole comparison. ``serving_containers(path)``: the serial pipeline's
        containers with the middle one taken from the entry at ``path``."""
        stack = Stack.of(self)
        register = tasks.CallAwsService(
            self, "Register candidate",
            service="sagemaker", action="createModelPackage",
            iam_resources=[stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*"),
                           stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group)],
            parameters={
                "ModelPackageGroupName": group,
                "ModelApprovalStatus": "Rejected",
                "CustomerMetadataProperties": {CANDIDATE_OF: J.string_at("$$.Execution.Id"),
                                               "candidate": J.string_at("$.loser.name"),
                                               "explainability": J.string_at("$.loser.explainability")},
                "ModelPackageDescription": J.format("Candidate {} ({}) of execution {}. {}", J.string_at("$.loser.name"),
                                                    J.string_at("$.loser.family"), J.string_at("$$.Execution.Name"),
                                                    J.string_at("$.loser.reason")),
                "InferenceSpecification": {
                    "Containers": serving_containers("$.loser"),
                    "SupportedContentTypes": ["text/csv", "application/json"],
                    "SupportedResponseMIMETypes": ["text/csv", "application/json"],
                },
                "ModelMetrics": {
                    "ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                    "S3Uri": J.string_at("$.loser.evaluation_report")}},
                    "Explainability": {"Report": {"ContentType": "application/json",
                                                  "S3Uri": J.string_at("$.loser.explainability")}},
                },
            },
            result_selector={"ModelPackageArn.$": "$.ModelPackageArn"},
        )
        # a branch's failure, re-raised unchanged so the Map's Catch notifies it
        guard(register, SAGEMAKER_SDK_TRANSIENT, sfn.Fail(self, "Registering a candidate failed",
                                                          error_path="$.error.Error", cause_path="$.error.Cause"))
        losers = sfn.Map(
            self, "Register other candidates",
            comment="Each candidate that lost, Rejected, with the reason in its description",
            items_path="$.selection.losers",
            item_selector={"loser.$": "$$.Map.Item.Value", "plan.$": "$.plan"},
            max_concurrency=2,
            result_path="$.candidate_packages",
        )
        losers.item_processor(register)
        losers.add_catch(failure, errors=[sfn.Errors.ALL], result_path="$.error")
        return losers

