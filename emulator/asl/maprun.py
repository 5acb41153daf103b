"""A Distributed Map's Map Run: child executions, tolerated failures, the run's record and ResultWriter.

AWS "Map state in Distributed mode" and "Examining Map Runs": each item (or batch, with an
ItemBatcher) is the input of a child execution of the item processor, a state machine of its own:
its context's Execution.Id is ``...:execution:<machine>/<label>:<name>`` (``:express:`` for EXPRESS
children), it has its own history and none of the parent's variables. At most MaxConcurrency
children run at once (threads only when the processor waits on something, as for inline Maps).
Failed items beyond ToleratedFailureCount/Percentage (a failed batch counts all its items) stop the
run: running children are aborted, the rest stay PENDING, and the state fails with
States.ExceedToleratedFailureThreshold. The parent's history gets MapRunStarted and
MapRunSucceeded/MapRunFailed/MapRunAborted; the Map Run record (DescribeMapRun's shape) and each
STANDARD child's record are written under the parent's record folder (storage.mapruns).

AWS "ResultWriter (Map)": with a Resource (``s3:putObject``) the results go to
``<Prefix>/<map run id>/manifest.json`` plus ``SUCCEEDED_n.json``, ``FAILED_n.json`` and
``PENDING_n.json`` (written only when not empty), and the state's result is
``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}``; WriterConfig's Transformation (NONE:
each child's metadata, COMPACT: outputs, FLATTEN: array outputs flattened) and OutputType (JSON,
JSONL) shape them. Without a ResultWriter the result is the children's outputs in item order.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.asl import model
from emulator.asl.dataflow import render_payload
from emulator.asl.errors import EXCEED_TOLERATED_FAILURE_THRESHOLD, RESULT_WRITER_FAILED, RUNTIME, StatesError
from emulator.asl.execution import Cancelled, Execution, ExecutionTimedOut, Frame, payload_json
from emulator.asl.groups import MAX_THREADS
from emulator.asl.history import Cursor, format_timestamp, to_json
from emulator.asl.items import batch_settings, batches, call_s3, read_items
from emulator.asl.paths import Env
from emulator.asl.redrive import Resume, resume_of
from emulator.aws.arns import child_execution_arn, map_run_arn, map_run_state_machine_arn
from emulator.storage.executions import write_history, write_redrive, write_status
from emulator.storage.mapruns import child_dir, write_map_run

RunBlock = Callable[..., Any]  # interpret.run_block, passed in (interpret imports this module)
RESULTS_PER_FILE = 10_000  # children per result file; AWS splits them at 5 GB, a size no local run reaches
_RECORD_EVERY = 0.5  # seconds between rewrites of the Map Run record while children finish


@dataclass
class Child:
    """One child execution: the items it carries and how it ended."""

    index: int
    first: int  # index of its first item
    count: int  # items it carries
    input: Any
    name: str
    status: str = "PENDING"  # PENDING | RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    start: str | None = None
    stop: str | None = None
    resume: dict | None = None  # where a redrive picks this child up
    redrive_count: int = 0

    def to_json(self) -> dict:
        return {key: getattr(self, key) for key in ("name", "status", "output", "error", "cause", "start", "stop",
                                                    "resume", "redrive_count")}


@dataclass
class MapRun:
    """One Map Run's fixed facts."""

    state: model.Map
    run_id: str
    arn: str
    label: str
    state_machine_arn: str  # what its children report as their state machine
    express: bool
    folder: Path | None  # the parent's record folder
    total_items: int
    limit: int  # threads: MaxConcurrency, 0 (unbounded) and anything above capped at MAX_THREADS
    max_concurrency: int  # as the state asked for it (DescribeMapRun reports it)
    tolerated_count: int | None
    tolerated_pct: float | None

    def exceeded(self, failed_items: int) -> bool:
        if self.tolerated_count is None and self.tolerated_pct is None:
            return failed_items > 0
        if self.tolerated_count is not None and failed_items > self.tolerated_count:
            return True
        return (self.tolerated_pct is not None and self.total_items > 0
                and failed_items * 100.0 / self.total_items > self.tolerated_pct)


