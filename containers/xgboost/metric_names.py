"""The built-in XGBoost algorithm's metric names and their log regexes, standard library only (the
validation Lambda checks hyperparameters against them without numpy)."""

from __future__ import annotations

MAXIMIZE_METRICS: tuple[str, ...] = (
    "accuracy",
    "auc",
    "aucpr",
    "balanced_accuracy",
    "f1",
    "f1_binary",
    "f1_macro",
    "map",
    "ndcg",
    "precision",
    "precision_macro",
    "precision_micro",
    "r2",
    "recall",
    "recall_macro",
    "recall_micro",
)
MINIMIZE_METRICS: tuple[str, ...] = (
    "aft-nloglik",
    "cox-nloglik",
    "error",
    "gamma-deviance",
    "gamma-nloglik",
    "interval-regression-accuracy",
    "logloss",
    "mae",
    "mape",
    "merror",
    "mlogloss",
    "mphe",
    "mse",
    "poisson-nloglik",
    "rmse",
    "rmsle",
    "tweedie-nloglik",
)
SUPPORTED_METRICS: tuple[str, ...] = MAXIMIZE_METRICS + MINIMIZE_METRICS
CHANNELS_WITH_METRICS: tuple[str, ...] = ("train", "validation")


def _definition(channel: str, metric: str) -> dict[str, str]:
    return {
        "Name": f"{channel}:{metric}",
        "Regex": f".*\\[[0-9]+\\].*#011{channel}-{metric}:(\\S+)",
    }


METRIC_DEFINITIONS: list[dict[str, str]] = [
    _definition(channel, metric) for channel in CHANNELS_WITH_METRICS for metric in SUPPORTED_METRICS
]
METRIC_NAMES: frozenset[str] = frozenset(d["Name"] for d in METRIC_DEFINITIONS)


def base_name(metric: str) -> str:
    """`error@0.7` -> `error`; thresholds keep the direction of their metric."""
    return metric.split("@", 1)[0]
