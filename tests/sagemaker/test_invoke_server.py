"""The InvokeEndpoint server, driven by boto3's sagemaker-runtime client exactly as a user would,
and the `serve` process that keeps endpoints reachable after the creating process is gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from botocore.exceptions import ClientError
from sm_testkit import DATA, PROJECT_ROOT, ROLE, XGBOOST_IMAGE

from containers.xgboost.artifacts import model_archive as model_tar
from emulator.services.sagemaker.invoke_server import ensure_invoke_server, live_serve_url, stop_in_process_servers

FEATURES = ["length", "diameter", "height", "whole weight", "shucked weight", "viscera weight", "shell weight"]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, xgb.Booster]:
    frame = pd.read_csv(DATA / "abalone.csv")
    x, y = frame[FEATURES].to_numpy(np.float32), frame["rings"].to_numpy(np.float32)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "nthread": 1}, xgb.DMatrix(x, label=y), 10)
    return x, booster




@pytest.fixture
def endpoint(backend, data):
    """An InService endpoint 'abalone' serving the module's booster."""
    _, booster = data
    hosting = backend.hosting
    hosting.context.s3.put_bytes("s3://bucket/model/model.tar.gz", model_tar(booster))
    hosting.create_model(ModelName="abalone", ExecutionRoleArn=ROLE,
                         PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/model/model.tar.gz"})
    hosting.create_endpoint_config(EndpointConfigName="abalone", ProductionVariants=[
        {"VariantName": "blue", "ModelName": "abalone", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    hosting.create_endpoint(EndpointName="abalone", EndpointConfigName="abalone")
    deadline = time.time() + 20
    while hosting.describe_endpoint(EndpointName="abalone")["EndpointStatus"] != "InService" and time.time() < deadline:
        time.sleep(0.02)
    return hosting


def test_boto3_sagemaker_runtime_invokes_the_endpoint_unchanged(endpoint, data):
    x, booster = data
    port = ensure_invoke_server(endpoint.context.layout).rsplit(":", 1)[1]
    client = boto3.client("sagemaker-runtime", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    body = "\n".join(",".join(str(v) for v in row) for row in x[:3])
    response = client.invoke_endpoint(EndpointName="abalone", ContentType="text/csv", Body=body,
                                      CustomAttributes="trace=1")
    assert response["ContentType"] == "text/csv"
    assert response["InvokedProductionVariant"] == "blue"
    assert response["CustomAttributes"] == "trace=1"
    predictions = [float(v) for v in response["Body"].read().decode().split(",")]
    np.testing.assert_allclose(predictions, booster.predict(xgb.DMatrix(x[:3])), rtol=1e-6)

    response = client.invoke_endpoint(EndpointName="abalone", ContentType="text/csv", Accept="application/json",
                                      Body=",".join(map(str, x[0])))
    assert response["ContentType"] == "application/json"
    assert json.loads(response["Body"].read())["predictions"][0]["score"] == pytest.approx(float(booster.predict(xgb.DMatrix(x[:1]))[0]), rel=1e-6)


def test_errors_have_the_runtime_api_shapes(endpoint):
    client = boto3.client("sagemaker-runtime", endpoint_url=ensure_invoke_server(endpoint.context.layout), region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName="nope", ContentType="text/csv", Body="1,2")
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert error["Error"]["Message"] == "Endpoint nope of account 000000000000 not found."
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400

    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(EndpointName="abalone", ContentType="application/x-image", Body=b"\x89PNG")
    error = raised.value.response
    assert error["OriginalStatusCode"] == 415
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["Error"]["Message"].startswith("Received client error (415) from primary with message")

    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(EndpointName="abalone", ContentType="text/csv", Body="1,2,3")  # 3 of 7 features
    assert raised.value.response["OriginalStatusCode"] == 400
    assert "feature" in raised.value.response["OriginalMessage"]


def test_ping_answers(endpoint):
    with urllib.request.urlopen(f"{ensure_invoke_server(endpoint.context.layout)}/ping", timeout=5) as response:
        assert response.status == 200


def test_serve_process_outlives_the_creator_and_is_reused(endpoint, data, tmp_path):
    x, booster = data
    layout = endpoint.context.layout
    state_dir = layout.root
    stop_in_process_servers()
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    process = subprocess.Popen([sys.executable, "-m", "emulator", "--state-dir", str(state_dir), "serve"],
                               cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while live_serve_url(layout) is None and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        url = live_serve_url(layout)
        assert url, process.stdout.read().decode() if process.poll() is not None else "serve did not start"
        info = json.loads(layout.invoke_server_file.read_text())
        assert info["pid"] == process.pid
        assert ensure_invoke_server(endpoint.context.layout) == url  # run reuses the live serve process
        client = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x")
        body = client.invoke_endpoint(EndpointName="abalone", ContentType="text/csv", Body=",".join(map(str, x[5])))["Body"].read()
        assert float(body) == pytest.approx(float(booster.predict(xgb.DMatrix(x[5:6]))[0]), rel=1e-6)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=10)[0].decode()
    assert "endpoints/abalone/invocations" in output
    assert not layout.invoke_server_file.exists()


def test_a_chunked_request_body_is_read_whole(endpoint, data):
    import http.client

    x, booster = data
    host, port = ensure_invoke_server(endpoint.context.layout).removeprefix("http://").split(":")
    body = ",".join(map(str, x[2])).encode()
    connection = http.client.HTTPConnection(host, int(port))
    connection.request("POST", "/endpoints/abalone/invocations", body=iter([body[:10], body[10:]]),
                       headers={"Content-Type": "text/csv"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 200
    assert float(response.read()) == pytest.approx(float(booster.predict(xgb.DMatrix(x[2:3]))[0]), rel=1e-6)
    connection.close()
