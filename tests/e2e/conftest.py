"""The pipeline's cloud assembly, synthesized in-process once for every end-to-end module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def assembly(tmp_path_factory) -> Path:
    import aws_cdk

    sys.path.insert(0, str(PROJECT_ROOT))
    import app as pipeline_app

    outdir = tmp_path_factory.mktemp("pipeline") / "cdk.out"
    pipeline_app.build_app(aws_cdk.App(outdir=str(outdir), context=pipeline_app.cdk_json_context())).synth()
    return outdir
