"""Acceptance: `python -m emulator run` SIGKILLed mid-tuning and mid-deploy. The next command finds
the execution FAILED with its partial history, no process of the dead run alive (checked by process
group), the endpoint serving the champion, and a new run succeeds."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.cloud.deploy import deploy
from emulator.runtime import Runtime
from emulator.storage import executions
from emulator.storage.processes import group_alive

from .test_offline_pipeline import ABALONE, PROJECT_ROOT, SMALL

ENDPOINT = "ml-pipeline-endpoint"


@pytest.fixture(scope="module")
def state(assembly, tmp_path_factory):
    """A deployed state folder with the sample uploaded and one successful run: a champion to keep."""
    folder = tmp_path_factory.mktemp("crash") / "state"
    deployment = deploy(assembly, folder)
    with Runtime.open(folder, PROJECT_ROOT, deployment=deployment, time_scale=0.01) as runtime:
        bucket, prefix = runtime.events.upload_trigger()
        uri = f"s3://{bucket}/{prefix}abalone.csv"
        runtime.s3.put_file(uri, ABALONE)
        first = runtime.launch(deployment.state_machines[0], {"input_s3_uri": uri, **SMALL}, "baseline")
        assert first.status == "SUCCEEDED", (first.error, first.cause)
    return folder, assembly, {"input_s3_uri": uri, **SMALL}


def start_run(state_dir: Path, assembly: Path, name: str, execution_input: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", "--state-dir", str(state_dir), "run", "--assembly", str(assembly),
         "--input", json.dumps(execution_input), "--name", name],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def groups_of(state_dir: Path, pid: int) -> list[int]:
    record = state_dir / "processes" / "groups" / f"{pid}.json"
    try:
        return [g["pid"] for g in json.loads(record.read_text())["groups"]]
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def kill_when(state_dir: Path, run: subprocess.Popen, ready, what: str, timeout: float = 120) -> set[int]:
    """SIGKILL ``run`` once ``ready()``; every process group it had recorded by then."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.poll() is None, f"the run ended (exit {run.returncode}) before {what}"
        seen.update(groups_of(state_dir, run.pid))
        if ready():
            seen.update(groups_of(state_dir, run.pid))
            run.send_signal(signal.SIGKILL)
            run.wait(10)
            return seen
        time.sleep(0.02)
    run.kill()
    raise AssertionError(f"the run never reached {what} in {timeout}s")


def entered(state_dir: Path, name: str) -> list[str]:
    folder = next(state_dir.glob(f"executions/*/{name}"), None)
    if folder is None:
        return []
    return [e["stateEnteredEventDetails"]["name"] for e in executions.read_journal(folder) if "stateEnteredEventDetails" in e]


def served_run_prefix(runtime: Runtime) -> str:
    """The run folder (s3://bucket/runs/<key>/) of the model the endpoint serves."""
    sagemaker = runtime.sagemaker
    endpoint = sagemaker.call("DescribeEndpoint", {"EndpointName": ENDPOINT})
    assert endpoint["EndpointStatus"] == "InService", endpoint
    config = sagemaker.call("DescribeEndpointConfig", {"EndpointConfigName": endpoint["EndpointConfigName"]})
    model = sagemaker.call("DescribeModel", {"ModelName": config["ProductionVariants"][0]["ModelName"]})
    containers = model.get("Containers") or [model["PrimaryContainer"]]  # a serial pipeline: the trained model's
    url = next(c["ModelDataUrl"] for c in containers if "/model/" in c.get("ModelDataUrl", ""))
    return url[: url.index("/model/") + 1]


def assert_recovered(state_dir: Path, name: str, groups: set[int], state_name: str, execution_input: dict) -> None:
    assert groups, "the run recorded no process group"
    with Runtime.open(state_dir, PROJECT_ROOT, time_scale=0.01) as runtime:  # the next command
        machine = runtime.deployment.state_machines[0]
        record = executions.read_execution(runtime.execution_dir(machine.name, name))
        status = record["status"]
        assert status["status"] == "FAILED" and status["error"] == executions.ORPHANED, status
        assert f"'{state_name}'" in status["cause"] or state_name in json.dumps(record["history"])
        types = [e["type"] for e in record["history"]]
        assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionFailed" and len(types) > 10
        alive = [g for g in groups if group_alive(g)]
        assert not alive, f"process groups of the dead run still alive: {alive}"
        # the endpoint serves the champion: the champion record is the served run's evaluation
        bucket = execution_input["input_s3_uri"].split("/")[2]
        champion = runtime.s3.get_bytes(f"s3://{bucket}/champion/{ENDPOINT}/evaluation.json")
        prefix = served_run_prefix(runtime)
        assert runtime.s3.get_bytes(f"{prefix}evaluation/evaluation.json") == champion
        # and a new run succeeds, and deploys
        again = runtime.launch(machine, execution_input, f"{name}-again")
        assert again.status == "SUCCEEDED", (again.error, again.cause)
        assert served_run_prefix(runtime) != prefix
        champion = runtime.s3.get_bytes(f"s3://{bucket}/champion/{ENDPOINT}/evaluation.json")
        assert runtime.s3.get_bytes(f"{served_run_prefix(runtime)}evaluation/evaluation.json") == champion


def test_sigkill_mid_tuning(state):
    state_dir, assembly, execution_input = state
    run = start_run(state_dir, assembly, "killed-tuning", execution_input)

    def trials() -> bool:  # the search runs its trial processes (preprocessing's ended before it)
        return "Tune hyperparameters" in entered(state_dir, "killed-tuning") and bool(_groups(state_dir, run.pid))

    groups = kill_when(state_dir, run, trials, "a running tuning trial")
    assert_recovered(state_dir, "killed-tuning", groups, "Tune hyperparameters", execution_input)


def test_sigkill_mid_deploy(state):
    state_dir, assembly, execution_input = state
    record = state_dir / "sagemaker" / "endpoints" / f"{ENDPOINT}.json"

    def updating() -> bool:
        try:
            endpoint = json.loads(record.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        pending = (endpoint.get("_hosting") or {}).get("Pending") or {}
        return endpoint.get("EndpointStatus") == "Updating" and "killed-deploy" in str(pending.get("EndpointConfigName"))

    run = start_run(state_dir, assembly, "killed-deploy", execution_input)
    groups = kill_when(state_dir, run, updating, "the endpoint update")
    assert_recovered(state_dir, "killed-deploy", groups, "Update endpoint", execution_input)


def _groups(state_dir: Path, pid: int) -> list[dict]:
    record = state_dir / "processes" / "groups" / f"{pid}.json"
    try:
        return json.loads(record.read_text())["groups"]
    except (FileNotFoundError, json.JSONDecodeError):
        return []
