"""The first state of every state machine: an execution input that is not a JSON object ends there.

Merging defaults over a string, number, array or null would fail the execution with an
intrinsic-function error no Catch sees; this Choice names it (InvalidExecutionInput) and sends it to
the machine's failure handler, which notifies. A JSONata Choice, in machines otherwise written in
JSONPath: JSONPath's Choice rules cannot tell an empty array from an object.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


def input_must_be_an_object(scope: Construct, failure: sfn.IChainable, example: str) -> sfn.Choice:
    """``example``: what a good input looks like, for the Cause (a JSON object, as text)."""
    refused = sfn.Pass(
        scope, "Input is not an object",
        # replaces the whole input: ResultPath "$.error" cannot set a member of a string or array
        parameters={"error": {
            "Error": "InvalidExecutionInput",
            "Cause": f"The execution input must be a JSON object of settings, like {example}; it was a string, "
                     "number, boolean, null or array. Start the execution again with an object.",
        }},
    ).next(failure)
    return (
        sfn.Choice.jsonata(scope, "Input is an object?")
        .when(sfn.Condition.jsonata("{% $type($states.input) != 'object' %}"), refused)
        .afterwards(include_otherwise=True)
    )
