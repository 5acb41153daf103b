"""Step Functions requests checked against botocore's stepfunctions model (emulator.services.shapes,
shared with SageMaker), and StartExecution's input limit as AWS counts it: 256 KiB of UTF-8."""

from __future__ import annotations

from typing import Any

from emulator.services import shapes
from emulator.services.stepfunctions.exceptions import ValidationException

SERVICE = "stepfunctions"
MAX_INPUT_BYTES = 262_144


def validate(operation: str, request: Any) -> None:
    """Raise ValidationException naming every constraint ``request`` breaks (an operation the model
    does not know is left to the caller, which answers UnknownOperation)."""
    if shapes.operation_model(SERVICE, operation) is None:
        return
    errors = shapes.request_errors(SERVICE, operation, request, "Step Functions")
    text = request.get("input") if operation == "StartExecution" and isinstance(request, dict) else None
    if isinstance(text, str) and len(text) <= MAX_INPUT_BYTES < len(text.encode("utf-8", errors="surrogatepass")):
        errors.append(f"Value at 'input' failed to satisfy constraint: Member must have length less than or equal to "
                      f"{MAX_INPUT_BYTES} (bytes of UTF-8: {len(text.encode('utf-8', errors='surrogatepass'))})")
    if errors:
        raise ValidationException(shapes.summary(errors))
