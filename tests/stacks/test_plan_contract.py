"""The plan is spelt in two places: the validation Lambdas build it, the state machines read it by
JSONPath. Every ``$.plan.<path>`` a synthesized definition reads must be in the plan the Lambda
builds, else an execution fails at that state with States.Runtime long after validation passed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import boto3
import pytest
from definitions import machine_definition
from moto import mock_aws

from app import cdk_json_context
from lambdas.validate_input import handler as validate_input
from stacks.config import PipelineConfig
from stacks.ml_pipeline_stack import MlPipelineStack

DATA = Path(__file__).resolve().parents[2] / "data"
BUCKET = "pipeline-data"
PLAN_PATH = re.compile(r"\$\.plan((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


@pytest.fixture(scope="module")
def template_json(synthesized) -> dict:
    stack, assembly = synthesized
    return assembly.get_stack_by_name(stack.stack_name).template


def plan_paths(definition: dict) -> set[str]:
    return set(PLAN_PATH.findall(json.dumps(definition)))


def resolves(plan: dict, path: str) -> bool:
    value = plan
    for key in path.strip(".").split("."):
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return True


@pytest.fixture(scope="module")
def training_plans():
    environment = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                   "DATA_BUCKET": BUCKET, "ROLLBACK_ALARMS": "MlPipeline-endpoint-5xx"}
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for key, value in environment.items():
            patch.setenv(key, value)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        plans = {}
        for table, target in (("abalone.csv", "rings"), ("bank-marketing.csv", "deposit")):
            s3.put_object(Bucket=BUCKET, Key=f"raw/{table}", Body=(DATA / table).read_bytes())
            defaults = PipelineConfig().execution_defaults()
            config = {**defaults, "input_s3_uri": f"s3://{BUCKET}/raw/{table}", "target_column": target}
            plans[table] = validate_input.handler({"defaults": defaults, "config": config, "execution_name": "contract-1",
                                                  "execution_arn": "arn:aws:states:us-east-1:000000000000:execution:"
                                                                   "Pipeline:contract-1"}, None)
        return plans


def test_every_plan_path_the_training_machine_reads_is_in_the_validated_plan(template_json, training_plans):
    paths = plan_paths(machine_definition(template_json, "TrainingPipeline"))
    assert len(paths) > 30  # the machine reads the plan throughout
    for table, plan in training_plans.items():
        missing = sorted(p for p in paths if not resolves(plan, p))
        assert not missing, f"{table}: the training machine reads $.plan{missing} that validate_input never writes"


def test_the_scaled_out_states_read_only_what_the_plan_has(tmp_path, training_plans):
    """More than one processing instance adds the statistics, merge and transform jobs and their names."""
    context = cdk_json_context()
    app = cdk.App(outdir=str(tmp_path), context=context)
    config = PipelineConfig.from_context({**context["pipeline"], "processing_instance_count": 2,
                                          "transform_instance_count": 2, "training_instance_count": 2})
    stack = MlPipelineStack(app, "MlPipeline", config=config, env=cdk.Environment(region="us-east-1"))
    paths = plan_paths(machine_definition(app.synth().get_stack_by_name(stack.stack_name).template, "TrainingPipeline"))
    assert ".job_names.preprocess_statistics" in paths
    for table, plan in training_plans.items():
        missing = sorted(p for p in paths if not resolves(plan, p))
        assert not missing, f"{table}: the scaled-out machine reads $.plan{missing} that validate_input never writes"
