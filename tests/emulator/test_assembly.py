"""Reading cdk.out and resolving CloudFormation intrinsics to stable local values."""

from __future__ import annotations

import json

import pytest

from emulator.cloud.assembly import (
    AssemblyNotFound,
    CloudAssembly,
    ImportValueNotFound,
    ResolutionError,
    UnsupportedIntrinsic,
)

REGION = "eu-west-1"




BOOTSTRAP = {
    "Parameters": {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>",
                                        "Default": "/cdk-bootstrap/hnb659fds/version"}},
    "Rules": {"CheckBootstrapVersion": {"Assertions": [{"Assert": {"Fn::Not": [{"Fn::Contains": [["1"], {
        "Ref": "BootstrapVersion"}]}]}, "AssertDescription": "bootstrap"}]}},
}


@pytest.fixture
def stack(tmp_path, make_assembly):
    template = {
        **BOOTSTRAP,
        "Parameters": {**BOOTSTRAP["Parameters"], "Stage": {"Type": "String", "Default": "dev"}},
        "Mappings": {"Sizes": {"dev": {"Memory": 256}}},
        "Conditions": {
            "IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]},
            "IsProd": {"Fn::Not": [{"Condition": "IsDev"}]},
            "DevInEu": {"Fn::And": [{"Condition": "IsDev"}, {"Fn::Equals": [{"Ref": "AWS::Region"}, REGION]}]},
            "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "DevInEu"}]},
        },
        "Resources": {
            "Data": {"Type": "AWS::S3::Bucket"},
            "Named": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": "named-${AWS::AccountId}"}}},
            "ProdOnly": {"Type": "AWS::S3::Bucket", "Condition": "IsProd"},
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "h.h", "Runtime": "python3.11"}},
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"StateMachineName": "train"}},
            "Role": {"Type": "AWS::IAM::Role"},
            "Key": {"Type": "AWS::KMS::Key"},
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/x/y"}},
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Custom": {"Type": "Custom::Thing"},
        },
    }
    return CloudAssembly.load(make_assembly(tmp_path / "cdk.out", {"App": template}), region=REGION).stack("App")


def test_pseudo_parameters(stack):
    assert stack.resolve({"Ref": "AWS::AccountId"}) == "000000000000"
    assert stack.resolve({"Ref": "AWS::Region"}) == REGION
    assert stack.resolve({"Ref": "AWS::Partition"}) == "aws"
    assert stack.resolve({"Ref": "AWS::URLSuffix"}) == "amazonaws.com"
    assert stack.resolve({"Ref": "AWS::StackName"}) == "App"
    assert stack.resolve({"Ref": "AWS::StackId"}).startswith(f"arn:aws:cloudformation:{REGION}:000000000000:stack/App/")
    assert stack.resolve({"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}]}) == {"b": [1]}


def test_physical_names_and_arns(stack):
    assert stack.resolve({"Ref": "Data"}) == "app-data"
    assert stack.resolve({"Ref": "Named"}) == "named-000000000000"
    assert stack.resolve({"Fn::GetAtt": ["Named", "Arn"]}) == "arn:aws:s3:::named-000000000000"
    assert stack.resolve({"Fn::GetAtt": "Data.RegionalDomainName"}) == f"app-data.s3.{REGION}.amazonaws.com"
    assert stack.resolve({"Fn::GetAtt": ["Fn", "Arn"]}) == f"arn:aws:lambda:{REGION}:000000000000:function:App-Fn"
    assert stack.resolve({"Ref": "Machine"}) == f"arn:aws:states:{REGION}:000000000000:stateMachine:train"
    assert stack.resolve({"Fn::GetAtt": ["Machine", "Name"]}) == "train"
    assert stack.resolve({"Ref": "Topic"}) == f"arn:aws:sns:{REGION}:000000000000:App-Topic"
    assert stack.resolve({"Fn::GetAtt": ["Role", "Arn"]}) == "arn:aws:iam::000000000000:role/App-Role"
    key_arn = stack.resolve({"Fn::GetAtt": ["Key", "Arn"]})
    assert key_arn.startswith(f"arn:aws:kms:{REGION}:000000000000:key/") and stack.resolve({"Ref": "Key"}) in key_arn
    assert stack.resolve({"Fn::GetAtt": ["Logs", "Arn"]}) == f"arn:aws:logs:{REGION}:000000000000:log-group:/x/y:*"
    assert stack.resolve({"Ref": "Queue"}) == f"https://sqs.{REGION}.amazonaws.com/000000000000/App-Queue"
    assert stack.resolve({"Fn::GetAtt": ["Custom", "Anything"]}) == "App-Custom.Anything"
    # Stable: the same template resolves to the same names every time.
    assert stack.resolve({"Ref": "Data"}) == stack.resolve({"Ref": "Data"})


def test_join_sub_select_split(stack):
    assert stack.resolve({"Fn::Join": ["/", ["a", {"Ref": "Data"}, 3]]}) == "a/app-data/3"
    assert stack.resolve({"Fn::Sub": "s3://${Data}/${AWS::Region}/${!Literal}"}) == f"s3://app-data/{REGION}/${{Literal}}"
    assert stack.resolve({"Fn::Sub": ["${Name}-${X}", {"X": {"Ref": "Stage"}, "Name": "job"}]}) == "job-dev"
    assert stack.resolve({"Fn::Sub": "${Machine.Name}"}) == "train"
    assert stack.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert stack.resolve({"Fn::Select": [0, {"Fn::GetAZs": ""}]}) == f"{REGION}a"
    assert stack.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}) == 256
    assert stack.resolve({"Fn::Base64": "hi"}) == "aGk="


