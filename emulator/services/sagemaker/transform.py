"""Batch transform, locally: every object under the input prefix through the model's predictor.

A job runs on a background thread of this process; its Describe answer is a record in the
SageMaker record store (owned by this process: one left running by a dead process reads Failed) and
its log is ``transform.log`` in its work folder. It follows the
SageMaker contract: records split by SplitType; SingleRecord sends one record per request,
MultiRecord packs records up to MaxPayloadInMB; DataProcessing's InputFilter, JoinSource and
OutputFilter apply JSONPath to each record (a CSV row is the JSON array of its fields, so
``$[1:]`` drops the first column); one ``<input object>.out`` per input object under S3OutputPath,
each written atomically. The predictor is the same one an endpoint would use, loaded once per job.
With InstanceCount >= 2 the objects are spread over that many worker processes (transform_worker.py),
one per instance, each loading the model once.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import gzip
import io
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jsonpath_ng import parse as jsonpath_parse
from jsonpath_ng.exceptions import JsonPathParserError

from emulator.aws.clock import utcnow
from emulator.services.sagemaker import cluster, serving
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.exceptions import (
    JobNotStoppable,
    ResourceInUse,
    ResourceNotFound,
    ValidationException,
)
from emulator.services.sagemaker.hosting import HostingBackend
from emulator.services.sagemaker.listing import filter_sort, page
from emulator.services.sagemaker.runner import launch
from emulator.services.sagemaker.serving import container_kind
from emulator.storage.processes import ProcessGroups
from emulator.storage.records import owner_dead, without_owner

WORKER_MODULE = "emulator.services.sagemaker.transform_worker"
log = logging.getLogger("emulator.services.sagemaker.transform")

MB = 1024 * 1024
TERMINAL = ("Completed", "Failed", "Stopped")
TRANSFORM = "transform-jobs"  # record kind


class TransformFailure(Exception):
    """A job failure; the message becomes the job's FailureReason."""


class _Stopped(Exception):
    """StopTransformJob arrived: abandon the job between two requests."""


# -- JSONPath filters -----------------------------------------------------------------------

_UNION = re.compile(r"^\$\[(?P<body>[^\]'\"]*,[^\]'\"]*)\]$")


@dataclass(frozen=True)
class RecordFilter:
    """An InputFilter/OutputFilter: JSONPath over a record (a CSV row is a JSON array).

    jsonpath-ng parses ``$[1:]`` and ``$[0,-1]`` but not a union holding a slice (``$[0,5:]``, as
    the SageMaker docs write it), so such a union is split into one expression per member.
    """

    expression: str

    def __post_init__(self) -> None:
        try:
            self._parts()
        except JsonPathParserError as exc:
            raise ValidationException(f"Invalid JSONPath {self.expression!r} in DataProcessing: {exc}") from exc

    def _parts(self) -> list:
        match = _UNION.match(self.expression.replace(" ", ""))
        if match and ":" in match.group("body"):
            return [jsonpath_parse(f"$[{member}]") for member in match.group("body").split(",")]
        return [jsonpath_parse(self.expression)]

    @property
    def identity(self) -> bool:
        return self.expression.strip() == "$"

    def apply(self, record: Any) -> Any:
        if self.identity:
            return record
        matches = [m for part in self._parts() for m in part.find(record)]
        if isinstance(record, dict):
            if len(matches) == 1 and not _is_field(matches[0]):
                return matches[0].value
            return {str(m.path): m.value for m in matches}
        if len(matches) == 1 and not _is_union_or_slice(self.expression):
            return matches[0].value
        return [m.value for m in matches]


def _is_field(match: Any) -> bool:
    return type(match.path).__name__ == "Fields" and len(getattr(match.path, "fields", ())) > 1


def _is_union_or_slice(expression: str) -> bool:
    return ":" in expression or "," in expression or "*" in expression


# -- record codecs --------------------------------------------------------------------------


def _is_csv(content_type: str | None) -> bool:
    return (content_type or "text/csv").split(";")[0].strip().lower() in ("text/csv", "text/plain", "")


def _parse_record(record: bytes, content_type: str | None) -> Any:
    text = record.decode("utf-8")
    if _is_csv(content_type):
        return next(csv.reader([text]), [])
    return json.loads(text)


def _format_record(value: Any, content_type: str | None) -> bytes:
    if _is_csv(content_type):
        values = value if isinstance(value, list) else [value]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(values)
        return out.getvalue().encode()
    return json.dumps(value, separators=(",", ":")).encode()


