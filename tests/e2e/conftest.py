"""The pipeline's cloud assembly, synthesized once per session for every end-to-end module (the
app as app.py builds it, cdk.json's context)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pipeline_assembly(tmp_path_factory) -> Path:
    import aws_cdk

    sys.path.insert(0, str(PROJECT_ROOT))
    import app as pipeline_app

    outdir = tmp_path_factory.mktemp("pipeline") / "cdk.out"
    pipeline_app.build_app(aws_cdk.App(outdir=str(outdir), context=pipeline_app.cdk_json_context())).synth()
    return outdir
