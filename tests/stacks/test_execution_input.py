"""Every state machine of the stack starts with the same input check: a JSONata Choice that refuses
anything but a JSON object (an empty array included) by name, to the machine's failure handler."""

from __future__ import annotations

import pytest
from definitions import machine_definition


@pytest.fixture(scope="module")
def template_json(synthesized) -> dict:
    stack, assembly = synthesized
    return assembly.get_stack_by_name(stack.stack_name).template


@pytest.mark.parametrize("construct", ["TrainingPipeline", "InferencePipeline", "ModelMonitoring"])
def test_the_machine_refuses_an_input_that_is_not_an_object_by_name(template_json, construct):
    definition = machine_definition(template_json, construct)
    check = definition["States"][definition["StartAt"]]
    assert definition["StartAt"] == "Input is an object?" and check["QueryLanguage"] == "JSONata"
    (rule,) = check["Choices"]
    assert rule["Condition"] == "{% $type($states.input) != 'object' %}"
    refused = definition["States"][rule["Next"]]
    assert refused["Parameters"]["error"]["Error"] == "InvalidExecutionInput"
    # the failure handler: the training machine's first releases a deploy lock its execution may hold
    assert refused["Next"] == ("Read lock on failure" if construct == "TrainingPipeline" else "Notify failure")
