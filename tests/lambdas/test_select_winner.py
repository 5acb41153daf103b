"""Select winner: the paired-bootstrap leaderboard and the tie rule on real resamples, and the handler on moto S3."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lambdas.select_winner import handler as select_winner
from processing_scripts import evaluate

BUCKET = "pipeline-data"  # the bucket conftest.py creates
RESAMPLES = 400


def scored(name: str, labels: np.ndarray, predictions: np.ndarray, latency_ms: float, size: int = 1000) -> tuple:
    """What evaluate.py writes for a candidate: the report and the bootstrap, from real predictions."""
    report = {"metrics": evaluate.regression_metrics(labels, predictions), "model": {"latency_ms": latency_ms, "size_bytes": size}}
    resampled = evaluate.bootstrap(labels, predictions, "rmse", "regression", RESAMPLES, seed=0)
    report["bootstrap"] = {k: resampled[k] for k in ("metric", "resamples", "seed", "ci95")}
    entry = {"name": name, "family": "xgboost" if "xgb" in name else "random_forest", "status": "Succeeded",
             "evaluation_report": f"s3://{BUCKET}/runs/r/{name}/evaluation/evaluation.json", "training_seconds": 3}
    return entry, report, resampled


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    labels = rng.normal(10, 3, 500)
    return labels, rng


def run(*candidates, failed=()):
    entries = [c[0] for c in candidates] + list(failed)
    return select_winner.select(entries, {c[0]["name"]: c[1] for c in candidates},
                                {c[0]["name"]: c[2] for c in candidates}, "rmse", "lower")


def test_a_clearly_better_model_wins_and_the_other_is_worse_beyond_its_paired_interval(data):
    labels, rng = data
    good = scored("xgb", labels, labels + rng.normal(0, 1.0, 500), latency_ms=5.0)
    bad = scored("rf", labels, labels + rng.normal(0, 2.0, 500), latency_ms=0.1)
    result = run(good, bad)
    assert result["winner"]["name"] == "xgb"  # slower, but not tied: the metric decides
    loser = result["leaderboard"][1]
    assert loser["name"] == "rf" and loser["tied_with_best"] is False
    assert loser["difference_ci95"][0] > 0  # rf - xgb rmse, every resample pairs the same rows
    assert "worse than 'xgb'" in result["losers"][0]["reason"]
    # each candidate's own interval holds its metric
    for row in result["leaderboard"]:
        assert row["ci95"][0] <= row["value"] <= row["ci95"][1]


def test_overlapping_candidates_are_tied_and_the_smaller_one_wins(data):
    labels, rng = data
    errors = rng.normal(0, 1.0, 500)
    b = scored("rf", labels, labels + errors, latency_ms=20.0, size=1_500_000)
    # the same errors on other rows, one a little larger: a hair worse, not the same row by row
    shuffled = rng.permutation(errors)
    shuffled[np.argmax(np.abs(shuffled))] *= 1.05
    a = scored("xgb", labels, labels + shuffled, latency_ms=0.5, size=42_000)
    result = run(a, b)
    leader = min(result["leaderboard"], key=lambda row: row["value"])
    other = next(row for row in result["leaderboard"] if row is not leader)
    assert other["difference_ci95"][0] <= 0 <= other["difference_ci95"][1]
    assert leader["name"] == "rf" and result["winner"]["name"] == "xgb"  # tied: the smaller model wins
    assert "tied with the best" in result["winner"]["reason"] and "smaller" in result["winner"]["reason"]
    assert "a larger model than 'xgb'" in result["losers"][0]["reason"]
    assert all(line and len(line) < 200 for line in result["table"])
    assert result["table"][1].startswith("* xgb")


@pytest.mark.parametrize("rf_latency", [0.5, 3.0, 6.0, 9.0, 30.0])
def test_a_tie_is_decided_by_size_the_same_every_time_whatever_the_latencies(data, rf_latency):
    """Latency measured on a busy machine moves between identical runs; a tie decided by it would
    deploy one model, then the other, and the champion check would reject the second run. The
    smaller model wins, whatever the measured latencies."""
    labels, rng = data
    errors = rng.normal(0, 1.0, 500)
    shuffled = rng.permutation(errors)
    shuffled[np.argmax(np.abs(shuffled))] *= 1.05
    forest = scored("rf", labels, labels + errors, latency_ms=rf_latency, size=1_500_000)
    booster = scored("xgb", labels, labels + shuffled, latency_ms=6.8, size=42_000)
    result = run(booster, forest)
    assert result["winner"]["name"] == "xgb" and "smaller" in result["winner"]["reason"]
    assert "a larger model than 'xgb'" in result["losers"][0]["reason"]


def test_the_paired_interval_is_narrower_than_the_unpaired_one(data):
    """Why pair: two models that err alike differ by much less than either's own interval says."""
    labels, rng = data
    shared = rng.normal(0, 1.5, 500)
    a = scored("xgb", labels, labels + shared, latency_ms=1)
    b = scored("rf", labels, labels + shared + rng.normal(0, 0.3, 500), latency_ms=1)
    result = run(a, b)
    row = next(r for r in result["leaderboard"] if r["difference_ci95"])
    paired_width = row["difference_ci95"][1] - row["difference_ci95"][0]
    own_width = row["ci95"][1] - row["ci95"][0]
    assert paired_width < own_width / 2


