"""Loads the conformance cases (cases/<feature>.json) and runs one through our interpreter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

CASES_DIR = Path(__file__).parent / "cases"
DEFAULT_EXECUTION_NAME = "conformance"
DEFAULT_STATE_MACHINE_NAME = "Conformance"


@dataclass(frozen=True)
class Case:
    feature: str  # the cases file stem
    name: str
    comment: str
    definition: dict
    input: Any
    expected: dict
    tasks: dict | None
    history_types: list[str] | None
    history_gaps: list[dict]
    history_events: list[dict]
    clock_start: str | None  # a frozen clock for the run (ISO 8601), so context times are exact
    moto: dict
    execution_name: str
    state_machine_name: str
    s3: dict | None = None  # objects in the local bucket before the run: {"bucket/key": text or JSON}
    redrive: dict | None = None  # {"tasks": script, "expected": {...}}: redriven after the first run

    @property
    def id(self) -> str:
        return f"{self.feature}::{self.name}"


CASE_KEYS = {
    "name", "comment", "definition", "input", "tasks", "expected", "history_types", "history_gaps",
    "history_events", "clock_start", "moto", "execution_name", "state_machine_name", "s3", "redrive",
}
EXPECTED_KEYS = {
    "status", "output", "error", "cause", "definition_error", "task_calls", "max_wall_seconds", "max_concurrent_tasks",
    "s3_files", "map_run", "history_after_redrive",
}


def load_cases(features: tuple[str, ...] | None = None) -> list[Case]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.json")):
        if features is not None and path.stem not in features:
            continue
        for raw in json.loads(path.read_text()):
            unknown = (raw.keys() - CASE_KEYS) | (raw["expected"].keys() - EXPECTED_KEYS)
            if unknown:
                raise ValueError(f"{path.name}::{raw['name']}: unknown keys {sorted(unknown)}")
            cases.append(
                Case(
                    feature=path.stem,
                    name=raw["name"],
                    comment=raw["comment"],
                    definition=raw["definition"],
                    input=raw.get("input", {}),
                    expected=raw["expected"],
                    tasks=raw.get("tasks"),
                    history_types=raw.get("history_types"),
                    history_gaps=raw.get("history_gaps", []),
                    history_events=raw.get("history_events", []),
                    clock_start=raw.get("clock_start"),
                    moto=raw.get("moto", {}),
                    execution_name=raw.get("execution_name", DEFAULT_EXECUTION_NAME),
                    state_machine_name=raw.get("state_machine_name", DEFAULT_STATE_MACHINE_NAME),
                    s3=raw.get("s3"),
                    redrive=raw.get("redrive"),
                )
            )
    return cases


def same_json(actual: Any, expected: Any) -> bool:
    """JSON equality where true is not 1 (Python's bool is an int) but 2 equals 2.0."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return actual == expected
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(same_json(actual[k], expected[k]) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same_json(a, e) for a, e in zip(actual, expected))
        )
    return type(actual) is type(expected) and actual == expected


def event_gaps(history: list[dict], from_type: str, to_type: str) -> list[float]:
    """Seconds from each ``from_type`` event to the next ``to_type`` event, by the events' timestamps."""
    times = [datetime.fromisoformat(event["timestamp"]) for event in history]
    gaps = []
    for i, event in enumerate(history):
        if event["type"] != from_type:
            continue
        following = next((j for j in range(i + 1, len(history)) if history[j]["type"] == to_type), None)
        if following is not None:
            gaps.append((times[following] - times[i]).total_seconds())
    return gaps


def contains_json(actual: Any, expected: Any) -> bool:
    """Whether ``actual`` has every key/value of ``expected`` (objects compared as subsets, recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains_json(actual[k], v) for k, v in expected.items())
    return same_json(actual, expected)
