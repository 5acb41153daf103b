"""Evaluate a trained candidate (built-in XGBoost or a scikit-learn forest) on the held-out test split.

    python3 evaluate.py --model-dir /opt/ml/processing/model --test-dir /opt/ml/processing/test \
        --schema-dir /opt/ml/processing/schema --output-dir /opt/ml/processing/evaluation \
        [--metric rmse] [--candidate NAME] [--bootstrap-resamples 1000] [--bootstrap-seed 0] \
        [--failure-file /opt/ml/output/message]

Runs as a Processing job in the XGBoost 3.0-5 image for every candidate of the competition. Reads
model.tar.gz (`xgboost-model` for the built-in algorithm, a joblib file for a scikit-learn forest;
read from the archive without extracting it), test.csv (label first, no header) and schema.json
(problem type, classes, the naive baseline's prediction, each encoded feature's source column), and
writes into --output-dir:
  evaluation.json      {"target_column", "problem_type", "input_columns", "labels", "metrics": {...},
                        "baseline": {"strategy", "metrics": {...}}, "row_counts": {"test": N},
                        "candidate", "model": {"family", "size_bytes", "latency_ms"},
                        "bootstrap": {"metric", "resamples", "seed", "ci95"}}
  predictions.csv      per test row: the label and the model's score(s), in test.csv's row order
  bootstrap.json       the metric on each of --bootstrap-resamples resamples of the test rows; the
                       resamples are drawn from --bootstrap-seed and the row count alone, so every
                       candidate's job scores the SAME resampled rows: the winner selection pairs them
  explainability.json  mean |SHAP| per original column (TreeSHAP: xgboost's own for a booster,
                       shap.TreeExplainer for a forest; one-hot and date columns
                       summed back to the column they came from), and per encoded feature
  explainability.png   the same as a bar chart
with metrics rmse/mse/mae/r2 (regression); auc/accuracy/precision/recall/f1/logloss and the
confusion matrix at threshold 0.5 (binary); accuracy/f1_weighted/confusion matrix (multiclass).
"baseline" scores a naive model on the same test rows — the train mean (regression) or the train
class prior (classification) for every row — so the quality gate can ask the model to beat it.
"latency_ms" is the mean time of one single-row prediction in this job's process (after a warm-up).
The report is what the pipeline records as the champion, so it names the use case the model was
trained for: the target column, the problem type and the input columns.
Errors end with `<ErrorClass>: <message>` on stderr (and in --failure-file) and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("evaluate")

MODEL_ARCHIVE = "model.tar.gz"
MODEL_FILE = "xgboost-model"
FOREST_SUFFIXES = (".joblib", ".pkl")  # the Random Forest script's model file in model.tar.gz
THRESHOLD = 0.5
DEFAULT_METRIC = {"regression": "rmse", "binary": "auc", "multiclass": "f1_weighted"}
LATENCY_ROWS = 50  # single-row predictions timed (after a few warm-up calls)
EXPLAIN_ROWS = 200  # test rows explained by SHAP: enough for stable mean |SHAP| ranks, cheap for forests


class EvaluationError(Exception):
    """Base of every error caused by the evaluation inputs."""


class ModelNotFoundError(EvaluationError):
    pass


class TestDataError(EvaluationError):
    pass


class SchemaError(EvaluationError):
    pass


class ExplainerUnavailable(EvaluationError):
    """shap (or matplotlib) is not in the image and could not be installed."""


# Not in the AWS images this job runs in (the candidate's serving image: XGBoost's or scikit-learn's):
# installed at the job's start when missing, as SageMaker's own examples do in processing jobs (the
# emulator's jobs run the project's Python, which has them).
EXPLAIN_PACKAGES = {"shap": "shap", "matplotlib": "matplotlib"}
# XGBoost computes TreeSHAP itself (Booster.predict pred_contribs=True: the values shap.TreeExplainer
# returns for a booster, exactly), so its evaluation needs nothing installed but the chart's library.
NATIVE_SHAP = {"xgboost"}


def ensure_explain_packages(family: str | None = None) -> None:
    import importlib.util
    import subprocess

    needed = {m: p for m, p in EXPLAIN_PACKAGES.items() if not (m == "shap" and family in NATIVE_SHAP)}
    missing = [package for module, package in needed.items() if importlib.util.find_spec(module) is None]
    if not missing:
        return
    log.info("Installing %s for the explanation", missing)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ExplainerUnavailable(
            f"{missing} are not in this image and `pip install` failed ({done.stderr.strip()[-300:]}). Give the "
            "evaluation job internet access (no network isolation, a NAT or a PyPI mirror) or an image that has them.")


def _single_file(folder: Path, name: str, error: type[EvaluationError], what: str) -> Path:
    if folder.is_file():
        return folder
    path = folder / name
    if path.is_file():
        return path
    found = sorted(folder.rglob(name)) if folder.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise error(f"No {name} in {folder}. Point the {what} argument at the folder holding {name}.")


class TrainedModel:
    """A candidate's model behind one interface: scores per row (regression value, P(class 1), or class
    probabilities), the number of features it expects, and the object SHAP's TreeExplainer reads."""

    def __init__(self, family: str, model: Any, archive: Path) -> None:
        self.family, self.model, self.archive = family, model, archive

    @property
    def num_features(self) -> int:
        if self.family == "xgboost":
            return self.model.num_features()
        return int(self.model.n_features_in_)

    def scores(self, features: np.ndarray) -> np.ndarray:
        if self.family == "xgboost":
            import xgboost as xgb

            return self.model.predict(xgb.DMatrix(features), validate_features=False)
        if hasattr(self.model, "predict_proba"):  # a classifier: class probabilities in class-index order
            return self._class_probabilities(features)
        return self.model.predict(features)

    def _class_probabilities(self, features: np.ndarray) -> np.ndarray:
        probabilities = self.model.predict_proba(features)
        classes = np.asarray(self.model.classes_).astype(int)
        out = np.zeros((len(features), int(classes.max()) + 1))
        out[:, classes] = probabilities  # a class absent from training keeps probability 0
        return out