def split_response(body: bytes, count: int, accept: str | None) -> list[bytes]:
    """One output per request record: lines, a comma list (old XGBoost CSV), or a JSON
    ``{"predictions": [...]}`` document."""
    text = body.decode("utf-8").strip()
    if count == 1:
        return [text.encode()]
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == count:
        return [line.encode() for line in lines]
    if len(lines) == 1 and _is_csv(accept):
        values = lines[0].split(",")
        if len(values) == count:
            return [v.encode() for v in values]
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("predictions"), list) and len(document["predictions"]) == count:
        return [json.dumps(p, separators=(",", ":")).encode() for p in document["predictions"]]
    raise TransformFailure(
        f"ClientError: the model returned {len(lines)} line(s) for {count} record(s), so its output cannot be "
        f"matched to the input records; use BatchStrategy SingleRecord or an Accept type with one record per line"
    )


# -- the job --------------------------------------------------------------------------------


@dataclass
class TransformJob:
    """One TransformJob resource; ``spec`` is the request with SageMaker's defaults filled in."""

    name: str
    arn: str
    spec: dict
    creation_time: dt.datetime = field(default_factory=utcnow)
    status: str = "InProgress"
    failure_reason: str | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)  # set once the record is terminal
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # status changes vs describe()

    def describe(self) -> dict:
        with self.lock:
            out = {"TransformJobName": self.name, "TransformJobArn": self.arn, "TransformJobStatus": self.status,
                   "CreationTime": self.creation_time, **copy.deepcopy(self.spec)}
            if self.start_time:
                out["TransformStartTime"] = self.start_time
            if self.end_time:
                out["TransformEndTime"] = self.end_time
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            return out


