"""Validate an execution's input before any SageMaker job starts, and derive what the jobs need.

Event (built by the state machine): {"defaults": {...}, "config": {...}, "execution_name": str,
"execution_arn": str}. ``config`` is the execution input merged over ``defaults``.

Returns the run plan the rest of the state machine reads: the normalised config, the problem type,
the XGBoost objective and tuning metric, S3 locations under a per-execution prefix, unique job
names inside SageMaker's length limits, and the blue/green deployment config.

Every rejection is a named exception (the Lambda error name Step Functions reports) whose message
says what was wrong and what to do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import boto3

if __package__:  # imported from the source tree (tests, the CDK app)
    from . import candidate_rules, feature_rules
    from . import problem_rules as rules
    from .xgboost_rules import hyperparameters as xgboost_hyperparameters
    from .xgboost_rules.exceptions import UserError as XGBoostUserError
else:  # the Lambda runtime imports handler.py from the asset root, where CDK staged the rules beside it
    import candidate_rules
    import feature_rules
    import problem_rules as rules
    from xgboost_rules import hyperparameters as xgboost_hyperparameters
    from xgboost_rules.exceptions import UserError as XGBoostUserError

# The metrics evaluate.py reports per problem type (the shared rules own the table).
QUALITY_METRICS: dict[str, dict[str, str]] = {
    problem: {name: metric.direction for name, metric in table.items()} for problem, table in rules.METRICS.items()
}

# Built-in XGBoost objective, eval metric and tuning objective per problem type.
XGBOOST_SETUP = {
    "regression": ("reg:squarederror", "rmse", "validation:rmse", "Minimize"),
    "binary": ("binary:logistic", "auc", "validation:auc", "Maximize"),
    "multiclass": ("multi:softprob", "mlogloss", "validation:mlogloss", "Minimize"),
}
# User objectives that fit each problem type: what evaluate.py scores and serving decodes (a number for
# regression, a probability for binary, class probabilities for multiclass).
FITTING_OBJECTIVES = {
    "regression": ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "reg:squaredlogerror",
                   "reg:gamma", "reg:tweedie", "count:poisson"),
    "binary": ("binary:logistic", "reg:logistic"),
    "multiclass": ("multi:softprob",),
}
MAX_READ_BYTES = 64 * 1024 * 1024  # read whole objects up to this; sample beyond it
MIN_ROWS = rules.MIN_LABELLED_ROWS  # fewer rows cannot fill train/validation/test splits usefully
NAME_LIMITS = {"tuning": 32}  # HyperParameterTuningJobName; every other SageMaker name: 63
# The Random Forest script prints "<channel>:<metric>=<value>" per channel with XGBoost's metric names
# (training_scripts/random_forest/contract.py OBJECTIVES); the fan-out's tuning jobs scrape them with
# MetricDefinitions (stacks/candidates.py) and optimise the validation one, as XGBoost's are.
RANDOM_FOREST_OBJECTIVE = {problem: (metric, direction) for problem, (_, _, metric, direction) in XGBOOST_SETUP.items()}
PROBLEM_TYPES = rules.PROBLEM_TYPES
APPROVAL_MODES = ("auto", "manual")
MAX_APPROVAL_SECONDS = 365 * 24 * 3600  # a Task state's TimeoutSeconds limit (one year)
# the run's own jobs (preprocess-statistics/-transform: the sharded preprocessing's first and last,
# stacks/preprocessing.py; champion-transform/-evaluate: the deployed champion scored on this run's test
# split, the like-for-like champion check); each candidate has its own
JOB_STEPS = ("preprocess", "preprocess-statistics", "preprocess-transform", "model", "transform", "endpoint-config",
             "champion-transform", "champion-evaluate")
CANDIDATE_STEPS = ("tuning", "training", "evaluate")


class PipelineInputError(Exception):
    """Base of every input rejection."""


class InvalidPipelineSetting(PipelineInputError):
    pass


class InvalidInputUri(PipelineInputError):
    pass


class InputObjectNotFound(PipelineInputError):
    pass


class EmptyInputObject(PipelineInputError):
    pass


class HeaderOnlyInput(PipelineInputError):
    pass


class NotCsvInput(PipelineInputError):
    pass


class TooFewRows(PipelineInputError):
    pass


class TargetColumnMissing(PipelineInputError):
    pass


class UnusableTarget(PipelineInputError):
    pass


class InsufficientData(PipelineInputError):
    pass


class UnknownQualityMetric(PipelineInputError):
    pass


class InvalidQualityThreshold(PipelineInputError):
    pass


class InvalidHyperparameter(PipelineInputError):
    """A hyperparameter (or tuning range) the built-in XGBoost algorithm does not know or accept."""


class IncompatibleObjective(PipelineInputError):
    """hyperparameters.objective does not fit the problem type."""


class DuplicateColumns(PipelineInputError):
    pass


# Settings that take "auto" or a value of another type than their default's.
AUTO_OR_NUMBER = ("quality_threshold",)


# ---------------------------------------------------------------- settings


def check_settings(defaults: dict[str, Any], config: dict[str, Any]) -> None:
    """Every key must be a known setting, of the default's JSON type."""
    unknown = sorted(set(config) - set(defaults) - {"input_s3_uri"})
    if unknown:
        raise InvalidPipelineSetting(
            f"Unknown setting(s) {unknown} in the execution input. Known settings: "
            f"{sorted(defaults) + ['input_s3_uri']}. Check the spelling or remove them."
        )
    for key, default in defaults.items():
        value = config.get(key)
        if key in AUTO_OR_NUMBER:
            fits = value == rules.AUTO or _json_type(value) == "number"
        else:
            fits = _same_json_type(value, default)
        if not fits:
            wanted = "a number or \"auto\", like the default" if key in AUTO_OR_NUMBER else f"a {_json_type(default)} like the default"
            raise InvalidPipelineSetting(
                f"Setting {key!r} must be {wanted} {json.dumps(default)}, "
                f"got {json.dumps(value)}. Fix it in the execution input."
            )
    fractions = config["validation_fraction"] + config["test_fraction"]
    if not 0 < fractions < 0.9:
        raise InvalidPipelineSetting("validation_fraction + test_fraction must be between 0 and 0.9.")
    for key in ("training_instance_count", "tuning_max_jobs"):
        if config[key] < 1:
            hint = " To train without a search, set tuning_enabled to false." if key == "tuning_max_jobs" else ""
            raise InvalidPipelineSetting(f"{key} must be at least 1, got {config[key]}.{hint}")
    if not 1 <= config["tuning_max_parallel_jobs"] <= config["tuning_max_jobs"]:
        raise InvalidPipelineSetting(
            f"tuning_max_parallel_jobs must be between 1 and tuning_max_jobs ({config['tuning_max_jobs']}), "
            f"got {config['tuning_max_parallel_jobs']}.")
    if config["problem_type"] not in PROBLEM_TYPES:
        raise InvalidPipelineSetting(
            f"problem_type {config['problem_type']!r} must be one of {list(PROBLEM_TYPES)}; 'auto' infers it."
        )
    if config["approval_mode"] not in APPROVAL_MODES:
        raise InvalidPipelineSetting(
            f"approval_mode {config['approval_mode']!r} must be one of {list(APPROVAL_MODES)}: 'manual' waits for a "
            "reviewer before deploying."
        )
    timeout = config["approval_timeout_seconds"]
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= MAX_APPROVAL_SECONDS:
        raise InvalidPipelineSetting(
            f"approval_timeout_seconds must be a whole number of seconds from 1 to {MAX_APPROVAL_SECONDS}, got {timeout!r}."
        )
    bad_hp = {k: v for k, v in config["hyperparameters"].items() if not isinstance(v, str)}
    if bad_hp:
        raise InvalidPipelineSetting(
            f"hyperparameters values must be strings (SageMaker's contract), got {bad_hp}; quote them."
        )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), "null")


