"""CloudFormation intrinsic functions (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, ...) resolved to local
values; ``NO_VALUE`` is AWS::NoValue, which removes the property it stands for."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from emulator.cloud.errors import ImportValueNotFound, ResolutionError, UnsupportedIntrinsic


class _NoValue:
    """AWS::NoValue: removes the property (or list element) it stands for."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class IntrinsicResolver:
    """Resolves one template value of ``stack`` (a Stack: ref, get_att, resolve, condition)."""

    def __init__(self, stack: Any, root: str):
        self.stack = stack
        self.root = root

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item, f"{where}/{i}") for i, item in enumerate(value)]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.stack.ref(self._string(arg, f"{where}/Ref"), where)
            # {"Condition": "Name"} inside Fn::And/Or/Not; an IAM-style {"Condition": {...}} is data.
            if key.startswith("Fn::") or (key == "Condition" and isinstance(arg, str)):
                handler = _INTRINSICS.get(key)
                if handler is None:
                    raise UnsupportedIntrinsic(where, f"{key} is not supported by the emulator")
                return handler(self, arg, f"{where}/{key}")
        out = {}
        for key, item in value.items():
            resolved = self.resolve(item, f"{where}/{key}")
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def _string(self, value: Any, where: str) -> str:
        resolved = self.resolve(value, where)
        if not isinstance(resolved, str):
            raise ResolutionError(where, f"expected a string, got {resolved!r}")
        return resolved

    def _list(self, value: Any, where: str) -> list:
        resolved = self.resolve(value, where)
        if not isinstance(resolved, list):
            raise ResolutionError(where, f"expected a list, got {resolved!r}")
        return resolved

    # -- intrinsic functions ---------------------------------------------------------------
    def get_att(self, arg: Any, where: str) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, f"Fn::GetAtt takes [LogicalId, Attribute], got {arg!r}")
        return self.stack.get_att(self._string(arg[0], where), self._string(arg[1], where), where)

    def join(self, arg: Any, where: str) -> str:
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, "Fn::Join takes [delimiter, [values]]")
        delimiter = self._string(arg[0], where)
        parts = self._list(arg[1], where)
        return delimiter.join(_scalar(part, where) for part in parts)

    def sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, str):
            template, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            template = self._string(arg[0], where)
            variables = {k: self.resolve(v, f"{where}/{k}") for k, v in arg[1].items()}
        else:
            raise ResolutionError(where, "Fn::Sub takes a string or [string, {variables}]")

        def substitute(match: re.Match) -> str:
            body = match.group(1)
            if body.startswith("!"):
                return "${" + body[1:] + "}"
            if body in variables:
                return _scalar(variables[body], where)
            if "." in body and not body.startswith("AWS::"):
                logical_id, attribute = body.split(".", 1)
                return _scalar(self.stack.get_att(logical_id, attribute, where), where)
            return _scalar(self.stack.ref(body, where), where)

        return re.sub(r"\$\{([^}]*)\}", substitute, template)

    def select(self, arg: Any, where: str) -> Any:
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, "Fn::Select takes [index, list]")
        index = int(self.resolve(arg[0], where))
        items = self._list(arg[1], where)
        if not 0 <= index < len(items):
            raise ResolutionError(where, f"Fn::Select index {index} out of range for {len(items)} item(s)")
        return items[index]

    def split(self, arg: Any, where: str) -> list[str]:
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, "Fn::Split takes [delimiter, string]")
        return self._string(arg[1], where).split(self._string(arg[0], where))

    def if_(self, arg: Any, where: str) -> Any:
        if not isinstance(arg, list) or len(arg) != 3:
            raise ResolutionError(where, "Fn::If takes [condition, value_if_true, value_if_false]")
        chosen = arg[1] if self.stack.condition(arg[0], where) else arg[2]
        return self.resolve(chosen, where)

    def equals(self, arg: Any, where: str) -> bool:
        if not isinstance(arg, list) or len(arg) != 2:
            raise ResolutionError(where, "Fn::Equals takes two values")
        return self.resolve(arg[0], where) == self.resolve(arg[1], where)

    def and_(self, arg: Any, where: str) -> bool:
        return all(self._bool(item, where) for item in self._conditions_list(arg, where))

    def or_(self, arg: Any, where: str) -> bool:
        return any(self._bool(item, where) for item in self._conditions_list(arg, where))

    def not_(self, arg: Any, where: str) -> bool:
        items = self._conditions_list(arg, where)
        if len(items) != 1:
            raise ResolutionError(where, "Fn::Not takes one condition")
        return not self._bool(items[0], where)

    def condition_ref(self, arg: Any, where: str) -> bool:
        return self.stack.condition(self._string(arg, where), where)

    def _conditions_list(self, arg: Any, where: str) -> list:
        if not isinstance(arg, list):
            raise ResolutionError(where, "expected a list of conditions")
        return arg

    def _bool(self, item: Any, where: str) -> bool:
        value = self.resolve(item, where)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ResolutionError(where, f"expected a condition, got {value!r}")
        return value

    def find_in_map(self, arg: Any, where: str) -> Any:
        if not isinstance(arg, list) or len(arg) not in (3, 4):
            raise ResolutionError(where, "Fn::FindInMap takes [map, top-level key, second-level key]")
        names = [self._string(a, where) for a in arg[:3]]
        mappings = self.stack.template.get("Mappings") or {}
        try:
            return mappings[names[0]][names[1]][names[2]]
        except KeyError:
            if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                return self.resolve(arg[3]["DefaultValue"], where)
            raise ResolutionError(where, f"Fn::FindInMap: no entry {'/'.join(names)}") from None

    def get_azs(self, arg: Any, where: str) -> list[str]:
        region = self.resolve(arg, where) or self.stack.assembly.region
        return [f"{region}{zone}" for zone in "abc"]

    def base64(self, arg: Any, where: str) -> str:
        return base64.b64encode(self._string(arg, where).encode()).decode()

    def to_json_string(self, arg: Any, where: str) -> str:
        return json.dumps(self.resolve(arg, where), separators=(",", ":"))

    def length(self, arg: Any, where: str) -> int:
        return len(self._list(arg, where))

    def import_value(self, arg: Any, where: str) -> Any:
        name = self._string(arg, where)
        for stack in self.stack.assembly.stacks:
            for output_id, output in (stack.template.get("Outputs") or {}).items():
                export = output.get("Export") or {}
                if "Name" in export and stack.resolve(export["Name"], f"{stack.name}/Outputs/{output_id}") == name:
                    return stack.resolve(output["Value"], f"{stack.name}/Outputs/{output_id}/Value")
        raise ImportValueNotFound(
            where, f"Fn::ImportValue {name!r}: no stack in this assembly exports it; the emulator only "
                   f"resolves exports of stacks synthesized together (deploy them in one app)"
        )


_INTRINSICS = {
    "Fn::GetAtt": IntrinsicResolver.get_att,
    "Fn::Join": IntrinsicResolver.join,
    "Fn::Sub": IntrinsicResolver.sub,
    "Fn::Select": IntrinsicResolver.select,
    "Fn::Split": IntrinsicResolver.split,
    "Fn::If": IntrinsicResolver.if_,
    "Fn::Equals": IntrinsicResolver.equals,
    "Fn::And": IntrinsicResolver.and_,
    "Fn::Or": IntrinsicResolver.or_,
    "Fn::Not": IntrinsicResolver.not_,
    "Condition": IntrinsicResolver.condition_ref,
    "Fn::FindInMap": IntrinsicResolver.find_in_map,
    "Fn::GetAZs": IntrinsicResolver.get_azs,
    "Fn::Base64": IntrinsicResolver.base64,
    "Fn::ToJsonString": IntrinsicResolver.to_json_string,
    "Fn::Length": IntrinsicResolver.length,
    "Fn::ImportValue": IntrinsicResolver.import_value,
}


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ResolutionError(where, f"expected a string in a Join/Sub, got {value!r}")