def run_distributed(ex: Execution, state: model.Map, env: Env, items: list | None, frame: Frame,
                    settings: tuple, prior: dict | None, run_block: RunBlock) -> Any:
    """The result of a Distributed Map (before ResultSelector/Output): run its Map Run to the end."""
    limit, tolerated_count, tolerated_pct, retry_count, entered = settings
    dist = state.distributed
    assert dist is not None
    if dist.item_reader is not None:
        items = read_items(ex, state, dist.item_reader, env, frame)
    assert items is not None
    inputs = _selected(ex, state, env, items, frame, retry_count, entered)
    if dist.item_batcher is not None:
        max_items, max_bytes, batch_input = batch_settings(state, dist.item_batcher, env)
        groups = batches(inputs, max_items, max_bytes, batch_input)
    else:
        groups = [(index, 1, value) for index, value in enumerate(inputs)]
    before = (prior or {}).get("mapRun")  # redriven: the run that failed, picked up
    run_id = before["runId"] if before else _uuid(ex)
    label = dist.label or state.name
    run = MapRun(state=state, run_id=run_id, arn=map_run_arn(ex.state_machine_arn, label, run_id), label=label,
                 state_machine_arn=map_run_state_machine_arn(ex.state_machine_arn, label),
                 express=dist.execution_type == "EXPRESS", folder=ex.record_dir, total_items=len(inputs),
                 limit=min(limit or MAX_THREADS, MAX_THREADS), max_concurrency=limit or 0, tolerated_count=tolerated_count, tolerated_pct=tolerated_pct)
    children = [Child(i, first, count, value, _uuid(ex)) for i, (first, count, value) in enumerate(groups)]
    redrive_count = 0
    if before:
        redrive_count = int(before.get("redriveCount", 0)) + 1
        for child, old in zip(children, before.get("children", []), strict=False):
            child.name, child.redrive_count = old["name"], int(old.get("redrive_count", 0))
            if old["status"] == "SUCCEEDED":
                child.status, child.output, child.start, child.stop = "SUCCEEDED", old["output"], old["start"], old["stop"]
            elif old["status"] != "PENDING":
                child.resume, child.start = old.get("resume"), old.get("start")
                child.redrive_count += 1
    record = _Record(ex, run, children, frame, redrive_count, before.get("startDate") if before else None)
    if before:
        ex.history.add(frame.cursor, "MapRunRedriven", {"mapRunArn": run.arn, "redriveCount": redrive_count})
    else:
        ex.history.add(frame.cursor, "MapRunStarted", {"mapRunArn": run.arn})
    record.write("RUNNING", force=True)

    stop = threading.Event()  # set when the failures exceed what is tolerated
    lock = threading.Lock()
    crash: list[BaseException] = []

    def one(child: Child) -> None:
        if stop.is_set() or frame.cancelled() or child.status == "SUCCEEDED":
            return
        try:
            _run_child(ex, run, child, frame, stop, run_block)
        except BaseException as exc:  # noqa: BLE001 - an emulator bug in a child stops the run
            crash.append(exc)
            stop.set()
            return
        with lock:
            failed = sum(c.count for c in children if c.status in ("FAILED", "TIMED_OUT"))
            if run.exceeded(failed):
                stop.set()
        record.write("RUNNING")

    todo = [child for child in children if child.status != "SUCCEEDED"]
    threaded = (state.processor.has_task or (state.processor.has_wait and ex.time_scale > 0)) and run.limit > 1
    if threaded and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=min(run.limit, len(todo)), thread_name_prefix=f"maprun-{label}") as pool:
            for future in [pool.submit(one, child) for child in todo]:
                future.result()
    else:
        for child in todo:
            one(child)
    if crash:
        raise crash[0]
    return _conclude(ex, run, children, record, frame, stop)


def _uuid(ex: Execution) -> str:
    """A version-4 UUID from the execution's randomness (a seeded run names its Map Runs the same)."""
    return str(uuid.UUID(int=ex.rng.getrandbits(128), version=4))


def _selected(ex: Execution, state: model.Map, env: Env, items: list, frame: Frame, retry_count: int, entered: str) -> list:
    """Each item through ItemSelector ($$.Map.Item.Index/Value as in an inline Map)."""
    if state.item_selector is None:
        return items
    out = []
    for index, item in enumerate(items):
        item_env = Env(env.data, ex.context(state, entered, retry_count, item=(index, item)), ex.rng, frame.scope)
        out.append(render_payload(state.item_selector, item_env, "ItemSelector"))
    return out


