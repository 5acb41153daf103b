"""The inference read-and-validate Lambda: the deployed model's schema found through the endpoint,
records read with or without a header (CSV) or as JSON Lines, and every rejection named before any
batch is written. moto plays S3 and SageMaker; the schema is the one preprocess.py writes for abalone."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import boto3
import pytest

from lambdas.read_records import handler as read
from processing_scripts import preprocess
from stacks.config import PipelineConfig

BUCKET = "pipeline-data"  # conftest.py's bucket

DATA = Path(__file__).resolve().parents[2] / "data" / "abalone.csv"
RUN = "runs/train-1/processed/"
ENDPOINT = "ml-pipeline-endpoint"
ROWS = DATA.read_text().splitlines()
HEADER = ROWS[0].rsplit(",", 1)[0]  # without the target, rings
RECORDS = [line.rsplit(",", 1)[0] for line in ROWS[1:8]]


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("preprocessed")
    preprocess.run(preprocess.Options(DATA, out, "rings"))
    return out / "schema"


@pytest.fixture
def deployed(s3, schema_dir, monkeypatch):
    """moto S3 with the run's schema files and a moto endpoint whose model's featurizer is that run's."""
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    for name in ("schema.json", "baseline.json"):
        s3.put_object(Bucket=BUCKET, Key=f"{RUN}schema/{name}", Body=(schema_dir / name).read_bytes())
    s3.put_object(Bucket=BUCKET, Key=f"{RUN}featurizer/model.tar.gz", Body=b"archive")
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    sagemaker.create_model(ModelName="m1", ExecutionRoleArn="arn:aws:iam::123456789012:role/r", Containers=[
        {"Image": image, "ModelDataUrl": f"s3://{BUCKET}/{RUN}featurizer/model.tar.gz"},
        {"Image": image, "ModelDataUrl": f"s3://{BUCKET}/{RUN}model/model.tar.gz"}])
    sagemaker.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m1", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c1")
    return s3


def run(s3, key: str, body: str, **settings) -> dict:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    defaults = PipelineConfig().inference_defaults()
    event = {"defaults": defaults, "config": {**defaults, "input_s3_uri": f"s3://{BUCKET}/{key}", **settings},
             "execution_name": "exec-1"}
    return read.handler(event, None)


def batch_rows(s3, plan: dict) -> list[str]:
    return [line for batch in plan["batches"]
            for line in s3.get_object(Bucket=BUCKET, Key=batch["key"])["Body"].read().decode().splitlines()]


def test_a_headerless_csv_is_planned_in_batches_of_the_models_columns(deployed):
    plan = run(deployed, "inference/a.csv", "\n".join(RECORDS) + "\n", inference_batch_size=3)
    assert plan["records"] == 7 and plan["header"] is False and plan["format"] == "csv"
    assert plan["schema"] == f"s3://{BUCKET}/{RUN}schema/schema.json"
    assert plan["baseline"] == f"s3://{BUCKET}/{RUN}schema/baseline.json"
    assert [b["count"] for b in plan["batches"]] == [3, 3, 1]
    assert [b["first"] for b in plan["batches"]] == [0, 3, 6]
    assert plan["batches"][1]["scores_key"] == "predictions/exec-1/scores/00001.csv"
    assert all(len(b["inference_id"]) <= 64 for b in plan["batches"])
    assert batch_rows(deployed, plan) == RECORDS
    assert plan["problem_type"] == "regression" and plan["columns"] == HEADER.split(",")
    assert plan["capture_exists"] is False
    assert json.loads(deployed.get_object(Bucket=BUCKET, Key=plan["lines"])["Body"].read()) == list(range(1, 8))


def test_a_header_in_any_order_with_the_target_is_matched_by_name(deployed):
    columns = HEADER.split(",")
    shuffled = list(reversed(columns)) + ["rings"]
    rows = [",".join(list(reversed(r.split(","))) + ["9"]) for r in RECORDS[:2]]
    plan = run(deployed, "inference/b.csv", ",".join(shuffled) + "\n" + "\n".join(rows) + "\n")
    assert plan["header"] is True and plan["records"] == 2
    assert batch_rows(deployed, plan) == RECORDS[:2]
    assert plan["notes"] and "rings" in plan["notes"][0]


def test_json_lines_are_read_by_column_name(deployed):
    columns = HEADER.split(",")
    lines = [json.dumps(dict(zip(columns, r.split(","), strict=True))) for r in RECORDS[:3]]
    plan = run(deployed, "inference/c.jsonl", "\n".join(lines) + "\n")
    assert plan["format"] == "jsonl" and batch_rows(deployed, plan) == RECORDS[:3]