def load_model(model_dir: Path) -> TrainedModel:
    """model.tar.gz of either family: `xgboost-model` (the built-in algorithm) or a joblib forest."""
    archive = _single_file(model_dir, MODEL_ARCHIVE, ModelNotFoundError, "--model-dir")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            files = [m for m in tar.getmembers() if m.isfile()]
            booster = next((m for m in files if Path(m.name).name == MODEL_FILE), None)
            forest = next((m for m in files if m.name.endswith(FOREST_SUFFIXES)), None)
            if booster is None and forest is None:
                raise ModelNotFoundError(f"{archive} holds neither {MODEL_FILE} (built-in XGBoost) nor a "
                                         f"{'/'.join(FOREST_SUFFIXES)} file (scikit-learn); it is not a candidate's model.")
            raw = tar.extractfile(booster or forest).read()
    except tarfile.TarError as err:
        raise ModelNotFoundError(f"{archive} is not a readable tar.gz ({err}).") from None
    if booster is not None:
        import xgboost as xgb

        model = xgb.Booster()
        try:
            model.load_model(bytearray(raw))
        except xgb.core.XGBoostError as err:
            raise ModelNotFoundError(f"{MODEL_FILE} in {archive} is not an xgboost model: {err}") from None
        # one thread, as the forest predicts: a single row is served on one, and OpenMP threads spinning
        # against other work would measure the machine's load, not the model
        model.set_param({"nthread": 1})
        return TrainedModel("xgboost", model, archive)
    import io
    import pickle

    import joblib

    try:
        model = joblib.load(io.BytesIO(raw))
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, KeyError) as err:
        raise ModelNotFoundError(f"{forest.name} in {archive} does not load with joblib: {err}") from None
    if isinstance(model, dict) and "model" in model:  # a script may save the estimator with metadata
        model = model["model"]
    if not hasattr(model, "predict") or not hasattr(model, "n_features_in_"):
        raise ModelNotFoundError(f"{forest.name} in {archive} holds a {type(model).__name__}, not a fitted "
                                 "scikit-learn estimator.")
    return TrainedModel("random_forest", model, archive)


