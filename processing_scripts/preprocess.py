"""Preprocess raw tabular CSV for SageMaker's built-in XGBoost: clean, encode, split.

    python3 preprocess.py --input-dir /opt/ml/processing/input/raw --output-dir /opt/ml/processing/output \
        --target-column deposit [--problem-type auto|regression|binary|multiclass]
        [--validation-fraction 0.15] [--test-fraction 0.15] [--seed 42] [--max-onehot-cardinality 20]
        [--drift-threshold 0.1] [--failure-file /opt/ml/output/message]

Reads every *.csv under --input-dir (or the one file it names), sorted; never modifies it. Writes
  train/train.csv, validation/validation.csv, test/test.csv   label first, no header
  batch/batch.csv                                              the test rows as uploaded (input
                                                               columns in file order, no target, no
                                                               header): what the endpoint takes
  schema/schema.json                                           features, encodings, labels, counts
  schema/baseline.json                                         per-feature statistics for drift checks
  schema/statistics.json, schema/constraints.json              Model Monitor's baseline of the raw train
                                                               features (monitor_baseline.py)
  featurizer/model.tar.gz, decoder/model.tar.gz                the serving pipeline's first and last
                                                               models (serving/package.py)
under --output-dir, staged under a temporary name and renamed into place only when all are complete.
Bad input stops with a PreprocessError subclass; its `<ErrorClass>: <message>` is the last line of
stderr (and the content of --failure-file), the exit code is 1 and the output folder is untouched.

The target: problem_rules.py (beside this file) decides the problem type and the classes from the
target's cells as text, by the rule the validation Lambda applies too; rows without a target are
dropped and counted; fewer than problem_rules.MIN_LABELLED_ROWS labelled rows, or a class with fewer
than MIN_ROWS_PER_CLASS rows, stop with InsufficientData.

Column hygiene, each decision recorded in schema.json ("column_decisions", and "report": one line
each for a person): ID-like columns (text unique per row; unique integers that are a monotonic
index or named like an identifier) are dropped; date and datetime text columns become year, month,
day of week and days since the earliest train date; constant columns are dropped; category values
are trimmed and case-folded ("Pro", "pro " and "PRO" are one category, named by its most frequent
spelling), the merged spellings reported.

Encoders are fitted on the train split only: numeric columns are imputed with the train median;
categorical columns get a `__missing__` category, then one-hot encoding up to
--max-onehot-cardinality categories and frequency encoding above it (unseen categories encode to 0).
`transform_with_schema(schema, frame)` re-applies all of it from schema.json alone.

Two engines, the same outputs contract: tables up to IN_MEMORY_MAX_BYTES on one instance are read
whole (below); larger ones, or several instances, go through chunked.py (--engine chunked): bounded
memory, statistics per instance's byte range, one merge, transform chunk by chunk, the split by a hash
of each row (its docstring says what it decides differently and why). --stage runs one of its stages
(the sharded preprocessing's three jobs); --train-shards N writes the train split in N files per
instance, for a training job's ShardedByS3Key channel.

The job's code is this file and problem_rules.py (numpy, pandas, scikit-learn), run in the
SageMaker scikit-learn image, whose pandas is older than the project's. It
sticks to APIs that did not change across pandas 1.x-3.x (no DataFrame.map, no lineterminator=,
no object-dtype checks, which pandas 3's str dtype breaks); its outputs on the sample data and the
test suite's user tables are byte-identical under pandas 1.5.3/scikit-learn 1.2.2 and pandas
3.1.1/scikit-learn 1.9.1.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__:  # imported from the source tree (tests, benchmarks)
    from . import feature_rules, monitor_baseline
    from . import problem_rules as rules
else:  # run as the job's script: the rules modules sit beside it in the job's code folder
    import feature_rules
    import monitor_baseline
    import problem_rules as rules

log = logging.getLogger("preprocess")

REGRESSION, BINARY, MULTICLASS = rules.REGRESSION, rules.BINARY, rules.MULTICLASS
PROBLEM_TYPES = rules.PROBLEM_TYPES
MISSING = "__missing__"
BASELINE_QUANTILES = (1, 5, 25, 50, 75, 95, 99)
BASELINE_TOP_CATEGORIES = 50
HISTOGRAM_BINS = 10
SCHEMA_VERSION = 1
OUTPUT_FILES = {
    "train": "train/train.csv",
    "validation": "validation/validation.csv",
    "test": "test/test.csv",
    "batch": "batch/batch.csv",
    "schema": "schema/schema.json",
    "baseline": "schema/baseline.json",
    # Model Monitor's baseline of the raw training features (monitor_baseline.py), read by drift.py
    "statistics": "schema/statistics.json",
    "constraints": "schema/constraints.json",
    "featurizer": "featurizer/model.tar.gz",  # serving/package.py: the serial pipeline's first model
    "decoder": "decoder/model.tar.gz",  # and its last: scores -> the table's own labels
}
ENGINES = ("auto", "memory", "chunked")
STAGES = ("all", "statistics", "merge", "transform")
# Up to this much CSV is preprocessed in memory (exact stratified shuffle split; peak ~15x the bytes);
# more, or several instances, takes the chunked engine (chunked.py), whose peak is set by --chunk-rows.
IN_MEMORY_MAX_BYTES = 64 * 2**20
OBJECTIVES = {
    REGRESSION: ("reg:squarederror", "validation:rmse"),
    BINARY: ("binary:logistic", "validation:auc"),
    MULTICLASS: ("multi:softprob", "validation:mlogloss"),
}


# ---------------------------------------------------------------------------------------------
# Errors: one class per thing that can be wrong with the input, each saying what to do.


class PreprocessError(Exception):
    """Base of every error caused by the input data or the arguments."""


class InvalidArgumentError(PreprocessError):
    pass


class NoInputFilesError(PreprocessError):
    pass


class EmptyInputError(PreprocessError):
    pass


class HeaderOnlyError(PreprocessError):
    pass


class UnparseableFileError(PreprocessError):
    pass


class DuplicateColumnError(PreprocessError):
    pass


class SchemaMismatchError(PreprocessError):
    pass


class MissingTargetColumnError(PreprocessError):
    pass


class UnusableTarget(PreprocessError):
    """The shared problem rules refuse the target (problem_rules.UnusableTarget), by the same name
    the validation Lambda uses."""


class InsufficientData(PreprocessError):
    """Too few labelled rows, or rows of a class, to split; the message gives the counts."""


class NoFeaturesError(PreprocessError):
    pass


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class Options:
    input_dir: Path
    output_dir: Path
    target_column: str
    problem_type: str = "auto"
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 42
    max_onehot_cardinality: int = 20
    drift_threshold: float = monitor_baseline.DEFAULT_DRIFT_THRESHOLD
    # the engine (chunked.py): memory for small tables on one instance, chunked otherwise
    engine: str = "auto"
    stage: str = "all"  # chunked engine: all | statistics | merge | transform
    chunk_rows: int = 100_000
    train_shards: int = 1  # train files (a training job's ShardedByS3Key channel needs one per host, or more)
    statistics_dir: Path | None = None  # merge: the partials; transform: the plan
    resource_config: Path | None = None  # SageMaker's resourceconfig.json: this instance's rank

    def validate(self) -> None:
        if self.problem_type not in PROBLEM_TYPES:
            raise InvalidArgumentError(f"--problem-type {self.problem_type!r} is not one of {PROBLEM_TYPES}.")
        for name, value in (("validation", self.validation_fraction), ("test", self.test_fraction)):
            if not 0 < value < 1:
                raise InvalidArgumentError(f"--{name}-fraction {value} must be between 0 and 1 (exclusive).")
        if self.validation_fraction + self.test_fraction >= 1:
            raise InvalidArgumentError("--validation-fraction plus --test-fraction must leave rows for "
                                       f"training; they sum to {self.validation_fraction + self.test_fraction}.")
        if self.max_onehot_cardinality < 0:
            raise InvalidArgumentError("--max-onehot-cardinality must be 0 or more.")
        if not self.drift_threshold > 0:
            raise InvalidArgumentError(f"--drift-threshold {self.drift_threshold} must be a positive PSI (0.1 is usual).")
        if self.engine not in ENGINES:
            raise InvalidArgumentError(f"--engine {self.engine!r} is not one of {ENGINES}.")
        if self.stage not in STAGES:
            raise InvalidArgumentError(f"--stage {self.stage!r} is not one of {STAGES}.")
        if self.stage != "all" and self.engine == "memory":
            raise InvalidArgumentError(f"--stage {self.stage} needs the chunked engine; drop --engine memory.")
        if self.stage in ("merge", "transform") and self.statistics_dir is None:
            raise InvalidArgumentError(f"--stage {self.stage} needs --statistics-dir (the statistics stage's "
                                       "partials for merge, the merge stage's plan for transform).")
        if self.chunk_rows < 1000 or self.train_shards < 1:
            raise InvalidArgumentError("--chunk-rows must be at least 1000 and --train-shards at least 1.")

    def chunked(self) -> bool:
        """Whether the bounded-memory engine runs: asked for, a stage of it, several instances, or a table
        larger than the in-memory engine takes."""
        if self.engine != "auto":
            return self.engine == "chunked"
        if self.stage != "all" or _instances(self.resource_config) > 1:
            return True
        return sum(p.stat().st_size for p in list_input_files(self.input_dir)) > IN_MEMORY_MAX_BYTES


def _instances(resource_config: Path | None) -> int:
    try:
        return len(json.loads(resource_config.read_text()).get("hosts") or [1]) if resource_config else 1
    except (OSError, ValueError):
        return 1


def list_input_files(input_dir: Path) -> list[Path]:
    if input_dir.is_file():
        return [input_dir]
    if not input_dir.is_dir():
        raise NoInputFilesError(f"Input {input_dir} does not exist. Point --input-dir at the raw CSV "
                                "file or at the folder (S3 prefix) that holds it.")
    files = sorted(p for p in input_dir.rglob("*.csv") if p.is_file())
    if not files:
        raise NoInputFilesError(f"No *.csv files under {input_dir}. Upload the raw data as .csv files.")
    return files


def _display(path: Path, root: Path) -> str:
    return path.name if root.is_file() else str(path.relative_to(root))


def raw_header(path: Path, shown: str) -> list[str]:
    """The header's column names as pandas reads them (callers trim them); named errors for bad headers."""
    with path.open("rb") as handle:
        head = handle.read(65536)
        handle.seek(0)
        first_line = handle.readline()  # whole, however wide the header
    if not head.strip():
        raise EmptyInputError(f"{shown} is empty. Upload a CSV with a header row and data rows.")
    if b"\x00" in head:
        raise UnparseableFileError(f"{shown} is binary, not CSV text (compressed or Parquet?). "
                                   "Upload plain UTF-8 CSV.")
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = first_line.decode("latin-1")  # read_csv reports the encoding problem with its position
    # skipinitialspace as read_csv does, so these are the names pandas gives the columns
    raw = next(csv.reader([text.rstrip("\r\n")], skipinitialspace=True), [])
    header = [name.strip() for name in raw]
    duplicates = sorted({n for n in header if header.count(n) > 1})
    if duplicates:
        raise DuplicateColumnError(f"{shown} has duplicate column names {duplicates}. "
                                   "Rename the columns so every name is unique.")
    if any(not n for n in header):
        raise UnparseableFileError(f"{shown} has an empty column name in its header. "
                                   "Name every column in the first line.")
    return raw


