#!/usr/bin/env python3
"""CDK app entry: reads the pipeline config, builds the stack, applies cdk-nag's AwsSolutions pack."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.config import PipelineConfig
from stacks.ml_pipeline_stack import MlPipelineStack
from stacks.nag_suppressions import apply_suppressions

DEFAULT_STACK = "MlPipeline"


def pipeline_config(app: cdk.App, stack_name: str = DEFAULT_STACK) -> PipelineConfig:
    """cdk.json's "pipeline" object, with any `-c pipeline.<key>=<value>` overrides on top.

    One use case per stack: a stack other than the default gets its own endpoint and model registry
    group (named after it) unless they are set explicitly, so two use cases never share a champion.
    """
    settings = dict(app.node.try_get_context("pipeline") or {})
    if stack_name != DEFAULT_STACK:
        prefix = re.sub(r"[^a-z0-9]+", "-", stack_name.lower()).strip("-")[:40] or "stack"
        settings["endpoint_name"] = f"{prefix}-endpoint"
        settings["model_package_group"] = f"{prefix}-models"
    for key in PipelineConfig.__dataclass_fields__:
        override = app.node.try_get_context(f"pipeline.{key}")
        if override is not None:
            settings[key] = override
    return PipelineConfig.from_context(settings)


def cdk_json_context() -> dict:
    """The context `cdk synth` passes from cdk.json, for synthesizing in-process (tests, emulator)."""
    return json.loads((Path(__file__).resolve().parent / "cdk.json").read_text())["context"]


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    region = app.node.try_get_context("region") or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
    stack_name = app.node.try_get_context("stack_name") or DEFAULT_STACK
    stack = MlPipelineStack(
        app,
        stack_name,
        config=pipeline_config(app, stack_name),
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=region),
        description="SageMaker + Step Functions training pipeline: validate, tune, train, gate, deploy",
    )
    apply_suppressions(stack)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


if __name__ == "__main__":
    build_app().synth()
