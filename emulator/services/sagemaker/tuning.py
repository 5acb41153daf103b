"""Hyperparameter tuning jobs on optuna: each trial is a real local training job.

Strategy -> optuna:
  Bayesian  -> TPESampler(seed=RandomSeed)             Random -> RandomSampler(seed)
  Grid      -> GridSampler over categorical and integer values (continuous ranges are refused)
  Hyperband -> RandomSampler + HyperbandPruner(MinResource, MaxResource); the resource is the
               boosting round, read from the trial's log as it trains
  TrainingJobEarlyStoppingType Auto (not Hyperband) -> the median rule on the same per-round values
(search.py holds the ranges, samplers and rule.)

``TuningBackend`` is the API (Create/Describe/Stop/List*). One monitor thread per tuning job asks
optuna for trials, starts up to MaxParallelTrainingJobs of them at a time (never more than the
machine's cores), reads each running job's per-round objective, stops the ones the rule rejects and
tells optuna every outcome in trial order, so the same seed proposes the same trials; trials are
started, watched and stopped through the jobs backend's public API. Trial jobs are named like AWS names them:
``<tuning job>-<NNN>-<8 hex>``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from emulator.aws.clock import utcnow
from emulator.services.sagemaker import exceptions as exc
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.jobs import RUNNING, TERMINAL, JobsBackend, wait_for
from emulator.services.sagemaker.listing import filter_sort, page
from emulator.services.sagemaker.metrics import builtin_metric_definitions, metric_series
from emulator.services.sagemaker.search import MedianRule, ParameterRange, make_pruner, make_sampler, parse_ranges
from emulator.storage.records import owner_dead, without_owner

log = logging.getLogger("emulator.services.sagemaker.tuning")

OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"
POLL_SECONDS = 0.02  # the next trial starts this soon after one ends


def _short_number(text: str) -> str:
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class Trial:
    number: int
    optuna_trial: optuna.Trial
    job_name: str
    tuned: dict[str, str]
    reported: int = 0  # per-round values already reported to optuna
    log_offset: int = 0  # bytes of the job's stdout already read
    pruned: bool = False
    summary: dict = field(default_factory=dict)
    values: list[float] = field(default_factory=list)  # the objective per round, as the job printed it
    # the completed trials' per-round values when this trial was asked: what early stopping compares
    # it with, fixed then, so parallel trials prune the same way whichever finishes first
    reference: list[list[float]] = field(default_factory=list)
    ended: bool = False
    told: bool = False


class TuningJob:
    """One HyperParameterTuningJob resource; ``start`` runs the search in a background thread."""

    def __init__(self, context: SageMakerContext, jobs: JobsBackend, request: dict, ranges: list[ParameterRange],
                 metric_definitions: list[dict], save: Callable[[TuningJob], None]):
        self.jobs = jobs
        self.save = save  # the backend's record writer, called whenever the answers change
        self.request = request
        self.name: str = request["HyperParameterTuningJobName"]
        self.arn: str = context.arn("hyper-parameter-tuning-job", self.name)
        self.config: dict = request["HyperParameterTuningJobConfig"]
        self.definition: dict = request["TrainingJobDefinition"]
        self.ranges = ranges
        self.metric_definitions = metric_definitions
        objective = self.config["HyperParameterTuningJobObjective"]
        self.objective_name: str = objective["MetricName"]
        self.objective_type: str = objective["Type"]
        self.status = "InProgress"
        self.failure_reason: str | None = None
        self.creation_time = utcnow()
        self.last_modified_time = self.creation_time
        self.end_time: dt.datetime | None = None
        self.trials: list[Trial] = []
        self.not_improving = 0
        self.objective_definition = [d for d in metric_definitions if d["Name"] == self.objective_name]
        rule = make_pruner(self.config, _int_or_none(self.definition.get("StaticHyperParameters", {}).get("num_round")))
        self.early_stopping = rule if isinstance(rule, MedianRule) else None
        self.hyperband = rule if isinstance(rule, optuna.pruners.BasePruner) else None  # optuna's own, in its order
        self._dirty = True  # something to save since the last save
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    # -- creation ----------------------------------------------------------------------------
    @classmethod
    def create(cls, context: SageMakerContext, jobs: JobsBackend, request: dict,
               save: Callable[[TuningJob], None]) -> TuningJob:
        if "TrainingJobDefinition" not in request:
            raise exc.ValidationException("TrainingJobDefinition is required locally (TrainingJobDefinitions with several algorithms is not supported)")
        if "Autotune" in request:
            raise exc.ValidationException("Autotune is not supported by the local emulator; give the strategy and ranges")
        if "WarmStartConfig" in request:
            raise exc.ValidationException("WarmStartConfig is not supported by the local emulator")
        config = request["HyperParameterTuningJobConfig"]
        definition = request["TrainingJobDefinition"]
        ranges = parse_ranges(config.get("ParameterRanges") or definition.get("HyperParameterRanges") or {})
        static = definition.get("StaticHyperParameters", {})
        clash = sorted(set(static) & {r.name for r in ranges})
        if clash:
            raise exc.ValidationException(f"Hyperparameters {clash} are both static and tuned; a hyperparameter can be one or the other")
        algorithm = definition["AlgorithmSpecification"]
        if "TrainingImage" not in algorithm:
            raise exc.ValidationException("AlgorithmSpecification.TrainingImage is required locally")
        launcher = context.resolve_image(algorithm["TrainingImage"])
        definitions = list(algorithm.get("MetricDefinitions") or builtin_metric_definitions(launcher.kind))
        metric = config["HyperParameterTuningJobObjective"]["MetricName"]
        if metric not in {d["Name"] for d in definitions}:
            raise exc.ValidationException(
                f"The objective metric for the hyperparameter tuning job, [{metric}], isn't valid for the "
                f"[{algorithm['TrainingImage']}] algorithm. Choose a valid objective metric."
            )
        if config["Strategy"] == "Grid":
            size = math.prod(len(r.grid()) for r in ranges)
            if size > 10_000:
                raise exc.ValidationException(f"The grid has {size} combinations; Grid search supports at most 10000")
        return cls(context, jobs, request, ranges, definitions, save)

    @property
    def max_jobs(self) -> int:
        limit = self.config["ResourceLimits"].get("MaxNumberOfTrainingJobs")
        if self.config["Strategy"] == "Grid":
            size = math.prod(len(r.grid()) for r in self.ranges)
            return min(size, limit) if limit else size
        return limit or 1

    @property
    def max_parallel(self) -> int:
        # each trial is a real process: more at once than cores only slows every trial down
        return max(1, min(self.config["ResourceLimits"]["MaxParallelTrainingJobs"], os.cpu_count() or 1))

    def start(self) -> None:
        log.debug("tuning job %s started: %s, %d trial(s), %d at a time, objective %s %s",
                 self.name, self.config["Strategy"], self.max_jobs, self.max_parallel, self.objective_type, self.objective_name)
        self.thread = threading.Thread(target=self._run, name=f"tuning-{self.name}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        with self._lock:  # checked and set together: a search ending in between stays ended
            if self.status in TERMINAL:
                raise exc.JobNotStoppable(self.name, self.status, "hyperparameter tuning job")
            self.status = "Stopping"
            self._touch()
        self._stop.set()

    # -- the search --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._search()
        except Exception as error:
            log.exception("tuning job %s: unexpected error", self.name)
            with self._lock:
                self.status, self.failure_reason = "Failed", f"InternalServerError: {error}"
        finally:
            with self._lock:
                self.end_time = utcnow()
                self._touch()
            self._save()
            self.done.set()
            best = self.best_trial()
            log.info("tuning job %s %s%s", self.name, self.status,
                     f": best {best.job_name} {self.objective_name}={best.summary['FinalHyperParameterTuningJobObjectiveMetric']['Value']:g}" if best else "")

    def _search(self) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = self.config.get("RandomSeed")
        study = optuna.create_study(
            direction="minimize" if self.objective_type == "Minimize" else "maximize",
            sampler=make_sampler(self.config["Strategy"], seed, self.ranges),
            pruner=self.hyperband or optuna.pruners.NopPruner(),
            study_name=self.name,
        )
        deadline = self.config["ResourceLimits"].get("MaxRuntimeInSeconds")
        started = time.monotonic()
        running: list[Trial] = []
        while True:
            out_of_time = deadline is not None and time.monotonic() - started > deadline
            stopping = self._stop.is_set() or out_of_time or self._criteria_met()
            # Reproducible with parallel trials: trial k is asked once trial k - P has ended, and
            # only then are trials 1..k-P told to optuna, in order. So each ask sees the same told
            # trials and the same pending ones, whichever job happens to finish first.
            while not stopping and len(self.trials) < self.max_jobs and self._may_ask(len(self.trials) + 1):
                self._tell_through(study, len(self.trials) + 1 - self.max_parallel)
                running.append(self._launch(study))
            for trial in list(running):
                if stopping:
                    self._stop_job(trial)
                if self._watch(trial):
                    running.remove(trial)
            if self._dirty:
                self._save()
                self._dirty = False
            if not running and (stopping or len(self.trials) >= self.max_jobs):
                break
            time.sleep(POLL_SECONDS)
        self._tell_through(study, len(self.trials))
        with self._lock:
            if self._stop.is_set():
                self.status = "Stopped"
            elif not any(t.summary.get("ObjectiveStatus") == "Succeeded" for t in self.trials):
                self.status = "Failed"
                reasons = {t.summary.get("FailureReason") for t in self.trials if t.summary.get("FailureReason")}
                self.failure_reason = "No training job succeeded. " + "; ".join(sorted(r for r in reasons if r))[:900]
            else:
                self.status = "Completed"

    def _launch(self, study: optuna.Study) -> Trial:
        optuna_trial = study.ask()
        tuned = {r.name: r.suggest(optuna_trial) for r in self.ranges}
        number = len(self.trials) + 1
        job_name = f"{self.name}-{number:03d}-{secrets.token_hex(4)}"
        definition = self.definition
        hyperparameters = {**definition.get("StaticHyperParameters", {}), **tuned, OBJECTIVE_HYPERPARAMETER: self.objective_name}
        request = {
            "TrainingJobName": job_name,
            "AlgorithmSpecification": {k: v for k, v in definition["AlgorithmSpecification"].items() if k != "AlgorithmName"},
            "RoleArn": definition["RoleArn"],
            "InputDataConfig": definition.get("InputDataConfig", []),
            "OutputDataConfig": definition["OutputDataConfig"],
            "ResourceConfig": definition.get("ResourceConfig", {}),
            "StoppingCondition": definition["StoppingCondition"],
            "HyperParameters": hyperparameters,
        }
        for key in ("VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining", "CheckpointConfig", "RetryStrategy", "Environment"):
            if key in definition:
                request[key] = definition[key]
        trial = Trial(number, optuna_trial, job_name, tuned,
                      reference=[list(t.values) for t in self.trials if t.told and not t.pruned and t.summary.get("ObjectiveStatus") == "Succeeded"])
        # parallel trials share the cores instead of each starting one thread per core
        threads = str(max(1, (os.cpu_count() or 1) // self.max_parallel))
        self.jobs.start_training_job(request, tuning_job_arn=self.arn, process_env={"OMP_NUM_THREADS": threads})
        with self._lock:
            self.trials.append(trial)
            trial.summary = self._summary(trial)
            self._touch()
        self._dirty = True
        return trial

    def _may_ask(self, number: int) -> bool:
        """Trial ``number`` may start once every trial up to ``number - P`` has ended."""
        return all(t.ended for t in self.trials[: max(0, number - self.max_parallel)])

    def _watch(self, trial: Trial) -> bool:
        """Read new per-round values, stop the job early if the rule says so; True once it ended."""
        job = self.jobs.training_job(trial.job_name)
        if job.process is not None and not trial.pruned:
            lines, trial.log_offset = job.process.read_new_lines(trial.log_offset)
            values = metric_series("\n".join(lines), self.objective_definition).get(self.objective_name, []) if lines else []
            for value in values:
                trial.values.append(value)
                if self.hyperband is not None:
                    trial.optuna_trial.report(value, len(trial.values) - 1)
                if self._should_stop_early(trial):
                    trial.pruned = True
                    log.debug("tuning job %s trial %d (%s): stopped early at round %d (%s=%g)",
                             self.name, trial.number, trial.job_name, len(trial.values) - 1, self.objective_name, value)
                    self._stop_job(trial)
                    break
        if job.status not in TERMINAL or not job.done.is_set():
            if trial.summary.get("TrainingJobStatus") != job.status or trial.summary.get("TrainingStartTime") != job.start_time:
                with self._lock:
                    trial.summary = self._summary(trial)
                self._dirty = True
            return False
        self._dirty = True
        with self._lock:
            trial.summary = self._summary(trial)
            trial.ended = True
            self._touch()
        value = trial.summary.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
        log.info("trial %d/%d %s%s  %s", trial.number, self.max_jobs,
                 f"{self.objective_name}={value:.4g}" if value is not None else "no objective",
                 " (stopped early)" if trial.pruned else (f" ({job.status})" if job.status != "Completed" else ""),
                 " ".join(f"{k}={_short_number(v)}" for k, v in sorted(trial.tuned.items())))
        return True

    def _should_stop_early(self, trial: Trial) -> bool:
        """The median rule (optuna's MedianPruner, applied to the trial's fixed reference): stop when
        the trial's best value so far is worse than the median of the reference trials at this round."""
        if self.hyperband is not None:
            return trial.optuna_trial.should_prune()
        rule = self.early_stopping
        step = len(trial.values) - 1
        if rule is None or len(trial.reference) < rule.n_startup_trials or step < rule.n_warmup_steps:
            return False
        at_step = [values[step] for values in trial.reference if len(values) > step]
        if not at_step:
            return False
        median = statistics.median(at_step)
        if self.objective_type == "Minimize":
            return min(trial.values) > median
        return max(trial.values) < median

    def _tell_through(self, study: optuna.Study, number: int) -> None:
        """Tell optuna the outcome of every trial up to ``number``, in order (each has ended)."""
        for trial in self.trials[: max(0, number)]:
            if trial.told:
                continue
            value = trial.summary.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
            if trial.pruned:
                study.tell(trial.optuna_trial, state=optuna.trial.TrialState.PRUNED)
            elif trial.summary.get("TrainingJobStatus") == "Completed" and value is not None:
                best_before = self.best_value()
                study.tell(trial.optuna_trial, value)
                improved = best_before is None or (value < best_before if self.objective_type == "Minimize" else value > best_before)
                self.not_improving = 0 if improved else self.not_improving + 1
            else:
                study.tell(trial.optuna_trial, state=optuna.trial.TrialState.FAIL)
            trial.told = True

    def _stop_job(self, trial: Trial) -> None:
        try:
            self.jobs.stop_training_job(TrainingJobName=trial.job_name)
        except exc.JobNotStoppable:
            pass  # it ended on its own meanwhile

    def _criteria_met(self) -> bool:
        criteria = self.config.get("TuningJobCompletionCriteria") or {}
        best = self.best_value()
        target = criteria.get("TargetObjectiveMetricValue")
        reached = best is not None and target is not None and (best <= target if self.objective_type == "Minimize" else best >= target)
        if reached:
            return True
        patience = (criteria.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving")
        return bool(patience) and self.not_improving >= patience

    # -- answers -----------------------------------------------------------------------------
    def _summary(self, trial: Trial) -> dict:
        described = self.jobs.describe_training_job(TrainingJobName=trial.job_name)
        status = described["TrainingJobStatus"]
        out: dict[str, Any] = {
            "TrainingJobName": trial.job_name,
            "TrainingJobArn": described["TrainingJobArn"],
            "TuningJobName": self.name,
            "CreationTime": described["CreationTime"],
            "TrainingJobStatus": status,
            "TunedHyperParameters": dict(trial.tuned),
        }
        for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
            if key in described:
                out[key] = described[key]
        final = {m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])}
        if status in TERMINAL and self.objective_name in final:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = {"Type": self.objective_type, "MetricName": self.objective_name, "Value": final[self.objective_name]}
            out["ObjectiveStatus"] = "Succeeded"
        else:
            out["ObjectiveStatus"] = "Pending" if status not in TERMINAL else "Failed"
        return out

    def _completed(self, exclude: Trial | None = None) -> list[Trial]:
        return [
            t for t in self.trials
            if t is not exclude and t.told and t.summary.get("TrainingJobStatus") == "Completed"
            and "FinalHyperParameterTuningJobObjectiveMetric" in t.summary
        ]

    def best_trial(self, exclude: Trial | None = None) -> Trial | None:
        done = self._completed(exclude)
        if not done:
            return None
        pick = min if self.objective_type == "Minimize" else max
        return pick(done, key=lambda t: t.summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])

    def best_value(self, exclude: Trial | None = None) -> float | None:
        best = self.best_trial(exclude)
        return best.summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] if best else None

    def training_job_summaries(self) -> list[dict]:
        with self._lock:
            return [dict(t.summary) for t in self.trials]

    def describe(self) -> dict:
        with self._lock:
            summaries = [t.summary for t in self.trials]
            statuses = [s.get("TrainingJobStatus") for s in summaries]
            objectives = [s.get("ObjectiveStatus") for s in summaries]
            out: dict[str, Any] = {
                "HyperParameterTuningJobName": self.name,
                "HyperParameterTuningJobArn": self.arn,
                "HyperParameterTuningJobConfig": self.config,
                "TrainingJobDefinition": self.definition,
                "HyperParameterTuningJobStatus": self.status,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time,
                "TrainingJobStatusCounters": {
                    "Completed": statuses.count("Completed"),
                    "InProgress": statuses.count("InProgress"),
                    "RetryableError": 0,
                    "NonRetryableError": statuses.count("Failed"),
                    "Stopped": statuses.count("Stopped"),
                },
                "ObjectiveStatusCounters": {
                    "Succeeded": objectives.count("Succeeded"),
                    "Pending": objectives.count("Pending"),
                    "Failed": objectives.count("Failed"),
                },
                "TuningJobCompletionDetails": {"NumberOfTrainingJobsObjectiveNotImproving": self.not_improving},
            }
            best = self.best_trial()
            if best is not None:
                out["BestTrainingJob"] = dict(best.summary)
            if self.end_time:
                out["HyperParameterTuningEndTime"] = self.end_time
                out["ConsumedResources"] = {"RuntimeInSeconds": max(1, round((self.end_time - self.creation_time).total_seconds()))}
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            return out

    def _touch(self) -> None:
        self.last_modified_time = utcnow()

    def _save(self) -> None:
        self.save(self)


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------
TUNING, TRIALS = "hyper-parameter-tuning-jobs", "hyper-parameter-tuning-job-trials"  # record kinds
_SORT_KEYS: dict[str, Callable[[dict], Any]] = {
    "Name": lambda s: s["TrainingJobName"],
    "CreationTime": lambda s: s["CreationTime"],
    "Status": lambda s: s["TrainingJobStatus"],
    "FinalObjectiveMetricValue": lambda s: s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value", float("nan")),
}