def read_csv_file(path: Path, shown: str, text_columns: list[str] = ()) -> pd.DataFrame:
    """The file as pandas infers it, except ``text_columns`` (raw names), kept as the cells' text."""
    try:
        # round_trip: older pandas' default parser drops the last digits of 17-digit floats
        frame = pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=True, float_precision="round_trip",
                            dtype={name: object for name in text_columns} or None)
    except UnicodeDecodeError as err:
        raise UnparseableFileError(f"{shown} is not UTF-8 text ({err.reason} at byte {err.start}). "
                                   "Save it as UTF-8 CSV.") from None
    except pd.errors.EmptyDataError:
        raise EmptyInputError(f"{shown} is empty. Upload a CSV with a header row and data rows.") from None
    except (pd.errors.ParserError, ValueError) as err:
        detail = " ".join(str(err).split())
        raise UnparseableFileError(f"{shown} could not be parsed as CSV: {detail}. "
                                   "Check the delimiter (comma) and quoting of that line.") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def read_raw(options: Options) -> tuple[pd.DataFrame, list[str]]:
    """Every input file, concatenated. The target column is read as text: the shared problem rules
    judge its cells as written (so "1" and "1.0", "Yes" and "yes " are judged as the Lambda does)."""
    files = list_input_files(options.input_dir)
    frames, names, header0 = [], [], None
    for path in files:
        shown = _display(path, options.input_dir)
        raw = raw_header(path, shown)
        header = [name.strip() for name in raw]
        target = [r for r, name in zip(raw, header) if name == options.target_column]
        if header0 is None:
            header0 = header
        elif header != header0:
            raise SchemaMismatchError(f"{shown} has columns {header}, but {names[0]} has {header0}. "
                                      "Every input file must have the same header.")
        frame = read_csv_file(path, shown, target)
        if list(frame.columns) != header:  # quoting the csv module and pandas read differently
            raise UnparseableFileError(f"{shown}: could not read a consistent header. Check its quoting.")
        frames.append(frame)
        names.append(shown)
    data = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(data) == 0:
        raise HeaderOnlyError(f"{', '.join(names)} has a header but no data rows. Upload the data rows too.")
    return data, names