def _same_json_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return _json_type(value) == _json_type(default)


# ---------------------------------------------------------------- data


def parse_s3_uri(uri: Any) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri:
        raise InvalidInputUri(
            'The execution input needs "input_s3_uri": "s3://<bucket>/<key or prefix/>" naming the CSV to train on.'
        )
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise InvalidInputUri(f"input_s3_uri {uri!r} is not an s3://bucket/key URI; give the CSV object or a prefix ending in '/'.")
    return parsed.netloc, parsed.path.lstrip("/")


def inspect_csv(data: bytes, target_column: str, where: str, truncated: bool = False) -> dict[str, Any]:
    """Header, row count and the target column's summary (for the shared rule) of a CSV object's bytes."""
    if not data.strip():
        raise EmptyInputObject(f"{where} is empty. Upload a CSV with a header row and data rows.")
    encoding = text_encoding(data[:4096])
    if encoding:
        raise NotCsvInput(f"{where} is {encoding} text, not UTF-8. Save the CSV as UTF-8 (\"CSV UTF-8\" in Excel) "
                          "and upload it again.")
    if b"\x00" in data[:4096]:
        raise NotCsvInput(f"{where} is binary, not CSV text. Upload a comma-separated text file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        # A sample cut mid-character is fine; a file that is not UTF-8 is not.
        if not truncated:
            raise NotCsvInput(
                f"{where} is not UTF-8 text: byte 0x{data[err.start]:02X} at offset {err.start} is not UTF-8 "
                "(a Windows-1252 or Latin-1 export?). Save the CSV as UTF-8 and upload it again.") from None
        text = data[: len(data) - 4].decode("utf-8-sig", errors="ignore")
    if truncated:
        text = text[: text.rfind("\n") + 1]  # drop the partial last line
    del data
    header: list[str] | None = None
    index = -1
    rows = 0
    target = rules.TargetSummary()
    cells: list[feature_rules.ColumnCells] = []
    for line_number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [name.strip() for name in row]
            if len(header) < 2:
                raise NotCsvInput(
                    f"{where} does not parse as CSV: its first line has {len(header)} column(s). "
                    "The pipeline needs a comma-separated header with the target and at least one feature."
                )
            if target_column not in header:
                raise TargetColumnMissing(
                    f"Target column {target_column!r} is not in {where}; its columns are {header}. "
                    'Set "target_column" in the execution input to one of them.'
                )
            duplicates = sorted({name for name in header if header.count(name) > 1})
            if duplicates:
                raise DuplicateColumns(f"{where} has duplicate column names {duplicates}. Rename the columns so "
                                       "every name is unique, then upload the file again.")
            index = header.index(target_column)
            cells = [feature_rules.ColumnCells(name) for name in header]
            continue
        if len(row) != len(header):
            raise NotCsvInput(
                f"{where} does not parse as CSV: line {line_number} has {len(row)} fields, the header has "
                f"{len(header)}. Fix the quoting or delimiters."
            )
        rows += 1
        target.add(row[index])
        for position, cell in enumerate(row):
            if position != index:
                cells[position].add(cell)
    if header is None:
        raise NotCsvInput(f"{where} holds only separators, no header. Upload a CSV with a header row.")
    if not rows:
        raise HeaderOnlyInput(f"{where} has a header but no data rows. Upload a file with data.")
    warnings = [line for column in cells if column.name != target_column for line in column.warnings()]
    if target.infinite:
        warnings.append(f"{target.infinite} infinite value(s) in target {target_column!r} are treated as missing: "
                        "those rows are dropped.")
    return {"columns": header, "rows": rows, "target": target, "warnings": warnings}


def text_encoding(head: bytes) -> str | None:
    """The name of a UTF-16/UTF-32 encoding the bytes are in (byte-order mark, or NULs every other byte)."""
    for mark, name in ((b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"), (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
                       (b"\xff\xfe", "UTF-16 (little-endian)"), (b"\xfe\xff", "UTF-16 (big-endian)")):
        if head.startswith(mark):
            return name
    sample = head[:512]
    if len(sample) >= 8:
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        if odd > len(sample) // 4 and even == 0:
            return "UTF-16 (little-endian, no byte-order mark)"
        if even > len(sample) // 4 and odd == 0:
            return "UTF-16 (big-endian, no byte-order mark)"
    return None


def check_hyperparameters(hyperparameters: dict[str, str], ranges: dict[str, Any], problem: str) -> None:
    """The built-in XGBoost algorithm's own checks (names, types, ranges: containers/xgboost), before any
    job, on the values the training job would get and on every tuning range's ends."""
    try:
        xgboost_hyperparameters.parse(hyperparameters)
        for kind, entries in ranges.items():
            for entry in entries:
                name = xgboost_hyperparameters.ALIASES.get(entry["Name"], entry["Name"])
                spec = xgboost_hyperparameters.SPECS.get(name)
                if spec is None:
                    raise XGBoostUserError(f"Extraneous hyperparameter found: {entry['Name']} (in tuning_ranges.{kind})")
                for end in ("MinValue", "MaxValue") if "MinValue" in entry else ():
                    spec.check(name, str(entry[end]))
                for value in entry.get("Values", []):
                    spec.check(name, str(value))
    except XGBoostUserError as err:
        raise InvalidHyperparameter(
            f"The built-in XGBoost algorithm would refuse these settings: {err} Fix hyperparameters (or "
            f"tuning_ranges) in the execution input; the {problem} problem sets objective, eval_metric and "
            "num_class itself.") from None


def infer_problem_type(requested: str, target: rules.TargetSummary, column: str, where: str) -> rules.TargetDecision:
    """The shared rule (problem_rules.decide), its refusals named as this Lambda's errors."""
    try:
        return rules.decide(target, requested, column, where)
    except rules.UnusableTarget as err:
        raise UnusableTarget(str(err)) from None


def quality_plan(config: dict[str, Any], problem: str) -> dict[str, Any]:
    """The gated metric and threshold: "auto" resolved per problem type, explicit values range-checked."""
    metrics = rules.METRICS[problem]
    requested = config["quality_metric"]
    metric = rules.metric_for(problem, requested)
    if metric not in metrics:
        raise UnknownQualityMetric(
            f"quality_metric {requested!r} does not apply to a {problem} problem; use one of {sorted(metrics)} or "
            f"\"auto\" ({rules.AUTO_METRIC[problem]} for {problem}), and set quality_threshold to match "
            "(or leave it \"auto\")."
        )
    threshold = config["quality_threshold"]
    if threshold != rules.AUTO:
        why = rules.threshold_problem(metric, threshold)
        if why:
            raise InvalidQualityThreshold(f"{why} (The gated metric is {metric} for this {problem} problem.)")
        threshold = float(threshold)
    return {
        "metric": metric,
        "threshold": threshold,
        "direction": metrics[metric].direction,
        "rule": (f"auto: {rules.describe_margin(metric)}" if threshold == rules.AUTO
                 else f"{'at most' if metrics[metric].direction == 'lower' else 'at least'} {threshold:g}"),
    }


# ---------------------------------------------------------------- plan


def tuning_seconds(config: dict[str, Any], job_timeout_seconds: int) -> int:
    """How long the whole search may run: its waves of parallel trials, each up to one job timeout."""
    waves = -(-config["tuning_max_jobs"] // config["tuning_max_parallel_jobs"])
    return waves * job_timeout_seconds


def tuning_config(config: dict[str, Any], objective: dict[str, str], job_timeout_seconds: int = 3600) -> dict[str, Any]:
    """HyperParameterTuningJobConfig for the configured strategy, budget and ranges."""
    strategy = config["tuning_strategy"]
    if strategy not in ("Bayesian", "Random", "Grid", "Hyperband"):
        raise InvalidPipelineSetting(f"tuning_strategy {strategy!r} must be Bayesian, Random, Grid or Hyperband.")
    ranges = config["tuning_ranges"]
    kinds = ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")
    if set(ranges) - set(kinds) or not all(isinstance(ranges.get(k, []), list) for k in kinds):
        raise InvalidPipelineSetting(f"tuning_ranges must be an object with list members {list(kinds)}.")
    for kind in kinds:
        needed = {"Name", "Values"} if kind == "CategoricalParameterRanges" else {"Name", "MinValue", "MaxValue"}
        for entry in ranges.get(kind, []):
            if not isinstance(entry, dict) or not needed <= set(entry):
                raise InvalidPipelineSetting(
                    f"Each of tuning_ranges.{kind} needs {sorted(needed)} (SageMaker's ParameterRanges shape); "
                    f"got {json.dumps(entry)}."
                )
    if config["tuning_enabled"] and not any(ranges.get(k) for k in kinds):
        raise InvalidPipelineSetting("tuning_enabled is true but tuning_ranges is empty; add ranges or disable tuning.")
    if strategy == "Grid" and ranges.get("ContinuousParameterRanges"):
        raise InvalidPipelineSetting("Grid search takes only integer and categorical ranges; remove the continuous ones.")
    result: dict[str, Any] = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": objective,
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": config["tuning_max_jobs"],
            "MaxParallelTrainingJobs": config["tuning_max_parallel_jobs"],
            "MaxRuntimeInSeconds": tuning_seconds(config, job_timeout_seconds),
        },
        "ParameterRanges": {k: ranges.get(k, []) for k in kinds},
        # Hyperband and Grid do their own scheduling; SageMaker rejects early stopping with them.
        "TrainingJobEarlyStoppingType": "Off" if strategy in ("Hyperband", "Grid") else "Auto",
        "RandomSeed": config["tuning_random_seed"],
    }
    if strategy == "Hyperband":
        rounds = int(config["hyperparameters"].get("num_round", "100"))
        result["StrategyConfig"] = {"HyperbandStrategyConfig": {"MinResource": max(1, rounds // 27), "MaxResource": rounds}}
    return result


def job_names(execution_name: str, execution_arn: str) -> dict[str, str]:
    """Unique, valid SageMaker names per step: <execution stem>-<hash of the execution ARN>-<step>."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", execution_name).strip("-") or "run"
    digest = hashlib.sha256(execution_arn.encode()).hexdigest()[:8]
    names = {}
    for step in JOB_STEPS:
        limit = NAME_LIMITS.get(step, 63)
        short = {"endpoint-config": "epc", "preprocess": "prep", "preprocess-statistics": "prep-stats",
                 "preprocess-transform": "prep-xform", "transform": "xform", "champion-transform": "chxform",
                 "champion-evaluate": "cheval"}.get(step, step)
        room = limit - len(short) - len(digest) - 2
        names[step.replace("-", "_")] = f"{stem[:room].rstrip('-')}-{digest}-{short}"
    return names


def candidate_job_names(execution_name: str, execution_arn: str, index: int, name: str) -> dict[str, str]:
    """A candidate's tuning, training and evaluation job names: <stem>-<digest>-<index><slug>-<step>, the
    index keeping two names apart whatever their slugs; within SageMaker's limits (tuning: 32)."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", execution_name).strip("-") or "run"
    digest = hashlib.sha256(execution_arn.encode()).hexdigest()[:8]
    tag = f"c{index}-{candidate_rules.slug(name)}"
    names = {}
    for step in CANDIDATE_STEPS:
        short = {"tuning": "hpo", "training": "train", "evaluate": "eval"}[step]
        if step == "tuning":  # 32 characters: no room for the execution's name
            names[step] = f"{digest}-{tag[:32 - len(digest) - len(short) - 2].rstrip('-')}-{short}"
            continue
        room = 63 - len(short) - len(digest) - 3 - min(len(tag), 24)
        names[step] = f"{stem[:max(room, 1)].rstrip('-')}-{digest}-{tag[:24].rstrip('-')}-{short}"
    return names


def deployment_config(instance_count: int, rollback_alarms: list[str]) -> dict[str, Any]:
    """Blue/green: canary shifting on a fleet of two or more, all at once with a baking period otherwise."""
    if instance_count >= 2:
        routing = {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            "WaitIntervalInSeconds": 300,
        }
    else:
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": 300,  # the baking period before the old fleet is removed
            "MaximumExecutionTimeoutInSeconds": 1800,
        }
    }
    if rollback_alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in rollback_alarms]}
    return config


