"""Whole-pipeline benchmark: `make run`'s execution (the sample CSV dropped under raw/, the real
template, cdk.json's defaults: 8 tuning trials of 300 rounds) timed end to end, split into the time
job processes were running (SageMaker jobs and Lambda invocations, from their own records) and the
rest — the emulator's orchestration overhead, measured against the jobs' own time in the same run.

Goals (issue 6): orchestration overhead <= 5 % of the run; the run <= 60 s on 2 cores.

    .venv/bin/python benchmarks/bench_pipeline.py [--time-scale 0.01]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _time(value) -> float:
    """Epoch seconds from the forms the records use: a datetime, ISO text, {"__datetime__": ISO}, or a number."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dict) and "__datetime__" in value:
        value = value["__datetime__"]
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return dt.datetime.fromisoformat(str(value)).timestamp()  # 3.11 reads a trailing Z


def job_intervals(state_dir: Path) -> list[tuple[float, float, str]]:
    """(start, end, label) of every SageMaker job's working time, from its Describe record."""
    from emulator.storage.layout import Layout
    from emulator.storage.records import RecordStore

    records = RecordStore(Layout.at(state_dir).sagemaker_records, casefold=True)
    found = []
    fields = {
        "processing-jobs": ("ProcessingStartTime", "ProcessingEndTime"),
        "transform-jobs": ("TransformStartTime", "TransformEndTime"),
    }
    for kind in ("training-jobs", "processing-jobs", "transform-jobs"):
        for record in records.all(kind):
            if kind == "training-jobs":
                for step in record.get("SecondaryStatusTransitions", []):
                    if step["Status"] in ("Downloading", "Training", "Uploading") and "EndTime" in step:
                        found.append((_time(step["StartTime"]), _time(step["EndTime"]), kind))
                continue
            start, end = fields[kind]
            if start in record and end in record:
                found.append((_time(record[start]), _time(record[end]), kind))
    return found


def history_intervals(history: list[dict]) -> tuple[list[tuple[float, float, str]], float]:
    """Lambda invocations (started -> finished) and the total of Wait time, both on the execution's
    clock, which runs ahead of the wall clock by the unslept part of every Wait."""
    lambdas, waits, open_lambda, open_wait = [], 0.0, None, None
    for event in history:
        stamp = _time(event["timestamp"])
        kind = event["type"]
        if kind == "LambdaFunctionStarted":
            open_lambda = stamp
        elif kind in ("LambdaFunctionSucceeded", "LambdaFunctionFailed") and open_lambda is not None:
            lambdas.append((open_lambda, stamp, "lambda"))
            open_lambda = None
        elif kind == "WaitStateEntered":
            open_wait = stamp
        elif kind == "WaitStateExited" and open_wait is not None:
            waits += stamp - open_wait
            open_wait = None
    return lambdas, waits


def record_wall_sleeps() -> list[tuple[float, float, str]]:
    """Wall-clock intervals of every real sleep the interpreter takes for a Wait state or a Retry
    interval (instrumentation of this benchmark only: it wraps the interpreter's one sleep)."""
    from emulator.asl import execution

    slept: list[tuple[float, float, str]] = []
    original = execution.Execution._sleep_wall

    def sleep_and_record(self, wall: float, frame) -> float:
        begin = time.time()
        try:
            return original(self, wall, frame)
        finally:
            slept.append((begin, time.time(), "wait"))

    execution.Execution._sleep_wall = sleep_and_record
    return slept


def covered(intervals: list[tuple[float, float, str]]) -> float:
    """Seconds covered by at least one interval (parallel tuning trials count once)."""
    total, end = 0.0, float("-inf")
    for start, stop, _ in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-scale", type=float, default=0.01, help="Wait/Retry scale (default 0.01)")
    args = parser.parse_args()

    from emulator.cli.synth import synth
    from emulator.cloud.deploy import deploy
    from emulator.runtime import Runtime

    sleeps = record_wall_sleeps()
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp) / "cdk.out"
        # as `make run` does: the CDK CLI in its own process. Synthesizing in this one would leave
        # aws-cdk-lib's large jsii heap behind, and its garbage collections would land in the run.
        synth(ROOT, {}, outdir=str(outdir))
        deployment = deploy(outdir, Path(tmp) / "state")
        with Runtime.open(Path(tmp) / "state", ROOT, deployment=deployment, time_scale=args.time_scale) as runtime:
            bucket, prefix = runtime.events.upload_trigger()
            uri = f"s3://{bucket}/{prefix}abalone.csv"
            runtime.s3.put_file(uri, ROOT / "data" / "abalone.csv")
            began = time.time()
            results = [d.result for d in runtime.events.object_created(runtime.s3, uri)]
            wall = time.time() - began
            result = results[0]
            if result.status != "SUCCEEDED":
                print(f"pipeline {result.status}: {result.error}: {result.cause}")
                return 1
            jobs = job_intervals(runtime.state_dir)
            lambdas, waits = history_intervals(result.history)

    job_time = covered(jobs)
    # Lambdas run in their own states, never beside a job or a Wait: their durations add. The
    # endpoint-polling Waits run beside the batch transform: only their time outside it adds.
    lambda_time = sum(stop - start for start, stop, _ in lambdas)
    process_time = job_time + lambda_time
    wait_time = covered(jobs + sleeps) - job_time
    overhead = wall - process_time - wait_time
    print(f"whole pipeline (sample abalone.csv, cdk.json defaults, time scale {args.time_scale})")
    print(f"  run wall time                 {wall:7.2f} s   (goal <= 60 s)")
    print(f"  SageMaker job processes       {job_time:7.2f} s   ({len(jobs)} job phases, parallel trials counted once)")
    print(f"  + Lambda invocations          {lambda_time:7.2f} s")
    print(f"  + Wait sleeps beside no job   {wait_time:7.2f} s   (the definition's {waits:.0f} s of endpoint polling "
          f"x {args.time_scale}: {sum(b - a for a, b, _ in sleeps):.2f} s slept in all)")
    print(f"  orchestration overhead        {overhead:7.2f} s   (the rest: interpreter, local S3, job set-up, polling)")
    print(f"  overhead / run                {overhead / wall:7.1%}   (goal <= 5 %; {(overhead + wait_time) / wall:.1%} "
          f"counting the Wait sleeps as overhead)")
    print(f"  run / time in job processes   {wall / process_time:7.3f}x")
    print(f"  test {result.output['gate']['metric']} {result.output['gate']['value']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
