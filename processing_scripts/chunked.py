"""preprocess.py's bounded-memory engine: statistics over chunks, one merge, then transform chunk by chunk.

Peak memory depends on --chunk-rows and the caps below, not on the table. Three stages, each a pure
function of the input bytes (never of the chunk size or of how the input is sharded):

  statistics  each instance reads its shard of the input (byte ranges of the CSV files cut at line
              ends, from its rank in resourceconfig.json) in chunks and accumulates mergeable
              partial statistics: per column the cell kinds (feature_rules' counts), exact value
              counts of numbers and of text cells (all labelled rows, and the train split's), the
              order of its numbers (ID detection), the target's spellings (problem_rules'
              TargetSummary), class counts per split, and a 64-bit hash of every labelled row.
  merge       one instance combines the partials (in rank order) and decides everything preprocess
              decides in memory: problem type, cell rules, dates, IDs, encodings fitted on the train
              split, duplicates, schema.json, baseline.json, Model Monitor's statistics.json and
              constraints.json (monitor_baseline.py's accumulators, fed the train rows in the
              statistics pass and merged here), the featurizer and decoder archives.
  transform   each instance re-reads its shard and writes its rows, encoded with the merged plan, to
              ``<split>/<split>-<rank>.csv`` (train: one file per --train-shards part, so a training
              job's ShardedByS3Key channel can give every host its share).

The split: a row's 64-bit hash (its cells as text, the target by label identity), mixed with --seed,
is a uniform number u in [0, 1): test if u < test_fraction, validation if u < test + validation,
train otherwise. The same row lands in the same split whatever the chunking, sharding or file order
— and duplicates of a row land together, so the first of them (in shard, then row order) is kept.
Each class is split by the same uniform rule, so the splits are stratified in expectation (class
fractions within sampling error); a split left without a class stops with InsufficientData.

How it differs from the in-memory engine (used for tables up to preprocess.IN_MEMORY_MAX_BYTES on
one instance): the split is the hash rule above, not scikit-learn's exact stratified shuffle;
statistics count duplicate rows (dropping them needs every row's hash, which only the merge has);
a text column with more than CATEGORY_CAP distinct values is dropped (an identifier or free text);
numeric value counts beyond VALUE_CAP distinct values become log buckets of relative width
SKETCH_GAMMA - 1 (medians and baseline quantiles then within 0.1%); the cells are read as text and
typed per column (so "1" and "1.0" in a numeric column are the same number, but two rows spelling it
differently are not duplicates).
"""

from __future__ import annotations

import io
import json
import logging
import math
import pickle
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__:
    from . import feature_rules, monitor_baseline
    from . import preprocess as pre
    from . import problem_rules as rules
else:
    import feature_rules
    import monitor_baseline
    import preprocess as pre
    import problem_rules as rules

log = logging.getLogger("preprocess.chunked")

CHUNK_ROWS = 100_000
VALUE_CAP = 100_000  # distinct numbers counted exactly per column; beyond, log buckets
CATEGORY_CAP = 100_000  # distinct text cells tracked per column; beyond, the column is dropped
SKETCH_GAMMA = 1.002
PARTIAL_FILE = "statistics-{host}.pkl"
PLAN_FILE = "plan.pkl"
SPLITS = ("train", "validation", "test")


# ---------------------------------------------------------------------------------------------
# Mergeable accumulators


@dataclass
class Values:
    """Exact value -> count of numbers (sorted arrays), bucketed once more than VALUE_CAP distinct."""

    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    counts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    bucketed: bool = False

    def add(self, numbers: np.ndarray, counts: np.ndarray | None = None) -> None:
        if numbers.size == 0:
            return
        if counts is None:
            numbers, counts = np.unique(numbers, return_counts=True)
        self._combine(numbers, counts.astype(np.int64), False)

    def merge(self, other: Values) -> None:
        self._combine(other.values, other.counts, other.bucketed)

    def _combine(self, values: np.ndarray, counts: np.ndarray, bucketed: bool) -> None:
        if bucketed or self.bucketed:
            values, self.values = _bucket(values), _bucket(self.values)
            self.bucketed = True
        merged, inverse = np.unique(np.concatenate([self.values, values]), return_inverse=True)
        self.counts = np.bincount(inverse, weights=np.concatenate([self.counts, counts]),
                                  minlength=merged.size).astype(np.int64)
        self.values = merged
        if not self.bucketed and self.values.size > VALUE_CAP:
            self._combine(np.empty(0), np.empty(0, dtype=np.int64), True)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def with_extra(self, value: float, count: int) -> Values:
        out = Values(self.values.copy(), self.counts.copy(), self.bucketed)
        if count:
            out._combine(np.asarray([value], dtype=np.float64), np.asarray([count], dtype=np.int64), False)
        return out

    def median(self) -> float:
        return self.percentile(50.0)

    def percentile(self, q: float) -> float:
        """np.percentile's linear interpolation over the values as if expanded by their counts."""
        n = self.total
        position = q / 100.0 * (n - 1)
        low, high = math.floor(position), math.ceil(position)
        ends = np.cumsum(self.counts)
        a = float(self.values[np.searchsorted(ends, low, side="right")])
        b = float(self.values[np.searchsorted(ends, high, side="right")])
        return a + (b - a) * (position - low)

    def baseline(self) -> dict[str, Any]:
        """preprocess.numeric_baseline of the expanded values."""
        n = self.total
        weights = self.counts.astype(np.float64)
        mean = float(np.dot(self.values, weights) / n)
        std = float(math.sqrt(max(0.0, float(np.dot((self.values - mean) ** 2, weights)) / n)))
        low, high = float(self.values[0]), float(self.values[-1])
        counts, edges = np.histogram(self.values, bins=pre.HISTOGRAM_BINS, range=(low, high), weights=weights)
        return {
            "count": n,
            "mean": pre._rounded(mean),
            "std": pre._rounded(std),
            "min": pre._rounded(low),
            "max": pre._rounded(high),
            "quantiles": {f"p{q:02d}": float(self.percentile(q)) for q in pre.BASELINE_QUANTILES},
            "histogram": {"bin_edges": [float(e) for e in edges], "counts": [int(np.rint(c)) for c in counts]},
        }


