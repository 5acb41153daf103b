"""The run summary's leaderboard: Select winner's table, the rule and the explanation, under 200 columns."""

from __future__ import annotations

from emulator.app.summary import leaderboard_lines
from lambdas.select_winner import handler as select_winner


def test_the_summary_prints_the_leaderboard_table_with_a_failed_candidate():
    reports = {"xgboost": {"metrics": {"rmse": 2.1}, "bootstrap": {"ci95": [1.9, 2.3]},
                           "model": {"latency_ms": 0.4, "size_bytes": 120_000}},
               "a_very_long_candidate_name_indeed": {"metrics": {"rmse": 2.6}, "bootstrap": {"ci95": [2.4, 2.8]},
                                                     "model": {"latency_ms": 20.0, "size_bytes": 4_000_000}}}
    boots = {"xgboost": {"metric": "rmse", "values": [2.0, 2.1, 2.2]},
             "a_very_long_candidate_name_indeed": {"metric": "rmse", "values": [2.5, 2.6, 2.7]}}
    entries = [{"name": name, "family": "xgboost", "status": "Succeeded", "training_seconds": 4} for name in reports]
    entries.append({"name": "rf", "family": "random_forest", "status": "Failed", "error": "States.TaskFailed",
                    "cause": "AlgorithmError: ValueError: " + "x" * 500})
    selection = select_winner.select(entries, reports, boots, "rmse", "lower")
    output = {"leaderboard": selection["leaderboard"], "leaderboard_table": selection["table"], "winner": "xgboost",
              "selection_rule": selection["rule"], "explainability": "s3://b/runs/r/candidates/0-xgboost/evaluation/explainability.json"}
    lines = leaderboard_lines(output)
    assert lines[0].startswith("  leaderboard       3 candidate(s)") and "winner: xgboost" in lines[0]
    assert any(line.strip().startswith("* xgboost") for line in lines)
    assert any("rf" in line and "failed" in line and "AlgorithmError" in line for line in lines)
    assert any("rule: best metric leads" in line for line in lines)
    assert all(len(line) < 200 for line in lines)
    assert leaderboard_lines({"gate": {}}) == []  # a run from before the competition: nothing to print
