"""A user's own table: which column is the target when they do not say, and the synth context that
makes the stack's pipeline train on it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

# Column names taken as the target, in this order, when --target is not given (case-insensitive).
TARGET_NAMES = ("target", "label", "y", "class")


class OwnDataError(Exception):
    """The file cannot be run as given; the message says what to do."""


def read_header(path: Path) -> list[str]:
    if not path.is_file():
        raise OwnDataError(f"{path}: no such file; give the path of a CSV file with a header row")
    with path.open("rb") as handle:
        first = handle.readline(1 << 20)
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise OwnDataError(f"{path} is UTF-16 encoded; save it as UTF-8 CSV (e.g. `iconv -f UTF-16 -t UTF-8`)")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OwnDataError(f"{path} is not UTF-8 text ({exc}); save it as UTF-8 CSV") from exc
    header = next(csv.reader(io.StringIO(text)), [])
    header = [name.strip() for name in header]
    if len(header) < 2 or not all(header):
        raise OwnDataError(f"{path}: the first line {text.strip()[:120]!r} is not a CSV header of at least two "
                           f"named columns; the pipeline needs the column names in the first row")
    return header


def choose_target(path: Path, requested: str | None) -> tuple[str, str]:
    """(target column, why it was chosen)."""
    header = read_header(path)
    if requested:
        if requested not in header:
            near = [name for name in header if name.lower() == requested.lower()]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise OwnDataError(f"--target {requested!r} is not a column of {path.name}{hint}; "
                               f"its columns: {', '.join(header)}")
        return requested, "given with --target"
    by_name = {name.lower(): name for name in header}
    for name in TARGET_NAMES:
        if name in by_name:
            return by_name[name], f"the column named {by_name[name]!r}; pass --target to choose another"
    return header[-1], "the last column; pass --target to choose another"


def pipeline_context(target: str, settings: list[str] | None) -> dict[str, str]:
    """-c context for `cdk synth`: the target and every --set key=value as pipeline.<key>."""
    context = {"pipeline.target_column": target}
    for pair in settings or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise OwnDataError(f"--set {pair!r}: expected key=value, e.g. --set quality_metric=auc")
        context[f"pipeline.{key.strip()}"] = value
    return context