def load_test(test_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    files = [test_dir] if test_dir.is_file() else sorted(test_dir.glob("*.csv"))
    if not files:
        raise TestDataError(f"No .csv files in {test_dir}. Point --test-dir at the preprocess test/ output.")
    blocks = []
    for path in files:
        try:
            block = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
        except ValueError as err:
            raise TestDataError(f"{path.name} is not label-first numeric CSV without a header ({err}).") from None
        if block.size:
            blocks.append(block)
    if not blocks:
        raise TestDataError(f"The test data in {test_dir} has no rows.")
    data = np.vstack(blocks)
    return data[:, 1:], data[:, 0]


def load_schema(schema_dir: Path) -> dict[str, Any]:
    path = _single_file(schema_dir, "schema.json", SchemaError, "--schema-dir")
    try:
        schema = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SchemaError(f"{path} is not valid JSON: {err}") from None
    if schema.get("problem_type") not in ("regression", "binary", "multiclass"):
        raise SchemaError(f"{path} has no valid problem_type (regression, binary or multiclass).")
    return schema


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def regression_metrics(y: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    from sklearn import metrics as skm

    mse = skm.mean_squared_error(y, predictions)
    return {"rmse": _finite(math.sqrt(mse)), "mse": _finite(mse),
            "mae": _finite(skm.mean_absolute_error(y, predictions)), "r2": _finite(skm.r2_score(y, predictions))}


def binary_metrics(y: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    from sklearn import metrics as skm

    y = y.astype(int)
    predicted = (probabilities > THRESHOLD).astype(int)
    both_classes = len(np.unique(y)) == 2
    return {
        "auc": _finite(skm.roc_auc_score(y, probabilities)) if both_classes else None,
        "accuracy": _finite(skm.accuracy_score(y, predicted)),
        "precision": _finite(skm.precision_score(y, predicted, zero_division=0)),
        "recall": _finite(skm.recall_score(y, predicted, zero_division=0)),
        "f1": _finite(skm.f1_score(y, predicted, zero_division=0)),
        "logloss": _finite(skm.log_loss(y, np.clip(probabilities, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "confusion_matrix": skm.confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
        "threshold": THRESHOLD,
    }


def multiclass_metrics(y: np.ndarray, predicted: np.ndarray, num_classes: int) -> dict[str, Any]:
    from sklearn import metrics as skm

    y = y.astype(int)
    labels = list(range(num_classes))
    return {
        "accuracy": _finite(skm.accuracy_score(y, predicted)),
        "f1_weighted": _finite(skm.f1_score(y, predicted, average="weighted", labels=labels, zero_division=0)),
        "confusion_matrix": skm.confusion_matrix(y, predicted, labels=labels).tolist(),
    }


def baseline_metrics(labels: np.ndarray, schema: dict[str, Any]) -> dict[str, Any]:
    """A naive model's metrics on the test rows: schema.json's train mean or train class prior for
    every row (the test split's own when an older schema lacks it)."""
    problem_type = schema["problem_type"]
    naive = schema.get("baseline_prediction") or {}
    if problem_type == "regression":
        mean = float(naive["mean"]) if "mean" in naive else float(labels.mean())
        return {"strategy": "the train mean for every row",
                "metrics": regression_metrics(labels, np.full(len(labels), mean))}
    num_classes = int(schema.get("num_classes") or (labels.max() + 1))
    prior = np.asarray(naive["class_fractions"] if "class_fractions" in naive
                       else np.bincount(labels.astype(int), minlength=num_classes) / len(labels), dtype=np.float64)
    if problem_type == "binary":
        metrics = binary_metrics(labels, np.full(len(labels), prior[-1]))
    else:
        metrics = multiclass_metrics(labels, np.full(len(labels), int(np.argmax(prior))), num_classes)
    return {"strategy": "the train class prior for every row", "metrics": metrics}


def metrics_of(scores: np.ndarray, labels: np.ndarray, schema: dict[str, Any]) -> dict[str, Any]:
    problem_type = schema["problem_type"]
    if problem_type == "regression":
        return regression_metrics(labels, scores)
    if problem_type == "binary":
        # binary:logistic gives P(class 1); a two-class multi:softprob model or a classifier gives both columns
        return binary_metrics(labels, scores[:, -1] if scores.ndim == 2 else scores)
    num_classes = int(schema.get("num_classes") or (scores.shape[1] if scores.ndim == 2 else labels.max() + 1))
    predicted = np.argmax(scores, axis=1) if scores.ndim == 2 else np.rint(scores).astype(int)
    return multiclass_metrics(labels, predicted, num_classes)


def evaluate_with_scores(model, features: np.ndarray, labels: np.ndarray,
                         schema: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    if not isinstance(model, TrainedModel):
        model = TrainedModel("xgboost", model, Path(MODEL_ARCHIVE))
    if model.num_features != features.shape[1]:
        raise TestDataError(f"The test data has {features.shape[1]} features but the model expects "
                            f"{model.num_features}; use the test split from the same preprocess run.")
    scores = np.asarray(model.scores(features))
    report = {"target_column": schema.get("target_column"), "problem_type": schema["problem_type"],
              "input_columns": schema.get("input_columns"),
              "labels": schema.get("labels"), "metrics": metrics_of(scores, labels, schema),
              "baseline": baseline_metrics(labels, schema), "row_counts": {"test": len(labels)}}
    return report, scores


# ---------------------------------------------------------------- the competition's measurements


def metric_function(metric: str, problem_type: str):
    """(labels, scores) -> the one metric, as metrics_of computes it, without the rest (the bootstrap
    calls it a thousand times)."""
    from sklearn import metrics as skm

    def probability(scores: np.ndarray) -> np.ndarray:
        return scores[:, -1] if scores.ndim == 2 else scores

    def classes(scores: np.ndarray) -> np.ndarray:
        return np.argmax(scores, axis=1) if scores.ndim == 2 else np.rint(scores).astype(int)

    if problem_type == "regression":
        table = {"rmse": lambda y, s: math.sqrt(skm.mean_squared_error(y, s)), "mse": skm.mean_squared_error,
                 "mae": skm.mean_absolute_error, "r2": skm.r2_score}
    elif problem_type == "binary":
        table = {
            "auc": lambda y, s: skm.roc_auc_score(y, probability(s)) if len(np.unique(y)) == 2 else float("nan"),
            "accuracy": lambda y, s: skm.accuracy_score(y, probability(s) > THRESHOLD),
            "precision": lambda y, s: skm.precision_score(y, probability(s) > THRESHOLD, zero_division=0),
            "recall": lambda y, s: skm.recall_score(y, probability(s) > THRESHOLD, zero_division=0),
            "f1": lambda y, s: skm.f1_score(y, probability(s) > THRESHOLD, zero_division=0),
            "logloss": lambda y, s: skm.log_loss(y, np.clip(probability(s), 1e-15, 1 - 1e-15), labels=[0, 1]),
        }
    else:
        table = {"accuracy": lambda y, s: skm.accuracy_score(y, classes(s)),
                 "f1_weighted": lambda y, s: skm.f1_score(y, classes(s), average="weighted", zero_division=0)}
    if metric not in table:
        raise EvaluationError(f"--metric {metric!r} is not a {problem_type} metric; use one of {sorted(table)}.")
    return table[metric]


def bootstrap(labels: np.ndarray, scores: np.ndarray, metric: str, problem_type: str, resamples: int,
              seed: int) -> dict[str, Any]:
    """The metric on ``resamples`` resamples (with replacement) of the test rows. The row indices come
    from ``seed`` and the row count only, so another candidate's job on the same test split draws the
    same rows: their values pair up resample by resample."""
    function = metric_function(metric, problem_type)
    rng = np.random.default_rng(seed)
    y = labels.astype(int) if problem_type != "regression" else labels
    values: list[float | None] = []
    for _ in range(resamples):
        rows = rng.integers(0, len(labels), len(labels))
        value = float(function(y[rows], scores[rows]))
        values.append(value if math.isfinite(value) else None)  # an AUC resample holding one class
    finite = np.array([v for v in values if v is not None])
    ci = [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))] if len(finite) else None
    return {"metric": metric, "resamples": resamples, "seed": seed, "rows": len(labels), "ci95": ci, "values": values}


def single_row_latency_ms(model: TrainedModel, features: np.ndarray, rows: int = LATENCY_ROWS) -> float:
    """The mean time of one prediction of one row, in milliseconds, after three warm-up calls."""
    count = min(rows, len(features))
    for i in range(min(3, count)):
        model.scores(features[i:i + 1])
    started = time.perf_counter()
    for i in range(count):
        model.scores(features[i:i + 1])
    return (time.perf_counter() - started) * 1000 / max(count, 1)


def feature_sources(schema: dict[str, Any], count: int) -> list[tuple[str, str]]:
    """(encoded feature name, original column) per model input, in the test split's column order:
    a one-hot column belongs to the column it encodes, a date's parts to the date."""
    features = schema.get("features") or []
    if len(features) == count:
        return [(f["name"], f.get("source_column") or f["name"]) for f in features]
    names = schema.get("feature_names") or [f"f{i}" for i in range(count)]
    return [(name, name) for name in names[:count]] + [(f"f{i}", f"f{i}") for i in range(len(names), count)]


def explain(model: TrainedModel, features: np.ndarray, schema: dict[str, Any],
            rows: int = EXPLAIN_ROWS) -> dict[str, Any]:
    """Mean |SHAP value| per encoded feature and per original column (TreeSHAP: XGBoost's own for a
    booster, shap.TreeExplainer for a scikit-learn forest); classes averaged for a multiclass model."""
    sample = features[:rows]
    if model.family in NATIVE_SHAP:
        import xgboost as xgb

        contributions = np.asarray(model.model.predict(xgb.DMatrix(sample), pred_contribs=True, validate_features=False))
        # the last column is the bias; a multiclass booster gives (rows, classes, features + 1)
        values = np.abs(contributions[:, :, :-1]).mean(axis=1) if contributions.ndim == 3 else contributions[:, :-1]
        method = f"TreeSHAP by xgboost {xgb.__version__} (Booster.predict pred_contribs)"
    else:
        import shap

        explainer = shap.TreeExplainer(model.model)
        # additivity is checked against the model's own output; a forest's float32 trees miss it by rounding
        values = np.asarray(explainer.shap_values(sample, check_additivity=False))
        if values.ndim == 3:  # (rows, features, classes): the magnitude over every class
            values = np.abs(values).mean(axis=2)
        method = f"shap.TreeExplainer (shap {shap.__version__})"
    per_feature = np.abs(values).mean(axis=0)
    sources = feature_sources(schema, features.shape[1])
    per_column: dict[str, float] = {}
    for (_, column), value in zip(sources, per_feature):
        per_column[column] = per_column.get(column, 0.0) + float(value)
    ranked = sorted(per_column.items(), key=lambda item: -item[1])
    return {
        "method": f"{method}, mean |SHAP value| over {len(sample)} test rows",
        "family": model.family,
        "top_feature": ranked[0][0] if ranked else None,
        "feature_importance": [{"column": column, "mean_abs_shap": value} for column, value in ranked],
        "encoded_features": [{"name": name, "column": column, "mean_abs_shap": float(value)}
                             for (name, column), value in zip(sources, per_feature)],
    }


def write_chart(explanation: dict[str, Any], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display in a processing job
    from matplotlib import pyplot as plt

    entries = explanation["feature_importance"][:20][::-1]
    figure, axes = plt.subplots(figsize=(7, 0.35 * len(entries) + 1.2))
    axes.barh([e["column"] for e in entries], [e["mean_abs_shap"] for e in entries], color="#3b7dd8")
    axes.set_xlabel("mean |SHAP value| (original columns)")
    axes.set_title(title)
    figure.tight_layout()
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    figure.savefig(staging, dpi=100)
    plt.close(figure)
    os.replace(staging, path)


def write_predictions(path: Path, labels: np.ndarray, scores: np.ndarray) -> None:
    columns = scores.reshape(len(labels), -1)
    header = "label," + ",".join(["score"] if columns.shape[1] == 1 else [f"p{i}" for i in range(columns.shape[1])])
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    np.savetxt(staging, np.column_stack([labels, columns]), delimiter=",", header=header, comments="", fmt="%.9g")
    os.replace(staging, path)


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(staging, path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    schema = load_schema(args.schema_dir)
    model = load_model(args.model_dir)
    ensure_explain_packages(model.family)
    features, labels = load_test(args.test_dir)
    report, scores = evaluate_with_scores(model, features, labels, schema)
    metric = args.metric if args.metric and args.metric != "auto" else DEFAULT_METRIC[schema["problem_type"]]
    resampled = bootstrap(labels, scores, metric, schema["problem_type"], args.bootstrap_resamples, args.bootstrap_seed)
    explanation = explain(model, features, schema)
    report["candidate"] = args.candidate
    report["model"] = {"family": model.family, "size_bytes": model.archive.stat().st_size,
                       "latency_ms": single_row_latency_ms(model, features)}
    report["bootstrap"] = {key: resampled[key] for key in ("metric", "resamples", "seed", "rows", "ci95")}
    report["explainability"] = {"file": "explainability.json", "chart": "explainability.png",
                                "top_feature": explanation["top_feature"]}
    out = args.output_dir
    write_json_atomically(out / "bootstrap.json", resampled)
    write_json_atomically(out / "explainability.json", explanation)
    write_chart(explanation, f"{args.candidate or model.family}: what drives {schema.get('target_column')}",
                out / "explainability.png")
    write_predictions(out / "predictions.csv", labels, scores)
    write_json_atomically(out / "evaluation.json", report)  # last: its presence means the rest is there
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--test-dir", required=True, type=Path)
    parser.add_argument("--schema-dir", required=True, type=Path)
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--metric", default="auto", help="the gated metric the bootstrap resamples (auto: per problem type)")
    parser.add_argument("--candidate", default=None, help="the candidate's name, recorded in the report")
    parser.add_argument("--bootstrap-resamples", type=int, default=1000)
    parser.add_argument("--bootstrap-seed", type=int, default=0)
    parser.add_argument("--failure-file", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        report = run(args)
    except Exception as err:
        if not isinstance(err, EvaluationError):
            log.exception("Unexpected failure")
        line = f"{type(err).__name__}: {err}"
        print(line, file=sys.stderr, flush=True)
        if args.failure_file:
            Path(args.failure_file).parent.mkdir(parents=True, exist_ok=True)
            Path(args.failure_file).write_text(line + "\n")
        return 1
    log.info("Metrics: %s", json.dumps(report["metrics"]))
    log.info("Bootstrap 95%% interval of %s: %s; single-row latency %.3f ms; top feature %s",
             report["bootstrap"]["metric"], report["bootstrap"]["ci95"], report["model"]["latency_ms"],
             report["explainability"]["top_feature"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
