"""Random Forest candidate, script mode: train a RandomForestRegressor/Classifier on preprocess's splits.

    python train.py [--n_estimators 100] [--max_depth none] ... (every name in contract.HYPERPARAMETERS)

Run by the SageMaker scikit-learn image (sagemaker_program=train.py): the hyperparameters arrive as
``--name value`` arguments, the folders as SM_MODEL_DIR, SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION
(optional) and SM_CHANNEL_SCHEMA (optional: preprocess's schema.json). The channels hold what
preprocess writes for XGBoost: CSV files, label in the first column, no header; a classifier's labels
are the class indices 0..k-1. The problem type is the ``problem_type`` hyperparameter, or (auto)
schema.json's.

Prints ``train:<metric>=<value>`` and ``validation:<metric>=<value>`` lines (contract.py: the names
XGBoost reports, the MetricDefinitions regexes) and writes in SM_MODEL_DIR ``model.joblib`` (the
fitted estimator), ``model.json`` (problem type, classes, features, hyperparameters, metrics) and
``code/`` (the serving code), so the artifact serves through inference.py with
contract.SERVING_ENVIRONMENT. The estimator is fitted on ``n_jobs`` threads and saved with n_jobs=1,
so its predictions are bit-for-bit the same on every load. Bad input fails with a named error: ``<Error>: <what to do>`` is the
last line of stderr and the content of SM_OUTPUT_DIR/failure (DescribeTrainingJob's FailureReason),
exit code 1.

The serving functions are importable from this module too (sagemaker_program serves as the model's
SAGEMAKER_PROGRAM, as the SageMaker Python SDK's create_model() uses it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn import metrics as skm
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

if __package__:  # imported from the source tree (tests)
    from . import contract
    from .inference import input_fn, model_fn, output_fn, predict_fn  # serving: SAGEMAKER_PROGRAM=train.py
else:  # the job's script: its siblings sit beside it in the code folder
    import contract
    from inference import input_fn, model_fn, output_fn, predict_fn

SCHEMA_FILE = "schema.json"
SERVING_FUNCTIONS = (model_fn, input_fn, predict_fn, output_fn)  # re-exported: this module serves too


class TrainingError(Exception):
    """Something wrong with the job's input; the message says what to do."""


class HyperparameterError(TrainingError):
    pass


class ChannelError(TrainingError):
    pass


class ProblemTypeError(TrainingError):
    pass


# -- hyperparameters ------------------------------------------------------------------------------
_NONE = {"", "none", "null"}


def _is_none(text: str) -> bool:
    return text.strip().lower() in _NONE


