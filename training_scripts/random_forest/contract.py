"""The Random Forest candidate's contract with the pipeline: hyperparameters, metric lines, files.

Standard library only: the stacks import it at synth time (MetricDefinitions, the tuning objective)
and the training script imports it inside the scikit-learn image.

Metric lines: after training, train.py prints one line per metric and channel,

    train:rmse=1.8734512
    validation:rmse=2.1337781

with the built-in XGBoost algorithm's metric names (containers/xgboost/metric_names.py), so both
candidates are tuned and compared on one objective name: regression ``validation:rmse``
(Minimize), binary ``validation:auc`` (Maximize), multiclass ``validation:mlogloss`` (Minimize).
``METRIC_DEFINITIONS`` holds the regex of every name the script can print (26, SageMaker allows
40): one static list serves every problem type, which is only known at run time.
"""

from __future__ import annotations

REGRESSION, BINARY, MULTICLASS = "regression", "binary", "multiclass"
PROBLEM_TYPES = (REGRESSION, BINARY, MULTICLASS)
AUTO = "auto"

# sagemaker_program: the entry point inside sourcedir.tar.gz (it also defines the serving functions)
PROGRAM = "train.py"
SERVING_PROGRAM = "inference.py"

# Hyperparameter name -> default, as the script's argparse reads them (``--name value``). "none"
# is Python's None (no depth limit, every feature, a bootstrap sample as large as the data).
HYPERPARAMETERS: dict[str, str] = {
    "problem_type": AUTO,        # regression | binary | multiclass | auto (schema channel's schema.json)
    "num_class": "0",            # classes of a classifier; 0 = from the schema channel, else the labels
    "n_estimators": "100",
    "max_depth": "none",
    "min_samples_split": "2",
    "min_samples_leaf": "1",
    "max_features": "sqrt",      # sqrt | log2 | none | a fraction in (0, 1] | a whole number of features
    "max_samples": "none",       # none | a fraction in (0, 1] | a whole number of rows (with bootstrap)
    "bootstrap": "true",
    "criterion": "auto",         # auto = squared_error (regression) / gini (classification)
    "class_weight": "none",      # none | balanced | balanced_subsample (classification)
    "min_impurity_decrease": "0.0",
    "ccp_alpha": "0.0",
    "random_state": "42",
    "n_jobs": "-1",              # -1 = OMP_NUM_THREADS when set (a tuner's share), else SM_NUM_CPUS
}

CHANNELS = ("train", "validation")
METRICS: dict[str, tuple[str, ...]] = {
    REGRESSION: ("rmse", "mae", "mse", "r2"),
    BINARY: ("auc", "aucpr", "logloss", "error", "accuracy", "f1"),
    MULTICLASS: ("mlogloss", "merror", "accuracy"),
}
# the tuning objective per problem type: the same as the built-in XGBoost candidate's
OBJECTIVES: dict[str, tuple[str, str]] = {
    REGRESSION: ("validation:rmse", "Minimize"),
    BINARY: ("validation:auc", "Maximize"),
    MULTICLASS: ("validation:mlogloss", "Minimize"),
}
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_line(channel: str, metric: str, value: float) -> str:
    """``validation:rmse=2.1337781``: what MetricDefinitions read (10 significant digits)."""
    return f"{channel}:{metric}={value:.10g}"


def metric_regex(name: str) -> str:
    """The MetricDefinitions regex of ``train:rmse``/``validation:auc``...: one capture, the number."""
    return f"(?:^|\\s){name}={_NUMBER}"


def metric_definitions(problem_type: str | None = None) -> list[dict[str, str]]:
    """MetricDefinitions for one problem type, or (None) for every metric the script prints."""
    kinds = [problem_type] if problem_type else list(PROBLEM_TYPES)
    names = dict.fromkeys(f"{channel}:{metric}" for kind in kinds for channel in CHANNELS for metric in METRICS[kind])
    return [{"Name": name, "Regex": metric_regex(name)} for name in names]


METRIC_DEFINITIONS: list[dict[str, str]] = metric_definitions()

# What train.py writes in SM_MODEL_DIR (model.tar.gz): the fitted estimator (joblib), what serving
# needs to know about it (JSON), and the serving code, so the artifact serves on its own.
MODEL_FILE = "model.joblib"
INFO_FILE = "model.json"
CODE_DIR = "code"
# The Environment of the model container (CreateModel) for an artifact train.py wrote; JSON scores
# to the label decoder as the XGBoost container sends them.
SERVING_ENVIRONMENT: dict[str, str] = {
    "SAGEMAKER_PROGRAM": SERVING_PROGRAM,
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json",
}
