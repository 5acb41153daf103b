"""Drift analysis time for 100k captured records and its growth to 1M, against a plain pandas read.

Writes capture files (SageMaker's data-capture JSON lines, 1,000 records a file, one abalone row per
request as text/csv, drawn from the rows preprocess held out of training) and, in the same session:
  pandas   pandas.read_json(lines=True) of every file, concatenated: reading the records, no decoding
  drift    drift.run: read and decode every record, every check, the three output files
Prints each time, drift's ratio to the pandas read, the growth from 100k to 1M, and the peak RSS.
Usage: .venv/bin/python benchmarks/bench_drift.py [--small 100000] [--large 1000000]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "processing"))

import drift_traffic as traffic

from processing_scripts import drift, preprocess


def write(folder: Path, pool: pd.DataFrame, records: int, rng: np.random.Generator) -> None:
    rows = pool.iloc[rng.integers(0, len(pool), records)].reset_index(drop=True)
    for start in range(0, records, 100_000):  # in slices: the rendered records of 1M rows at once cost GBs
        traffic.write_capture(folder, rows.iloc[start:start + 100_000], hour=f"2026/11/30/{start // 100_000:02d}")


def pandas_read(folder: Path) -> int:
    frames = [pd.read_json(path, lines=True) for path in sorted(folder.rglob("*.jsonl"))]
    return len(pd.concat(frames, ignore_index=True))


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        work = Path(tmp)
        assert preprocess.main(["--input-dir", str(ROOT / "data" / "abalone.csv"), "--output-dir", str(work / "prep"),
                                "--target-column", "rings"]) == 0
        pool = traffic.held_out("abalone")
        times = {}
        for records in (args.small, args.large):
            capture = work / f"capture-{records}"
            write(capture, pool, records, rng)
            size = sum(p.stat().st_size for p in capture.rglob("*.jsonl"))
            read_s, count = timed(pandas_read, capture)
            assert count == records
            options = drift.Options(capture, work / "prep" / "schema", work / f"out-{records}")
            drift_s, summary = timed(drift.run, options)
            assert summary["record_count"] == records and summary["violation_count"] == 0, json.dumps(summary)[:500]
            times[records] = drift_s
            print(f"{records:>9,} records ({size / 1e6:.0f} MB): pandas read_json {read_s:6.2f} s, drift.py "
                  f"{drift_s:6.2f} s ({records / drift_s:,.0f} records/s) = {drift_s / read_s:.2f}x the pandas read; "
                  f"max PSI {summary['max_psi']:.4f}")
            for path in capture.rglob("*.jsonl"):
                path.unlink()
        growth = times[args.large] / times[args.small]
        print(f"growth {args.small:,} -> {args.large:,} records: {growth:.1f}x time for "
              f"{args.large / args.small:.0f}x records; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