# ---------------------------------------------------------------------------------------------
# Target and problem type: the shared rule (problem_rules.py), applied to the target's text


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _integer_valued(values: pd.Series) -> bool:
    return bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))


def decide_target(cells: pd.Series, requested: str, name: str) -> rules.TargetDecision:
    try:
        return rules.decide(rules.TargetSummary.of(cells.tolist()), requested, name, "the input")
    except rules.UnusableTarget as err:
        raise UnusableTarget(str(err)) from None


def encode_target(cells: pd.Series, decision: rules.TargetDecision) -> np.ndarray:
    if decision.problem_type == REGRESSION:
        return np.asarray([float(str(c).strip()) for c in cells], dtype=np.float64)
    index = decision.index()
    return np.asarray([index[rules.label_key(c)] for c in cells], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Split


def split_sizes(n: int, validation_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    n_test = math.ceil(n * test_fraction)
    n_val = math.ceil(n * validation_fraction)
    return n - n_test - n_val, n_val, n_test


def _split_fits(n: int, options: Options, n_classes: int) -> bool:
    n_train, n_val, n_test = split_sizes(n, options.validation_fraction, options.test_fraction)
    return min(n_train, n_val, n_test) >= max(1, n_classes)


def split_indices(y: np.ndarray, problem_type: str, options: Options) -> tuple[np.ndarray, ...]:
    """Reproducible train/validation/test row positions, stratified for classification."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    classification = problem_type != REGRESSION
    n_classes = len(np.unique(y)) if classification else 0
    if not _split_fits(n, options, n_classes):
        needed = next((m for m in range(n + 1, 100_000) if _split_fits(m, options, n_classes)), None)
        raise InsufficientData(
            f"{n} labelled rows, but a {options.validation_fraction}/{options.test_fraction} validation/test split "
            f"needs at least {needed} rows{' so each split holds every class' if classification else ''}. "
            "Provide more labelled rows.")
    _, n_val, n_test = split_sizes(n, options.validation_fraction, options.test_fraction)
    positions = np.arange(n)
    rest, test = train_test_split(positions, test_size=n_test, random_state=options.seed,
                                  stratify=y if classification else None)
    train, val = train_test_split(rest, test_size=n_val, random_state=options.seed,
                                  stratify=y[rest] if classification else None)
    return train, val, test


# ---------------------------------------------------------------------------------------------
# Column hygiene: which columns are IDs, dates or constants. Decided once, recorded in schema.json;
# the transformation then only reads the schema.

# A column whose name says it identifies a row (customer_id, CustomerID, order_no, key, uuid, index).
ID_NAME = re.compile(r"(^|[^a-z])(id|ids|key|uuid|guid|index|idx|no|num|number)$|[a-z]Id$|ID$")
DATE_SHAPE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?Z?)?$")
# Tried in order; the first that reads the most values wins (month-first before day-first, as
# pandas guesses; a column whose days all exceed 12 reads day-first).
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M",
                "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S",
                "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y")
DATE_MIN_SHARE = 0.95  # of the non-missing values must read as dates; the rest are treated as missing
DATE_PARTS = ("year", "month", "dayofweek", "days_since_first")
MIN_ROWS_FOR_ID = 20  # below this, "unique per row" says little


def _text(series: pd.Series) -> pd.Series:
    """Non-missing cells as trimmed text."""
    values = series[series.notna()].astype(object)
    return values.map(str).str.strip()


def date_format(series: pd.Series) -> tuple[str, int] | None:
    """(strptime format, values it cannot read) when a text column holds dates, else None."""
    if _is_numeric(series) or pd.api.types.is_bool_dtype(series):
        return None
    values = _text(series)
    values = values[values != ""]
    looks_like_date = lambda v: bool(DATE_SHAPE.match(v))
    # a look at the first values settles most text columns without scanning them all
    if values.empty or values.iloc[:200].map(looks_like_date).mean() < DATE_MIN_SHARE:
        return None
    if values.map(looks_like_date).mean() < DATE_MIN_SHARE:
        return None
    best = None
    for fmt in DATE_FORMATS:
        read = int(pd.to_datetime(values, format=fmt, errors="coerce").notna().sum())
        if best is None or read > best[1]:
            best = (fmt, read)
    if best is None or best[1] < DATE_MIN_SHARE * len(values):
        return None
    return best[0], len(values) - best[1]


def id_reason(series: pd.Series) -> str | None:
    """Why a column identifies rows rather than describing them, or None."""
    n = len(series)
    if n < MIN_ROWS_FOR_ID or series.isna().any() or series.nunique() != n:
        return None
    if not _is_numeric(series):
        return "unique per row, an identifier"
    if not _integer_valued(series):
        return None  # unique measurements are features
    values = series.to_numpy(dtype=float)
    steps = np.diff(values)
    if np.all(steps > 0) or np.all(steps < 0):
        return "a monotonic integer index"
    if ID_NAME.search(str(series.name).strip()) or ID_NAME.search(str(series.name).strip().lower()):
        return "unique integers named like an identifier"
    return None


def plan_columns(features: pd.DataFrame) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Date columns (name -> format and unread count) and dropped ID-like columns, from the labelled
    rows in file order (no label is read, so deciding on every row leaks nothing)."""
    dates, dropped = {}, []
    for name in features.columns:
        found = date_format(features[name])
        if found:
            dates[name] = {"format": found[0], "unreadable": found[1]}
            continue
        why = id_reason(features[name])
        if why:
            dropped.append({"name": name, "reason": why})
    return dates, dropped


# ---------------------------------------------------------------------------------------------
# Features: fitted on train, applied to every split (and, from schema.json, to new data)


def _safe_name(name: str) -> str:
    # xgboost refuses feature names with [, ] or <
    return name.replace("[", "(").replace("]", ")").replace("<", "lt")


def _category_keys(series: pd.Series) -> pd.Series:
    """Each cell's category: trimmed and case-folded (problem_rules.category_key), missing or blank
    -> __missing__."""
    # computed once per distinct cell (a column has few): the string work per row costs far more
    codes, distinct = pd.factorize(series.astype(object), use_na_sentinel=True)
    keys = pd.Series(distinct, dtype=object).map(str).str.strip().str.casefold().to_numpy(dtype=object)
    keys = np.append(np.where(keys == "", MISSING, keys), MISSING)  # code -1 (missing) takes the last
    return pd.Series(keys[codes], index=series.index, dtype=object)


def date_decision(name: str, fmt: str, origin: pd.Timestamp, unread: int) -> dict[str, str]:
    """The report's line for a column read as dates (both engines write it)."""
    return {"column": name, "action": "read as dates",
            "detail": f"({fmt}) -> {', '.join(DATE_PARTS)} (day 0 = {origin.date()})"
                      + (f"; {unread} value(s) not read as dates are treated as missing" if unread else "")}


def _date_values(series: pd.Series, fmt: str) -> pd.Series:
    values = series.astype(object)
    text = values.where(values.notna(), "").map(str).str.strip()
    return pd.to_datetime(text, format=fmt, errors="coerce")


def _date_parts(series: pd.Series, fmt: str, origin: str) -> np.ndarray:
    when = _date_values(series, fmt)
    days = (when - pd.Timestamp(origin)) / pd.Timedelta(days=1)
    parts = [when.dt.year, when.dt.month, when.dt.dayofweek, days]
    return np.column_stack([pd.to_numeric(p, errors="coerce").to_numpy(dtype=np.float64) for p in parts])


@dataclass
class ColumnEncoding:
    """How one source column becomes one or more output features."""

    name: str
    kind: str  # numeric | categorical | date
    encoding: str  # passthrough | one_hot | frequency | date_parts
    impute_value: float | None = None
    categories: list[str] = field(default_factory=list)  # category keys (trimmed, case-folded)
    labels: list[str] = field(default_factory=list)  # the most frequent spelling of each category
    frequencies: dict[str, float] = field(default_factory=dict)
    missing_in_train: float = 0.0
    cardinality: int = 0
    date_format: str = ""
    origin: str = ""  # the earliest train date: day 0 of days_since_first
    part_impute_values: list[float] = field(default_factory=list)

    def output_names(self) -> list[str]:
        if self.encoding == "one_hot":
            return [_safe_name(f"{self.name}={label}") for label in self.labels]
        if self.kind == "date":
            return [_safe_name(f"{self.name}_{part}") for part in DATE_PARTS]
        return [_safe_name(self.name)]

    def transform(self, series: pd.Series) -> np.ndarray:
        if self.kind == "numeric":
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            return np.where(np.isnan(values), self.impute_value, values).reshape(-1, 1)
        if self.kind == "date":
            parts = _date_parts(series, self.date_format, self.origin)
            return np.where(np.isnan(parts), np.asarray(self.part_impute_values, dtype=np.float64), parts)
        keys = _category_keys(series).to_numpy()
        if self.encoding == "one_hot":
            return (keys.reshape(-1, 1) == np.asarray(self.categories, dtype=object)).astype(np.float64)
        return np.asarray([self.frequencies.get(k, 0.0) for k in keys], dtype=np.float64).reshape(-1, 1)

    def transform_value(self, value: Any) -> list[float]:
        """``transform`` of one cell, without pandas (dates excepted); must stay equal to it
        (tests/containers/test_featurizer.py checks every row of the samples)."""
        if self.kind == "numeric":
            number = math.nan if value is None else float(value)
            return [self.impute_value if math.isnan(number) else number]
        # the same key as _category_keys: trimmed, case-folded, and blank counts as missing
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        key = MISSING if missing else (rules.category_key(value) or MISSING)
        if self.encoding == "one_hot":
            return [1.0 if key == category else 0.0 for category in self.categories]
        return [self.frequencies.get(key, 0.0)]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "encoding": self.encoding,
                               "missing_fraction_train": self.missing_in_train}
        if self.kind == "numeric":
            out["imputation"] = {"strategy": "median", "value": self.impute_value}
        elif self.kind == "date":
            out["date_format"] = self.date_format
            out["origin"] = self.origin
            out["parts"] = list(DATE_PARTS)
            out["imputation"] = {"strategy": "median", "values": self.part_impute_values}
        else:
            out["imputation"] = {"strategy": "constant", "value": MISSING}
            out["cardinality"] = self.cardinality
            out["normalization"] = "trimmed and case-folded"
            if self.encoding == "one_hot":
                out["categories"] = self.categories
                out["labels"] = self.labels
            else:
                out["frequencies"] = self.frequencies
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnEncoding:
        imputation = data.get("imputation", {})
        return cls(name=data["name"], kind=data["kind"], encoding=data["encoding"],
                   impute_value=imputation.get("value") if data["kind"] == "numeric" else None,
                   categories=list(data.get("categories", [])),
                   labels=list(data.get("labels", data.get("categories", []))),
                   frequencies=dict(data.get("frequencies", {})),
                   missing_in_train=data.get("missing_fraction_train", 0.0),
                   cardinality=data.get("cardinality", 0),
                   date_format=data.get("date_format", ""), origin=data.get("origin", ""),
                   part_impute_values=list(imputation.get("values", [])) if data["kind"] == "date" else [])


def _spellings(series: pd.Series) -> dict[str, Counter]:
    """Category key -> the trimmed spellings seen, with their counts."""
    text = _text(series)
    text = text[text != ""]
    found: dict[str, Counter] = {}
    for spelling, count in text.value_counts().items():
        found.setdefault(rules.category_key(spelling), Counter())[spelling] += int(count)
    return found


def fit_encodings(train: pd.DataFrame, max_onehot: int, dates: dict[str, dict[str, Any]] | None = None,
                  ) -> tuple[list[ColumnEncoding], list[dict[str, str]], list[dict[str, Any]]]:
    """Encodings fitted on the train split, the columns dropped there, and each column's decision."""
    dates = dates or {}
    encodings, dropped, decisions = [], [], []
    for name in train.columns:
        series = train[name]
        missing = float(series.isna().mean())
        if missing == 1.0:
            dropped.append({"name": name, "reason": "every value is missing in the train split"})
            continue
        numeric = _is_numeric(series) or pd.api.types.is_bool_dtype(series)
        if (series if numeric or name in dates else _category_keys(series)).nunique(dropna=False) <= 1:
            dropped.append({"name": name, "reason": f"constant ({_text(series).iloc[0]!r} in every train row)"})
            continue
        if name in dates:
            fmt = dates[name]["format"]
            when = _date_values(series, fmt)
            origin = when.min()
            parts = _date_parts(series, fmt, str(origin))
            medians = [float(np.nanmedian(parts[:, i])) for i in range(parts.shape[1])]
            encodings.append(ColumnEncoding(name, "date", "date_parts", date_format=fmt, origin=str(origin),
                                            part_impute_values=medians, missing_in_train=missing))
            decisions.append(date_decision(name, fmt, origin, dates[name]["unreadable"]))
            continue
        if numeric:
            values = series.astype(float)
            encodings.append(ColumnEncoding(name, "numeric", "passthrough",
                                            impute_value=float(values.median()), missing_in_train=missing))
            continue
        keys = _category_keys(series)
        counts = keys.value_counts()
        cardinality = len(counts)
        spellings = _spellings(series)
        labels = {key: min(found.items(), key=lambda kv: (-kv[1], kv[0]))[0] for key, found in spellings.items()}
        merged = {labels[key]: sorted(found) for key, found in sorted(spellings.items()) if len(found) > 1}
        if merged:
            decisions.append({"column": name, "action": "spellings merged:",
                              "detail": "; ".join(f"{v} -> {k!r}" for k, v in merged.items())})
        if cardinality <= max_onehot:
            categories = sorted(counts.index)
            encodings.append(ColumnEncoding(name, "categorical", "one_hot", categories=categories,
                                            labels=[labels.get(k, k) for k in categories],
                                            missing_in_train=missing, cardinality=cardinality))
        else:
            freq = {str(k): float(v) / len(keys) for k, v in sorted(counts.items())}
            encodings.append(ColumnEncoding(name, "categorical", "frequency", frequencies=freq,
                                            missing_in_train=missing, cardinality=cardinality))
    if not encodings:
        raise NoFeaturesError("No usable feature columns: every column besides the target is empty, constant or an "
                              f"identifier ({', '.join(d['name'] for d in dropped)}). Check the export includes the "
                              "feature columns.")
    return encodings, dropped, decisions


def transform(encodings: list[ColumnEncoding], frame: pd.DataFrame) -> np.ndarray:
    return np.hstack([enc.transform(frame[enc.name]) for enc in encodings])


def transform_with_schema(schema: dict[str, Any], frame: pd.DataFrame | list[dict[str, Any]]) -> np.ndarray:
    """Encode raw rows (with the original columns; others, such as dropped IDs, are ignored) exactly
    as the train split was encoded. A pure function of schema.json and the rows.

    ``frame`` may also be a list of rows (column -> value, a numeric column's value a float or None,
    another's a str or None): up to FAST_PATH_ROWS of them are encoded without pandas, which costs
    more than the encoding itself for one row (an endpoint's request); the result is the same array
    the DataFrame path gives (tests/containers/test_featurizer.py checks it on every sample row)."""
    encodings = _schema_encodings(schema)
    if isinstance(frame, list):
        if len(frame) <= FAST_PATH_ROWS and all(enc.encoding in _FAST_ENCODINGS for enc in encodings):
            return np.asarray([[v for enc in encodings for v in enc.transform_value(row.get(enc.name))]
                               for row in frame], dtype=np.float64).reshape(len(frame), -1)
        frame = pd.DataFrame({enc.name: pd.Series([row.get(enc.name) for row in frame], dtype=object if
                                                  enc.kind != "numeric" else np.float64) for enc in encodings})
    return transform(encodings, frame)


FAST_PATH_ROWS = 32
_FAST_ENCODINGS = ("passthrough", "one_hot", "frequency")
_compiled: dict[int, tuple[dict[str, Any], list[ColumnEncoding]]] = {}


def _schema_encodings(schema: dict[str, Any]) -> list[ColumnEncoding]:
    """The schema's encodings, built once per schema object (a server encodes with one schema)."""
    cached = _compiled.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, [ColumnEncoding.from_json(c) for c in schema["source_columns"]])
        _compiled.clear()  # one or two schemas live at a time; never grow
        _compiled[id(schema)] = cached
    return cached[1]