def _bucket(values: np.ndarray) -> np.ndarray:
    """Each number as its log bucket's representative (sign * gamma**k; 0 stays 0): idempotent."""
    if values.size == 0:
        return values
    magnitude = np.abs(values)
    with np.errstate(divide="ignore"):
        k = np.round(np.log(magnitude) / math.log(SKETCH_GAMMA))
    return np.where(magnitude > 0, np.sign(values) * np.power(SKETCH_GAMMA, k), 0.0)


@dataclass
class Texts:
    """Text cell -> count, until more than CATEGORY_CAP distinct cells (then only the overflow is known)."""

    counts: Counter = field(default_factory=Counter)
    overflow: bool = False

    def add_counts(self, counts: Counter) -> None:
        if self.overflow or not counts:
            return
        self.counts.update(counts)
        self._check()

    def merge(self, other: Texts) -> None:
        self.overflow = self.overflow or other.overflow
        if not self.overflow:
            self.counts.update(other.counts)
        self._check()

    def _check(self) -> None:
        if self.overflow or len(self.counts) > CATEGORY_CAP:
            self.overflow, self.counts = True, Counter()


@dataclass
class Order:
    """Whether a column's numbers, in row order, only rise or only fall (a monotonic index)."""

    first: float | None = None
    last: float | None = None
    rising: bool = True
    falling: bool = True

    def add(self, numbers: np.ndarray) -> None:
        if numbers.size == 0:
            return
        steps = np.diff(numbers)
        self.merge(Order(float(numbers[0]), float(numbers[-1]), bool(np.all(steps > 0)), bool(np.all(steps < 0))))

    def merge(self, after: Order) -> None:
        """``after`` follows this one in row order."""
        if after.first is None:
            return
        if self.first is None:
            self.first, self.last, self.rising, self.falling = after.first, after.last, after.rising, after.falling
            return
        self.rising = self.rising and after.rising and self.last < after.first
        self.falling = self.falling and after.falling and self.last > after.first
        self.last = after.last


@dataclass
class ColumnStats:
    """One feature column over an instance's shard."""

    name: str
    cells: feature_rules.ColumnCells
    numbers: Values = field(default_factory=Values)  # all labelled rows: finite numbers
    numbers_train: Values = field(default_factory=Values)
    texts: Texts = field(default_factory=Texts)  # all labelled rows: non-missing cells as read
    texts_train: Texts = field(default_factory=Texts)
    order: Order = field(default_factory=Order)
    integer: bool = True
    missing: int = 0  # labelled rows with no cell (as pandas reads missing)
    missing_train: int = 0
    non_number: int = 0  # labelled rows whose cell is not a finite number (missing included)
    non_number_train: int = 0
    # Model Monitor's baseline of the train rows (monitor_baseline.py), kept both ways until the merge
    # knows whether the column is numeric or categorical
    monitor_numeric: monitor_baseline.NumericAccumulator = field(default_factory=monitor_baseline.NumericAccumulator)
    monitor_categorical: monitor_baseline.CategoricalAccumulator = field(
        default_factory=monitor_baseline.CategoricalAccumulator)

    def merge(self, other: ColumnStats) -> None:
        a, b = self.cells, other.cells
        a.filled += b.filled
        a.numbers += b.numbers
        a.infinite += b.infinite
        a.text += b.text
        a.examples = (a.examples + [e for e in b.examples if e not in a.examples])[:feature_rules.EXAMPLES]
        self.numbers.merge(other.numbers)
        self.numbers_train.merge(other.numbers_train)
        self.texts.merge(other.texts)
        self.texts_train.merge(other.texts_train)
        self.order.merge(other.order)
        self.integer = self.integer and other.integer
        for name in ("missing", "missing_train", "non_number", "non_number_train"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.monitor_numeric.merge(other.monitor_numeric)
        self.monitor_categorical.merge(other.monitor_categorical)


@dataclass
class Partial:
    """What one instance learnt from its shard (the merge combines them in rank order)."""

    header: list[str]
    file_names: list[str]
    rows: int = 0
    target: rules.TargetSummary = field(default_factory=rules.TargetSummary)
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    split_rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    class_counts: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SPLITS})
    label_values: Values = field(default_factory=Values)  # regression: the train split's targets
    label_sum: float = 0.0
    hashes: list[np.ndarray] = field(default_factory=list)  # of labelled rows, in row order

    def merge(self, other: Partial) -> None:
        self.rows += other.rows
        _merge_target(self.target, other.target)
        for name, stats in other.columns.items():
            self.columns[name].merge(stats)
        for split in SPLITS:
            self.split_rows[split] += other.split_rows[split]
            self.class_counts[split].update(other.class_counts[split])
        self.label_values.merge(other.label_values)
        self.label_sum += other.label_sum


