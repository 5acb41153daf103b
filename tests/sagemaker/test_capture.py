"""Endpoint data capture: the files the invoke path writes through a real endpoint (boto3 against the
local runtime API), checked field by field against SageMaker's capture format; sampling; capture
off; the writer's batching by count and by time and its flush on close."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import random
import re
import time
import uuid
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from botocore.exceptions import ClientError
from sm_testkit import DATA, ROLE, XGBOOST_IMAGE

from containers.xgboost.artifacts import model_archive as model_tar
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.capture import CaptureConfig, CaptureWriter, capture_key, capture_record
from emulator.services.sagemaker.invoke_server import ensure_invoke_server, stop_in_process_servers

FEATURES = ["length", "diameter", "height", "whole weight", "shucked weight", "viscera weight", "shell weight"]
DESTINATION = "s3://bucket/capture"
KEY = re.compile(r"^capture/(?P<endpoint>[^/]+)/(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/"
                 r"\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$")


def capture_request(percentage: int = 100, enabled: bool = True, modes=("Input", "Output")) -> dict:
    return {"EnableCapture": enabled, "InitialSamplingPercentage": percentage, "DestinationS3Uri": DESTINATION + "/",
            "CaptureOptions": [{"CaptureMode": m} for m in modes],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}


@pytest.fixture(scope="module")
def booster() -> tuple[np.ndarray, xgb.Booster]:
    frame = pd.read_csv(DATA / "abalone.csv")
    x, y = frame[FEATURES].to_numpy(np.float32), frame["rings"].to_numpy(np.float32)
    return x, xgb.train({"objective": "reg:squarederror", "max_depth": 3, "nthread": 1}, xgb.DMatrix(x, label=y), 10)


@pytest.fixture
def bucket(context) -> LocalS3:
    """The state folder's S3 (what the invoke server writes capture files to), with the bucket."""
    s3 = LocalS3(context.layout.s3_root)
    s3.create_bucket("bucket")
    return s3


def deploy(backend, bucket: LocalS3, booster, name: str, capture: dict | None) -> str:
    """An InService endpoint ``name`` (variant AllTraffic) with this DataCaptureConfig; its URL."""
    hosting = backend.hosting
    hosting.context.s3.put_bytes(f"s3://bucket/{name}/model.tar.gz", model_tar(booster[1]))
    hosting.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                         PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": f"s3://bucket/{name}/model.tar.gz"})
    hosting.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        **({"DataCaptureConfig": capture} if capture else {}))
    hosting.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.time() + 20
    while hosting.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService" and time.time() < deadline:
        time.sleep(0.02)
    return ensure_invoke_server(hosting.context.layout)


def runtime_client(url: str):
    return boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")


def captured_lines(s3: LocalS3) -> list[tuple[str, dict]]:
    """(key, line) of every capture line in the bucket, once the server has been stopped (flushed)."""
    stop_in_process_servers()
    out = []
    for key in s3.list_keys("bucket", "capture/"):
        for text in s3.get_bytes(f"s3://bucket/{key}").decode().splitlines():
            out.append((key, json.loads(text)))
    return out


