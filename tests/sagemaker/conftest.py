"""Fixtures shared by the SageMaker tests: a runtime over a temporary state folder and LocalS3."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sm_testkit import PROJECT_ROOT

from emulator.services.s3.store import LocalS3


@dataclass
class StandInRuntime:
    """The LocalRuntime fields the SageMaker backends read (the real one lives in emulator/runtime.py)."""

    state_dir: Path
    project_root: Path
    s3: LocalS3
    s3_endpoint_url: str | None = None
    deployment: Any = None
    region: str = "us-east-1"
    account: str = "000000000000"
    time_scale: float = 1.0


@pytest.fixture
def runtime(tmp_path: Path) -> StandInRuntime:
    s3 = LocalS3(tmp_path / "s3")
    s3.create_bucket("bucket")
    return StandInRuntime(state_dir=tmp_path / "state", project_root=PROJECT_ROOT, s3=s3)


@pytest.fixture
def backend(runtime):
    from emulator.services.sagemaker.jobs import SageMakerBackend

    return SageMakerBackend(runtime)