def _merge_target(into: rules.TargetSummary, other: rules.TargetSummary) -> None:
    into.rows += other.rows
    into.missing += other.missing
    into.infinite += other.infinite
    into.numeric = into.numeric and other.numeric
    into.integer = into.integer and other.integer
    into.overflow = into.overflow or other.overflow
    into.non_numeric_examples = (into.non_numeric_examples + [e for e in other.non_numeric_examples
                                                              if e not in into.non_numeric_examples])[:5]
    for key, spellings in other.spellings.items():
        if key in into.spellings:
            into.spellings[key].update(spellings)
        elif len(into.spellings) < rules.MAX_TRACKED_VALUES:
            into.spellings[key] = Counter(spellings)
        else:
            into.overflow = True


def _add_target_counts(summary: rules.TargetSummary, counts: pd.Series) -> None:
    """TargetSummary.add for every cell, from the chunk's (cell -> count): one call per distinct cell."""
    for cell, count in counts.items():
        before_missing, before_infinite = summary.missing, summary.infinite
        summary.add(cell)
        extra = int(count) - 1
        if not extra:
            continue
        summary.rows += extra
        if summary.missing > before_missing:
            summary.missing += extra
            summary.infinite += extra * (summary.infinite - before_infinite)
            continue
        text = str(cell).strip()
        key = rules.label_key(text)
        if key in summary.spellings:
            summary.spellings[key][text] += extra


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


# ---------------------------------------------------------------------------------------------
# Stage 1: statistics


def _numbers(cells: pd.Series) -> np.ndarray:
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

    def _spread(self, per_distinct: np.ndarray, missing: Any) -> np.ndarray:
        return np.append(per_distinct, np.asarray([missing], dtype=per_distinct.dtype))[self.codes]

    def distinct_numbers(self) -> np.ndarray:
        return pd.to_numeric(pd.Series(self.distinct, dtype=object), errors="coerce").to_numpy(dtype=np.float64, copy=True)

    def numbers(self) -> np.ndarray:
        return self._spread(self.distinct_numbers(), np.nan)

    def distinct_text(self) -> pd.Series:
        return pd.Series(self.distinct, dtype=object).map(str).str.strip()

    def hashes(self) -> np.ndarray:
        per = pd.util.hash_array(self.distinct, categorize=False) if self.distinct.size else np.empty(0, np.uint64)
        return self._spread(per.astype(np.uint64), np.uint64(0x9E3779B97F4A7C15))

    def counts(self, rows: np.ndarray) -> Counter:
        """Cell -> count over the present cells of ``rows`` (a mask)."""
        chosen = self.codes[rows & self.present]
        found = np.bincount(chosen, minlength=self.distinct.size)
        return Counter({self.distinct[i]: int(found[i]) for i in np.flatnonzero(found)})


def statistics(options: pre.Options, rank: int = 0, count: int = 1) -> Partial:
    """The partial statistics of instance ``rank`` of ``count``."""
    header, files = inputs(options)
    names = [name.strip() for name in header]
    target = options.target_column
    if target not in names:
        near = [c for c in names if c.lower() == target.lower()]
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise pre.MissingTargetColumnError(f"Target column {target!r} is not in the input columns "
                                           f"{names}.{hint} Pass --target-column with one of them.")
    partial = Partial(header=names, file_names=[shown for _, shown, _ in files])
    partial.columns = {name: ColumnStats(name, feature_rules.ColumnCells(name)) for name in names if name != target}
    for chunk in chunks(shard_pieces(files, rank, count), header, target, options.chunk_rows):
        _chunk_statistics(partial, chunk, options)
    return partial


def _chunk_statistics(partial: Partial, chunk: pd.DataFrame, options: pre.Options) -> None:
    target = options.target_column
    partial.rows += len(chunk)
    _add_target_counts(partial.target, chunk[target].value_counts(dropna=False))
    labelled = labelled_mask(chunk[target])
    data = chunk[labelled]
    keys = label_keys(data[target])
    columns = {name: Cells(data[name]) for name in data.columns}
    hashes = row_hashes(columns, target, keys)
    partial.hashes.append(hashes)
    split = split_of(hashes, options)
    train = split == 0
    for i, name in enumerate(SPLITS):
        partial.split_rows[name] += int((split == i).sum())
        partial.class_counts[name].update(keys[split == i].value_counts().to_dict())
    numbers_of_target = _numbers(data[target])
    finite = np.isfinite(numbers_of_target) & train
    partial.label_values.add(numbers_of_target[finite])
    partial.label_sum += float(numbers_of_target[finite].sum())
    for name, stats in partial.columns.items():
        _column_chunk(stats, Cells(chunk[name]), labelled, train, columns[name])
        _monitor_chunk(stats, columns[name], train, hashes[train])


