"""Deploying the synthesized mini app into a local state folder."""

from __future__ import annotations

import json
from pathlib import Path

from emulator.cloud.assembly import CloudAssembly
from emulator.cloud.deploy import Deployment, deploy
from emulator.services.s3.store import LocalS3


def test_buckets_and_bucket_deployment(mini_deployment):
    s3 = LocalS3(mini_deployment.layout.s3_root)
    data = mini_deployment.bucket("DataBucketE3889A50")
    assert data.name == "ministack-databuckete3889a50"
    assert data.eventbridge_enabled  # from the Custom::S3BucketNotifications EventBridgeConfiguration
    assert not mini_deployment.bucket("mini-named-000000000000").eventbridge_enabled
    # Custom::CDKBucketDeployment: the source asset's files under DestinationBucketKeyPrefix.
    assert s3.get_bytes(f"s3://{data.name}/site/index.txt") == b"hello from the site\n"


def test_function_staged_with_resolved_environment(mini_deployment):
    fn = mini_deployment.function("MiniStack-ReaderF7BF189D")
    assert (Path(fn.code_dir) / "handler.py").is_file()
    assert fn.handler == "handler.handler" and fn.runtime == "python3.11"
    assert (fn.timeout, fn.memory) == (5, 256)
    assert fn.environment == {
        "BUCKET": "ministack-databuckete3889a50",
        "TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:mini-alerts",
        "STAGE": "test",
    }
    assert fn.role_arn.startswith("arn:aws:iam::000000000000:role/MiniStack-ReaderServiceRole")
    # Lookups by ARN, partial ARN and qualified name all find it.
    assert mini_deployment.function(fn.arn) is fn
    assert mini_deployment.function(f"000000000000:function:{fn.name}") is fn
    assert mini_deployment.function(f"{fn.name}:$LATEST") is fn


def test_state_machine_rule_and_topic(mini_deployment):
    machine = mini_deployment.state_machine("mini-training")
    assert machine.timeout_seconds == 1800
    assert json.loads(Path(machine.definition_file).read_text())["StartAt"] == "Read"
    assert machine.arn == "arn:aws:states:us-east-1:000000000000:stateMachine:mini-training"
    rule = mini_deployment.rules[0]
    assert rule.event_pattern["detail"]["bucket"]["name"] == ["ministack-databuckete3889a50"]
    target = rule.targets[0]
    assert target.arn == machine.arn
    assert target.input_transformer["InputPathsMap"]["detail-object-key"] == "$.detail.object.key"
    assert target.retry_policy == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 2}
    assert target.dead_letter_arn.startswith("arn:aws:sqs:us-east-1:000000000000:")
    assert [t.name for t in mini_deployment.topics] == ["mini-alerts"]


def test_every_resource_is_emulated_or_listed(mini_deployment, mini_assembly):
    stack = CloudAssembly.load(mini_assembly).stack("MiniStack")
    handled = {b.logical_id for b in mini_deployment.buckets} | {f.logical_id for f in mini_deployment.functions}
    handled |= {s.logical_id for s in mini_deployment.state_machines} | {r.logical_id for r in mini_deployment.rules}
    handled |= {t.logical_id for t in mini_deployment.topics}
    listed = {n.logical_id: n.type for n in mini_deployment.not_emulated}
    applied = {r.logical_id for r in stack.resources.values()
               if r.type in ("Custom::CDKBucketDeployment", "Custom::S3BucketNotifications", "AWS::CDK::Metadata")}
    for resource in stack.resources.values():
        assert resource.logical_id in handled | set(listed) | applied, resource.describe()
    assert "AWS::IAM::Role" in listed.values() and "AWS::SQS::Queue" in listed.values()
    assert "Custom::S3AutoDeleteObjects" in listed.values()
    line = mini_deployment.not_emulated_line()
    assert "\n" not in line and "1 SQS::Queue" in line and len(line) < 300  # by type; `deploy` lists each one
    # CDK's own custom-resource handlers are not staged as runnable functions.
    assert [f.name for f in mini_deployment.functions] == ["MiniStack-ReaderF7BF189D", "mini-sleeper"]


def test_deployment_json_round_trip(mini_deployment):
    loaded = Deployment.load(Path(mini_deployment.state_dir))
    assert loaded == mini_deployment


def test_assets_are_published_to_the_local_bootstrap_bucket(mini_deployment):
    s3 = LocalS3(mini_deployment.layout.s3_root)
    fn_key = next(k for k in s3.list_keys("cdk-hnb659fds-assets-000000000000-us-east-1") if k.endswith(".zip"))
    assert fn_key.endswith(".zip")


def test_redeploy_prunes_only_inside_the_deployment_prefix(mini_assembly, tmp_path):
    state = tmp_path / "state"
    first = deploy(mini_assembly, state)
    s3 = LocalS3(first.layout.s3_root)
    bucket = first.bucket("DataBucketE3889A50").name
    s3.put_bytes(f"s3://{bucket}/site/stale.txt", b"old")
    s3.put_bytes(f"s3://{bucket}/raw/data.csv", b"a,b\n")
    second = deploy(mini_assembly, state)
    assert not s3.exists(f"s3://{bucket}/site/stale.txt")  # Prune: true, as BucketDeployment does
    assert s3.exists(f"s3://{bucket}/raw/data.csv")  # user data outside the prefix is kept
    assert s3.exists(f"s3://{bucket}/site/index.txt")
    assert second.functions == first.functions


def test_definition_substitutions_and_inline_definition(tmp_path, make_assembly):
    definition = {"StartAt": "Call", "TimeoutSeconds": 60, "States": {"Call": {
        "Type": "Task", "Resource": "${FnArn}", "End": True}}}
    template = {"Resources": {
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.11", "Handler": "index.handler", "Code": {"ZipFile": "def handler(e, c):\n    return e\n"},
            "Environment": {"Variables": {"REGION": {"Ref": "AWS::Region"}}}}},
        "Substituted": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "DefinitionString": json.dumps(definition),
            "DefinitionSubstitutions": {"FnArn": {"Fn::GetAtt": ["Fn", "Arn"]}}}},
        "Inline": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "StateMachineName": "inline", "StateMachineType": "EXPRESS",
            "Definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}}},
        "Mystery": {"Type": "AWS::Glue::Job"},
    }}
    deployment = deploy(make_assembly(tmp_path / "cdk.out", {"App": template}), tmp_path / "state", region="eu-west-1")
    machine = deployment.state_machine("App-Substituted")
    fn = deployment.function("App-Fn")
    assert machine.definition_json()["States"]["Call"]["Resource"] == fn.arn
    assert fn.arn == "arn:aws:lambda:eu-west-1:000000000000:function:App-Fn"
    assert machine.timeout_seconds == 60
    assert (Path(fn.code_dir) / "index.py").read_text().startswith("def handler")  # inline code is index.py
    assert fn.environment == {"REGION": "eu-west-1"} and fn.timeout == 3 and fn.memory == 128  # Lambda defaults
    inline = deployment.state_machine("inline")
    assert inline.type == "EXPRESS" and inline.definition_json()["StartAt"] == "P"
    assert [(n.logical_id, n.type) for n in deployment.not_emulated] == [("Mystery", "AWS::Glue::Job")]
