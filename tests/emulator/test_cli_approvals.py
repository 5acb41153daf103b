"""`python -m emulator approve|reject`: the token an execution waits on is answered from the shell,
through its record on disk (no `serve` needed); and `run` says when an execution waits."""

from __future__ import annotations

import json

from emulator.cli import main as cli
from emulator.cli.progress import Progress
from emulator.services.stepfunctions.tokens import TaskTokens
from emulator.storage.layout import Layout

ARN = "arn:aws:states:us-east-1:000000000000:execution:MlPipeline-training:{}"


def waiting(tmp_path, *names: str) -> TaskTokens:
    tokens = TaskTokens(Layout.at(tmp_path).stepfunctions_records)
    for name in names:
        tokens.register(f"token-{name}", execution_arn=ARN.format(name), state_name="Request approval",
                        resource="arn:aws:states:::sns:publish.waitForTaskToken")
    return tokens


def test_approve_answers_the_execution_it_names(tmp_path, capsys):
    tokens = waiting(tmp_path, "run-1", "run-2")
    assert cli.main(["--state-dir", str(tmp_path), "approve", "run-2", "--reason", "report checked", "--reviewer", "ana"]) == 0
    record = tokens.read("token-run-2")
    assert record["status"] == "SUCCEEDED"
    assert json.loads(record["output"]) == {"decision": "Approved", "reviewer": "ana", "reason": "report checked"}
    assert tokens.read("token-run-1")["status"] == "WAITING"
    assert "approved: " + ARN.format("run-2") in capsys.readouterr().out


def test_reject_fails_the_task_with_model_rejected_and_the_reason(tmp_path):
    tokens = waiting(tmp_path, "run-1")
    assert cli.main(["--state-dir", str(tmp_path), "reject", "--reason", "worse on small shells"]) == 0  # the only one
    record = tokens.read("token-run-1")
    assert (record["status"], record["error"], record["cause"]) == ("FAILED", "ModelRejected", "worse on small shells")


def test_nothing_or_several_waiting_are_named_errors(tmp_path, capsys):
    assert cli.main(["--state-dir", str(tmp_path), "approve"]) == 2
    assert "no task token waits" in capsys.readouterr().err
    waiting(tmp_path, "run-1", "run-2")
    assert cli.main(["--state-dir", str(tmp_path), "approve"]) == 2
    err = capsys.readouterr().err
    assert "several executions wait" in err and ARN.format("run-1") in err and ARN.format("run-2") in err
    assert cli.main(["--state-dir", str(tmp_path), "approve", "run-1"]) == 0
    assert cli.main(["--state-dir", str(tmp_path), "approve", "run-1"]) == 2  # answered: nothing waits any more


def test_progress_says_when_a_task_waits_for_its_token():
    lines = []
    progress = Progress(write=lines.append)
    progress({"id": 1, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Request approval"}})
    progress({"id": 2, "previousEventId": 1, "type": "TaskScheduled", "taskScheduledEventDetails": {}})
    progress({"id": 3, "previousEventId": 2, "type": "TaskStarted",
              "taskStartedEventDetails": {"resourceType": "sns", "resource": "publish.waitForTaskToken"}})
    assert len(lines) == 1 and "Request approval  waits for its task token" in lines[0]
    assert "python -m emulator approve|reject" in lines[0]
