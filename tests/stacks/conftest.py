"""The app synthesized once per session, as app.py builds it (cdk-nag included), for every
template test module: (the MlPipeline stack, the cloud assembly)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from app import build_app, cdk_json_context


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory):
    app = build_app(cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=cdk_json_context()))
    stack = app.node.find_child("MlPipeline")
    return stack, app.synth()
