"""An execution's record on disk: status.json (always), history.json and output.json (once ended).

The interpreter writes it; the Step Functions API and the CLI read it. A running (or killed)
execution has a status.json only, plus the history up to the wait once a Task waits on a task
token (a checkpoint: a restarted process resumes the execution from it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emulator.storage.records import write_json_atomic


def write_history(folder: Path, history: list[dict], status: dict, output: Any) -> None:
    """history.json, output.json and then status.json (what readers poll) in ``folder``."""
    write_json_atomic(Path(folder) / "history.json", history, indent=2)
    write_json_atomic(Path(folder) / "output.json", output, indent=2)
    write_json_atomic(Path(folder) / "status.json", status, indent=2)


def write_checkpoint(folder: Path, history: list[dict]) -> None:
    """The history of a running execution so far (status.json stays RUNNING)."""
    write_json_atomic(Path(folder) / "history.json", history, indent=2)


def write_status(folder: Path, status: dict) -> None:
    write_json_atomic(Path(folder) / "status.json", status, indent=2)


def read_execution(folder: Path) -> dict:
    """{"status": {...}, "history": [...], "output": ...} from ``folder``; history [] while running."""
    folder = Path(folder)
    status_path = folder / "status.json"
    if not status_path.is_file():
        raise FileNotFoundError(f"{folder} holds no execution record (no status.json); run the execution with history_dir")
    record: dict[str, Any] = {"status": json.loads(status_path.read_text(encoding="utf-8")), "history": [], "output": None}
    for key, name in (("history", "history.json"), ("output", "output.json")):
        path = folder / name
        if path.is_file():
            record[key] = json.loads(path.read_text(encoding="utf-8"))
    return record