# ---------------------------------------------------------------------------------------------
# Schema and baseline statistics


def _rounded(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def numeric_baseline(values: np.ndarray) -> dict[str, Any]:
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    percentiles = np.percentile(values, BASELINE_QUANTILES)
    return {
        "count": int(values.size),
        "mean": _rounded(float(values.mean())),
        "std": _rounded(float(values.std())),
        "min": _rounded(float(values.min())),
        "max": _rounded(float(values.max())),
        "quantiles": {f"p{q:02d}": float(v) for q, v in zip(BASELINE_QUANTILES, percentiles)},
        "histogram": {"bin_edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def build_baseline(encodings: list[ColumnEncoding], features: np.ndarray, feature_names: list[str],
                   raw_train: pd.DataFrame, y_train: np.ndarray, problem_type: str) -> dict[str, Any]:
    per_feature = {}
    for i, name in enumerate(feature_names):
        per_feature[name] = numeric_baseline(features[:, i])
    per_source = {}
    for enc in encodings:
        entry: dict[str, Any] = {"kind": enc.kind, "missing_fraction": enc.missing_in_train}
        if enc.kind == "categorical":
            counts = _category_keys(raw_train[enc.name]).value_counts()  # as the encoder sees them
            top = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:BASELINE_TOP_CATEGORIES]
            entry["top_categories"] = {str(k): float(v) / len(raw_train) for k, v in top}
        per_source[enc.name] = entry
    if problem_type == REGRESSION:
        label = numeric_baseline(y_train.astype(np.float64))
    else:
        counts = np.bincount(y_train)
        label = {"class_fractions": {str(i): float(c) / len(y_train) for i, c in enumerate(counts)}}
    return {"schema_version": SCHEMA_VERSION, "computed_on": "train", "rows": len(y_train),
            "features": per_feature, "source_columns": per_source, "label": label}


# ---------------------------------------------------------------------------------------------
# Output: written to a staging folder, renamed into place when everything is written


def _write_csv(path: Path, labels: np.ndarray | None, features: np.ndarray) -> None:
    with open(path, "w", newline="") as handle:
        _write_csv_to(handle, labels, features)


def _write_csv_to(handle: Any, labels: np.ndarray | None, features: np.ndarray) -> None:
    frame = pd.DataFrame(features)
    # Whole-valued columns (one-hot flags, counts, ages) are written as integers: "1", not "1.0".
    # Lossless, every reader parses them as floats, and the splits take about half the disk.
    whole = np.isfinite(features).all(axis=0) & (np.mod(features, 1) == 0).all(axis=0) & (np.abs(features) < 2**53).all(axis=0)
    for column in np.flatnonzero(whole):
        frame[column] = features[:, column].astype(np.int64)
    if labels is not None:
        frame.insert(0, "label", labels)
    frame.to_csv(handle, header=False, index=False)


def staging_dir(output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".preprocess-staging-", dir=str(output_dir)))