def build_plan(
    defaults: dict[str, Any],
    config: dict[str, Any],
    execution_name: str,
    execution_arn: str,
    read_object: Callable[[str, str], tuple[bytes, bool]],
    list_csv_keys: Callable[[str, str], list[str]],
    data_bucket: str,
    rollback_alarms: list[str],
    endpoint_instance_count: int = 1,
    endpoint_name: str = "ml-pipeline-endpoint",
    job_timeout_seconds: int = 3600,
) -> dict[str, Any]:
    """The pure core: everything the state machine needs, or a named PipelineInputError."""
    check_settings(defaults, config)
    # An execution's hyperparameters add to or replace the configured ones key by key (the state
    # machine's JsonMerge is shallow, so without this a partial object would drop num_round).
    config = {**config, "hyperparameters": {**defaults["hyperparameters"], **config["hyperparameters"]}}
    bucket, key = parse_s3_uri(config.get("input_s3_uri"))
    keys = list_csv_keys(bucket, key) if key.endswith("/") else [key]
    if not keys:
        raise InputObjectNotFound(f"No .csv objects under s3://{bucket}/{key}. Upload the CSV there, or fix input_s3_uri.")
    first = f"s3://{bucket}/{keys[0]}"
    data, truncated = read_object(bucket, keys[0])
    info = inspect_csv(data, config["target_column"], first, truncated)
    complete = not truncated and len(keys) == 1  # counts are the whole input's, not a sample's
    if info["rows"] < MIN_ROWS and complete:
        raise TooFewRows(
            f"{first} has {info['rows']} data rows; the pipeline needs at least {MIN_ROWS} to split "
            "train/validation/test. Upload more data."
        )
    target = info["target"]
    decision = infer_problem_type(config["problem_type"], target, config["target_column"], first)
    problem, num_class = decision.problem_type, (decision.num_classes if decision.problem_type == "multiclass" else None)
    if problem == "multiclass" and not complete:
        # num_class must count every class preprocess.py will see; a sample could miss some.
        raise UnusableTarget(
            f"A multiclass target needs its classes counted over the whole input, but only the first "
            f"{MAX_READ_BYTES // 2**20} MiB of {first} ({len(keys)} object(s)) were read. Give one CSV under "
            f"{MAX_READ_BYTES // 2**20} MiB, or set problem_type explicitly to regression or binary if that fits."
        )
    if complete:
        try:
            rules.check_labelled_rows(target.labelled, target.missing, config["target_column"], first)
            if problem != "regression":
                rules.check_class_sizes({label: sum(target.spellings[key].values())
                                         for key, label in zip(decision.keys, decision.labels)}, config["target_column"])
        except rules.InsufficientData as err:
            raise InsufficientData(str(err)) from None
    quality = quality_plan(config, problem)
    notes = list(decision.notes) + info["warnings"]
    if target.missing:
        notes.append(f"{target.missing} of {target.rows} rows of {first} have no value in target "
                     f"{config['target_column']!r}; preprocessing drops them.")

    names = job_names(execution_name, execution_arn)
    run_key = f"runs/{names['model'].rsplit('-', 1)[0]}/"
    run = f"s3://{data_bucket}/{run_key}"
    candidates = [
        candidate_plan(config, candidate, index, problem, num_class, execution_name, execution_arn, run,
                       f"{data_bucket}/{run_key}", job_timeout_seconds)
        for index, candidate in enumerate(candidate_rules.check_candidates(config["candidates"]))
    ]
    champion_key = f"champion/{endpoint_name}/evaluation.json"
    input_prefix = f"s3://{bucket}/{key}"
    return {
        "config": config,
        "problem_type": problem,
        "num_class": num_class,
        "dataset": {"uri": input_prefix, "objects": len(keys), "columns": info["columns"], "rows_checked": info["rows"]},
        # the models that compete: the fan-out Map runs one iteration per entry
        "candidates": candidates,
        "endpoint_name": endpoint_name,
        "quality": quality,
        "target": {"column": config["target_column"], "problem_type": problem,
                   "classes": list(decision.labels) or None},
        # What a person should know about this input (problem type read from integers, spellings
        # merged, rows without a target): the run summary prints them.
        "notes": notes,
        "job_names": names,
        "paths": {
            "input": input_prefix,
            "run": run,
            "train": run + "processed/train/",
            "validation": run + "processed/validation/",
            "test": run + "processed/test/",
            "batch": run + "processed/batch/",
            "schema": run + "processed/schema/",
            "schema_file": run + "processed/schema/schema.json",
            # the serial inference pipeline's first and last models, written by preprocess
            "featurizer": run + "processed/featurizer/",
            "featurizer_model": run + "processed/featurizer/model.tar.gz",
            "decoder": run + "processed/decoder/",
            "decoder_model": run + "processed/decoder/model.tar.gz",
            "leaderboard": run + "leaderboard.json",
            "transform_output": run + "batch-predictions/",
            "champion_report": f"s3://{data_bucket}/{champion_key}",
            # the champion's run record, and the champion scored on this run's test split
            "champion_run_key": f"champion/{endpoint_name}/run.json",
            "champion_predictions": run + "champion-scoring/predictions/",
            "champion_evaluation": run + "champion-scoring/evaluation/",
            "champion_evaluation_report": run + "champion-scoring/evaluation/evaluation.json",
            "champion_key": champion_key,
        },
        "deployment_config": deployment_config(endpoint_instance_count, rollback_alarms),
        "approval": approval_plan(config),
    }


