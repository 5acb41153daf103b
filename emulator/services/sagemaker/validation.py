"""Validate a SageMaker request against botocore's service model, as SageMaker's front end does.

botocore's own ParamValidator checks required members, types and minimum lengths only; SageMaker
also rejects values over the maximum, out of range, outside an enum or not matching a pattern.
All violations are collected and reported in one ValidationException phrased as the service
phrases it::

    1 validation error detected: Value 'my_job' at 'trainingJobName' failed to satisfy constraint:
    Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

import botocore.session
from botocore.model import (
    ListShape,
    MapShape,
    OperationModel,
    ServiceModel,
    Shape,
    StructureShape,
)

from emulator.services.sagemaker.exceptions import ValidationException


@functools.lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


def operation_name(name: str) -> str:
    """'createTrainingJob' or 'create_training_job' -> 'CreateTrainingJob' (the model's name)."""
    if "_" in name:
        return "".join(part.capitalize() for part in name.split("_"))
    return name[:1].upper() + name[1:]


def method_name(name: str) -> str:
    """'CreateTrainingJob' or 'createTrainingJob' -> 'create_training_job' (a backend's method)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_name(name)).lower()


def operation_model(name: str) -> OperationModel:
    model = service_model()
    op = operation_name(name)
    if op not in model.operation_names:
        raise ValidationException(f"Unknown SageMaker operation {name!r}: it is not in the sagemaker API model")
    return model.operation_model(op)


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern | None:
    # The model's patterns are Java regexes; the few Python cannot compile are skipped, not guessed.
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    if isinstance(value, dict):
        return "'{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}'"
    if isinstance(value, list):
        return "'[" + ", ".join(str(v) for v in value) + "]'"
    return f"'{value}'"


class _Collector:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, value: Any, where: str, constraint: str) -> None:
        self.errors.append(f"Value {_show(value)} at '{where}' failed to satisfy constraint: {constraint}")

    def unknown(self, where: str, member: str) -> None:
        location = f"'{where}'" if where else "the request"
        self.errors.append(f"Unknown parameter '{member}' in {location}: it is not a member of the SageMaker API shape")


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "timestamp": (dt.datetime, str, int, float),
    "blob": (bytes, bytearray, str),
}


def _check(shape: Shape, value: Any, where: str, out: _Collector) -> None:
    kind = shape.type_name
    if kind == "structure":
        _check_structure(shape, value, where, out)
    elif kind == "list":
        _check_list(shape, value, where, out)
    elif kind == "map":
        _check_map(shape, value, where, out)
    else:
        _check_scalar(shape, value, where, out)


def _check_structure(shape: StructureShape, value: Any, where: str, out: _Collector) -> None:
    if not isinstance(value, dict):
        out.add(value, where, "Member must be a structure")
        return
    prefix = f"{where}." if where else ""
    for name in shape.required_members:
        if value.get(name) is None:
            out.add(None, prefix + _camel(name), "Member must not be null")
    for name, member_value in value.items():
        member = shape.members.get(name)
        if member is None:
            out.unknown(where, name)
        elif member_value is not None:
            _check(member, member_value, prefix + _camel(name), out)


def _check_size(shape: Shape, value: Any, size: int, where: str, out: _Collector) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        out.add(value, where, f"Member must have length greater than or equal to {low}")
    if high is not None and size > high:
        out.add(value, where, f"Member must have length less than or equal to {high}")


def _check_list(shape: ListShape, value: Any, where: str, out: _Collector) -> None:
    if not isinstance(value, list):
        out.add(value, where, "Member must be a list")
        return
    _check_size(shape, value, len(value), where, out)
    for index, item in enumerate(value, start=1):
        if item is None:
            out.add(None, f"{where}.{index}.member", "Member must not be null")
        else:
            _check(shape.member, item, f"{where}.{index}.member", out)


def _check_map(shape: MapShape, value: Any, where: str, out: _Collector) -> None:
    if not isinstance(value, dict):
        out.add(value, where, "Member must be a map")
        return
    _check_size(shape, value, len(value), where, out)
    for key, item in value.items():
        _check(shape.key, key, f"{where}.key", out)
        if item is None:
            out.add(None, f"{where}.{key}", "Member must not be null")
        else:
            _check(shape.value, item, f"{where}.{key}", out)


def _check_scalar(shape: Shape, value: Any, where: str, out: _Collector) -> None:
    kind = shape.type_name
    allowed = _TYPES.get(kind, (object,))
    if isinstance(value, bool) and kind != "boolean" or not isinstance(value, allowed):
        out.add(value, where, f"Member must be of type {kind} (got {type(value).__name__})")
        return
    if kind == "string":
        _check_size(shape, value, len(value), where, out)
        enum = shape.enum
        if enum and value not in enum:
            out.add(value, where, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = shape.metadata.get("pattern")
        compiled = _compiled(pattern) if pattern else None
        if compiled is not None and not compiled.fullmatch(value):
            out.add(value, where, f"Member must satisfy regular expression pattern: {pattern}")
    elif kind in ("integer", "long", "float", "double"):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            out.add(value, where, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            out.add(value, where, f"Member must have value less than or equal to {high}")


def validation_errors(operation: str, request: dict) -> list[str]:
    """Every constraint the request breaks, in the service's wording (empty when valid)."""
    shape = operation_model(operation).input_shape
    out = _Collector()
    if shape is not None:
        _check(shape, request, "", out)
    return out.errors


def validate(operation: str, request: dict) -> None:
    """Raise ValidationException if ``request`` is not a valid ``operation`` request."""
    errors = validation_errors(operation, request)
    if errors:
        noun = "error" if len(errors) == 1 else "errors"
        raise ValidationException(f"{len(errors)} validation {noun} detected: " + "; ".join(errors))
