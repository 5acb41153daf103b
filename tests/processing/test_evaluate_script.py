"""evaluate.py on models the XGBoost twin trains from preprocess.py's splits: metrics and quality."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import xgboost_runs
from sklearn import metrics as skm
from sklearn.datasets import load_iris

from processing_scripts import evaluate, preprocess

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
# modest defaults, untuned. nthread=1 keeps the run time steady on a busy 2-core CI machine, where
# OpenMP threads fighting other processes can make xgboost ten times slower; the model is the same.
DEFAULTS = {"num_round": "300", "max_depth": "4", "eta": "0.05", "subsample": "0.8", "min_child_weight": "5",
            "nthread": "1"}


def run_pipeline(raw: Path, target: str, objective: dict[str, str], work: Path) -> dict:
    """preprocess -> train (the twin, in a job folder) -> model.tar.gz -> evaluate."""
    splits = work / "splits"
    assert preprocess.main(["--input-dir", str(raw), "--output-dir", str(splits), "--target-column", target]) == 0
    return xgboost_runs.train_and_evaluate(splits, {**DEFAULTS, **objective}, work)


def test_abalone_regression_quality_and_metrics(tmp_path):
    report = run_pipeline(DATA / "abalone.csv", "rings", {"objective": "reg:squarederror"}, tmp_path)
    assert report["problem_type"] == "regression"
    assert set(report["metrics"]) == {"rmse", "mse", "mae", "r2"}
    assert report["row_counts"] == {"test": 627}
    assert report["metrics"]["rmse"] <= 2.3  # plain XGBoost measures 2.16 on an 80/20 split
    assert report["metrics"]["rmse"] == pytest.approx(np.sqrt(report["metrics"]["mse"]))
    # the figures are the test split's, recomputed independently
    test = np.loadtxt(tmp_path / "splits" / "test" / "test.csv", delimiter=",")
    booster = xgb.Booster()
    booster.load_model(str(tmp_path / "ml" / "model" / "xgboost-model"))
    predictions = booster.predict(xgb.DMatrix(test[:, 1:]))
    assert report["metrics"]["mae"] == pytest.approx(skm.mean_absolute_error(test[:, 0], predictions))
    assert report["metrics"]["r2"] == pytest.approx(skm.r2_score(test[:, 0], predictions))


def test_bank_marketing_binary_quality_and_metrics(tmp_path):
    report = run_pipeline(DATA / "bank-marketing.csv", "deposit",
                          {"objective": "binary:logistic", "eval_metric": "auc"}, tmp_path)
    metrics = report["metrics"]
    assert report["problem_type"] == "binary"
    assert {"auc", "accuracy", "precision", "recall", "f1", "logloss", "confusion_matrix"} <= set(metrics)
    assert metrics["auc"] >= 0.92  # plain XGBoost measures 0.924 on an 80/20 split
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum() == report["row_counts"]["test"] == 1675
    (tn, fp), (fn, tp) = matrix
    assert metrics["accuracy"] == pytest.approx((tp + tn) / matrix.sum())
    assert metrics["precision"] == pytest.approx(tp / (tp + fp))
    assert metrics["recall"] == pytest.approx(tp / (tp + fn))


def test_iris_multiclass_metrics(tmp_path):
    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(species=[iris.target_names[t] for t in iris.target]).drop(columns=["target"])
    frame.to_csv(tmp_path / "iris.csv", index=False)
    report = run_pipeline(tmp_path / "iris.csv", "species",
                          {"objective": "multi:softprob", "num_class": "3", "num_round": "50",
                           "eta": "0.3", "min_child_weight": "1"}, tmp_path / "run")
    metrics = report["metrics"]
    assert report["problem_type"] == "multiclass"
    assert set(metrics) == {"accuracy", "f1_weighted", "confusion_matrix"}
    assert np.array(metrics["confusion_matrix"]).shape == (3, 3)
    assert np.trace(metrics["confusion_matrix"]) / report["row_counts"]["test"] == pytest.approx(metrics["accuracy"])
    assert metrics["accuracy"] >= 0.85


def test_missing_model_is_a_named_error(tmp_path, capsys):
    splits = tmp_path / "splits"
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=60), "y": [i % 2 for i in range(60)]}).to_csv(tmp_path / "raw.csv", index=False)
    assert preprocess.main(["--input-dir", str(tmp_path / "raw.csv"), "--output-dir", str(splits),
                            "--target-column", "y"]) == 0
    (tmp_path / "model").mkdir()
    code = evaluate.main(["--model-dir", str(tmp_path / "model"), "--test-dir", str(splits / "test"),
                          "--schema-dir", str(splits / "schema"), "--output-dir", str(tmp_path / "evaluation"),
                          "--failure-file", str(tmp_path / "message")])
    assert code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("ModelNotFoundError: No model.tar.gz in")
    assert (tmp_path / "message").read_text().strip() == last
    assert not (tmp_path / "evaluation").exists()


def test_binary_schema_with_a_two_class_softprob_model(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=200)})
    frame["y"] = np.where(frame["x"] + rng.normal(scale=0.5, size=200) > 0, "pos", "neg")
    frame.to_csv(tmp_path / "raw.csv", index=False)
    splits = tmp_path / "splits"
    assert preprocess.main(["--input-dir", str(tmp_path / "raw.csv"), "--output-dir", str(splits),
                            "--target-column", "y"]) == 0
    train = np.loadtxt(splits / "train" / "train.csv", delimiter=",", ndmin=2)
    booster = xgb.train({"objective": "multi:softprob", "num_class": 2},
                        xgb.DMatrix(train[:, 1:], label=train[:, 0]), 20)
    (tmp_path / "model").mkdir()
    booster.save_model(str(tmp_path / "xgboost-model.ubj"))
    with tarfile.open(tmp_path / "model" / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "xgboost-model.ubj", arcname="xgboost-model")
    assert evaluate.main(["--model-dir", str(tmp_path / "model"), "--test-dir", str(splits / "test"),
                          "--schema-dir", str(splits / "schema"), "--output-dir", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["problem_type"] == "binary"
    assert np.array(report["metrics"]["confusion_matrix"]).sum() == report["row_counts"]["test"] == 30
    assert report["metrics"]["auc"] > 0.8


# --- the competition's measurements: either family, the paired bootstrap, latency, size, SHAP ----------


@pytest.fixture(scope="module")
def abalone_splits(tmp_path_factory) -> Path:
    splits = tmp_path_factory.mktemp("abalone") / "splits"
    assert preprocess.main(["--input-dir", str(DATA / "abalone.csv"), "--output-dir", str(splits), "--target-column", "rings"]) == 0
    return splits


def forest_archive(splits: Path, folder: Path, trees: int = 30) -> Path:
    """A Random Forest as training_scripts/random_forest packs it: model.joblib inside model.tar.gz."""
    import io

    import joblib
    from sklearn.ensemble import RandomForestRegressor

    train = np.loadtxt(splits / "train" / "train.csv", delimiter=",")
    forest = RandomForestRegressor(trees, max_depth=10, random_state=0, n_jobs=1).fit(train[:, 1:], train[:, 0])
    raw = io.BytesIO()
    joblib.dump(forest, raw)
    folder.mkdir(parents=True)
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(raw.getvalue())
        tar.addfile(info, io.BytesIO(raw.getvalue()))
    return folder


def evaluate_candidate(splits: Path, model: Path, out: Path, name: str) -> dict:
    assert evaluate.main(["--model-dir", str(model), "--test-dir", str(splits / "test"), "--schema-dir", str(splits / "schema"),
                          "--output-dir", str(out), "--metric", "rmse", "--candidate", name,
                          "--bootstrap-resamples", "200"]) == 0
    return json.loads((out / "evaluation.json").read_text())


def test_a_forest_is_evaluated_with_its_interval_latency_size_and_explanation(abalone_splits, tmp_path):
    import joblib

    model = forest_archive(abalone_splits, tmp_path / "model")
    report = evaluate_candidate(abalone_splits, model, tmp_path / "out", "random_forest")
    test = np.loadtxt(abalone_splits / "test" / "test.csv", delimiter=",")
    with tarfile.open(model / "model.tar.gz") as tar:
        forest = joblib.load(tar.extractfile("model.joblib"))
    predictions = forest.predict(test[:, 1:])
    assert report["metrics"]["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(test[:, 0], predictions)))
    assert report["model"]["family"] == "random_forest" and report["candidate"] == "random_forest"
    assert report["model"]["size_bytes"] == (model / "model.tar.gz").stat().st_size and report["model"]["latency_ms"] > 0
    low, high = report["bootstrap"]["ci95"]
    assert low < report["metrics"]["rmse"] < high
    rows = np.loadtxt(tmp_path / "out" / "predictions.csv", delimiter=",", skiprows=1)
    assert rows.shape == (len(test), 2) and rows[:, 1] == pytest.approx(predictions, rel=1e-6)
    explanation = json.loads((tmp_path / "out" / "explainability.json").read_text())
    # the three one-hot columns of sex are one column again; the table's eight columns, ranked
    assert sorted(e["column"] for e in explanation["feature_importance"]) == sorted(report["input_columns"])
    assert explanation["top_feature"] in {"shell weight", "whole weight", "shucked weight", "viscera weight"}
    assert (tmp_path / "out" / "explainability.png").read_bytes()[:4] == b"\x89PNG"


def test_two_candidates_bootstrap_the_same_rows_so_their_values_pair(abalone_splits, tmp_path):
    forest = evaluate_candidate(abalone_splits, forest_archive(abalone_splits, tmp_path / "rf"), tmp_path / "rf-out", "rf")
    again = evaluate_candidate(abalone_splits, tmp_path / "rf", tmp_path / "rf-again", "rf")
    first = json.loads((tmp_path / "rf-out" / "bootstrap.json").read_text())
    second = json.loads((tmp_path / "rf-again" / "bootstrap.json").read_text())
    assert first["values"] == second["values"] and forest["bootstrap"] == again["bootstrap"]  # same seed, same rows
    # resample k of another model is computed on the same rows: recompute one from the seed alone
    labels = np.loadtxt(abalone_splits / "test" / "test.csv", delimiter=",")[:, 0]
    scores = np.loadtxt(tmp_path / "rf-out" / "predictions.csv", delimiter=",", skiprows=1)[:, 1]
    rows = np.random.default_rng(0).integers(0, len(labels), len(labels))
    assert first["values"][0] == pytest.approx(np.sqrt(skm.mean_squared_error(labels[rows], scores[rows])), rel=1e-6)


def test_a_model_archive_of_neither_family_is_a_named_error(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "schema.json").write_text(json.dumps({"problem_type": "regression"}))
    with tarfile.open(tmp_path / "model" / "model.tar.gz", "w:gz") as tar:
        tar.add(__file__, arcname="notes.txt")
    assert evaluate.main(["--model-dir", str(tmp_path / "model"), "--test-dir", str(tmp_path), "--schema-dir",
                          str(tmp_path), "--output-dir", str(tmp_path / "out")]) == 1
    assert "ModelNotFoundError: " in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_missing_explainer_that_cannot_be_installed_is_a_named_error(monkeypatch, tmp_path):
    # a module no image has, "installed" from a local path that does not exist: pip fails without the network
    monkeypatch.setattr(evaluate, "EXPLAIN_PACKAGES", {"no_such_explainer_module": str(tmp_path / "missing-wheel")})
    with pytest.raises(evaluate.ExplainerUnavailable, match="pip install` failed"):
        evaluate.ensure_explain_packages()
    monkeypatch.setattr(evaluate, "EXPLAIN_PACKAGES", {"json": "unused"})  # present: nothing to install
    evaluate.ensure_explain_packages()


@pytest.mark.parametrize("params, labels", [
    ({"objective": "reg:squarederror"}, lambda rng, x: x[:, 0] * 2 + x[:, 1] ** 2),
    ({"objective": "multi:softprob", "num_class": 3}, lambda rng, x: rng.integers(0, 3, len(x))),
])
def test_xgboost_explains_itself_with_the_values_shap_gives(params, labels, tmp_path):
    """A booster's TreeSHAP comes from xgboost (nothing to install in the XGBoost image): the same mean
    |SHAP| per feature as shap.TreeExplainer, to the last bit."""
    import shap

    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 5))
    booster = xgb.train({**params, "max_depth": 3, "nthread": 1}, xgb.DMatrix(features, label=labels(rng, features)), 20)
    schema = {"feature_names": [f"c{i}" for i in range(5)]}
    native = evaluate.explain(evaluate.TrainedModel("xgboost", booster, tmp_path), features, schema)
    by_shap = np.asarray(shap.TreeExplainer(booster).shap_values(features[:evaluate.EXPLAIN_ROWS], check_additivity=False))
    per_feature = np.abs(by_shap).mean(axis=2).mean(axis=0) if by_shap.ndim == 3 else np.abs(by_shap).mean(axis=0)
    assert [e["mean_abs_shap"] for e in native["encoded_features"]] == pytest.approx(per_feature.tolist(), rel=1e-6)
    assert native["method"].startswith("TreeSHAP by xgboost")


def test_an_xgboost_evaluation_does_not_need_shap_installed(monkeypatch, tmp_path):
    # shap missing and not installable (a local wheel path that does not exist: pip fails offline)
    monkeypatch.setattr(evaluate, "EXPLAIN_PACKAGES", {"shap": str(tmp_path / "missing-shap-wheel"), "json": "unused"})
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None if name == "shap" else object())
    evaluate.ensure_explain_packages("xgboost")  # nothing to install: xgboost explains itself
    with pytest.raises(evaluate.ExplainerUnavailable, match="shap"):
        evaluate.ensure_explain_packages("random_forest")
