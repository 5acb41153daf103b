"""Growth curve: preprocessing on 1 and 2 instances, training on 1 and 2 hosts, beside plain pandas and
in-process xgboost.train, on a bank-marketing-shaped table of 100k, 1M (and, with --10m, 10M) rows.

    .venv/bin/python benchmarks/bench_scale.py [--rows 100000 1000000] [--10m] [--num-round 50] [--work DIR]

The table: rows of data/bank-marketing.csv drawn with replacement, numeric columns jittered (so rows
are distinct, as a real table's are), written in 100k-row blocks (bounded memory at any size).

Each side runs as its own process(es), as the jobs do, measured with os.wait4 (wall time and the
process's peak resident memory, ru_maxrss):
  preprocess x1   preprocess.py --engine chunked, one process: statistics, merge, transform
  preprocess x2   the three stages as the pipeline's three jobs run them: statistics on 2 processes at
                  once (each its byte range, rank from its resourceconfig.json), merge on 1, transform on 2
  pandas          a plain pandas script: read_csv, drop rows without a target, median-impute, one-hot,
                  split 70/15/15, to_csv (what a notebook does; no cleaning, no schema, no baseline)
  train x1        the XGBoost twin (python -m containers.xgboost.train), one host, every train file
  train x2        two twin processes, one per host, each with its half of the train files
                  (ShardedByS3Key), joined by XGBoost's tracker on 127.0.0.1
  xgboost.train   a process reading the same train/validation files with pandas and calling
                  xgboost.train with the same parameters
Printed per size: wall seconds, seconds per million rows, CPU seconds (user + system of every process
of the side), the largest process's peak memory, and the ratios to the baseline of the same session.
The machine is shared: the load average is printed too, and CPU seconds are the steadier measure when
other work competes for the cores (wall time then includes waiting for a core).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
NUMERIC = ("age", "balance", "day", "duration", "campaign", "pdays", "previous")
PANDAS_SCRIPT = r"""
import sys, pandas as pd, numpy as np
src, out = sys.argv[1], sys.argv[2]
frame = pd.read_csv(src, skipinitialspace=True)
frame = frame[frame["deposit"].notna()]
y = (frame.pop("deposit").str.strip().str.lower() == "yes").astype(int)
numeric = frame.select_dtypes("number").columns
frame[numeric] = frame[numeric].fillna(frame[numeric].median())
x = pd.get_dummies(frame, dtype=float)
x.insert(0, "label", y.to_numpy())
rng = np.random.default_rng(42)
u = rng.random(len(x))
for name, rows in (("train", u >= 0.3), ("validation", (u >= 0.15) & (u < 0.3)), ("test", u < 0.15)):
    x[rows].to_csv(f"{out}/{name}.csv", header=False, index=False)
"""
XGB_SCRIPT = r"""
import sys, glob, pandas as pd, xgboost as xgb, json
train_dir, val_dir, params, rounds, model = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def load(folder):
    data = pd.concat([pd.read_csv(f, header=None) for f in sorted(glob.glob(folder + "/*.csv"))]).to_numpy()
    return xgb.DMatrix(data[:, 1:], label=data[:, 0])