def _conclude(ex: Execution, run: MapRun, children: list[Child], record: _Record, frame: Frame, stop: threading.Event) -> Any:
    """Write the results, record how the run ended, and return the state's result or raise."""
    failed_items = sum(c.count for c in children if c.status in ("FAILED", "TIMED_OUT"))
    if frame.cancelled():
        record.write("ABORTED", force=True)
        ex.history.add(frame.cursor, "MapRunAborted")
        raise _with_progress(Cancelled(), run, children, record)
    failed = stop.is_set() or run.exceeded(failed_items)
    writer = run.state.distributed.result_writer
    try:
        result = _write_results(ex, run, children, writer, frame) if writer is not None else _compact(children)
    except StatesError as err:
        record.write("FAILED", force=True)
        ex.history.add(frame.cursor, "MapRunFailed", {"error": err.name, "cause": err.cause or ""})
        raise _with_progress(err, run, children, record) from None
    if failed:
        record.write("FAILED", force=True)
        error = EXCEED_TOLERATED_FAILURE_THRESHOLD
        cause = (f"The Map Run {run.arn} failed: {failed_items} of {run.total_items} items failed, more than tolerated "
                 f"(ToleratedFailureCount {run.tolerated_count}, ToleratedFailurePercentage {run.tolerated_pct})")
        ex.history.add(frame.cursor, "MapRunFailed", {"error": error, "cause": cause})
        raise _with_progress(StatesError(error, cause), run, children, record)
    record.write("SUCCEEDED", force=True)
    ex.history.add(frame.cursor, "MapRunSucceeded")
    return result


def _with_progress(exc: BaseException, run: MapRun, children: list[Child], record: _Record) -> BaseException:
    """The Map Run as a redrive picks it up: its id, each child's outcome and redrive point."""
    exc.group_progress = {"mapRun": {"runId": run.run_id, "redriveCount": record.redrive_count,  # type: ignore[attr-defined]
                                     "startDate": record.start, "children": [c.to_json() for c in children]}}
    return exc


# -- one child execution -------------------------------------------------------------------------------


def _run_child(ex: Execution, run: MapRun, child: Child, frame: Frame, stop: threading.Event, run_block: RunBlock) -> None:
    arn = child_execution_arn(ex.state_machine_arn, run.label, child.name, express=run.express)
    history = ex.history.fresh()
    folder = child_dir(run.folder, run.run_id, child.name) if run.folder is not None and not run.express else None
    # EXPRESS children keep no history: AWS starts a failed one again from the beginning
    resume = Resume.from_json(child.resume) if child.resume and not run.express else None
    prior = _prior_history(folder) if resume is not None and folder is not None else []
    history.events.extend(prior)
    began = format_timestamp(history.now(Cursor()))
    child_ex = dataclasses.replace(
        ex, machine=run.state.processor, history=history, execution_arn=arn, execution_name=child.name,
        state_machine_arn=run.state_machine_arn, state_machine_name=f"{ex.state_machine_name}/{run.label}",
        input=child.input, start=history.now(Cursor()), start_text=child.start or began,
        timeout_seconds=None, stop=threading.Event(), record_dir=folder, redrive_count=child.redrive_count)
    cursor = Cursor(prior[-1]["id"] if prior else 0)
    child_frame = Frame(cursor, frame.cancels + (stop,))
    child.status, child.start, child.resume = "RUNNING", child_ex.start_text, None
    status = {"executionArn": arn, "stateMachineArn": run.state_machine_arn, "mapRunArn": run.arn, "name": child.name,
              "status": "RUNNING", "startDate": child.start, "input": to_json(child.input),
              "redriveCount": child.redrive_count}
    if folder is not None:
        write_status(folder, status)
    if resume is not None:
        history.add(cursor, "ExecutionRedriven", {"redriveCount": child.redrive_count})
    else:
        history.add(cursor, "ExecutionStarted", {"input": payload_json(child.input, f"The input of child execution {child.name}"),
                                                 "inputDetails": {"truncated": False}, "roleArn": ex.role_arn})
    point = None
    try:
        child.output = run_block(child_ex, run.state.processor, child.input, child_frame, resume)
        child.status = "SUCCEEDED"
        history.add(cursor, "ExecutionSucceeded", {"output": to_json(child.output), "outputDetails": {"truncated": False}})
    except StatesError as err:
        child.status, child.error, child.cause, point = "FAILED", err.name or None, err.cause, resume_of(err)
        history.add(cursor, "ExecutionFailed", _details(child.error, child.cause))
    except ExecutionTimedOut as exc:
        child.status, child.error, child.cause, point = "TIMED_OUT", "States.Timeout", exc.cause, resume_of(exc)
        history.add(cursor, "ExecutionTimedOut", _details(child.error, child.cause))
    except Cancelled as exc:
        child.status, child.cause, point = "ABORTED", "The Map Run stopped", resume_of(exc)
        history.add(cursor, "ExecutionAborted", {"cause": child.cause})
    child.stop = format_timestamp(history.now(cursor))
    child.resume = point.to_json() if point is not None else None
    if folder is not None:
        final = {**status, "status": child.status, "stopDate": child.stop}
        if child.status == "SUCCEEDED":
            final["output"] = to_json(child.output)
        final.update({k: v for k, v in (("error", child.error), ("cause", child.cause)) if v is not None})
        if resume is not None:
            final["redriveDate"] = began
        write_history(folder, history.events, final, child.output)
        write_redrive(folder, None)  # a child is redriven through its parent, from the Map Run's progress


