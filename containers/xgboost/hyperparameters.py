"""Hyperparameters of the built-in XGBoost algorithm: parse the all-string map and validate it.

SageMaker passes every hyperparameter as a string. Like the built-in algorithm, integers are parsed
with int() (so "3.5" is rejected), names the algorithm does not know are rejected, and
`_tuning_objective_metric` (set by a tuning job) is merged into eval_metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import UserError
from .metric_names import METRIC_NAMES, SUPPORTED_METRICS, base_name

INF = math.inf


@dataclass(frozen=True)
class Spec:
    """One hyperparameter: how to parse it and the values it may take."""

    parse: Callable[[str, str], Any]
    low: float = -INF
    high: float = INF
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def check(self, name: str, raw: str) -> Any:
        value = self.parse(name, raw)
        if self.choices and value not in self.choices:
            raise UserError(
                f"Hyperparameter {name}: value '{raw}' is not one of {', '.join(self.choices)}."
            )
        if isinstance(value, (int, float)) and not self._in_range(value):
            lo = "(" if self.low_open else "["
            hi = ")" if self.high_open else "]"
            raise UserError(
                f"Hyperparameter {name}: value {raw} is outside its range {lo}{self.low}, {self.high}{hi}."
            )
        return value

    def _in_range(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"Hyperparameter {name}: could not parse value '{raw}' as an integer; "
                        "pass a whole number.") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise UserError(f"Hyperparameter {name}: could not parse value '{raw}' as a number.") from None


def _str(name: str, raw: str) -> str:
    return raw.strip()


def _list(name: str, raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _int_spec(low: float = -INF, high: float = INF) -> Spec:
    return Spec(_int, low=low, high=high)


def _float_spec(low: float = -INF, high: float = INF, low_open: bool = False, high_open: bool = False) -> Spec:
    return Spec(_float, low=low, high=high, low_open=low_open, high_open=high_open)


def _choice(*choices: str) -> Spec:
    return Spec(_str, choices=choices)


OBJECTIVES = (
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:logistic",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:quantileerror",
    "reg:gamma",
    "reg:tweedie",
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "count:poisson",
    "survival:cox",
    "survival:aft",
    "multi:softmax",
    "multi:softprob",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
)

SPECS: dict[str, Spec] = {
    # SageMaker's own
    "num_round": _int_spec(1),
    "early_stopping_rounds": _int_spec(1),
    "csv_weights": _int_spec(0, 1),
    "save_model_on_termination": _choice("true", "false"),
    "_tuning_objective_metric": Spec(_str, choices=tuple(sorted(METRIC_NAMES))),
    "_kfold": _int_spec(2),
    "_num_cv_round": _int_spec(1),
    # xgboost's general, booster and learning-task parameters
    "booster": _choice("gbtree", "gblinear", "dart"),
    "verbosity": _int_spec(0, 3),
    "nthread": _int_spec(1),
    "eta": _float_spec(0, 1),
    "gamma": _float_spec(0),
    "max_depth": _int_spec(0),
    "min_child_weight": _float_spec(0),
    "max_delta_step": _float_spec(0),
    "subsample": _float_spec(0, 1, low_open=True),
    "sampling_method": _choice("uniform", "gradient_based"),
    "colsample_bytree": _float_spec(0, 1, low_open=True),
    "colsample_bylevel": _float_spec(0, 1, low_open=True),
    "colsample_bynode": _float_spec(0, 1, low_open=True),
    "lambda": _float_spec(0),
    "alpha": _float_spec(0),
    "tree_method": _choice("auto", "exact", "approx", "hist"),
    "sketch_eps": _float_spec(0, 1, low_open=True, high_open=True),
    "scale_pos_weight": _float_spec(0, low_open=True),
    "updater": Spec(_str),
    "refresh_leaf": _int_spec(0, 1),
    "process_type": _choice("default", "update"),
    "grow_policy": _choice("depthwise", "lossguide"),
    "max_leaves": _int_spec(0),
    "max_bin": _int_spec(2),
    "num_parallel_tree": _int_spec(1),
    "monotone_constraints": Spec(_str),
    "interaction_constraints": Spec(_str),
    "max_cat_to_onehot": _int_spec(1),
    "multi_strategy": _choice("one_output_per_tree", "multi_output_tree"),
    "sample_type": _choice("uniform", "weighted"),
    "normalize_type": _choice("tree", "forest"),
    "rate_drop": _float_spec(0, 1),
    "one_drop": _int_spec(0, 1),
    "skip_drop": _float_spec(0, 1),
    "tweedie_variance_power": _float_spec(1, 2, low_open=True, high_open=True),
    "huber_slope": _float_spec(0, low_open=True),
    "quantile_alpha": _float_spec(0, 1, low_open=True, high_open=True),
    "aft_loss_distribution": _choice("normal", "logistic", "extreme"),
    "aft_loss_distribution_scale": _float_spec(0, low_open=True),
    "objective": _choice(*OBJECTIVES),
    "num_class": _int_spec(2),
    "base_score": _float_spec(),
    "eval_metric": Spec(_list),
    "seed": _int_spec(),
    "seed_per_iteration": _int_spec(0, 1),
}

# Other names the built-in algorithm accepts for the same hyperparameter
ALIASES = {"learning_rate": "eta", "min_split_loss": "gamma", "reg_lambda": "lambda", "reg_alpha": "alpha"}

# Hyperparameters the algorithm consumes itself; everything else goes to xgboost.train's params.
NOT_BOOSTER_PARAMS = frozenset(
    {"num_round", "early_stopping_rounds", "csv_weights", "save_model_on_termination",
     "_tuning_objective_metric", "_kfold", "_num_cv_round", "eval_metric"}
)
DEFAULT_OBJECTIVE = "reg:squarederror"


@dataclass(frozen=True)
class TrainingConfig:
    """Validated hyperparameters, split into what xgboost.train receives and what the twin uses."""

    params: dict[str, Any]
    num_round: int
    eval_metrics: list[str]
    early_stopping_rounds: int | None = None
    early_stopping_metric: str | None = None
    csv_weights: bool = False
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def objective(self) -> str:
        return self.params["objective"]


def _check_eval_metric(metric: str) -> None:
    name = base_name(metric)
    if "@" in metric:
        if name not in ("error", "ndcg", "map"):
            raise UserError(f"Metric '{metric}': only error, ndcg and map take a threshold '@t'.")
        _float("eval_metric", metric.split("@", 1)[1])
        return
    if name not in SUPPORTED_METRICS:
        raise UserError(
            f"Metric '{metric}' is not supported. Use one of: {', '.join(SUPPORTED_METRICS)}."
        )


def parse(hyperparameters: Mapping[str, Any]) -> TrainingConfig:
    """Validate the hyperparameters.json map (string values) into a TrainingConfig."""
    raw = {ALIASES.get(name, name): str(value) for name, value in hyperparameters.items()}
    # the built-in's order: required first, then unknown names
    if "num_round" not in raw:
        raise UserError("Missing required hyperparameter: num_round")
    for name in raw:
        if name not in SPECS:
            raise UserError(f"Extraneous hyperparameter found: {name}")
    values = {name: SPECS[name].check(name, value) for name, value in raw.items()}
    if "_kfold" in values or "_num_cv_round" in values:
        raise UserError("_kfold/_num_cv_round (k-fold cross-validation) is supported on AWS only; "
                        "remove them to train locally.")

    objective = values.get("objective", DEFAULT_OBJECTIVE)
    values["objective"] = objective
    if objective.startswith("multi:") and "num_class" not in values:
        raise UserError("Require input for parameter 'num_class' for multi-classification")
    if "num_class" in values and not objective.startswith("multi:"):
        raise UserError("Do not need to setup parameter 'num_class' for learning task other than "
                        "multi-classification.")

    eval_metric: list[str] = list(values.get("eval_metric", []))
    for metric in eval_metric:
        _check_eval_metric(metric)
    if any(base_name(m) == "auc" for m in eval_metric) and not objective.startswith(("binary:", "rank:")):
        raise UserError("Metric 'auc' can only be applied for classification and ranking problems.")
    tuning = values.get("_tuning_objective_metric")
    tuning_metric = tuning.split(":", 1)[1] if tuning else None
    # As the built-in: with both set, the metrics are the sorted union; early stopping follows the
    # tuning objective, else the last eval_metric the caller listed, else nothing.
    if tuning_metric and eval_metric:
        eval_metrics = sorted(set(eval_metric) | {tuning_metric})
    else:
        eval_metrics = [tuning_metric] if tuning_metric else eval_metric
    early_stopping_metric = tuning_metric or (eval_metric[-1] if eval_metric else None)

    params = {name: value for name, value in values.items() if name not in NOT_BOOSTER_PARAMS}
    return TrainingConfig(
        params=params,
        num_round=values["num_round"],
        eval_metrics=eval_metrics,
        early_stopping_rounds=values.get("early_stopping_rounds"),
        early_stopping_metric=early_stopping_metric,
        csv_weights=values.get("csv_weights", 0) == 1,
        raw=raw,
    )
