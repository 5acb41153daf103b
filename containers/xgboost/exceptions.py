"""Errors the training twin reports, split like the built-in algorithm's.

A UserError is the caller's to fix (bad hyperparameter, channel or data) and is reported as
`ClientError: ...` in output/failure, the way SageMaker shows a built-in algorithm's client errors.
Anything else is an AlgorithmError.
"""


class UserError(Exception):
    """The training request or its data is wrong; the message says what to change."""

    failure_prefix = "ClientError"


class AlgorithmError(Exception):
    """The algorithm itself failed on valid input."""

    failure_prefix = "AlgorithmError"
