"""The monitoring loop, end to end offline, on the real synthesized template: train and deploy
abalone (small budgets), send raw records through the endpoint over HTTP (boto3 sagemaker-runtime,
each request with its InferenceId, captured by the endpoint), upload their labels as Model Monitor
ground truth, and run the monitoring state machine on each window:

1. traffic drawn from the training table -> HEALTHY: no violation, no retraining;
2. the same traffic with labels that are off (quality degraded, inputs unchanged) -> a retraining
   starts (stopped here: it would deploy a model fitted to wrong labels);
3. one numeric feature shifted by several standard deviations and the categorical feature's mix
   changed -> the violations name exactly those two features, the drift alarm goes to ALARM, a
   retraining starts on the champion's input plus the labelled traffic and deploys a model that beats
   the degraded champion on that traffic.

RECORDS per window is kept small for the suite; benchmarks/bench_monitoring.py runs the loop with
2,000 records per window and measures the false-alarm rate over many unshifted windows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest

from emulator.cloud.deploy import deploy
from emulator.runtime import Runtime
from emulator.services.cloudwatch import ALARM

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "processing"))
import drift_traffic

ENDPOINT = "ml-pipeline-endpoint"
RECORDS = 300
SMALL = {"hyperparameters": {"num_round": "40", "max_depth": "4", "eta": "0.3"}, "tuning_enabled": False}
SHIFTED, MIX = "shell weight", {"I": 0.8, "M": 0.1, "F": 0.1}


def machine(runtime: Runtime, prefix: str):
    return next(m for m in runtime.deployment.state_machines if m.logical_id.startswith(prefix))


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Loop:
    """The deployed pipeline and what the test sends through it."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.bucket, self.raw_prefix = runtime.events.upload_trigger()
        self.table, self.target = drift_traffic.table("abalone")
        self.columns = [c for c in self.table.columns if c != self.target]
        self.client = boto3.client("sagemaker-runtime", endpoint_url=runtime.invoke_server_url(), region_name="us-east-1",
                                   aws_access_key_id="local", aws_secret_access_key="local")
        self.rng = np.random.default_rng(7)

    def train(self) -> dict:
        uri = f"s3://{self.bucket}/{self.raw_prefix}abalone.csv"
        self.runtime.s3.put_bytes(uri, (PROJECT_ROOT / "data" / "abalone.csv").read_bytes())
        result = self.runtime.launch(machine(self.runtime, "TrainingPipeline"), {"input_s3_uri": uri, **SMALL}, "train-1")
        assert result.status == "SUCCEEDED", (result.error, result.cause)
        return result.output

    def sample(self, n: int) -> pd.DataFrame:
        return self.table.iloc[self.rng.integers(0, len(self.table), n)].reset_index(drop=True)

    def send(self, rows: pd.DataFrame) -> tuple[list[str], list[float]]:
        """Each row one request (real HTTP), with an InferenceId; (the ids, the answers)."""
        ids = [str(uuid.uuid4()) for _ in range(len(rows))]
        bodies = drift_traffic.csv_text(rows[self.columns]).splitlines()

        def invoke(pair):
            inference_id, body = pair
            answer = self.client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=body,
                                                 InferenceId=inference_id)
            return float(answer["Body"].read().decode().split(",")[0])

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(invoke, zip(ids, bodies, strict=True)))
        return ids, answers

    def label(self, ids: list[str], labels: list[str], name: str) -> None:
        hour = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")
        lines = "".join(json.dumps({"groundTruthData": {"data": label, "encoding": "CSV"},
                                    "eventMetadata": {"eventId": event}, "eventVersion": "0"}) + "\n"
                        for event, label in zip(ids, labels, strict=True))
        self.runtime.s3.put_bytes(f"s3://{self.bucket}/ground-truth/{hour}/{name}.jsonl", lines.encode())

    def monitor(self, since: str, name: str, **settings) -> dict:
        time.sleep(2.5)  # the capture writer flushes within a second of a request
        result = self.runtime.launch(machine(self.runtime, "ModelMonitoring"),
                                     {"window_start": since, "retraining_settings": SMALL, **settings}, name)
        assert result.status == "SUCCEEDED", (result.error, result.cause)
        return result.output

    def violations(self, output: dict) -> list[dict]:
        return json.loads(self.runtime.s3.get_bytes(output["violations"]))["violations"]

    def wait(self, execution_arn: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = self.runtime.stepfunctions.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(1)
        raise AssertionError(f"{execution_arn} still runs after {timeout} s")


def rmse(answers: list[float], labels: list[str]) -> float:
    return math.sqrt(np.mean((np.asarray(answers) - np.asarray(labels, dtype=float)) ** 2))


@pytest.fixture(scope="module")
def loop(assembly, tmp_path_factory):
    state = tmp_path_factory.mktemp("monitoring-state")
    runtime = Runtime.open(state, PROJECT_ROOT, deployment=deploy(assembly, state), time_scale=0.01)
    loop = Loop(runtime)
    loop.trained = loop.train()
    yield loop
    runtime.close()


@pytest.fixture(scope="module")
def healthy(loop):
    since = now_iso()
    rows = loop.sample(RECORDS)
    ids, _ = loop.send(rows)
    loop.label(ids, rows[loop.target].tolist(), "healthy")
    return loop.monitor(since, "monitor-healthy")


def test_traffic_like_the_training_data_is_healthy(loop, healthy):
    assert healthy["status"] == "HEALTHY", healthy
    assert healthy["drifted_features"] == [] and loop.violations(healthy) == []
    assert healthy["live_quality"]["records"] == RECORDS and healthy["quality_degraded"] is False
    assert "retraining_execution" not in healthy
    executions = loop.runtime.stepfunctions.list_executions(
        stateMachineArn=machine(loop.runtime, "TrainingPipeline").arn)["executions"]
    assert len(executions) == 1  # only the first training
    report = loop.runtime.s3.get_bytes(healthy["report"]).decode()
    assert report.lstrip().lower().startswith("<!doctype html") and SHIFTED in report
    metrics = loop.runtime.cloudwatch.list_metrics(Namespace="MlPipeline/ModelMonitor")["Metrics"]
    assert {"DriftedFeatureShare", "MaxPSI", "FeatureDrift", "LiveQuality", "QualityDegraded"} <= {m["MetricName"] for m in metrics}


def test_degraded_labels_without_drift_start_a_retraining(loop, healthy):
    since = now_iso()
    rows = loop.sample(RECORDS)
    ids, _ = loop.send(rows)
    loop.label(ids, [str(int(r) + 6) for r in rows[loop.target]], "off-by-six")
    output = loop.monitor(since, "monitor-quality")
    assert output["drifted_features"] == [] and output["quality_degraded"] is True, output
    assert output["status"] == "RETRAINING" and output["retraining"]["labelled_records"] == RECORDS
    # it would deploy a model fitted to wrong labels (its gate would likely refuse it): stopped here
    loop.runtime.stepfunctions.stop_execution(executionArn=output["retraining_execution"], error="Test.Stopped",
                                              cause="the quality case only checks that a retraining starts")
    assert loop.wait(output["retraining_execution"])["status"] == "ABORTED"


def test_shifted_traffic_names_the_two_features_alarms_and_retrains_a_better_model(loop, healthy):
    std = pd.to_numeric(loop.table[SHIFTED]).std()
    since = now_iso()
    rows = drift_traffic.shifted(loop.sample(RECORDS), SHIFTED, std, 4.0, "sex", MIX, loop.rng)
    ids, champion_answers = loop.send(rows)
    labels = rows[loop.target].tolist()
    loop.label(ids, labels, "shifted")
    output = loop.monitor(since, "monitor-shifted")
    assert sorted(output["drifted_features"]) == ["sex", SHIFTED], output
    drifted = {v["feature_name"] for v in loop.violations(output) if v["constraint_check_type"] == "baseline_drift_check"}
    assert drifted == {"sex", SHIFTED}
    alarms = {a["AlarmName"]: a["StateValue"] for a in loop.runtime.cloudwatch.describe_alarms()["MetricAlarms"]}
    assert alarms["MlPipeline-data-drift"] == ALARM
    notified = [json.loads(m["Message"]) for m in loop.runtime.sns.read_outbox(
        next(t.name for t in loop.runtime.deployment.topics))]
    assert any(m.get("AlarmName") == "MlPipeline-data-drift" and m.get("NewStateValue") == ALARM for m in notified)
    assert output["status"] == "RETRAINING"
    retraining = loop.wait(output["retraining_execution"])
    assert retraining["status"] == "SUCCEEDED", (retraining.get("error"), retraining.get("cause"))
    deployed = json.loads(retraining["output"])
    # like for like: the champion was scored on the retrained model's own test split
    assert deployed["gate"]["passed"] is True and deployed["gate"]["champion_scored_on"] == "this model's test split"
    assert deployed["gate"]["value"] <= deployed["gate"]["champion_value"]
    _, retrained_answers = loop.send(rows)
    assert rmse(retrained_answers, labels) < rmse(champion_answers, labels)


def test_the_cli_monitors_a_quiet_window_and_prints_the_metrics_and_alarms(loop, healthy, capsys):
    from emulator.cli import main as cli

    state = ["--project", str(PROJECT_ROOT), "--state-dir", str(loop.runtime.state_dir)]
    # an earlier test's last requests may still be in the capture writer's buffer: a window that starts
    # before that file is written would count them (CI once found traffic in this "quiet" window)
    time.sleep(2.5)
    assert cli.main([*state, "monitor", "--window-start", now_iso()]) == 0
    out = capsys.readouterr().out
    assert "monitoring: NO_TRAFFIC" in out and "no traffic in " in out
    assert cli.main([*state, "metrics", "--namespace", "MlPipeline/ModelMonitor"]) == 0
    out = capsys.readouterr().out
    assert "DriftedFeatureShare" in out and "Feature=shell weight" in out
    assert cli.main([*state, "alarms", "--history"]) == 0
    out = capsys.readouterr().out
    assert "MlPipeline-data-drift" in out and "MlPipeline-endpoint-5xx" in out
