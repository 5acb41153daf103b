"""Evaluation metrics of the built-in XGBoost algorithm: names, directions and log regexes.

METRIC_DEFINITIONS is what a training or tuning job uses to scrape the job's log
(`[12]#011train-rmse:1.2#011validation-rmse:2.3`, tabs shown as #011 as CloudWatch does).
A tuning job's objective is one of the names (e.g. "validation:auc").

Some metrics are native to xgboost; the rest (accuracy, f1, mse, r2, ...) the built-in algorithm
computes itself from the predictions, and so does this twin (custom_metric below).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .metric_names import (  # noqa: F401 - re-exported: the metrics' names live beside them
    CHANNELS_WITH_METRICS,
    MAXIMIZE_METRICS,
    METRIC_DEFINITIONS,
    METRIC_NAMES,
    MINIMIZE_METRICS,
    SUPPORTED_METRICS,
    base_name,
)


def is_maximize(metric: str) -> bool:
    return base_name(metric) in MAXIMIZE_METRICS


def predicted_labels(predt: np.ndarray, objective: str, n_rows: int) -> np.ndarray:
    """Class ids from transformed predictions, by objective (threshold 0.5 on probabilities)."""
    if objective == "multi:softprob":
        return np.argmax(predt.reshape(n_rows, -1), axis=1)
    flat = predt.reshape(-1)
    if objective in ("binary:logistic", "reg:logistic"):
        return (flat > 0.5).astype(np.int64)
    if objective == "binary:logitraw":
        return (flat > 0).astype(np.int64)
    return np.rint(flat).astype(np.int64)  # multi:softmax, binary:hinge give class ids


def _classification(name: str) -> Callable[[np.ndarray, np.ndarray, str], float]:
    def compute(y: np.ndarray, predt: np.ndarray, objective: str) -> float:
        # imported here: only jobs asking for these metrics pay for it
        from sklearn import metrics as skm

        y_pred = predicted_labels(predt, objective, len(y))
        y_true = y.astype(np.int64)
        binary = len(np.union1d(np.unique(y_true), np.unique(y_pred))) <= 2
        if name == "accuracy":
            return float(skm.accuracy_score(y_true, y_pred))
        if name == "balanced_accuracy":
            return float(skm.balanced_accuracy_score(y_true, y_pred))
        family, _, average = name.partition("_")
        if not average:
            average = "binary" if binary else "macro"
        scorer = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}[family]
        return float(scorer(y_true, y_pred, average=average, zero_division=0))

    return compute


def _mse(y: np.ndarray, predt: np.ndarray, objective: str) -> float:
    return float(np.mean((y - predt.reshape(-1)) ** 2))


def _r2(y: np.ndarray, predt: np.ndarray, objective: str) -> float:
    total = float(np.sum((y - np.mean(y)) ** 2))
    residual = float(np.sum((y - predt.reshape(-1)) ** 2))
    return 1.0 - residual / total if total > 0 else 0.0


CUSTOM_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, str], float]] = {
    "mse": _mse,
    "r2": _r2,
    **{
        name: _classification(name)
        for name in (
            "accuracy",
            "balanced_accuracy",
            "f1",
            "f1_binary",
            "f1_macro",
            "precision",
            "precision_macro",
            "precision_micro",
            "recall",
            "recall_macro",
            "recall_micro",
        )
    },
}


def custom_metric(names: Sequence[str], objective: str) -> Callable | None:
    """One xgboost `custom_metric` computing every non-native metric asked for, or None."""
    wanted = [n for n in names if n in CUSTOM_METRICS]
    if not wanted:
        return None

    def evaluate(predt: np.ndarray, dmatrix) -> list[tuple[str, float]]:
        y = dmatrix.get_label()
        return [(n, CUSTOM_METRICS[n](y, predt, objective)) for n in wanted]

    return evaluate
