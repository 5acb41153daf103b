"""Fixtures shared by the SageMaker tests: one SageMakerContext over a temporary state folder and
LocalS3 (built here as emulator/runtime.py builds it in a run), the backend over it, and a check
that no test leaves a thread of its own running."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

import pytest
from sm_testkit import PROJECT_ROOT

from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.services.sagemaker.images import resolve_image
from emulator.services.sagemaker.invoke_server import ensure_invoke_server, stop_in_process_servers
from emulator.storage.layout import Layout


@pytest.fixture(autouse=True)
def no_thread_outlives_its_test():
    """Every worker and server a test starts is stopped by the time its fixtures are torn down."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while (left := [t for t in threading.enumerate() if t not in before and t.is_alive()]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"threads left running: {[t.name for t in left]}"


@pytest.fixture
def context(tmp_path: Path):
    s3 = LocalS3(tmp_path / "s3")
    s3.create_bucket("bucket")
    layout = Layout.at(tmp_path / "state")
    yield SageMakerContext(
        layout=layout, s3=s3, project_root=PROJECT_ROOT,
        resolve_image=functools.partial(resolve_image, project_root=PROJECT_ROOT),
        invoke_server_url=functools.partial(ensure_invoke_server, layout),
    )
    stop_in_process_servers()


@pytest.fixture
def backend(context):
    backend = SageMakerBackend(context)
    yield backend
    backend.close()
