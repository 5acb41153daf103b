"""Errors reading or resolving a cloud assembly: each names where and what to do."""

from __future__ import annotations

from pathlib import Path


class AssemblyError(Exception):
    """Base of every error reading or resolving a cloud assembly."""


class AssemblyNotFound(AssemblyError):
    def __init__(self, path: Path):
        super().__init__(
            f"cdk.out not found at {path} (no manifest.json): run `make synth` "
            f"(or `python -m emulator synth`) in the project first"
        )


class ManifestError(AssemblyError):
    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}; re-run `make synth` with the pinned CDK CLI (package.json)")


class StackNotFound(AssemblyError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"no stack named {name!r} in the assembly; stacks: {', '.join(known) or 'none'}")


class ResolutionError(AssemblyError):
    """An intrinsic that cannot be resolved locally; ``where`` names the stack and property."""

    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: {why}")
        self.where = where


class UnsupportedIntrinsic(ResolutionError):
    pass


class ImportValueNotFound(ResolutionError):
    pass


class AssetNotFound(AssemblyError):
    def __init__(self, where: str, key: str, path: Path | None = None):
        detail = f" (expected at {path})" if path else ""
        super().__init__(
            f"{where}: asset {key!r} is not in the assembly{detail}; "
            f"cdk.out is incomplete or stale: run `make synth` again"
        )
