"""The training baseline in SageMaker Model Monitor's formats (statistics.json, constraints.json), built
by mergeable accumulators so it can be computed chunk by chunk or shard by shard.

    acc = BaselineAccumulator({"sex": "categorical", "length": "numeric", ...})
    for chunk in chunks:            # any split of the raw training rows, any order
        acc.update(chunk)           # a DataFrame of raw feature cells (pre-encoding)
    acc.merge(other_shard_acc)      # shards computed elsewhere
    statistics, constraints = acc.finish(drift_threshold=0.1)

What each accumulator keeps, all exactly mergeable:
  * numeric: present/missing counts, sum, min, max, Welford mean and M2 (merged by Chan's formula),
    whether every value is whole (Integral vs Fractional), and a bounded uniform sample of the values
    (``SAMPLE_SIZE``): a bottom-k sample keyed by a hash of the whole row, so the sample - and with it
    the whole baseline - is the same however the rows were chunked or sharded, and two shards merge by
    keeping the k smallest keys of their union. The sample is the mergeable sketch: the 10 equal-width
    ``kll`` buckets Model Monitor shows are counted on it (exact when the data fits in it, an estimate
    scaled to the true count otherwise, as KLL's are), and drift.py runs its KS test and cuts its PSI
    bins on it. It is stored in statistics.json under ``distribution.sample`` (Model Monitor's format
    leaves room for custom statistics).
  * categorical: present/missing counts and the count of each category (trimmed and case-folded, the
    key the model's encoder uses - preprocess._category_keys), bounded at ``MAX_CATEGORIES``.

Standard library, numpy and pandas only: it runs in the scikit-learn processing image, inside
preprocess.py's job and inside drift.py's.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL = "numeric", "categorical"
INTEGRAL, FRACTIONAL, STRING = "Integral", "Fractional", "String"
SAMPLE_SIZE = 5000  # values kept per numeric feature: KS and PSI bins need no more for 10 bins
BUCKETS = 10  # Model Monitor materialises its KLL distribution in 10 buckets
MAX_CATEGORIES = 10_000  # distinct categories counted per feature; more are counted as one overflow
MAX_DOMAIN = 1_000  # a feature with at most this many categories gets string_constraints.domains
MISSING = "__missing__"
DEFAULT_DRIFT_THRESHOLD = 0.1
DEFAULT_SIGNIFICANCE = 0.001
DEFAULT_DATATYPE_THRESHOLD = 0.1  # Model Monitor's default datatype_check_threshold
DEFAULT_DOMAIN_THRESHOLD = 0.1  # and domain_content_threshold
DEFAULT_COMPLETENESS_TOLERANCE = 0.05
SAMPLE_METHOD = "bottom-k uniform sample keyed by a hash of the row"


class BaselineError(ValueError):
    """The rows or the accumulators cannot make a baseline; the message says why."""


def category_keys(series: pd.Series) -> pd.Series:
    """Each cell's category as the encoder keys it (preprocess._category_keys): trimmed and case-folded;
    missing or blank cells are NaN here (counted as missing, not as a category)."""
    values = series.astype(object)
    present = values.notna()
    keys = values.where(present, "").map(str).str.strip().str.casefold()
    return keys.where(present & (keys != ""))


def row_keys(cells: pd.DataFrame) -> np.ndarray:
    """A pseudo-random uint64 per row from its decoded cells alone (numbers as float64, categories as
    keys), not its position or chunk or the dtype pandas guessed for a chunk, so a bottom-k sample by
    these keys does not depend on how the rows were split."""
    return pd.util.hash_pandas_object(cells, index=False).to_numpy(dtype=np.uint64)


@dataclass
class NumericAccumulator:
    present: int = 0
    missing: int = 0
    total: float = 0.0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean (Welford)
    low: float = math.inf
    high: float = -math.inf
    integral: bool = True
    keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    sample_size: int = SAMPLE_SIZE

    def update(self, values: np.ndarray, keys: np.ndarray) -> None:
        finite = np.isfinite(values)
        self.missing += int((~finite).sum())
        values, keys = values[finite], keys[finite]
        if values.size:
            self._combine(values.size, float(values.sum()), float(values.mean()),
                          float(((values - values.mean()) ** 2).sum()), float(values.min()), float(values.max()),
                          bool(np.all(np.mod(values, 1) == 0)), keys, values)

    def merge(self, other: NumericAccumulator) -> None:
        self.missing += other.missing
        if other.present:
            self._combine(other.present, other.total, other.mean, other.m2, other.low, other.high, other.integral,
                          other.keys, other.values)

    def _combine(self, n: int, total: float, mean: float, m2: float, low: float, high: float, integral: bool,
                 keys: np.ndarray, values: np.ndarray) -> None:
        joint = self.present + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.present * n / joint  # Chan et al.'s parallel variance
        self.mean += delta * n / joint
        self.present, self.total = joint, self.total + total
        self.low, self.high = min(self.low, low), max(self.high, high)
        self.integral = self.integral and integral
        keys = np.concatenate([self.keys, keys])
        values = np.concatenate([self.values, values])
        if keys.size > self.sample_size:
            # ties broken by value so the kept set never depends on the order rows arrived in
            keep = np.lexsort((values, keys))[:self.sample_size]
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values

    def statistics(self, name: str) -> dict[str, Any]:
        common = {"num_present": self.present, "num_missing": self.missing}
        if not self.present:
            return {"name": name, "inferred_type": FRACTIONAL,
                    "numerical_statistics": {"common": common, "mean": None, "sum": 0.0, "std_dev": None,
                                             "min": None, "max": None}}
        sample = np.sort(self.values)
        return {
            "name": name,
            "inferred_type": INTEGRAL if self.integral else FRACTIONAL,
            "numerical_statistics": {
                "common": common,
                "mean": self.mean,
                "sum": self.total,
                "std_dev": math.sqrt(self.m2 / self.present),  # population, as Deequ (Model Monitor) computes it
                "min": self.low,
                "max": self.high,
                "distribution": {
                    "kll": {"buckets": kll_buckets(sample, self.low, self.high, self.present)},
                    "sample": {"method": SAMPLE_METHOD, "size": int(sample.size), "capacity": self.sample_size,
                               "values": sample.tolist()},
                },
            },
        }


def kll_buckets(sample: np.ndarray, low: float, high: float, present: int) -> list[dict[str, float]]:
    """Model Monitor's 10 equal-width buckets from min to max, counted on the sample and scaled to the
    present count (largest remainder, so the counts add up exactly)."""
    if high == low:
        return [{"lower_bound": low, "upper_bound": high, "count": float(present)}]
    edges = np.linspace(low, high, BUCKETS + 1)
    counts, _ = np.histogram(sample, bins=edges)
    scaled = counts * (present / max(sample.size, 1))
    whole = np.floor(scaled)
    short = int(present - whole.sum())
    whole[np.argsort(-(scaled - whole), kind="stable")[:short]] += 1
    return [{"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(whole[i])}
            for i in range(BUCKETS)]


@dataclass
class CategoricalAccumulator:
    present: int = 0
    missing: int = 0
    counts: Counter = field(default_factory=Counter)
    overflow: int = 0  # rows whose category arrived after MAX_CATEGORIES were already counted

    def update(self, keys: pd.Series) -> None:
        present = keys.dropna()
        self.missing += len(keys) - len(present)
        self.present += len(present)
        self._add(present.value_counts().items())

    def merge(self, other: CategoricalAccumulator) -> None:
        self.present += other.present
        self.missing += other.missing
        self.overflow += other.overflow
        self._add(other.counts.items())

    def _add(self, items) -> None:
        for key, count in items:
            if key in self.counts or len(self.counts) < MAX_CATEGORIES:
                self.counts[key] += int(count)
            else:
                self.overflow += int(count)

    def statistics(self, name: str) -> dict[str, Any]:
        buckets = [{"value": key, "count": float(count)}
                   for key, count in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return {"name": name, "inferred_type": STRING,
                "string_statistics": {"common": {"num_present": self.present, "num_missing": self.missing},
                                      "distinct_count": float(len(self.counts) + (1 if self.overflow else 0)),
                                      "distribution": {"categorical": {"buckets": buckets}}}}


class BaselineAccumulator:
    """Mergeable statistics of the raw training features; ``columns`` maps each monitored feature to
    "numeric" or "categorical" in the order the table has them."""

    def __init__(self, columns: dict[str, str], sample_size: int = SAMPLE_SIZE) -> None:
        unknown = {name: kind for name, kind in columns.items() if kind not in (NUMERIC, CATEGORICAL)}
        if unknown:
            raise BaselineError(f"Feature kinds must be {NUMERIC!r} or {CATEGORICAL!r}; got {unknown}.")
        if not columns:
            raise BaselineError("A baseline needs at least one feature column.")
        self.columns = dict(columns)
        self.rows = 0
        self.features: dict[str, NumericAccumulator | CategoricalAccumulator] = {
            name: NumericAccumulator(sample_size=sample_size) if kind == NUMERIC else CategoricalAccumulator()
            for name, kind in columns.items()}

    def update(self, chunk: pd.DataFrame) -> BaselineAccumulator:
        absent = [name for name in self.columns if name not in chunk.columns]
        if absent:
            raise BaselineError(f"The rows lack the feature column(s) {absent}; every chunk must carry "
                                f"{list(self.columns)}.")
        if chunk.empty:
            return self
        cells = pd.DataFrame({name: pd.to_numeric(chunk[name], errors="coerce").astype(np.float64)
                              if kind == NUMERIC else category_keys(chunk[name])
                              for name, kind in self.columns.items()})
        keys = row_keys(cells)
        for name, acc in self.features.items():
            if isinstance(acc, NumericAccumulator):
                acc.update(cells[name].to_numpy(dtype=np.float64), keys)
            else:
                acc.update(cells[name])
        self.rows += len(cells)
        return self

    def merge(self, other: BaselineAccumulator) -> BaselineAccumulator:
        if other.columns != self.columns:
            raise BaselineError(f"Cannot merge baselines of different features: {list(self.columns)} and "
                                f"{list(other.columns)} (kinds {self.columns} vs {other.columns}).")
        for name, acc in self.features.items():
            acc.merge(other.features[name])
        self.rows += other.rows
        return self

    def finish(self, drift_threshold: float = DEFAULT_DRIFT_THRESHOLD,
               significance: float = DEFAULT_SIGNIFICANCE) -> tuple[dict[str, Any], dict[str, Any]]:
        """(statistics.json, constraints.json) as Model Monitor writes them."""
        if not self.rows:
            raise BaselineError("No rows were added to the baseline; feed it the training rows.")
        if not 0 < drift_threshold:
            raise BaselineError(f"drift_threshold must be a positive PSI value (0.1 is usual), got {drift_threshold}.")
        statistics = {"version": 0, "dataset": {"item_count": self.rows},
                      "features": [acc.statistics(name) for name, acc in self.features.items()]}
        return statistics, constraints_for(statistics, drift_threshold, significance)


def constraints_for(statistics: dict[str, Any], drift_threshold: float = DEFAULT_DRIFT_THRESHOLD,
                    significance: float = DEFAULT_SIGNIFICANCE) -> dict[str, Any]:
    """constraints.json suggested from statistics.json, as Model Monitor's baselining job suggests it.
    PSI is the distance compared with comparison_threshold (numeric) and categorical_comparison_threshold;
    significance_level is the KS / chi-square test level a drift must also pass (drift.py)."""
    features = []
    for feature in statistics["features"]:
        kind = "numerical_statistics" if feature["inferred_type"] != STRING else "string_statistics"
        stats = feature[kind]
        common = stats["common"]
        rows = common["num_present"] + common["num_missing"]
        entry: dict[str, Any] = {"name": feature["name"], "inferred_type": feature["inferred_type"],
                                 "completeness": common["num_present"] / rows if rows else 0.0}
        if kind == "numerical_statistics":
            entry["num_constraints"] = {"is_non_negative": stats["min"] is not None and stats["min"] >= 0}
        else:
            buckets = stats["distribution"]["categorical"]["buckets"]
            if stats["distinct_count"] <= MAX_DOMAIN and len(buckets) == stats["distinct_count"]:
                entry["string_constraints"] = {"domains": sorted(b["value"] for b in buckets)}
        features.append(entry)
    return {
        "version": 0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": DEFAULT_DATATYPE_THRESHOLD,
            "domain_content_threshold": DEFAULT_DOMAIN_THRESHOLD,
            "completeness_tolerance": DEFAULT_COMPLETENESS_TOLERANCE,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": drift_threshold,
                "comparison_method": "PSI",
                "categorical_comparison_threshold": drift_threshold,
                "categorical_drift_method": "PSI",
                "significance_level": significance,
            },
        },
    }


def monitored_columns(schema: dict[str, Any]) -> dict[str, str]:
    """The features a baseline watches, from preprocess's schema.json: the source columns the model
    encodes, numeric or categorical. Date columns are left out (every new day is a new value, so they
    always "drift"), as are dropped columns (IDs differ by design)."""
    return {c["name"]: c["kind"] for c in schema["source_columns"] if c["kind"] in (NUMERIC, CATEGORICAL)}


def baseline_of(frame: pd.DataFrame, columns: dict[str, str], drift_threshold: float = DEFAULT_DRIFT_THRESHOLD,
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """statistics.json and constraints.json of a whole in-memory table (one chunk)."""
    return BaselineAccumulator(columns).update(frame).finish(drift_threshold)
