"""Issue 11's acceptance, measured: each kind of table a new user brings, run with
`python -m emulator run --data FILE` and no other option, against a default XGBoost model on an
80/20 split of the same file (the baseline a data scientist would try first).

    .venv/bin/python benchmarks/own_data.py [--tables iris,churn,...] [--keep]

Prints per table: the problem type the pipeline chose, the gate's decision, the test metric of the
deployed model, and the same metric of `xgboost.XGBClassifier`/`XGBRegressor` with default settings
on a stratified 80/20 split, side by side (a ratio: ours / default). Every table runs as its own use
case (--stack), in one fresh state folder. Takes several minutes (real tuning, cdk.json defaults).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost
from sklearn.metrics import f1_score, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "processing_scripts"))

import problem_rules
import user_tables


def plain_xgboost(path: Path, target: str, problem_type: str, metric: str) -> float:
    """A default XGBoost model on an 80/20 split: one-hot categoricals, labels as the pipeline reads them."""
    frame = pd.read_csv(path)
    frame = frame[frame[target].notna()]
    y_raw = frame[target]
    x = pd.get_dummies(frame.drop(columns=[target]).select_dtypes(exclude="datetime"), dummy_na=True).astype(float)
    x = x.drop(columns=[c for c in x.columns if x[c].nunique() == len(x)], errors="ignore")  # IDs
    if problem_type == "regression":
        y = y_raw.astype(float).to_numpy()
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0)
        predicted = xgboost.XGBRegressor().fit(x_tr, y_tr).predict(x_te)
        return float(np.sqrt(mean_squared_error(y_te, predicted)))
    keys = y_raw.map(problem_rules.label_key)
    classes = sorted(keys.unique())
    y = keys.map({c: i for i, c in enumerate(classes)}).to_numpy()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    model = xgboost.XGBClassifier().fit(x_tr, y_tr)
    if problem_type == "binary":
        return float(roc_auc_score(y_te, model.predict_proba(x_te)[:, 1]))
    return float(f1_score(y_te, model.predict(x_te), average="weighted"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(user_tables.TABLES))
    parser.add_argument("--keep", action="store_true", help="keep the state folder (printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="own-data-"))
    state = work / "state"
    print(f"{'table':<17}{'chose':<12}{'gate':<8}{'metric':<13}{'ours':>9}{'default':>9}{'ratio':>8}{'time':>8}")
    for name in args.tables.split(","):
        table = user_tables.TABLES[name]
        path = table.write(work)
        stack = "Own" + "".join(part.title() for part in name.split("_"))
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "emulator", "--state-dir", str(state), "run", "--data", str(path),
                               "--stack", stack], cwd=ROOT, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - began
        (work / f"{name}.log").write_text(done.stdout + done.stderr)
        summary = {}
        for line in done.stdout.splitlines():
            if line.startswith("  problem type"):
                summary["type"] = line.split()[-1]
            if line.startswith("  quality gate"):
                summary["gate"] = line.split()[2].rstrip(":")
        error = next((line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("  error:")), "")
        runs = sorted((state / "s3").glob("*/runs/*/evaluation/evaluation.json"), key=lambda p: p.stat().st_mtime)
        report = json.loads(runs[-1].read_text()) if runs and done.returncode == 0 else {}
        metric = problem_rules.metric_for(table.problem_type, "auto")
        ours = (report.get("metrics") or {}).get(metric)
        default = plain_xgboost(path, table.target, table.problem_type, metric)
        ratio = f"{ours / default:8.3f}" if ours else "       -"
        shown = f"{ours:9.4f}" if ours is not None else "        -"
        print(f"{name:<17}{summary.get('type', '-'):<12}{summary.get('gate', error[:7] or 'FAILED'):<8}{metric:<13}"
              f"{shown}{default:9.4f}{ratio}{elapsed:7.0f}s")
    print(f"logs: {work}" if args.keep else "")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