class TransformBackend:
    """CreateTransformJob / DescribeTransformJob / StopTransformJob of one local account; models
    come from the hosting backend's public API (one model registry for endpoints and transforms)."""

    def __init__(self, context: SageMakerContext, hosting: HostingBackend):
        self.context = context
        self.hosting = hosting
        self.records = context.records()
        self._jobs: dict[str, TransformJob] = {}  # by lower-cased name
        self._lock = threading.Lock()

    # -- API --------------------------------------------------------------------------------

    def create_transform_job(self, TransformJobName: str, ModelName: str, TransformInput: dict, TransformOutput: dict,
                             TransformResources: dict, **rest: Any) -> dict:
        name = TransformJobName
        arn = self.context.arn("transform-job", name)
        for container in self.hosting.model(ModelName).containers:
            container_kind(container)
        source = TransformInput["DataSource"]["S3DataSource"]
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise ValidationException(
                f"S3DataType {source['S3DataType']!r} is not supported locally: use S3Prefix for transform input"
            )
        split = TransformInput.get("SplitType", "None")
        if split not in ("None", "Line"):
            raise ValidationException(f"SplitType {split!r} is not supported locally: use Line or None")
        processing = rest.get("DataProcessing") or {}
        for key in ("InputFilter", "OutputFilter"):
            if processing.get(key):
                RecordFilter(processing[key])
        if processing.get("JoinSource", "None") == "Input" and TransformOutput.get("AssembleWith", "None") != "Line" \
                and split == "Line":
            raise ValidationException("JoinSource Input with SplitType Line requires AssembleWith Line.")
        spec = {
            "ModelName": ModelName, "TransformInput": TransformInput, "TransformOutput": TransformOutput,
            "TransformResources": TransformResources,
            "MaxConcurrentTransforms": int(rest.get("MaxConcurrentTransforms") or 1),
            "MaxPayloadInMB": int(rest.get("MaxPayloadInMB", 6)),
            "BatchStrategy": rest.get("BatchStrategy") or "MultiRecord",
        }
        for key in ("Environment", "DataProcessing", "ModelClientConfig", "DataCaptureConfig", "ExperimentConfig"):
            if rest.get(key):
                spec[key] = rest[key]
        with self._lock:
            if name.lower() in self._jobs or self.records.exists(TRANSFORM, name):
                raise ResourceInUse.job_exists(arn)
            job = TransformJob(name, arn, spec)
            self._jobs[name.lower()] = job
            self._save(job)
        log.debug("transform job %s started (model %s, input %s)", name, ModelName, source["S3Uri"])
        job.thread = threading.Thread(target=self._run, args=(job,), name=f"transform-{name}", daemon=True)
        job.thread.start()
        return {"TransformJobArn": arn}

    def _live(self, name: str) -> TransformJob | None:
        with self._lock:
            return self._jobs.get(name.lower())

    def describe_transform_job(self, TransformJobName: str) -> dict:
        job = self._live(TransformJobName)
        if job is not None:
            return job.describe()
        record = self.records.read(TRANSFORM, TransformJobName)
        if record is None:
            raise ResourceNotFound.for_resource("TransformJob", TransformJobName)
        if record["TransformJobStatus"] in ("InProgress", "Stopping") and owner_dead(record):
            record["TransformJobStatus"] = "Failed"
            record["FailureReason"] = "InternalServerError: the emulator process running this job exited"
        return without_owner(record)

    def stop_transform_job(self, TransformJobName: str) -> dict:
        job = self._live(TransformJobName)
        if job is None:
            self.describe_transform_job(TransformJobName)  # not found -> ResourceNotFound
            raise ValidationException(f"Transform job {TransformJobName} is not running in this emulator process.")
        with job.lock:  # checked and changed at once: the job may be finishing right now
            if job.status in (*TERMINAL, "Stopping"):
                raise JobNotStoppable(TransformJobName, job.status)
            job.status = "Stopping"
        self._save(job)
        job.stop_requested.set()
        return {}

    def list_transform_jobs(self, **filters: Any) -> dict:
        with self._lock:
            names = sorted({job.name for job in self._jobs.values()} | set(self.records.names(TRANSFORM)))
        summaries, seen = [], set()
        for name in names:
            if name.lower() in seen:
                continue
            seen.add(name.lower())
            d = self.describe_transform_job(TransformJobName=name)
            summaries.append({k: d[k] for k in ("TransformJobName", "TransformJobArn", "CreationTime", "TransformEndTime",
                                                "LastModifiedTime", "TransformJobStatus", "FailureReason") if d.get(k) is not None})
        rows = filter_sort(summaries, "TransformJobStatus", "TransformJobName", filters)
        return page(rows, filters.get("NextToken"), filters.get("MaxResults"), "TransformJobSummaries")

    def wait(self, TransformJobName: str, timeout: float | None = None) -> dict:
        """Block until the job is terminal (tests and benchmarks)."""
        job = self._live(TransformJobName)
        if job is not None and job.thread:
            job.thread.join(timeout)
        return self.describe_transform_job(TransformJobName)

    def ended_event(self, name: str) -> threading.Event | None:
        """Set when the job, running in this process, has ended; None if it does not run here."""
        job = self._live(name)
        return job.done if job else None

    def close(self, timeout: float = 30.0) -> None:
        """Stop every job still running here and wait for its thread (tests, shutdown)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_requested.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout)

    # -- storage ----------------------------------------------------------------------------

    def _save(self, job: TransformJob) -> None:
        self.records.write(TRANSFORM, job.name, job.describe(), owned=True)

    # -- running ----------------------------------------------------------------------------

    def _run(self, job: TransformJob) -> None:
        started = time.monotonic()
        with job.lock:
            job.start_time = utcnow()
        self._save(job)
        folder = self.context.work_dir(TRANSFORM, job.name)
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(folder / "transform.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        job_log = logging.getLogger(f"emulator.services.sagemaker.transform.{job.name}")
        job_log.addHandler(handler)
        try:
            rows = self._transform(job, job_log)
            status, reason = ("Stopped", None) if job.stop_requested.is_set() else ("Completed", None)
        except _Stopped:
            status, reason, rows = "Stopped", None, 0
        except TransformFailure as exc:
            status, reason, rows = "Failed", str(exc), 0
        except Exception as exc:  # noqa: BLE001 - any crash fails the job with its reason, as AWS does
            job_log.exception("transform failed")
            status, reason, rows = "Failed", f"AlgorithmError: {type(exc).__name__}: {exc}", 0
        finally:
            job_log.removeHandler(handler)
            handler.close()
        with job.lock:
            job.status, job.end_time = status, utcnow()
            if reason:
                job.failure_reason = reason[:1024]
        self._save(job)
        job.done.set()
        log.debug("transform job %s %s in %.2fs (%d records)%s", job.name, status, time.monotonic() - started, rows,
                 f": {reason}" if reason else "")

    def _transform(self, job: TransformJob, job_log: logging.Logger) -> int:
        record = job.spec
        source = record["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        s3 = self.context.s3
        inputs = s3.list(source)
        if not inputs:
            raise TransformFailure(f"ClientError: no objects found under the input {source}")
        prefix = source.split("://", 1)[1].split("/", 1)[1] if source.count("/") > 2 else ""
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        out_prefix = record["TransformOutput"]["S3OutputPath"].rstrip("/")
        work = [(uri, f"{out_prefix}/{uri.split('://', 1)[1].split('/', 1)[1][len(base):]}.out") for uri in inputs]
        instances = int(record["TransformResources"].get("InstanceCount", 1) or 1)
        if instances > 1:
            served = serving.prepare_model(self.hosting.model(record["ModelName"]).spec, s3, self.hosting.artifacts_root)
            return self._run_instances(job, served, work, instances, job_log)
        predictor = self.hosting.predictor(record["ModelName"], batch=True)
        return transform_objects(s3, record, predictor, work, job.stop_requested, job_log)

    def _run_instances(self, job: TransformJob, served: list, work: list[tuple[str, str]], instances: int,
                       job_log: logging.Logger) -> int:
        """InstanceCount >= 2: the input objects spread over that many worker processes (each object to
        one instance, in turn, as SageMaker spreads them), each loading the model once, as an instance's
        container does. Each host's peak memory goes to the job's logs/resources.json."""
        folder = self.context.work_dir(TRANSFORM, job.name)
        hosts = cluster.hosts(folder, instances)
        plan = folder / "instances.json"
        plan.write_text(json.dumps({"s3_root": str(self.context.s3.root), "region": self.context.s3.region,
                                    "record": job.spec, "served": [m.to_record() for m in served],
                                    "shares": [work[h.rank::instances] for h in hosts]}, default=str))
        root = Path(self.context.project_root)
        groups = ProcessGroups(self.context.layout.process_groups_dir)
        processes = []
        for host in hosts:
            host.ml_root.mkdir(parents=True, exist_ok=True)
            processes.append(launch([sys.executable, "-m", WORKER_MODULE, str(plan), str(host.rank)], ml_root=host.ml_root,
                                    log_dir=host.log_dir, cwd=root, pythonpath=[root], groups=groups))
        job_log.info("%d object(s) over %d instances (pids %s)", len(work), instances, [p.popen.pid for p in processes])
        results: dict[int, Any] = {}
        while len(results) < len(processes):
            if job.stop_requested.is_set():
                for process in processes:
                    process.stop()
            for i, process in enumerate(processes):
                if i not in results and (result := process.poll()).returncode is not None:
                    results[i] = result
                    if result.returncode != 0:
                        for other in processes:
                            other.stop()
            time.sleep(0.02)
        cluster.write_resources(folder / "logs", {h.name: p.peak_rss for h, p in zip(hosts, processes)})
        if job.stop_requested.is_set():
            raise _Stopped
        for host, process in zip(hosts, processes):
            if results[host.rank].returncode != 0 and not results[host.rank].stopped:
                failure = host.ml_root / "failure"
                reason = failure.read_text().strip() if failure.is_file() else process.tail(10)
                raise TransformFailure(reason if reason.startswith(("ClientError", "AlgorithmError"))
                                       else f"AlgorithmError: {host.name}: {reason}")
        return sum(int((h.ml_root / "records").read_text()) for h in hosts)

    @staticmethod
    def _post_process(source: bytes, output: bytes, content_type: str, accept: str | None, join: bool,
                      output_filter: RecordFilter) -> bytes:
        out_csv = _is_csv(accept) if accept else _is_csv(content_type)
        value: Any = _parse_record(output, "text/csv" if out_csv else "application/json")
        if join:
            original = _parse_record(source, content_type)
            if _is_csv(content_type):
                value = original + (value if isinstance(value, list) else [value])
            elif isinstance(original, dict):
                value = {**original, "SageMakerOutput": value}
            else:
                value = {"SageMakerInput": original, "SageMakerOutput": value}
            out_csv = _is_csv(content_type)
        value = output_filter.apply(value)
        return _format_record(value, "text/csv" if out_csv else "application/json")


def _count_newlines(data: bytes) -> int:
    """Newlines in ``data``: numpy's vectorised compare is ~4x bytes.count on multi-MB payloads."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == 0x0A))


