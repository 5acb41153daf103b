"""The quality gate on evaluation reports in moto S3."""

from __future__ import annotations

import json

import pytest

from lambdas.quality_gate import handler as gate

BUCKET = "pipeline-data"  # the bucket conftest.py creates



def put(s3, key, metrics):
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"problem_type": "regression", "metrics": metrics}))
    return f"s3://{BUCKET}/{key}"


def event(evaluation, champion=f"s3://{BUCKET}/champion/ep/evaluation.json", threshold=2.6, metric="rmse", direction="lower"):
    return {"evaluation_s3_uri": evaluation, "champion_s3_uri": champion, "metric": metric,
            "threshold": threshold, "direction": direction, "no_worse_than_champion": True}


def test_passes_when_the_metric_meets_the_threshold_and_there_is_no_champion(s3):
    result = gate.handler(event(put(s3, "runs/a/evaluation.json", {"rmse": 2.2})), None)
    assert result["passed"] is True and result["champion_value"] is None
    assert "meets the threshold" in result["reason"]


def test_fails_below_threshold_with_a_reason(s3):
    result = gate.handler(event(put(s3, "runs/a/evaluation.json", {"rmse": 3.1})), None)
    assert result["passed"] is False
    assert result["reason"] == "rmse 3.1 does not meet the threshold (at most 2.6)"


def test_must_not_be_worse_than_the_deployed_champion(s3):
    put(s3, "champion/ep/evaluation.json", {"rmse": 2.0})
    result = gate.handler(event(put(s3, "runs/a/evaluation.json", {"rmse": 2.2})), None)
    assert result["passed"] is False and result["champion_value"] == 2.0
    assert "is worse than the deployed champion" in result["reason"]


def test_a_retrain_that_matches_the_champion_may_replace_it(s3):
    put(s3, "champion/ep/evaluation.json", {"rmse": 2.0})
    assert gate.handler(event(put(s3, "runs/a/evaluation.json", {"rmse": 2.0})), None)["passed"] is True


def test_higher_is_better_metrics(s3):
    result = gate.handler(event(put(s3, "runs/a/evaluation.json", {"auc": 0.93}), metric="auc", threshold=0.9, direction="higher"), None)
    assert result["passed"] is True


def test_missing_report_or_metric_is_a_named_error(s3):
    with pytest.raises(gate.EvaluationReportError, match="does not exist"):
        gate.handler(event(f"s3://{BUCKET}/runs/none/evaluation.json"), None)
    with pytest.raises(gate.EvaluationReportError, match="has no metric 'rmse'"):
        gate.handler(event(put(s3, "runs/b/evaluation.json", {"auc": 0.9})), None)
