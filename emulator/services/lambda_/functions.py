"""The deployed Lambda functions and how a name or ARN finds one."""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.aws.arns import ACCOUNT, DEFAULT_REGION, arn


@dataclass
class FunctionSpec:
    stack: str
    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    code_dir: str  # staged copy of the asset folder
    environment: dict[str, str] = field(default_factory=dict)
    timeout: int = 3
    memory: int = 128
    role_arn: str = ""
    layer_dirs: list[str] = field(default_factory=list)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"


class ResourceNotFoundException(Exception):
    code, status = "ResourceNotFoundException", 404

    def __init__(self, function_arn: str):
        super().__init__(f"Function not found: {function_arn}")
        self.message = str(self)


def function_name_of(name_or_arn: str) -> str:
    """The function name in a name, ``name:qualifier``, full ARN or partial ARN."""
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:"):
        return parts[6]  # arn:aws:lambda:region:account:function:name[:qualifier]
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2]  # account:function:name[:qualifier]
    return parts[0]


class Functions:
    """The functions a deployment created, found by name, full or partial ARN (a qualifier is ignored)."""

    def __init__(self, functions: list[FunctionSpec], *, region: str = DEFAULT_REGION, account: str = ACCOUNT):
        self._functions = functions  # the deployment's own list: a function added to it is found too
        self.region, self.account = region, account

    def get(self, name_or_arn: str) -> FunctionSpec:
        name = function_name_of(name_or_arn)
        for fn in self._functions:
            if fn.name == name:
                return fn
        full = name_or_arn if name_or_arn.startswith("arn:") else arn(
            "lambda", f"function:{name}", region=self.region, account=self.account)
        raise ResourceNotFoundException(full)

    def __iter__(self):
        return iter(self._functions)
