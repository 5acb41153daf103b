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


def report(metrics, baseline=None, target="rings", problem_type="regression", strategy="the train mean for every row"):
    document = {"target_column": target, "problem_type": problem_type, "metrics": metrics}
    if baseline is not None:
        document["baseline"] = {"strategy": strategy, "metrics": baseline}
    return document


def put_report(s3, key, document):
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document))
    return f"s3://{BUCKET}/{key}"


def test_auto_threshold_is_the_baseline_beaten_by_the_stated_margin(s3):
    uri = put_report(s3, "runs/a/evaluation.json", report({"rmse": 2.2}, {"rmse": 3.2}))
    result = gate.handler(event(uri, threshold="auto"), None)
    assert result["passed"] is True
    assert result["threshold"] == pytest.approx(3.2 * 0.9) and result["baseline_value"] == 3.2
    assert result["reason"] == ("rmse 2.2 meets the threshold (auto: rmse at least 10% lower than the naive "
                                "baseline's, at most 2.88); the naive baseline (the train mean for every row) "
                                "scores rmse 3.2 on the same test split")


def test_auto_threshold_refuses_a_model_no_better_than_the_baseline_and_says_both(s3):
    uri = put_report(s3, "runs/a/evaluation.json", report({"rmse": 3.0}, {"rmse": 3.2}))
    result = gate.handler(event(uri, threshold="auto"), None)
    assert result["passed"] is False
    assert result["reason"].startswith("rmse 3 does not meet the threshold (auto: rmse at least 10% lower")
    assert "at most 2.88" in result["reason"] and "scores rmse 3.2 on the same test split" in result["reason"]


@pytest.mark.parametrize("metric, model, baseline, bar, passed", [
    ("auc", 0.61, 0.5, 0.6, True),
    ("auc", 0.55, 0.5, 0.6, False),
    ("f1_weighted", 0.9, 0.2, 0.36, True),
    ("accuracy", 0.91, 0.9, 0.92, False),
    ("logloss", 0.5, 0.69, 0.621, True),
    ("r2", 0.1, 0.0, 0.2, False),
])
def test_auto_threshold_per_metric(s3, metric, model, baseline, bar, passed):
    direction = "lower" if metric == "logloss" else "higher"
    uri = put_report(s3, "runs/a/evaluation.json", report({metric: model}, {metric: baseline}, problem_type="binary"))
    result = gate.handler(event(uri, threshold="auto", metric=metric, direction=direction), None)
    assert result["threshold"] == pytest.approx(bar) and result["passed"] is passed


def test_an_explicit_threshold_still_shows_the_baseline_beside_the_model(s3):
    uri = put_report(s3, "runs/a/evaluation.json", report({"rmse": 3.1}, {"rmse": 3.3}))
    result = gate.handler(event(uri), None)
    assert result["passed"] is False
    assert result["reason"] == ("rmse 3.1 does not meet the threshold (at most 2.6); the naive baseline (the train "
                                "mean for every row) scores rmse 3.3 on the same test split")


def test_auto_without_a_baseline_in_the_report_is_a_named_error(s3):
    uri = put_report(s3, "runs/a/evaluation.json", report({"rmse": 2.0}))
    with pytest.raises(gate.EvaluationReportError, match="no naive-baseline 'rmse'.*set quality_threshold"):
        gate.handler(event(uri, threshold="auto"), None)


@pytest.mark.parametrize("champion, words", [
    (report({"rmse": 2.0}, target="species", problem_type="multiclass"), "they differ in target column and problem type"),
    (report({"rmse": 2.0}, target="age"), "predicts 'age' (regression): they differ in target column"),
    ({"problem_type": "binary", "metrics": {"auc": 0.99}}, "they differ in problem type"),  # an older record
    ({**report({"rmse": 2.0}), "input_columns": ["sex", "length"]},
     ("they differ in input columns. This model's input columns are ['sex', 'length', 'height']; the champion's "
      "are ['sex', 'length']")),
])
def test_a_champion_of_another_use_case_is_refused_by_name(s3, champion, words):
    put_report(s3, "champion/ep/evaluation.json", champion)
    uri = put_report(s3, "runs/a/evaluation.json",
                     {**report({"rmse": 2.2}, {"rmse": 3.2}), "input_columns": ["sex", "length", "height"]})
    with pytest.raises(gate.ChampionMismatch) as raised:
        gate.handler(event(uri, threshold="auto"), None)
    message = str(raised.value)
    assert words in message and "This model predicts 'rings' (regression)" in message
    assert "stack_name" in message and "--stack" in message  # what to do


def test_a_champion_of_the_same_use_case_is_compared(s3):
    put_report(s3, "champion/ep/evaluation.json", report({"rmse": 2.0}, {"rmse": 3.2}))
    uri = put_report(s3, "runs/a/evaluation.json", report({"rmse": 2.2}, {"rmse": 3.2}))
    result = gate.handler(event(uri, threshold="auto"), None)
    assert result["passed"] is False and "worse than the deployed champion's 2" in result["reason"]
    assert result["target_column"] == "rings" and result["problem_type"] == "regression"


def test_a_model_below_the_bar_is_refused_for_that_even_beside_a_champion_of_another_use_case(s3):
    put_report(s3, "champion/ep/evaluation.json", report({"auc": 0.99}, target="churn", problem_type="binary"))
    uri = put_report(s3, "runs/a/evaluation.json", report({"rmse": 3.3}, {"rmse": 3.2}))
    result = gate.handler(event(uri, threshold="auto"), None)
    assert result["passed"] is False and result["champion_value"] is None
    assert "does not meet the threshold" in result["reason"] and "scores rmse 3.2" in result["reason"]
