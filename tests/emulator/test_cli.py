"""`python -m emulator`: asl, run (through the EventBridge rule), staleness, logging, serve hook."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from emulator.cli import main as cli
from emulator.cli import synth
from emulator.cli.errors import CliError
from emulator.cli.progress import Progress

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FAIL_DEFINITION = {"StartAt": "P", "States": {
    "P": {"Type": "Pass", "Parameters": {"x.$": "$.a"}, "Next": "F"},
    "F": {"Type": "Fail", "Error": "Bad", "Cause": "because"}}}


def write(path, value) -> str:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return str(path)


def test_asl_prints_one_json_object_and_exits_0_on_failure(tmp_path, capsys):
    definition = write(tmp_path / "d.json", FAIL_DEFINITION)
    data = write(tmp_path / "i.json", {"a": 1})
    code = cli.main(["--state-dir", str(tmp_path / "none"), "asl", definition, "--input", data, "--history"])
    assert code == 1  # a failed execution is a failed command
    out = json.loads(capsys.readouterr().out)
    assert out == {"status": "FAILED", "output": None, "error": "Bad", "cause": "because",
                   "history": ["ExecutionStarted", "PassStateEntered", "PassStateExited", "FailStateEntered",
                               "ExecutionFailed"]}


def test_asl_succeeds_and_bad_files_exit_2(tmp_path, capsys):
    ok = write(tmp_path / "ok.json", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    assert cli.main(["--state-dir", str(tmp_path / "none"), "asl", ok]) == 0
    assert json.loads(capsys.readouterr().out) == {"status": "SUCCEEDED", "output": {}, "error": None, "cause": None}
    bad_json = write(tmp_path / "bad.json", "{nope")
    assert cli.main(["asl", bad_json]) == 2
    assert "not a readable JSON definition" in capsys.readouterr().err
    invalid = write(tmp_path / "invalid.json", {"StartAt": "X", "States": {}})
    assert cli.main(["--state-dir", str(tmp_path / "none"), "asl", invalid]) == 2
    assert "invalid definition" in capsys.readouterr().err


def test_run_sample_goes_through_the_eventbridge_rule(tmp_path, capsys, mini_assembly):
    code = cli.main(["--project", str(PROJECT_ROOT), "--state-dir", str(tmp_path / "state"), "run",
                     "--assembly", str(mini_assembly), "--sample"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "upload: abalone.csv -> s3://ministack-databuckete3889a50/raw/abalone.csv" in out
    assert re.search(r"s  Read +\d+\.\d\ds\n", out), out  # one line per state that did something
    assert "status: SUCCEEDED" in out
    assert '"input_s3_uri": "s3://ministack-databuckete3889a50/raw/abalone.csv"' in out
    assert "not emulated (" in out
    assert re.search(r"disk +\+[\d.]+ (KB|MB) under \.emulator/ by this run", out), out  # the run's own bytes
    histories = list((tmp_path / "state" / "executions" / "mini-training").iterdir())
    assert len(histories) == 1


def test_run_failure_exits_1_with_the_failing_state(tmp_path, capsys, mini_assembly):
    code = cli.main(["--project", str(PROJECT_ROOT), "--state-dir", str(tmp_path / "state"), "run",
                     "--assembly", str(mini_assembly), "--input", json.dumps({"key": "missing.csv"}),
                     "--name", "bad-input"])
    out = capsys.readouterr().out
    assert code == 1
    assert "failed state: Read" in out and "error: ClientError" in out
    assert "status: FAILED" in out and out.count("error: ClientError") == 1  # the failure said once
    assert (tmp_path / "state" / "executions" / "mini-training" / "bad-input").is_dir()


def test_the_summary_explains_the_executions_own_error_not_a_later_caught_one(capsys):
    """A Lambda's ChampionMismatch is caught to the failure handler, whose first task finds no deploy
    lock (NoSuchKey, caught: expected); the execution fails with ChampionMismatch, and so does the summary."""
    from types import SimpleNamespace

    from emulator.cli.progress import summarize

    progress = Progress(write=lambda line: None)
    events = [("Quality gate", "LambdaFunctionFailed", "ChampionMismatch", "This model predicts 'cultivar'"),
              ("Read lock on failure", "TaskFailed", "S3.NoSuchKeyException", "The specified key does not exist.")]
    for n, (state, kind, error, cause) in enumerate(events):
        progress({"id": 3 * n + 1, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": state}})
        progress({"id": 3 * n + 2, "previousEventId": 3 * n + 1, "type": "TaskScheduled"})
        details = "lambdaFunctionFailedEventDetails" if kind.startswith("Lambda") else "taskFailedEventDetails"
        progress({"id": 3 * n + 3, "previousEventId": 3 * n + 2, "type": kind, details: {"error": error, "cause": cause}})
    runtime = SimpleNamespace(execution_dir=lambda machine, name: Path("/tmp") / machine / name)
    result = SimpleNamespace(status="FAILED", error="ChampionMismatch", cause="This model predicts 'cultivar'")
    assert summarize(runtime, SimpleNamespace(name="m"), "run", result, progress, 1.0) == 1
    out = capsys.readouterr().out
    assert "failed state: Quality gate" in out and "error: ChampionMismatch" in out and "NoSuchKey" not in out


def test_run_without_input_is_a_usage_error(tmp_path, capsys, mini_assembly):
    assert cli.main(["--state-dir", str(tmp_path), "run", "--assembly", str(mini_assembly)]) == 2
    assert "--sample" in capsys.readouterr().err


def test_staleness(tmp_path):
    project = tmp_path / "proj"
    (project / "stacks").mkdir(parents=True)
    (project / "app.py").write_text("app")
    (project / "stacks" / "s.py").write_text("s")
    assert synth.is_stale(project, {})  # no cdk.out yet
    (project / "cdk.out").mkdir()
    (project / "cdk.out" / "manifest.json").write_text("{}")
    manifest = project / "cdk.out" / "manifest.json"
    stamp = {"context": {}, "manifest": [manifest.stat().st_mtime_ns, manifest.stat().st_size]}
    (project / "cdk.out" / synth.SYNTH_STAMP).write_text(json.dumps(stamp))
    old = time.time() - 100
    for path in (project / "app.py", project / "stacks" / "s.py"):
        os.utime(path, (old, old))
    assert not synth.is_stale(project, {})
    assert synth.is_stale(project, {"pipeline.target_column": "deposit"})  # other -c context
    (project / "stacks" / "s.py").write_text("changed")
    os.utime(project / "stacks" / "s.py", (time.time() + 10, time.time() + 10))
    assert synth.staleness(project, {}) == "a source file changed since the last synth"


def test_a_cdk_out_synthesized_outside_the_emulator_is_never_reused(tmp_path):
    project = tmp_path / "proj"
    (project / "cdk.out").mkdir(parents=True)
    manifest = project / "cdk.out" / "manifest.json"
    manifest.write_text("{}")
    stamp = {"context": {}, "manifest": [manifest.stat().st_mtime_ns, manifest.stat().st_size]}
    (project / "cdk.out" / synth.SYNTH_STAMP).write_text(json.dumps(stamp))
    assert not synth.is_stale(project, {})
    manifest.write_text('{"version": "x"}')  # `npx cdk synth -c pipeline.target_column=deposit` by hand
    assert "synthesized outside the emulator" in synth.staleness(project, {})
    assert synth.outdir_for({"stack_name": "Churn"}) == "cdk.out.Churn"
    assert synth.outdir_for({"stack_name": "MlPipeline"}) == synth.outdir_for({}) == "cdk.out"


def test_parse_context():
    assert synth.parse_context(["a=1", "pipeline.x=y=z"]) == {"a": "1", "pipeline.x": "y=z"}
    with pytest.raises(CliError, match="key=value"):
        synth.parse_context(["novalue"])


def test_emulator_info_logs_are_one_concise_line(capsys):
    cli.configure_logging()
    logging.getLogger("emulator.integrations.sagemaker").info("tuning trial %d/%d: validation:rmse=%.3f", 3, 8, 2.1)
    logging.getLogger("botocore").info("not shown")
    assert capsys.readouterr().err == "  [integrations.sagemaker] tuning trial 3/8: validation:rmse=2.100\n"


def test_serve_options_and_a_missing_state_folder(capsys):
    from emulator.cli.serve import parse_serve_args

    options = parse_serve_args(["--port", "0", "--stepfunctions-port", "7"], Path("/nowhere"))
    assert (options.state_dir, options.host, options.port, options.stepfunctions_port) == (Path("/nowhere"), "127.0.0.1", 0, 7)
    # `--state-dir D serve` means D for serve too; nothing there yet is a clear refusal, not a traceback
    assert cli.main(["--state-dir", "/nowhere", "serve", "--port", "0"]) == 2
    assert "no emulator state at /nowhere" in capsys.readouterr().err


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "emulator", "--help"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0
    for command in ("asl", "synth", "deploy", "run", "watch", "serve"):
        assert command in done.stdout


def test_deploy_lists_what_it_deployed(tmp_path, capsys, mini_assembly):
    assert cli.main(["--state-dir", str(tmp_path / "state"), "deploy", "--assembly", str(mini_assembly)]) == 0
    out = capsys.readouterr().out
    assert "state machine: mini-training" in out
    assert "function: MiniStack-ReaderF7BF189D  handler.handler  (python3.11, 5s)" in out
    assert "rule: MiniStack-RawUploaded5474D556 -> mini-training" in out
    assert (tmp_path / "state" / "deployment.json").is_file()


def test_progress_names_a_fail_state_when_no_task_failed():
    lines = []
    progress = Progress(write=lines.append)
    progress({"id": 1, "type": "ExecutionStarted"})
    progress({"id": 2, "previousEventId": 1, "type": "ChoiceStateEntered", "stateEnteredEventDetails": {"name": "Gate?"}})
    progress({"id": 3, "previousEventId": 2, "type": "ChoiceStateExited", "stateExitedEventDetails": {"name": "Gate?"}})
    progress({"id": 4, "previousEventId": 3, "type": "FailStateEntered", "stateEnteredEventDetails": {"name": "Bad"}})
    assert progress.last_failure is None and progress.last_entered == "Bad (Fail)"
    assert [line.split(None, 1)[1] for line in lines] == ["Gate? -> Bad"]  # a decision, shown as one


def test_progress_shows_retries_and_caught_failures_as_decisions():
    lines = []
    progress = Progress(write=lines.append)
    progress({"id": 1, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Train"}})
    progress({"id": 2, "previousEventId": 1, "type": "TaskScheduled", "taskScheduledEventDetails": {}})
    progress({"id": 3, "previousEventId": 2, "type": "TaskFailed",
              "taskFailedEventDetails": {"error": "SageMaker.AmazonSageMakerException", "cause": "Rate exceeded"}})
    progress({"id": 4, "previousEventId": 3, "type": "TaskScheduled", "taskScheduledEventDetails": {}})
    assert lines[0].endswith("Train  retry 2 after SageMaker.AmazonSageMakerException")
    assert progress.last_failure == ("Train", "SageMaker.AmazonSageMakerException", "Rate exceeded")
    progress({"id": 5, "previousEventId": 4, "type": "TaskFailed",
              "taskFailedEventDetails": {"error": "SageMaker.ValidationException",
                                         "cause": '{"message": "Could not find endpoint"}'}})
    progress({"id": 6, "previousEventId": 5, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Create"}})
    assert lines[-1].endswith("Train -> Create  (caught SageMaker.ValidationException: Could not find endpoint)")
    assert progress.last_failure[0] == "Train"  # caught, and still the reason should the execution fail


def test_a_polling_loop_is_one_line_and_no_line_is_wider_than_200():
    lines = []
    progress = Progress(write=lines.append)
    event_id = 0

    def state(name: str, kind: str) -> None:
        nonlocal event_id
        progress({"id": event_id + 1, "previousEventId": event_id, "type": f"{kind}StateEntered",
                  "stateEnteredEventDetails": {"name": name}})
        progress({"id": event_id + 2, "previousEventId": event_id + 1, "type": f"{kind}StateExited",
                  "stateExitedEventDetails": {"name": name}})
        event_id += 2

    state("Deploy " + "x" * 300, "Task")
    for _ in range(40):
        state("Wait for endpoint", "Wait")
        state("Describe endpoint", "Task")
        state("Endpoint ready?", "Choice")
    state("Record champion", "Task")
    assert len(lines) == 5, lines
    assert "Wait for endpoint / Describe endpoint / Endpoint ready?  repeated 39 more time(s)" in lines[3]
    assert lines[3].endswith("(polling)") and "Record champion" in lines[4]
    assert all(len(line) <= 200 for line in lines)


def test_a_task_failure_that_a_retry_fixed_is_not_reported_as_the_cause():
    progress = Progress(write=lambda line: None)
    for event in (
        {"id": 1, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Train"}},
        {"id": 2, "previousEventId": 1, "type": "TaskFailed",
         "taskFailedEventDetails": {"error": "ThrottlingException", "cause": "Rate exceeded"}},
        {"id": 3, "previousEventId": 2, "type": "TaskSucceeded", "taskSucceededEventDetails": {}},
    ):
        progress(event)
    assert progress.last_failure is None


def test_sample_and_input_together_are_a_usage_error(tmp_path, capsys, mini_assembly):
    code = cli.main(["--state-dir", str(tmp_path), "run", "--assembly", str(mini_assembly), "--sample",
                     "--input", "{}"])
    assert code == 2
    assert "not both" in capsys.readouterr().err


def test_validate_prints_diagnostics_and_fails_on_an_error(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    assert cli.main(["validate", str(good)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"StartAt": "Missing", "States": {"P": {"Type": "Pass", "End": True}}}))
    assert cli.main(["validate", str(bad)]) == 1
    assert "Missing" in capsys.readouterr().out


def test_run_data_uploads_the_users_file_and_says_which_target(tmp_path, capsys, mini_assembly):
    table = tmp_path / "my table.csv"
    table.write_text("customer_id,plan,Label\nC1,pro,yes\nC2,basic,no\n")
    code = cli.main(["--project", str(PROJECT_ROOT), "--state-dir", str(tmp_path / "state"), "run",
                     "--assembly", str(mini_assembly), "--data", str(table)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "target: Label (the column named 'Label'; pass --target to choose another)" in out
    assert "upload: my table.csv -> s3://ministack-databuckete3889a50/raw/my table.csv" in out
    assert (tmp_path / "state" / "s3" / "ministack-databuckete3889a50" / "raw" / "my table.csv").read_bytes() == table.read_bytes()


def test_run_data_refuses_what_it_cannot_run_with_what_to_do(tmp_path, capsys):
    base = ["--project", str(PROJECT_ROOT), "--state-dir", str(tmp_path / "state"), "run"]
    assert cli.main([*base, "--data", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    utf16 = tmp_path / "excel.csv"
    utf16.write_bytes("a,b\n1,2\n".encode("utf-16"))
    assert cli.main([*base, "--data", str(utf16)]) == 2
    assert "UTF-16" in capsys.readouterr().err
    table = tmp_path / "t.csv"
    table.write_text("a,b,c\n1,2,3\n")
    assert cli.main([*base, "--data", str(table), "--target", "B"]) == 2
    assert "did you mean 'b'" in capsys.readouterr().err
    assert cli.main([*base, "--data", str(table), "--set", "tuning"]) == 2
    assert "expected key=value" in capsys.readouterr().err


def test_the_target_is_a_named_column_or_the_last_one(tmp_path):
    from emulator.app.own_data import choose_target

    last = tmp_path / "last.csv"
    last.write_text("x,y_value,price\n1,2,3\n")
    assert choose_target(last, None) == ("price", "the last column; pass --target to choose another")
    named = tmp_path / "named.csv"
    named.write_text("\ufeffClass,x,z\n1,2,3\n")  # a BOM, as Excel writes
    assert choose_target(named, None)[0] == "Class"
    assert choose_target(named, "x") == ("x", "given with --target")


def test_serve_prints_every_url_and_env_repeats_them(tmp_path, capsys, mini_assembly):
    import boto3

    state = tmp_path / "state"
    assert cli.main(["--state-dir", str(state), "deploy", "--assembly", str(mini_assembly)]) == 0
    capsys.readouterr()
    assert cli.main(["--state-dir", str(state), "env"]) == 2  # nothing serves yet: says how to start it
    assert "python -m emulator serve" in capsys.readouterr().err
    assert cli.main(["--state-dir", str(state), "console", "--print"]) == 2
    assert "python -m emulator serve" in capsys.readouterr().err
    serve = subprocess.Popen([sys.executable, "-m", "emulator", "--project", str(PROJECT_ROOT), "--state-dir", str(state),
                              "serve"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = []
        while not any("an upload to s3://" in line for line in printed):
            line = serve.stdout.readline()
            assert line, "serve ended early:\n" + "".join(printed)
            printed.append(line)
        text = "".join(printed)
        for name in ("S3", "Step Functions", "SageMaker runtime", "export AWS_ENDPOINT_URL_S3=",
                     "export AWS_ENDPOINT_URL_SFN=", "export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME="):
            assert name in text, text
        assert cli.main(["--state-dir", str(state), "env"]) == 0
        lines = dict(line.removeprefix("export ").split("=", 1) for line in capsys.readouterr().out.splitlines()
                     if line.startswith("export AWS_ENDPOINT_URL_"))
        s3 = boto3.client("s3", endpoint_url=lines["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        assert "ministack-databuckete3889a50" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        sfn = boto3.client("stepfunctions", endpoint_url=lines["AWS_ENDPOINT_URL_SFN"], region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
        assert [m["name"] for m in sfn.list_state_machines()["stateMachines"]] == ["mini-training"]
        assert {"AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"} <= set(lines)
        # the console: its URL printed with the others, `console --print` repeats it, it reads the same API
        assert cli.main(["--state-dir", str(state), "console", "--print"]) == 0
        url = capsys.readouterr().out.strip()
        assert url.startswith("http://127.0.0.1:") and f"Console            {url}" in text
        with urllib.request.urlopen(url + "api/machines", timeout=30) as answer:
            assert [m["name"] for m in json.loads(answer.read())] == ["mini-training"]
    finally:
        serve.terminate()
        serve.wait(30)


def test_set_options_read_json_values_and_keep_text():
    from emulator.cli.errors import CliError
    from emulator.cli.settings import parse_settings

    assert parse_settings(["confidence_threshold=0.6", "labels=[\"a\"]", "mode=manual", "url=s3://b/k=v"], "x=1") == {
        "confidence_threshold": 0.6, "labels": ["a"], "mode": "manual", "url": "s3://b/k=v"}
    with pytest.raises(CliError, match="give KEY=VALUE, e.g. --set x=1"):
        parse_settings(["threshold"], "x=1")
