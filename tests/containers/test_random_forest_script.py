"""training_scripts/random_forest/train.py in-process: hyperparameters as the toolkit passes them, the problem type,
named errors with the failure file, and metric lines that the MetricDefinitions read by XGBoost's names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from containers.sklearn.training_env import decode_hyperparameters, to_cmd_args
from containers.xgboost.metric_names import MAXIMIZE_METRICS, SUPPORTED_METRICS
from emulator.services.sagemaker.metrics import final_metrics
from training_scripts.random_forest import contract, train


def params(problem_type: str = "regression", **hyperparameters: str) -> dict:
    args = train.parse_args([f"--{k}={v}" for k, v in hyperparameters.items()])
    return train.estimator_params(args, problem_type)


def test_defaults_and_values_the_toolkit_passes():
    default = params()
    assert default["n_estimators"] == 100 and default["max_depth"] is None and default["max_features"] == "sqrt"
    assert default["criterion"] == "squared_error" and default["bootstrap"] is True and default["random_state"] == 42
    # what the toolkit makes of SDK-encoded values: json.loads, then str() on the command line
    argv = to_cmd_args(decode_hyperparameters({"max_depth": "8", "max_features": "0.5", "bootstrap": "false",
                                               "max_samples": "null", "min_samples_leaf": "3.0"}))
    parsed = train.estimator_params(train.parse_args(argv), "binary")
    assert (parsed["max_depth"], parsed["max_features"], parsed["bootstrap"]) == (8, 0.5, False)
    assert parsed["max_samples"] is None and parsed["min_samples_leaf"] == 3 and parsed["criterion"] == "gini"
    assert params(max_features="1.0")["max_features"] == 1.0  # every feature
    assert params(max_features="3")["max_features"] == 3  # three features
    assert params(max_features="None")["max_features"] is None
    assert params("multiclass", class_weight="balanced")["class_weight"] == "balanced"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("n_estimators", "0", "n_estimators='0' is not a whole number >= 1"),
    ("max_depth", "2.5", "max_depth='2.5' is not a whole number >= 1 or none"),
    ("max_features", "1.5", "max_features='1.5' must be sqrt, log2, none"),
    ("bootstrap", "maybe", "bootstrap='maybe' is not a boolean"),
    ("criterion", "gini", "criterion='gini' does not fit a regression forest"),
    ("class_weight", "balanced", "class_weight='balanced' applies to classifiers only"),
    ("n_jobs", "0", "n_jobs=0 is not a thread count"),
])
def test_bad_hyperparameters_are_named(name, value, message):
    with pytest.raises(train.HyperparameterError, match=re.escape(message)):
        params(**{name: value})


def write_split(folder: Path, rows: list[list[float]]) -> str:
    folder.mkdir(parents=True)
    (folder / "part.csv").write_text("".join(",".join(map(str, row)) + "\n" for row in rows))
    return str(folder)


def test_named_errors_go_to_the_failure_file_and_exit_1(tmp_path):
    rng = np.random.default_rng(0)
    rows = [[int(y), *x] for y, x in zip(rng.integers(0, 2, 40), rng.normal(size=(40, 3)).tolist(), strict=True)]
    train_dir = write_split(tmp_path / "train", rows)
    output = tmp_path / "output"
    common = ["--model-dir", str(tmp_path / "model"), "--train", train_dir, "--output-dir", str(output)]
    assert train.main(common) == 1  # problem_type auto and no schema channel
    assert (output / "failure").read_text().startswith("ProblemTypeError: problem_type is auto and the job has no schema")
    (output / "failure").unlink()
    assert train.main([*common, "--problem_type", "multiclass", "--num_class", "1"]) == 1
    assert "ProblemTypeError: The labels go up to class 1 but num_class is 1." in (output / "failure").read_text()
    (output / "failure").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train.main([*common[:2], "--train", str(empty), "--output-dir", str(output), "--problem_type", "binary"]) == 1
    assert (output / "failure").read_text().startswith("ChannelError: The train channel")
    (output / "failure").unlink()
    assert train.main([*common, "--problem_type", "binary", "--n_estimators", "5"]) == 0
    info = json.loads((tmp_path / "model" / contract.INFO_FILE).read_text())
    assert info["problem_type"] == "binary" and info["num_classes"] == 2 and info["classes"] == [0, 1]
    assert not (output / "failure").exists()


def test_metric_lines_are_read_by_the_metric_definitions_with_xgboosts_names(capsys):
    names = {name for metrics in contract.METRICS.values() for name in metrics}
    assert names <= set(SUPPORTED_METRICS)  # one objective name tunes and compares both candidates
    for problem_type, (objective, direction) in contract.OBJECTIVES.items():
        assert objective.split(":")[1] in contract.METRICS[problem_type]
        assert (direction == "Maximize") == (objective.split(":")[1] in MAXIMIZE_METRICS)
    assert len(contract.METRIC_DEFINITIONS) <= 40  # SageMaker's limit

    train.report("validation", {"error": 0.125, "accuracy": 0.875, "auc": 0.93, "logloss": 1e-7}, "binary")
    train.report("validation", {"merror": 0.25, "mlogloss": float("nan")}, "multiclass")  # nan: not printed
    log = "noise validation:rmse? 3\n" + capsys.readouterr().out
    scraped = {m["MetricName"]: m["Value"] for m in final_metrics(log, contract.METRIC_DEFINITIONS, None)}
    assert scraped == {"validation:error": 0.125, "validation:accuracy": 0.875, "validation:auc": 0.93,
                       "validation:logloss": 1e-7, "validation:merror": 0.25}
