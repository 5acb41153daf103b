"""Batch transform with a real xgboost model: outputs equal in-process Booster.predict, whatever the
batching, and DataProcessing filters/join behave as the SageMaker docs describe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sm_testkit import DATA, ROLE, XGBOOST_IMAGE

from containers.xgboost.artifacts import model_archive as model_tar
from emulator.services.sagemaker.exceptions import (
    ResourceInUse,
    ResourceNotFound,
    ValidationException,
)
from emulator.services.sagemaker.hosting import HostingBackend
from emulator.services.sagemaker.transform import RecordFilter, TransformBackend

FEATURES = ["length", "diameter", "height", "whole weight", "shucked weight", "viscera weight", "shell weight"]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, xgb.Booster]:
    frame = pd.read_csv(DATA / "abalone.csv")
    x, y = frame[FEATURES].to_numpy(np.float32), frame["rings"].to_numpy(np.float32)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "nthread": 1}, xgb.DMatrix(x, label=y), 10)
    return x, y, booster




def to_csv(rows: np.ndarray) -> bytes:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()


@pytest.fixture
def transform(backend, data):
    _, _, booster = data
    backend.context.s3.put_bytes("s3://bucket/model/model.tar.gz", model_tar(booster))
    backend.hosting.create_model(ModelName="abalone", ExecutionRoleArn=ROLE,
                                 PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/model/model.tar.gz"})
    return backend.transform


def job(name: str, source: str, output: str, **extra) -> dict:
    request = {
        "TransformJobName": name, "ModelName": "abalone",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": output, "AssembleWith": "Line", "Accept": "text/csv"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    for key, value in extra.items():
        if key in ("SplitType", "CompressionType"):
            request["TransformInput"][key] = value
        elif key in ("AssembleWith", "Accept"):
            request["TransformOutput"][key] = value
        else:
            request[key] = value
    return request


def predictions(s3, uri: str) -> np.ndarray:
    return np.array([float(line) for line in s3.get_bytes(uri).decode().splitlines()])


@pytest.mark.parametrize("strategy,max_mb", [("MultiRecord", 6), ("MultiRecord", 1), ("SingleRecord", 6)])
def test_outputs_equal_in_process_predictions(transform, data, strategy, max_mb):
    x, _, booster = data
    s3 = transform.context.s3
    rows = x if strategy == "MultiRecord" else x[:300]
    # 1 MB payloads split the ~4k-row (~250 kB) input only if it is large enough: repeat it
    rows = np.concatenate([rows] * (8 if max_mb == 1 else 1))
    s3.put_bytes("s3://bucket/batch/part-1.csv", to_csv(rows[: len(rows) // 2]))
    s3.put_bytes("s3://bucket/batch/sub/part-2.csv", to_csv(rows[len(rows) // 2:]))
    transform.create_transform_job(**job("score", "s3://bucket/batch/", "s3://bucket/scored",
                                         BatchStrategy=strategy, MaxPayloadInMB=max_mb))
    described = transform.wait("score", timeout=60)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert described["TransformEndTime"] >= described["TransformStartTime"]
    assert sorted(s3.list("s3://bucket/scored/")) == ["s3://bucket/scored/part-1.csv.out", "s3://bucket/scored/sub/part-2.csv.out"]
    got = np.concatenate([predictions(s3, "s3://bucket/scored/part-1.csv.out"),
                          predictions(s3, "s3://bucket/scored/sub/part-2.csv.out")])
    np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(rows)), rtol=1e-6)


def test_input_filter_join_and_output_filter(transform, data):
    """Label-first rows: drop the label for the model, then keep label and prediction side by side."""
    x, y, booster = data
    s3 = transform.context.s3
    labelled = np.column_stack([y[:200], x[:200]])
    s3.put_bytes("s3://bucket/labelled/test.csv", to_csv(labelled))
    transform.create_transform_job(**job(
        "joined", "s3://bucket/labelled/test.csv", "s3://bucket/joined/",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}))
    described = transform.wait("joined", timeout=60)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    lines = s3.get_bytes("s3://bucket/joined/test.csv.out").decode().splitlines()
    pairs = np.array([[float(v) for v in line.split(",")] for line in lines])
    assert pairs.shape == (200, 2)
    np.testing.assert_allclose(pairs[:, 0], y[:200])
    np.testing.assert_allclose(pairs[:, 1], booster.predict(xgb.DMatrix(x[:200])), rtol=1e-6)


def test_record_filters_follow_the_documented_jsonpath_forms():
    row = ["id", "a", "b", "c", "d", "e", "f"]
    assert RecordFilter("$[1:]").apply(row) == row[1:]
    assert RecordFilter("$[0,5:]").apply(row) == ["id", "e", "f"]
    assert RecordFilter("$[0,-1]").apply(row) == ["id", "f"]
    assert RecordFilter("$[2]").apply(row) == "b"
    assert RecordFilter("$").apply(row) == row
    record = {"id": 7, "features": [1, 2], "SageMakerOutput": {"score": 0.5}}
    assert RecordFilter("$.features").apply(record) == [1, 2]
    assert RecordFilter("$['id','SageMakerOutput']").apply(record) == {"id": 7, "SageMakerOutput": {"score": 0.5}}
    with pytest.raises(ValidationException, match="Invalid JSONPath"):
        RecordFilter("$[1:")


def test_a_request_the_model_rejects_fails_the_job_with_the_reason(transform):
    s3 = transform.context.s3
    s3.put_bytes("s3://bucket/bad/rows.csv", b"1,2,3\n4,5,6\n")  # 3 features, the model wants 7
    transform.create_transform_job(**job("bad", "s3://bucket/bad/", "s3://bucket/bad-out/"))
    described = transform.wait("bad", timeout=60)
    assert described["TransformJobStatus"] == "Failed"
    assert "status 400" in described["FailureReason"] and "feature" in described["FailureReason"]
    assert not s3.list("s3://bucket/bad-out/")


def test_names_and_missing_resources(transform):
    transform.context.s3.put_bytes("s3://bucket/one/rows.csv", b"")
    transform.create_transform_job(**job("once", "s3://bucket/one/", "s3://bucket/one-out/"))
    transform.wait("once", timeout=60)
    with pytest.raises(ResourceInUse, match="already exists"):
        transform.create_transform_job(**job("once", "s3://bucket/one/", "s3://bucket/one-out/"))
    with pytest.raises(ResourceNotFound):
        transform.describe_transform_job(TransformJobName="never")
    with pytest.raises(ValidationException, match='Could not find model'):
        transform.create_transform_job(**dict(job("x", "s3://bucket/one/", "s3://bucket/o/"), ModelName="ghost"))
    # a second backend (another process) reads the finished job from disk
    again = TransformBackend(transform.context, HostingBackend(transform.context)).describe_transform_job(TransformJobName="once")
    assert again["TransformJobStatus"] == "Completed"


def test_stop_ends_a_running_job_as_stopped(transform, data):
    x, _, _ = data
    transform.context.s3.put_bytes("s3://bucket/many/rows.csv", to_csv(np.concatenate([x] * 3)))
    transform.create_transform_job(**job("long", "s3://bucket/many/", "s3://bucket/many-out/", BatchStrategy="SingleRecord"))
    assert transform.stop_transform_job(TransformJobName="long") == {}
    described = transform.wait("long", timeout=60)
    assert described["TransformJobStatus"] == "Stopped"
    with pytest.raises(ValidationException, match="terminal state"):
        transform.stop_transform_job(TransformJobName="long")


def test_gzip_input_and_jsonlines_output(transform, data):
    import gzip
    import json

    x, _, booster = data
    s3 = transform.context.s3
    s3.put_bytes("s3://bucket/gz/rows.csv.gz", gzip.compress(to_csv(x[:100])))
    transform.create_transform_job(**job("gz", "s3://bucket/gz/", "s3://bucket/gz-out/", CompressionType="Gzip",
                                         Accept="application/jsonlines"))
    described = transform.wait("gz", timeout=60)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    lines = s3.get_bytes("s3://bucket/gz-out/rows.csv.gz.out").decode().splitlines()
    scores = [json.loads(line)["score"] for line in lines]
    np.testing.assert_allclose(scores, booster.predict(xgb.DMatrix(x[:100])), rtol=1e-6)
