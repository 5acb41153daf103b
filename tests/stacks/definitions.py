"""Reading the state machines out of the synthesized template, for the template tests."""

from __future__ import annotations

import json


def render(value) -> str:
    """A CloudFormation string (a DefinitionString's Fn::Join, a Resource) with its tokens as readable
    placeholders: REF_<logical id>, ATT_<logical id>_<attribute>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(render(p) for p in parts)
    if "Ref" in value:
        return "REF_" + value["Ref"]
    if "Fn::GetAtt" in value:
        return "ATT_" + "_".join(value["Fn::GetAtt"])
    return json.dumps(value).replace('"', "'")


def parse_definition(machine: dict) -> dict:
    """An AWS::StepFunctions::StateMachine resource's definition, parsed."""
    return json.loads(render(machine["Properties"]["DefinitionString"]).replace("arn:REF_AWS::Partition:", "arn:aws:"))


def machine_definition(template_json: dict, construct: str) -> dict:
    """The definition of the one state machine of the construct named ``construct``."""
    (machine,) = [r for lid, r in template_json["Resources"].items()
                  if r["Type"] == "AWS::StepFunctions::StateMachine" and lid.startswith(construct)]
    return parse_definition(machine)


def all_states(machine: dict) -> dict[str, dict]:
    """Every state of a definition (or of a branch or Map processor), nested ones included."""
    found = {}
    for name, state in machine["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(all_states(branch))
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found.update(all_states(state[key]))
    return found
