"""The chunked engine's mergeable statistics: what one instance learns from its shard, combined in
rank order by the merge."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

if __package__:
    from . import chunked_reading as reading
    from . import feature_rules, monitor_baseline
    from . import preprocess as pre
    from . import problem_rules as rules
else:
    import chunked_reading as reading
    import feature_rules
    import monitor_baseline
    import preprocess as pre
    import problem_rules as rules

VALUE_CAP = 100_000  # distinct numbers counted exactly per column; beyond, log buckets
CATEGORY_CAP = 100_000  # distinct text cells tracked per column; beyond, the column is dropped
SKETCH_GAMMA = 1.002


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
    split_rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(reading.SPLITS, 0))
    class_counts: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in reading.SPLITS})
    label_values: Values = field(default_factory=Values)  # regression: the train split's targets
    label_sum: float = 0.0
    hashes: list[np.ndarray] = field(default_factory=list)  # of labelled rows, in row order

    def merge(self, other: Partial) -> None:
        self.rows += other.rows
        _merge_target(self.target, other.target)
        for name, stats in other.columns.items():
            self.columns[name].merge(stats)
        for split in reading.SPLITS:
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
