"""The chunked engine's rows: an instance's byte ranges of the input read in chunks, each column
factorized, every labelled row hashed and given its split (the rule in chunked.py's docstring)."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__:
    from . import preprocess as pre
    from . import problem_rules as rules
else:
    import preprocess as pre
    import problem_rules as rules

SPLITS = ("train", "validation", "test")  # split_of's 0, 1, 2


# ---------------------------------------------------------------------------------------------
# Reading an instance's shard: byte ranges of the input files, cut at line ends


@dataclass(frozen=True)
class Piece:
    path: str
    shown: str
    start: int  # first byte of a line
    end: int  # one past the last byte (a line end)


class _Range(io.RawIOBase):
    """Bytes [start, end) of a file, for read_csv."""

    def __init__(self, piece: Piece) -> None:
        self.handle = open(piece.path, "rb")  # noqa: SIM115 - closed by close()
        self.handle.seek(piece.start)
        self.left = piece.end - piece.start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self.left)
        if size <= 0:
            return 0
        data = self.handle.read(size)
        buffer[:len(data)] = data
        self.left -= len(data)
        return len(data)

    def close(self) -> None:
        self.handle.close()
        super().close()


def _line_start(handle, offset: int, size: int) -> int:
    """The first line start at or after ``offset``."""
    if offset <= 0 or offset >= size:
        return min(max(offset, 0), size)
    handle.seek(offset - 1)
    while True:
        block = handle.read(1 << 16)
        if not block:
            return size
        at = block.find(b"\n")
        if at >= 0:
            return handle.tell() - len(block) + at + 1


def inputs(options: pre.Options) -> tuple[list[str], list[tuple[Path, str, int]]]:
    """The header (raw names) and each file with its shown name and the offset of its first data byte;
    named errors for headers that disagree (the in-memory engine's checks)."""
    files = pre.list_input_files(options.input_dir)
    header0, raw0, names, out = None, None, [], []
    for path in files:
        shown = pre._display(path, options.input_dir)
        raw = pre.raw_header(path, shown)
        header = [name.strip() for name in raw]
        if header0 is None:
            header0, raw0 = header, raw
        elif header != header0:
            raise pre.SchemaMismatchError(f"{shown} has columns {header}, but {names[0]} has {header0}. "
                                          "Every input file must have the same header.")
        with path.open("rb") as handle:
            handle.readline()
            out.append((path, shown, handle.tell()))
        names.append(shown)
    return raw0, out


def shard_pieces(files: list[tuple[Path, str, int]], rank: int, count: int) -> list[Piece]:
    """Instance ``rank`` of ``count``'s byte ranges: the files' data bytes, concatenated in order and cut
    into ``count`` equal spans, each cut moved forward to a line start (no line is split or lost)."""
    sizes = [path.stat().st_size - body for path, _, body in files]
    total = sum(sizes)
    low, high = total * rank // count, total * (rank + 1) // count
    pieces, offset = [], 0
    for (path, shown, body), size in zip(files, sizes):
        start, end = max(low - offset, 0), min(high - offset, size)
        if start < end:
            with path.open("rb") as handle:
                full = body + size
                first = _line_start(handle, body + start, full) if start > 0 else body
                last = _line_start(handle, body + end, full) if end < size else full
            if first < last:
                pieces.append(Piece(str(path), shown, first, last))
        offset += size
    return pieces


def chunks(pieces: list[Piece], header: list[str], target: str, chunk_rows: int):
    """Each piece read in chunks, every cell as text (None where pandas reads missing)."""
    names = [name.strip() for name in header]
    for piece in pieces:
        source = io.BufferedReader(_Range(piece), buffer_size=1 << 20)
        try:
            reader = pd.read_csv(source, header=None, names=names, dtype=object, encoding="utf-8",
                                 skipinitialspace=True, chunksize=chunk_rows, skip_blank_lines=True)
            yield from reader
        except UnicodeDecodeError as err:
            raise pre.UnparseableFileError(f"{piece.shown} is not UTF-8 text ({err.reason} near byte "
                                           f"{piece.start + err.start}). Save it as UTF-8 CSV.") from None
        except (pd.errors.ParserError, ValueError) as err:
            detail = " ".join(str(err).split())
            raise pre.UnparseableFileError(f"{piece.shown} could not be parsed as CSV: {detail}. "
                                           "Check the delimiter (comma) and quoting of that line.") from None
        finally:
            source.close()


# ---------------------------------------------------------------------------------------------
# A chunk's columns


def numbers_of(cells: pd.Series) -> np.ndarray:
    """Each cell as a number (NaN where it is none; infinite stays infinite)."""
    return Cells(cells).numbers()


class Cells:
    """A chunk's column factorized: every per-cell question (a number? its text? its hash?) is answered
    once per distinct cell and spread to the rows by code — a column repeats few values."""

    def __init__(self, cells: pd.Series) -> None:
        self.series = cells
        self.codes, distinct = pd.factorize(cells.astype(object), use_na_sentinel=True)
        self.distinct = np.asarray(distinct, dtype=object)
        self.present = self.codes >= 0

    def spread(self, per_distinct: np.ndarray, missing: Any) -> np.ndarray:
        return np.append(per_distinct, np.asarray([missing], dtype=per_distinct.dtype))[self.codes]

    def distinct_numbers(self) -> np.ndarray:
        return pd.to_numeric(pd.Series(self.distinct, dtype=object), errors="coerce").to_numpy(dtype=np.float64, copy=True)

    def numbers(self) -> np.ndarray:
        return self.spread(self.distinct_numbers(), np.nan)

    def distinct_text(self) -> pd.Series:
        return pd.Series(self.distinct, dtype=object).map(str).str.strip()

    def hashes(self) -> np.ndarray:
        per = pd.util.hash_array(self.distinct, categorize=False) if self.distinct.size else np.empty(0, np.uint64)
        return self.spread(per.astype(np.uint64), np.uint64(0x9E3779B97F4A7C15))

    def counts(self, rows: np.ndarray) -> Counter:
        """Cell -> count over the present cells of ``rows`` (a mask)."""
        chosen = self.codes[rows & self.present]
        found = np.bincount(chosen, minlength=self.distinct.size)
        return Counter({self.distinct[i]: int(found[i]) for i in np.flatnonzero(found)})


# ---------------------------------------------------------------------------------------------
# Rows: labelled, hashed, split


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a well-spread 64-bit number from another."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def label_keys(cells: pd.Series) -> pd.Series:
    """problem_rules.label_key of every cell, computed once per distinct cell."""
    distinct = cells.dropna().unique()
    return cells.map({cell: rules.label_key(cell) for cell in distinct})


def labelled_mask(cells: pd.Series) -> np.ndarray:
    distinct = cells.dropna().unique()
    missing = {cell: rules.is_missing(cell) for cell in distinct}
    return ~cells.map(missing).fillna(True).to_numpy(dtype=bool)


def row_hashes(columns: dict[str, Cells], target: str, keys: pd.Series) -> np.ndarray:
    """A 64-bit identity of each row: its cells as text, the target by label identity."""
    h = np.full(len(keys), np.uint64(0x345678), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name, cells in columns.items():
            part = Cells(keys).hashes() if name == target else cells.hashes()
            h = _mix(h * np.uint64(1000003) ^ part)
    return h


def split_of(hashes: np.ndarray, options: pre.Options) -> np.ndarray:
    """0 train, 1 validation, 2 test: the uniform number the seeded hash gives, against the fractions."""
    seed = _mix(np.asarray([options.seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    u = (_mix(hashes ^ seed) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    out = np.zeros(hashes.size, dtype=np.int8)
    out[u < options.test_fraction + options.validation_fraction] = 1
    out[u < options.test_fraction] = 2
    return out


def train_part_of(hashes: np.ndarray, parts: int) -> np.ndarray:
    return (_mix(hashes ^ np.uint64(0x5EED5EED5EED5EED)) % np.uint64(max(parts, 1))).astype(np.int64)
