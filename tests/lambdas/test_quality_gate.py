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


# ---- the check repeated at the moment of deploying (inside the deploy lock)


def test_the_gate_returns_the_champion_etag_it_read_and_null_without_a_champion(s3):
    first = gate.handler(event(put(s3, "runs/a/evaluation.json", {"rmse": 2.2})), None)
    assert first["champion_etag"] is None
    put(s3, "champion/ep/evaluation.json", {"rmse": 2.5})
    etag = s3.head_object(Bucket=BUCKET, Key="champion/ep/evaluation.json")["ETag"]
    assert gate.handler(event(put(s3, "runs/a/evaluation.json", {"rmse": 2.2})), None)["champion_etag"] == etag


def test_at_deploy_an_unchanged_champion_keeps_the_gates_verdict_a_tie_included(s3):
    put(s3, "champion/ep/evaluation.json", {"rmse": 2.0})
    etag = s3.head_object(Bucket=BUCKET, Key="champion/ep/evaluation.json")["ETag"]
    again = gate.handler({**event(put(s3, "runs/a/evaluation.json", {"rmse": 2.0})), "gate_champion_etag": etag}, None)
    assert again["passed"] is True and again["champion_changed"] is False and again["champion_etag"] == etag


def test_at_deploy_a_champion_recorded_since_the_gate_must_be_beaten_not_matched(s3):
    # No champion at the gate; another execution deployed an equal model meanwhile: a tie keeps the
    # model already serving (no needless blue/green of the same quality), and the refusal says why.
    put(s3, "champion/ep/evaluation.json", {"rmse": 2.0})
    tie = gate.handler({**event(put(s3, "runs/a/evaluation.json", {"rmse": 2.0})), "gate_champion_etag": None}, None)
    assert tie["passed"] is False and tie["champion_changed"] is True
    assert "after this run's quality gate" in tie["reason"] and "not better than" in tie["reason"]
    better = gate.handler({**event(put(s3, "runs/b/evaluation.json", {"rmse": 1.9})), "gate_champion_etag": None}, None)
    assert better["passed"] is True
    worse = gate.handler({**event(put(s3, "runs/c/evaluation.json", {"rmse": 2.4}), threshold=2.6),
                          "gate_champion_etag": '"an-older-etag"'}, None)
    assert worse["passed"] is False and "rmse 2.4" in worse["reason"] and "2" in worse["reason"]


def test_at_deploy_a_tie_with_a_champion_recorded_since_the_execution_started_is_refused(s3):
    # The gate already saw that champion (same ETag), but a concurrent execution recorded it after this
    # one started: an equal model does not displace it. One recorded before the start may be replaced.
    put(s3, "champion/ep/evaluation.json", {"rmse": 2.0})
    etag = s3.head_object(Bucket=BUCKET, Key="champion/ep/evaluation.json")["ETag"]
    evaluation = put(s3, "runs/a/evaluation.json", {"rmse": 2.0})
    concurrent = gate.handler({**event(evaluation), "gate_champion_etag": etag,
                               "execution_started": "2000-01-01T00:00:00.000Z"}, None)
    assert concurrent["passed"] is False and concurrent["champion_changed"] is True
    assert "not better than the champion's 2" in concurrent["reason"]
    earlier = gate.handler({**event(evaluation), "gate_champion_etag": etag,
                            "execution_started": "2999-01-01T00:00:00.000Z"}, None)
    assert earlier["passed"] is True and earlier["champion_changed"] is False


def test_the_champion_scored_on_this_split_is_the_bar_when_given(s3):
    """Like for like: a retrain on new data meets the champion as it scores on the same test rows,
    not as it scored on its own old split."""
    put(s3, "champion/ep/evaluation.json", {"rmse": 2.0})
    rescored = put(s3, "runs/a/champion-scoring/evaluation/evaluation.json", {"rmse": 3.4})
    result = gate.handler({**event(put(s3, "runs/a/evaluation.json", {"rmse": 2.3})),
                           "champion_rescored_s3_uri": rescored}, None)
    assert result["passed"] is True and result["champion_value"] == 3.4
    assert result["champion_scored_on"] == "this model's test split"
    assert "the champion's 3.4 (on this model's test split)" in result["reason"]
    unscored = gate.handler({**event(f"s3://{BUCKET}/runs/a/evaluation.json"), "champion_rescored_s3_uri": ""}, None)
    assert unscored["passed"] is False and unscored["champion_scored_on"] == "its own test split"


def test_at_deploy_a_champion_changed_since_the_rescoring_is_met_on_its_record(s3):
    put(s3, "champion/ep/evaluation.json", {"rmse": 2.0})
    rescored = put(s3, "runs/a/champion-scoring/evaluation/evaluation.json", {"rmse": 3.4})
    evaluation = put(s3, "runs/a/evaluation.json", {"rmse": 2.3})
    first = gate.handler({**event(evaluation), "champion_rescored_s3_uri": rescored}, None)
    put(s3, "champion/ep/evaluation.json", {"rmse": 2.1})  # another execution deployed meanwhile
    again = gate.handler({**event(evaluation), "champion_rescored_s3_uri": rescored,
                          "gate_champion_etag": first["champion_etag"]}, None)
    assert again["passed"] is False and again["champion_value"] == 2.1 and again["champion_changed"] is True
