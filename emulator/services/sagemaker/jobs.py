"""The SageMaker job backend: processing and training jobs (tuning in tuning.py), moto style.

``SageMakerBackend`` holds every job this process created and reads the ones other processes left
on disk under ``<state_dir>/sagemaker/<kind>/<name>/``: ``describe.json`` (the Describe* answer),
``ml/`` (the container's /opt/ml) and ``logs/`` (stdout.log, stderr.log). Methods are named after
the API operations and take the request's PascalCase members as keyword arguments.

``call(operation, request)`` is the API entry point the Step Functions integration uses: injected
faults first, then validation against the service model, then dispatch (hosting and transform
operations go to hosting.HostingBackend and transform.TransformBackend).
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import json
import logging
import os
import re
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from emulator.aws.jsontree import map_datetimes
from emulator.services.sagemaker import exceptions as exc
from emulator.services.sagemaker.images import Launcher, resolve_image
from emulator.services.sagemaker.runner import JobProcess, launch, local_path, map_paths, pid_alive
from emulator.services.sagemaker.validation import operation_name, validate

log = logging.getLogger("emulator.services.sagemaker.jobs")

TERMINAL = ("Completed", "Failed", "Stopped")
OWNER_KEY = "__owner_pid__"  # in describe.json only: which process runs the job
FAILURE_REASON_MAX = 1024


class Runtime(Protocol):
    """The fields of emulator.runtime.LocalRuntime this backend reads."""

    state_dir: Path
    project_root: Path
    s3: Any  # emulator.services.s3.store.LocalS3
    region: str
    account: str


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def snake(name: str) -> str:
    """'CreateTrainingJob' or 'createTrainingJob' -> 'create_training_job'."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_name(name)).lower()


# --------------------------------------------------------------------------------------------
# Resources on disk
# --------------------------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    return map_datetimes(value, lambda moment: {"__datetime__": moment.isoformat()})


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__datetime__"}:
            return dt.datetime.fromisoformat(value["__datetime__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class ResourceStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def folder(self, kind: str, name: str) -> Path:
        return self.root / kind / name

    def save(self, kind: str, name: str, data: Any, filename: str = "describe.json") -> None:
        if filename == "describe.json":
            data = {**data, OWNER_KEY: os.getpid()}
        folder = self.folder(kind, name)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{filename}-", dir=folder)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(_encode(data), handle, indent=1, default=str)
            os.replace(tmp, folder / filename)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, kind: str, name: str) -> dict | None:
        path = self.folder(kind, name) / "describe.json"
        if not path.is_file():
            return None
        return _decode(json.loads(path.read_text()))

    def exists(self, kind: str, name: str) -> bool:
        return (self.folder(kind, name) / "describe.json").is_file()

    def names(self, kind: str) -> list[str]:
        base = self.root / kind
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "describe.json").is_file())


# --------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------
@dataclass
class Job:
    """What processing and training jobs share: name, ARN, request, status and timestamps."""

    name: str
    arn: str
    request: dict
    folder: Path
    status: str = "InProgress"
    failure_reason: str | None = None
    creation_time: dt.datetime = field(default_factory=utcnow)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    last_modified_time: dt.datetime = field(default_factory=utcnow)
    process: JobProcess | None = None
    stop_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)  # status changes vs describe()

    @property
    def ml_root(self) -> Path:
        return self.folder / "ml"

    @property
    def log_dir(self) -> Path:
        return self.folder / "logs"

    def touch(self) -> None:
        self.last_modified_time = utcnow()

    def fail(self, reason: str) -> None:
        self.status = "Failed"
        self.failure_reason = reason[:FAILURE_REASON_MAX]


@dataclass
class ProcessingJob(Job):
    exit_message: str | None = None

    def describe(self) -> dict:
        with self.lock:
            return copy.deepcopy(self._describe())

    def _describe(self) -> dict:
        out = {k: v for k, v in self.request.items() if k != "Tags"}
        out.update(
            ProcessingJobArn=self.arn,
            ProcessingJobStatus=self.status,
            CreationTime=self.creation_time,
            LastModifiedTime=self.last_modified_time,
        )
        if self.start_time:
            out["ProcessingStartTime"] = self.start_time
        if self.end_time:
            out["ProcessingEndTime"] = self.end_time
        if self.exit_message:
            out["ExitMessage"] = self.exit_message
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out


