"""Hosting and transform as the state machine reaches them: Task resources through the registered
Step Functions integrations, so requests are validated against the botocore model and errors and
timestamps come back in Step Functions' shapes."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sm_testkit import DATA, ROLE, XGBOOST_IMAGE

from containers.xgboost.artifacts import model_archive as model_tar
from emulator.asl.errors import StatesError
from emulator.asl.ports import Integrations, TaskRequest
from emulator.integrations.sagemaker import register
from emulator.services.sagemaker.exceptions import ENDPOINT_NOT_FOUND_TEXT

FEATURES = ["length", "diameter", "height", "whole weight", "shucked weight", "viscera weight", "shell weight"]


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    frame = pd.read_csv(DATA / "abalone.csv")
    x, y = frame[FEATURES].to_numpy(np.float32), frame["rings"].to_numpy(np.float32)
    return xgb.train({"objective": "reg:squarederror", "max_depth": 3, "nthread": 1}, xgb.DMatrix(x, label=y), 5)




@pytest.fixture
def task(backend, booster):
    """run(resource_suffix, parameters) -> the task's output, as the interpreter would get it."""
    backend.context.s3.put_bytes("s3://bucket/model/model.tar.gz", model_tar(booster))
    integrations = Integrations()
    register(integrations, backend)

    def run(suffix: str, parameters: dict, timeout: float = 30):
        resource = f"arn:aws:states:::{suffix}"
        key, integration = integrations.lookup(resource)
        request = TaskRequest(resource=resource, key=key, parameters=parameters, state_name="S",
                              execution_arn="arn:aws:states:us-east-1:000000000000:execution:sm:e", execution_name="e")
        handle = integration.start(request)
        deadline = time.time() + timeout
        while True:
            outcome = integration.poll(handle)
            if outcome is not None:
                return outcome.output
            assert time.time() < deadline, "task did not finish"
            time.sleep(integration.poll_interval(handle))

    return run


def create_model_and_config(task, name: str = "abalone") -> None:
    task("sagemaker:createModel", {"ModelName": name, "ExecutionRoleArn": ROLE,
                                   "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/model/model.tar.gz"}})
    task("sagemaker:createEndpointConfig", {"EndpointConfigName": name, "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]})


def test_deploy_then_update_through_the_task_resources(task):
    create_model_and_config(task)
    created = task("sagemaker:createEndpoint", {"EndpointName": "abalone", "EndpointConfigName": "abalone"})
    assert created == {"EndpointArn": "arn:aws:sagemaker:us-east-1:000000000000:endpoint/abalone"}
    deadline = time.time() + 20
    while (described := task("aws-sdk:sagemaker:describeEndpoint", {"EndpointName": "abalone"}))["EndpointStatus"] != "InService":
        assert time.time() < deadline
        time.sleep(0.02)
    assert isinstance(described["CreationTime"], str) and described["CreationTime"].endswith("Z")

    # a second deployment finds the endpoint and updates it
    with pytest.raises(StatesError) as raised:
        task("sagemaker:createEndpoint", {"EndpointName": "abalone", "EndpointConfigName": "abalone"})
    assert raised.value.name == "SageMaker.AmazonSageMakerException"
    assert 'Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/abalone".' in raised.value.cause
    assert "Error Code: ValidationException" in raised.value.cause
    task("sagemaker:createModel", {"ModelName": "abalone-2", "ExecutionRoleArn": ROLE,
                                   "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/model/model.tar.gz"}})
    task("sagemaker:createEndpointConfig", {"EndpointConfigName": "abalone-2", "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": "abalone-2", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]})
    task("sagemaker:updateEndpoint", {"EndpointName": "abalone", "EndpointConfigName": "abalone-2"})
    deadline = time.time() + 20
    while (described := task("aws-sdk:sagemaker:describeEndpoint", {"EndpointName": "abalone"}))["EndpointStatus"] != "InService":
        assert time.time() < deadline
        time.sleep(0.02)
    assert described["EndpointConfigName"] == "abalone-2"


def test_missing_endpoint_is_an_sdk_validation_error(task):
    with pytest.raises(StatesError) as raised:
        task("aws-sdk:sagemaker:describeEndpoint", {"EndpointName": "nowhere"})
    # ValidationException is not in the SageMaker model: the SDK v2 base exception names it, which is
    # what the pipeline's 'Find endpoint' catches to create the endpoint on a first run
    assert raised.value.name == "SageMaker.SageMakerException"
    assert 'Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/nowhere".' in raised.value.cause
    assert ENDPOINT_NOT_FOUND_TEXT in raised.value.cause  # what the training state machine's Choice matches


def test_a_wrongly_typed_request_is_rejected_before_it_runs(task):
    task("sagemaker:createModel", {"ModelName": "m", "ExecutionRoleArn": ROLE,
                                   "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/model/model.tar.gz"}})
    with pytest.raises(StatesError) as raised:
        task("sagemaker:createEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": "1", "InstanceType": "ml.m5.large"}]})
    assert raised.value.name == "SageMaker.AmazonSageMakerException"
    assert "productionVariants.1.member.initialInstanceCount" in raised.value.cause
    with pytest.raises(StatesError, match="Could not find endpoint configuration"):  # nothing was created
        task("aws-sdk:sagemaker:describeEndpointConfig", {"EndpointConfigName": "c"})


def test_transform_sync_returns_describe_with_epoch_millis(task, context, booster):
    frame = pd.read_csv(DATA / "abalone.csv")
    rows = frame[FEATURES].to_numpy(np.float32)[:100]
    context.s3.put_bytes("s3://bucket/batch/rows.csv", "".join(",".join(map(repr, r)) + "\n" for r in rows.tolist()).encode())
    task("sagemaker:createModel", {"ModelName": "scorer", "ExecutionRoleArn": ROLE,
                                   "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/model/model.tar.gz"}})
    output = task("sagemaker:createTransformJob.sync", {
        "TransformJobName": "score", "ModelName": "scorer", "BatchStrategy": "MultiRecord",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/batch/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://bucket/scored/", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    assert output["TransformJobStatus"] == "Completed"
    assert isinstance(output["TransformStartTime"], int) and output["TransformEndTime"] >= output["TransformStartTime"]
    got = np.array([float(v) for v in context.s3.get_bytes("s3://bucket/scored/rows.csv.out").decode().split()])
    np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(rows)), rtol=1e-6)

    context.s3.put_bytes("s3://bucket/wide/rows.csv", b"1,2\n")
    with pytest.raises(StatesError) as raised:
        task("sagemaker:createTransformJob.sync", {
            "TransformJobName": "score-bad", "ModelName": "scorer",
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/wide/"}},
                               "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": "s3://bucket/scored-bad/"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    assert raised.value.name == "States.TaskFailed"
    assert '"TransformJobStatus": "Failed"' in raised.value.cause and "FailureReason" in raised.value.cause


def test_model_registry_through_sdk_actions(task):
    task("aws-sdk:sagemaker:createModelPackageGroup", {"ModelPackageGroupName": "abalone"})
    arn = task("aws-sdk:sagemaker:createModelPackage", {
        "ModelPackageGroupName": "abalone", "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {"Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/model/model.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}})["ModelPackageArn"]
    listed = task("aws-sdk:sagemaker:listModelPackages", {"ModelPackageGroupName": "abalone", "ModelApprovalStatus": "Approved"})
    assert [p["ModelPackageArn"] for p in listed["ModelPackageSummaryList"]] == [arn]
