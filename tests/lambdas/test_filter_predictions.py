"""The inference filter Lambda: every record's prediction written with its low-confidence flag before
the decision; a classifier's by its top probability, a regression's by the training data's ranges
(the baseline preprocess.py writes for abalone); the failure's reason names the records. moto S3."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from lambdas.filter_predictions import handler as filter_
from processing_scripts import preprocess
from stacks.config import PipelineConfig

BUCKET = "pipeline-data"  # conftest.py's bucket
DATA = Path(__file__).resolve().parents[2] / "data" / "abalone.csv"
RUN = "runs/train-1/processed/schema/"
COLUMNS = DATA.read_text().splitlines()[0].split(",")[:-1]
RECORDS = [line.rsplit(",", 1)[0] for line in DATA.read_text().splitlines()[1:6]]


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("preprocessed")
    preprocess.run(preprocess.Options(DATA, out, "rings"))
    return out / "schema"


def plan(s3, batches: list[tuple[list[str], str]], problem_type: str, schema_dir: Path | None = None) -> dict:
    """Batches of (records, the endpoint's answer) written where the Map would have left them."""
    out, entries, first = "predictions/exec-1/", [], 0
    for index, (rows, answer) in enumerate(batches):
        key, scores = f"{out}batches/{index:05d}.csv", f"{out}scores/{index:05d}.csv"
        s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(rows) + "\n").encode())
        s3.put_object(Bucket=BUCKET, Key=scores, Body=answer.encode())
        entries.append({"index": index, "key": key, "scores_key": scores, "first": first, "count": len(rows)})
        first += len(rows)
    s3.put_object(Bucket=BUCKET, Key=f"{out}lines.json", Body=json.dumps(list(range(2, first + 2))).encode())
    if schema_dir:
        for name in ("schema.json", "baseline.json"):
            s3.put_object(Bucket=BUCKET, Key=RUN + name, Body=(schema_dir / name).read_bytes())
    return {"columns": COLUMNS, "problem_type": problem_type, "bucket": BUCKET, "prefix": out, "batches": entries,
            "lines": f"{out}lines.json", "schema": f"s3://{BUCKET}/{RUN}schema.json",
            "baseline": f"s3://{BUCKET}/{RUN}baseline.json"}


def config(**settings) -> dict:
    return {**PipelineConfig().inference_defaults(), **settings}


def predictions(s3) -> list[dict]:
    body = s3.get_object(Bucket=BUCKET, Key="predictions/exec-1/predictions.csv")["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_regression_records_inside_the_training_range_pass(s3, schema_dir):
    summary = filter_.handler({"plan": plan(s3, [(RECORDS[:3], "9.5\n10.5\n11.5\n"), (RECORDS[3:], "12.5\n13.5\n")],
                                            "regression", schema_dir), "config": config()}, None)
    assert summary["passed"] is True and summary["records"] == 5 and summary["low_confidence"] == 0
    rows = predictions(s3)
    assert [r["prediction"] for r in rows] == ["9.5", "10.5", "11.5", "12.5", "13.5"]
    assert [r["length"] for r in rows] == [r.split(",")[1] for r in RECORDS]
    assert {r["low_confidence"] for r in rows} == {"false"}


def test_regression_records_far_outside_the_training_data_fail_by_name(s3, schema_dir):
    odd = ["M,9.0,0.3,0.1,0.5,0.2,0.1,0.15", "Q,0.5,0.4,0.1,0.5,0.2,0.1,0.15"]
    summary = filter_.handler({"plan": plan(s3, [(RECORDS[:2] + odd, "8\n9\n30\n7\n")], "regression", schema_dir),
                               "config": config()}, None)
    assert summary["passed"] is False and summary["low_confidence"] == 2 and summary["share"] == 0.5
    assert [r["record"] for r in summary["first"]] == [3, 4]
    assert "length=9.0 outside training range" in summary["first"][0]["reason"]
    assert "sex='Q' never seen in training" in summary["first"][1]["reason"]
    assert summary["reason"].startswith("2 of 4 records (50.0%) are low-confidence")
    assert "record 3 (line 4): predicted 30" in summary["reason"]
    assert [r["low_confidence"] for r in predictions(s3)] == ["false", "false", "true", "true"], "written before the decision"
    # allowed by this execution's setting
    assert filter_.handler({"plan": plan(s3, [(RECORDS[:2] + odd, "8\n9\n30\n7\n")], "regression", schema_dir),
                            "config": config(max_low_confidence_share=0.5)}, None)["passed"] is True


def test_a_classifiers_records_below_the_threshold_are_low_confidence(s3):
    answer = 'yes,0.91\nno,0.55\n"a, b",0.7\n'
    summary = filter_.handler({"plan": plan(s3, [(RECORDS[:3], answer)], "binary"), "config": config()}, None)
    assert summary["low_confidence"] == 1 and summary["first"][0]["record"] == 2
    assert summary["first"][0]["reason"] == "top probability 0.550 below 0.7"
    assert [(r["prediction"], r["probability"]) for r in predictions(s3)] == [("yes", "0.91"), ("no", "0.55"),
                                                                              ("a, b", "0.7")]
    lenient = filter_.handler({"plan": plan(s3, [(RECORDS[:3], answer)], "binary"),
                               "config": config(confidence_threshold=0.5)}, None)
    assert lenient["passed"] is True and lenient["low_confidence"] == 0


def test_an_answer_of_another_length_is_named(s3):
    with pytest.raises(filter_.ScoresDoNotMatchRecords, match="has 3 records but the endpoint answered 2"):
        filter_.handler({"plan": plan(s3, [(RECORDS[:3], "a,0.9\nb,0.8\n")], "binary"), "config": config()}, None)