@dataclass
class TrainingJob(Job):
    secondary_status: str = "Starting"
    transitions: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    metric_definitions: list[dict] = field(default_factory=list)
    model_artifacts: str | None = None
    tuning_job_arn: str | None = None
    process_env: dict = field(default_factory=dict)  # not part of the request (e.g. OMP_NUM_THREADS)

    def set_secondary(self, status: str, message: str) -> None:
        now = utcnow()
        with self.lock:
            if self.transitions:
                self.transitions[-1].setdefault("EndTime", now)
            self.transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
            self.secondary_status = status
            self.touch()

    def finish(self, status: str, secondary: str, message: str, reason: str | None = None) -> None:
        """The terminal status, its secondary status and end time, all at once (describe() never
        sees a Completed job still Uploading)."""
        now = utcnow()
        with self.lock:
            self.set_secondary(secondary, message)
            self.transitions[-1]["EndTime"] = now
            if reason:
                self.failure_reason = reason[:FAILURE_REASON_MAX]
            self.end_time = self.end_time or now
            self.status = status

    def fail(self, reason: str) -> None:
        self.finish("Failed", "Failed", f"Training job failed. Reason: {reason}"[:FAILURE_REASON_MAX], reason)

    def end_transitions(self) -> None:
        with self.lock:
            if self.transitions:
                self.transitions[-1].setdefault("EndTime", utcnow())

    def describe(self) -> dict:
        with self.lock:
            return copy.deepcopy(self._describe())

    def _describe(self) -> dict:
        req = self.request
        algorithm = dict(req.get("AlgorithmSpecification", {}))
        if self.metric_definitions and not algorithm.get("MetricDefinitions"):
            algorithm["MetricDefinitions"] = self.metric_definitions
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "ModelArtifacts": {"S3ModelArtifacts": self.model_artifacts or ""},
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
            "HyperParameters": dict(req.get("HyperParameters", {})),
            "AlgorithmSpecification": algorithm,
            "RoleArn": req.get("RoleArn"),
            "InputDataConfig": [_channel_defaults(c) for c in req.get("InputDataConfig", [])],
            "OutputDataConfig": {"CompressionType": "GZIP", **req.get("OutputDataConfig", {})},
            "ResourceConfig": req.get("ResourceConfig", {}),
            "StoppingCondition": req.get("StoppingCondition", {}),
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "SecondaryStatusTransitions": self.transitions,
            "EnableNetworkIsolation": req.get("EnableNetworkIsolation", False),
            "EnableInterContainerTrafficEncryption": req.get("EnableInterContainerTrafficEncryption", False),
            "EnableManagedSpotTraining": req.get("EnableManagedSpotTraining", False),
        }
        if self.tuning_job_arn:
            out["TuningJobArn"] = self.tuning_job_arn
        for key in ("VpcConfig", "CheckpointConfig", "Environment", "RetryStrategy", "ExperimentConfig"):
            if key in req:
                out[key] = req[key]
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.start_time:
            out["TrainingStartTime"] = self.start_time
        if self.end_time:
            out["TrainingEndTime"] = self.end_time
            if self.start_time:
                seconds = max(1, round((self.end_time - self.start_time).total_seconds()))
                out["TrainingTimeInSeconds"] = seconds
                out["BillableTimeInSeconds"] = seconds
        if self.metrics:
            out["FinalMetricDataList"] = self.metrics
        return out


def _channel_defaults(channel: dict) -> dict:
    """The channel as DescribeTrainingJob echoes it, with the defaults SageMaker fills in."""
    out = {"CompressionType": "None", "RecordWrapperType": "None", **channel}
    source = out.get("DataSource", {}).get("S3DataSource")
    if source is not None:
        out["DataSource"] = {"S3DataSource": {"S3DataDistributionType": "FullyReplicated", **source}}
    return out


# --------------------------------------------------------------------------------------------
# Metrics from the log
# --------------------------------------------------------------------------------------------
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_LEADING = re.compile(r"\s*([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|inf|nan))", re.IGNORECASE)