def _pack(records: list[bytes], max_bytes: int) -> list[list[int]]:
    """Indexes of records grouped into requests of at most ``max_bytes`` (newline-joined)."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, rec in enumerate(records):
        extra = len(rec) + (1 if current else 0)
        if current and size + extra > max_bytes:
            batches.append(current)
            current, size = [], 0
            extra = len(rec)
        current.append(index)
        size += extra
    if current:
        batches.append(current)
    return batches


def _chunks(data: bytes, max_bytes: int | None) -> Iterator[bytes]:
    """``data`` cut at newlines into pieces of at most ``max_bytes`` (blank lines dropped)."""
    data = data.strip(b"\n")
    if not max_bytes:
        if data:
            yield data
        return
    start = 0
    while start < len(data):
        end = start + max_bytes
        if end >= len(data):
            end = len(data)
        else:
            cut = data.rfind(b"\n", start, end + 1)
            if cut <= start:  # one record longer than the limit: let invoke() report it
                cut = data.find(b"\n", end)
                cut = len(data) if cut < 0 else cut
            end = cut
        chunk = data[start:end].strip(b"\n")
        if chunk:
            yield chunk
        start = end + 1


def transform_objects(s3: Any, record: dict, predictor: Any, work: list[tuple[str, str]], stopped: threading.Event,
                      job_log: logging.Logger) -> int:
    """Each (input URI, output URI) through the predictor; the records transformed."""
    total = 0
    for uri, out_uri in work:
        if stopped.is_set():
            break
        data = s3.get_bytes(uri)
        if record["TransformInput"].get("CompressionType") == "Gzip":
            data = gzip.decompress(data)
        output, count = transform_object(record, predictor, data, stopped)
        s3.put_bytes(out_uri, output)
        job_log.debug("%s: %d record(s) -> %s", uri, count, out_uri)
        total += count
    return total


def transform_object(record: dict, predictor: Any, data: bytes, stopped: threading.Event) -> tuple[bytes, int]:
    """One input object through the predictor, as the job's spec says: the output object's bytes and the
    number of records."""
    content_type = record["TransformInput"].get("ContentType") or "text/csv"  # the XGBoost default
    accept = record["TransformOutput"].get("Accept")
    assemble_line = record["TransformOutput"].get("AssembleWith", "None") == "Line"
    processing = record.get("DataProcessing") or {}
    input_filter = RecordFilter(processing.get("InputFilter") or "$")
    output_filter = RecordFilter(processing.get("OutputFilter") or "$")
    join = processing.get("JoinSource", "None") == "Input"
    simple = input_filter.identity and output_filter.identity and not join
    max_bytes = record["MaxPayloadInMB"] * MB or None
    line_split = record["TransformInput"].get("SplitType", "None") == "Line"

    def invoke(payload: bytes) -> bytes:
        if stopped.is_set():
            raise _Stopped
        if max_bytes and len(payload) > max_bytes:
            raise TransformFailure(
                f"ClientError: a request of {len(payload)} bytes exceeds MaxPayloadInMB "
                f"({record['MaxPayloadInMB']}); raise MaxPayloadInMB or split the input (SplitType Line)"
            )
        response = predictor.invoke(payload, content_type, accept)
        if response.status >= 400:
            message = response.body.decode("utf-8", "replace")[:500]
            container = getattr(response, "container", None)  # a serial pipeline names the one that refused
            where = f" (container {container})" if container else ""
            raise TransformFailure(f"ClientError: the model returned status {response.status}{where}: {message}")
        return response.body

    if not line_split:
        records = [data]
    elif simple and record["BatchStrategy"] == "MultiRecord":
        # Fast path: cut the raw bytes at newlines, no per-record work in Python.
        pieces, count = [], 0
        for chunk in _chunks(data, max_bytes):
            count += _count_newlines(chunk) + (0 if chunk.endswith(b"\n") else 1)
            body = invoke(chunk)
            pieces.append(body if not assemble_line or body.endswith(b"\n") else body + b"\n")
        return b"".join(pieces), count
    else:
        records = [line for line in data.splitlines() if line.strip()]

    requests = [_format_record(input_filter.apply(_parse_record(r, content_type)), content_type)
                if not input_filter.identity else r for r in records]
    if not line_split:
        batches = [[0]]
    elif record["BatchStrategy"] == "SingleRecord":
        batches = [[i] for i in range(len(requests))]
    else:
        batches = _pack(requests, max_bytes or len(data) + 1)
    workers = max(1, min(record["MaxConcurrentTransforms"], os.cpu_count() or 1))
    payloads = [b"\n".join(requests[i] for i in batch) for batch in batches]
    with ThreadPoolExecutor(workers) as pool:
        bodies = list(pool.map(invoke, payloads)) if workers > 1 else [invoke(p) for p in payloads]
    outputs: list[bytes] = []
    for batch, body in zip(batches, bodies, strict=True):
        if simple:
            outputs.append(body.rstrip(b"\n") if assemble_line else body)
            continue
        for index, out in zip(batch, split_response(body, len(batch), accept), strict=True):
            outputs.append(TransformBackend._post_process(records[index], out, content_type, accept, join, output_filter))
    if assemble_line:
        return b"".join(o + b"\n" for o in outputs), len(records)
    return b"".join(outputs), len(records)