def _boolean(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise HyperparameterError(f"{name}={text!r} is not a boolean; use true or false.")


def _integer(name: str, text: str, minimum: int, allow_none: bool = False) -> int | None:
    if allow_none and _is_none(text):
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer() or number < minimum:
        hint = " or none" if allow_none else ""
        raise HyperparameterError(f"{name}={text!r} is not a whole number >= {minimum}{hint}.")
    return int(number)


def _non_negative(name: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number >= 0:
        raise HyperparameterError(f"{name}={text!r} is not a number >= 0.")
    return number


def _fraction_or_count(name: str, text: str, words: tuple[str, ...]) -> str | float | int | None:
    """max_features/max_samples: a keyword, none, a fraction in (0, 1] or a whole count >= 1."""
    value = text.strip()
    if _is_none(value):
        return None
    if value.lower() in words:
        return value.lower()
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if "." not in value and "e" not in value.lower() and number.is_integer() and number >= 1:
        return int(number)
    if 0 < number <= 1:
        return number
    allowed = ", ".join((*words, "none"))
    raise HyperparameterError(f"{name}={text!r} must be {allowed}, a fraction in (0, 1] or a whole number >= 1.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in contract.HYPERPARAMETERS.items():
        parser.add_argument(f"--{name}", default=default)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--schema", default=os.environ.get("SM_CHANNEL_SCHEMA"))
    parser.add_argument("--output-dir", default=os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
    return parser.parse_args(argv)


def _threads(text: str) -> int:
    count = _integer("n_jobs", text, -1)
    if count == 0:
        raise HyperparameterError("n_jobs=0 is not a thread count; use -1 (all the job's CPUs) or a number >= 1.")
    if count == -1:  # a tuner running trials side by side gives each its share in OMP_NUM_THREADS
        for variable in ("OMP_NUM_THREADS", "SM_NUM_CPUS"):
            if os.environ.get(variable, "").isdigit() and int(os.environ[variable]) > 0:
                return int(os.environ[variable])
        return os.cpu_count() or 1
    return count


def estimator_params(args: argparse.Namespace, problem_type: str) -> dict:
    """The scikit-learn constructor arguments from the hyperparameters (HyperparameterError if bad)."""
    classification = problem_type != contract.REGRESSION
    criterion = args.criterion.strip().lower()
    if criterion == contract.AUTO:
        criterion = "gini" if classification else "squared_error"
    criteria = ("gini", "entropy", "log_loss") if classification else ("squared_error", "absolute_error",
                                                                      "friedman_mse", "poisson")
    if criterion not in criteria:
        raise HyperparameterError(f"criterion={args.criterion!r} does not fit a {problem_type} forest; use auto or "
                                  f"one of {', '.join(criteria)}.")
    params = {
        "n_estimators": _integer("n_estimators", args.n_estimators, 1),
        "max_depth": _integer("max_depth", args.max_depth, 1, allow_none=True),
        "min_samples_split": _integer("min_samples_split", args.min_samples_split, 2),
        "min_samples_leaf": _integer("min_samples_leaf", args.min_samples_leaf, 1),
        "max_features": _fraction_or_count("max_features", args.max_features, ("sqrt", "log2")),
        "max_samples": _fraction_or_count("max_samples", args.max_samples, ()),
        "bootstrap": _boolean("bootstrap", args.bootstrap),
        "criterion": criterion,
        "min_impurity_decrease": _non_negative("min_impurity_decrease", args.min_impurity_decrease),
        "ccp_alpha": _non_negative("ccp_alpha", args.ccp_alpha),
        "random_state": _integer("random_state", args.random_state, 0),
        "n_jobs": _threads(args.n_jobs),
    }
    if params["max_samples"] is not None and not params["bootstrap"]:
        raise HyperparameterError("max_samples needs bootstrap=true (it sizes each tree's bootstrap sample); "
                                  "set max_samples to none or bootstrap to true.")
    class_weight = args.class_weight.strip().lower()
    if classification:
        if class_weight not in ("none", "", "balanced", "balanced_subsample"):
            raise HyperparameterError(f"class_weight={args.class_weight!r}: use none, balanced or balanced_subsample.")
        params["class_weight"] = None if _is_none(class_weight) else class_weight
    elif not _is_none(class_weight):
        raise HyperparameterError(f"class_weight={args.class_weight!r} applies to classifiers only; this is a "
                                  "regression. Leave it at none.")
    return params


# -- data -----------------------------------------------------------------------------------------
def read_channel(folder: str | None, channel: str, required: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Every CSV file of a channel (sorted, hidden files skipped), label first, no header."""
    if not folder:
        if required:
            raise ChannelError(f"No {channel} channel: SM_CHANNEL_{channel.upper()} is not set. Give the training "
                               f"job a {channel!r} channel with preprocess's {channel}/ split.")
        return None
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ChannelError(f"The {channel} channel ({folder}) holds no file; point it at preprocess's {channel}/ split.")
    frames = []
    for path in files:
        try:
            frames.append(pd.read_csv(path, header=None, dtype=np.float64))
        except pd.errors.EmptyDataError:
            continue
        except ValueError as err:
            raise ChannelError(f"{path.name} in the {channel} channel is not a numeric CSV (label first, no header): "
                               f"{err}. Feed the split preprocess wrote.") from None
    widths = {frame.shape[1] for frame in frames}
    if not frames or sum(len(f) for f in frames) == 0:
        raise ChannelError(f"The {channel} channel ({folder}) holds no rows.")
    if len(widths) != 1 or widths == {1}:
        raise ChannelError(f"The {channel} channel's files have {sorted(widths)} columns; each row needs the label "
                           "then the same features.")
    table = np.concatenate([frame.to_numpy() for frame in frames])
    if np.isnan(table[:, 0]).any():
        raise ChannelError(f"The {channel} channel has rows without a label (column 1 empty).")
    return table[:, 1:], table[:, 0]


def read_schema(folder: str | None) -> dict | None:
    if not folder:
        return None
    path = Path(folder) / SCHEMA_FILE
    if not path.is_file():
        found = sorted(p.name for p in Path(folder).iterdir()) if Path(folder).is_dir() else []
        raise ChannelError(f"The schema channel ({folder}) has no {SCHEMA_FILE} (found {found}); point it at "
                           "preprocess's schema/ output.")
    return json.loads(path.read_text())


def problem_setup(args: argparse.Namespace, schema: dict | None, y: np.ndarray) -> tuple[str, int | None]:
    """The problem type and (classification) the number of classes, checked against the labels."""
    problem_type = args.problem_type.strip().lower()
    if problem_type == contract.AUTO:
        if schema is None:
            raise ProblemTypeError("problem_type is auto and the job has no schema channel: pass problem_type "
                                   f"({', '.join(contract.PROBLEM_TYPES)}) or a 'schema' channel holding "
                                   f"preprocess's {SCHEMA_FILE}.")
        problem_type = schema["problem_type"]
    if problem_type not in contract.PROBLEM_TYPES:
        raise ProblemTypeError(f"problem_type={problem_type!r}: use {', '.join(contract.PROBLEM_TYPES)} or auto.")
    if problem_type == contract.REGRESSION:
        return problem_type, None
    num_class = _integer("num_class", args.num_class, 0) or (schema or {}).get("num_classes") or 0
    if problem_type == contract.BINARY:
        num_class = num_class or 2
        if num_class != 2:
            raise ProblemTypeError(f"num_class={num_class} does not fit a binary problem; leave num_class at 0.")
    if not (np.mod(y, 1) == 0).all() or y.min() < 0:
        raise ProblemTypeError(f"A {problem_type} forest needs class indices 0..k-1 as labels (preprocess encodes "
                               "them so); the train channel's first column has other values. Is it a regression?")
    seen = int(y.max()) + 1
    num_class = num_class or seen
    if seen > num_class:
        raise ProblemTypeError(f"The labels go up to class {seen - 1} but num_class is {num_class}.")
    if num_class < 2:
        raise ProblemTypeError("A classifier needs at least two classes; the train channel has one.")
    return problem_type, num_class


# -- training and metrics -----------------------------------------------------------------------------
def class_probabilities(estimator, x: np.ndarray, num_class: int) -> np.ndarray:
    """predict_proba widened to every class (a class absent from train gets probability 0)."""
    proba = estimator.predict_proba(x)
    full = np.zeros((len(x), num_class))
    full[:, estimator.classes_.astype(int)] = proba
    return full


def evaluate(estimator, problem_type: str, num_class: int | None, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The channel's metrics by XGBoost's names; a metric undefined on these rows (AUC with one class
    present) is left out."""
    if problem_type == contract.REGRESSION:
        predicted = estimator.predict(x)
        mse = skm.mean_squared_error(y, predicted)
        out = {"rmse": math.sqrt(mse), "mae": skm.mean_absolute_error(y, predicted), "mse": mse}
        if len(y) > 1:
            out["r2"] = skm.r2_score(y, predicted)
        return out
    proba = class_probabilities(estimator, x, num_class)
    labels = y.astype(int)
    if problem_type == contract.BINARY:
        positive = proba[:, 1]
        wrong = float(np.mean((positive > 0.5) != (labels == 1)))
        out = {"logloss": skm.log_loss(labels, positive, labels=[0, 1]), "error": wrong, "accuracy": 1.0 - wrong,
               "f1": skm.f1_score(labels, (positive > 0.5).astype(int), zero_division=0.0)}
        if len(set(labels.tolist())) == 2:
            out["auc"] = skm.roc_auc_score(labels, positive)
            out["aucpr"] = skm.average_precision_score(labels, positive)
        return out
    wrong = float(np.mean(proba.argmax(axis=1) != labels))
    return {"mlogloss": skm.log_loss(labels, proba, labels=list(range(num_class))), "merror": wrong,
            "accuracy": 1.0 - wrong}


def report(channel: str, values: dict[str, float], problem_type: str) -> None:
    for metric in contract.METRICS[problem_type]:
        if metric in values and math.isfinite(values[metric]):
            print(contract.metric_line(channel, metric, values[metric]), flush=True)


def save(model_dir: Path, estimator, info: dict) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, model_dir / contract.MODEL_FILE, compress=3)
    (model_dir / contract.INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    code = model_dir / contract.CODE_DIR
    code.mkdir(exist_ok=True)
    for source in sorted(Path(__file__).resolve().parent.glob("*.py")):
        if source.name != "__init__.py":  # the serving code as plain modules, imported by name
            shutil.copyfile(source, code / source.name)


def train(args: argparse.Namespace) -> dict:
    """Fit, report the metrics, save; returns model.json's content."""
    x_train, y_train = read_channel(args.train, "train", required=True)
    validation = read_channel(args.validation, "validation", required=False)
    if validation is not None and validation[0].shape[1] != x_train.shape[1]:
        raise ChannelError(f"The validation channel has {validation[0].shape[1]} features, train has "
                           f"{x_train.shape[1]}; both must come from the same preprocess run.")
    schema = read_schema(args.schema)
    problem_type, num_class = problem_setup(args, schema, y_train)
    params = estimator_params(args, problem_type)
    forest = RandomForestRegressor if problem_type == contract.REGRESSION else RandomForestClassifier
    estimator = forest(**params)
    started = time.monotonic()
    estimator.fit(x_train, y_train if problem_type == contract.REGRESSION else y_train.astype(int))
    seconds = time.monotonic() - started
    # Predicting on several threads adds the trees' outputs in the order the threads finish, so the
    # last bits of a regression or probability vary between calls; one thread adds them in tree
    # order: every load of the model (endpoint, batch, an in-process check) answers the same bits.
    estimator.set_params(n_jobs=1)
    print(f"Fitted {forest.__name__} ({params['n_estimators']} trees) on {len(y_train)} rows x "
          f"{x_train.shape[1]} features in {seconds:.2f}s ({params['n_jobs']} thread(s))", flush=True)
    measured = {"train": evaluate(estimator, problem_type, num_class, x_train, y_train)}
    if validation is not None:
        measured["validation"] = evaluate(estimator, problem_type, num_class, *validation)
    for channel, values in measured.items():
        report(channel, values, problem_type)
    info = {
        "format": 1,
        "estimator": forest.__name__,
        "problem_type": problem_type,
        "num_classes": num_class,
        "classes": estimator.classes_.astype(int).tolist() if num_class else None,
        "n_features": int(x_train.shape[1]),
        "feature_names": (schema or {}).get("feature_names"),
        "params": params,
        "metrics": {f"{channel}:{name}": value for channel, values in measured.items() for name, value in values.items()},
        "fit_seconds": round(seconds, 3),
        "scikit_learn_version": sklearn.__version__,
    }
    save(Path(args.model_dir), estimator, info)
    return info


def _report_failure(line: str, output_dir: str | None) -> None:
    print(line, file=sys.stderr, flush=True)
    if output_dir:  # the toolkit writes the failure file only when none exists: ours, clear, wins
        try:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "failure").write_text(line + "\n")
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        train(args)
    except TrainingError as err:
        _report_failure(f"{type(err).__name__}: {err}", args.output_dir)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
