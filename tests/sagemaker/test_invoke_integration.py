"""Step Functions' aws-sdk:sagemakerruntime:invokeEndpoint in the emulator: a Task state's call goes to the
invoke server over HTTP (its metrics count it, its capture sees it), with the SDK integration's output
and error names."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sm_testkit import DATA, ROLE, XGBOOST_IMAGE

from containers.xgboost.artifacts import model_archive
from emulator.asl import run_definition
from emulator.asl.ports import Integrations
from emulator.integrations import sagemaker_runtime
from emulator.services.cloudwatch import MetricStore
from emulator.services.sagemaker.invoke_server import ensure_invoke_server

FEATURES = ["length", "diameter", "height", "whole weight", "shucked weight", "viscera weight", "shell weight"]


@pytest.fixture
def endpoint(backend):
    frame = pd.read_csv(DATA / "abalone.csv")
    x = frame[FEATURES].to_numpy(np.float32)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "nthread": 1},
                        xgb.DMatrix(x, label=frame["rings"].to_numpy(np.float32)), 5)
    hosting = backend.hosting
    hosting.context.s3.put_bytes("s3://bucket/m/model.tar.gz", model_archive(booster))
    hosting.create_model(ModelName="m", ExecutionRoleArn=ROLE,
                         PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/m/model.tar.gz"})
    hosting.create_endpoint_config(EndpointConfigName="m", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    hosting.create_endpoint(EndpointName="abalone", EndpointConfigName="m")
    while hosting.describe_endpoint(EndpointName="abalone")["EndpointStatus"] != "InService":
        time.sleep(0.02)
    return x, booster, hosting.context.layout


def invoke(layout, parameters: dict):
    state = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint",
             "Parameters": parameters, "End": True}
    integrations = Integrations()
    sagemaker_runtime.register(integrations, lambda: ensure_invoke_server(layout))
    return run_definition(json.dumps({"StartAt": "Invoke", "States": {"Invoke": state}}), {},
                          integrations=integrations, time_scale=0.0)


def test_the_task_calls_the_endpoint_over_http_and_returns_the_sdk_output(endpoint):
    x, booster, layout = endpoint
    body = "\n".join(",".join(map(str, row)) for row in x[:3])
    result = invoke(layout, {"EndpointName": "abalone", "ContentType": "text/csv", "Body": body, "InferenceId": "b-1"})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert set(result.output) == {"Body", "ContentType", "InvokedProductionVariant"}
    assert result.output["InvokedProductionVariant"] == "AllTraffic" and result.output["ContentType"] == "text/csv"
    np.testing.assert_allclose([float(v) for v in result.output["Body"].split(",")],
                               booster.predict(xgb.DMatrix(x[:3])), rtol=1e-6)
    metrics = MetricStore(layout.cloudwatch_dir / "metrics.sqlite")
    assert metrics.statistic("AWS/SageMaker", "Invocations", {"EndpointName": "abalone", "VariantName": "AllTraffic"},
                             0, time.time() + 60, "Sum") == 1.0


@pytest.mark.parametrize("parameters, error, words", [
    ({"EndpointName": "nope", "ContentType": "text/csv", "Body": "1,2"},
     "SageMakerRuntime.ValidationErrorException", "Endpoint nope of account"),
    ({"EndpointName": "abalone", "ContentType": "image/png", "Body": "png"},
     "SageMakerRuntime.ModelErrorException", "Received client error (415)"),
    ({"EndpointName": "abalone", "Body": "1", "Colour": "red"},
     "SageMakerRuntime.ValidationErrorException", "Unknown parameter(s) ['Colour']"),
])
def test_errors_have_the_sdk_integrations_names(endpoint, parameters, error, words):
    result = invoke(endpoint[2], parameters)
    assert result.status == "FAILED" and result.error == error, (result.error, result.cause)
    assert words in result.cause and "(Service: SageMakerRuntime, Status Code: " in result.cause
