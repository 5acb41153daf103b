"""Fixtures for the emulator tests: the small CDK app in fixtures/ synthesized once per session
(in-process, aws_cdk.App(outdir=...)), deployed into a fresh state folder per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import emulator.asl  # noqa: F401 - load the interpreter before integrations.base (import order)

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
    from emulator.deploy import deploy

    return deploy(mini_assembly, tmp_path / "state")


@pytest.fixture
def mini_runtime(mini_deployment):
    from emulator.runtime import LocalRuntime

    runtime = LocalRuntime.open(Path(mini_deployment.state_dir), PROJECT_ROOT, deployment=mini_deployment)
    yield runtime
    runtime.close()
