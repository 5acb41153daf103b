"""The competition in the synthesized template: the fan-out Map, both families' images and tasks, the
Random Forest's script mode, IAM for both, the winner's selection and every candidate's registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template
from definitions import all_states, parse_definition

from processing_scripts.serving.package import CONTAINER_ENVIRONMENT
from stacks.approvals import REGISTERED_BY
from stacks.candidates import CANDIDATE_OF
from training_scripts.random_forest import contract

SAGEMAKER = "arn:aws:states:::sagemaker:"


@pytest.fixture(scope="module")
def template_json(synthesized) -> dict:
    stack, assembly = synthesized
    return assembly.get_stack_by_name(stack.stack_name).template


@pytest.fixture(scope="module")
def template(synthesized) -> Template:
    return Template.from_stack(synthesized[0])


@pytest.fixture(scope="module")
def definition(template_json) -> dict:
    machine = next(r for r in template_json["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    return parse_definition(machine)


@pytest.fixture(scope="module")
def fan_out(definition) -> dict:
    return definition["States"]["Train candidates"]


@pytest.fixture(scope="module")
def inside(fan_out) -> dict:
    return all_states(fan_out["ItemProcessor"])


def test_the_fan_out_is_a_map_over_the_executions_candidates(fan_out):
    assert fan_out["Type"] == "Map"
    assert fan_out["ItemsPath"] == "$.plan.candidates"  # validate_input's plan: per execution, not per synth
    assert fan_out["ItemSelector"] == {"candidate.$": "$$.Map.Item.Value", "plan.$": "$.plan"}
    assert fan_out["MaxConcurrency"] == 2  # cdk.json max_concurrent_candidates
    assert fan_out["ResultPath"] == "$.candidates"
    assert fan_out["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Read lock on failure"}]
    route = fan_out["ItemProcessor"]["States"][fan_out["ItemProcessor"]["StartAt"]]
    assert route["Type"] == "Choice"
    assert {(c["Variable"], c["StringEquals"], c["Next"]) for c in route["Choices"]} == {
        ("$.candidate.family", "xgboost", "Tuning enabled?"),
        ("$.candidate.family", "random_forest", "Random forest script mode")}


def test_each_family_tunes_optionally_trains_and_shares_one_evaluation(inside):
    for choice, tune, train in (("Tuning enabled?", "Tune hyperparameters", "Train model"),
                                ("Tune the forest?", "Tune random forest", "Train random forest")):
        assert inside[choice]["Choices"] == [{"Variable": "$.candidate.tuning_enabled", "BooleanEquals": True, "Next": tune}]
        assert inside[tune]["Resource"] == SAGEMAKER + "createHyperParameterTuningJob.sync"
        assert inside[train]["Resource"] == SAGEMAKER + "createTrainingJob.sync"
        assert inside[train]["Parameters"]["TrainingJobName.$"] == "$.candidate.job_names.training"
        assert inside[tune]["Parameters"]["HyperParameterTuningJobName.$"] == "$.candidate.job_names.tuning"
        assert inside[train]["ResultSelector"]["TrainingTimeInSeconds.$"] == "$.TrainingTimeInSeconds"
    evaluate = inside["Evaluate model"]
    assert inside["Serve with XGBoost"]["Next"] == inside["Serve with scikit-learn"]["Next"] == "Evaluate model"
    assert evaluate["Resource"] == SAGEMAKER + "createProcessingJob.sync"
    # evaluated in the image that will serve it (the serving Pass before it sets $.serving)
    assert evaluate["Parameters"]["AppSpecification"]["ImageUri.$"] == "$.serving.Image"
    assert inside["Serve with scikit-learn"]["ResultPath"] == inside["Serve with XGBoost"]["ResultPath"] == "$.serving"
    arguments = evaluate["Parameters"]["AppSpecification"]["ContainerArguments.$"]
    # the gated metric, and one bootstrap seed for every candidate: their resamples pair up
    assert "'--metric', $.plan.quality.metric" in arguments and "'--bootstrap-seed', '0'" in arguments
    inputs = {i["InputName"]: i["S3Input"] for i in evaluate["Parameters"]["ProcessingInputs"]}
    assert inputs["test"]["S3Uri.$"] == "$.plan.paths.test" and inputs["model"]["S3Uri.$"] == "$.training.ModelArtifacts"
    assert evaluate["Next"] == "Candidate trained" and inside["Candidate trained"]["End"] is True


def test_every_task_of_a_candidate_is_retried_and_caught_into_its_leaderboard_entry(inside):
    tasks = {name: state for name, state in inside.items() if state["Type"] == "Task"}
    assert set(tasks) == {"Tune hyperparameters", "Train model", "Tune random forest", "Train random forest", "Evaluate model"}
    for name, state in tasks.items():
        assert state["Retry"] and all("States.ALL" not in r["ErrorEquals"] for r in state["Retry"]), name
        assert {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Candidate failed"} in state["Catch"], name
    failed = inside["Candidate failed"]
    assert failed["Parameters"] == {"name.$": "$.candidate.name", "family.$": "$.candidate.family", "status": "Failed",
                                    "error.$": "$.error.Error", "cause.$": "$.error.Cause"}
    assert failed["End"] is True  # the iteration succeeds with its failure recorded; the others go on


def test_both_images_train_and_serve(inside):
    xgb = inside["Train model"]["Parameters"]["AlgorithmSpecification"]
    rf = inside["Train random forest"]["Parameters"]["AlgorithmSpecification"]
    assert xgb["TrainingImage"].endswith("/sagemaker-xgboost:3.0-5") and "MetricDefinitions" not in xgb
    assert "/sagemaker-scikit-learn:1.9-0" in rf["TrainingImage"]
    # the forest's metric lines, read by the regexes its contract declares (in the search as well)
    assert rf["MetricDefinitions"] == contract.METRIC_DEFINITIONS
    assert inside["Tune random forest"]["Parameters"]["TrainingJobDefinition"]["AlgorithmSpecification"] == rf
    xgb_serving = inside["Serve with XGBoost"]["Result"]
    rf_serving = inside["Serve with scikit-learn"]["Result"]
    assert xgb_serving == {"Image": xgb["TrainingImage"], "Environment": CONTAINER_ENVIRONMENT["model"]}
    assert "/sagemaker-scikit-learn:1.9-0" in rf_serving["Image"]
    assert rf_serving["Environment"] == contract.SERVING_ENVIRONMENT


def test_the_forest_runs_in_script_mode_as_the_sdk_sets_it(inside, synthesized):
    script_mode = inside["Random forest script mode"]
    hyperparameters = script_mode["Result"]
    assert script_mode["ResultPath"] == "$.script_mode"
    assert hyperparameters["sagemaker_program"] == '"train.py"'  # JSON-encoded, as the SDK sends them
    assert hyperparameters["sagemaker_container_log_level"] == "20"
    submit = hyperparameters["sagemaker_submit_directory"]  # "s3://cdk-...-assets-<account>-<region>/<hash>.gz", quoted
    assert "s3://cdk-hnb659fds-assets-${AWS::AccountId}-us-east-1/" in submit
    # the sourcedir is a file asset of the assembly (no Docker), the one the URL names
    _, assembly = synthesized
    manifest = json.loads((Path(assembly.directory) / "MlPipeline.assets.json").read_text())
    sources = [f["source"]["path"] for f in manifest["files"].values()]
    assert any(path.endswith(".tar.gz") and path.split(".")[1] in submit for path in sources)
    assert hyperparameters["sagemaker_region"] == '"us-east-1"'
    train = inside["Train random forest"]["Parameters"]
    assert train["HyperParameters.$"] == "States.JsonMerge($.hyperparameters.values, $.script_mode, false)"
    static = inside["Tune random forest"]["Parameters"]["TrainingJobDefinition"]["StaticHyperParameters.$"]
    assert static == "States.JsonMerge($.candidate.static_hyperparameters, $.script_mode, false)"


def test_iam_covers_both_images_the_code_asset_and_the_selection(template, template_json):
    policies = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    text = json.dumps(policies)
    # the SageMaker role pulls both AWS images (sagemaker-xgboost, sagemaker-scikit-learn) ...
    assert "arn:aws:ecr:*:*:repository/sagemaker-*" in text
    # ... and reads the sourcedir.tar.gz from the CDK assets bucket
    role_policies = [p for p in policies if any("SageMakerRole" in r.get("Ref", "") for r in p.get("Roles", []))]
    assert any("cdk-hnb659fds-assets" in json.dumps(p) and "s3:GetObject*" in json.dumps(p) for p in role_policies)
    # the state machine may start and stop both kinds of job and invoke the selection Lambda
    machine_policies = [p for p in policies if any("StateMachineRole" in r.get("Ref", "") for r in p.get("Roles", []))]
    machine = json.dumps(machine_policies).lower()  # CallAwsService writes the API's own case
    for action in ("sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob", "sagemaker:StopTrainingJob",
                   "sagemaker:CreateProcessingJob", "sagemaker:CreateModelPackage", "iam:PassRole", "lambda:InvokeFunction"):
        assert action.lower() in machine, action
    assert "selectwinner" in machine
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "handler.handler", "Description": Match.string_like_regexp("paired-bootstrap")})


def test_the_winner_is_selected_gated_and_registered_with_its_explanation(definition):
    states = definition["States"]
    select = states["Select winner"]
    assert select["Parameters"] == {"candidates.$": "$.candidates", "metric.$": "$.plan.quality.metric",
                                               "direction.$": "$.plan.quality.direction"}
    assert select["ResultPath"] == "$.selection"
    assert any("States.ALL" in c["ErrorEquals"] and c["Next"] == "Read lock on failure" for c in select["Catch"])
    gate = states["Quality gate"]["Parameters"]
    assert gate["evaluation_s3_uri.$"] == "$.selection.winner.evaluation_report"
    register = states["Register model package"]["Parameters"]
    assert register["ModelMetrics"]["Explainability"]["Report"]["S3Uri.$"] == "$.selection.winner.explainability"
    assert register["CustomerMetadataProperties"]["explainability.$"] == "$.selection.winner.explainability"


def test_every_losing_candidate_is_registered_rejected_with_its_reason(definition):
    losers = definition["States"]["Register other candidates"]
    assert losers["Type"] == "Map" and losers["ItemsPath"] == "$.selection.losers"
    register = all_states(losers["ItemProcessor"])["Register candidate"]
    assert register["Resource"].endswith("aws-sdk:sagemaker:createModelPackage")
    parameters = register["Parameters"]
    assert parameters["ModelApprovalStatus"] == "Rejected"
    assert "$.loser.reason" in parameters["ModelPackageDescription.$"]
    # not the approval Lambda's key: a Rejected candidate must never answer the winner's approval
    assert REGISTERED_BY + ".$" not in parameters["CustomerMetadataProperties"]
    assert parameters["CustomerMetadataProperties"][CANDIDATE_OF + ".$"] == "$$.Execution.Id"
    model = parameters["InferenceSpecification"]["Containers"][1]
    assert model["Image.$"] == "$.loser.serving.Image" and model["ModelDataUrl.$"] == "$.loser.model_data"
    assert register["Retry"] and register["Catch"][0]["Next"] == "Registering a candidate failed"
    assert losers["Catch"][0]["Next"] == "Read lock on failure"
