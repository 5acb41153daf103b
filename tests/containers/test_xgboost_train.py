"""The training twin against in-process xgboost.train, the built-in's log regexes and its errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from xgb_twin_helpers import ROOT, load_split, make_job, preprocessed

from containers.xgboost import train as twin
from containers.xgboost.metrics import METRIC_DEFINITIONS, METRIC_NAMES

METRIC_DEFINITIONS_BY_NAME = {d["Name"]: d["Regex"] for d in METRIC_DEFINITIONS}
# nthread=1 throughout: on a busy 2-core CI machine multi-threaded xgboost slows down tenfold
HPS = {"objective": "reg:squarederror", "num_round": "40", "max_depth": "4", "eta": "0.2",
       "subsample": "0.8", "min_child_weight": "5", "seed": "7", "nthread": "1"}


@pytest.fixture(scope="module")
def abalone(tmp_path_factory) -> Path:
    return preprocessed("abalone.csv", "rings", tmp_path_factory.mktemp("abalone"))


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Path:
    return preprocessed("bank-marketing.csv", "deposit", tmp_path_factory.mktemp("bank"))


def leading_number(captured: str) -> float:
    """(\\S+) also takes what follows a value mid-line (`0.5#011validation-...`): keep the number."""
    return float(re.match(r"[-+0-9.eE]+|nan|inf", captured).group(0))


def channels(folder: Path, *names: str) -> dict[str, Path]:
    return {n: folder / n / f"{n}.csv" for n in names}


def reference_booster(folder: Path, params: dict, num_round: int, **kwargs) -> xgb.Booster:
    x, y = load_split(folder, "train")
    xv, yv = load_split(folder, "validation")
    dtrain, dval = xgb.DMatrix(x, label=y), xgb.DMatrix(xv, label=yv)
    return xgb.train(params, dtrain, num_round, evals=[(dtrain, "train"), (dval, "validation")],
                     verbose_eval=False, **kwargs)


def load_model(ml_root: Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(str(ml_root / "model" / "xgboost-model"))
    return booster


def test_model_predicts_exactly_what_xgboost_train_predicts(abalone, tmp_path):
    ml = make_job(tmp_path, HPS, channels(abalone, "train", "validation"))
    assert twin.main(["--ml-root", str(ml)]) == 0
    params = {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.2, "subsample": 0.8,
              "min_child_weight": 5, "seed": 7, "nthread": 1}
    reference = reference_booster(abalone, params, 40)
    x_test, _ = load_split(abalone, "test")
    ours = load_model(ml).predict(xgb.DMatrix(x_test))
    theirs = reference.predict(xgb.DMatrix(x_test))
    assert np.max(np.abs(ours - theirs)) < 1e-6


def test_model_folder_holds_only_the_ubjson_model(abalone, tmp_path):
    ml = make_job(tmp_path, HPS, channels(abalone, "train"))
    assert twin.main(["--ml-root", str(ml)]) == 0
    assert [p.name for p in (ml / "model").iterdir()] == ["xgboost-model"]
    raw = (ml / "model" / "xgboost-model").read_bytes()
    assert raw.startswith(b"{L")  # UBJSON object with a length-prefixed key, not text JSON
    assert not (ml / "output" / "failure").exists()


def test_log_lines_match_the_built_in_metric_regexes(abalone, tmp_path):
    ml = make_job(tmp_path, {**HPS, "eval_metric": "mae,rmse"}, channels(abalone, "train", "validation"))
    proc = subprocess.run([sys.executable, "-m", "containers.xgboost.train", "--ml-root", str(ml)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = [line.replace("\t", "#011") for line in proc.stdout.splitlines()]
    assert re.fullmatch(r"\[0\]#011train-mae:\S+#011train-rmse:\S+#011validation-mae:\S+#011validation-rmse:\S+",
                        next(line for line in lines if line.startswith("[0]")))
    regex = re.compile(METRIC_DEFINITIONS_BY_NAME["validation:rmse"])
    values = [float(m.group(1)) for line in lines if (m := regex.match(line))]
    assert len(values) == 40
    # the last logged value is the model's validation rmse, to the 5 decimals xgboost prints
    x_val, y_val = load_split(abalone, "validation")
    rmse = float(np.sqrt(np.mean((load_model(ml).predict(xgb.DMatrix(x_val)) - y_val) ** 2)))
    assert values[-1] == pytest.approx(rmse, abs=1e-5)
    assert METRIC_DEFINITIONS_BY_NAME["validation:rmse"] == r".*\[[0-9]+\].*#011validation-rmse:(\S+)"
    last_line = next(line for line in lines if line.startswith("[39]"))
    assert leading_number(re.match(METRIC_DEFINITIONS_BY_NAME["train:mae"], last_line).group(1)) > 0


def test_runs_as_a_path_too(abalone, tmp_path):
    ml = make_job(tmp_path, {**HPS, "num_round": "3"}, channels(abalone, "train"))
    proc = subprocess.run([sys.executable, str(ROOT / "containers" / "xgboost" / "train.py")],
                          env={"SM_ML_ROOT": str(ml), "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[2]\ttrain-rmse:" in proc.stdout
    assert (ml / "model" / "xgboost-model").is_file()


def test_tuning_objective_metric_drives_early_stopping(bank, tmp_path):
    hps = {"objective": "binary:logistic", "num_round": "300", "max_depth": "6", "eta": "0.5", "nthread": "1",
           "eval_metric": "logloss", "early_stopping_rounds": "5", "_tuning_objective_metric": "validation:auc"}
    ml = make_job(tmp_path, hps, channels(bank, "train", "validation"))
    assert twin.main(["--ml-root", str(ml)]) == 0
    # as the built-in: eval_metric and the tuning metric as a sorted union; stopping on the latter
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.5, "nthread": 1,
              "eval_metric": ["auc", "logloss"]}
    stop = xgb.callback.EarlyStopping(rounds=5, metric_name="auc", data_name="validation", maximize=True,
                                      save_best=True)
    reference = reference_booster(bank, params, 300, callbacks=[stop])
    ours = load_model(ml)
    assert ours.num_boosted_rounds() == reference.num_boosted_rounds() < 300
    x_test, _ = load_split(bank, "test")
    assert np.max(np.abs(ours.predict(xgb.DMatrix(x_test)) - reference.predict(xgb.DMatrix(x_test)))) < 1e-6


def test_metrics_xgboost_lacks_are_computed_and_logged(bank, tmp_path, capsys):
    hps = {"objective": "binary:logistic", "num_round": "5", "eval_metric": "accuracy,f1", "nthread": "1",
           "_tuning_objective_metric": "validation:auc"}
    ml = make_job(tmp_path, hps, channels(bank, "train", "validation"))
    assert twin.main(["--ml-root", str(ml)]) == 0
    lines = [line.replace("\t", "#011") for line in capsys.readouterr().out.splitlines()]
    last = next(line for line in lines if line.startswith("[4]"))
    for metric in ("auc", "accuracy", "f1"):
        assert re.match(rf".*\[[0-9]+\].*#011validation-{metric}:(\S+)", last), metric
    accuracy = leading_number(re.match(METRIC_DEFINITIONS_BY_NAME["validation:accuracy"], last).group(1))
    x_val, y_val = load_split(bank, "validation")
    predicted = load_model(ml).predict(xgb.DMatrix(x_val)) > 0.5
    assert accuracy == pytest.approx(np.mean(predicted == y_val), abs=1e-5)


def test_libsvm_channels_train_the_same_model_as_csv(abalone, tmp_path):
    x, y = load_split(abalone, "train")
    libsvm = tmp_path / "libsvm" / "train.libsvm"
    libsvm.parent.mkdir()
    libsvm.write_text("".join(
        f"{label} " + " ".join(f"{j}:{float(v)!r}" for j, v in enumerate(row) if v != 0) + "\n"
        for label, row in zip(y, x)))
    ml = make_job(tmp_path / "ml", {**HPS, "num_round": "10"}, {"train": libsvm}, content_type="text/libsvm")
    assert twin.main(["--ml-root", str(ml)]) == 0
    reference = xgb.train({"objective": "reg:squarederror", "max_depth": 4, "eta": 0.2, "subsample": 0.8,
                           "min_child_weight": 5, "seed": 7, "nthread": 1},
                          xgb.DMatrix(libsvm.as_posix() + "?format=libsvm"), 10)
    x_test, _ = load_split(abalone, "test")
    diff = load_model(ml).predict(xgb.DMatrix(x_test)) - reference.predict(xgb.DMatrix(x_test))
    assert np.max(np.abs(diff)) < 1e-6


def test_csv_weights_take_column_one(abalone, tmp_path):
    x, y = load_split(abalone, "train")
    weights = np.where(y > 10, 3.0, 1.0)
    weighted = tmp_path / "w" / "train.csv"
    weighted.parent.mkdir()
    np.savetxt(weighted, np.column_stack([y, weights, x]), delimiter=",", fmt="%.17g")
    ml = make_job(tmp_path / "ml", {**HPS, "num_round": "10", "csv_weights": "1"}, {"train": weighted})
    assert twin.main(["--ml-root", str(ml)]) == 0
    reference = xgb.train({"objective": "reg:squarederror", "max_depth": 4, "eta": 0.2, "subsample": 0.8,
                           "min_child_weight": 5, "seed": 7, "nthread": 1}, xgb.DMatrix(x, label=y, weight=weights), 10)
    diff = load_model(ml).predict(xgb.DMatrix(x)) - reference.predict(xgb.DMatrix(x))
    assert np.max(np.abs(diff)) < 1e-6


BAD_JOBS = {
    "extraneous hyperparameter": ({**HPS, "learning_rate_typo": "0.1"}, ("train",), "text/csv",
                                  "ClientError: Extraneous hyperparameter found: learning_rate_typo"),
    "float for an integer": ({**HPS, "max_depth": "3.5"}, ("train",), "text/csv",
                             "ClientError: Hyperparameter max_depth: could not parse value '3.5' as an integer"),
    "num_round missing": ({k: v for k, v in HPS.items() if k != "num_round"}, ("train",), "text/csv",
                          "ClientError: Missing required hyperparameter: num_round"),
    "out of range": ({**HPS, "eta": "1.5"}, ("train",), "text/csv", "ClientError: Hyperparameter eta: value 1.5"),
    "unknown objective": ({**HPS, "objective": "reg:nonsense"}, ("train",), "text/csv",
                          "ClientError: Hyperparameter objective: value 'reg:nonsense' is not one of"),
    "multiclass without num_class": ({**HPS, "objective": "multi:softprob"}, ("train",), "text/csv",
                                     "ClientError: Require input for parameter 'num_class'"),
    "auc for regression": ({**HPS, "eval_metric": "auc"}, ("train",), "text/csv",
                           "ClientError: Metric 'auc' can only be applied for classification"),
    "unknown tuning metric": ({**HPS, "_tuning_objective_metric": "validation:nope"}, ("train",), "text/csv",
                              "ClientError: Hyperparameter _tuning_objective_metric"),
    "extraneous channel": (HPS, ("train", "test"), "text/csv", "ClientError: Extraneous channel found: test"),
    "no train channel": (HPS, ("validation",), "text/csv", "ClientError: Missing required channel: train"),
    "unsupported content type": (HPS, ("train",), "application/x-image",
                                 "ClientError: Channel train: content type application/x-image is not supported"),
    "rings as binary labels": ({**HPS, "objective": "binary:logistic"}, ("train",), "text/csv",
                               ("ClientError: Check failed: base_score > 0.0f && base_score < 1.0f: "
                               "base_score must be in (0,1) for logistic loss")),
}


@pytest.mark.parametrize("case", BAD_JOBS, ids=list(BAD_JOBS))
def test_bad_job_writes_failure_and_exits_1(case, abalone, tmp_path):
    hps, names, content_type, expected = BAD_JOBS[case]
    files = {n: abalone / "train" / "train.csv" for n in names}
    ml = make_job(tmp_path, hps, files, content_type=content_type)
    assert twin.main(["--ml-root", str(ml)]) == 1
    assert (ml / "output" / "failure").read_text().startswith(expected)
    assert not (ml / "model").exists() or not list((ml / "model").iterdir())


def test_header_row_in_training_csv_is_a_client_error(tmp_path):
    csv = tmp_path / "data" / "train.csv"
    csv.parent.mkdir()
    csv.write_text("label,a,b\n1,2,3\n0,1,1\n")
    ml = make_job(tmp_path / "ml", {"num_round": "2"}, {"train": csv})
    proc = subprocess.run([sys.executable, "-m", "containers.xgboost.train", "--ml-root", str(ml)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert (ml / "output" / "failure").read_text().startswith(
        "ClientError: Could not read train.csv as header-less numeric CSV")


def test_metric_definitions_cover_both_channels():
    assert {"validation:rmse", "validation:auc", "train:logloss", "validation:mlogloss",
            "validation:merror", "validation:aucpr", "validation:mae", "validation:error"} <= METRIC_NAMES
    for definition in METRIC_DEFINITIONS:
        channel, metric = definition["Name"].split(":")
        sample = f"[17]#011train-{metric}:0.25#011validation-{metric}:0.5"
        captured = re.match(definition["Regex"], sample).group(1)
        assert leading_number(captured) == (0.25 if channel == "train" else 0.5)
    assert json.loads(json.dumps(METRIC_DEFINITIONS)) == METRIC_DEFINITIONS


def test_channel_of_several_files_reads_them_in_sorted_order(abalone, tmp_path):
    lines = (abalone / "train" / "train.csv").read_text().splitlines(keepends=True)
    parts = tmp_path / "parts"
    (parts / "b").mkdir(parents=True)
    (parts / "a-part-0.csv").write_text("".join(lines[:1000]))
    (parts / "b" / "part-1.csv").write_text("".join(lines[1000:]))
    whole = make_job(tmp_path / "whole", HPS, channels(abalone, "train"))
    split = make_job(tmp_path / "split", HPS, {"train": parts / "a-part-0.csv"})
    shutil.copytree(parts / "b", split / "input" / "data" / "train" / "b")
    assert twin.main(["--ml-root", str(whole)]) == 0
    assert twin.main(["--ml-root", str(split)]) == 0
    assert (whole / "model" / "xgboost-model").read_bytes() == (split / "model" / "xgboost-model").read_bytes()


def test_early_stopping_without_validation_trains_every_round_like_the_built_in(abalone, tmp_path, caplog):
    ml = make_job(tmp_path, {**HPS, "num_round": "12", "early_stopping_rounds": "2", "eval_metric": "rmse"},
                  channels(abalone, "train"))
    assert twin.main(["--ml-root", str(ml)]) == 0
    assert load_model(ml).num_boosted_rounds() == 12
    assert "early_stopping_rounds is ignored" in caplog.text


def test_aliases_of_the_built_in_are_accepted(abalone, tmp_path):
    aliased = {k: v for k, v in HPS.items() if k != "eta"} | {"learning_rate": "0.2", "reg_lambda": "1"}
    ml = make_job(tmp_path / "aliased", aliased, channels(abalone, "train"))
    plain = make_job(tmp_path / "plain", HPS | {"lambda": "1"}, channels(abalone, "train"))
    assert twin.main(["--ml-root", str(ml)]) == 0
    assert twin.main(["--ml-root", str(plain)]) == 0
    assert (ml / "model" / "xgboost-model").read_bytes() == (plain / "model" / "xgboost-model").read_bytes()
