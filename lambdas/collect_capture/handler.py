"""Collect a monitoring run's inputs: the window's capture files, the champion's baseline and the
ground truth uploaded since the window began, copied under ``monitoring/<run>/``.

Event: {"config": {"window_minutes", optional "window_start"/"window_end" (ISO 8601)}, "execution_name",
"started" (the execution's start time)}. Environment: DATA_BUCKET, ENDPOINT_NAME.

Returns {"run", "window": {"start", "end", "text"}, "champion": bool, "traffic": bool, "message",
"capture_files", "ground_truth_files", "job_name", "paths": {...}, "champion_run": {...}}. No champion
deployed or no traffic in the window is an answer ("traffic": false with the message saying which),
never an error: a schedule that fires before the first deploy, or in a quiet hour, succeeds.

A capture file belongs to the window its LastModified falls in ([start, end)), so consecutive
windows never count one file twice. SageMaker writes capture under
``capture/<endpoint>/<variant>/yyyy/mm/dd/hh/``; only the hour folders the window touches are listed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3

CAPTURE_PREFIX = "capture/"
GROUND_TRUTH_PREFIX = "ground-truth/"
MONITORING_PREFIX = "monitoring/"
RETRAINING_PREFIX = "retraining/"
BASELINE_FILES = ("statistics.json", "constraints.json", "schema.json")
MAX_JOB_NAME = 63


class MonitoringInputError(Exception):
    """A setting of the monitoring execution is unusable (a window that is not a time range)."""


class ChampionBaselineMissing(Exception):
    """The deployed champion has no baseline to compare traffic with."""


Lister = Callable[[str], Iterator[dict]]  # key prefix -> objects {"Key", "LastModified"}
Reader = Callable[[str], bytes | None]  # key -> body, or None when absent
Copier = Callable[[str, str], None]  # (source key, destination key)


def parse_time(value: Any, name: str) -> dt.datetime:
    if not isinstance(value, str):
        raise MonitoringInputError(f"{name} must be an ISO 8601 time like 2026-01-31T10:00:00Z, got {value!r}")
    try:
        moment = dt.datetime.fromisoformat(value)  # 3.11+ reads a trailing Z
    except ValueError:
        raise MonitoringInputError(f"{name} {value!r} is not an ISO 8601 time like 2026-01-31T10:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def window(config: dict[str, Any], started: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end): window_end defaults to the execution's start, window_start to window_minutes before."""
    end = parse_time(config["window_end"], "window_end") if config.get("window_end") else parse_time(started, "started")
    minutes = config.get("window_minutes", 60)
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
        raise MonitoringInputError(f"window_minutes must be a positive number, got {minutes!r}")
    start = parse_time(config["window_start"], "window_start") if config.get("window_start") else end - dt.timedelta(minutes=minutes)
    if start >= end:
        raise MonitoringInputError(f"the window starts ({start.isoformat()}) at or after it ends ({end.isoformat()})")
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def hours(start: dt.datetime, end: dt.datetime) -> list[str]:
    """The yyyy/mm/dd/hh/ partitions [start, end] touches."""
    moment = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while moment <= end:
        out.append(moment.strftime("%Y/%m/%d/%H/"))
        moment += dt.timedelta(hours=1)
    return out


def job_name(run: str) -> str:
    """A processing job name (SageMaker: 1-63 of [a-zA-Z0-9-]) unique to the execution."""
    cleaned = re.sub(r"[^a-zA-Z0-9-]+", "-", run).strip("-") or "run"
    return f"monitor-{cleaned}"[:MAX_JOB_NAME].rstrip("-")