dtrain, dval = load(train_dir), load(val_dir)
booster = xgb.train(params, dtrain, rounds, evals=[(dtrain, "train"), (dval, "validation")], verbose_eval=False)
booster.save_model(model)
"""


def make_table(path: Path, rows: int, seed: int = 0) -> None:
    sample = pd.read_csv(ROOT / "data" / "bank-marketing.csv")
    rng = np.random.default_rng(seed)
    block = 100_000
    with path.open("w", newline="") as handle:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            frame = sample.iloc[rng.integers(0, len(sample), n)].reset_index(drop=True)
            frame["balance"] = frame["balance"] + rng.integers(-50, 51, n)
            frame["duration"] = np.maximum(0, frame["duration"] + rng.integers(-20, 21, n))
            frame["age"] = np.clip(frame["age"] + rng.integers(-2, 3, n), 18, 95)
            frame.to_csv(handle, header=start == 0, index=False)


def run(commands: list[tuple[list[str], dict]]) -> tuple[float, list[int], float]:
    """Start every command at once; (wall seconds until the last ends, each one's peak RSS in bytes,
    the CPU seconds they used together)."""
    start = time.perf_counter()
    procs = []
    for command, env in commands:
        procs.append(subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    peaks, cpu = [], 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        error = proc.stderr.read().decode()
        if proc.returncode:
            raise SystemExit(f"{proc.args} failed:\n{error[-3000:]}")
        peaks.append(usage.ru_maxrss * 1024)
        cpu += usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, peaks, cpu


def preprocess_args(src: Path, out: Path, *extra: str) -> list[str]:
    return [PY, "processing_scripts/preprocess.py", "--input-dir", str(src), "--output-dir", str(out),
            "--target-column", "deposit", "--engine", "chunked", "--train-shards", "2", *extra]


def resource_configs(work: Path, count: int) -> list[Path]:
    hosts = [f"algo-{i}" for i in range(1, count + 1)]
    paths = []
    for host in hosts:
        path = work / "config" / host / "resourceconfig.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"current_host": host, "hosts": hosts}))
        paths.append(path)
    return paths


def preprocess_sharded(src: Path, work: Path, count: int) -> tuple[float, list[int], float]:
    configs = resource_configs(work, count)
    wall1, peaks1, cpu1 = run([(preprocess_args(src, work / "partials", "--stage", "statistics", "--resource-config", str(c)), {})
                         for c in configs])
    wall2, peaks2, cpu2 = run([(preprocess_args(work / "partials/statistics", work / "merged", "--stage", "merge",
                                          "--statistics-dir", str(work / "partials/statistics")), {})])
    wall3, peaks3, cpu3 = run([(preprocess_args(src, work / "final", "--stage", "transform", "--statistics-dir",
                                          str(work / "merged/plan"), "--resource-config", str(c)), {}) for c in configs])
    return wall1 + wall2 + wall3, peaks1 + peaks2 + peaks3, cpu1 + cpu2 + cpu3


def twin_job(root: Path, host: str, hosts: list[str], train_files: list[Path], validation: list[Path],
             hyperparameters: dict) -> Path:
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({c: {"ContentType": "text/csv", "TrainingInputMode": "File"}
                                                             for c in ("train", "validation")}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": hosts}))
    for channel, files in (("train", train_files), ("validation", validation)):
        folder = root / "input" / "data" / channel
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            (folder / f.name).unlink(missing_ok=True)
            os.link(f, folder / f.name)
    return root


def train(splits: Path, work: Path, hosts: int, hyperparameters: dict) -> tuple[float, list[int], float]:
    files = sorted((splits / "train").glob("*.csv"))
    validation = sorted((splits / "validation").glob("*.csv"))
    names = [f"algo-{i}" for i in range(1, hosts + 1)]
    port = 20000 + os.getpid() % 20000
    commands = []
    for rank, host in enumerate(names):
        root = twin_job(work / f"train-{hosts}" / host, host, names, files[rank::hosts], validation, hyperparameters)
        commands.append(([PY, "-m", "containers.xgboost.train", "--ml-root", str(root)],
                         {"XGBOOST_TRACKER_HOST": "127.0.0.1", "XGBOOST_TRACKER_PORT": str(port)}))
    return run(commands)


def fmt(rows: int, label: str, wall: float, peaks: list[int], cpu: float,
        base: tuple[float, list[int], float] | None) -> str:
    per_m = wall / (rows / 1e6)
    ratio = (f"{wall / base[0]:5.2f}x wall, {cpu / base[2]:5.2f}x cpu, {max(peaks) / max(base[1]):4.2f}x memory"
             if base else "baseline" if label in ("pandas", "xgboost.train") else "(no baseline at this size)")
    return (f"  {label:<14} {wall:7.1f} s wall {per_m:7.1f} s/M rows  cpu {cpu:7.1f} s  peak "
            f"{max(peaks) / 2**20:6.0f} MiB ({len(peaks)} proc)  {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--10m", dest="ten_m", action="store_true", help="add 10,000,000 rows")
    parser.add_argument("--num-round", type=int, default=50)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2], help="preprocessing instance counts")
    parser.add_argument("--baseline-max-rows", type=int, default=2_000_000,
                        help="no pandas baseline above this many rows (it holds the whole table: ~10 GiB at 10M)")
    args = parser.parse_args()
    sizes = args.rows + ([10_000_000] if args.ten_m else [])
    params = {"objective": "binary:logistic", "eval_metric": "auc", "max_depth": 6, "eta": 0.3,
              "tree_method": "hist", "nthread": 1}
    hyperparameters = {"objective": "binary:logistic", "eval_metric": "auc", "max_depth": "6", "eta": "0.3",
                       "tree_method": "hist", "nthread": "1", "num_round": str(args.num_round)}
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for rows in sizes:
            work = Path(tmp) / str(rows)
            work.mkdir()
            src = work / "table.csv"
            make_table(src, rows)
            print(f"{rows:,} rows ({src.stat().st_size / 2**20:.0f} MiB of CSV); load average "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
            pandas = None
            if rows <= args.baseline_max_rows:
                (work / "pandas").mkdir()
                pandas = run([([PY, "-c", PANDAS_SCRIPT, str(src), str(work / "pandas")], {})])
                print(fmt(rows, "pandas", *pandas, None), flush=True)
            if 1 in args.instances:
                print(fmt(rows, "preprocess x1", *run([(preprocess_args(src, work / "one"), {})]), pandas), flush=True)
            for count in (c for c in args.instances if c > 1):
                print(fmt(rows, f"preprocess x{count}", *preprocess_sharded(src, work / f"x{count}", count), pandas),
                      flush=True)
            if args.skip_training or 1 not in args.instances:
                continue
            splits = work / "one"
            model = work / "baseline.model"
            baseline = run([([PY, "-c", XGB_SCRIPT, str(splits / "train"), str(splits / "validation"),
                              json.dumps(params), str(args.num_round), str(model)], {})])
            print(fmt(rows, "xgboost.train", *baseline, None), flush=True)
            print(fmt(rows, "train x1", *train(splits, work, 1, hyperparameters), baseline), flush=True)
            print(fmt(rows, "train x2", *train(splits, work, 2, hyperparameters), baseline), flush=True)


if __name__ == "__main__":
    main()
