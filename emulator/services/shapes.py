"""Check a request against botocore's model of an AWS service, as the service's front end does.

botocore's own ParamValidator checks required members, types and minimum lengths only; the
services also reject values over the maximum, out of range, outside an enum or not matching a
pattern. Every violation is collected in the services' wording::

    Value 'my_job' at 'trainingJobName' failed to satisfy constraint: Member must satisfy regular
    expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}

Each service wraps the list in its own ValidationException (SageMaker, Step Functions).
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


@functools.lru_cache(maxsize=8)
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def operation_name(name: str) -> str:
    """'createTrainingJob' or 'create_training_job' -> 'CreateTrainingJob' (the model's name)."""
    if "_" in name:
        return "".join(part.capitalize() for part in name.split("_"))
    return name[:1].upper() + name[1:]


def method_name(name: str) -> str:
    """'CreateTrainingJob' or 'createTrainingJob' -> 'create_training_job' (a backend's method)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_name(name)).lower()


def operation_model(service: str, name: str) -> OperationModel | None:
    """The operation's model, or None when the service's model has no such operation."""
    model = service_model(service)
    op = operation_name(name)
    return model.operation_model(op) if op in model.operation_names else None


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
    def __init__(self, service: str) -> None:
        self.service = service
        self.errors: list[str] = []

    def add(self, value: Any, where: str, constraint: str) -> None:
        self.errors.append(f"Value {_show(value)} at '{where}' failed to satisfy constraint: {constraint}")

    def unknown(self, where: str, member: str) -> None:
        location = f"'{where}'" if where else "the request"
        self.errors.append(f"Unknown parameter '{member}' in {location}: it is not a member of the {self.service} API shape")


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


def request_errors(service: str, operation: str, request: Any, display: str | None = None) -> list[str]:
    """Every constraint ``request`` breaks, in the service's wording (empty when valid);
    ``display`` names the service in the messages (default: the model's service id)."""
    shape = operation_model(service, operation).input_shape
    out = _Collector(display or service_model(service).service_id)
    if shape is not None:
        _check(shape, request, "", out)
    return out.errors


def summary(errors: list[str]) -> str:
    """The services' one-line message for a list of violations."""
    noun = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} validation {noun} detected: " + "; ".join(errors)
