"""Monitoring-loop benchmark: the whole loop at the issue's scale, offline, on the real template.

Trains and deploys abalone (small budgets), then, through the endpoint over HTTP with every request
captured and labelled as Model Monitor ground truth:
  1. --runs windows of --records rows drawn afresh from the training table, each monitored on its own:
     the false-alarm rate (windows with a drifted feature, a violation, degraded quality or a
     retraining, over the windows run);
  2. one window with `shell weight` moved by 4 standard deviations and the sex mix changed to mostly
     infants: the drifted features, the drift alarm's state, the retraining it starts, and the RMSE on
     that window's labels of the model it deploys over the degraded champion's (the ratio).

    .venv/bin/python benchmarks/bench_monitoring.py [--runs 10] [--records 2000]

The end-to-end test (tests/e2e/test_monitoring_loop.py) plays the same loop with fewer records.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e"), str(ROOT / "tests" / "processing")]

import aws_cdk
import drift_traffic
from test_monitoring_loop import MIX, SHIFTED, Loop, now_iso, rmse

import app as pipeline_app
from emulator.cloud.deploy import deploy
from emulator.runtime import Runtime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="unshifted windows (default 10)")
    parser.add_argument("--records", type=int, default=2000, help="records per window (default 2000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        outdir = Path(folder) / "cdk.out"
        pipeline_app.build_app(aws_cdk.App(outdir=str(outdir), context=pipeline_app.cdk_json_context())).synth()
        state = Path(folder) / "state"
        runtime = Runtime.open(state, ROOT, deployment=deploy(outdir, state), time_scale=0.01)
        try:
            loop = Loop(runtime)
            started = time.monotonic()
            loop.train()
            print(f"trained and deployed in {time.monotonic() - started:.0f} s")
            alarms, seconds = 0, []
            for run in range(args.runs):
                since = now_iso()
                rows = loop.sample(args.records)
                ids, _ = loop.send(rows)
                loop.label(ids, rows[loop.target].tolist(), f"fresh-{run}")
                began = time.monotonic()
                output = loop.monitor(since, f"bench-fresh-{run}")
                seconds.append(time.monotonic() - began)
                alarm = bool(output["drifted_features"] or loop.violations(output) or output["quality_degraded"]
                             or output["status"] != "HEALTHY")
                alarms += alarm
                print(f"  window {run + 1:>2}: {output['status']:<10} share {output['drifted_feature_share']:.3f} "
                      f"max PSI {output['max_psi']:.4f} live rmse {output['live_quality']['value']:.3f} "
                      f"{'FALSE ALARM ' + str(output['drifted_features']) if alarm else ''}")
            print(f"false alarms: {alarms}/{args.runs} unshifted windows of {args.records} records "
                  f"(rate {alarms / max(args.runs, 1):.3f}); a monitoring run took {sum(seconds) / len(seconds):.1f} s "
                  f"on average (collect, drift job, metrics, decision)")

            std = pd.to_numeric(loop.table[SHIFTED]).std()
            since = now_iso()
            rows = drift_traffic.shifted(loop.sample(args.records), SHIFTED, std, 4.0, "sex", MIX, loop.rng)
            ids, champion_answers = loop.send(rows)
            labels = rows[loop.target].tolist()
            loop.label(ids, labels, "shifted")
            output = loop.monitor(since, "bench-shifted")
            drift_alarm = {a["AlarmName"]: a["StateValue"] for a in runtime.cloudwatch.describe_alarms()["MetricAlarms"]}
            print(f"shifted window: {output['status']}; drifted features {output['drifted_features']}; "
                  f"violations {sorted({v['feature_name'] for v in loop.violations(output)})}; "
                  f"drift alarm {drift_alarm.get('MlPipeline-data-drift')}")
            if output.get("retraining_execution"):
                began = time.monotonic()
                retraining = loop.wait(output["retraining_execution"], timeout=1800)
                print(f"retraining {retraining['status']} in {time.monotonic() - began:.0f} s")
                _, retrained_answers = loop.send(rows)
                before, after = rmse(champion_answers, labels), rmse(retrained_answers, labels)
                print(f"rmse on the shifted window's labels: champion {before:.3f}, retrained {after:.3f} "
                      f"(ratio retrained/champion {after / before:.3f})")
        finally:
            runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
