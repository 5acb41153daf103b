"""The instance counts in the template: sharded preprocessing (three jobs), distributed training
(a ShardedByS3Key train channel), multi-instance batch transform."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest

from app import cdk_json_context
from stacks.config import ConfigError, PipelineConfig
from stacks.ml_pipeline_stack import MlPipelineStack


def _states(stack_and_assembly) -> dict[str, dict]:
    stack, assembly = stack_and_assembly
    template = assembly.get_stack_by_name(stack.stack_name).template
    machine = next(r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "X" for p in parts)
    definition = json.loads(text)
    states: dict[str, dict] = {}

    def collect(found: dict) -> None:  # Parallel branches and Map iterators too
        states.update(found)
        for state in found.values():
            for branch in state.get("Branches", []):
                collect(branch["States"])
            if "ItemProcessor" in state:
                collect(state["ItemProcessor"]["States"])
    collect(definition["States"])
    return states


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    """The stack with scaled-out counts, built without the app's cdk-nag pass (the session's template
    has it; this module checks the state machine only, and the nag pass doubles the synth time)."""
    context = cdk_json_context()
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=context)
    config = PipelineConfig.from_context({**context["pipeline"], "processing_instance_count": 3,
                                          "transform_instance_count": 2, "training_instance_count": 2})
    stack = MlPipelineStack(app, "MlPipeline", config=config, env=cdk.Environment(region="us-east-1"))
    return _states((stack, app.synth()))


@pytest.fixture(scope="module")
def default(synthesized):
    return _states(synthesized)


def test_one_processing_instance_is_one_preprocess_job(default):
    assert "Preprocess" in default and "Preprocess statistics" not in default
    preprocess = default["Preprocess"]["Parameters"]
    assert preprocess["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    assert "'--train-shards', States.Format('{}', $.plan.config.training_instance_count)" in \
        preprocess["AppSpecification"]["ContainerArguments.$"]


def test_sharded_preprocessing_is_statistics_merge_transform(scaled):
    statistics, merge, transform = (scaled[n] for n in ("Preprocess statistics", "Preprocess", "Preprocess transform"))
    assert statistics["Next"] == "Preprocess" and merge["Next"] == "Preprocess transform"
    counts = [s["Parameters"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] for s in (statistics, merge, transform)]
    assert counts == [3, 1, 3]
    for state, stage in ((statistics, "statistics"), (merge, "merge"), (transform, "transform")):
        assert f"'--stage', '{stage}'" in state["Parameters"]["AppSpecification"]["ContainerArguments.$"]
        assert "Retry" in state and "Catch" in state
    assert statistics["Parameters"]["ProcessingJobName.$"] == "$.plan.job_names.preprocess_statistics"
    assert transform["Parameters"]["ProcessingJobName.$"] == "$.plan.job_names.preprocess_transform"
    # the merge reads the partials the statistics job wrote; the transform the plan the merge wrote
    written = statistics["Parameters"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri.$"]
    read = {i["InputName"]: i["S3Input"] for i in merge["Parameters"]["ProcessingInputs"]}
    assert read["statistics"]["S3Uri.$"] == written
    plan = next(o for o in merge["Parameters"]["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == "plan")
    assert {i["InputName"]: i["S3Input"]["S3Uri.$"] for i in transform["Parameters"]["ProcessingInputs"]
            if i["InputName"] != "code"}["plan"] == plan["S3Output"]["S3Uri.$"]
    assert {o["OutputName"] for o in transform["Parameters"]["ProcessingOutputConfig"]["Outputs"]} == {
        "train", "validation", "test", "batch"}


def test_training_shards_the_train_channel_and_transform_takes_its_count(scaled):
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
                for c in scaled["Train model"]["Parameters"]["InputDataConfig"]}
    assert channels == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}
    assert scaled["Train model"]["Parameters"]["ResourceConfig"]["InstanceCount.$"] == "$.plan.config.training_instance_count"
    # the forest's script is single-node: one instance, the whole train channel
    forest = scaled["Train random forest"]["Parameters"]
    assert forest["ResourceConfig"]["InstanceCount"] == 1
    assert {c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in forest["InputDataConfig"]} == {"FullyReplicated"}
    transform = scaled["Batch transform"]  # ("Score champion" scores the serving champion on one instance)
    assert transform["Parameters"]["TransformResources"]["InstanceCount"] == 2


def test_instance_counts_are_validated():
    with pytest.raises(ConfigError, match="instance counts"):
        PipelineConfig.from_context({"processing_instance_count": 0})
    assert "processing_instance_count" not in PipelineConfig().execution_defaults()