def builtin_metric_definitions(image_kind: str) -> list[dict]:
    """The built-in algorithm's metric definitions (the XGBoost twin declares them)."""
    if image_kind != "xgboost":
        return []
    try:
        from containers.xgboost.metrics import METRIC_DEFINITIONS
    except ImportError:  # the twin not there yet: the shape its log lines have
        return [
            {"Name": f"{channel}:{metric}", "Regex": rf".*\[[0-9]+\].*#011{channel}-{metric}:{_NUMBER}.*"}
            for channel in ("train", "validation")
            for metric in ("rmse", "mae", "logloss", "error", "auc", "aucpr", "mse", "merror", "mlogloss")
        ]
    return [dict(d) for d in METRIC_DEFINITIONS]


def metric_series(log_text: str, definitions: list[dict]) -> dict[str, list[float]]:
    """Every value each metric regex finds, line by line, with tabs shown as #011 (CloudWatch)."""
    compiled = []
    for definition in definitions:
        try:
            compiled.append((definition["Name"], re.compile(definition["Regex"])))
        except re.error:
            log.warning("metric %s: regex %r does not compile; skipped", definition.get("Name"), definition.get("Regex"))
    series: dict[str, list[float]] = {}
    for line in log_text.replace("\t", "#011").splitlines():
        for name, regex in compiled:
            match = regex.search(line)
            if match:
                value = _leading_number(match.group(1) if match.groups() else "")
                if value is not None:
                    series.setdefault(name, []).append(value)
    return series


def _leading_number(text: str) -> float | None:
    """The number a capture starts with: a greedy ``(\\S+)`` also takes the ``#011`` that follows."""
    match = _LEADING.match(text or "")
    return float(match.group(1)) if match else None


def final_metrics(log_text: str, definitions: list[dict], when: dt.datetime) -> list[dict]:
    series = metric_series(log_text, definitions)
    return [{"MetricName": name, "Value": values[-1], "Timestamp": when} for name, values in series.items()]


