"""`train` of the built-in XGBoost algorithm (image 3.0-5), runnable anywhere.

    python -m containers.xgboost.train [--ml-root DIR]     (or: python containers/xgboost/train.py)

The ML root (env SM_ML_ROOT, default /opt/ml) is laid out exactly as SageMaker lays out /opt/ml:
input/config/{hyperparameters,inputdataconfig,resourceconfig}.json, input/data/<channel>/,
model/ (receives `xgboost-model`, UBJSON) and output/failure (the reason, when the job fails; exit 1).
The evaluation log is xgboost's own: `[3]\ttrain-rmse:1.20000\tvalidation-rmse:2.30000`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a path: make `containers` importable from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import xgboost as xgb

from containers.xgboost import data, distributed, hyperparameters
from containers.xgboost.exceptions import AlgorithmError, UserError
from containers.xgboost.metrics import CUSTOM_METRICS, custom_metric, is_maximize

log = logging.getLogger(__name__)

MODEL_FILE = "xgboost-model"
DEFAULT_ML_ROOT = "/opt/ml"
# xgboost failures the built-in algorithm reports as the caller's (ClientError), by message
CUSTOMER_ERRORS = (
    "label must be in [0,1] for logistic regression",
    "label must be in [0, num_class)",
    "feature_names mismatch",
    "Check failed: preds.size() == info.labels_.size()",
    "the dataset only contains pos or neg samples",
    "base_score must be in (0,1) for logistic loss",
    "label must be nonnegative",
    "Parameter reg_lambda should be greater equal to 0",
)


@dataclass(frozen=True)
class MlPaths:
    """SageMaker's /opt/ml layout under any root."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "input" / "data"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"


