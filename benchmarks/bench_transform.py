"""Batch transform throughput: rows/s of a local transform job over in-process prediction.

Scores the same CSV files (data/abalone.csv features, repeated to --rows rows, split in --files
objects) three ways, from the file bytes to the written predictions:

  in-process   pandas.read_csv + Booster.predict + one prediction per line written: what a user
               would do in a notebook, the baseline (goal: transform >= 0.8 of it)
  twin         the serving twin's Predictor.invoke on each whole file (the XGBoost container's own
               CSV decoding and encoding, no emulator around it)
  transform    CreateTransformJob (SplitType Line, MultiRecord, 6 MB payloads, AssembleWith Line)
               until the job is Completed (its thread joined): what the pipeline runs

and checks the transform's output equals Booster.predict.
Usage: .venv/bin/python benchmarks/bench_transform.py [--rows N] [--files F]
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from containers.xgboost.artifacts import model_archive as model_tar
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.services.sagemaker.images import resolve_image
from emulator.services.sagemaker.invoke_server import ensure_invoke_server
from emulator.services.sagemaker.serving import load_predictor, prepare_container
from emulator.storage.layout import Layout

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
FEATURES = ["length", "diameter", "height", "whole weight", "shucked weight", "viscera weight", "shell weight"]




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best time of each way is reported")
    args = parser.parse_args(argv)

    frame = pd.read_csv(ROOT / "data" / "abalone.csv")
    x, y = frame[FEATURES].to_numpy(np.float32), frame["rings"].to_numpy(np.float32)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 6, "eta": 0.2}, xgb.DMatrix(x, label=y), 100)
    rows = np.resize(x, (args.rows, x.shape[1]))
    parts = np.array_split(rows, args.files)

    with tempfile.TemporaryDirectory() as tmp:
        s3 = LocalS3(Path(tmp) / "s3")
        s3.create_bucket("bench")
        layout = Layout.at(Path(tmp) / "state")
        context = SageMakerContext(layout=layout, s3=s3, project_root=ROOT,
                                   resolve_image=functools.partial(resolve_image, project_root=ROOT),
                                   invoke_server_url=functools.partial(ensure_invoke_server, layout))
        for k, part in enumerate(parts):
            s3.put_bytes(f"s3://bench/batch/part-{k:03d}.csv", "".join(",".join(map(repr, r)) + "\n" for r in part.tolist()).encode())
        s3.put_bytes("s3://bench/model.tar.gz", model_tar(booster))
        inputs = s3.list("s3://bench/batch/")
        megabytes = sum(s3.path(u).stat().st_size for u in inputs) / 1e6

        out_dir = Path(tmp) / "inproc"
        out_dir.mkdir()
        sagemaker = SageMakerBackend(context)
        transform = sagemaker.transform
        transform.hosting.create_model(ModelName="bench", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bench/model.tar.gz"},
                                       ExecutionRoleArn="arn:aws:iam::000000000000:role/bench")
        served = prepare_container(transform.hosting.model("bench").container, s3, transform.hosting.artifacts_root)
        predictor = load_predictor(served.kind, served.model_dir, batch=True)

        def run_in_process() -> None:
            """The baseline: file bytes to written predictions, in this process."""
            for uri in inputs:
                features = pd.read_csv(s3.path(uri), header=None).to_numpy(np.float32)
                predictions = booster.predict(xgb.DMatrix(features))
                (out_dir / (Path(uri).name + ".out")).write_text("\n".join(map(str, predictions.tolist())) + "\n")

        def run_twin() -> None:
            """The twin alone: its predictor (loaded as the transform loads it) on each whole file."""
            for k, uri in enumerate(inputs):
                response = predictor.invoke(s3.get_bytes(uri), "text/csv", "text/csv")
                (out_dir / f"twin-{k}.out").write_bytes(response.body)

        jobs = iter(range(1000))
        names: list[str] = []

        def run_transform() -> None:
            name = f"bench-{next(jobs)}"
            transform.create_transform_job(
                TransformJobName=name, ModelName="bench", BatchStrategy="MultiRecord", MaxPayloadInMB=6,
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bench/batch/"}},
                                "ContentType": "text/csv", "SplitType": "Line"},
                TransformOutput={"S3OutputPath": f"s3://bench/{name}/", "AssembleWith": "Line", "Accept": "text/csv"},
                TransformResources={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1})
            transform.wait(name)  # joins the job's thread: no polling thread competing for the GIL
            names.append(name)

        def check(name: str) -> None:
            """Outside the timing: the job completed and its output is Booster.predict's."""
            described = transform.describe_transform_job(TransformJobName=name)
            if described["TransformJobStatus"] != "Completed":
                raise SystemExit(f"transform failed: {described.get('FailureReason')}")
            got = np.concatenate([np.loadtxt(io.BytesIO(s3.get_bytes(f"s3://bench/{name}/{Path(u).name}.out"))) for u in inputs])
            np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(rows)), rtol=1e-5)

        def best(run, repeat: int) -> float:
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            return min(times)

        # interleaved rounds, best of each, so warm-up and GC land on no one in particular
        in_process, twin, local = float("inf"), float("inf"), float("inf")
        for _ in range(args.repeat):
            in_process = min(in_process, best(run_in_process, 1))
            twin = min(twin, best(run_twin, 1))
            local = min(local, best(run_transform, 1))
        for name in names:
            check(name)
        sagemaker.close()

    n = len(rows)
    print(f"batch scoring of {n} rows in {len(inputs)} CSV objects ({megabytes:.1f} MB), model: 100 trees, depth 6, "
          f"best of {args.repeat}")
    print(f"{'':12} {'seconds':>8} {'rows/s':>10} {'x in-process':>13}")
    for name, seconds in (("in-process", in_process), ("twin", twin), ("transform", local)):
        print(f"{name:12} {seconds:8.3f} {n / seconds:10.0f} {in_process / seconds:13.2f}")
    print(f"transform / in-process rows/s: {in_process / local:.2f} (goal >= 0.8); "
          f"transform / twin alone: {twin / local:.2f} (1.0 = no emulator overhead around the twin)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
