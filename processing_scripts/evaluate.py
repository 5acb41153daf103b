"""Evaluate a trained XGBoost model on the held-out test split -> evaluation.json.

    python3 evaluate.py --model-dir /opt/ml/processing/model --test-dir /opt/ml/processing/test \
        --schema-dir /opt/ml/processing/schema --output-dir /opt/ml/processing/evaluation \
        [--failure-file /opt/ml/output/message]

Runs as a Processing job in the XGBoost 3.0-5 image. Reads model.tar.gz (`xgboost-model` inside,
read from the archive without extracting it), test.csv (label first, no header) and schema.json
(problem type, classes, the naive baseline's prediction), and writes evaluation.json:
  {"target_column", "problem_type", "input_columns", "labels", "metrics": {...},
   "baseline": {"strategy", "metrics": {...}}, "row_counts": {"test": N}}
with metrics rmse/mse/mae/r2 (regression); auc/accuracy/precision/recall/f1/logloss and the
confusion matrix at threshold 0.5 (binary); accuracy/f1_weighted/confusion matrix (multiclass).
"baseline" scores a naive model on the same test rows — the train mean (regression) or the train
class prior (classification) for every row — so the quality gate can ask the model to beat it.
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
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("evaluate")

MODEL_ARCHIVE = "model.tar.gz"
MODEL_FILE = "xgboost-model"
THRESHOLD = 0.5


class EvaluationError(Exception):
    """Base of every error caused by the evaluation inputs."""


class ModelNotFoundError(EvaluationError):
    pass


class TestDataError(EvaluationError):
    pass


class SchemaError(EvaluationError):
    pass


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


def load_booster(model_dir: Path):
    import xgboost as xgb

    archive = _single_file(model_dir, MODEL_ARCHIVE, ModelNotFoundError, "--model-dir")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and Path(m.name).name == MODEL_FILE), None)
            if member is None:
                raise ModelNotFoundError(f"{archive} holds no {MODEL_FILE}; it is not a built-in XGBoost model.")
            raw = tar.extractfile(member).read()
    except tarfile.TarError as err:
        raise ModelNotFoundError(f"{archive} is not a readable tar.gz ({err}).") from None
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(raw))
    except xgb.core.XGBoostError as err:
        raise ModelNotFoundError(f"{MODEL_FILE} in {archive} is not an xgboost model: {err}") from None
    return booster


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


def evaluate(booster, features: np.ndarray, labels: np.ndarray, schema: dict[str, Any]) -> dict[str, Any]:
    import xgboost as xgb

    if booster.num_features() != features.shape[1]:
        raise TestDataError(f"The test data has {features.shape[1]} features but the model expects "
                            f"{booster.num_features()}; use the test split from the same preprocess run.")
    raw = booster.predict(xgb.DMatrix(features), validate_features=False)
    problem_type = schema["problem_type"]
    if problem_type == "regression":
        metrics = regression_metrics(labels, raw)
    elif problem_type == "binary":
        # binary:logistic gives P(class 1); a two-class multi:softprob model gives both columns
        metrics = binary_metrics(labels, raw[:, -1] if raw.ndim == 2 else raw)
    else:
        num_classes = int(schema.get("num_classes") or (raw.shape[1] if raw.ndim == 2 else labels.max() + 1))
        predicted = np.argmax(raw, axis=1) if raw.ndim == 2 else np.rint(raw).astype(int)
        metrics = multiclass_metrics(labels, predicted, num_classes)
    return {"target_column": schema.get("target_column"), "problem_type": problem_type,
            "input_columns": schema.get("input_columns"),
            "labels": schema.get("labels"), "metrics": metrics, "baseline": baseline_metrics(labels, schema),
            "row_counts": {"test": len(labels)}}


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(staging, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--test-dir", required=True, type=Path)
    parser.add_argument("--schema-dir", required=True, type=Path)
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--failure-file", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        schema = load_schema(args.schema_dir)
        booster = load_booster(args.model_dir)
        features, labels = load_test(args.test_dir)
        report = evaluate(booster, features, labels, schema)
        write_json_atomically(args.output_dir / "evaluation.json", report)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