def _column_chunk(stats: ColumnStats, everyone: Cells, labelled: np.ndarray, train: np.ndarray, kept: Cells) -> None:
    """``everyone``: the column's cells in every row; ``kept``: in the labelled rows."""
    distinct_numbers = everyone.distinct_numbers()
    text_of = everyone.distinct_text()
    numbers = everyone._spread(distinct_numbers, np.nan)
    present = everyone.present
    spelled = text_of.str.casefold().isin(rules.INFINITE_SPELLINGS).to_numpy(dtype=bool)
    infinite = everyone._spread(np.isinf(distinct_numbers) | spelled, False)
    finite = np.isfinite(numbers)
    text = everyone._spread(text_of.to_numpy(dtype=object), "")
    # feature_rules.ColumnCells over every row (labelled or not), vectorized: pandas already read its
    # missing markers as missing, and a blank cell as missing
    is_text = present & ~finite & ~infinite
    cells_stats = stats.cells
    cells_stats.filled += int((present & (finite | infinite | is_text)).sum())
    cells_stats.numbers += int(finite.sum())
    cells_stats.infinite += int(infinite.sum())
    cells_stats.text += int(is_text.sum())
    if is_text.any() and len(cells_stats.examples) < feature_rules.EXAMPLES:
        for example in pd.unique(text[is_text])[:feature_rules.EXAMPLES]:
            if example not in cells_stats.examples and len(cells_stats.examples) < feature_rules.EXAMPLES:
                cells_stats.examples.append(example)
    # the labelled rows, as plan_columns and fit_encodings see them
    numbers, present, finite = numbers[labelled], present[labelled], finite[labelled]
    stats.missing += int((~present).sum())
    stats.missing_train += int((~present & train).sum())
    stats.non_number += int((~finite).sum())
    stats.non_number_train += int((~finite & train).sum())
    stats.numbers.add(numbers[finite])
    stats.numbers_train.add(numbers[finite & train])
    stats.order.add(numbers[finite])
    if finite.any():
        stats.integer = stats.integer and bool(np.all(np.mod(numbers[finite], 1) == 0))
    stats.texts.add_counts(kept.counts(np.ones(len(train), dtype=bool)))
    stats.texts_train.add_counts(kept.counts(train))


def _monitor_chunk(stats: ColumnStats, kept: Cells, train: np.ndarray, keys: np.ndarray) -> None:
    """The train rows into both monitor accumulators: as numbers (infinite and text cells missing, as
    feature_rules reads a numeric column) and as category keys (monitor_baseline.category_keys)."""
    numbers = kept.distinct_numbers()
    numbers[~np.isfinite(numbers)] = np.nan
    stats.monitor_numeric.update(kept._spread(numbers, np.nan)[train], keys)
    categories = monitor_baseline.category_keys(pd.Series(kept.distinct, dtype=object)).to_numpy(dtype=object)
    stats.monitor_categorical.update(pd.Series(kept._spread(categories, np.nan)[train], dtype=object))


# ---------------------------------------------------------------------------------------------
# Stage 2: merge -> the plan (and schema.json, baseline.json, the serving archives)


@dataclass
class Plan:
    options: pre.Options
    header: list[str]
    input_columns: list[str]
    decision: rules.TargetDecision
    encodings: list[pre.ColumnEncoding]
    numeric_columns: list[str]
    drop_in_shard: list[np.ndarray]  # per rank: hashes seen in an earlier shard
    repeated_in_shard: list[np.ndarray]  # per rank: hashes occurring twice or more in that shard
    schema: dict[str, Any]
    baseline: dict[str, Any]
    monitor: tuple[dict[str, Any], dict[str, Any]]  # Model Monitor's statistics.json, constraints.json


