"""The inference side of the synthesized template: the endpoint's data capture (the training state
machine's endpoint config), the inference state machine, its trigger and its IAM."""

from __future__ import annotations

import json

import pytest


def _render(value) -> str:
    """A DefinitionString Fn::Join with its tokens as readable placeholders (REF_<logical id>)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_render(p) for p in parts)
    if "Ref" in value:
        return "REF_" + value["Ref"]
    if "Fn::GetAtt" in value:
        return "ATT_" + "_".join(value["Fn::GetAtt"])
    return json.dumps(value).replace('"', "'")


@pytest.fixture(scope="module")
def template_json(synthesized) -> dict:
    stack, assembly = synthesized
    return assembly.get_stack_by_name(stack.stack_name).template


def machine_definition(template_json: dict, construct: str) -> dict:
    (machine,) = [r for lid, r in template_json["Resources"].items()
                  if r["Type"] == "AWS::StepFunctions::StateMachine" and lid.startswith(construct)]
    text = _render(machine["Properties"]["DefinitionString"]).replace("arn:REF_AWS::Partition:", "arn:aws:")
    return json.loads(text)


def all_states(states: dict) -> dict[str, dict]:
    found = {}
    for name, state in states.items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(all_states(branch["States"]))
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found.update(all_states(state[key]["States"]))
    return found


def data_bucket(template_json: dict) -> str:
    (bucket,) = [lid for lid, r in template_json["Resources"].items()
                 if r["Type"] == "AWS::S3::Bucket" and lid.startswith("StorageDataBucket")]
    return bucket


def test_the_endpoint_config_captures_input_and_output_to_the_capture_prefix(template_json):
    states = all_states(machine_definition(template_json, "TrainingPipeline")["States"])
    config = states["Create endpoint config"]
    assert config["Resource"] == "arn:aws:states:::sagemaker:createEndpointConfig"
    assert config["Retry"] and config["Catch"]
    capture = config["Parameters"]["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://REF_{data_bucket(template_json)}/capture/"
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert sorted(o["CaptureMode"] for o in capture["CaptureOptions"]) == ["Input", "Output"]
    assert capture["CaptureContentTypeHeader"] == {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}
    assert capture["KmsKeyId"].startswith("ATT_StorageDataKey")
