"""Shared test set-up: the project root on sys.path, Node's end-of-life banner silenced for jsii, a fixed terminal width."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
# The progress printer clips lines to the terminal's width: tests assert on whole lines, so give them
# the widest one it uses whatever runs pytest (a terminal, CI's pipe, an xdist worker).
os.environ["COLUMNS"] = "200"