def merge(partials: list[Partial], options: pre.Options) -> Plan:
    total = partials[0]
    for other in partials[1:]:
        total.merge(other)
    target = options.target_column
    if total.rows == 0:
        raise pre.HeaderOnlyError(f"{', '.join(total.file_names)} has a header but no data rows. "
                                  "Upload the data rows too.")
    try:
        decision = rules.decide(total.target, options.problem_type, target, "the input")
    except rules.UnusableTarget as err:
        raise pre.UnusableTarget(str(err)) from None
    dropped_null = total.target.missing
    # duplicates: a hash seen in an earlier shard goes entirely; one repeated within a shard keeps its first copy
    drop_in_shard, repeated_in_shard, seen, labelled = [], [], np.empty(0, dtype=np.uint64), 0
    removed = np.zeros(len(SPLITS), dtype=np.int64)
    for partial in partials:
        hashes = np.concatenate(partial.hashes) if partial.hashes else np.empty(0, dtype=np.uint64)
        labelled += hashes.size
        distinct, counts = np.unique(hashes, return_counts=True)
        earlier = np.isin(distinct, seen)
        repeated = (counts > 1) & ~earlier
        drop_in_shard.append(distinct[earlier])
        repeated_in_shard.append(distinct[repeated])
        gone = np.concatenate([distinct[earlier], distinct[repeated]])
        copies = np.concatenate([counts[earlier], counts[repeated] - 1])
        removed += np.bincount(split_of(gone, options), weights=copies, minlength=len(SPLITS)).astype(np.int64)
        seen = np.union1d(seen, distinct)
        partial.hashes = []
    del seen
    unique = labelled - int(removed.sum())
    dropped_dupes = labelled - unique
    # the statistics count duplicate rows (see the module's docstring); the counts in schema.json are
    # the rows each split's files hold
    counts = {split: total.split_rows[split] - int(removed[i]) for i, split in enumerate(SPLITS)}
    try:
        rules.check_labelled_rows(unique, dropped_null, target, "The input")
    except rules.InsufficientData as err:
        raise pre.InsufficientData(f"{err} ({dropped_dupes} duplicate row(s) were dropped too.)" if dropped_dupes
                                   else str(err)) from None
    classification = decision.problem_type != pre.REGRESSION
    if classification:
        overall = Counter()
        for split in SPLITS:
            overall.update(total.class_counts[split])
        labels_by_key = dict(zip(decision.keys, decision.labels))
        try:
            rules.check_class_sizes({labels_by_key[k]: overall[k] for k in decision.keys}, target)
        except rules.InsufficientData as err:
            raise pre.InsufficientData(str(err)) from None
        for split in SPLITS:
            absent = [labels_by_key[k] for k in decision.keys if not total.class_counts[split][k]]
            if absent:
                raise pre.InsufficientData(
                    f"Target {target!r}: no row of class(es) {absent} fell in the {split} split (each row's split "
                    f"is decided by a hash of the row, so a class needs enough rows for every split to draw some). "
                    "Add rows of those classes, or remove them from the file.")
    if min(total.split_rows.values()) == 0:
        raise pre.InsufficientData(f"The hash split left a split empty ({total.split_rows}); provide more rows.")

    columns = [c for c in total.header if c != target]
    numeric, cell_decisions = [], []
    for name in columns:
        cells = total.columns[name].cells
        if cells.numeric:
            numeric.append(name)
        cell_decisions += [{"column": name, "action": "read as numbers:", "detail": line}
                           for line in cells.warnings()]
    dates, id_columns = _plan_columns(total, columns, numeric, unique)
    encodings, dropped_in_train, decisions = _fit(total, [c for c in columns if c not in {d["name"] for d in id_columns}],
                                                  numeric, dates, options.max_onehot_cardinality)
    dropped_columns = id_columns + dropped_in_train
    decisions = ([{"column": d["name"], "action": "dropped", "detail": d["reason"]} for d in dropped_columns]
                 + cell_decisions + decisions)
    report = pre.data_report(total.rows, dropped_null, dropped_dupes, target, decision, decisions)
    for line in report:
        log.info("%s", line)
    train_rows = total.split_rows["train"]
    if classification:
        fractions = [total.class_counts["train"][k] / train_rows for k in decision.keys]
        naive = {"strategy": "class_prior", "class_fractions": [float(f) for f in fractions]}
    else:
        naive = {"strategy": "mean", "mean": float(total.label_sum / max(total.label_values.total, 1))}
    schema = pre.schema_document(
        options, decision, encodings, columns, dropped_columns, decisions, report,
        {"input": total.rows, "dropped_null_target": dropped_null, "dropped_duplicates": dropped_dupes,
         **counts, "batch": counts["test"]},
        naive, total.file_names)
    schema["engine"] = {"name": "chunked", "split": "row hash", "chunk_rows": options.chunk_rows,
                        "instances": len(partials), "train_parts": options.train_shards}
    baseline = _baseline(total, encodings, decision)
    monitored = monitor_baseline.BaselineAccumulator(monitor_baseline.monitored_columns(schema))
    for name, kind in monitored.columns.items():
        stats = total.columns[name]
        monitored.features[name] = (stats.monitor_numeric if kind == monitor_baseline.NUMERIC
                                    else stats.monitor_categorical)
    monitored.rows = total.split_rows["train"]
    monitor = monitored.finish(options.drift_threshold)
    return Plan(options, total.header, columns, decision, encodings, numeric, drop_in_shard, repeated_in_shard,
                schema, baseline, monitor)


def _date_text(texts: Texts) -> Counter:
    return Counter({t: c for cell, c in texts.counts.items() if (t := str(cell).strip())})


