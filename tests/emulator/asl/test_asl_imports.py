"""The package imports cleanly whichever side of the asl <-> integrations.base pair comes first."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("first", ["emulator.asl.ports", "emulator.asl.errors", "emulator.asl.interpret", "emulator.asl"])
def test_import_order(first):
    code = f"import {first}; from emulator.asl import run_definition; print(run_definition.__name__)"
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "run_definition"
