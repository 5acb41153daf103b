"""SageMaker processing and training jobs, moto style: the resources and the runners that play them.

A job runs as a local process (runner.py) in its work folder (``layout.sagemaker_work_dir``: ``ml/``
is the container's /opt/ml, ``logs/`` its stdout and stderr and ``emulator.log``, what the emulator
did to set it up), watched by one thread per job. Inputs are read-only hard links to the bucket's
objects (a copy only across filesystems, said in emulator.log); outputs are renamed into the bucket
when the job completes, never copied, and a job that did not complete promotes nothing. Its
Describe* answer is a record in the SageMaker record store, written owned by this process: a
record left InProgress by a process that died reads as Failed (storage.records.owner_dead).
Methods are named after the API operations and take the request's PascalCase members.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import os
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.aws.clock import utcnow
from emulator.services.s3.exceptions import InvalidManifest
from emulator.services.sagemaker import cluster
from emulator.services.sagemaker import exceptions as exc
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.images import Launcher
from emulator.services.sagemaker.listing import filter_sort, page
from emulator.services.sagemaker.metrics import builtin_metric_definitions, final_metrics
from emulator.services.sagemaker.runner import JobProcess, killed_reason, launch, local_path, map_paths
from emulator.storage.processes import ProcessGroups
from emulator.storage.records import owner_dead, without_owner

log = logging.getLogger("emulator.services.sagemaker.jobs")

TERMINAL = ("Completed", "Failed", "Stopped")
RUNNING = ("InProgress", "Stopping")
FAILURE_REASON_MAX = 1024
PROCESSING, TRAINING = "processing-jobs", "training-jobs"  # record kinds
_STATUS_KEYS = {PROCESSING: "ProcessingJobStatus", TRAINING: "TrainingJobStatus"}


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
    process: JobProcess | None = None  # the first host's (algo-1): its log is the job's metrics source
    processes: list[JobProcess] = field(default_factory=list)  # one per host (cluster.py)
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
# The backend
# --------------------------------------------------------------------------------------------
class JobsBackend:
    """Processing and training jobs of one local account."""

    def __init__(self, context: SageMakerContext):
        self.context = context
        self.records = context.records()
        self._lock = threading.RLock()
        self._processing: dict[str, ProcessingJob] = {}  # by lower-cased name, as SageMaker compares
        self._training: dict[str, TrainingJob] = {}
        self._threads: list[threading.Thread] = []
        # every job process's group, recorded so a later emulator process can end it if this one dies
        self.groups = ProcessGroups(context.layout.process_groups_dir)

    def _pythonpath(self, launcher: Launcher) -> list[Path]:
        root = Path(self.context.project_root)
        return [launcher.workdir] if launcher.workdir == root else [launcher.workdir, root]

    def _save(self, kind: str, job: Job) -> None:
        self.records.write(kind, job.name, job.describe(), owned=True)

    def _load(self, kind: str, name: str) -> dict | None:
        """A job another process ran. One still running whose process is gone is reported Failed:
        that process exited (Ctrl-C, crash) before the job could finish."""
        stored = self.records.read(kind, name)
        if stored is None:
            return None
        status_key = _STATUS_KEYS[kind]
        if stored.get(status_key) in RUNNING and owner_dead(stored):
            stored[status_key] = "Failed"
            stored["FailureReason"] = (
                "InternalServerError: the emulator process that ran this job exited before the job "
                "finished; start the job again under a new name"
            )
        return without_owner(stored)

    def _materialize(self, job: Job, what: str, uri: str, dest: Path, shown: str,
                     shard: tuple[int, int] | None = None, data_type: str = "S3Prefix") -> int:
        """The objects under ``uri`` — or the ones the manifest at ``uri`` lists (ManifestFile) —
        in ``dest`` as read-only hard links (``shard``: a host's share); how many (0: none found).
        A bad manifest raises InvalidManifest."""
        link = self.context.s3.link_manifest if data_type == "ManifestFile" else self.context.s3.link_prefix
        placed = link(uri, dest, shared=self.context.layout.shared_inputs_dir, shard=shard)
        copied = [p for p in placed if p.how != "linked"]
        if placed:
            _note(job, f"{what}: {len(placed)} object(s) from {uri} in {shown}, hard-linked read-only"
                       + (f"; {len(copied)} copied first (the bucket is on another filesystem: no hard link "
                          f"reaches it; jobs reading the same object share the copy)" if copied else ""))
        if copied:
            log.warning("%s %s: %d input object(s) copied, the bucket is on another filesystem than %s",
                        job.name, what, len(copied), dest)
        return len(placed)

    def _place_input(self, job: Job, named: str, what: str, source: dict, hosts: list[cluster.Host],
                     dest_of: Callable[[cluster.Host], Path], shown: str) -> bool:
        """One S3 input (a processing input, a training channel) on every host: S3Prefix or
        ManifestFile, each host's share; False when it failed the job (``named`` in its reason)."""
        data_type = source.get("S3DataType", "S3Prefix")
        if data_type not in ("S3Prefix", "ManifestFile"):
            job.fail(f"ClientError: {named}: S3DataType {data_type} is not supported locally; use S3Prefix or ManifestFile")
            return False
        placed = 0
        try:
            for host in hosts:
                dest = dest_of(host)
                dest.mkdir(parents=True, exist_ok=True)  # a host's share may be empty (ShardedByS3Key)
                placed += self._materialize(job, what + _on(host), source["S3Uri"], dest, shown,
                                            host.shard(source.get("S3DataDistributionType")), data_type)
        except InvalidManifest as error:
            job.fail(f"ClientError: {named}: {error}")
            return False
        if not placed:
            job.fail(f"ClientError: No S3 objects found under S3 URL \"{source['S3Uri']}\" given in input data source. Please ensure that the bucket exists and that objects exist under that S3 prefix.")
            return False
        return True

    def _start(self, target: Any, job: Job, launcher: Launcher, kind: str) -> None:
        thread = threading.Thread(target=target, args=(job, launcher), name=f"{kind}-{job.name}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    # -- processing jobs ---------------------------------------------------------------------
    def create_processing_job(self, **request: Any) -> dict:
        name = request["ProcessingJobName"]
        arn = self.context.arn("processing-job", name)
        with self._lock:
            if name.lower() in self._processing or self.records.exists(PROCESSING, name):
                raise exc.ResourceInUse.job_exists(arn)
            launcher = self.context.resolve_image(request["AppSpecification"]["ImageUri"])
            job = ProcessingJob(name, arn, request, self.context.work_dir(PROCESSING, name))
            self._processing[name.lower()] = job
            self._save(PROCESSING, job)
        log.debug("processing job %s started (%s)", name, launcher.kind)
        self._start(self._run_processing, job, launcher, "processing")
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
            self._save(PROCESSING, job)
            job.done.set()
            log.log(logging.INFO if job.status == "Failed" else logging.DEBUG, "processing job %s %s%s", job.name, job.status, f": {job.failure_reason}" if job.failure_reason else "")

    def _processing_steps(self, job: ProcessingJob, launcher: Launcher) -> None:
        s3 = self.context.s3
        req = job.request
        resources = req.get("ProcessingResources", {}).get("ClusterConfig", {})
        hosts = cluster.hosts(job.folder, int(resources.get("InstanceCount", 1) or 1))
        job.start_time = utcnow()
        for host in hosts:
            ml = host.ml_root
            (ml / "config").mkdir(parents=True, exist_ok=True)
            (ml / "config" / "processingjobconfig.json").write_text(json.dumps(req, default=str, indent=1))
            (ml / "config" / "resourceconfig.json").write_text(json.dumps(cluster.resource_config(resources, host.name)))
        for item in req.get("ProcessingInputs", []):
            source = item.get("S3Input")
            if source is None:
                job.fail(f"ClientError: ProcessingInput {item.get('InputName')!r}: only S3Input is supported locally")
                return
            name = item.get("InputName")
            if not self._place_input(job, f"ProcessingInput {name!r}", f"input {name!r}", source, hosts,
                                     lambda host, local=source["LocalPath"]: local_path(local, host.ml_root), source["LocalPath"]):
                return
        for output in req.get("ProcessingOutputConfig", {}).get("Outputs", []):
            if "S3Output" in output:
                for host in hosts:
                    local_path(output["S3Output"]["LocalPath"], host.ml_root).mkdir(parents=True, exist_ok=True)
        app = req["AppSpecification"]
        if job.stop_requested:
            job.status = "Stopped"
            return
        results = self._run_hosts(job, hosts, lambda host: {
            "command": map_paths(launcher.processing_command(app.get("ContainerEntrypoint"), app.get("ContainerArguments")),
                              host.ml_root),
            "cwd": launcher.workdir,
            "env": {**self.context.endpoint_env(), **req.get("Environment", {})},
            "pythonpath": self._pythonpath(launcher),
            "max_runtime": req.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
        })
        job.end_time = utcnow()
        if any(r.timed_out for _, r, _ in results):
            job.status = "Stopped"
            job.exit_message = job.failure_reason = "Processing job exceeded MaxRuntimeInSeconds and was stopped."
            return
        failed = _failed_host(results)
        if failed is None and any(r.stopped for _, r, _ in results):
            job.status = "Stopped"
            return
        if failed is not None:
            host, result, process = failed
            message = _read_text(host.ml_root / "output" / "message") or process.tail(10)
            killed = killed_reason(result.returncode)
            if killed:  # the job wrote no reason; the log tail alone would not say it was killed
                message = f"{killed}. Last output: {message}" if message else killed
            if len(hosts) > 1:  # SageMaker's reason names the failing instance of a cluster
                message = f"{host.name}: {message}"
            job.exit_message = message[:FAILURE_REASON_MAX]
            job.fail(f"AlgorithmError: {message}".strip() if message else f"AlgorithmError: exit code {result.returncode}")
            return
        for output in req.get("ProcessingOutputConfig", {}).get("Outputs", []):
            target = output.get("S3Output")
            if target:
                # every instance uploads its output folder to the same prefix (distinct file names are the
                # job's business, as on SageMaker)
                for host in hosts:
                    moved = s3.move_dir_in(local_path(target["LocalPath"], host.ml_root), target["S3Uri"])
                    _note(job, f"output {output.get('OutputName')!r}{_on(host)}: {len(moved)} file(s) moved from "
                               f"{target['LocalPath']} into {target['S3Uri']}")
        job.exit_message = _read_text(job.ml_root / "output" / "message") or None
        job.status = "Completed"

    def _run_hosts(self, job: Job, hosts: list[cluster.Host], how: Any) -> list[tuple[cluster.Host, Any, JobProcess]]:
        """One process per host, all started before any is waited for (a distributed job's hosts meet
        each other); ``how(host)`` gives launch()'s arguments. Each host's peak memory goes to the job's
        logs/resources.json; when one host fails the others are stopped, as SageMaker stops a cluster."""
        processes = []
        for host in hosts:
            args = how(host)
            processes.append(launch(args.pop("command"), ml_root=host.ml_root, log_dir=host.log_dir,
                                    groups=self.groups, **args))
        job.processes = processes
        job.process = processes[0]
        if job.stop_requested:  # a Stop* that came while the processes were being launched
            for process in processes:
                process.stop()
        results: dict[int, Any] = {}
        while len(results) < len(processes):
            for i, process in enumerate(processes):
                if i in results:
                    continue
                result = process.poll()
                if result.returncode is None:
                    continue
                results[i] = result
                if result.returncode != 0 and not (result.stopped or result.timed_out):
                    for other in processes:
                        other.stop()
            time.sleep(0.02)
        cluster.write_resources(job.log_dir, {h.name: p.peak_rss for h, p in zip(hosts, processes)})
        return [(h, results[i], p) for i, (h, p) in enumerate(zip(hosts, processes))]

    def _processing_job(self, name: str) -> ProcessingJob | None:
        with self._lock:
            return self._processing.get(name.lower())

    def describe_processing_job(self, ProcessingJobName: str) -> dict:
        job = self._processing_job(ProcessingJobName)
        if job is not None:
            return job.describe()
        stored = self._load(PROCESSING, ProcessingJobName)
        if stored is None:
            raise exc.ResourceNotFound.for_resource("Processing job", ProcessingJobName)
        return stored

    def stop_processing_job(self, ProcessingJobName: str) -> dict:
        job = self._processing_job(ProcessingJobName)
        if job is None:
            raise exc.ResourceNotFound.for_resource("Processing job", ProcessingJobName)
        self._stop(job)
        return {}

    def list_processing_jobs(self, **filters: Any) -> dict:
        summaries = []
        for name in self._all_names(PROCESSING, self._processing):
            d = self.describe_processing_job(ProcessingJobName=name)
            summaries.append({k: d.get(k) for k in ("ProcessingJobName", "ProcessingJobArn", "CreationTime", "ProcessingEndTime", "LastModifiedTime", "ProcessingJobStatus", "FailureReason", "ExitMessage") if d.get(k) is not None})
        rows = filter_sort(summaries, "ProcessingJobStatus", "ProcessingJobName", filters)
        return page(rows, filters.get("NextToken"), filters.get("MaxResults"), "ProcessingJobSummaries")

    # -- training jobs -----------------------------------------------------------------------
    def create_training_job(self, **request: Any) -> dict:
        return self.start_training_job(request)

    def start_training_job(self, request: dict, *, tuning_job_arn: str | None = None,
                           process_env: dict | None = None) -> dict:
        """CreateTrainingJob; the tuner adds its ARN and process settings (threads per trial)."""
        name = request["TrainingJobName"]
        algorithm = request.get("AlgorithmSpecification") or {}
        if "TrainingImage" not in algorithm:
            raise exc.ValidationException("AlgorithmSpecification.TrainingImage is required locally (AlgorithmName/marketplace algorithms cannot run offline)")
        arn = self.context.arn("training-job", name)
        with self._lock:
            if name.lower() in self._training or self.records.exists(TRAINING, name):
                raise exc.ResourceInUse(f"Training job names must be unique within an AWS account and region, and a training job with this name already exists ({arn})")
            launcher = self.context.resolve_image(algorithm["TrainingImage"])
            job = TrainingJob(name, arn, request, self.context.work_dir(TRAINING, name))
            job.tuning_job_arn = tuning_job_arn
            job.process_env = dict(process_env or {})
            job.metric_definitions = list(algorithm.get("MetricDefinitions") or builtin_metric_definitions(launcher.kind))
            job.set_secondary("Starting", "Launching requested ML instances")
            self._training[name.lower()] = job
            self._save(TRAINING, job)
        log.debug("training job %s started (%s)", name, launcher.kind)
        self._start(self._run_training, job, launcher, "training")
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
            self._save(TRAINING, job)
            job.done.set()
            metrics = ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in job.metrics)
            log.log(logging.INFO if job.status == "Failed" else logging.DEBUG, "training job %s %s%s%s", job.name, job.status, f" ({metrics})" if metrics else "", f": {job.failure_reason}" if job.failure_reason else "")

    def _training_steps(self, job: TrainingJob, launcher: Launcher) -> None:
        req = job.request
        resources = req.get("ResourceConfig", {})
        hosts = cluster.hosts(job.folder, int(resources.get("InstanceCount", 1) or 1))
        channels = req.get("InputDataConfig", [])
        for host in hosts:
            ml = host.ml_root
            config = ml / "input" / "config"
            config.mkdir(parents=True, exist_ok=True)
            for folder in ("model", "output/data", "checkpoints"):
                (ml / folder).mkdir(parents=True, exist_ok=True)
            (config / "hyperparameters.json").write_text(json.dumps(req.get("HyperParameters", {})))
            (config / "inputdataconfig.json").write_text(json.dumps({c["ChannelName"]: _channel_config(c) for c in channels}))
            (config / "resourceconfig.json").write_text(json.dumps(cluster.resource_config(resources, host.name)))
        job.start_time = utcnow()
        job.set_secondary("Downloading", "Downloading input data")
        for channel in channels:
            source = channel.get("DataSource", {}).get("S3DataSource")
            if source is None:
                job.fail(f"ClientError: channel {channel['ChannelName']!r}: only S3DataSource is supported locally")
                return
            name = channel["ChannelName"]
            if not self._place_input(job, f"channel {name!r}", f"channel {name!r}", source, hosts,
                                     lambda host, name=name: host.ml_root / "input" / "data" / name,
                                     f"/opt/ml/input/data/{name}"):
                return
        if job.stop_requested:
            job.finish("Stopped", "Stopped", "Training job stopped")
            return
        job.set_secondary("Training", "Training image download completed. Training in progress.")
        self._save(TRAINING, job)
        # a multi-host job's collective: the master host's tracker on loopback, on a port of its own; the
        # hosts share this machine's cores, so each gets its share of them and waits without spinning
        # (OpenMP threads spinning while the other host holds the core turn every collective call into
        # a wait for the scheduler: seconds per boosting round)
        cluster_env = cluster.host_env(len(hosts)) if len(hosts) > 1 else {}
        results = self._run_hosts(job, hosts, lambda host: {
            "command": launcher.training_command(),
            "cwd": launcher.workdir,
            "env": {**self.context.endpoint_env(), **_training_job_env(job), **cluster_env, **job.process_env, **req.get("Environment", {})},
            "pythonpath": self._pythonpath(launcher),
            "max_runtime": req.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
        })
        job.metrics = final_metrics(job.process.log_text(), job.metric_definitions, utcnow())
        if any(r.timed_out for _, r, _ in results):
            job.finish("Stopped", "MaxRuntimeExceeded", "Job stopped because it exceeded MaxRuntimeInSeconds")
            return
        failed = _failed_host(results)
        if failed is None and any(r.stopped for _, r, _ in results):
            job.finish("Stopped", "Stopped", "Training job stopped")
            return
        if failed is not None:
            host, result, process = failed
            reason = _read_text(host.ml_root / "output" / "failure") or process.tail(10) or f"exit code {result.returncode}"
            killed = killed_reason(result.returncode)
            if killed:  # the job wrote no reason; the log tail alone would not say it was killed
                reason = f"{killed}. Last output: {reason}" if not reason.startswith("exit code") else killed
            job.fail(f"AlgorithmError: {f'{host.name}: ' if len(hosts) > 1 else ''}{reason}")
            return
        s3 = self.context.s3
        ml = job.ml_root  # the first host's: in a cluster only the master writes the model
        job.set_secondary("Uploading", "Uploading generated training model")
        prefix = req["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{job.name}/output"
        s3.move_in(f"{prefix}/model.tar.gz", _tar(ml / "model", job.folder))
        if any((ml / "output" / "data").iterdir()):
            s3.move_in(f"{prefix}/output.tar.gz", _tar(ml / "output" / "data", job.folder))
        _note(job, f"model.tar.gz packed from /opt/ml/model and moved into {prefix}/")
        job.model_artifacts = f"{prefix}/model.tar.gz"
        job.finish("Completed", "Completed", "Training job completed")

    def _training_job(self, name: str) -> TrainingJob | None:
        with self._lock:
            return self._training.get(name.lower())

    def training_job(self, name: str) -> TrainingJob:
        """The live resource (for the tuner and tests); ResourceNotFound if this process has none."""
        job = self._training_job(name)
        if job is None:
            raise exc.ResourceNotFound.for_resource("Training job", name)
        return job

    def describe_training_job(self, TrainingJobName: str) -> dict:
        job = self._training_job(TrainingJobName)
        if job is not None:
            with self._lock:
                return job.describe()
        stored = self._load(TRAINING, TrainingJobName)
        if stored is None:
            raise exc.ResourceNotFound.for_resource("Training job", TrainingJobName)
        return stored

    def stop_training_job(self, TrainingJobName: str) -> dict:
        job = self._training_job(TrainingJobName)
        if job is None:
            raise exc.ResourceNotFound.for_resource("Training job", TrainingJobName)
        self._stop(job)
        return {}

    def list_training_jobs(self, **filters: Any) -> dict:
        summaries = []
        for name in self._all_names(TRAINING, self._training):
            d = self.describe_training_job(TrainingJobName=name)
            summaries.append({k: d.get(k) for k in ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime", "LastModifiedTime", "TrainingJobStatus") if d.get(k) is not None})
        rows = filter_sort(summaries, "TrainingJobStatus", "TrainingJobName", filters)
        return page(rows, filters.get("NextToken"), filters.get("MaxResults"), "TrainingJobSummaries")

    # -- helpers -----------------------------------------------------------------------------
    def _stop(self, job: Job) -> None:
        with job.lock:
            if job.status in TERMINAL:
                raise exc.JobNotStoppable(job.name, job.status)
            job.stop_requested = True
        for process in job.processes or ([job.process] if job.process is not None else []):
            process.stop()

    def _all_names(self, kind: str, live: dict) -> list[str]:
        with self._lock:
            return sorted(set(live) | set(self.records.names(kind)))

    def ended_event(self, kind: str, name: str) -> threading.Event | None:
        """The event set when a ``processing`` or ``training`` job running in this process ends;
        None when it does not run here (callers then poll its Describe*)."""
        with self._lock:
            job = {"processing": self._processing, "training": self._training}[kind].get(name.lower())
        return job.done if job is not None else None

    def wait(self, kind: str, name: str, timeout: float = 600.0) -> dict:
        """Block until a ``processing`` or ``training`` job is terminal; its Describe* answer."""
        describe, key, status = {
            "processing": (self.describe_processing_job, "ProcessingJobName", "ProcessingJobStatus"),
            "training": (self.describe_training_job, "TrainingJobName", "TrainingJobStatus"),
        }[kind]
        return wait_for(lambda: describe(**{key: name}), status, f"{kind} job {name}", timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop every job still running here and wait for its thread (tests, shutdown)."""
        with self._lock:
            jobs = [*self._processing.values(), *self._training.values()]
            threads = list(self._threads)
        for job in jobs:
            with job.lock:
                if job.status in TERMINAL:
                    continue
                job.stop_requested = True
            for process in job.processes or ([job.process] if job.process is not None else []):
                process.stop()
        for thread in threads:
            thread.join(timeout)


def wait_for(describe: Any, status_key: str, what: str, timeout: float) -> dict:
    """Poll ``describe()`` until its ``status_key`` is terminal (tests, benchmarks)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = describe()
        if answer[status_key] in TERMINAL:
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} still {answer[status_key]} after {timeout}s")
        time.sleep(0.05)


def _training_job_env(job: TrainingJob) -> dict[str, str]:
    """What SageMaker sets in every training container: the job's name and ARN (the training toolkit
    reads TRAINING_JOB_NAME) and, for SDK calls inside it (a script-mode job's S3 submit directory),
    the region."""
    region = job.arn.split(":")[3]
    return {"TRAINING_JOB_NAME": job.name, "TRAINING_JOB_ARN": job.arn, "AWS_REGION": region}


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


def _failed_host(results: list) -> tuple | None:
    """The first host whose process failed by itself (not one stopped because another failed)."""
    return next(((h, r, p) for h, r, p in results if r.returncode != 0 and not r.stopped and not r.timed_out), None)


def _on(host: cluster.Host) -> str:
    """" on algo-k" in a multi-instance job's notes; nothing for a one-instance job."""
    return f" on {host.name}" if host.count > 1 else ""


def _note(job: Job, line: str) -> None:
    """One line of the job's emulator.log: what was done to set it up and promote its outputs."""
    job.log_dir.mkdir(parents=True, exist_ok=True)
    with open(job.log_dir / "emulator.log", "a", encoding="utf-8") as handle:
        handle.write(f"{utcnow().isoformat(timespec='seconds')} {line}\n")


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
