"""The base of every local AWS API's errors: one flat class per AWS error code (botocore raises
``client.exceptions.<code>`` from the ``__type`` the served APIs answer with)."""

from __future__ import annotations


class ServiceError(Exception):
    """``code`` is the wire error code, ``message`` its text, ``status`` the HTTP status (400: a client error)."""

    code = "InternalFailure"
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