def _prior_history(folder: Path) -> list[dict]:
    path = folder / "history.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _details(error: str | None, cause: str | None) -> dict:
    return {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}


# -- the Map Run record --------------------------------------------------------------------------------


class _Record:
    """DescribeMapRun's answer, rewritten (at most every _RECORD_EVERY seconds) as children end."""

    def __init__(self, ex: Execution, run: MapRun, children: list[Child], frame: Frame, redrive_count: int,
                 start: str | None):
        self.ex, self.run, self.children, self.frame = ex, run, children, frame
        self.redrive_count = redrive_count
        self.start = start or format_timestamp(ex.history.now(frame.cursor))
        self.redrive_date = format_timestamp(ex.history.now(frame.cursor)) if redrive_count else None
        self._written = 0.0
        self._lock = threading.Lock()

    def counts(self, weight: Callable[[Child], int]) -> dict:
        by = {"PENDING": 0, "RUNNING": 0, "SUCCEEDED": 0, "FAILED": 0, "TIMED_OUT": 0, "ABORTED": 0}
        for child in self.children:
            by[child.status] += weight(child)
        total = sum(by.values())
        return {"pending": by["PENDING"], "running": by["RUNNING"], "succeeded": by["SUCCEEDED"], "failed": by["FAILED"],
                "timedOut": by["TIMED_OUT"], "aborted": by["ABORTED"], "total": total,
                "resultsWritten": by["SUCCEEDED"] + by["FAILED"] + by["TIMED_OUT"] + by["ABORTED"],
                "failuresNotRedrivable": 0, "pendingRedrive": 0}

    def write(self, status: str, force: bool = False) -> None:
        if self.run.folder is None:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._written < _RECORD_EVERY:
                return
            self._written = now
            record = {
                "mapRunArn": self.run.arn, "executionArn": self.ex.execution_arn, "stateMachineArn": self.run.state_machine_arn,
                "label": self.run.label, "status": status, "startDate": self.start,
                "maxConcurrency": self.run.max_concurrency,
                "toleratedFailurePercentage": float(self.run.tolerated_pct or 0.0),
                "toleratedFailureCount": int(self.run.tolerated_count or 0),
                "itemCounts": self.counts(lambda c: c.count), "executionCounts": self.counts(lambda c: 1),
                "redriveCount": self.redrive_count,
            }
            if self.redrive_date:
                record["redriveDate"] = self.redrive_date
            if status != "RUNNING":
                record["stopDate"] = format_timestamp(self.ex.history.now(self.frame.cursor))
            write_map_run(self.run.folder, self.run.run_id, record)


# -- results ---------------------------------------------------------------------------------------------


def _compact(children: list[Child]) -> list:
    """The children's outputs in item order; a failed child's slot holds its {"Error", "Cause"}."""
    return [c.output if c.status == "SUCCEEDED" else {"Error": c.error or "", "Cause": c.cause or ""}
            for c in children if c.status != "PENDING"]


