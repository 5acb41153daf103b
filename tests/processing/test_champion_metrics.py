"""champion_metrics.py: the serving champion's answers on a run's test split, scored with evaluate.py's
metrics, for the gate's like-for-like champion check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from processing_scripts import champion_metrics as cm
from processing_scripts import evaluate

REGRESSION = {"problem_type": "regression", "target_column": "rings", "input_columns": ["a"]}
BINARY = {"problem_type": "binary", "target_column": "deposit", "input_columns": ["a"], "num_classes": 2,
          "labels": ["no", "yes"], "label_mapping": {"0": "no", "1": "yes"}}
MULTICLASS = {"problem_type": "multiclass", "target_column": "species", "input_columns": ["a"], "num_classes": 3,
              "labels": ["setosa", "versicolor", "virginica"],
              "label_mapping": {"0": "setosa", "1": "versicolor", "2": "virginica"}}


def test_regression_answers_are_scored_like_evaluate_scores_a_model():
    labels = np.array([3.0, 5.0, 9.0])
    metrics = cm.champion_metrics([["4.0"], ["5.0"], ["7.0"]], labels, REGRESSION)
    assert metrics == evaluate.regression_metrics(labels, np.array([4.0, 5.0, 7.0]))
    assert metrics["rmse"] == pytest.approx(np.sqrt(5 / 3))


def test_binary_answers_become_the_second_labels_probability():
    labels = np.array([0, 1, 1, 0])
    answers = [["no", "0.9"], ["yes", "0.8"], ["no", "0.6"], ["yes", "0.7"]]
    metrics = cm.champion_metrics(answers, labels, BINARY)
    assert metrics == evaluate.binary_metrics(labels, np.array([0.1, 0.8, 0.4, 0.7]))
    assert metrics["accuracy"] == 0.5


def test_multiclass_answers_map_through_the_label_mapping():
    labels = np.array([0, 1, 2, 2])
    answers = [["setosa", "0.9"], ["virginica", "0.6"], ["virginica", "0.7"], ["a label it never knew", "0.5"]]
    assert cm.champion_metrics(answers, labels, MULTICLASS)["accuracy"] == 0.5


def test_answers_that_do_not_line_up_with_the_split_are_named():
    with pytest.raises(cm.ChampionScoringError, match="answered 2 rows for 3 test rows"):
        cm.champion_metrics([["1"], ["2"]], np.array([1.0, 2.0, 3.0]), REGRESSION)


def test_the_job_writes_an_evaluation_the_gate_reads(tmp_path):
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "batch.csv.out").write_text("4.0\n5.0\n7.0\n")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test.csv").write_text("3,0.1\n5,0.2\n9,0.3\n")
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "schema.json").write_text(json.dumps(REGRESSION))
    args = [f"--{name}-dir={tmp_path / name}" for name in ("predictions", "test", "schema")]
    assert cm.main([*args, f"--output-dir={tmp_path / 'out'}"]) == 0
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["metrics"]["rmse"] == pytest.approx(np.sqrt(5 / 3)) and report["row_counts"] == {"test": 3}
    assert report["target_column"] == "rings" and report["input_columns"] == ["a"]
    (tmp_path / "predictions" / "batch.csv.out").unlink()
    assert cm.main([*args, f"--output-dir={tmp_path / 'out'}", f"--failure-file={tmp_path / 'failure'}"]) == 1
    assert (tmp_path / "failure").read_text().startswith("ChampionScoringError: no prediction file")
