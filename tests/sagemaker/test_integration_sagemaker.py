"""The SageMaker integrations run by the ASL interpreter, with the error names AWS reports."""

from __future__ import annotations

import json
import time

import pytest
from sm_testkit import ROLE, SKLEARN_IMAGE, abalone_channels, training_request

from emulator.asl.ports import Integrations, TaskOutcome, TaskRequest
from emulator.asl.run import run_definition
from emulator.integrations.sagemaker import register

SM = "arn:aws:states:::sagemaker"
SDK = "arn:aws:states:::aws-sdk:sagemaker"


@pytest.fixture
def integrations(backend) -> Integrations:
    registry = Integrations()
    register(registry, backend)
    return registry


@pytest.fixture
def channels(context):
    return abalone_channels(context.s3, rows=800)


def one_task(resource: str, parameters: dict, **extra) -> dict:
    return {"StartAt": "Task", "States": {"Task": {"Type": "Task", "Resource": resource, "Parameters": parameters, "End": True, **extra}}}


def test_every_template_key_is_registered(integrations):
    keys = set(integrations.keys())
    for op in ("createProcessingJob", "createTrainingJob", "createHyperParameterTuningJob", "createTransformJob"):
        assert f"sagemaker:{op}.sync" in keys and f"sagemaker:{op}" in keys
    assert {"sagemaker:createModel", "sagemaker:createEndpointConfig", "sagemaker:createEndpoint", "sagemaker:updateEndpoint", "aws-sdk:sagemaker:*"} <= keys


