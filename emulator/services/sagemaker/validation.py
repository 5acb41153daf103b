"""Validate a SageMaker request against botocore's service model, as SageMaker's front end does
(the checks are emulator.services.shapes', shared with the other services)::

    1 validation error detected: Value 'my_job' at 'trainingJobName' failed to satisfy constraint:
    Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
"""

from __future__ import annotations

from botocore.model import OperationModel, ServiceModel

from emulator.services import shapes
from emulator.services.sagemaker.exceptions import ValidationException
from emulator.services.shapes import method_name, operation_name  # noqa: F401 - the SageMaker modules' names

SERVICE = "sagemaker"


def service_model() -> ServiceModel:
    return shapes.service_model(SERVICE)


def operation_model(name: str) -> OperationModel:
    model = shapes.operation_model(SERVICE, name)
    if model is None:
        raise ValidationException(f"Unknown SageMaker operation {name!r}: it is not in the sagemaker API model")
    return model


def validation_errors(operation: str, request: dict) -> list[str]:
    """Every constraint the request breaks, in the service's wording (empty when valid)."""
    operation_model(operation)
    return shapes.request_errors(SERVICE, operation, request, "SageMaker")


def validate(operation: str, request: dict) -> None:
    """Raise ValidationException if ``request`` is not a valid ``operation`` request."""
    errors = validation_errors(operation, request)
    if errors:
        raise ValidationException(shapes.summary(errors))