def test_every_invocation_is_one_line_in_sagemakers_capture_format(backend, bucket, booster):
    x, model = booster
    url = deploy(backend, bucket, booster, "captured", capture_request())
    client = runtime_client(url)
    rows = ["\n".join(",".join(map(str, row)) for row in x[i:i + 3]) for i in range(0, 15, 3)]  # 3 records each
    answers = [client.invoke_endpoint(EndpointName="captured", ContentType="text/csv", Body=body,
                                      InferenceId=f"req-{i}")["Body"].read().decode() for i, body in enumerate(rows)]
    libsvm = " ".join(f"{i}:{v}" for i, v in enumerate(x[0]))  # a content type capture does not declare
    client.invoke_endpoint(EndpointName="captured", ContentType="text/libsvm", Accept="application/json",
                           Body=libsvm)["Body"].read()
    with pytest.raises(ClientError, match="ModelError"):  # not captured: the model did not answer
        client.invoke_endpoint(EndpointName="captured", ContentType="image/png", Body=b"\x89PNG")

    described = backend.hosting.describe_endpoint(EndpointName="captured")["DataCaptureConfig"]
    assert described == {"EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 100,
                         "DestinationS3Uri": DESTINATION + "/"}
    lines = captured_lines(bucket)
    assert len(lines) == 6, "one line per successful invocation (a 3-record body is one line), none for the error"
    now = dt.datetime.now(dt.UTC)
    for key, line in lines:
        match = KEY.match(key)
        assert match, key
        assert (match["endpoint"], match["variant"]) == ("captured", "AllTraffic")
        assert set(line) == {"captureData", "eventMetadata", "eventVersion"}
        assert line["eventVersion"] == "0"
        when = dt.datetime.strptime(line["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        assert abs((now - when).total_seconds()) < 120
        assert f"{when:%Y/%m/%d/%H}" == "/".join(match.group("y", "m", "d", "h")), "the file is in its hour's folder"
        uuid.UUID(line["eventMetadata"]["eventId"])
        assert set(line["captureData"]) == {"endpointInput", "endpointOutput"}
        for side, mode in (("endpointInput", "INPUT"), ("endpointOutput", "OUTPUT")):
            assert set(line["captureData"][side]) == {"observedContentType", "mode", "data", "encoding"}
            assert line["captureData"][side]["mode"] == mode
    csv_lines = sorted((line for _, line in lines if "inferenceId" in line["eventMetadata"]),
                       key=lambda line: line["eventMetadata"]["inferenceId"])
    assert [line["eventMetadata"]["inferenceId"] for line in csv_lines] == [f"req-{i}" for i in range(5)]
    for line, body, answer in zip(csv_lines, rows, answers, strict=True):
        assert line["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                        "data": body, "encoding": "CSV"}
        assert line["captureData"]["endpointOutput"] == {"observedContentType": "text/csv", "mode": "OUTPUT",
                                                         "data": answer, "encoding": "CSV"}
        np.testing.assert_allclose([float(v) for v in answer.split(",")], model.predict(xgb.DMatrix(x[:15]))[
            int(line["eventMetadata"]["inferenceId"][4:]) * 3:][:3], rtol=1e-6)
    (other,) = [line for _, line in lines if "inferenceId" not in line["eventMetadata"]]
    assert other["captureData"]["endpointInput"] == {"observedContentType": "text/libsvm", "mode": "INPUT",
                                                     "data": base64.b64encode(libsvm.encode()).decode(),
                                                     "encoding": "BASE64"}
    assert other["captureData"]["endpointOutput"]["observedContentType"] == "application/json"
    assert other["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert "predictions" in json.loads(other["captureData"]["endpointOutput"]["data"])


def test_capture_off_writes_nothing(backend, bucket, booster):
    x, _ = booster
    url = deploy(backend, bucket, booster, "quiet", capture_request(enabled=False))
    client = runtime_client(url)
    for row in x[:20]:
        client.invoke_endpoint(EndpointName="quiet", ContentType="text/csv", Body=",".join(map(str, row)))
    assert captured_lines(bucket) == []
    assert bucket.list_keys("bucket") == []


def test_half_sampling_captures_about_half_of_2000_requests(backend, bucket, booster):
    x, _ = booster
    url = deploy(backend, bucket, booster, "sampled", capture_request(percentage=50))
    body = ",".join(map(str, x[0])).encode()
    # http.client on one keep-alive connection: the same requests boto3 sends, without its per-call cost
    connection = http.client.HTTPConnection(url.removeprefix("http://"))
    for _ in range(2000):
        connection.request("POST", "/endpoints/sampled/invocations", body, {"Content-Type": "text/csv"})
        assert connection.getresponse().read()
    connection.close()
    count = len(captured_lines(bucket))
    # Binomial(2000, 0.5): sd 22.4; +-5 sd fails by chance once in ~1.7 million runs
    assert 888 <= count <= 1112, count


def test_sampling_is_the_configured_share_with_a_seeded_generator(tmp_path):
    s3 = LocalS3(tmp_path)
    s3.create_bucket("bucket")
    writer = CaptureWriter(s3, rng=random.Random(15))
    config = CaptureConfig.from_request(capture_request(percentage=50))
    taken = sum(writer.capture("e", "v", config, request=b"1", request_type="text/csv", response=b"2",
                               response_type="text/csv") for _ in range(2000))
    writer.close()
    again = random.Random(15)
    expected = sum(again.random() * 100 < 50 for _ in range(2000))
    assert taken == expected and 900 < taken < 1100
    assert sum(len(s3.get_bytes(f"s3://bucket/{k}").splitlines()) for k in s3.list_keys("bucket")) == taken


def test_lines_are_batched_by_count_and_by_time_and_flushed_on_close(tmp_path):
    s3 = LocalS3(tmp_path)
    s3.create_bucket("bucket")
    config = CaptureConfig.from_request(capture_request())

    def lines_per_file(prefix: str) -> list[int]:
        return sorted(len(s3.get_bytes(f"s3://bucket/{k}").splitlines()) for k in s3.list_keys("bucket", prefix))

    def wait_for(prefix: str, files: int) -> None:
        deadline = time.time() + 10
        while len(s3.list_keys("bucket", prefix)) < files and time.time() < deadline:
            time.sleep(0.01)

    by_count = CaptureWriter(s3, flush_records=100, flush_seconds=3600)
    for i in range(250):
        by_count.capture("count", "v", config, request=str(i).encode(), request_type="text/csv", response=b"0",
                         response_type="text/csv")
    wait_for("capture/count/", 2)
    assert lines_per_file("capture/count/") == [100, 100], "full files are written at once, the rest waits"
    by_count.close()  # a clean shutdown writes what is buffered
    assert lines_per_file("capture/count/") == [50, 100, 100]

    by_time = CaptureWriter(s3, flush_records=100, flush_seconds=0.2)
    by_time.capture("time", "v", config, request=b"1", request_type="text/csv", response=b"2", response_type="text/csv")
    wait_for("capture/time/", 1)
    assert lines_per_file("capture/time/") == [1], "a line waits at most flush_seconds"
    by_time.close()
    assert lines_per_file("capture/time/") == [1]


def test_modes_content_types_and_keys():
    only_input = CaptureConfig.from_request(capture_request(modes=("Input",)))
    line = capture_record(only_input, request=b"\x00\x01", request_type="application/x-npy", response=b"1",
                          response_type="text/csv", when=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), event_id="e")
    assert line == {"captureData": {"endpointInput": {"observedContentType": "application/x-npy", "mode": "INPUT",
                                                      "data": base64.b64encode(b"\x00\x01").decode(), "encoding": "BASE64"}},
                    "eventMetadata": {"eventId": "e", "inferenceTime": "2026-01-02T03:04:05Z"}, "eventVersion": "0"}
    both = CaptureConfig.from_request(capture_request())
    assert both.encoded(b"1,2", "text/csv; charset=utf-8", "INPUT")["encoding"] == "CSV"
    assert both.encoded(b"\xff", "text/csv", "INPUT")["encoding"] == "BASE64", "bytes that are not text stay bytes"
    assert CaptureConfig.from_request(None) is None
    assert CaptureConfig.from_request(capture_request(percentage=0)) is None
    key = capture_key("ep", "AllTraffic", dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC), "id")
    assert key == "ep/AllTraffic/2026/01/02/03/04-05-678-id.jsonl"


def test_the_files_land_where_the_destination_says(tmp_path: Path):
    s3 = LocalS3(tmp_path)
    s3.create_bucket("bucket")
    writer = CaptureWriter(s3)
    writer.capture("ep", "AllTraffic", CaptureConfig.from_request(capture_request()), request=b"1",
                   request_type="text/csv", response=b"2", response_type="text/csv")
    writer.close()
    (key,) = s3.list_keys("bucket")
    assert KEY.match(key), key
