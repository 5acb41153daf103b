"""Disk benchmark: how much `.emulator/` grows per pipeline run, over the size of the input table,
with and without tuning — and the local S3 server's time to answer HEAD and GET on a 1 GB object
next to reading the same file directly.

The table is bank-marketing shaped: rows of data/bank-marketing.csv drawn with replacement, each
`balance` and `duration` moved by a small random amount so the rows stay distinct (preprocess drops
duplicate rows: a plain resample of 11,162 rows would shrink back to them). The run is the real
template's training state machine, started as an upload under raw/ starts it; boosting rounds are few
(the disk use does not depend on them) and the gate threshold is low (the table's labels are the
original ones, but the run must reach batch transform and the endpoint whatever the AUC).

Goals (issue 21): growth per run <= 2x the input with and without tuning (8.1x and 15x before);
HEAD answered without reading the object; GET within a small factor of reading the file.

    .venv/bin/python benchmarks/bench_disk.py [--rows 1000000] [--trials 4] [--skip-s3] [--skip-pipeline]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024
ROUNDS = {"num_round": "20", "max_depth": "5", "eta": "0.3", "subsample": "0.8",
          "colsample_bytree": "0.8", "min_child_weight": "1", "early_stopping_rounds": "5"}


def bank_table(rows: int, path: Path, seed: int = 7) -> Path:
    """``rows`` bank-marketing rows drawn with replacement, balance and duration jittered."""
    source = pd.read_csv(ROOT / "data" / "bank-marketing.csv")
    rng = np.random.default_rng(seed)
    table = source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    table["balance"] = table["balance"] + rng.integers(-50, 51, rows)
    table["duration"] = (table["duration"] + rng.integers(-5, 6, rows)).clip(lower=0)
    table.to_csv(path, index=False)
    return path


def disk_bytes(folder: Path) -> int:
    """Bytes the files under ``folder`` occupy, each inode counted once (hard links share bytes)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            try:
                stat = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_blocks * 512
    return total


def breakdown(state: Path, depth: int = 3) -> list[tuple[int, str]]:
    """The largest folders ``depth`` levels under ``state`` (for the report)."""
    rows = []
    for folder in sorted(state.glob("/".join(["*"] * depth))):
        if folder.is_dir():
            rows.append((disk_bytes(folder), folder.relative_to(state).as_posix()))
    return sorted(rows, reverse=True)[:8]


def pipeline_growth(table: Path, tuning: bool, trials: int, tmp: Path,
                    assembly: Path) -> tuple[tuple[int, int], str, list]:
    """((bytes the run added with the upload, without it), how it ended, the largest folders)."""
    from emulator.cloud.deploy import deploy
    from emulator.runtime import Runtime

    state = tmp / ("state-tuned" if tuning else "state-plain")
    deployment = deploy(assembly, state)
    with Runtime.open(state, ROOT, deployment=deployment, time_scale=0.001) as runtime:
        machine = deployment.state_machines[0]
        bucket, prefix = runtime.events.upload_trigger()
        before = disk_bytes(state)
        uri = f"s3://{bucket}/{prefix}{table.name}"
        runtime.s3.put_file(uri, table)  # the upload is part of the run, as `run --data` does it
        uploaded = disk_bytes(state)
        execution = {
            "input_s3_uri": uri, "target_column": "deposit", "quality_metric": "auc", "quality_threshold": 0.5,
            "no_worse_than_champion": False, "tuning_enabled": tuning, "hyperparameters": ROUNDS,
            "tuning_max_jobs": trials, "tuning_max_parallel_jobs": 2,
        }
        result = runtime.launch(machine, execution)
        after = disk_bytes(state)
        detail = breakdown(state)
    return (after - before, after - uploaded), f"{result.status}{'' if result.status == 'SUCCEEDED' else f' {result.error}: {str(result.cause)[:300]}'}", detail


def s3_timings(tmp: Path, size: int) -> dict[str, float]:
    """Seconds: read the file directly, HEAD and GET it through the local S3 server (boto3)."""
    import boto3
    from botocore.config import Config

    from emulator.services.s3.server import S3Server
    from emulator.services.s3.store import LocalS3

    s3 = LocalS3(tmp / "s3")
    s3.create_bucket("bench")
    source = tmp / "object.bin"
    with open(source, "wb") as handle:
        block = os.urandom(MB)
        handle.writelines(block for _ in range(size // MB))
    s3.put_file("s3://bench/big.bin", source)  # the ETag is computed here, once
    source.unlink()
    path = s3.path("s3://bench/big.bin")
    timings = {}
    began = time.perf_counter()
    with open(path, "rb") as handle:
        while handle.read(8 * MB):
            pass
    timings["read the file"] = time.perf_counter() - began
    with S3Server(s3) as server:
        client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="local",
                              aws_secret_access_key="local", config=Config(retries={"max_attempts": 1}))
        client.head_object(Bucket="bench", Key="big.bin")  # a warm connection
        began = time.perf_counter()
        client.head_object(Bucket="bench", Key="big.bin")
        timings["HEAD"] = time.perf_counter() - began
        began = time.perf_counter()
        body = client.get_object(Bucket="bench", Key="big.bin")["Body"]
        while body.read(8 * MB):
            pass
        timings["GET"] = time.perf_counter() - began
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=4, help="tuning trials in the tuned run (default 4)")
    parser.add_argument("--object-mb", type=int, default=1024, help="the S3 object's size (default 1 GB)")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--detail", action="store_true", help="print the largest folders after each run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-disk-") as name:
        tmp = Path(name)
        if not args.skip_pipeline:
            import aws_cdk

            import app as pipeline_app

            assembly = tmp / "cdk.out"
            pipeline_app.build_app(aws_cdk.App(outdir=str(assembly), context=pipeline_app.cdk_json_context())).synth()
            table = bank_table(args.rows, tmp / "bank.csv")
            size = table.stat().st_size
            print(f".emulator/ growth per run, {args.rows:,} bank-marketing rows ({size / MB:.0f} MB of CSV)")
            for tuning in (False, True):
                began = time.monotonic()
                (grown, beyond), status, detail = pipeline_growth(table, tuning, args.trials, tmp, assembly)
                what = f"with tuning ({args.trials} trials)" if tuning else "without tuning"
                print(f"  {what:<26} +{grown / MB:7.1f} MB = {grown / size:5.2f}x the input, the upload included; "
                      f"+{beyond / MB:7.1f} MB = {beyond / size:5.2f}x beyond the uploaded copy   (goal <= 2x; "
                      f"{'15x' if tuning else '8.1x'} before)   {status}, {time.monotonic() - began:.0f} s")
                if args.detail:
                    for used, folder in detail:
                        print(f"      {used / MB:8.1f} MB  {folder}")
        if not args.skip_s3:
            timings = s3_timings(tmp, args.object_mb * MB)
            base = timings["read the file"]
            print(f"local S3 server, a {args.object_mb} MB object")
            for what, seconds in timings.items():
                print(f"  {what:<14} {seconds * 1000:9.1f} ms   {seconds / base:7.3f}x reading the file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