@pytest.mark.parametrize("key, body, error, words", [
    ("inference/missing.csv", "\n".join(",".join(HEADER.split(",")[1:]) + "\n" + ",".join(r.split(",")[1:])
                                         for r in RECORDS[:1]), "SchemaMismatch", "missing column(s) ['sex']"),
    ("inference/extra.csv", HEADER + ",colour\n" + RECORDS[0] + ",red\n", "SchemaMismatch", "unknown column(s) ['colour']"),
    ("inference/type.csv", RECORDS[0] + "\n" + RECORDS[1].replace(RECORDS[1].split(",")[1], "long", 1) + "\n",
     "SchemaMismatch", "'length' is numeric but 1 record(s) hold something else (line 2: 'long')"),
    ("inference/short.csv", "M,0.4\n", "SchemaMismatch", "line 1 has 2 column(s); the deployed model takes 8"),
    ("inference/empty.csv", "\n\n", "NoRecords", "holds no record"),
    ("inference/bad.jsonl", '{"sex": "M"}\n[1, 2]\n', "UnreadableRecords", "line 2 is a JSON list"),
    ("inference/x.parquet", "PAR1", "UnreadableRecords", "neither .csv nor .jsonl"),
    ("raw/elsewhere.csv", RECORDS[0], "InputOutsideInferencePrefix", "not under s3://pipeline-data/inference/"),
])
def test_bad_files_are_named_before_any_batch_is_written(deployed, key, body, error, words):
    with pytest.raises(read.InferenceInputError) as raised:
        run(deployed, key, body)
    assert type(raised.value).__name__ == error
    assert words in str(raised.value)
    assert "Contents" not in deployed.list_objects_v2(Bucket=BUCKET, Prefix="predictions/")


def test_settings_are_checked(deployed):
    with pytest.raises(read.InvalidInferenceSetting, match="confidence_threshold"):
        run(deployed, "inference/a.csv", RECORDS[0], confidence_threshold=2)
    with pytest.raises(read.InvalidInferenceSetting, match=r"Unknown setting\(s\) \['treshold'\]"):
        run(deployed, "inference/a.csv", RECORDS[0], treshold=0.5)


def test_no_endpoint_is_named(s3, monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    with pytest.raises(read.NoDeployedModel, match="no model is deployed yet"):
        run(s3, "inference/a.csv", RECORDS[0])


def test_the_report_reads_only_the_capture_of_its_window_through_a_manifest(deployed):
    """Capture files in hour folders of the last capture_report_hours, every variant; older ones stay out."""
    now = dt.datetime.now(dt.UTC)
    if now.minute == 59 and now.second >= 55:  # the handler's hour must be the test's
        time.sleep(60 - now.second + 0.5)
        now = dt.datetime.now(dt.UTC)
    prefix = f"capture/{ENDPOINT}/"

    def put(variant: str, hours_ago: int, name: str, suffix: str = ".jsonl") -> str:
        key = f"{variant}/{now - dt.timedelta(hours=hours_ago):%Y/%m/%d/%H}/{name}{suffix}"
        deployed.put_object(Bucket=BUCKET, Key=prefix + key, Body=b"{}\n")
        return key

    recent = [put("AllTraffic", 0, "a"), put("AllTraffic", 2, "b"), put("Green", 1, "c")]
    put("AllTraffic", 3, "old")  # outside a 3-hour window: this hour and the two before
    put("AllTraffic", 0, "notes", ".txt")
    plan = run(deployed, "inference/a.csv", RECORDS[0], capture_report_hours=3)
    assert plan["capture_exists"] is True and plan["capture_files"] == 3 and plan["capture_window_hours"] == 3
    assert plan["capture"] == f"s3://{BUCKET}/predictions/exec-1/capture-manifest.json"
    manifest = json.loads(deployed.get_object(Bucket=BUCKET, Key="predictions/exec-1/capture-manifest.json")["Body"].read())
    assert manifest[0] == {"prefix": f"s3://{BUCKET}/{prefix}"} and sorted(manifest[1:]) == sorted(recent)
    default = run(deployed, "inference/b.csv", RECORDS[0])  # 24 hours
    assert default["capture_files"] == 4
    with pytest.raises(read.InvalidInferenceSetting, match="capture_report_hours"):
        run(deployed, "inference/a.csv", RECORDS[0], capture_report_hours=0.5)