def _read_json(path: Path, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise UserError(f"{path.name} is missing from {path.parent}.")
        return {}
    try:
        return json.loads(path.read_text() or "{}")
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON: {err}") from None


def dmatrix(dataset: data.Dataset) -> xgb.DMatrix:
    return xgb.DMatrix(dataset.features, label=dataset.labels, weight=dataset.weights)


def fit(config: hyperparameters.TrainingConfig, dtrain: xgb.DMatrix,
        dvalidation: xgb.DMatrix | None = None) -> xgb.Booster:
    """xgboost.train with the built-in algorithm's evaluation, early stopping and logging."""
    params = dict(config.params)
    native = [m for m in config.eval_metrics if m not in CUSTOM_METRICS]
    if native:
        params["eval_metric"] = native
    evals = [(dtrain, data.TRAIN)]
    if dvalidation is not None:
        evals.append((dvalidation, data.VALIDATION))
    # xgboost's evaluation log, printed to stdout by the first rank: in a cluster xgboost would route it
    # through the tracker to stderr, where the job's metric parser (and a tuner's early stopping) reads
    # per-round values from stdout like a one-host job's
    callbacks = [xgb.callback.EvaluationMonitor(logger=lambda message: print(message.strip(), flush=True))]
    metric = config.early_stopping_metric
    if config.early_stopping_rounds and (dvalidation is None or metric is None):
        # the built-in algorithm silently trains every round then; say so at least
        log.warning("early_stopping_rounds is ignored: it needs a validation channel and an eval_metric "
                    "or _tuning_objective_metric to watch.")
    elif config.early_stopping_rounds:
        callbacks.append(xgb.callback.EarlyStopping(
            rounds=config.early_stopping_rounds,
            metric_name=metric,
            data_name=data.VALIDATION,
            maximize=is_maximize(metric),
            save_best=True,
        ))
    return xgb.train(
        params,
        dtrain,
        num_boost_round=config.num_round,
        evals=evals,
        custom_metric=custom_metric(config.eval_metrics, config.objective),
        callbacks=callbacks,
        verbose_eval=False,
    )


def save(booster: xgb.Booster, model_dir: Path) -> Path:
    """Booster.save_model as UBJSON to model/xgboost-model, renamed into place when complete."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".{MODEL_FILE}.{os.getpid()}.ubj"  # the extension picks UBJSON explicitly
    final = model_dir / MODEL_FILE
    try:
        booster.save_model(str(staging))
        os.replace(staging, final)
    finally:
        staging.unlink(missing_ok=True)  # the folder must hold the model and nothing else
    return final


def train(paths: MlPaths) -> Path | None:
    """Run one training job laid out under paths; return the model file (None on a host of a cluster
    that does not save it: a worker, or a host left out for want of data)."""
    raw_hps = _read_json(paths.config_dir / "hyperparameters.json", required=False)
    data_config = _read_json(paths.config_dir / "inputdataconfig.json", required=True)
    resources = _read_json(paths.config_dir / "resourceconfig.json", required=False)
    hosts = sorted(resources.get("hosts", []))
    config = hyperparameters.parse(raw_hps)
    if len(hosts) <= 1:
        return _train_here(paths, config, data.resolve_channels(data_config, paths.data_dir), is_master=True)
    current = resources.get("current_host", hosts[0])
    log.info("Distributed node training with %d hosts: %s", len(hosts), hosts)
    channels = data.resolve_channels(data_config, paths.data_dir, allow_empty=True)
    include = True
    if not channels[data.TRAIN].files:
        log.warning(distributed.no_train_data_warning(current))
        include = False
    if data.VALIDATION in channels and not channels[data.VALIDATION].files:
        log.warning(distributed.no_validation_data_warning(current, str(paths.data_dir / data.VALIDATION)))
        include = False
    return distributed.rabit_run(lambda is_master: _train_here(paths, config, channels, is_master),
                                 include, hosts, current)


def _train_here(paths: MlPaths, config: hyperparameters.TrainingConfig, channels: dict[str, data.Channel],
                is_master: bool) -> Path | None:
    """Load this host's share of every channel and train (in a cluster, together with the others)."""
    datasets = {name: data.load(ch, config.csv_weights) for name, ch in channels.items()}
    if all(ch.content_type == data.LIBSVM for ch in channels.values()):
        data.align_sparse_width(list(datasets.values()))
    widths = {name: d.num_features for name, d in datasets.items()}
    if len(set(widths.values())) > 1:
        raise UserError(f"Channels have different feature counts {widths}; "
                        "train and validation must have the same columns.")
    dtrain = dmatrix(datasets[data.TRAIN])
    dval = dmatrix(datasets[data.VALIDATION]) if data.VALIDATION in datasets else None
    log.info("Train matrix has %d rows and %d columns", dtrain.num_row(), dtrain.num_col())
    try:
        booster = fit(config, dtrain, dval)
    except xgb.core.XGBoostError as err:
        # "[10:15:14] /workspace/src/objective/regression_obj.cu:88: <message>\nStack trace: ..."
        message = re.sub(r"^\[[0-9:]+\] \S+: ", "", str(err).split("\nStack trace:", 1)[0].strip())
        if any(known in message for known in CUSTOMER_ERRORS):
            raise UserError(message) from None
        raise AlgorithmError(f"XGB train call failed with exception:\n {message}") from None
    if not is_master:  # the built-in: only the master host writes the model
        log.info("Not the master host: the model is saved by the master")
        return None
    return save(booster, paths.model_dir)


def _write_failure(paths: MlPaths, err: BaseException) -> None:
    prefix = getattr(err, "failure_prefix", AlgorithmError.failure_prefix)
    paths.failure_file.parent.mkdir(parents=True, exist_ok=True)
    paths.failure_file.write_text(f"{prefix}: {err}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml-root", default=os.environ.get("SM_ML_ROOT", DEFAULT_ML_ROOT))
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="[%(asctime)s:%(levelname)s] %(message)s")
    paths = MlPaths(Path(args.ml_root))
    try:
        model = train(paths)
    except Exception as err:  # every failure must reach output/failure with its reason
        log.error("Training failed: %s", err, exc_info=not isinstance(err, UserError))
        _write_failure(paths, err)
        return 1
    if model is not None:
        log.info("Model saved to %s", model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