def _plan_columns(total: Partial, columns: list[str], numeric: list[str], labelled: int,
                  ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """preprocess.plan_columns from the statistics."""
    dates, dropped = {}, []
    for name in columns:
        stats = total.columns[name]
        if name not in numeric:
            found = _date_format(stats.texts) if not stats.texts.overflow else None
            if found:
                dates[name] = {"format": found[0], "unreadable": found[1]}
                continue
            if stats.texts.overflow:
                dropped.append({"name": name, "reason": f"more than {CATEGORY_CAP} distinct values, an identifier "
                                                        "or free text"})
                continue
            if (labelled >= pre.MIN_ROWS_FOR_ID and not stats.missing and len(stats.texts.counts) == labelled
                    and all(c == 1 for c in stats.texts.counts.values())):
                dropped.append({"name": name, "reason": "unique per row, an identifier"})
            continue
        if labelled < pre.MIN_ROWS_FOR_ID or stats.non_number or not stats.integer:
            continue
        if stats.order.rising or stats.order.falling:
            dropped.append({"name": name, "reason": "a monotonic integer index"})
            continue
        unique = not stats.numbers.bucketed and stats.numbers.values.size == labelled
        if unique and (pre.ID_NAME.search(name) or pre.ID_NAME.search(name.lower())):
            dropped.append({"name": name, "reason": "unique integers named like an identifier"})
    return dates, dropped


def _date_format(texts: Texts) -> tuple[str, int] | None:
    counts = _date_text(texts)
    total = sum(counts.values())
    if not total:
        return None
    values = pd.Series(list(counts.keys()), dtype=object)
    weights = np.asarray(list(counts.values()), dtype=np.float64)
    shaped = values.map(lambda v: bool(pre.DATE_SHAPE.match(v))).to_numpy(dtype=bool)
    if weights[shaped].sum() < pre.DATE_MIN_SHARE * total:
        return None
    best = None
    for fmt in pre.DATE_FORMATS:
        read = int(weights[pd.to_datetime(values, format=fmt, errors="coerce").notna().to_numpy()].sum())
        if best is None or read > best[1]:
            best = (fmt, read)
    if best is None or best[1] < pre.DATE_MIN_SHARE * total:
        return None
    return best[0], total - best[1]


def _fit(total: Partial, columns: list[str], numeric: list[str], dates: dict[str, dict[str, Any]],
         max_onehot: int) -> tuple[list[pre.ColumnEncoding], list[dict[str, str]], list[dict[str, Any]]]:
    """preprocess.fit_encodings from the train split's statistics."""
    rows = total.split_rows["train"]
    encodings, dropped, decisions = [], [], []
    for name in columns:
        stats = total.columns[name]
        is_numeric = name in numeric
        missing_count = stats.non_number_train if is_numeric else stats.missing_train
        missing = missing_count / rows
        if missing == 1.0:
            dropped.append({"name": name, "reason": "every value is missing in the train split"})
            continue
        if not is_numeric and stats.texts_train.overflow:
            dropped.append({"name": name, "reason": f"more than {CATEGORY_CAP} distinct values, an identifier or free text"})
            continue
        texts = stats.texts_train.counts
        if is_numeric:
            distinct = stats.numbers_train.values.size + (1 if missing_count else 0)
            first = repr(float(stats.numbers_train.values[0])) if stats.numbers_train.values.size else ""
        elif name in dates:
            distinct = len(texts) + (1 if missing_count else 0)
            first = next(iter(sorted(map(str, texts))), "")
        else:
            keys = _key_counts(texts, missing_count)
            distinct = len(keys)
            first = next(iter(sorted(map(str, texts))), "")
        if distinct <= 1:
            dropped.append({"name": name, "reason": f"constant ({first.strip()!r} in every train row)"})
            continue
        if name in dates:
            fmt = dates[name]["format"]
            parts_values, origin = _date_parts(texts, fmt, missing_count)
            medians = [parts.median() if parts.total else math.nan for parts in parts_values]
            encodings.append(pre.ColumnEncoding(name, "date", "date_parts", date_format=fmt, origin=str(origin),
                                                part_impute_values=medians, missing_in_train=missing))
            unread = dates[name]["unreadable"]
            decisions.append({"column": name, "action": "read as dates",
                              "detail": f"({fmt}) -> {', '.join(pre.DATE_PARTS)} (day 0 = {origin.date()})"
                                        + (f"; {unread} value(s) not read as dates are treated as missing"
                                           if unread else "")})
            continue
        if is_numeric:
            encodings.append(pre.ColumnEncoding(name, "numeric", "passthrough",
                                                impute_value=float(stats.numbers_train.median()),
                                                missing_in_train=missing))
            continue
        keys = _key_counts(texts, missing_count)
        spellings: dict[str, Counter] = {}
        for cell, count in texts.items():
            spelling = str(cell).strip()
            if spelling:
                spellings.setdefault(rules.category_key(spelling), Counter())[spelling] += count
        labels = {key: min(found.items(), key=lambda kv: (-kv[1], kv[0]))[0] for key, found in spellings.items()}
        merged = {labels[key]: sorted(found) for key, found in sorted(spellings.items()) if len(found) > 1}
        if merged:
            decisions.append({"column": name, "action": "spellings merged:",
                              "detail": "; ".join(f"{v} -> {k!r}" for k, v in merged.items())})
        if len(keys) <= max_onehot:
            categories = sorted(keys)
            encodings.append(pre.ColumnEncoding(name, "categorical", "one_hot", categories=categories,
                                                labels=[labels.get(k, k) for k in categories],
                                                missing_in_train=missing, cardinality=len(keys)))
        else:
            freq = {str(k): float(v) / rows for k, v in sorted(keys.items())}
            encodings.append(pre.ColumnEncoding(name, "categorical", "frequency", frequencies=freq,
                                                missing_in_train=missing, cardinality=len(keys)))
    if not encodings:
        raise pre.NoFeaturesError("No usable feature columns: every column besides the target is empty, constant or "
                                  f"an identifier ({', '.join(d['name'] for d in dropped)}). Check the export "
                                  "includes the feature columns.")
    return encodings, dropped, decisions


def _key_counts(texts: Counter, missing: int) -> Counter:
    """Category key -> train rows, as preprocess._category_keys keys them (blank and missing: __missing__)."""
    keys = Counter()
    for cell, count in texts.items():
        keys[rules.category_key(cell) or pre.MISSING] += count
    if missing:
        keys[pre.MISSING] += missing
    return keys


def _date_parts(texts: Counter, fmt: str, missing: int) -> tuple[list[Values], pd.Timestamp]:
    """Each date part's train values (unreadable and missing dates left out, as nanmedian does), and
    the earliest train date."""
    cells = pd.Series(list(texts.keys()), dtype=object)
    counts = np.asarray(list(texts.values()), dtype=np.int64)
    when = pd.to_datetime(cells.map(str).str.strip(), format=fmt, errors="coerce")
    origin = when.min()
    parts = pre._date_parts(cells, fmt, str(origin))
    out = []
    for i in range(parts.shape[1]):
        readable = ~np.isnan(parts[:, i])
        values = Values()
        values.add(parts[readable, i], counts[readable]) if readable.any() else None
        out.append(values)
    return out, origin


def _baseline(total: Partial, encodings: list[pre.ColumnEncoding], decision: rules.TargetDecision) -> dict[str, Any]:
    """preprocess.build_baseline, from the train split's statistics (duplicates included)."""
    rows = total.split_rows["train"]
    per_feature, per_source = {}, {}
    for enc in encodings:
        stats = total.columns[enc.name]
        entry: dict[str, Any] = {"kind": enc.kind, "missing_fraction": enc.missing_in_train}
        names = enc.output_names()
        if enc.kind == "numeric":
            features = [stats.numbers_train.with_extra(enc.impute_value, stats.non_number_train)]
        elif enc.kind == "date":
            parts, _ = _date_parts(stats.texts_train.counts, enc.date_format, stats.missing_train)
            features = [p.with_extra(v, rows - p.total) for p, v in zip(parts, enc.part_impute_values)]
        else:
            keys = _key_counts(stats.texts_train.counts, stats.missing_train)
            if enc.encoding == "one_hot":
                features = []
                for category in enc.categories:
                    ones = keys.get(category, 0)
                    values = Values()
                    values.add(np.asarray([0.0, 1.0]), np.asarray([rows - ones, ones]))
                    features.append(values)
            else:
                values = Values()
                frequencies = np.asarray([enc.frequencies.get(k, 0.0) for k in keys], dtype=np.float64)
                values.add(*_collapse(frequencies, np.asarray(list(keys.values()), dtype=np.int64)))
                features = [values]
            top = sorted(keys.items(), key=lambda kv: (-kv[1], str(kv[0])))[:pre.BASELINE_TOP_CATEGORIES]
            entry["top_categories"] = {str(k): float(v) / rows for k, v in top}
        for name, values in zip(names, features):
            per_feature[name] = _nonzero(values).baseline()
        per_source[enc.name] = entry
    if decision.problem_type == pre.REGRESSION:
        label = total.label_values.baseline()
    else:
        label = {"class_fractions": {str(i): float(total.class_counts["train"][k]) / rows
                                     for i, k in enumerate(decision.keys)}}
    return {"schema_version": pre.SCHEMA_VERSION, "computed_on": "train", "rows": rows,
            "features": per_feature, "source_columns": per_source, "label": label}


def _collapse(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, np.bincount(inverse, weights=counts, minlength=distinct.size).astype(np.int64)


def _nonzero(values: Values) -> Values:
    keep = values.counts > 0
    return Values(values.values[keep], values.counts[keep], values.bucketed)


# ---------------------------------------------------------------------------------------------
# Stage 3: transform and write


def transform(plan: Plan, rank: int, count: int, output_dir: Path) -> dict[str, int]:
    """Instance ``rank``'s rows, encoded by the plan, appended chunk by chunk to its split files."""
    options = plan.options
    header, files = inputs(options)
    target = options.target_column
    drop = plan.drop_in_shard[rank]
    repeated = plan.repeated_in_shard[rank]
    seen: set[int] = set()
    written = dict.fromkeys(SPLITS, 0)
    handles: dict[tuple[str, int], Any] = {}

    def handle(split: str, part: int):
        key = (split, part)
        if key not in handles:
            name = f"{split}-{rank:05d}" + (f"-{part:05d}" if split == "train" and options.train_shards > 1 else "")
            path = output_dir / split / f"{name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            handles[key] = path.open("w", newline="")
        return handles[key]

    batch_path = output_dir / "batch" / f"batch-{rank:05d}.csv"
    batch_path.parent.mkdir(parents=True, exist_ok=True)
    index = plan.decision.index() if plan.decision.problem_type != pre.REGRESSION else None
    try:
        with batch_path.open("w", newline="") as batch:
            for chunk in chunks(shard_pieces(files, rank, count), header, target, options.chunk_rows):
                data = chunk[labelled_mask(chunk[target])]
                if data.empty:
                    continue
                keys = label_keys(data[target])
                columns = {name: Cells(data[name]) for name in data.columns}
                hashes = row_hashes(columns, target, keys)
                keep = ~np.isin(hashes, drop)
                if repeated.size:
                    for i in np.flatnonzero(keep & np.isin(hashes, repeated)):
                        h = int(hashes[i])
                        keep[i] = h not in seen
                        seen.add(h)
                if not keep.all():
                    data, keys, hashes = data[keep], keys[keep], hashes[keep]
                    columns = None
                if data.empty:
                    continue
                features = _encode(plan, data, columns)
                if index is None:
                    labels = _numbers(data[target])
                else:
                    labels = keys.map(index).to_numpy(dtype=np.int64)
                split = split_of(hashes, options)
                parts = train_part_of(hashes, options.train_shards)
                for i, name in enumerate(SPLITS):
                    rows = split == i
                    if not rows.any():
                        continue
                    if name == "train":
                        for part in np.unique(parts[rows]):
                            chosen = rows & (parts == part)
                            _append(handle(name, int(part)), labels[chosen], features[chosen])
                    else:
                        _append(handle(name, 0), labels[rows], features[rows])
                    written[name] += int(rows.sum())
                test = split == 2
                if test.any():
                    data.loc[test, plan.input_columns].to_csv(batch, header=False, index=False)
    finally:
        for h in handles.values():
            h.close()
    for name in ("validation", "test"):  # every instance writes its files, empty or not
        if (name, 0) not in handles:
            handle(name, 0).close()
    return written


def _encode(plan: Plan, data: pd.DataFrame, columns: dict[str, Cells] | None) -> np.ndarray:
    """The columns as the in-memory engine hands them to ColumnEncoding.transform: numeric ones as
    numbers with infinite and stray text cells missing (feature_rules), the others as read."""
    frame = {}
    for enc in plan.encodings:
        cells = data[enc.name]
        if enc.kind == "numeric":
            values = (columns[enc.name] if columns else Cells(cells)).numbers()
            values[np.isinf(values)] = np.nan
            frame[enc.name] = pd.Series(values, index=data.index)
        else:
            frame[enc.name] = cells
    return pre.transform(plan.encodings, pd.DataFrame(frame, index=data.index))


def _append(handle, labels: np.ndarray, features: np.ndarray) -> None:
    buffer = io.StringIO()
    pre._write_csv_to(buffer, labels, features)
    handle.write(buffer.getvalue())


# ---------------------------------------------------------------------------------------------
# The stages as the job runs them


def resource_rank(path: Path | None) -> tuple[int, int, str]:
    """(rank, count, host) from SageMaker's resourceconfig.json; (0, 1, 'algo-1') without one."""
    if path is None or not path.is_file():
        return 0, 1, "algo-1"
    config = json.loads(path.read_text())
    hosts = sorted(config.get("hosts") or ["algo-1"])
    host = config.get("current_host", hosts[0])
    return hosts.index(host), len(hosts), host


def write_partial(partial: Partial, directory: Path, host: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PARTIAL_FILE.format(host=host)
    with path.open("wb") as handle:
        pickle.dump(partial, handle, protocol=4)
    return path


def read_partials(directory: Path) -> list[Partial]:
    """Every instance's partial, in rank order (algo-1, algo-2, ..., algo-10: by number)."""
    files = sorted(directory.rglob(PARTIAL_FILE.format(host="*")),
                   key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])
    if not files:
        raise pre.NoInputFilesError(f"No statistics-*.pkl under {directory}: run the statistics stage first.")
    partials = []
    for path in files:
        with path.open("rb") as handle:
            partials.append(pickle.load(handle))  # written by this job's own statistics stage
    return partials


def write_plan_outputs(plan: Plan, output_dir: Path, plan_dir: Path | None) -> None:
    """schema.json, baseline.json and the serving archives (and the plan, for the transform stage)."""
    parts = {"schema": plan.schema, "baseline": plan.baseline, "statistics": plan.monitor[0],
             "constraints": plan.monitor[1], **pre.serving_package().serving_archives(plan.schema)}
    for key, value in parts.items():
        path = output_dir / pre.OUTPUT_FILES[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, bytes):
            path.write_bytes(value)
        else:
            path.write_text(json.dumps(value, indent=2) + "\n")
    if plan_dir is not None:
        plan_dir.mkdir(parents=True, exist_ok=True)
        with (plan_dir / PLAN_FILE).open("wb") as handle:
            pickle.dump(plan, handle, protocol=4)


def read_plan(plan_dir: Path) -> Plan:
    path = plan_dir / PLAN_FILE if plan_dir.is_dir() else plan_dir
    if not path.is_file():
        raise pre.NoInputFilesError(f"No {PLAN_FILE} at {plan_dir}: run the merge stage first.")
    with path.open("rb") as handle:
        return pickle.load(handle)  # written by this pipeline's merge stage


def run(options: pre.Options) -> dict[str, Any] | None:
    """One stage (or all three in this process) of the chunked engine; the schema when written."""
    rank, count, host = resource_rank(options.resource_config)
    stage = options.stage
    log.info("chunked engine: stage %s on %s (instance %d of %d), %d rows per chunk", stage, host, rank + 1, count,
             options.chunk_rows)
    if stage == "statistics":
        partial = statistics(options, rank, count)
        write_partial(partial, options.output_dir / "statistics", host)
        return None
    if stage == "merge":
        partials = read_partials(options.input_dir if options.statistics_dir is None else options.statistics_dir)
        plan = merge(partials, options)
        write_plan_outputs(plan, options.output_dir, options.output_dir / "plan")
        return plan.schema
    if stage == "transform":
        plan = read_plan(options.statistics_dir)
        plan = _with_paths(plan, options)
        written = transform(plan, rank, count, options.output_dir)
        log.info("%s wrote train/validation/test = %d/%d/%d rows", host, *written.values())
        return None
    # all: one instance, every stage here, the outputs staged and renamed into place when complete
    partial = statistics(options, 0, 1)
    plan = merge([partial], options)
    staging = pre.staging_dir(options.output_dir)
    try:
        write_plan_outputs(plan, staging, None)
        written = transform(plan, 0, 1, staging)
        pre.promote(staging, options.output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("%s problem; %d features; train/validation/test = %d/%d/%d rows", plan.decision.problem_type,
             len(plan.schema["feature_names"]), *written.values())
    return plan.schema


def _with_paths(plan: Plan, options: pre.Options) -> Plan:
    """The plan with this instance's input folder (the merge ran elsewhere, with its own paths)."""
    plan.options = replace(plan.options, input_dir=options.input_dir, output_dir=options.output_dir,
                                           chunk_rows=options.chunk_rows)
    return plan
