"""What data capture costs the endpoint: throughput with capture on (100% of requests, input and output)
against capture off, in the same session, on the same invoke server and model.

One invoke server process (the emulator's InvokeEndpoint route, what `run` and `serve` start) serves two
endpoints of the same serial pipeline (abalone: featurizer -> XGBoost -> label decoder): ``plain``
(no DataCaptureConfig) and ``captured`` (DataCaptureConfig at 100%). The same load generator
(benchmarks/loadgen.py) drives single-row requests on one and on eight connections, and 100-row
requests on two; the two endpoints alternate, --repeat times each, and the best run of each is kept
(the machine is shared: a run's worst moments say more about the neighbours than about capture).
Printed: requests/s off and on, their ratio and the cost in percent (goal: under 5%), and — steadier
on a busy machine — the time one request thread spends in the capture call against a request's p50.
Afterwards the server is stopped cleanly and every request answered by ``captured`` (warm-up
included) must be one capture line, and ``plain`` must have written none.
Usage: .venv/bin/python benchmarks/bench_capture.py [--seconds S] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests" / "containers")]

import pipeline_helpers
from loadgen import build_requests, run_load

from containers.xgboost.artifacts import model_archive
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.capture import CaptureConfig, CaptureWriter
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.storage.layout import Layout

GOAL_COST = 0.05  # capture may cost at most 5% of the throughput
# The invoke server in its own process (the load generator must not share its interpreter); SIGTERM stops
# it cleanly, so what capture buffered is written before it exits.
SERVER = """
import signal, sys, threading
from pathlib import Path
from emulator.services.sagemaker.invoke_server import RuntimeServer
from emulator.storage.layout import Layout
server = RuntimeServer(Layout.at(Path(sys.argv[1]))).start()
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
print(server.port, flush=True)
done.wait()
server.stop()
print(server.httpd.directory.capture.captured, flush=True)
"""
CAPTURE = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://bench/capture/",
           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
           "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}


def deploy(model: pipeline_helpers.PipelineModel, state: Path, port: int) -> SageMakerBackend:
    """Two endpoints of the same serial pipeline, ``plain`` and ``captured``."""
    layout = Layout.at(state)
    s3 = LocalS3(layout.s3_root)  # where the invoke server writes capture files
    s3.create_bucket("bench")
    out = model.folder / "out"
    urls = {"featurizer": "s3://bench/featurizer.tar.gz", "model": "s3://bench/model.tar.gz",
            "decoder": "s3://bench/decoder.tar.gz"}
    s3.put_bytes(urls["featurizer"], (out / "featurizer" / "model.tar.gz").read_bytes())
    s3.put_bytes(urls["decoder"], (out / "decoder" / "model.tar.gz").read_bytes())
    s3.put_bytes(urls["model"], model_archive(model.booster))
    backend = SageMakerBackend(SageMakerContext(layout=layout, s3=s3, project_root=ROOT, resolve_image=lambda uri: None,
                                                invoke_server_url=lambda: f"http://127.0.0.1:{port}"))
    hosting = backend.hosting
    containers = [{"ContainerHostname": spec.name, "Image": spec.image, "ModelDataUrl": urls[spec.name],
                   "Environment": dict(spec.environment)} for spec in model.containers]
    hosting.create_model(ModelName="bench", Containers=containers, InferenceExecutionConfig={"Mode": "Serial"},
                         ExecutionRoleArn="arn:aws:iam::000000000000:role/bench")
    for name, capture in (("plain", None), ("captured", CAPTURE)):
        hosting.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "bench", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
            **({"DataCaptureConfig": capture} if capture else {}))
        hosting.create_endpoint(EndpointName=name, EndpointConfigName=name)
    for name in ("plain", "captured"):
        while hosting.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
            time.sleep(0.05)
    return backend


def measure(port: int, endpoint: str, single: list[bytes], batch: list[bytes], seconds: float) -> dict:
    path = f"/endpoints/{endpoint}/invocations"
    one = build_requests("127.0.0.1", port, path, single, "text/csv")
    many = build_requests("127.0.0.1", port, path, batch, "text/csv")
    result = {"1 connection, 1 row": run_load("127.0.0.1", port, one, 1, seconds),
              "8 connections, 1 row": run_load("127.0.0.1", port, one, 8, seconds),
              "2 connections, 100 rows": run_load("127.0.0.1", port, many, 2, seconds)}
    for key, load in result.items():
        if load.failed:
            raise SystemExit(f"{endpoint} {key}: {load.failed} failed requests {load.statuses}")
    return result


def capture_call_seconds(body: bytes, calls: int = 20000) -> float:
    """What one request thread spends in CaptureWriter.capture (sampling, the line's dict, the buffer),
    measured in this process with the writer's flushes going to a temporary bucket."""
    with tempfile.TemporaryDirectory() as tmp:
        s3 = LocalS3(Path(tmp))
        s3.create_bucket("bench")
        writer = CaptureWriter(s3)
        config = CaptureConfig.from_request(CAPTURE)
        began = time.perf_counter()
        for _ in range(calls):
            writer.capture("e", "AllTraffic", config, request=body, request_type="text/csv", response=b"9.87",
                           response_type="text/csv")
        spent = (time.perf_counter() - began) / calls
        writer.close()
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        model = pipeline_helpers.build("abalone.csv", Path(tmp), rounds=100, max_depth=6)
        lines = pipeline_helpers.csv_lines(model.feature_rows())
        single = [line.encode() for line in lines[:1000]]
        batch = ["\n".join(lines[s:s + 100]).encode() for s in range(0, 1000, 100)]
        state = Path(tmp) / "state"
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(state)], cwd=ROOT, stdout=subprocess.PIPE,
                                  text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
        try:
            port = int(server.stdout.readline())
            backend = deploy(model, state, port)
            warmed = {}
            for endpoint in ("plain", "captured"):  # warm-up: predictors loaded, connections made
                warmed[endpoint] = run_load("127.0.0.1", port, build_requests(
                    "127.0.0.1", port, f"/endpoints/{endpoint}/invocations", single, "text/csv"), 8, 1.0).requests
            runs: dict[str, list[dict]] = {"plain": [], "captured": []}
            for round_ in range(args.repeat):  # alternated, each going first in turn
                for endpoint in (("plain", "captured") if round_ % 2 == 0 else ("captured", "plain")):
                    runs[endpoint].append(measure(port, endpoint, single, batch, args.seconds))
            backend.close()
        finally:
            server.send_signal(signal.SIGTERM)
            out, _ = server.communicate(timeout=60)
        captured_lines = int(out.split()[-1])
        files = LocalS3(Layout.at(state).s3_root).list_keys("bench", "capture/captured/AllTraffic/")
        written = sum(len(LocalS3(Layout.at(state).s3_root).get_bytes(f"s3://bench/{k}").splitlines()) for k in files)
        sample = json.loads(LocalS3(Layout.at(state).s3_root).get_bytes(f"s3://bench/{files[0]}").splitlines()[0])
        plain_files = LocalS3(Layout.at(state).s3_root).list_keys("bench", "capture/plain/")

    answered = warmed["captured"] + sum(load.requests for run in runs["captured"] for load in run.values())
    per_call = capture_call_seconds(single[0])
    request = min(run["1 connection, 1 row"].p50_ms for run in runs["plain"]) / 1000
    print(f"data capture cost (serial pipeline, abalone, 100 trees; best of {args.repeat} alternated runs of "
          f"{args.seconds:g} s; load average before: {load_before})")
    print(f"{'':26s} {'capture off':>14s} {'capture on':>14s} {'on/off':>8s} {'cost':>7s}")
    worst = 0.0
    for key in runs["plain"][0]:
        off = max(run[key].rate for run in runs["plain"])
        on = max(run[key].rate for run in runs["captured"])
        ratio = on / off
        worst = max(worst, 1 - ratio)
        print(f"{key:26s} {off:10.0f} r/s {on:10.0f} r/s {ratio:8.3f} {100 * (1 - ratio):6.1f}%")
    print(f"captured lines: {written} in {len(files)} file(s) for {answered} answered requests "
          f"({'all written' if written == answered == captured_lines else 'MISMATCH'}); capture off wrote "
          f"{len(plain_files)} file(s); a line: {json.dumps(sample)[:160]}...")
    print(f"in one request thread: capture() takes {per_call * 1e6:.1f} us per single-row request against a "
          f"{request * 1e3:.2f} ms request (p50, capture off): {100 * per_call / request:.2f}% of its time")
    print(f"worst cost {100 * worst:.1f}% (goal < {100 * GOAL_COST:.0f}%): {'met' if worst < GOAL_COST else 'NOT met'}")
    return 0 if written == answered and not plain_files else 1


if __name__ == "__main__":
    sys.exit(main())
