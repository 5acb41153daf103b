"""SageMaker API errors, one class per AWS error code (flat, as moto lays them out).

Each error knows how Step Functions reports it. Both integration kinds keep the names of the
exceptions the SageMaker model declares, with an ``Exception`` suffix
(``SageMaker.ResourceNotFoundException``), and fold every other error code (ValidationException,
ThrottlingException, ...) into the SDK's base exception, because the Java SDK Step Functions runs on
has no class for them:

- optimized (``arn:aws:states:::sagemaker:createTrainingJob``): ``SageMaker.AmazonSageMakerException``,
  cause ``<message> (Service: AmazonSageMaker; Status Code: 400; Error Code: <code>; Request ID: <id>;
  Proxy: null)`` (SDK v1's wording);
- AWS SDK (``arn:aws:states:::aws-sdk:sagemaker:describeEndpoint``): ``SageMaker.SageMakerException``,
  cause ``<message> (Service: SageMaker, Status Code: 400, Request ID: <id>)`` (SDK v2's). Workflows
  catch a missing endpoint from describeEndpoint (SageMaker's ValidationException) by that name.
"""

from __future__ import annotations

import uuid

from emulator.asl.errors import StatesError

SERVICE = "SageMaker"


class SageMakerError(Exception):
    """Base of every SageMaker API error: ``code`` is the wire error code, ``message`` its text."""

    code = "InternalFailure"
    status = 400
    modelled = False  # declared in the service model's error shapes (kept by name in Step Functions)

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def sfn_name(self) -> str:
        """ServiceName.ErrorName(Exception): the name a modelled exception has in Step Functions."""
        code = self.code if self.code.endswith("Exception") else f"{self.code}Exception"
        return f"{SERVICE}.{code}"

    def states_error(self, sdk: bool = False) -> StatesError:
        """This error as the Task state reports it (``sdk`` for aws-sdk:sagemaker:* resources)."""
        request_id = uuid.uuid4()
        if sdk:
            cause = f"{self.message} (Service: {SERVICE}, Status Code: {self.status}, Request ID: {request_id})"
            return StatesError(self.sfn_name if self.modelled else f"{SERVICE}.SageMakerException", cause)
        cause = (
            f"{self.message} (Service: AmazonSageMaker; Status Code: {self.status}; "
            f"Error Code: {self.code}; Request ID: {request_id}; Proxy: null)"
        )
        name = self.sfn_name if self.modelled else f"{SERVICE}.AmazonSageMakerException"
        return StatesError(name, cause)

    def response(self) -> dict:
        """The botocore-style error body (what a ClientError carries in ``response['Error']``)."""
        return {"Error": {"Code": self.code, "Message": self.message}, "ResponseMetadata": {"HTTPStatusCode": self.status}}


class ValidationException(SageMakerError):
    code = "ValidationException"


class ThrottlingException(SageMakerError):
    code = "ThrottlingException"

    def __init__(self, message: str = "Rate exceeded"):
        super().__init__(message)


class InternalFailure(SageMakerError):
    code = "InternalFailure"
    status = 500


class ServiceUnavailable(SageMakerError):
    code = "ServiceUnavailable"
    status = 503


class ResourceNotFound(SageMakerError):
    code = "ResourceNotFound"
    modelled = True


class ResourceInUse(SageMakerError):
    code = "ResourceInUse"
    modelled = True


class ResourceLimitExceeded(SageMakerError):
    code = "ResourceLimitExceeded"
    modelled = True


class ResourceAlreadyExists(SageMakerError):
    code = "ResourceAlreadyExists"
    modelled = True


class ConflictException(SageMakerError):
    code = "ConflictException"
    modelled = True


def not_found(kind: str, name: str) -> ResourceNotFound:
    """SageMaker's wording for a missing job; hosting resources say "Could not find ..." instead."""
    return ResourceNotFound(f"Requested resource not found: {kind} {name} does not exist")


_BY_CODE = {cls.code: cls for cls in SageMakerError.__subclasses__()}


def from_code(code: str, message: str | None = None) -> SageMakerError:
    """An error by its wire code (used by fault injection); unknown codes become a generic 400."""
    cls = _BY_CODE.get(code)
    if cls is None:
        err = SageMakerError(message or code)
        err.code = code
        return err
    if message is None and cls is ThrottlingException:
        return cls()
    return cls(message or f"Injected fault: {code}")
