"""Map Run records on disk, kept inside the parent execution's folder:

    <execution>/mapRuns/<run id>/mapRun.json                 DescribeMapRun's answer, rewritten as it runs
    <execution>/mapRuns/<run id>/executions/<name>/          each STANDARD child execution's record
                                                             (status.json, history.json, ...: storage.executions)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from emulator.storage.records import write_json_atomic

MAP_RUNS = "mapRuns"
RECORD = "mapRun.json"


def map_run_dir(execution_dir: Path, run_id: str) -> Path:
    return Path(execution_dir) / MAP_RUNS / run_id


def child_dir(execution_dir: Path, run_id: str, name: str) -> Path:
    return map_run_dir(execution_dir, run_id) / "executions" / name


def write_map_run(execution_dir: Path, run_id: str, record: dict) -> None:
    write_json_atomic(map_run_dir(execution_dir, run_id) / RECORD, record, indent=2)


def read_map_run(execution_dir: Path, run_id: str) -> dict:
    path = map_run_dir(execution_dir, run_id) / RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{path} holds no Map Run record")
    return json.loads(path.read_text(encoding="utf-8"))


def map_runs_of(execution_dir: Path) -> Iterator[dict]:
    """Every Map Run record an execution started."""
    for path in sorted((Path(execution_dir) / MAP_RUNS).glob(f"*/{RECORD}")):
        yield json.loads(path.read_text(encoding="utf-8"))


def find_map_run(executions_dir: Path, run_id: str) -> Path | None:
    """The execution folder (under a machine's executions folder) whose Map Run ``run_id`` is."""
    for path in Path(executions_dir).glob(f"*/{MAP_RUNS}/{run_id}/{RECORD}"):
        return path.parents[2]
    return None


def find_child(executions_dir: Path, name: str) -> Path | None:
    """The record folder of a child execution called ``name`` of any Map Run of a machine."""
    for path in Path(executions_dir).glob(f"*/{MAP_RUNS}/*/executions/{name}"):
        return path
    return None


def children_of(execution_dir: Path, run_id: str) -> list[Path]:
    folder = map_run_dir(execution_dir, run_id) / "executions"
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