def test_conditions(stack):
    assert stack.resolve({"Fn::If": ["IsDev", "small", "large"]}) == "small"
    assert stack.resolve({"k": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}}) == {}
    assert stack.condition("Either") is True
    assert "ProdOnly" not in stack.resources  # its Condition is false: the resource does not exist
    assert "Data" in stack.resources


def test_bootstrap_parameter_and_rules_do_not_break_resolution(stack):
    assert stack.resolve({"Ref": "BootstrapVersion"}) == "30"
    assert stack.resolve({"Ref": "Stage"}) == "dev"


def test_errors_are_named_and_say_what_to_do(stack, tmp_path):
    with pytest.raises(AssemblyNotFound, match="make synth"):
        CloudAssembly.load(tmp_path / "nowhere")
    with pytest.raises(ResolutionError, match="Nope"):
        stack.resolve({"Ref": "Nope"}, "App/Test")
    with pytest.raises(ImportValueNotFound, match="shared-bucket"):
        stack.resolve({"Fn::ImportValue": "shared-bucket"})
    with pytest.raises(UnsupportedIntrinsic, match="Fn::Cidr"):
        stack.resolve({"Fn::Cidr": ["10.0.0.0/16", 2, 8]})
    with pytest.raises(ResolutionError, match="no attribute"):
        stack.resolve({"Fn::GetAtt": ["Data", "Bogus"]})


def test_import_value_resolves_an_export_of_another_stack(tmp_path, make_assembly):
    producer = {"Resources": {"B": {"Type": "AWS::S3::Bucket"}},
                "Outputs": {"Out": {"Value": {"Ref": "B"}, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-bucket"}}}}}
    consumer = {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}
    assembly = CloudAssembly.load(make_assembly(tmp_path / "cdk.out", {"Producer": producer, "Consumer": consumer}))
    assert assembly.stack("Consumer").resolve({"Fn::ImportValue": "Producer-bucket"}) == "producer-b"


def test_real_synthesized_template(mini_assembly):
    assembly = CloudAssembly.load(mini_assembly)
    stack = assembly.stack("MiniStack")
    machine = stack.of_type("AWS::StepFunctions::StateMachine")[0]
    definition = json.loads(stack.resolve(machine.properties["DefinitionString"]))  # a Fn::Join in the template
    read = definition["States"]["Read"]
    assert read["Resource"] == "arn:aws:states:::lambda:invoke"
    fn_arn = read["Parameters"]["FunctionName"]
    assert fn_arn == "arn:aws:lambda:us-east-1:000000000000:function:MiniStack-ReaderF7BF189D"
    assert definition["States"]["Bare"]["Resource"] == fn_arn
    assert definition["States"]["Notify"]["Parameters"]["TopicArn"] == "arn:aws:sns:us-east-1:000000000000:mini-alerts"
    reader = next(r for r in stack.of_type("AWS::Lambda::Function") if r.logical_id.startswith("Reader"))
    code = stack.resolve(reader.properties["Code"])
    assert code["S3Bucket"] == "cdk-hnb659fds-assets-000000000000-us-east-1"
    asset = stack.asset_for_key(code["S3Key"], "test")
    assert asset.packaging == "zip" and (asset.path / "handler.py").is_file()
    outputs = stack.resolve(stack.template["Outputs"])
    assert outputs["NamedBucketArn"]["Value"] == "arn:aws:s3:::mini-named-000000000000"