class TuningBackend:
    """Hyperparameter tuning jobs of one local account; trials are the jobs backend's training jobs."""

    def __init__(self, context: SageMakerContext, jobs: JobsBackend):
        self.context = context
        self.jobs = jobs
        self.records = context.records()
        self._lock = threading.RLock()
        self._tuning: dict[str, TuningJob] = {}  # by lower-cased name

    def _save(self, job: TuningJob) -> None:
        self.records.write(TRIALS, job.name, {"TrainingJobSummaries": job.training_job_summaries()})
        self.records.write(TUNING, job.name, job.describe(), owned=True)

    def _live(self, name: str) -> TuningJob | None:
        with self._lock:
            return self._tuning.get(name.lower())

    def _stored(self, name: str) -> dict:
        stored = self.records.read(TUNING, name)
        if stored is None:
            raise exc.ResourceNotFound.for_resource("Hyperparameter tuning job", name)
        if stored.get("HyperParameterTuningJobStatus") in RUNNING and owner_dead(stored):
            stored["HyperParameterTuningJobStatus"] = "Failed"
            stored["FailureReason"] = ("InternalServerError: the emulator process that ran this tuning job exited "
                                       "before it finished; start it again under a new name")
        return without_owner(stored)

    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict:
        name = request["HyperParameterTuningJobName"]
        with self._lock:
            if name.lower() in self._tuning or self.records.exists(TUNING, name):
                arn = self.context.arn("hyper-parameter-tuning-job", name)
                raise exc.ResourceInUse.job_exists(arn, "Hyperparameter tuning job names")
            job = TuningJob.create(self.context, self.jobs, request, self._save)
            self._tuning[name.lower()] = job
            self._save(job)
        job.start()
        return {"HyperParameterTuningJobArn": job.arn}

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict:
        job = self._live(HyperParameterTuningJobName)
        return job.describe() if job is not None else self._stored(HyperParameterTuningJobName)

    def stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict:
        job = self._live(HyperParameterTuningJobName)
        if job is None:
            raise exc.ResourceNotFound.for_resource("Hyperparameter tuning job", HyperParameterTuningJobName)
        job.stop()
        return {}

    def list_training_jobs_for_hyper_parameter_tuning_job(
        self, HyperParameterTuningJobName: str, StatusEquals: str | None = None, SortBy: str = "Name",
        SortOrder: str = "Ascending", MaxResults: int | None = None, NextToken: str | None = None,
    ) -> dict:
        job = self._live(HyperParameterTuningJobName)
        if job is not None:
            summaries = job.training_job_summaries()
        else:
            self._stored(HyperParameterTuningJobName)  # ResourceNotFound
            summaries = (self.records.read(TRIALS, HyperParameterTuningJobName) or {}).get("TrainingJobSummaries", [])
        if StatusEquals:
            summaries = [s for s in summaries if s["TrainingJobStatus"] == StatusEquals]
        if SortBy == "FinalObjectiveMetricValue":
            summaries = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
        summaries.sort(key=_SORT_KEYS[SortBy], reverse=SortOrder == "Descending")
        return page(summaries, NextToken, MaxResults, "TrainingJobSummaries", default_size=10)

    def list_hyper_parameter_tuning_jobs(self, **filters: Any) -> dict:
        with self._lock:
            names = sorted(set(self._tuning) | set(self.records.names(TUNING)))
        summaries = []
        for name in names:
            d = self.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
            summaries.append({k: d.get(k) for k in ("HyperParameterTuningJobName", "HyperParameterTuningJobArn", "HyperParameterTuningJobStatus", "CreationTime", "HyperParameterTuningEndTime", "LastModifiedTime", "TrainingJobStatusCounters", "ObjectiveStatusCounters") if d.get(k) is not None})
            summaries[-1]["Strategy"] = d["HyperParameterTuningJobConfig"]["Strategy"]
        rows = filter_sort(summaries, "HyperParameterTuningJobStatus", "HyperParameterTuningJobName", filters)
        return page(rows, filters.get("NextToken"), filters.get("MaxResults"), "HyperParameterTuningJobSummaries")

    def ended_event(self, name: str) -> threading.Event | None:
        job = self._live(name)
        return job.done if job is not None else None

    def wait(self, name: str, timeout: float = 600.0) -> dict:
        return wait_for(lambda: self.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
                        "HyperParameterTuningJobStatus", f"tuning job {name}", timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop every search still running here and wait for its thread (tests, shutdown)."""
        with self._lock:
            jobs = list(self._tuning.values())
        for job in jobs:
            if job.status not in TERMINAL:
                with contextlib.suppress(exc.JobNotStoppable):
                    job.stop()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout)
