"""The inference state machine end to end, offline, after a real training run: files of raw records
dropped under inference/ start it through the S3 -> EventBridge rule, their batches go through the
endpoint over HTTP (the invoke server: its metrics count them, its data capture writes them), and:

* raw records SUCCEED with every record's prediction in predictions/<execution>/predictions.csv;
* a few records far outside the training data FAIL with LowConfidencePrediction naming them, after the
  predictions are written (and the capture report is drawn from the capture files);
* a file without one of the model's columns FAILS at validation, before any invocation;
* `python -m emulator report` draws the same report from the same files.

Small budgets: abalone, tuning off, 20 rounds.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from emulator.cli.main import main as cli
from emulator.cloud.deploy import deploy
from emulator.runtime import Runtime
from emulator.services.cloudwatch import MetricStore
from emulator.services.sagemaker.invoke_server import stop_in_process_servers

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "ml-pipeline-endpoint"
SMALL = {"hyperparameters": {"num_round": "20", "max_depth": "4", "eta": "0.3"}, "tuning_enabled": False}
ABALONE = (PROJECT_ROOT / "data" / "abalone.csv").read_text().splitlines()
HEADER = ABALONE[0].rsplit(",", 1)[0]
RECORDS = [line.rsplit(",", 1)[0] for line in ABALONE[1:]]


class World:
    """A deployed stack with a trained model, and the inference executions the tests look at."""

    def __init__(self, assembly: Path, state: Path):
        self.state = state
        self.runtime = Runtime.open(state, PROJECT_ROOT, deployment=deploy(assembly, state), time_scale=0.01)
        self.s3 = self.runtime.s3
        self.bucket, raw = self.runtime.events.upload_trigger()
        uri = f"s3://{self.bucket}/{raw}abalone.csv"
        self.s3.put_bytes(uri, "\n".join(ABALONE[:700]).encode() + b"\n")
        trained = self.runtime.launch(self.runtime.deployment.state_machines[0], {"input_s3_uri": uri, **SMALL}, "train")
        assert trained.status == "SUCCEEDED", (trained.error, trained.cause)
        self.runs: dict[str, object] = {}
        # ordinary records: rows the model did not train on, inside the training split's ranges (preprocess's
        # baseline.json), so none is low-confidence by the regression rule
        baseline = json.loads(self.s3.get_bytes(trained.output["schema"].replace("schema.json", "baseline.json")))
        ranges = {name: (stats["min"], stats["max"]) for name, stats in baseline["features"].items()}

        def inside(record: str) -> bool:
            cells = dict(zip(HEADER.split(","), record.split(","), strict=True))
            return cells["sex"] in "MFI" and all(low <= float(cells[c]) <= high for c, (low, high) in ranges.items()
                                                 if c in cells)

        self.ordinary = [r for r in RECORDS[700:] if inside(r)][:250]

    def drop(self, name: str, body: str):
        """Upload under inference/ and let the rule start the execution (run to its end)."""
        uri = f"s3://{self.bucket}/inference/{name}"
        self.s3.put_bytes(uri, body.encode())
        (delivery,) = self.runtime.events.object_created(self.s3, uri)
        return delivery.result

    def invocations(self) -> float:
        """The endpoint's Invocations metric so far (what the invoke server records per request)."""
        store = MetricStore(self.runtime.layout.cloudwatch_dir / "metrics.sqlite")
        return store.statistic("AWS/SageMaker", "Invocations", {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"},
                               0, time.time() + 60, "Sum") or 0.0

    def text(self, key: str) -> str:
        return self.s3.get_bytes(f"s3://{self.bucket}/{key}").decode()


@pytest.fixture(scope="module")
def world(assembly, tmp_path_factory):
    world = World(assembly, tmp_path_factory.mktemp("inference-state"))
    before = world.invocations()
    world.runs["good"] = world.drop("good.csv", "\n".join(world.ordinary) + "\n")
    world.good_invocations = world.invocations() - before
    time.sleep(1.5)  # the capture writer's flush interval: the next run's report sees these requests
    outliers = [world.ordinary[0], "M,9.5,0.4,0.1,0.5,0.2,0.1,0.15", world.ordinary[1], "F,0.5,0.4,0.1,40.0,0.2,0.1,0.15"]
    world.runs["outliers"] = world.drop("outliers.csv", HEADER + "\n" + "\n".join(outliers) + "\n")
    before = world.invocations()
    missing = ",".join(HEADER.split(",")[:-1]) + "\n" + "\n".join(r.rsplit(",", 1)[0] for r in RECORDS[960:965])
    world.runs["missing"] = world.drop("missing.csv", missing + "\n")
    world.missing_invocations = world.invocations() - before
    yield world
    world.runtime.close()
    stop_in_process_servers()


def test_raw_records_are_scored_through_the_endpoint_and_every_prediction_is_written(world):
    result = world.runs["good"]
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    name = result.execution_arn.rsplit(":", 1)[1]
    assert result.output["records"] == 250 and result.output["low_confidence"] == 0
    rows = list(csv.DictReader(io.StringIO(world.text(f"predictions/{name}/predictions.csv"))))
    assert len(rows) == 250
    assert [",".join(r[c] for c in HEADER.split(",")) for r in rows] == world.ordinary
    assert all(float(r["prediction"]) > 0 for r in rows) and {r["low_confidence"] for r in rows} == {"false"}
    # through the endpoint's HTTP path: 3 batches of 100 counted by its metrics and captured with their ids
    assert world.good_invocations == 3
    captured = []
    for key in world.s3.list_keys(world.bucket, f"capture/{ENDPOINT}/AllTraffic/"):
        captured += [json.loads(line) for line in world.text(key).splitlines()]
    ours = [c for c in captured if c["eventMetadata"].get("inferenceId", "").startswith(name[:20])]
    assert len(ours) == 3
    assert sum(len(c["captureData"]["endpointInput"]["data"].splitlines()) for c in ours) == 250
    assert {c["captureData"]["endpointOutput"]["encoding"] for c in ours} == {"CSV"}
    published = [json.loads(m["Message"]) for topic in world.runtime.deployment.topics
                 for m in world.runtime.sns.read_outbox(topic.name) if m["Subject"] == "ML inference succeeded"]
    assert [(m["records"], m["low_confidence"]) for m in published if name in m["execution"]] == [(250, 0)]


def test_records_far_outside_the_training_data_fail_naming_them_after_the_predictions(world):
    result = world.runs["outliers"]
    assert result.status == "FAILED" and result.error == "LowConfidencePrediction", (result.error, result.cause)
    assert result.cause.startswith("2 of 4 records (50.0%) are low-confidence")
    assert "record 2 (line 3): predicted" in result.cause and "length=9.5 outside training range" in result.cause
    assert "record 4 (line 5)" in result.cause and "whole weight=40.0 outside training range" in result.cause
    name = result.execution_arn.rsplit(":", 1)[1]
    rows = list(csv.DictReader(io.StringIO(world.text(f"predictions/{name}/predictions.csv"))))
    assert [r["low_confidence"] for r in rows] == ["false", "true", "false", "true"]
    # the capture report was drawn before the decision, from the capture files of the earlier run
    report = json.loads(world.text(f"reports/capture/{name}/report.json"))
    assert report["capture_lines"] >= 3 and report["records"] >= 250
    assert world.s3.exists(f"s3://{world.bucket}/reports/capture/{name}/report.png")
    page = world.text(f"reports/capture/{name}/report.html")
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page


def test_each_scored_file_publishes_its_low_confidence_rate_for_the_dashboard(world):
    """The good file (0 of 250) and the outliers (2 of 4) each put one LowConfidenceRate datapoint,
    the failing one too (published before the decision); the file refused at validation puts none."""
    store = MetricStore(world.runtime.layout.cloudwatch_dir / "metrics.sqlite")
    rate = ("MlPipeline/ModelMonitor", "LowConfidenceRate", {"EndpointName": ENDPOINT}, 0, time.time() + 60)
    assert store.statistic(*rate, "SampleCount") == 2
    assert store.statistic(*rate, "Minimum") == 0.0 and store.statistic(*rate, "Maximum") == 0.5


def test_a_missing_column_fails_at_validation_before_any_invocation(world):
    result = world.runs["missing"]
    assert result.status == "FAILED" and result.error == "SchemaMismatch", (result.error, result.cause)
    assert "missing column(s) ['shell weight']" in result.cause
    assert world.missing_invocations == 0
    name = result.execution_arn.rsplit(":", 1)[1]
    assert not world.s3.list_keys(world.bucket, f"predictions/{name}/")
    entered = [e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e]
    assert "Score batches" not in entered and entered[-1] == "Inference failed"


def test_the_report_command_draws_the_same_report_from_the_same_files(world, capsys):
    assert cli(["--project", str(PROJECT_ROOT), "--state-dir", str(world.state), "report", "--run", "cli-run"]) == 0
    out = capsys.readouterr().out
    assert "capture report:" in out and "reports/capture/cli-run/" in out
    report = json.loads(world.text("reports/capture/cli-run/report.json"))
    assert report["run"] == "cli-run" and report["records"] >= 254
    assert report["problem_type"] == "regression" and set(report["features"]) == set(HEADER.split(","))


def test_the_infer_command_runs_a_file_with_this_executions_settings(world, tmp_path, capsys):
    path = tmp_path / "allowed.jsonl"
    columns = HEADER.split(",")
    records = [world.ordinary[2], "M,9.5,0.4,0.1,0.5,0.2,0.1,0.15"]
    path.write_text("".join(json.dumps(dict(zip(columns, r.split(","), strict=True))) + "\n" for r in records))
    argv = ["--project", str(PROJECT_ROOT), "--state-dir", str(world.state), "infer", str(path),
            "--set", "max_low_confidence_share=0.5"]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "status: SUCCEEDED" in out and "2 scored, 1 low-confidence" in out
    assert f"s3://{world.bucket}/inference/allowed.jsonl" in out
