"""Fixtures for the emulator tests: the small CDK app in fixtures/ synthesized once per session
(in-process, aws_cdk.App(outdir=...)), deployed into a fresh state folder per test."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXECUTION_ARN = "arn:aws:states:us-east-1:000000000000:execution:mini-training:exec-1"


@pytest.fixture(scope="session")
def mini_assembly(tmp_path_factory) -> Path:
    sys.path.insert(0, str(FIXTURES))
    try:
        import mini_app
    finally:
        sys.path.remove(str(FIXTURES))
    return mini_app.synth(tmp_path_factory.mktemp("mini") / "cdk.out")


@pytest.fixture
def mini_deployment(tmp_path, mini_assembly):
    from emulator.cloud.deploy import deploy

    return deploy(mini_assembly, tmp_path / "state")


@pytest.fixture
def mini_runtime(mini_deployment):
    from emulator.runtime import Runtime

    runtime = Runtime.open(Path(mini_deployment.state_dir), PROJECT_ROOT, deployment=mini_deployment)
    yield runtime
    runtime.close()


def _run_task(runtime, resource: str, parameters, execution_arn: str = EXECUTION_ARN, state_name: str = "State"):
    """Start one Task through the runtime's integrations and poll it to its outcome."""
    from emulator.asl.ports import TaskRequest

    key, integration = runtime.integrations.lookup(resource)
    name = execution_arn.rsplit(":", 1)[-1]
    handle = integration.start(TaskRequest(resource, key, parameters, state_name, execution_arn, name))
    deadline = time.monotonic() + 30
    while (outcome := integration.poll(handle)) is None:
        assert time.monotonic() < deadline, f"{resource} did not finish in 30s"
        time.sleep(integration.poll_interval(handle))
    return outcome.output


@pytest.fixture
def run_task():
    return _run_task


def write_assembly(root: Path, templates: dict[str, dict]) -> Path:
    """A minimal cloud assembly folder: one stack artifact per template."""
    root.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for name, template in templates.items():
        (root / f"{name}.template.json").write_text(json.dumps(template))
        artifacts[name] = {"type": "aws:cloudformation:stack", "properties": {"templateFile": f"{name}.template.json"}}
    (root / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    return root


@pytest.fixture
def make_assembly():
    return write_assembly