# --------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------
class SageMakerBackend:
    """Processing, training and tuning jobs; hosting and transform by delegation (see ``call``)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = ResourceStore(Path(runtime.state_dir) / "sagemaker")
        self._lock = threading.RLock()
        self._processing: dict[str, ProcessingJob] = {}
        self._training: dict[str, TrainingJob] = {}
        self._tuning: dict[str, Any] = {}  # tuning.TuningJob
        self._faults: dict[str, list[str]] = {}
        self._hosting = None
        self._transform = None
        self._tuner_loading = False

    # -- API entry point ---------------------------------------------------------------------
    def inject_fault(self, operation: str, error_code: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``operation`` fail with ``error_code`` (tests only)."""
        with self._lock:
            self._faults.setdefault(operation_name(operation), []).extend([error_code] * times)

    def _take_fault(self, operation: str) -> str | None:
        with self._lock:
            queue = self._faults.get(operation_name(operation))
            return queue.pop(0) if queue else None

    def call(self, operation: str, request: dict | None = None) -> dict:
        """One SageMaker API call: faults, validation, then the method named after the operation."""
        request = dict(request or {})
        code = self._take_fault(operation)
        if code:
            log.info("injected %s on %s", code, operation_name(operation))
            raise exc.from_code(code)
        validate(operation, request)
        method = self._method(operation)
        if not self._tuner_loading and operation_name(operation).startswith("Create"):
            self._tuner_loading = True
            # optuna takes ~0.15 s to import: load the tuner beside the first job rather than in
            # front of the first tuning job, where it was the longest pause between two jobs
            threading.Thread(target=importlib.import_module, args=("emulator.services.sagemaker.tuning",),
                             name="load-tuner", daemon=True).start()
        return method(**request)

    def _method(self, operation: str):
        name = snake(operation)
        for target in (self, self.hosting, self.transform):
            method = getattr(target, name, None) if target is not None else None
            if callable(method) and not name.startswith("_"):
                return method
        raise exc.ValidationException(f"The local SageMaker emulator does not implement {operation_name(operation)}")

    @property
    def hosting(self):
        """hosting.HostingBackend, created on first use (it is optional for job-only runs)."""
        if self._hosting is None:
            try:
                from emulator.services.sagemaker.hosting import HostingBackend
            except ImportError:
                return None
            self._hosting = HostingBackend(self.runtime)
        return self._hosting

    @property
    def transform(self):
        if self._transform is None:
            try:
                from emulator.services.sagemaker.transform import TransformBackend
            except ImportError:
                return None
            self._transform = TransformBackend(self.runtime, hosting=self.hosting)  # one model registry
        return self._transform

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.runtime.region}:{self.runtime.account}:{kind}/{name.lower()}"

    def _assembly_dirs(self) -> list[Path]:
        deployment = getattr(self.runtime, "deployment", None)
        for attr in ("assembly_dir", "cdk_out", "outdir"):
            value = getattr(deployment, attr, None) if deployment is not None else None
            if value:
                return [Path(value)]
        return [Path(self.runtime.project_root) / "cdk.out"]

    def resolve_image(self, uri: str) -> Launcher:
        return resolve_image(uri, Path(self.runtime.project_root), self._assembly_dirs())

    def _pythonpath(self, launcher: Launcher) -> list[Path]:
        root = Path(self.runtime.project_root)
        return [launcher.workdir] if launcher.workdir == root else [launcher.workdir, root]

    def _save(self, kind: str, job: Job) -> None:
        self.store.save(kind, job.name, job.describe())

    def _load(self, kind: str, name: str) -> dict | None:
        """A job another process ran. One still InProgress whose process is gone is reported
        Failed: that process exited (Ctrl-C, crash) before the job could finish."""
        stored = self.store.load(kind, name)
        if stored is None:
            return None
        status_key = _STATUS_KEYS[kind]
        if stored.get(status_key) in ("InProgress", "Stopping") and not pid_alive(stored.get(OWNER_KEY)):
            stored[status_key] = "Failed"
            stored["FailureReason"] = (
                f"InternalServerError: the emulator process that ran this job (pid {stored.get(OWNER_KEY)}) "
                "exited before the job finished; start the job again under a new name"
            )
        stored.pop(OWNER_KEY, None)
        return stored

    # -- processing jobs ---------------------------------------------------------------------
    def create_processing_job(self, **request: Any) -> dict:
        name = request["ProcessingJobName"]
        with self._lock:
            if name in self._processing or self.store.exists("processing-jobs", name):
                raise exc.ResourceInUse(f"Job name must be unique within an AWS account and region, and a job with this name already exists ({self.arn('processing-job', name)})")
            launcher = self.resolve_image(request["AppSpecification"]["ImageUri"])
            job = ProcessingJob(name, self.arn("processing-job", name), request, self.store.folder("processing-jobs", name))
            self._processing[name] = job
            self._save("processing-jobs", job)
        log.info("processing job %s started (%s)", name, launcher.kind)
        threading.Thread(target=self._run_processing, args=(job, launcher), name=f"processing-{name}", daemon=True).start()
        return {"ProcessingJobArn": job.arn}

    def _run_processing(self, job: ProcessingJob, launcher: Launcher) -> None:
        try:
            self._processing_steps(job, launcher)
        except Exception as error:  # any local failure ends the job, as a container crash would
            log.exception("processing job %s: unexpected error", job.name)
            job.fail(f"InternalServerError: {error}")
        finally:
            job.end_time = job.end_time or utcnow()
            job.touch()
            self._save("processing-jobs", job)
            job.done.set()
            log.info("processing job %s %s%s", job.name, job.status, f": {job.failure_reason}" if job.failure_reason else "")

    def _processing_steps(self, job: ProcessingJob, launcher: Launcher) -> None:
        s3 = self.runtime.s3
        req = job.request
        ml = job.ml_root
        (ml / "config").mkdir(parents=True, exist_ok=True)
        (ml / "config" / "processingjobconfig.json").write_text(json.dumps(req, default=str, indent=1))
        (ml / "config" / "resourceconfig.json").write_text(json.dumps(_resource_config(req.get("ProcessingResources", {}).get("ClusterConfig", {}))))
        job.start_time = utcnow()
        for item in req.get("ProcessingInputs", []):
            source = item.get("S3Input")
            if source is None:
                job.fail(f"ClientError: ProcessingInput {item.get('InputName')!r}: only S3Input is supported locally")
                return
            dest = local_path(source["LocalPath"], ml)
            dest.mkdir(parents=True, exist_ok=True)
            if not s3.download_prefix(source["S3Uri"], dest):
                job.fail(f"ClientError: No S3 objects found under S3 URL \"{source['S3Uri']}\" given in input data source. Please ensure that the bucket exists and that objects exist under that S3 prefix.")
                return
        for output in req.get("ProcessingOutputConfig", {}).get("Outputs", []):
            if "S3Output" in output:
                local_path(output["S3Output"]["LocalPath"], ml).mkdir(parents=True, exist_ok=True)
        app = req["AppSpecification"]
        command = map_paths(launcher.processing_command(app.get("ContainerEntrypoint"), app.get("ContainerArguments")), ml)
        if job.stop_requested:
            job.status = "Stopped"
            return
        job.process = launch(
            command,
            ml_root=ml,
            log_dir=job.log_dir,
            cwd=launcher.workdir,
            env=dict(req.get("Environment", {})),
            pythonpath=self._pythonpath(launcher),
            max_runtime=req.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
        )
        result = job.process.wait()
        job.end_time = utcnow()
        if result.timed_out:
            job.status = "Stopped"
            job.exit_message = job.failure_reason = "Processing job exceeded MaxRuntimeInSeconds and was stopped."
            return
        if result.stopped:
            job.status = "Stopped"
            return
        if result.returncode != 0:
            message = _read_text(ml / "output" / "message") or job.process.tail(10)
            job.exit_message = message[:FAILURE_REASON_MAX]
            job.fail(f"AlgorithmError: {message}".strip() if message else f"AlgorithmError: exit code {result.returncode}")
            return
        for output in req.get("ProcessingOutputConfig", {}).get("Outputs", []):
            target = output.get("S3Output")
            if target:
                s3.upload_dir(local_path(target["LocalPath"], ml), target["S3Uri"])
        job.exit_message = _read_text(ml / "output" / "message") or None
        job.status = "Completed"

    def _processing_job(self, name: str) -> ProcessingJob | None:
        with self._lock:
            return self._processing.get(name)

    def describe_processing_job(self, ProcessingJobName: str) -> dict:
        job = self._processing_job(ProcessingJobName)
        if job is not None:
            return job.describe()
        stored = self._load("processing-jobs", ProcessingJobName)
        if stored is None:
            raise exc.not_found("Processing job", ProcessingJobName)
        return stored

    def stop_processing_job(self, ProcessingJobName: str) -> dict:
        job = self._processing_job(ProcessingJobName)
        if job is None:
            raise exc.not_found("Processing job", ProcessingJobName)
        self._stop(job)
        return {}

    def list_processing_jobs(self, **filters: Any) -> dict:
        summaries = []
        for name in self._all_names("processing-jobs", self._processing):
            d = self.describe_processing_job(ProcessingJobName=name)
            summaries.append({k: d.get(k) for k in ("ProcessingJobName", "ProcessingJobArn", "CreationTime", "ProcessingEndTime", "LastModifiedTime", "ProcessingJobStatus", "FailureReason", "ExitMessage") if d.get(k) is not None})
        return {"ProcessingJobSummaries": _filter_sort(summaries, "ProcessingJobStatus", "ProcessingJobName", filters)}

    # -- training jobs -----------------------------------------------------------------------
    def create_training_job(self, *, _tuning_job_arn: str | None = None, _process_env: dict | None = None, **request: Any) -> dict:
        """CreateTrainingJob; the tuner adds its ARN and process settings (threads per trial)."""
        name = request["TrainingJobName"]
        algorithm = request.get("AlgorithmSpecification") or {}
        if "TrainingImage" not in algorithm:
            raise exc.ValidationException("AlgorithmSpecification.TrainingImage is required locally (AlgorithmName/marketplace algorithms cannot run offline)")
        with self._lock:
            if name in self._training or self.store.exists("training-jobs", name):
                raise exc.ResourceInUse(f"Training job names must be unique within an AWS account and region, and a training job with this name already exists ({self.arn('training-job', name)})")
            launcher = self.resolve_image(algorithm["TrainingImage"])
            job = TrainingJob(name, self.arn("training-job", name), request, self.store.folder("training-jobs", name))
            job.tuning_job_arn = _tuning_job_arn
            job.process_env = dict(_process_env or {})
            job.metric_definitions = list(algorithm.get("MetricDefinitions") or builtin_metric_definitions(launcher.kind))
            job.set_secondary("Starting", "Launching requested ML instances")
            self._training[name] = job
            self._save("training-jobs", job)
        log.info("training job %s started (%s)", name, launcher.kind)
        threading.Thread(target=self._run_training, args=(job, launcher), name=f"training-{name}", daemon=True).start()
        return {"TrainingJobArn": job.arn}

    def _run_training(self, job: TrainingJob, launcher: Launcher) -> None:
        try:
            self._training_steps(job, launcher)
        except Exception as error:
            log.exception("training job %s: unexpected error", job.name)
            job.fail(f"InternalServerError: {error}")
        finally:
            job.end_transitions()
            job.end_time = job.end_time or utcnow()
            job.touch()
            self._save("training-jobs", job)
            job.done.set()
            metrics = ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in job.metrics)
            log.info("training job %s %s%s%s", job.name, job.status, f" ({metrics})" if metrics else "", f": {job.failure_reason}" if job.failure_reason else "")

    def _training_steps(self, job: TrainingJob, launcher: Launcher) -> None:
        s3 = self.runtime.s3
        req = job.request
        ml = job.ml_root
        config = ml / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        for folder in ("model", "output/data", "checkpoints"):
            (ml / folder).mkdir(parents=True, exist_ok=True)
        channels = req.get("InputDataConfig", [])
        (config / "hyperparameters.json").write_text(json.dumps(req.get("HyperParameters", {})))
        (config / "inputdataconfig.json").write_text(json.dumps({c["ChannelName"]: _channel_config(c) for c in channels}))
        (config / "resourceconfig.json").write_text(json.dumps(_resource_config(req.get("ResourceConfig", {}))))
        job.start_time = utcnow()
        job.set_secondary("Downloading", "Downloading input data")
        for channel in channels:
            source = channel.get("DataSource", {}).get("S3DataSource")
            if source is None:
                job.fail(f"ClientError: channel {channel['ChannelName']!r}: only S3DataSource is supported locally")
                return
            if source.get("S3DataType", "S3Prefix") != "S3Prefix":
                job.fail(f"ClientError: channel {channel['ChannelName']!r}: S3DataType {source['S3DataType']} is not supported locally; use S3Prefix")
                return
            if not s3.download_prefix(source["S3Uri"], ml / "input" / "data" / channel["ChannelName"]):
                job.fail(f"ClientError: No S3 objects found under S3 URL \"{source['S3Uri']}\" given in input data source. Please ensure that the bucket exists and that objects exist under that S3 prefix.")
                return
        if job.stop_requested:
            job.finish("Stopped", "Stopped", "Training job stopped")
            return
        job.set_secondary("Training", "Training image download completed. Training in progress.")
        self._save("training-jobs", job)
        job.process = launch(
            launcher.training_command(),
            ml_root=ml,
            log_dir=job.log_dir,
            cwd=launcher.workdir,
            env={**job.process_env, **req.get("Environment", {})},
            pythonpath=self._pythonpath(launcher),
            max_runtime=req.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
        )
        result = job.process.wait()
        job.metrics = final_metrics(job.process.log_text(), job.metric_definitions, utcnow())
        if result.timed_out:
            job.finish("Stopped", "MaxRuntimeExceeded", "Job stopped because it exceeded MaxRuntimeInSeconds")
            return
        if result.stopped:
            job.finish("Stopped", "Stopped", "Training job stopped")
            return
        if result.returncode != 0:
            reason = _read_text(ml / "output" / "failure") or job.process.tail(10) or f"exit code {result.returncode}"
            job.fail(f"AlgorithmError: {reason}")
            return
        job.set_secondary("Uploading", "Uploading generated training model")
        prefix = req["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{job.name}/output"
        s3.put_file(f"{prefix}/model.tar.gz", _tar(ml / "model", job.folder))
        if any((ml / "output" / "data").iterdir()):
            s3.put_file(f"{prefix}/output.tar.gz", _tar(ml / "output" / "data", job.folder))
        job.model_artifacts = f"{prefix}/model.tar.gz"
        job.finish("Completed", "Completed", "Training job completed")

    def _training_job(self, name: str) -> TrainingJob | None:
        with self._lock:
            return self._training.get(name)

    def training_job(self, name: str) -> TrainingJob:
        """The live resource (for the tuner and tests); ResourceNotFound if this process has none."""
        job = self._training_job(name)
        if job is None:
            raise exc.not_found("Training job", name)
        return job

    def describe_training_job(self, TrainingJobName: str) -> dict:
        job = self._training_job(TrainingJobName)
        if job is not None:
            with self._lock:
                return job.describe()
        stored = self._load("training-jobs", TrainingJobName)
        if stored is None:
            raise exc.not_found("Training job", TrainingJobName)
        return stored

    def stop_training_job(self, TrainingJobName: str) -> dict:
        job = self._training_job(TrainingJobName)
        if job is None:
            raise exc.not_found("Training job", TrainingJobName)
        self._stop(job)
        return {}

    def list_training_jobs(self, **filters: Any) -> dict:
        summaries = []
        for name in self._all_names("training-jobs", self._training):
            d = self.describe_training_job(TrainingJobName=name)
            summaries.append({k: d.get(k) for k in ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime", "LastModifiedTime", "TrainingJobStatus") if d.get(k) is not None})
        return {"TrainingJobSummaries": _filter_sort(summaries, "TrainingJobStatus", "TrainingJobName", filters)}

    # -- tuning jobs (the search itself is in tuning.py) -------------------------------------
    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict:
        from emulator.services.sagemaker.tuning import TuningJob

        name = request["HyperParameterTuningJobName"]
        with self._lock:
            if name in self._tuning or self.store.exists("hyper-parameter-tuning-jobs", name):
                raise exc.ResourceInUse(f"Hyperparameter tuning job names must be unique within an AWS account and region, and a job with this name already exists ({self.arn('hyper-parameter-tuning-job', name)})")
            job = TuningJob.create(self, request)
            self._tuning[name] = job
            self.store.save("hyper-parameter-tuning-jobs", name, job.describe())
        job.start()
        return {"HyperParameterTuningJobArn": job.arn}

    def save_tuning_job(self, job: Any) -> None:
        self.store.save("hyper-parameter-tuning-jobs", job.name, job.training_job_summaries(), "training-jobs.json")
        self.store.save("hyper-parameter-tuning-jobs", job.name, job.describe())

    def _tuning_job(self, name: str):
        with self._lock:
            job = self._tuning.get(name)
        if job is None:
            raise exc.not_found("Hyperparameter tuning job", name)
        return job

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict:
        with self._lock:
            job = self._tuning.get(HyperParameterTuningJobName)
        if job is not None:
            return job.describe()
        stored = self._load("hyper-parameter-tuning-jobs", HyperParameterTuningJobName)
        if stored is None:
            raise exc.not_found("Hyperparameter tuning job", HyperParameterTuningJobName)
        return stored

    def stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict:
        self._tuning_job(HyperParameterTuningJobName).stop()
        return {}

    def list_training_jobs_for_hyper_parameter_tuning_job(
        self,
        HyperParameterTuningJobName: str,
        StatusEquals: str | None = None,
        SortBy: str = "Name",
        SortOrder: str = "Ascending",
        MaxResults: int = 10,
        NextToken: str | None = None,
    ) -> dict:
        with self._lock:
            job = self._tuning.get(HyperParameterTuningJobName)
        if job is not None:
            summaries = job.training_job_summaries()
        else:
            stored = self._load("hyper-parameter-tuning-jobs", HyperParameterTuningJobName)
            if stored is None:
                raise exc.not_found("Hyperparameter tuning job", HyperParameterTuningJobName)
            summaries = _decoded_summaries(self.store, HyperParameterTuningJobName)
        if StatusEquals:
            summaries = [s for s in summaries if s["TrainingJobStatus"] == StatusEquals]
        key = {
            "Name": lambda s: s["TrainingJobName"],
            "CreationTime": lambda s: s["CreationTime"],
            "Status": lambda s: s["TrainingJobStatus"],
            "FinalObjectiveMetricValue": lambda s: s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value", float("nan")),
        }[SortBy]
        if SortBy == "FinalObjectiveMetricValue":
            summaries = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
        summaries.sort(key=key, reverse=SortOrder == "Descending")
        start = int(NextToken or 0)
        page = summaries[start:start + MaxResults]
        out: dict[str, Any] = {"TrainingJobSummaries": page}
        if start + MaxResults < len(summaries):
            out["NextToken"] = str(start + MaxResults)
        return out

    def list_hyper_parameter_tuning_jobs(self, **filters: Any) -> dict:
        summaries = []
        for name in self._all_names("hyper-parameter-tuning-jobs", self._tuning):
            d = self.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
            summaries.append({k: d.get(k) for k in ("HyperParameterTuningJobName", "HyperParameterTuningJobArn", "HyperParameterTuningJobStatus", "CreationTime", "HyperParameterTuningEndTime", "LastModifiedTime", "TrainingJobStatusCounters", "ObjectiveStatusCounters") if d.get(k) is not None})
            summaries[-1]["Strategy"] = d["HyperParameterTuningJobConfig"]["Strategy"]
        return {"HyperParameterTuningJobSummaries": _filter_sort(summaries, "HyperParameterTuningJobStatus", "HyperParameterTuningJobName", filters)}

    # -- helpers -----------------------------------------------------------------------------
    def _stop(self, job: Job) -> None:
        if job.status in TERMINAL:
            raise exc.ValidationException(f"The job {job.name} has already reached a terminal state ({job.status}) and cannot be stopped")
        job.stop_requested = True
        if job.process is not None:
            job.process.stop()

    def _all_names(self, kind: str, live: dict) -> list[str]:
        with self._lock:
            return sorted(set(live) | set(self.store.names(kind)))

    def ended_event(self, kind: str, name: str) -> threading.Event | None:
        """The event set when a job of ``kind`` (processing, training, tuning, transform) running in
        this process ends; None when it does not run here (callers then poll its Describe*)."""
        if kind == "transform":
            return self.transform.ended_event(name)
        with self._lock:
            job = {"processing": self._processing, "training": self._training, "tuning": self._tuning}[kind].get(name)
        return job.done if job is not None else None

    def wait(self, kind: str, name: str, timeout: float = 600.0) -> dict:
        """Block until a job is terminal and return its Describe* answer (tests, benchmarks)."""
        describe = {
            "processing": (self.describe_processing_job, "ProcessingJobName", "ProcessingJobStatus"),
            "training": (self.describe_training_job, "TrainingJobName", "TrainingJobStatus"),
            "tuning": (self.describe_hyper_parameter_tuning_job, "HyperParameterTuningJobName", "HyperParameterTuningJobStatus"),
        }[kind]
        deadline = time.monotonic() + timeout
        while True:
            answer = describe[0](**{describe[1]: name})
            if answer[describe[2]] in TERMINAL:
                return answer
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} job {name} still {answer[describe[2]]} after {timeout}s")
            time.sleep(0.05)


_STATUS_KEYS = {
    "processing-jobs": "ProcessingJobStatus",
    "training-jobs": "TrainingJobStatus",
    "hyper-parameter-tuning-jobs": "HyperParameterTuningJobStatus",
}



def _decoded_summaries(store: ResourceStore, tuning_name: str) -> list[dict]:
    path = store.folder("hyper-parameter-tuning-jobs", tuning_name) / "training-jobs.json"
    return _decode(json.loads(path.read_text())) if path.is_file() else []


def _filter_sort(summaries: list[dict], status_key: str, name_key: str, filters: dict) -> list[dict]:
    if filters.get("StatusEquals"):
        summaries = [s for s in summaries if s.get(status_key) == filters["StatusEquals"]]
    if filters.get("NameContains"):
        summaries = [s for s in summaries if filters["NameContains"] in s[name_key]]
    by = filters.get("SortBy", "CreationTime")
    key = {"Name": name_key, "CreationTime": "CreationTime", "Status": status_key}.get(by, "CreationTime")
    summaries.sort(key=lambda s: s.get(key) or "", reverse=filters.get("SortOrder", "Descending") == "Descending")
    return summaries[: int(filters.get("MaxResults", 100))]


def _channel_config(channel: dict) -> dict:
    source = channel.get("DataSource", {}).get("S3DataSource", {})
    out = {
        "TrainingInputMode": channel.get("InputMode", "File"),
        "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
        "RecordWrapperType": channel.get("RecordWrapperType", "None"),
    }
    if "ContentType" in channel:
        out["ContentType"] = channel["ContentType"]
    return out


def _resource_config(resources: dict) -> dict:
    instance_type = resources.get("InstanceType", "local")
    count = int(resources.get("InstanceCount", 1) or 1)
    hosts = [f"algo-{i}" for i in range(1, count + 1)][:1]  # one local host plays the cluster
    return {
        "current_host": "algo-1",
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": hosts}],
        "network_interface_name": "eth0",
    }


def _read_text(path: Path) -> str:
    return path.read_text(errors="replace").strip() if path.is_file() else ""


def _tar(folder: Path, work: Path) -> Path:
    """folder's contents as a gzipped tar at the archive root (as SageMaker packs /opt/ml/model)."""
    fd, name = tempfile.mkstemp(suffix=".tar.gz", dir=work)
    os.close(fd)
    with tarfile.open(name, "w:gz") as archive:
        for item in sorted(folder.iterdir()):
            archive.add(item, arcname=item.name)
    return Path(name)
