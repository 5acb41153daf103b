"""Pruning old executions of this product's pipelines: which executions go (storage.retention's
policy), and with each, everything it wrote — its record, its SageMaker jobs (records and folders)
and its objects under its run prefix in every bucket — except what is still in use.

A run's prefix is ``runs/<stem>/`` where ``<stem>`` is what its job names share before the step
(``<execution>-<hash>-train`` -> ``runs/<execution>-<hash>/``: lambdas/validate_input's job_names);
an execution that started no job wrote nothing under runs/.

In use, never removed: every S3 URI a SageMaker model, endpoint config, endpoint or registered model
package names (the model artifacts a deployed endpoint serves, the reports a package points at), the
champion records under ``champion/`` and every URI they name, and the training job that produced a
model in use. Objects outside ``runs/`` (raw uploads, predictions, capture, monitoring) are the
user's and are never touched.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field

from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker import retention as sagemaker_retention
from emulator.storage.executions import read_execution
from emulator.storage.layout import Layout
from emulator.storage.retention import ExecutionEntry, choose_prunable, disk_bytes, list_executions

RUN_PREFIX = "runs/{stem}/"  # DESIGN.md: everything a training run writes lives under it
CHAMPION_PREFIX = "champion/"


@dataclass
class PruneReport:
    executions: list[ExecutionEntry] = field(default_factory=list)
    kept_executions: int = 0
    running: int = 0
    objects: list[str] = field(default_factory=list)  # removed (or, in a dry run, to remove)
    objects_in_use: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    jobs_in_use: list[str] = field(default_factory=list)
    freed: int = 0


def champion_uris(s3: LocalS3) -> set[str]:
    """The champion records and every S3 URI written inside them."""
    found: set[str] = set()
    for bucket in s3.buckets():
        for uri in s3.list(f"s3://{bucket}/{CHAMPION_PREFIX}"):
            found.add(uri)
            try:
                found |= sagemaker_retention.uris_in(json.loads(s3.get_bytes(uri)))
            except ValueError:
                continue  # not JSON: the record itself is protected, it names nothing
    return found


def prune(layout: Layout, *, keep: int, older_than: dt.timedelta | None = None, dry_run: bool = False,
          now: dt.datetime | None = None) -> PruneReport:
    """Remove the executions storage.retention.choose_prunable picks, with what they wrote."""
    executions = list_executions(layout)
    chosen = choose_prunable(executions, keep=keep, older_than=older_than, now=now)
    report = PruneReport(executions=chosen, kept_executions=len(executions) - len(chosen),
                         running=sum(e.running for e in executions))
    if not chosen:
        return report
    s3 = LocalS3(layout.s3_root)
    protected = sagemaker_retention.uris_in_use(layout) | champion_uris(s3)
    before = disk_bytes([layout.root])
    for entry in chosen:
        try:
            history = read_execution(entry.folder)["history"]
        except (OSError, ValueError):
            history = []
        jobs = sagemaker_retention.jobs_in_history(history)
        stems = {name.rsplit("-", 1)[0] for names in jobs.values() for name in names if "-" in name}
        objects = [uri for bucket in s3.buckets() for stem in sorted(stems)
                   for uri in s3.list(f"s3://{bucket}/{RUN_PREFIX.format(stem=stem)}")]
        in_use = [uri for uri in objects if sagemaker_retention.is_protected(uri, protected)]
        report.objects_in_use += in_use
        report.objects += [uri for uri in objects if uri not in in_use]
        if dry_run:
            report.jobs += [f"{kind}/{name}" for kind, names in sorted(jobs.items()) for name in sorted(names)]
            continue
        for uri in objects:
            if uri not in in_use:
                s3.delete(uri)
        removed, kept = sagemaker_retention.delete_jobs(layout, jobs, protected)
        report.jobs += removed
        report.jobs_in_use += kept
        shutil.rmtree(entry.folder, ignore_errors=True)
    report.freed = 0 if dry_run else max(0, before - disk_bytes([layout.root]))
    return report
