"""What of SageMaker's local state an execution's jobs may give back once it has ended, and what must
survive any prune: every S3 URI a model, an endpoint config or a registered model package names.

An execution's jobs are read from its history (the job names in its SageMaker tasks' parameters)
plus, for a tuning job, the trials it started. ``release_job_data`` is the default policy applied
after every execution (storage.retention.scrub_job_folder on each finished job); ``delete_jobs`` is
what `clean` does to the jobs of an execution it removes.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from typing import Any

from emulator.services.sagemaker.hosting import CONFIGS, ENDPOINTS, MODELS
from emulator.services.sagemaker.jobs import PROCESSING, TERMINAL, TRAINING
from emulator.services.sagemaker.registry import PACKAGES
from emulator.services.sagemaker.transform import TRANSFORM
from emulator.services.sagemaker.tuning import TRIALS, TUNING
from emulator.storage.layout import Layout
from emulator.storage.records import RecordStore, owner_dead
from emulator.storage.retention import prune_shared_inputs, scrub_job_folder

log = logging.getLogger("emulator.services.sagemaker.retention")

# request member naming the job -> record kind
JOB_NAME_KEYS = {
    "ProcessingJobName": PROCESSING,
    "TrainingJobName": TRAINING,
    "TransformJobName": TRANSFORM,
    "HyperParameterTuningJobName": TUNING,
}
_STATUS_KEYS = {PROCESSING: "ProcessingJobStatus", TRAINING: "TrainingJobStatus", TRANSFORM: "TransformJobStatus",
                TUNING: "HyperParameterTuningJobStatus"}


def records_of(layout: Layout) -> RecordStore:
    return RecordStore(layout.sagemaker_records, casefold=True)


def jobs_in_history(history: Iterable[dict]) -> dict[str, set[str]]:
    """Record kind -> names of the SageMaker jobs an execution's tasks created."""
    found: dict[str, set[str]] = {}
    for event in history:
        if event.get("type") != "TaskScheduled":
            continue
        details = event.get("taskScheduledEventDetails") or {}
        if details.get("resourceType") != "sagemaker" and ":sagemaker:" not in str(details.get("resource", "")):
            continue
        try:
            parameters = json.loads(details.get("parameters") or "{}")
        except ValueError:
            continue
        for key, kind in JOB_NAME_KEYS.items():
            name = parameters.get(key) if isinstance(parameters, dict) else None
            if isinstance(name, str) and name:
                found.setdefault(kind, set()).add(name)
    return found


def with_trials(records: RecordStore, jobs: dict[str, set[str]]) -> dict[str, set[str]]:
    """``jobs`` plus the training jobs each tuning job among them started."""
    out = {kind: set(names) for kind, names in jobs.items()}
    for tuning in jobs.get(TUNING, ()):
        trials = (records.read(TRIALS, tuning) or {}).get("TrainingJobSummaries", [])
        out.setdefault(TRAINING, set()).update(t["TrainingJobName"] for t in trials if t.get("TrainingJobName"))
    return out


def _finished(record: dict | None, kind: str) -> bool:
    return bool(record) and record.get(_STATUS_KEYS[kind]) in TERMINAL


def _failed_outputs(record: dict, kind: str) -> list[str]:
    """Folders (relative to the job folder) a job that did not complete keeps: its unpromoted outputs."""
    if kind == TRAINING:
        return ["ml/model", "ml/output/data", "ml/checkpoints"]
    outputs = (record.get("ProcessingOutputConfig") or {}).get("Outputs", [])
    paths = [o["S3Output"]["LocalPath"] for o in outputs if isinstance(o.get("S3Output"), dict)]
    return ["ml/" + p.removeprefix("/opt/ml").strip("/") for p in paths if p.startswith("/opt/ml")]


def release_job_data(layout: Layout, jobs: dict[str, set[str]]) -> int:
    """The default policy after an execution: each finished processing or training job's folder keeps
    its logs and configuration, drops its data; the bytes given back (hard links give back none)."""
    records = records_of(layout)
    freed = 0
    for kind, names in with_trials(records, jobs).items():
        if kind not in (PROCESSING, TRAINING):
            continue  # a transform job's folder holds its log only; a tuning job has none
        for name in names:
            record = records.read(kind, name)
            if not _finished(record, kind):
                continue  # never touch a running job's folder
            completed = record.get(_STATUS_KEYS[kind]) == "Completed"
            keep = () if completed else _failed_outputs(record, kind)
            freed += scrub_job_folder(layout.sagemaker_work_dir(kind, name.lower()), keep_also=keep)
    return freed + prune_shared_inputs(layout.shared_inputs_dir)


def _uris(value: Any, into: set[str]) -> set[str]:
    if isinstance(value, str) and value.startswith("s3://"):
        into.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _uris(item, into)
    elif isinstance(value, list):
        for item in value:
            _uris(item, into)
    return into


def uris_in_use(layout: Layout) -> set[str]:
    """Every S3 URI a model, an endpoint config, an endpoint or a model package record names: the
    model artifacts an endpoint serves, the reports a registered package points at."""
    records = records_of(layout)
    found: set[str] = set()
    for kind in (MODELS, CONFIGS, ENDPOINTS, PACKAGES):
        for record in records.all(kind):
            _uris(record, found)
    return found


def uris_in(value: Any) -> set[str]:
    """Every ``s3://`` string anywhere in a JSON value."""
    return _uris(value, set())


def is_protected(uri: str, protected: set[str]) -> bool:
    """``uri`` is named in ``protected``, or lies under a protected prefix (an uncompressed model)."""
    return any(uri == p or (p.endswith("/") and uri.startswith(p)) or uri.startswith(p.rstrip("/") + "/")
               for p in protected)


def _outputs(record: dict, kind: str) -> set[str]:
    """The S3 URIs a job wrote (a model, an output prefix): what makes it the origin of an object."""
    if kind == TRAINING:
        return {(record.get("ModelArtifacts") or {}).get("S3ModelArtifacts") or ""} - {""}
    if kind == PROCESSING:
        outputs = (record.get("ProcessingOutputConfig") or {}).get("Outputs", [])
        return {o["S3Output"]["S3Uri"] for o in outputs if isinstance(o.get("S3Output"), dict)}
    if kind == TRANSFORM:
        return {(record.get("TransformOutput") or {}).get("S3OutputPath") or ""} - {""}
    return set()


def delete_jobs(layout: Layout, jobs: dict[str, set[str]], protected: set[str]) -> tuple[list[str], list[str]]:
    """Remove the records and folders of ``jobs`` (and tuning trials); a job that wrote a protected
    URI (the training job of a deployed model, the evaluation a package names) and a running job stay.
    Returns (removed, kept) as ``kind/name``."""
    records = records_of(layout)
    removed, kept = [], []
    for kind, names in sorted(with_trials(records, jobs).items()):
        for name in sorted(names):
            record = records.read(kind, name)
            running = record is not None and not _finished(record, kind) and not owner_dead(record)
            produced_in_use = record is not None and any(
                is_protected(p, {out}) for out in _outputs(record, kind) for p in protected)
            if running or produced_in_use:
                kept.append(f"{kind}/{name}")
                continue
            records.delete(kind, name)
            if kind == TUNING:
                records.delete(TRIALS, name)
            shutil.rmtree(layout.sagemaker_work_dir(kind, name.lower()), ignore_errors=True)
            removed.append(f"{kind}/{name}")
    return removed, kept
