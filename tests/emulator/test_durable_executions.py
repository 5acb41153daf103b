"""A `python -m emulator run` process killed mid-execution (SIGKILL) or stopped (SIGTERM): the record
keeps the history journaled up to then, the next emulator process settles it FAILED and ends its
child processes, SIGTERM ends it ABORTED cleanly, and a name is never run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.runtime import Runtime
from emulator.storage import executions
from emulator.storage.processes import group_alive

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SLEEP = json.dumps({"key": "raw/data.csv", "action": "sleep", "seconds": 3.5})


def start_run(state: Path, assembly: Path, name: str, execution_input: str = SLEEP) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", "--state-dir", str(state), "run", "--assembly", str(assembly),
         "--input", execution_input, "--name", name, "--time-scale", "0"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lambda(state: Path, name: str, process: subprocess.Popen, timeout: float = 60) -> list[int]:
    """The process groups the run started once its Lambda runs (read from the groups record)."""
    folder = state / "executions" / "mini-training" / name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        types = [e["type"] for e in executions.read_journal(folder)]
        record = state / "processes" / "groups" / f"{process.pid}.json"
        if "TaskStarted" in types and record.is_file():
            return [g["pid"] for g in json.loads(record.read_text())["groups"]]
        time.sleep(0.05)
    raise AssertionError(f"the Lambda of {name} did not start in {timeout}s")


def test_a_killed_run_leaves_its_history_and_is_settled_failed_by_the_next_command(tmp_path, mini_assembly):
    state = tmp_path / "state"
    run = start_run(state, mini_assembly, "killed")
    groups = wait_for_lambda(state, "killed", run)
    watcher = Runtime.open(state, PROJECT_ROOT, serve_s3=False)  # like a `serve` already up (S3 off: not needed)
    try:
        run.send_signal(signal.SIGKILL)
        run.wait(10)
        folder = state / "executions" / "mini-training" / "killed"
        partial = executions.read_execution(folder)
        # the journal is readable at once: every event up to the kill, none after
        assert partial["status"]["status"] == "RUNNING"
        assert [e["type"] for e in partial["history"]][:3] == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled"]
        assert any(group_alive(g) for g in groups)  # the orphan: the Lambda still sleeps

        # the Step Functions API of a process that was up before the kill settles it when asked
        arn = partial["status"]["executionArn"]
        described = watcher.stepfunctions.describe_execution(executionArn=arn)
        assert described["status"] == "FAILED" and described["error"] == executions.ORPHANED
        assert "'Read'" in described["cause"] and "killed" in described["cause"]
        assert not any(group_alive(g) for g in groups)  # its Lambda process group was ended
        events = watcher.stepfunctions.get_execution_history(executionArn=arn)["events"]
        assert events[-1]["type"] == "ExecutionFailed" and "TaskStarted" in [e["type"] for e in events]
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        with pytest.raises(Exception, match="ExecutionAlreadyExists|Already Exists"):
            watcher.stepfunctions.start_execution(stateMachineArn=watcher.machines.machines[0].arn, name="killed",
                                                  input=SLEEP)
    finally:
        watcher.close()

    # `run --name` of an existing execution is refused by name; the record is left as it was
    before = (folder / "status.json").read_text()
    again = subprocess.run([sys.executable, "-m", "emulator", "--state-dir", str(state), "run", "--assembly",
                            str(mini_assembly), "--input", SLEEP, "--name", "killed"],
                           check=False, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "an execution named 'killed'" in again.stderr and "choose another" in again.stderr
    assert (folder / "status.json").read_text() == before


def test_a_run_killed_with_nobody_watching_is_settled_when_any_command_opens_the_state(tmp_path, mini_assembly):
    state = tmp_path / "state"
    run = start_run(state, mini_assembly, "alone")
    groups = wait_for_lambda(state, "alone", run)
    run.send_signal(signal.SIGKILL)
    run.wait(10)
    with Runtime.open(state, PROJECT_ROOT) as runtime:
        status = executions.read_execution(state / "executions" / "mini-training" / "alone")["status"]
        assert status["status"] == "FAILED" and "owner" not in status
        assert not any(group_alive(g) for g in groups)
        assert not (state / "processes" / "groups" / f"{run.pid}.json").exists()
        # and the state folder is usable: a new run of another name succeeds
        machine = runtime.machines.machines[0]
        runtime.s3.put_bytes(f"s3://{runtime.deployment.buckets[0].name}/raw/data.csv", b"a,b\n1,2\n")
        assert runtime.launch(machine, {"key": "raw/data.csv"}, "after").status == "SUCCEEDED"


def test_sigterm_stops_a_run_cleanly_as_aborted(tmp_path, mini_assembly):
    state = tmp_path / "state"
    run = start_run(state, mini_assembly, "terminated")
    groups = wait_for_lambda(state, "terminated", run)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 128 + signal.SIGTERM, out + err
    assert "stopped" in err and "SIGTERM" in err
    record = executions.read_execution(state / "executions" / "mini-training" / "terminated")
    assert record["status"]["status"] == "ABORTED" and "SIGTERM" in record["status"]["cause"]
    assert record["history"][-1]["type"] == "ExecutionAborted"
    assert not any(group_alive(g) for g in groups)  # its Lambda did not outlive it
    assert os.path.exists(state / "executions" / "mini-training" / "terminated" / "journal.jsonl")