def xgboost_hyperparameters_for(config: dict[str, Any], candidate: dict[str, Any], problem: str,
                                num_class: int | None) -> tuple[dict[str, str], dict[str, str]]:
    """(hyperparameters, tuning objective) of a built-in XGBoost candidate: the pipeline's hyperparameters,
    the candidate's over them, and the objective the problem type needs."""
    objective, eval_metric, tuning_metric, tuning_direction = XGBOOST_SETUP[problem]
    values = {**config["hyperparameters"], **candidate.get("hyperparameters", {})}
    requested_objective = values.get("objective")
    if requested_objective is not None:
        if requested_objective.strip() not in FITTING_OBJECTIVES[problem]:
            raise IncompatibleObjective(
                f"hyperparameters.objective {requested_objective!r} does not fit this "
                f"{problem} problem (target {config['target_column']!r}, candidate {candidate['name']!r}); use one of {list(FITTING_OBJECTIVES[problem])}, "
                f"or leave it out ({objective}).")
        objective = requested_objective.strip()
    hyperparameters = {**values, "objective": objective, "eval_metric": eval_metric}
    if num_class:
        hyperparameters["num_class"] = str(num_class)
    return hyperparameters, {"MetricName": tuning_metric, "Type": tuning_direction}


def candidate_plan(config: dict[str, Any], candidate: dict[str, Any], index: int, problem: str, num_class: int | None,
                   execution_name: str, execution_arn: str, run: str, run_source: str,
                   job_timeout_seconds: int) -> dict[str, Any]:
    """One competing model: its hyperparameters, search, job names and where its outputs go."""
    family, name = candidate["family"], candidate["name"]
    enabled = candidate.get("tuning_enabled", config["tuning_enabled"])
    if family == "xgboost":
        hyperparameters, objective = xgboost_hyperparameters_for(config, candidate, problem, num_class)
        ranges = candidate.get("tuning_ranges", config["tuning_ranges"])
    else:
        hyperparameters = {**candidate_rules.random_forest_hyperparameters(), **candidate.get("hyperparameters", {}),
                           # the script is told the problem, not left to guess it from the labels
                           "problem_type": problem, "num_class": str(num_class or 0)}
        metric, direction = RANDOM_FOREST_OBJECTIVE[problem]
        objective = {"MetricName": metric, "Type": direction}
        ranges = candidate.get("tuning_ranges", candidate_rules.random_forest_ranges())
    own = {**config, "tuning_enabled": enabled, "tuning_ranges": ranges, "hyperparameters": hyperparameters}
    tuning = tuning_config(own, objective, job_timeout_seconds)
    if family == "xgboost":
        check_hyperparameters(hyperparameters, tuning["ParameterRanges"], problem)  # after the ranges' shape is checked
    else:
        # what the user chose (defaults and the candidate's values), not what the pipeline adds
        chosen = {k: v for k, v in hyperparameters.items() if k not in candidate_rules.PIPELINE_SET}
        candidate_rules.check_random_forest({**chosen, **candidate.get("hyperparameters", {})}, tuning["ParameterRanges"], name)
    tuned = {r["Name"] for kind in tuning["ParameterRanges"].values() for r in kind}
    folder = f"candidates/{index}-{candidate_rules.slug(name)}/"
    where = run + folder
    return {
        "name": name,
        "family": family,
        "index": index,
        "tuning_enabled": enabled,
        "hyperparameters": hyperparameters,
        # Tuned ranges are not static: SageMaker rejects a parameter that is both.
        "static_hyperparameters": {k: v for k, v in hyperparameters.items() if k not in tuned},
        "tuning_config": tuning,
        # The tuning state's own timeout: the whole search plus a margin to stop it.
        "tuning_timeout_seconds": tuning_seconds(own, job_timeout_seconds) + 900,
        "job_names": candidate_job_names(execution_name, execution_arn, index, name),
        "paths": {
            "tuning_output": where + "tuning/",
            "model_output": where + "model/",
            "evaluation": where + "evaluation/",
            "evaluation_report": where + "evaluation/evaluation.json",
            "explainability": where + "evaluation/explainability.json",
            # CopyObject's "bucket/key" form, for recording this model as the champion if it wins
            "evaluation_copy_source": f"{run_source}{folder}evaluation/evaluation.json",
        },
    }