def test_throttled_first_attempt_is_retried_and_sync_returns_describe_training_job(backend, integrations, channels):
    backend.inject_fault("CreateTrainingJob", "ThrottlingException", times=1)
    retry = [{"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}]
    definition = one_task(f"{SM}:createTrainingJob.sync", training_request("int-train", channels), Retry=retry)
    result = run_definition(definition, {}, integrations=integrations)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    failed = [e for e in result.history if e["type"] == "TaskFailed"]
    assert len(failed) == 1
    details = failed[0]["taskFailedEventDetails"]
    assert details["error"] == "SageMaker.AmazonSageMakerException"
    assert "Error Code: ThrottlingException" in details["cause"] and "Service: AmazonSageMaker; Status Code: 400" in details["cause"]

    out = result.output
    assert out["TrainingJobStatus"] == "Completed"
    assert out["ModelArtifacts"]["S3ModelArtifacts"] == "s3://bucket/models/int-train/output/model.tar.gz"
    assert isinstance(out["CreationTime"], int) and out["TrainingEndTime"] >= out["CreationTime"] > 1.6e12
    assert {m["MetricName"] for m in out["FinalMetricDataList"]} >= {"validation:rmse"}

    described = run_definition(one_task(f"{SDK}:describeTrainingJob", {"TrainingJobName": "int-train"}), {}, integrations=integrations)
    assert described.status == "SUCCEEDED"
    assert described.output["TrainingJobArn"] == out["TrainingJobArn"]
    assert described.output["CreationTime"].endswith("Z")  # SDK integrations: ISO-8601 timestamps


def test_a_wrongly_built_request_is_rejected_by_validation_before_any_job_runs(context, integrations, channels):
    request = training_request("int-bad", channels)
    request["HyperParameters"]["max_depth"] = 5  # SageMaker wants every hyperparameter as a string
    del request["RoleArn"]
    catch = [{"ErrorEquals": ["States.ALL"], "Next": "Caught", "ResultPath": "$.error"}]
    definition = one_task(f"{SM}:createTrainingJob.sync", request, Catch=catch)
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    result = run_definition(definition, {}, integrations=integrations)
    assert result.status == "SUCCEEDED"
    error = result.output["error"]
    assert error["Error"] == "SageMaker.AmazonSageMakerException"
    assert error["Cause"].startswith("2 validation errors detected: ")
    assert "Value '5' at 'hyperParameters.max_depth' failed to satisfy constraint: Member must be of type string" in error["Cause"]
    assert "Value null at 'roleArn' failed to satisfy constraint: Member must not be null" in error["Cause"]
    assert "Error Code: ValidationException" in error["Cause"]
    assert not context.records().exists("training-jobs", "int-bad")
    assert not context.work_dir("training-jobs", "int-bad").exists()


def test_a_failed_processing_job_fails_the_state_with_its_describe_as_cause(context, integrations):
    context.s3.put_bytes("s3://bucket/code/boom.py", b"import sys\nprint('column rings missing', file=sys.stderr)\nsys.exit(2)\n")
    request = {
        "ProcessingJobName": "int-proc-fail",
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/boom.py"]},
        "ProcessingInputs": [{"InputName": "code", "S3Input": {"S3Uri": "s3://bucket/code/boom.py", "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}},
    }
    result = run_definition(one_task(f"{SM}:createProcessingJob.sync", request), {}, integrations=integrations)
    assert result.status == "FAILED"
    assert result.error == "States.TaskFailed"
    cause = json.loads(result.cause)
    assert cause["ProcessingJobStatus"] == "Failed"
    assert "column rings missing" in cause["FailureReason"]
    assert isinstance(cause["CreationTime"], int)


def test_sdk_errors_keep_modelled_names_and_fold_the_rest_into_sagemaker_exception(integrations):
    result = run_definition(one_task(f"{SDK}:describeTrainingJob", {"TrainingJobName": "nope"}), {}, integrations=integrations)
    assert result.status == "FAILED"
    assert result.error == "SageMaker.ResourceNotFoundException"
    assert "nope" in result.cause
    invalid = run_definition(one_task(f"{SDK}:describeTrainingJob", {"TrainingJobName": "not_valid!"}), {}, integrations=integrations)
    assert invalid.error == "SageMaker.SageMakerException"
    assert "Member must satisfy regular expression pattern" in invalid.cause


def test_tuning_sync_then_sdk_describe_of_the_best_job(integrations, channels):
    from test_tuning import tuning_request

    definition = {
        "StartAt": "Tune",
        "States": {
            "Tune": {"Type": "Task", "Resource": f"{SM}:createHyperParameterTuningJob.sync", "Parameters": tuning_request("int-tune", channels, jobs=2, parallel=2), "Next": "Best"},
            "Best": {
                "Type": "Task",
                "Resource": f"{SDK}:describeTrainingJob",
                "Parameters": {"TrainingJobName.$": "$.BestTrainingJob.TrainingJobName"},
                "ResultSelector": {"Artifacts.$": "$.ModelArtifacts.S3ModelArtifacts", "HyperParameters.$": "$.HyperParameters"},
                "End": True,
            },
        },
    }
    result = run_definition(definition, {}, integrations=integrations)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["Artifacts"].startswith("s3://bucket/tuning/int-tune/int-tune-00")
    assert result.output["HyperParameters"]["_tuning_objective_metric"] == "validation:rmse"


def test_model_endpoint_config_and_batch_transform_through_the_optimized_keys(backend, context, integrations, channels):
    backend.call("CreateTrainingJob", training_request("int-hosted", channels, {"objective": "reg:squarederror", "num_round": "5"}))
    artifacts = backend.wait("training", "int-hosted", timeout=120)["ModelArtifacts"]["S3ModelArtifacts"]
    rows = [line.split(",", 1)[1] for line in context.s3.get_bytes(channels["validation"] + "validation.csv").decode().splitlines()[:25]]
    context.s3.put_bytes("s3://bucket/score/part-1.csv", ("\n".join(rows) + "\n").encode())
    from sm_testkit import XGBOOST_IMAGE

    definition = {
        "StartAt": "Model",
        "States": {
            "Model": {"Type": "Task", "Resource": f"{SM}:createModel", "ResultPath": "$.model", "Next": "Config",
                      "Parameters": {"ModelName": "int-model", "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": artifacts}}},
            "Config": {"Type": "Task", "Resource": f"{SM}:createEndpointConfig", "ResultPath": "$.config", "Next": "Transform",
                       "Parameters": {"EndpointConfigName": "int-config", "ProductionVariants": [
                           {"VariantName": "AllTraffic", "ModelName": "int-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]}},
            "Transform": {"Type": "Task", "Resource": f"{SM}:createTransformJob.sync", "ResultPath": "$.transform", "End": True,
                          "Parameters": {
                              "TransformJobName": "int-transform", "ModelName": "int-model",
                              "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/score/"}},
                                                 "ContentType": "text/csv", "SplitType": "Line"},
                              "TransformOutput": {"S3OutputPath": "s3://bucket/scored/", "AssembleWith": "Line", "Accept": "text/csv"},
                              "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}},
        },
    }
    result = run_definition(definition, {}, integrations=integrations)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["model"] == {"ModelArn": "arn:aws:sagemaker:us-east-1:000000000000:model/int-model"}
    assert result.output["config"]["EndpointConfigArn"].endswith(":endpoint-config/int-config")
    assert result.output["transform"]["TransformJobStatus"] == "Completed"
    assert isinstance(result.output["transform"]["CreationTime"], int)
    scores = context.s3.get_bytes("s3://bucket/scored/part-1.csv.out").decode().split()
    assert len(scores) == 25 and all(0 < float(s) < 30 for s in scores)


def test_a_sync_task_wakes_when_its_job_ends_not_at_the_next_poll(integrations, channels):
    """The interpreter waits between polls through the integration: a SageMaker job's end wakes it."""
    resource = f"{SM}:createTrainingJob.sync"
    key, integration = integrations.lookup(resource)
    request = TaskRequest(resource, key, training_request("int-wake", channels), "Train", "arn:exec", "exec")
    handle = integration.start(request)
    began, waits = time.monotonic(), 0
    while (outcome := integration.poll(handle)) is None:
        integration.wait(handle, 300)  # a five-minute poll interval: only the job's end ends it early
        waits += 1
    assert isinstance(outcome, TaskOutcome) and outcome.output["TrainingJobStatus"] == "Completed"
    assert waits == 1 and time.monotonic() - began < 120


def test_a_throttled_describe_while_waiting_is_retried_by_the_integration_and_never_resubmits(backend, integrations, channels):
    # AWS retries its own polling of a .sync job; the state's Retry must not re-create the job
    # (which would fail with ResourceInUse, the name being taken).
    backend.inject_fault("DescribeTrainingJob", "ThrottlingException", times=2)
    backend.inject_fault("DescribeTrainingJob", "InternalFailure", times=1)
    retry = [{"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}]
    definition = one_task(f"{SM}:createTrainingJob.sync", training_request("int-poll", channels), Retry=retry)
    result = run_definition(definition, {}, integrations=integrations)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert [e for e in result.history if e["type"] == "TaskFailed"] == []
    assert [e["type"] for e in result.history].count("TaskSubmitted") == 1
    assert result.output["TrainingJobStatus"] == "Completed"


def test_a_poll_that_keeps_failing_ends_the_task_with_the_service_error(backend, integrations, channels):
    from emulator.integrations.sagemaker import MAX_POLL_FAILURES

    backend.inject_fault("DescribeTrainingJob", "ServiceUnavailable", times=MAX_POLL_FAILURES + 1)
    definition = one_task(f"{SM}:createTrainingJob.sync", training_request("int-poll-down", channels))
    result = run_definition(definition, {}, integrations=integrations)
    assert result.status == "FAILED"
    assert result.error == "SageMaker.AmazonSageMakerException" and "ServiceUnavailable" in result.cause
    backend.wait("training", "int-poll-down")
