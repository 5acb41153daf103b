"""The pipeline's typed configuration.

Defaults live in cdk.json under the "pipeline" context key; `cdk deploy -c pipeline.<key>=<value>`
overrides one per deploy, and every key can be overridden again per execution through the execution
input (the state machine merges the input over these defaults before validating).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from processing_scripts import candidate_rules
from processing_scripts import problem_rules as rules

PROBLEM_TYPES = rules.PROBLEM_TYPES
TUNING_STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
APPROVAL_MODES = ("auto", "manual")
MODEL_APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
# The metrics evaluate.py reports; the shared rules own the table (the validation Lambda checks at
# run time that the metric fits the problem type), so the app checks against the same one at synth.
QUALITY_METRICS = set(rules.ALL_METRICS)
AUTO = rules.AUTO


# Settings that shape resources (the trigger, the endpoint, its alarms, the registry, IAM, timeouts),
# so they are set per deploy only and are not execution-input keys.
DEPLOY_ONLY = (
    "raw_prefix",
    "execution_timeout_seconds",
    "notification_email",
    "endpoint_name",
    "endpoint_instance_count",
    "model_package_group",
    "job_timeout_seconds",
    "max_concurrent_candidates",
    # the monitoring state machine's (stacks/model_monitoring.py): its schedule shapes a rule, and
    # the rest are that machine's own execution defaults, not the training pipeline's
    "monitoring_schedule",
    "monitoring_window_minutes",
    "max_drifted_feature_share",
    "retrain_on_drift",
    # the endpoint config's DataCaptureConfig and the inference trigger and Map (resources)
    "capture_sampling_percentage",
    "inference_prefix",
    "inference_max_concurrency",
    # they shape the state machine (one preprocessing job or three) and the transform task
    "processing_instance_count",
    "transform_instance_count",
)
# Settings of the inference state machine only: its executions override them, the training
# machine's do not take them (inference_defaults / execution_defaults).
INFERENCE_ONLY = (
    "confidence_threshold",
    "max_low_confidence_share",
    "inference_batch_size",
    "capture_report_hours",
)


class ConfigError(ValueError):
    """A pipeline setting in cdk.json or a -c override is invalid."""


def _default_ranges() -> dict[str, Any]:
    # SageMaker's ParameterRanges shape, values as strings (the API wants strings).
    return {
        "IntegerParameterRanges": [
            {"Name": "max_depth", "MinValue": "3", "MaxValue": "8", "ScalingType": "Auto"},
        ],
        "ContinuousParameterRanges": [
            {"Name": "eta", "MinValue": "0.03", "MaxValue": "0.3", "ScalingType": "Logarithmic"},
            {"Name": "min_child_weight", "MinValue": "1", "MaxValue": "8", "ScalingType": "Auto"},
            {"Name": "subsample", "MinValue": "0.6", "MaxValue": "1.0", "ScalingType": "Linear"},
        ],
        "CategoricalParameterRanges": [],
    }


def _default_hyperparameters() -> dict[str, str]:
    return {
        "num_round": "300",
        "max_depth": "5",
        "eta": "0.05",
        "subsample": "0.8",
        "colsample_bytree": "0.8",
        "min_child_weight": "1",
        "early_stopping_rounds": "30",
    }


@dataclass(frozen=True)
class PipelineConfig:
    """Every setting a user may change. Names are the execution-input keys."""

    target_column: str = "rings"
    problem_type: str = "auto"
    # auto: rmse (regression), auc (binary), f1_weighted (multiclass)
    quality_metric: str = AUTO
    # auto: beat the naive baseline on the same test split by problem_rules.AUTO_MARGIN; or a number
    quality_threshold: float | str = AUTO
    # Only deploy when the new model does no worse than the deployed champion.
    no_worse_than_champion: bool = True
    raw_prefix: str = "raw/"
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    processing_instance_type: str = "ml.m5.large"
    # >= 2: preprocessing sharded over that many instances (stacks/preprocessing.py: statistics, merge, transform)
    processing_instance_count: int = 1
    training_instance_type: str = "ml.m5.large"
    # >= 2: distributed XGBoost (preprocess writes one train file per host; the channel is ShardedByS3Key)
    training_instance_count: int = 1
    hyperparameters: dict[str, str] = field(default_factory=_default_hyperparameters)
    tuning_enabled: bool = True
    tuning_strategy: str = "Bayesian"
    tuning_max_jobs: int = 8
    tuning_max_parallel_jobs: int = 2
    tuning_ranges: dict[str, Any] = field(default_factory=_default_ranges)
    # Seeds the search (SageMaker's RandomSeed), so re-running on the same data finds the same model.
    tuning_random_seed: int = 42
    # The models that compete (processing_scripts/candidate_rules.py): by default the built-in XGBoost
    # (tuned with the settings above) and a scikit-learn Random Forest (script mode).
    candidates: list[dict[str, Any]] = field(default_factory=candidate_rules.default_candidates)
    # How many candidates train at once (the fan-out Map's MaxConcurrency).
    max_concurrent_candidates: int = 2
    transform_instance_type: str = "ml.m5.large"
    transform_instance_count: int = 1  # batch transform spreads the batch objects over the instances
    endpoint_name: str = "ml-pipeline-endpoint"
    endpoint_instance_type: str = "ml.m5.large"
    endpoint_instance_count: int = 1
    model_package_group: str = "ml-pipeline-models"
    model_approval_status: str = "Approved"
    # auto: registered with model_approval_status and deployed at once; manual: registered
    # PendingManualApproval, the execution waits for an approval (Step Functions or the registry).
    approval_mode: str = "auto"
    approval_timeout_seconds: int = 24 * 3600  # a manual approval not given by then rejects the model
    job_timeout_seconds: int = 3600
    execution_timeout_seconds: int = 6 * 3600
    notification_email: str = ""
    # Monitoring (stacks/model_monitoring.py): an EventBridge schedule expression, rate(...) or cron(...)
    monitoring_schedule: str = "rate(1 hour)"
    # the captured traffic one monitoring run analyses: the window ending when it starts
    monitoring_window_minutes: int = 60
    # retrain when the share of drifted features is above this (or live quality fell below the gate)
    max_drifted_feature_share: float = 0.2
    # start the training state machine on the retraining set when drift or degraded quality is found
    retrain_on_drift: bool = True
    # Data capture on the endpoint (DataCaptureConfig): the share of requests captured, input and
    # output, to s3://<bucket>/capture/; 0 turns capture off.
    capture_sampling_percentage: int = 100
    # The inference state machine: records dropped under inference_prefix are scored through the
    # endpoint in batches of inference_batch_size, inference_max_concurrency at a time; a classifier's
    # record whose top probability is below confidence_threshold (a regression's record outside the
    # training range) is low-confidence, and more than max_low_confidence_share of them fails the run.
    inference_prefix: str = "inference/"
    inference_batch_size: int = 100
    inference_max_concurrency: int = 4
    confidence_threshold: float = 0.7
    max_low_confidence_share: float = 0.0
    # Each inference run's capture report draws the endpoint's traffic of the last this many hours.
    capture_report_hours: int = 24

    @classmethod
    def from_context(cls, context: dict[str, Any] | None) -> PipelineConfig:
        """Build from the "pipeline" context dict; values given as strings by -c are coerced."""
        context = dict(context or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(context) - set(known))
        if unknown:
            raise ConfigError(f"unknown pipeline setting(s) {unknown}; known settings: {sorted(known)}")
        values = {}
        for name, value in context.items():
            default = getattr(cls(), name)
            values[name] = _coerce(name, value, default)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(f"problem_type {self.problem_type!r} is not one of {PROBLEM_TYPES}")
        if self.quality_metric != AUTO and self.quality_metric not in QUALITY_METRICS:
            raise ConfigError(f"quality_metric {self.quality_metric!r} is not one of {sorted(QUALITY_METRICS)} or 'auto'")
        if self.quality_threshold != AUTO:
            if isinstance(self.quality_threshold, bool) or not isinstance(self.quality_threshold, (int, float)):
                raise ConfigError(f"quality_threshold {self.quality_threshold!r} must be a number or 'auto'")
            # With an explicit metric the range is known now; with auto, validation checks it per run.
            why = rules.threshold_problem(self.quality_metric, self.quality_threshold) if self.quality_metric != AUTO else None
            if why:
                raise ConfigError(why)
        if self.tuning_strategy not in TUNING_STRATEGIES:
            raise ConfigError(f"tuning_strategy {self.tuning_strategy!r} is not one of {TUNING_STRATEGIES}")
        if not 0 < self.validation_fraction + self.test_fraction < 0.9:
            raise ConfigError("validation_fraction + test_fraction must be between 0 and 0.9")
        if not 1 <= self.tuning_max_parallel_jobs <= self.tuning_max_jobs:
            raise ConfigError("tuning_max_parallel_jobs must be between 1 and tuning_max_jobs")
        if self.approval_mode not in APPROVAL_MODES:
            raise ConfigError(f"approval_mode {self.approval_mode!r} is not one of {APPROVAL_MODES}")
        if self.model_approval_status not in MODEL_APPROVAL_STATUSES:
            raise ConfigError(f"model_approval_status {self.model_approval_status!r} is not one of {MODEL_APPROVAL_STATUSES}")
        if not 1 <= self.approval_timeout_seconds <= 365 * 24 * 3600:
            raise ConfigError("approval_timeout_seconds must be between 1 and one year (Step Functions' task limit)")
        try:
            candidate_rules.check_candidates(self.candidates)
        except candidate_rules.CandidateError as err:
            raise ConfigError(f"{type(err).__name__}: {err}") from None
        if not 1 <= self.max_concurrent_candidates <= 40:
            raise ConfigError("max_concurrent_candidates must be between 1 and 40 (Step Functions' inline Map limit)")
        if min(self.training_instance_count, self.endpoint_instance_count, self.processing_instance_count,
               self.transform_instance_count) < 1:
            raise ConfigError("instance counts must be at least 1")
        if not self.raw_prefix.endswith("/") or self.raw_prefix.startswith("/"):
            raise ConfigError(f"raw_prefix {self.raw_prefix!r} must look like 'raw/' (no leading slash, trailing slash)")
        if not re.fullmatch(r"(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))",
                            self.monitoring_schedule.strip()):
            raise ConfigError(f"monitoring_schedule {self.monitoring_schedule!r} must be an EventBridge schedule "
                              "expression: rate(1 hour), rate(30 minutes) or cron(0 * * * ? *)")
        if not 5 <= self.monitoring_window_minutes <= 31 * 24 * 60:
            raise ConfigError("monitoring_window_minutes must be between 5 and 44640 (31 days)")
        if not 0 <= self.max_drifted_feature_share < 1:
            raise ConfigError("max_drifted_feature_share must be at least 0 and below 1 (a share of the features)")
        if not 0 <= self.capture_sampling_percentage <= 100:
            raise ConfigError(f"capture_sampling_percentage {self.capture_sampling_percentage} must be 0 (off) to 100")
        if not self.inference_prefix.endswith("/") or self.inference_prefix.startswith("/") \
                or self.inference_prefix == self.raw_prefix:
            raise ConfigError(f"inference_prefix {self.inference_prefix!r} must look like 'inference/' and differ from "
                              f"raw_prefix {self.raw_prefix!r}")
        if not 1 <= self.inference_batch_size <= 1000 or not 1 <= self.inference_max_concurrency <= 40:
            raise ConfigError("inference_batch_size must be 1-1000 records and inference_max_concurrency 1-40")
        if not 1 <= self.capture_report_hours <= 8760:
            raise ConfigError("capture_report_hours must be 1-8760 (a year)")
        if not 0 <= self.confidence_threshold <= 1 or not 0 <= self.max_low_confidence_share <= 1:
            raise ConfigError("confidence_threshold and max_low_confidence_share must be between 0 and 1")
        if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", self.endpoint_name):
            raise ConfigError(f"endpoint_name {self.endpoint_name!r} must be 1-63 letters, digits and hyphens (SageMaker's rule)")

    def execution_defaults(self) -> dict[str, Any]:
        """What the state machine's first state merges the execution input over."""
        values = asdict(self)
        for deploy_only in (*DEPLOY_ONLY, *INFERENCE_ONLY):
            values.pop(deploy_only)
        return values

    def inference_defaults(self) -> dict[str, Any]:
        """What the inference state machine merges its execution input over."""
        return {name: getattr(self, name) for name in INFERENCE_ONLY}


def _coerce(name: str, value: Any, default: Any) -> Any:
    if name == "quality_threshold":  # "auto" or a number
        if not isinstance(value, str) or value == AUTO:
            return value
        try:
            return float(value)
        except ValueError as exc:
            raise ConfigError(f"pipeline setting {name}={value!r} must be a number or 'auto'") from exc
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"pipeline setting {name}={value!r} is not a valid {type(default).__name__}") from exc