def promote(staging: Path, output_dir: Path) -> None:
    """Every file written under ``staging`` renamed to the same place under ``output_dir``."""
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        final = output_dir / path.relative_to(staging)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final)


def write_outputs(output_dir: Path, parts: dict[str, Any], train_shards: int = 1) -> None:
    staging = staging_dir(output_dir)
    try:
        for key, rel in OUTPUT_FILES.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            value = parts[key]
            if isinstance(value, bytes):
                target.write_bytes(value)
            elif isinstance(value, dict):
                target.write_text(json.dumps(value, indent=2) + "\n")
            elif isinstance(value, pd.DataFrame):  # raw rows, as read (round-trip floats)
                value.to_csv(str(target), header=False, index=False)
            elif key == "train" and train_shards > 1:  # one file per host of a ShardedByS3Key channel
                target.parent.rmdir()
                target.parent.mkdir()
                for part, rows in enumerate(np.array_split(np.arange(len(value[0])), train_shards)):
                    _write_csv(target.parent / f"train-{part:05d}.csv", value[0][rows], value[1][rows])
            else:
                _write_csv(target, *value)
        promote(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The whole run


def run(options: Options) -> dict[str, Any] | None:
    """Preprocess per options; return the schema written (None: a stage that writes none)."""
    options.validate()
    if options.chunked():
        return chunked_engine().run(options)
    raw, file_names = read_raw(options)
    target = options.target_column
    if target not in raw.columns:
        near = [c for c in raw.columns if c.lower() == target.lower()]
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise MissingTargetColumnError(f"Target column {target!r} is not in the input columns "
                                       f"{list(raw.columns)}.{hint} Pass --target-column with one of them.")
    raw, cell_decisions = read_feature_cells(raw, target)
    rows_in = len(raw)
    decision = decide_target(raw[target], options.problem_type, target)  # refuses an empty target by name
    data, dropped_null, dropped_dupes = labelled_rows(raw, target)
    log.info("%d rows read; %d without a target and %d duplicates dropped", rows_in, dropped_null, dropped_dupes)
    try:
        rules.check_labelled_rows(len(data), dropped_null, target, "The input")
    except rules.InsufficientData as err:
        raise InsufficientData(f"{err} ({dropped_dupes} duplicate row(s) were dropped too.)" if dropped_dupes
                               else str(err)) from None

    problem_type = decision.problem_type
    classification = problem_type != REGRESSION
    y = encode_target(data[target], decision)
    if classification:
        counts = np.bincount(y, minlength=len(decision.labels))
        try:
            rules.check_class_sizes(dict(zip(decision.labels, (int(c) for c in counts))), target)
        except rules.InsufficientData as err:
            raise InsufficientData(str(err)) from None
    train_idx, val_idx, test_idx = split_indices(y, problem_type, options)

    feature_frame = data.drop(columns=[target])
    dates, id_columns = plan_columns(feature_frame)
    feature_frame = feature_frame.drop(columns=[c["name"] for c in id_columns])
    train_frame = feature_frame.iloc[train_idx].reset_index(drop=True)
    encodings, dropped_in_train, decisions = fit_encodings(train_frame, options.max_onehot_cardinality, dates)
    dropped_columns = id_columns + dropped_in_train
    feature_names = [n for enc in encodings for n in enc.output_names()]
    x = {key: transform(encodings, feature_frame.iloc[idx]) for key, idx in
         (("train", train_idx), ("validation", val_idx), ("test", test_idx))}
    labels = {"train": y[train_idx], "validation": y[val_idx], "test": y[test_idx]}

    decisions = ([{"column": d["name"], "action": "dropped", "detail": d["reason"]} for d in dropped_columns]
                 + cell_decisions + decisions)
    report = data_report(rows_in, dropped_null, dropped_dupes, target, decision, decisions)
    for line in report:
        log.info("%s", line)
    schema = schema_document(
        options, decision, encodings, [c for c in raw.columns if c != target], dropped_columns, decisions, report,
        {"input": rows_in, "dropped_null_target": dropped_null, "dropped_duplicates": dropped_dupes,
         "train": len(train_idx), "validation": len(val_idx), "test": len(test_idx), "batch": len(test_idx)},
        naive_prediction(labels["train"], problem_type, decision.num_classes), file_names)
    baseline = build_baseline(encodings, x["train"], feature_names, train_frame, labels["train"], problem_type)
    # the raw training features as the encoder read them (pre-encoding), train split only
    statistics, constraints = monitor_baseline.BaselineAccumulator(monitor_baseline.monitored_columns(schema)).update(
        train_frame).finish(options.drift_threshold)
    write_outputs(options.output_dir, {
        "train": (labels["train"], x["train"]),
        "validation": (labels["validation"], x["validation"]),
        "test": (labels["test"], x["test"]),
        # raw rows: batch transform runs the serial pipeline, whose featurizer encodes them
        "batch": data[schema["input_columns"]].iloc[test_idx],
        "schema": schema,
        "baseline": baseline,
        "statistics": statistics,
        "constraints": constraints,
        **serving_package().serving_archives(schema),
    }, options.train_shards)
    log.info("%s problem; %d features; train/validation/test = %d/%d/%d rows", problem_type,
             len(feature_names), len(train_idx), len(val_idx), len(test_idx))
    return schema


def schema_document(options: Options, decision: rules.TargetDecision, encodings: list[ColumnEncoding],
                    input_columns: list[str], dropped_columns: list[dict[str, Any]], decisions: list[dict[str, Any]],
                    report: list[str], row_counts: dict[str, int], baseline_prediction: dict[str, Any],
                    file_names: list[str]) -> dict[str, Any]:
    """schema.json: what training, evaluation and serving read (both engines write the same document)."""
    problem_type = decision.problem_type
    classification = problem_type != REGRESSION
    objective, tuning_metric = OBJECTIVES[problem_type]
    features_json = []
    for enc in encodings:
        for i, name in enumerate(enc.output_names()):
            entry = {"name": name, "type": "numeric" if enc.kind == "numeric" else enc.encoding,
                     "source_column": enc.name}
            if enc.encoding == "one_hot":
                entry["category"] = enc.categories[i]
            features_json.append(entry)
    return {
        "schema_version": SCHEMA_VERSION,
        "target_column": options.target_column,
        # the columns a request carries, in file order (the endpoint's contract; part of the use case)
        "input_columns": input_columns,
        "problem_type": problem_type,
        "num_classes": decision.num_classes,
        # encoded class (the model's output index, as text) -> the label as the input spelt it
        "label_mapping": decision.label_mapping() if classification else None,
        "labels": list(decision.labels) if classification else None,
        "label_spellings_merged": decision.merged,
        "features": features_json,
        "feature_names": [n for enc in encodings for n in enc.output_names()],
        "source_columns": [enc.to_json() for enc in encodings],
        "dropped_columns": dropped_columns,
        "column_decisions": decisions,
        # what a person should read about this input, one line each (the run summary prints them)
        "report": report,
        "row_counts": row_counts,
        "split": {"validation_fraction": options.validation_fraction, "test_fraction": options.test_fraction,
                  "seed": options.seed, "stratified": classification},
        # the naive model evaluate.py scores beside the real one (quality_threshold auto)
        "baseline_prediction": baseline_prediction,
        "csv_format": {"header": False, "label_column": 0, "batch_has_label": False, "batch_rows": "raw"},
        "xgboost": {"objective": objective, "num_class": decision.num_classes if problem_type == MULTICLASS else None,
                    "tuning_objective_metric": tuning_metric},
        "input_files": file_names,
        "max_onehot_cardinality": options.max_onehot_cardinality,
    }


def read_feature_cells(raw: pd.DataFrame, target: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The shared feature rule (feature_rules.py, as the validation Lambda applies it): infinite cells,
    and the few stray text cells of a numeric column, become missing; each column so read is noted."""
    raw = raw.copy()
    decisions = []
    for name in raw.columns:
        series = raw[name]
        if name == target or pd.api.types.is_bool_dtype(series):
            continue
        cells = feature_rules.ColumnCells(name)
        for cell in series.dropna():
            cells.add(cell)
        if not (cells.numeric or (_is_numeric(series) and cells.infinite)):
            continue
        values = pd.to_numeric(series, errors="coerce").astype(float)
        raw[name] = values.mask(np.isinf(values.to_numpy()))
        decisions += [{"column": name, "action": "read as numbers:", "detail": line} for line in cells.warnings()]
    return raw, decisions


def labelled_rows(raw: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int, int]:
    """The rows that are trained on, in file order: those with a target, each once. Returns them
    with the number of rows without a target and of duplicates dropped."""
    data = raw[~raw[target].map(rules.is_missing).to_numpy(dtype=bool)]
    dropped_null = len(raw) - len(data)
    # duplicates by label identity: "15" and "15.0", "Yes" and "yes " are one target value
    repeated = data.assign(**{target: data[target].map(rules.label_key)}).duplicated().to_numpy(dtype=bool)
    return data[~repeated].reset_index(drop=True), dropped_null, int(repeated.sum())


def naive_prediction(y_train: np.ndarray, problem_type: str, num_classes: int | None) -> dict[str, Any]:
    if problem_type == REGRESSION:
        return {"strategy": "mean", "mean": float(y_train.mean())}
    counts = np.bincount(y_train, minlength=num_classes or 0)
    return {"strategy": "class_prior", "class_fractions": [float(c) / len(y_train) for c in counts]}


def data_report(rows_in: int, dropped_null: int, dropped_dupes: int, target: str, decision: rules.TargetDecision,
                decisions: list[dict[str, Any]]) -> list[str]:
    """One line per thing done to the user's table that they did not ask for."""
    lines = []
    if dropped_null:
        lines.append(f"{dropped_null} of {rows_in} rows have no value in target {target!r}: dropped")
    if dropped_dupes:
        lines.append(f"{dropped_dupes} duplicate rows dropped")
    lines += list(decision.notes)
    lines += [f"{d['column']}: {d['action']} ({d['detail']})" if d["action"] == "dropped"
              else f"{d['column']}: {d['action']} {d['detail']}" for d in decisions]
    return lines


def chunked_engine():
    """chunked.py beside this file (imported when used: the featurizer's archive carries this file, not it)."""
    if __package__:
        from . import chunked
    else:
        import chunked
    return chunked


def serving_package():
    """serving/package.py beside this file: imported by path, since this runs both as the job's
    script (its folder on sys.path) and as processing_scripts.preprocess (the project's tests)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("preprocess_serving_package",
                                                  Path(__file__).resolve().parent / "serving" / "package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv: list[str] | None) -> tuple[Options, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", required=True, type=Path)
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--target-column", required=True)
    parser.add_argument("--problem-type", default="auto", choices=PROBLEM_TYPES)
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-onehot-cardinality", type=int, default=20)
    parser.add_argument("--drift-threshold", type=float, default=monitor_baseline.DEFAULT_DRIFT_THRESHOLD)
    parser.add_argument("--failure-file", default=None)
    parser.add_argument("--engine", default="auto", choices=ENGINES)
    parser.add_argument("--stage", default="all", choices=STAGES)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--train-shards", type=int, default=1)
    parser.add_argument("--statistics-dir", type=Path, default=None)
    # processing jobs find their rank here (SageMaker writes it on every instance)
    default_config = Path(os.environ.get("SM_ML_ROOT", "/opt/ml")) / "config" / "resourceconfig.json"
    parser.add_argument("--resource-config", type=Path, default=default_config if default_config.is_file() else None)
    args = parser.parse_args(argv)
    options = Options(args.input_dir, args.output_dir, args.target_column, args.problem_type,
                      args.validation_fraction, args.test_fraction, args.seed, args.max_onehot_cardinality,
                      args.drift_threshold, args.engine, args.stage, args.chunk_rows, args.train_shards,
                      args.statistics_dir, args.resource_config)
    return options, args.failure_file


def _report_failure(line: str, failure_file: str | None) -> None:
    print(line, file=sys.stderr, flush=True)
    if failure_file:
        path = Path(failure_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(line + "\n")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options, failure_file = parse_args(argv)
    try:
        run(options)
    except PreprocessError as err:
        _report_failure(f"{type(err).__name__}: {err}", failure_file)
        return 1
    except Exception as err:  # a bug, not bad input: keep the traceback, still end with the one-liner
        log.exception("Unexpected failure")
        _report_failure(f"{type(err).__name__}: {err}", failure_file)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
