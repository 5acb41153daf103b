"""Endpoint latency and throughput: the local endpoint vs in-process Booster.predict, same rows.

Deploys an XGBoost model trained on data/abalone.csv to a local endpoint (HostingBackend + the
runtime server), then scores single rows three ways and prints each against the in-process baseline:

  in-process   Booster.predict(DMatrix(row)) in this process: the floor
  twin         the serving twin's Predictor.invoke(csv bytes) in this process (parsing + encoding)
  http         the same InvokeEndpoint request from a bare keep-alive http.client (server cost only)
  endpoint     boto3 sagemaker-runtime invoke_endpoint over HTTP to the local server (what users call)

Latency is sequential single-row requests (p50/p99); throughput runs CLIENTS concurrent callers.
Usage: .venv/bin/python benchmarks/bench_endpoint.py [--requests N] [--clients C]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import xgboost as xgb
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from containers.xgboost.artifacts import model_archive as model_tar
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.services.sagemaker.images import resolve_image
from emulator.services.sagemaker.invoke_server import ensure_invoke_server, stop_in_process_servers
from emulator.services.sagemaker.serving import load_predictor
from emulator.storage.layout import Layout

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
FEATURES = ["length", "diameter", "height", "whole weight", "shucked weight", "viscera weight", "shell weight"]




def latencies(call: Callable[[int], object], n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        call(i)
        out[i] = time.perf_counter() - start
    return out


def throughput(make_call: Callable[[], Callable[[int], object]], clients: int, seconds: float) -> float:
    counts = [0] * clients
    stop = threading.Event()

    def worker(k: int) -> None:
        call = make_call()
        i = 0
        while not stop.is_set():
            call(i)
            i += 1
        counts[k] = i

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)

    frame = pd.read_csv(ROOT / "data" / "abalone.csv")
    x, y = frame[FEATURES].to_numpy(np.float32), frame["rings"].to_numpy(np.float32)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 6, "eta": 0.2}, xgb.DMatrix(x, label=y), 100)
    rows = x[: args.requests] if args.requests <= len(x) else np.resize(x, (args.requests, x.shape[1]))
    bodies = [",".join(repr(float(v)) for v in row).encode() for row in rows]

    with tempfile.TemporaryDirectory() as tmp:
        s3 = LocalS3(Path(tmp) / "s3")
        s3.create_bucket("bench")
        layout = Layout.at(Path(tmp) / "state")
        context = SageMakerContext(layout=layout, s3=s3, project_root=ROOT,
                                   resolve_image=functools.partial(resolve_image, project_root=ROOT),
                                   invoke_server_url=functools.partial(ensure_invoke_server, layout))
        sagemaker = SageMakerBackend(context)
        hosting = sagemaker.hosting
        s3.put_bytes("s3://bench/model.tar.gz", model_tar(booster))
        hosting.create_model(ModelName="bench", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bench/model.tar.gz"},
                             ExecutionRoleArn="arn:aws:iam::000000000000:role/bench")
        hosting.create_endpoint_config(EndpointConfigName="bench", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "bench", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        hosting.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
        while hosting.describe_endpoint(EndpointName="bench")["EndpointStatus"] != "InService":
            time.sleep(0.01)
        base_url = hosting.endpoint_url("bench").split("/endpoints/")[0]
        model_dir = hosting.records.read("endpoints", "bench")["_hosting"]["Variants"][0]["ModelDir"]
        predictor = load_predictor("xgboost", model_dir)

        def make_endpoint_call() -> Callable[[int], object]:
            client = boto3.client("sagemaker-runtime", endpoint_url=base_url, region_name="us-east-1",
                                  aws_access_key_id="x", aws_secret_access_key="x",
                                  config=Config(retries={"max_attempts": 1}))
            return lambda i: client.invoke_endpoint(EndpointName="bench", ContentType="text/csv",
                                                    Body=bodies[i % len(bodies)])["Body"].read()

        def make_http_call() -> Callable[[int], object]:
            host, port = base_url.removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port))

            def call(i: int) -> object:
                connection.request("POST", "/endpoints/bench/invocations", body=bodies[i % len(bodies)],
                                   headers={"Content-Type": "text/csv"})
                return connection.getresponse().read()

            return call

        def in_process(i: int) -> object:
            return booster.predict(xgb.DMatrix(rows[i % len(rows)][None, :]))

        def twin(i: int) -> object:
            return predictor.invoke(bodies[i % len(bodies)], "text/csv", None).body

        # the endpoint answers what the booster does
        check = make_endpoint_call()
        got = np.array([float(check(i)) for i in range(20)])
        np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(rows[:20])), rtol=1e-5)

        results = {}
        makers = {"in-process": lambda: in_process, "twin": lambda: twin, "http": make_http_call,
                  "endpoint": make_endpoint_call}
        for name, make in makers.items():
            call = make()
            latencies(call, 50)  # warm-up
            lat = latencies(call, args.requests)
            rate = throughput(make, args.clients, args.seconds)
            results[name] = (np.percentile(lat, 50) * 1e3, np.percentile(lat, 99) * 1e3, rate)
        sagemaker.close()
        stop_in_process_servers()

    base_p50, base_p99, base_rate = results["in-process"]
    print(f"single-row scoring, {args.requests} sequential requests; throughput with {args.clients} concurrent callers "
          f"for {args.seconds:.0f}s (model: 100 trees, depth 6, abalone)")
    print(f"{'':12} {'p50 ms':>8} {'p99 ms':>8} {'rows/s':>9}   {'p50 x':>7} {'p99 x':>7} {'rate x':>7}")
    for name, (p50, p99, rate) in results.items():
        print(f"{name:12} {p50:8.3f} {p99:8.3f} {rate:9.0f}   {p50 / base_p50:7.1f} {p99 / base_p99:7.1f} {rate / base_rate:7.2f}")
    print("(x = ratio to in-process Booster.predict; latency ratios > 1 are slower, the rate ratio < 1 is fewer rows/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
