"""False alarm rate (and power) of drift.py on the sample tables: many monitoring runs on unshifted traffic.

For abalone and bank-marketing: preprocess the table (its statistics.json/constraints.json are the
baseline, computed on the train split), then run drift.py --runs times on --rows rows drawn from the
training distribution, written as capture files (1-5 rows per request) - from the rows preprocess held
out of training (validation + test, with replacement: traffic the baseline never saw) and from the
whole file - and count the runs with any violation. Then the same with one numeric feature shifted by
0.25/0.5/1/3 baseline standard deviations and, separately, one categorical feature's mix changed, to
show what the thresholds still catch.
Usage: .venv/bin/python benchmarks/drift_false_alarms.py [--runs 200] [--rows 2000] [--power-runs 20]
Not part of `make bench` (it takes a few minutes); the figures are quoted in the README.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "processing"))

import drift_traffic as traffic

from processing_scripts import drift, preprocess

# the features each power test moves: a numeric one, and a categorical one to two changed mixes
SHIFTS = {"abalone": ("shell weight", "sex", [{"M": 0.5, "F": 0.25, "I": 0.25}, {"M": 0.7, "F": 0.15, "I": 0.15}]),
          "bank-marketing": ("age", "marital", [{"married": 0.45, "single": 0.45, "divorced": 0.10},
                                                {"married": 0.30, "single": 0.60, "divorced": 0.10}])}


def monitor(work: Path, baseline: Path, rows, rng: np.random.Generator) -> dict:
    capture, out = work / "capture", work / "out"
    shutil.rmtree(capture, ignore_errors=True)
    traffic.write_capture(capture, rows, rows_per_request=int(rng.integers(1, 6)))
    assert drift.main(["--capture-dir", str(capture), "--baseline-dir", str(baseline), "--output-dir", str(out)]) == 0
    summary = json.loads((out / "drift_summary.json").read_text())
    summary["violations"] = json.loads((out / "constraint_violations.json").read_text())["violations"]
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--power-runs", type=int, default=20)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    rng = np.random.default_rng(2026)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="drift-fpr-") as tmp:
        work = Path(tmp)
        for dataset in traffic.TARGETS:
            prep = work / dataset
            assert preprocess.main(["--input-dir", str(ROOT / "data" / f"{dataset}.csv"), "--output-dir", str(prep),
                                    "--target-column", traffic.TARGETS[dataset]]) == 0
            baseline = prep / "schema"
            statistics = json.loads((baseline / "statistics.json").read_text())
            stds = {f["name"]: f["numerical_statistics"]["std_dev"] for f in statistics["features"]
                    if "numerical_statistics" in f}
            whole, _ = traffic.table(dataset)
            pools = {"held-out rows": traffic.held_out(dataset),
                     "whole file": whole.drop(columns=[traffic.TARGETS[dataset]])}
            for pool_name, pool in pools.items():
                alarms, max_psi, min_p, checks = 0, 0.0, 1.0, {}
                for _ in range(args.runs):
                    rows = pool.iloc[rng.integers(0, len(pool), args.rows)].reset_index(drop=True)
                    summary = monitor(work, baseline, rows, rng)
                    alarms += bool(summary["violations"])
                    for v in summary["violations"]:
                        checks[v["constraint_check_type"]] = checks.get(v["constraint_check_type"], 0) + 1
                    max_psi = max(max_psi, summary["max_psi"])
                    for entry in summary["features"].values():
                        min_p = min(min_p, entry["ks_pvalue"] if entry["ks_pvalue"] is not None else entry["chi2_pvalue"])
                upper = 1 - 0.05 ** (1 / args.runs)  # one-sided 95% bound when no alarm is seen
                print(f"{dataset:15s} {pool_name:14s} false alarms {alarms}/{args.runs} runs "
                      f"(rate {alarms / args.runs:.3f}; 95% upper bound {upper:.3f} if 0); largest PSI of any feature "
                      f"{max_psi:.4f}; smallest test p {min_p:.2g}; violations by check {checks or '{}'}")
            numeric, categorical, mixes = SHIFTS[dataset]
            pool = pools["held-out rows"]
            cases = [(f"{numeric!r} + {sds:g} sd", numeric, sds, None, {}) for sds in (0.25, 0.5, 1.0, 3.0)]
            cases += [(f"{categorical!r} mix -> {mix}", categorical, 0.0, categorical, mix) for mix in mixes]
            for label, expected, sds, moved_categorical, mix in cases:
                named, psis = 0, []
                for _ in range(args.power_runs):
                    rows = pool.iloc[rng.integers(0, len(pool), args.rows)].reset_index(drop=True)
                    rows = traffic.shifted(rows, numeric, stds[numeric], sds, moved_categorical, mix, rng)
                    summary = monitor(work, baseline, rows, rng)
                    named += [v["feature_name"] for v in summary["violations"]] == [expected]
                    psis.append(summary["features"][expected]["psi"])
                print(f"{dataset:15s} {label}: median PSI {np.median(psis):.3f}; exactly that feature flagged in "
                      f"{named}/{args.power_runs} runs")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