def _text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def collect(event: dict[str, Any], *, bucket: str, endpoint: str, list_objects: Lister, read: Reader,
            copy: Copier, list_variants: Callable[[str], list[str]]) -> dict[str, Any]:
    """The pure core: everything the monitoring state machine needs for this run."""
    run = event["execution_name"]
    start, end = window(event.get("config") or {}, event["started"])
    text = f"{_text(start)} - {_text(end)}"
    prefix = f"{MONITORING_PREFIX}{run}/"
    uri = lambda key: f"s3://{bucket}/{key}"
    paths = {
        "run": uri(prefix),
        "capture": uri(f"{prefix}capture/"),
        "baseline": uri(f"{prefix}baseline/"),
        "ground_truth": uri(f"{prefix}ground_truth/"),
        "analysis": uri(f"{prefix}analysis/"),
        "summary_key": f"{prefix}analysis/drift_summary.json",
        "violations": uri(f"{prefix}analysis/constraint_violations.json"),
        "report": uri(f"{prefix}analysis/report.html"),
        "retraining": uri(f"{RETRAINING_PREFIX}{run}/"),
    }
    answer: dict[str, Any] = {"run": run, "endpoint": endpoint, "window": {"start": _text(start), "end": _text(end), "text": text},
                              "job_name": job_name(run), "paths": paths, "champion": False, "traffic": False,
                              "capture_files": 0, "ground_truth_files": 0, "champion_run": None}

    evaluation = read(f"champion/{endpoint}/evaluation.json")
    if evaluation is None:
        answer["message"] = f"no model deployed on {endpoint} yet (no champion/{endpoint}/evaluation.json): nothing to monitor in {text}"
        return answer
    answer["champion"] = True
    captured = []
    for variant in list_variants(f"{CAPTURE_PREFIX}{endpoint}/"):
        for hour in hours(start, end):
            for item in list_objects(f"{CAPTURE_PREFIX}{endpoint}/{variant}/{hour}"):
                if item["Key"].endswith(".jsonl") and start <= item["LastModified"].astimezone(dt.UTC) < end:
                    captured.append((variant, hour, item["Key"]))
    if not captured:
        answer["message"] = f"no traffic in {text}: no capture files under s3://{bucket}/{CAPTURE_PREFIX}{endpoint}/"
        return answer

    record = read(f"champion/{endpoint}/run.json")
    if record is None:
        raise ChampionBaselineMissing(
            f"The champion of {endpoint} has no run record (s3://{bucket}/champion/{endpoint}/run.json), so its "
            "training baseline cannot be found: it was deployed by an older pipeline. Run the training pipeline "
            "once (it records the run), then monitor again.")
    champion_run = json.loads(record)
    schema_prefix = _key(champion_run["schema"], bucket)
    for name in BASELINE_FILES:
        source = f"{schema_prefix}{name}"
        if read(source) is None:
            raise ChampionBaselineMissing(
                f"The champion's baseline s3://{bucket}/{source} does not exist: that model was trained before "
                "preprocessing wrote Model Monitor baselines. Retrain (upload the data again), then monitor again.")
        copy(source, f"{prefix}baseline/{name}")
    copy(f"champion/{endpoint}/evaluation.json", f"{prefix}baseline/evaluation.json")
    for variant, hour, key in captured:
        copy(key, f"{prefix}capture/{variant}/{hour}{key.rsplit('/', 1)[-1]}")
    labels = 0
    # Labels arrive after the traffic they label: every upload since the window began may hold some.
    for hour in hours(start, parse_time(event["started"], "started")):
        for item in list_objects(f"{GROUND_TRUTH_PREFIX}{hour}"):
            if item["Key"].endswith(".jsonl"):
                copy(item["Key"], f"{prefix}ground_truth/{item['Key'][len(GROUND_TRUTH_PREFIX):]}")
                labels += 1
    answer.update(traffic=True, capture_files=len(captured), ground_truth_files=labels, champion_run=champion_run,
                  message=f"{len(captured)} capture file(s) in {text}, {labels} ground-truth file(s)")
    return answer


def _key(uri: str, bucket: str) -> str:
    head = f"s3://{bucket}/"
    if not uri.startswith(head):
        raise ChampionBaselineMissing(f"the champion's schema {uri} is not in the data bucket {bucket}")
    key = uri[len(head):]
    return key if key.endswith("/") else key + "/"


# ---------------------------------------------------------------- AWS glue


def _glue(client: Any, bucket: str) -> dict[str, Callable]:
    def list_objects(prefix: str) -> Iterator[dict]:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def list_variants(prefix: str) -> list[str]:
        variants = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            variants += [p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return variants

    def read(key: str) -> bytes | None:
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None

    def copy(source: str, destination: str) -> None:
        client.copy_object(Bucket=bucket, Key=destination, CopySource={"Bucket": bucket, "Key": source})

    return {"list_objects": list_objects, "list_variants": list_variants, "read": read, "copy": copy}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = os.environ["DATA_BUCKET"]
    return collect(event, bucket=bucket, endpoint=os.environ["ENDPOINT_NAME"], **_glue(boto3.client("s3"), bucket))