def approval_plan(config: dict[str, Any]) -> dict[str, Any]:
    """How the winner is registered and whether the execution waits for a reviewer: manual mode
    registers it PendingManualApproval whatever model_approval_status says."""
    manual = config["approval_mode"] == "manual"
    return {
        "mode": config["approval_mode"],
        "registration_status": "PendingManualApproval" if manual else config["model_approval_status"],
        "timeout_seconds": config["approval_timeout_seconds"],
    }


# ---------------------------------------------------------------- AWS glue


def _s3_reader(client: Any) -> Callable[[str, str], tuple[bytes, bool]]:
    def read(bucket: str, key: str) -> tuple[bytes, bool]:
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                raise InputObjectNotFound(
                    f"s3://{bucket}/{key} does not exist. Upload the CSV there, or fix input_s3_uri."
                ) from None
            raise
        size = head["ContentLength"]
        if size == 0:
            return b"", False
        truncated = size > MAX_READ_BYTES
        extra = {"Range": f"bytes=0-{MAX_READ_BYTES - 1}"} if truncated else {}
        return client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read(), truncated

    return read


def _s3_lister(client: Any) -> Callable[[str, str], list[str]]:
    def list_csv(bucket: str, prefix: str) -> list[str]:
        keys = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].lower().endswith(".csv") and o["Size"] > 0]
        return sorted(keys)

    return list_csv


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    client = boto3.client("s3")
    alarms = [a for a in os.environ.get("ROLLBACK_ALARMS", "").split(",") if a]
    return build_plan(
        defaults=event["defaults"],
        config=event["config"],
        execution_name=event["execution_name"],
        execution_arn=event["execution_arn"],
        read_object=_s3_reader(client),
        list_csv_keys=_s3_lister(client),
        data_bucket=os.environ["DATA_BUCKET"],
        rollback_alarms=alarms,
        endpoint_instance_count=int(os.environ.get("ENDPOINT_INSTANCE_COUNT", "1")),
        endpoint_name=os.environ.get("ENDPOINT_NAME", "ml-pipeline-endpoint"),
        job_timeout_seconds=int(os.environ.get("JOB_TIMEOUT_SECONDS", "3600")),
    )