def _metadata(ex: Execution, run: MapRun, child: Child) -> dict:
    """A child execution as AWS's result files list it (Transformation NONE)."""
    entry: dict[str, Any] = {
        "ExecutionArn": child_execution_arn(ex.state_machine_arn, run.label, child.name, express=run.express),
        "Input": to_json(child.input), "InputDetails": {"Included": True}, "Name": child.name,
    }
    if child.status == "SUCCEEDED":
        entry.update({"Output": to_json(child.output), "OutputDetails": {"Included": True},
                      "RedriveStatus": "NOT_REDRIVABLE", "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven"})
    else:
        entry.update(_details_json(child))
        entry["RedriveStatus"] = "REDRIVABLE" if not run.express else "NOT_REDRIVABLE"
    entry.update({"RedriveCount": child.redrive_count, "StartDate": child.start, "StateMachineArn": run.state_machine_arn,
                  "Status": child.status, "StopDate": child.stop})
    return entry


def _details_json(child: Child) -> dict:
    return {k: v for k, v in (("Error", child.error), ("Cause", child.cause)) if v is not None}


def _shaped(ex: Execution, run: MapRun, children: list[Child], transformation: str) -> list:
    if transformation == "NONE":
        return [_metadata(ex, run, c) for c in children]
    out: list = []
    for child in children:
        if child.status != "SUCCEEDED":
            out.append(_metadata(ex, run, child))  # AWS: a failed child is written unchanged, as with NONE
        elif transformation == "FLATTEN" and isinstance(child.output, list):
            out.extend(child.output)
        else:
            out.append(child.output)
    return out


def _write_results(ex: Execution, run: MapRun, children: list[Child], writer: model.ResultWriter, frame: Frame) -> Any:
    started = [c for c in children if c.status != "PENDING"]
    if writer.resource is None:  # WriterConfig alone: the shaped results are the state's result
        return _shaped(ex, run, started, writer.transformation or "COMPACT")
    env = Env(None, {}, ex.rng, frame.scope)
    where = "Arguments" if run.state.jsonata else "Parameters"
    try:
        parameters = render_payload(writer.parameters, env, f"ResultWriter {where}") if writer.parameters is not None else {}
    except StatesError as err:
        raise StatesError(RESULT_WRITER_FAILED, f"the ResultWriter {where} of Map state {run.state.name!r} failed: {err.cause}") from None
    bucket = parameters.get("Bucket") if isinstance(parameters, dict) else None
    if not isinstance(bucket, str) or not bucket:
        raise StatesError(RESULT_WRITER_FAILED, f"the ResultWriter {where} of Map state {run.state.name!r} must name a Bucket")
    prefix = str(parameters.get("Prefix", "")).strip("/")
    base = f"{prefix}/{run.run_id}" if prefix else run.run_id
    transformation = writer.transformation or "NONE"
    extension = "json" if writer.output_type == "JSON" else "jsonl"
    files: dict[str, list] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    groups = {
        "SUCCEEDED": [c for c in children if c.status == "SUCCEEDED"],
        "FAILED": [c for c in children if c.status in ("FAILED", "TIMED_OUT", "ABORTED")],
        "PENDING": [c for c in children if c.status == "PENDING"],
    }
    for kind, members in groups.items():
        for number, offset in enumerate(range(0, len(members), RESULTS_PER_FILE)):
            chunk = members[offset:offset + RESULTS_PER_FILE]
            if kind == "PENDING":
                rows = [{"Input": to_json(c.input), "InputDetails": {"Included": True}, "Status": "PENDING"} for c in chunk]
            else:
                rows = _shaped(ex, run, chunk, transformation)
            body = (json.dumps(rows, separators=(",", ":"), ensure_ascii=False) if extension == "json"
                    else "".join(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n" for row in rows))
            key = f"{base}/{kind}_{number}.{extension}"
            _put(ex, writer, bucket, key, body, run, frame)
            files[kind].append({"Key": key, "Size": len(body.encode())})
    manifest = {"DestinationBucket": bucket, "MapRunArn": run.arn, "ResultFiles": files}
    _put(ex, writer, bucket, f"{base}/manifest.json", json.dumps(manifest, indent=2), run, frame)
    return {"MapRunArn": run.arn, "ResultWriterDetails": {"Bucket": bucket, "Key": f"{base}/manifest.json"}}


def _put(ex: Execution, writer: model.ResultWriter, bucket: str, key: str, body: str, run: MapRun, frame: Frame) -> None:
    try:
        call_s3(ex, writer.resource, {"Bucket": bucket, "Key": key, "Body": body}, run.state, frame)
    except StatesError as err:
        if err.name == RUNTIME and "No local integration" in (err.cause or ""):
            raise
        raise StatesError(RESULT_WRITER_FAILED, f"writing s3://{bucket}/{key} failed: {err.name}: {err.cause}") from None
