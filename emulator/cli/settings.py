"""``--set KEY=VALUE`` options: execution settings given on the command line (infer, monitor)."""

from __future__ import annotations

import json
from typing import Any

from emulator.cli.errors import CliError


def parse_settings(items: list[str] | None, example: str) -> dict[str, Any]:
    """Each value read as JSON when it is JSON (``0.6``, ``true``, ``["a"]``), else kept as text."""
    settings: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set {item!r}: give KEY=VALUE, e.g. --set {example}")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings
