"""Raw-row serving: our stack (featurizer -> XGBoost -> label decoder) vs SageMaker's XGBoost stack.

Both serve the same XGBoost model (abalone, 100 trees of depth 6) on the same two cores, driven by
the same load generator (benchmarks/loadgen.py) in this process:

  ours        containers.serving (uvicorn workers, one per core) serving the serial pipeline:
              a raw CSV row of the uploaded table in, the decoded answer out (three containers)
  reference   SageMaker's own XGBoost serving stack (Flask + gunicorn + gevent, one worker per core,
              benchmarks/reference_xgboost_stack.py) serving the model alone: the already
              featurized row in, the score out (one container, no featurizer or decoder)

Measured: single-row requests on one and on eight connections (requests/s, p50, p99); 1,000-row
requests on two connections (rows/s) against an in-process featurize+predict of the same bodies
(pandas read, transform_with_schema, Booster.predict, one thread per core); and the failed requests
while our workers are replaced (SIGHUP, a model reload) under eight connections of load.
Both stacks run with OMP_NUM_THREADS=1 (one xgboost thread per worker, a worker per core).
Each measurement runs --repeat times, the two stacks alternating; the best run of each is shown.
Usage: .venv/bin/python benchmarks/bench_endpoint.py [--seconds S] [--rounds R] [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests" / "containers")]

import pipeline_helpers
from loadgen import build_requests, run_load

from containers.serving.factories import model_environment
from containers.serving.workers import ServerProcess
from processing_scripts import preprocess

GOALS = {"rate_1": 2.0, "rate_8": 2.0, "p99_1_ms": 2.0, "batch": 0.8}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_reference(model_dir: Path, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "reference_xgboost_stack.py"),
                                "--model-dir", str(model_dir), "--port", str(port), "--workers", str(workers)],
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    import urllib.request

    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the reference stack did not start")


def in_process_rate(model: pipeline_helpers.PipelineModel, bodies: list[bytes], seconds: float) -> float:
    """Rows/s of featurize+predict in this process: what the endpoint's 1,000-row requests are held to.
    The faster of xgboost on one thread and on every core (OpenMP loses on a busy machine)."""
    return max(_in_process_rate(model, bodies, seconds / 2, threads) for threads in (1, os.cpu_count() or 1))


def _in_process_rate(model: pipeline_helpers.PipelineModel, bodies: list[bytes], seconds: float, threads: int) -> float:
    columns = list(model.feature_rows().columns)
    booster = model.booster.copy()
    booster.set_param({"nthread": threads})
    rows, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        frame = pd.read_csv(io.BytesIO(bodies[i % len(bodies)]), header=None, names=columns, skipinitialspace=True)
        booster.predict(xgb.DMatrix(preprocess.transform_with_schema(model.schema, frame)))
        rows += len(frame)
        i += 1
    return rows / (time.perf_counter() - start)


def measure(name: str, port: int, path: str, single: list[bytes], batch: list[bytes], seconds: float) -> dict:
    one = build_requests("127.0.0.1", port, path, single, "text/csv")
    run_load("127.0.0.1", port, one, 8, 1.0)  # warm-up
    result = {}
    for connections in (1, 8):
        load = run_load("127.0.0.1", port, one, connections, seconds)
        result[connections] = load
    result["batch"] = run_load("127.0.0.1", port, build_requests("127.0.0.1", port, path, batch, "text/csv"), 2, seconds)
    for key, load in result.items():
        if load.failed:
            print(f"  {name} {key}: {load.failed} failed requests {load.statuses}")
    return result


def best(runs: list[dict]) -> dict:
    """Per measurement, the run with the most requests (its own p50/p99 come with it)."""
    return {key: max((run[key] for run in runs), key=lambda load: load.rate) for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())

    with tempfile.TemporaryDirectory() as tmp:
        model = pipeline_helpers.build("abalone.csv", Path(tmp), rounds=args.rounds, max_depth=6)
        raw = model.feature_rows()
        raw_lines = pipeline_helpers.csv_lines(raw)
        features = preprocess.transform_with_schema(model.schema, raw)
        feature_lines = [",".join(map(repr, row)) for row in features.tolist()]
        n = len(raw_lines)
        raw_single = [line.encode() for line in raw_lines[:1000]]
        ref_single = [line.encode() for line in feature_lines[:1000]]
        starts = range(0, n - 1000, 500)
        raw_batch = ["\n".join(raw_lines[s:s + 1000]).encode() for s in starts]
        ref_batch = ["\n".join(feature_lines[s:s + 1000]).encode() for s in starts]

        reference, ref_port = start_reference(model.containers[1].model_dir, args.workers)
        ours = ServerProcess.start("containers.serving.factories:model_app", workers=args.workers,
                                   env={**model_environment(model.containers), "OMP_NUM_THREADS": "1"})
        try:
            # same answer for the same row: our decoded score equals the reference's score
            import urllib.request

            request = urllib.request.Request(ours.base_url + "/invocations", data=raw_single[0],
                                             headers={"Content-Type": "text/csv"})
            with urllib.request.urlopen(request) as answer:
                ours_score = float(answer.read())
            request = urllib.request.Request(f"http://127.0.0.1:{ref_port}/invocations", data=ref_single[0],
                                             headers={"Content-Type": "text/csv"})
            with urllib.request.urlopen(request) as answer:
                ref_score = float(answer.read())
            assert ours_score == ref_score, (ours_score, ref_score)

            # alternated, best of --repeat for each stack: the machine is shared, so a run's worst
            # moments say more about the neighbours than about either stack
            refs, ours_runs = [], []
            for _ in range(args.repeat):
                refs.append(measure("reference", ref_port, "/invocations", ref_single, ref_batch, args.seconds))
                ours_runs.append(measure("ours", ours.port, "/invocations", raw_single, raw_batch, args.seconds))
            ref, our = best(refs), best(ours_runs)
            in_process = in_process_rate(model, raw_batch, args.seconds)

            # a reload of every worker (what an endpoint update does to a process) under load
            one = build_requests("127.0.0.1", ours.port, "/invocations", raw_single, "text/csv")
            timer = threading.Timer(args.seconds / 3, ours.reload)
            timer.start()
            during_reload = run_load("127.0.0.1", ours.port, one, 8, args.seconds)
            timer.join()
        finally:
            ours.stop()
            reference.terminate()
            reference.wait(timeout=15)

    print(f"load average before/after: {load_before} / {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          "(the machine is shared; other work competes for the same cores)")
    print(f"abalone, XGBoost {args.rounds} trees depth 6; {args.workers} workers per stack on {os.cpu_count()} cores; "
          f"{args.seconds:.0f} s per measurement, best of {args.repeat}")
    print(f"{'':34}{'reference':>12}{'ours':>12}{'ratio':>8}   goal")
    rows = []
    for c in (1, 8):
        rows.append((f"single row, {c} conn: requests/s", ref[c].rate, our[c].rate, our[c].rate / ref[c].rate,
                     f">= {GOALS[f'rate_{c}']:.1f}x"))
        rows.append((f"single row, {c} conn: p50 ms", ref[c].p50_ms, our[c].p50_ms, None, ""))
        rows.append((f"single row, {c} conn: p99 ms", ref[c].p99_ms, our[c].p99_ms, None,
                     f"< {GOALS['p99_1_ms']:.0f} ms" if c == 1 else ""))
    rows.append(("1,000-row requests: rows/s", ref["batch"].rate * 1000, our["batch"].rate * 1000,
                 our["batch"].rate * 1000 / in_process, f">= {GOALS['batch']:.1f}x in-process"))
    for label, a, b, ratio, goal in rows:
        shown = f"{ratio:7.2f}x" if ratio is not None else f"{'':8}"
        print(f"{label:34}{a:12.3f}{b:12.3f}{shown}   {goal}" if a < 100 else f"{label:34}{a:12.0f}{b:12.0f}{shown}   {goal}")
    print(f"{'in-process featurize+predict: rows/s':34}{'':12}{in_process:12.0f}")
    print(f"reload of every worker under 8 connections: {during_reload.requests} requests, {during_reload.failed} failed "
          f"({during_reload.reconnects} keep-alive connections closed by a retiring worker, reopened by the client)")
    print("(ratio: ours / reference, except 1,000-row requests: ours / in-process)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
