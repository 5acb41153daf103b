"""SageMaker API errors: one flat class per AWS error code, built from domain values (moto's layout).

Each class carries the wire ``code``, the HTTP ``status`` and whether the service model declares it
(``modelled``: Step Functions keeps those by name). Subclasses such as ``EndpointNotFound(arn)`` only
build SageMaker's exact wording; their code is their base class's. How a Task state reports these
errors is not the service's business: emulator/integrations/sagemaker.py words it.
"""

from __future__ import annotations

from emulator.services.errors import ServiceError

# The state machine's 'Find endpoint' Choice matches this text in the cause of a failed
# describeEndpoint (stacks/training_pipeline.py: "*Could not find endpoint*"); written here once.
ENDPOINT_NOT_FOUND_TEXT = "Could not find endpoint"


class SageMakerError(ServiceError):
    """Base of every SageMaker API error."""

    modelled = False  # declared in the service model's error shapes (kept by name in Step Functions)

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

    @classmethod
    def for_resource(cls, kind: str, name: str) -> ResourceNotFound:
        """SageMaker's wording for a missing job (``kind``: "Training job", "TransformJob", ...)."""
        return cls(f"Requested resource not found: {kind} {name} does not exist")


class ResourceInUse(SageMakerError):
    code = "ResourceInUse"
    modelled = True

    @classmethod
    def job_exists(cls, arn: str, noun: str = "Job name") -> ResourceInUse:
        return cls(f"{noun} must be unique within an AWS account and region, and a job with this name "
                   f"already exists ({arn})")


class ResourceLimitExceeded(SageMakerError):
    code = "ResourceLimitExceeded"
    modelled = True


class ResourceAlreadyExists(SageMakerError):
    code = "ResourceAlreadyExists"
    modelled = True


class ConflictException(SageMakerError):
    code = "ConflictException"
    modelled = True


# -- hosting and registry: SageMaker reports these as ValidationException with its own wording ---


class ModelNotFound(ValidationException):
    def __init__(self, arn: str):
        super().__init__(f'Could not find model "{arn}".')


class EndpointConfigNotFound(ValidationException):
    def __init__(self, arn: str):
        super().__init__(f'Could not find endpoint configuration "{arn}".')


class EndpointNotFound(ValidationException):
    def __init__(self, arn: str):
        super().__init__(f'{ENDPOINT_NOT_FOUND_TEXT} "{arn}".')


class AlreadyExisting(ValidationException):
    """``Cannot create already existing <noun> "<arn>".`` (model, endpoint configuration, endpoint)."""

    def __init__(self, noun: str, arn: str):
        super().__init__(f'Cannot create already existing {noun} "{arn}".')


class ModelPackageGroupNotFound(ValidationException):
    def __init__(self, arn: str):
        super().__init__(f"ModelPackageGroup {arn} does not exist.")


class ModelPackageGroupExists(ValidationException):
    def __init__(self, arn: str):
        super().__init__(f"Model Package Group already exists: {arn}")


class ModelPackageNotFound(ValidationException):
    def __init__(self, arn: str):
        super().__init__(f"ModelPackage {arn} does not exist.")


class JobNotStoppable(ValidationException):
    """StopXJob on a job that has ended."""

    def __init__(self, name: str, status: str, noun: str = "job"):
        super().__init__(f"The {noun} {name} has already reached a terminal state ({status}) and cannot be stopped")


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