def test_one_failed_candidate_is_on_the_leaderboard_with_its_cause(data):
    labels, rng = data
    ok = scored("xgb", labels, labels + rng.normal(0, 1.0, 500), latency_ms=1)
    failed = {"name": "rf", "family": "random_forest", "status": "Failed", "error": "States.TaskFailed",
              "cause": "AlgorithmError: ValueError: boom"}
    result = run(ok, failed=[failed])
    assert result["winner"]["name"] == "xgb" and result["losers"] == []
    assert "the only candidate that trained" in result["winner"]["reason"]
    row = result["leaderboard"][-1]
    assert row["status"] == "Failed" and row["cause"] == failed["cause"] and "boom" in row["reason"]
    assert "failed" in result["table"][-1] and "boom" in result["table"][-1]


def test_all_failed_is_a_named_error_listing_each_cause():
    failed = [{"name": n, "family": "xgboost", "status": "Failed", "error": "States.TaskFailed", "cause": f"{n} broke"}
              for n in ("a", "b")]
    with pytest.raises(select_winner.AllCandidatesFailed, match="a \\(xgboost\\): States.TaskFailed: a broke; b"):
        select_winner.select(failed, {}, {}, "rmse", "lower")


def test_higher_is_better_metrics_pick_the_highest():
    labels = np.array([0, 1] * 100, dtype=float)
    rng = np.random.default_rng(1)
    good = np.clip(labels * 0.6 + rng.uniform(0, 0.4, 200), 0, 1)
    bad = rng.uniform(0, 1, 200)
    reports, boots = {}, {}
    for name, scores in (("good", good), ("bad", bad)):
        reports[name] = {"metrics": evaluate.binary_metrics(labels, scores), "model": {"latency_ms": 1}}
        boots[name] = evaluate.bootstrap(labels, scores, "auc", "binary", 200, seed=0)
    entries = [{"name": n, "family": "xgboost", "status": "Succeeded"} for n in ("bad", "good")]
    assert select_winner.select(entries, reports, boots, "auc", "higher")["winner"]["name"] == "good"


def test_the_handler_reads_reports_and_bootstraps_from_s3(s3, data):
    labels, rng = data
    candidates = [scored("xgb", labels, labels + rng.normal(0, 1, 500), 1.0),
                  scored("rf", labels, labels + rng.normal(0, 3, 500), 1.0)]
    for entry, report, resampled in candidates:
        key = entry["evaluation_report"].removeprefix(f"s3://{BUCKET}/")
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(report))
        s3.put_object(Bucket=BUCKET, Key=key.replace("evaluation.json", "bootstrap.json"), Body=json.dumps(resampled))
    result = select_winner.handler({"candidates": [c[0] for c in candidates], "metric": "rmse", "direction": "lower"}, None)
    assert result["winner"]["name"] == "xgb" and [r["name"] for r in result["leaderboard"]] == ["xgb", "rf"]
    s3.delete_object(Bucket=BUCKET, Key=candidates[1][0]["evaluation_report"].removeprefix(f"s3://{BUCKET}/"))
    with pytest.raises(select_winner.EvaluationReportError, match="does not exist"):
        select_winner.handler({"candidates": [c[0] for c in candidates], "metric": "rmse", "direction": "lower"}, None)
