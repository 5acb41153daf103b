"""The first states of every state machine: the execution input checked, then merged over the defaults.

An execution input that is not a JSON object ends at the first state.

Merging defaults over a string, number, array or null would fail the execution with an
intrinsic-function error no Catch sees; this Choice names it (InvalidExecutionInput) and sends it to
the machine's failure handler, which notifies. A JSONata Choice, in machines otherwise written in
JSONPath: JSONPath's Choice rules cannot tell an empty array from an object. Then the configured
defaults (cdk.json, fixed at synth) are merged under the input, key by key, into ``$.config``.
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


def settings_with_defaults(scope: Construct, failure: sfn.IChainable, example: str, defaults: dict, *,
                           keep_defaults: bool = True) -> sfn.Chain:
    """The input check, then ``$.config``: ``defaults`` with the execution input over them (and
    ``$.defaults`` kept beside it when a later step tells a default from a choice)."""
    merged = {"config.$": "States.JsonMerge($.defaults, $.input, false)"}
    return (
        sfn.Chain.start(input_must_be_an_object(scope, failure, example))
        .next(sfn.Pass(scope, "Collect input", comment="Keeps the configured defaults beside the execution input",
                       parameters={"defaults": defaults, "input.$": "$"}))
        .next(sfn.Pass(scope, "Apply defaults", comment="The execution input overrides any default, key by key",
                       parameters={"defaults.$": "$.defaults", **merged} if keep_defaults else merged))
    )
