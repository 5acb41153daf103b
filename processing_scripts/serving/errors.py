"""A request the entry points refuse, answered with its HTTP status on AWS and offline alike.

The scikit-learn image serves one model through the sagemaker-containers Flask worker, which answers
500 to any exception, but sends a Response object returned by transform_fn as it is; the inference
toolkit (multi-model mode, the local twin) answers an exception's ``status_code`` and ``message``.
``respond`` returns the first where the worker is there and raises the second elsewhere.
"""

from __future__ import annotations


class RequestError(Exception):
    """The request is wrong; ``message`` says what and where (column, row) and what to send instead."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code, self.message, self.phrase = status_code, message, message


def respond(err: RequestError):
    """The error as the serving stack that runs this code answers it (see the module docstring)."""
    try:  # the scikit-learn image's single-model worker (Flask)
        from sagemaker_containers.beta.framework import worker
    except ImportError:
        raise err from None
    return worker.Response(response=err.message, status=err.status_code, mimetype="text/plain")
