"""Raw-row serving: our stack (featurizer -> XGBoost -> label decoder) vs SageMaker's XGBoost stack.

All serve the same XGBoost model (abalone, 100 trees of depth 6) on the same two cores, driven by
the same load generator (benchmarks/loadgen.py) in this process:

  ours        containers.serving (uvicorn workers, one per core) serving the serial pipeline:
              a raw CSV row of the uploaded table in, the decoded answer out (three containers)
  emulator    the emulator's own InvokeEndpoint route (POST /endpoints/<name>/invocations on the
              invoke server that `run` and `serve` start: one process, a thread per connection)
              serving the same three containers as a CreateModel Containers/Serial endpoint,
              through the same predictors - what `python -m emulator serve` users call
  reference   SageMaker's own XGBoost serving stack (Flask + gunicorn + gevent, one worker per core,
              benchmarks/reference_xgboost_stack.py) serving the model alone: the already
              featurized row in, the score out (one container, no featurizer or decoder)

Measured: single-row requests on one and on eight connections (requests/s, p50, p99); 1,000-row
requests on two connections (rows/s) against an in-process featurize+predict of the same bodies
(pandas read, transform_with_schema, Booster.predict, one thread per core); and the failed requests
while our workers are replaced (SIGHUP, a model reload) and while the emulator's endpoint is updated
(UpdateEndpoint to a new config, blue/green all at once) under eight connections of load.
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
from containers.xgboost.artifacts import model_archive
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.storage.layout import Layout
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


# The emulator's invoke server alone in its own process (as in `serve`), so the load generator in
# this process does not share its GIL.
EMULATOR_SERVER = """
import sys, time
from pathlib import Path
from emulator.services.sagemaker.invoke_server import RuntimeServer
from emulator.storage.layout import Layout
server = RuntimeServer(Layout.at(Path(sys.argv[1]))).start()
print(server.port, flush=True)
time.sleep(1e9)
"""


class EmulatorEndpoint:
    """The serial pipeline deployed as the emulator deploys the pipeline's model: S3 artifacts,
    CreateModel with Containers and InferenceExecutionConfig Serial, an endpoint, the invoke server."""

    def __init__(self, model: pipeline_helpers.PipelineModel, folder: Path):
        self.folder = folder
        self.server = subprocess.Popen([sys.executable, "-c", EMULATOR_SERVER, str(folder / "state")], cwd=ROOT,
                                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
                                       stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.port = int(self.server.stdout.readline())
        s3 = LocalS3(folder / "s3")
        s3.create_bucket("bench")
        out = model.folder / "out"
        s3.put_bytes("s3://bench/featurizer.tar.gz", (out / "featurizer" / "model.tar.gz").read_bytes())
        s3.put_bytes("s3://bench/decoder.tar.gz", (out / "decoder" / "model.tar.gz").read_bytes())
        s3.put_bytes("s3://bench/model.tar.gz", model_archive(model.booster))
        context = SageMakerContext(layout=Layout.at(folder / "state"), s3=s3, project_root=ROOT,
                                   resolve_image=lambda uri: None,
                                   invoke_server_url=lambda: f"http://127.0.0.1:{self.port}")
        self.sagemaker = SageMakerBackend(context)
        self.urls = {"featurizer": "s3://bench/featurizer.tar.gz", "model": "s3://bench/model.tar.gz",
                     "decoder": "s3://bench/decoder.tar.gz"}
        self.containers = [{"ContainerHostname": spec.name, "Image": spec.image, "ModelDataUrl": self.urls[spec.name],
                            "Environment": dict(spec.environment)} for spec in model.containers]
        self.deploy("bench-1", create=True)

    def deploy(self, name: str, create: bool = False) -> None:
        hosting = self.sagemaker.hosting
        hosting.create_model(ModelName=name, Containers=self.containers, InferenceExecutionConfig={"Mode": "Serial"},
                             ExecutionRoleArn="arn:aws:iam::000000000000:role/bench")
        hosting.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        if create:
            hosting.create_endpoint(EndpointName="bench", EndpointConfigName=name)
        else:
            hosting.update_endpoint(EndpointName="bench", EndpointConfigName=name)
        while True:
            described = hosting.describe_endpoint(EndpointName="bench")
            if described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == name:
                return
            if described["EndpointStatus"] == "Failed":
                raise RuntimeError(described.get("FailureReason"))
            time.sleep(0.05)

    def stop(self) -> None:
        self.sagemaker.close()
        self.server.terminate()
        self.server.wait(timeout=15)


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
        emulator = EmulatorEndpoint(model, Path(tmp) / "emulator")
        emulator_path = "/endpoints/bench/invocations"
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
            request = urllib.request.Request(f"http://127.0.0.1:{emulator.port}{emulator_path}", data=raw_single[0],
                                             headers={"Content-Type": "text/csv"})
            with urllib.request.urlopen(request) as answer:
                assert float(answer.read()) == ours_score

            # alternated, best of --repeat for each stack: the machine is shared, so a run's worst
            # moments say more about the neighbours than about either stack
            refs, ours_runs, emulator_runs = [], [], []
            for _ in range(args.repeat):
                refs.append(measure("reference", ref_port, "/invocations", ref_single, ref_batch, args.seconds))
                ours_runs.append(measure("ours", ours.port, "/invocations", raw_single, raw_batch, args.seconds))
                emulator_runs.append(measure("emulator", emulator.port, emulator_path, raw_single, raw_batch,
                                             args.seconds))
            ref, our, emu = best(refs), best(ours_runs), best(emulator_runs)
            in_process = in_process_rate(model, raw_batch, args.seconds)

            # a reload of every worker (what an endpoint update does to a process) under load
            one = build_requests("127.0.0.1", ours.port, "/invocations", raw_single, "text/csv")
            timer = threading.Timer(args.seconds / 3, ours.reload)
            timer.start()
            during_reload = run_load("127.0.0.1", ours.port, one, 8, args.seconds)
            timer.join()

            # an UpdateEndpoint of the emulator's endpoint (new model and config) under load
            one = build_requests("127.0.0.1", emulator.port, emulator_path, raw_single, "text/csv")
            timer = threading.Timer(args.seconds / 4, emulator.deploy, args=("bench-2",))
            timer.start()
            during_update = run_load("127.0.0.1", emulator.port, one, 8, args.seconds)
            timer.join()
            updated = emulator.sagemaker.hosting.describe_endpoint(EndpointName="bench")["EndpointConfigName"]
        finally:
            emulator.stop()
            ours.stop()
            reference.terminate()
            reference.wait(timeout=15)

    print(f"load average before/after: {load_before} / {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          "(the machine is shared; other work competes for the same cores)")
    print(f"abalone, XGBoost {args.rounds} trees depth 6; {args.workers} workers per stack on {os.cpu_count()} cores; "
          f"{args.seconds:.0f} s per measurement, best of {args.repeat}")
    print(f"{'':34}{'reference':>11}{'ours':>11}{'ratio':>8}{'emulator':>11}{'ratio':>8}   goal")
    rows = []
    for c in (1, 8):
        rows.append((f"single row, {c} conn: requests/s", ref[c].rate, our[c].rate, emu[c].rate, ref[c].rate,
                     f">= {GOALS[f'rate_{c}']:.1f}x"))
        rows.append((f"single row, {c} conn: p50 ms", ref[c].p50_ms, our[c].p50_ms, emu[c].p50_ms, None, ""))
        rows.append((f"single row, {c} conn: p99 ms", ref[c].p99_ms, our[c].p99_ms, emu[c].p99_ms, None,
                     f"< {GOALS['p99_1_ms']:.0f} ms" if c == 1 else ""))
    rows.append(("1,000-row requests: rows/s", ref["batch"].rate * 1000, our["batch"].rate * 1000,
                 emu["batch"].rate * 1000, in_process, f">= {GOALS['batch']:.1f}x in-process"))
    for label, a, b, e, base, goal in rows:
        width = ".3f" if a < 100 else ".0f"
        ratios = [f"{v / base:7.2f}x" if base else f"{'':8}" for v in (b, e)]
        print(f"{label:34}{a:11{width}}{b:11{width}}{ratios[0]}{e:11{width}}{ratios[1]}   {goal}")
    print(f"{'in-process featurize+predict: rows/s':34}{in_process:11.0f}")
    print(f"reload of every worker under 8 connections (ours): {during_reload.requests} requests, {during_reload.failed} "
          f"failed ({during_reload.reconnects} keep-alive connections closed by a retiring worker, reopened by the client)")
    print(f"UpdateEndpoint under 8 connections (emulator): {during_update.requests} requests, {during_update.failed} failed "
          f"(now serving {updated})")
    print("(ratio: to the reference, except 1,000-row requests: to in-process featurize+predict)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
