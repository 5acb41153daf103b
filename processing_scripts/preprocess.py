"""Preprocess raw tabular CSV for SageMaker's built-in XGBoost: clean, encode, split.

    python3 preprocess.py --input-dir /opt/ml/processing/input/raw --output-dir /opt/ml/processing/output \
        --target-column deposit [--problem-type auto|regression|binary|multiclass]
        [--validation-fraction 0.15] [--test-fraction 0.15] [--seed 42] [--max-onehot-cardinality 20]
        [--failure-file /opt/ml/output/message]

Reads every *.csv under --input-dir (or the one file it names), sorted; never modifies it. Writes
  train/train.csv, validation/validation.csv, test/test.csv   label first, no header
  batch/batch.csv                                              the test rows' features, no label
  schema/schema.json                                           features, encodings, labels, counts
  schema/baseline.json                                         per-feature statistics for drift checks
under --output-dir, staged under a temporary name and renamed into place only when all are complete.
Bad input stops with a PreprocessError subclass; its `<ErrorClass>: <message>` is the last line of
stderr (and the content of --failure-file), the exit code is 1 and the output folder is untouched.

Encoders are fitted on the train split only: numeric columns are imputed with the train median;
categorical columns get a `__missing__` category, then one-hot encoding up to
--max-onehot-cardinality categories and frequency encoding above it (unseen categories encode to 0).

This file is self-contained (numpy, pandas, scikit-learn) so it runs as the single code file of a
SageMaker Processing job in the scikit-learn image, whose pandas is older than the project's. It
sticks to APIs that did not change across pandas 1.x-3.x (no DataFrame.map, no lineterminator=,
no object-dtype checks, which pandas 3's str dtype breaks); its outputs are byte-identical under
pandas 1.5.3/scikit-learn 1.2.2, pandas 2.2.3/scikit-learn 1.5.2 and pandas 3.1.1/scikit-learn 1.9.1.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("preprocess")

REGRESSION, BINARY, MULTICLASS = "regression", "binary", "multiclass"
PROBLEM_TYPES = ("auto", REGRESSION, BINARY, MULTICLASS)
MISSING = "__missing__"
# auto: an integer-valued numeric target with at most this many values is read as multiclass
MAX_AUTO_MULTICLASS_VALUES = 10
MAX_CLASSES = 100
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
}
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


class AllNullTargetError(PreprocessError):
    pass


class SingleClassTargetError(PreprocessError):
    pass


class NonNumericTargetError(PreprocessError):
    pass


class TargetClassCountError(PreprocessError):
    pass


class InsufficientRowsError(PreprocessError):
    pass


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


def read_header(path: Path, shown: str) -> list[str]:
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
    header = [name.strip() for name in next(csv.reader([text.rstrip("\r\n")]), [])]
    duplicates = sorted({n for n in header if header.count(n) > 1})
    if duplicates:
        raise DuplicateColumnError(f"{shown} has duplicate column names {duplicates}. "
                                   "Rename the columns so every name is unique.")
    if any(not n for n in header):
        raise UnparseableFileError(f"{shown} has an empty column name in its header. "
                                   "Name every column in the first line.")
    return header


def read_csv_file(path: Path, shown: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=True)
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
    files = list_input_files(options.input_dir)
    frames, names, header0 = [], [], None
    for path in files:
        shown = _display(path, options.input_dir)
        header = read_header(path, shown)
        if header0 is None:
            header0 = header
        elif header != header0:
            raise SchemaMismatchError(f"{shown} has columns {header}, but {names[0]} has {header0}. "
                                      "Every input file must have the same header.")
        frame = read_csv_file(path, shown)
        if list(frame.columns) != header:  # quoting the csv module and pandas read differently
            raise UnparseableFileError(f"{shown}: could not read a consistent header. Check its quoting.")
        frames.append(frame)
        names.append(shown)
    data = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(data) == 0:
        raise HeaderOnlyError(f"{', '.join(names)} has a header but no data rows. Upload the data rows too.")
    return data, names


# ---------------------------------------------------------------------------------------------
# Target and problem type


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _integer_valued(values: pd.Series) -> bool:
    return bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))


def infer_problem_type(target: pd.Series, requested: str, name: str) -> str:
    distinct = target.nunique()
    numeric = _is_numeric(target)
    if distinct == 1:
        raise SingleClassTargetError(f"Target column {name!r} has a single value "
                                     f"({target.iloc[0]!r}) in every row; there is nothing to learn. "
                                     "Check the target column or the data export.")
    if requested == REGRESSION:
        if not numeric:
            converted = pd.to_numeric(target, errors="coerce")
            bad = target[converted.isna()].astype(str).unique()[:5].tolist()
            raise NonNumericTargetError(f"Target column {name!r} must be numeric for regression but holds "
                                        f"{bad}. Clean those values or use --problem-type binary/multiclass.")
        return REGRESSION
    if requested == BINARY and distinct != 2:
        raise TargetClassCountError(f"Target column {name!r} has {distinct} classes; binary needs exactly 2. "
                                    "Use --problem-type multiclass or regression.")
    if requested in (BINARY, MULTICLASS):
        return requested
    # auto
    if distinct == 2:
        return BINARY
    if numeric and not (_integer_valued(target) and distinct <= MAX_AUTO_MULTICLASS_VALUES):
        return REGRESSION
    return MULTICLASS


def _label_key(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def label_mapping(target: pd.Series) -> dict[str, int]:
    values = target.unique().tolist()
    if _is_numeric(target):
        values = sorted(values)
    else:
        values = sorted(values, key=str)
    return {_label_key(v): i for i, v in enumerate(values)}


def encode_target(target: pd.Series, problem_type: str, mapping: dict[str, int] | None) -> np.ndarray:
    if problem_type == REGRESSION:
        return pd.to_numeric(target).to_numpy(dtype=np.float64)
    return target.map(lambda v: mapping[_label_key(v)]).to_numpy(dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Split


def split_sizes(n: int, validation_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    n_test = math.ceil(n * test_fraction)
    n_val = math.ceil(n * validation_fraction)
    return n - n_test - n_val, n_val, n_test


def _split_fits(n: int, options: Options, n_classes: int, smallest_class: int) -> bool:
    n_train, n_val, n_test = split_sizes(n, options.validation_fraction, options.test_fraction)
    each = max(1, n_classes)
    return min(n_train, n_val, n_test) >= each and (n_classes == 0 or smallest_class >= 3)


def split_indices(y: np.ndarray, problem_type: str, options: Options) -> tuple[np.ndarray, ...]:
    """Reproducible train/validation/test row positions, stratified for classification."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    classification = problem_type != REGRESSION
    n_classes = len(np.unique(y)) if classification else 0
    smallest = int(np.bincount(y).min()) if classification else 0
    if not _split_fits(n, options, n_classes, smallest):
        needed = next((m for m in range(n + 1, 100_000) if _split_fits(m, options, n_classes, 3)), None)
        why = (f"the smallest class has {smallest} row(s) and every class needs at least 3 (one per split)"
               if classification and smallest < 3 else
               f"a {options.validation_fraction}/{options.test_fraction} validation/test split needs at least "
               f"{needed} rows{' so each split holds every class' if classification else ''}")
        raise InsufficientRowsError(f"{n} usable rows after cleaning, but {why}. Provide more data.")
    _, n_val, n_test = split_sizes(n, options.validation_fraction, options.test_fraction)
    positions = np.arange(n)
    rest, test = train_test_split(positions, test_size=n_test, random_state=options.seed,
                                  stratify=y if classification else None)
    train, val = train_test_split(rest, test_size=n_val, random_state=options.seed,
                                  stratify=y[rest] if classification else None)
    return train, val, test


# ---------------------------------------------------------------------------------------------
# Features: fitted on train, applied to every split (and, from schema.json, to new data)


def _safe_name(name: str) -> str:
    # xgboost refuses feature names with [, ] or <
    return name.replace("[", "(").replace("]", ")").replace("<", "lt")


def _as_category_strings(series: pd.Series) -> pd.Series:
    values = series.astype(object)
    return values.where(values.notna(), MISSING).map(str)


@dataclass
class ColumnEncoding:
    """How one source column becomes one or more output features."""

    name: str
    kind: str  # numeric | categorical
    encoding: str  # passthrough | one_hot | frequency
    impute_value: float | None = None
    categories: list[str] = field(default_factory=list)
    frequencies: dict[str, float] = field(default_factory=dict)
    missing_in_train: float = 0.0
    cardinality: int = 0

    def output_names(self) -> list[str]:
        if self.encoding == "one_hot":
            return [_safe_name(f"{self.name}={c}") for c in self.categories]
        return [_safe_name(self.name)]

    def transform(self, series: pd.Series) -> np.ndarray:
        if self.kind == "numeric":
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            return np.where(np.isnan(values), self.impute_value, values).reshape(-1, 1)
        strings = _as_category_strings(series).to_numpy()
        if self.encoding == "one_hot":
            return (strings.reshape(-1, 1) == np.asarray(self.categories, dtype=object)).astype(np.float64)
        return np.asarray([self.frequencies.get(s, 0.0) for s in strings], dtype=np.float64).reshape(-1, 1)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "encoding": self.encoding,
                               "missing_fraction_train": self.missing_in_train}
        if self.kind == "numeric":
            out["imputation"] = {"strategy": "median", "value": self.impute_value}
        else:
            out["imputation"] = {"strategy": "constant", "value": MISSING}
            out["cardinality"] = self.cardinality
            if self.encoding == "one_hot":
                out["categories"] = self.categories
            else:
                out["frequencies"] = self.frequencies
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnEncoding:
        return cls(name=data["name"], kind=data["kind"], encoding=data["encoding"],
                   impute_value=data.get("imputation", {}).get("value") if data["kind"] == "numeric" else None,
                   categories=list(data.get("categories", [])), frequencies=dict(data.get("frequencies", {})),
                   missing_in_train=data.get("missing_fraction_train", 0.0),
                   cardinality=data.get("cardinality", 0))


def fit_encodings(train: pd.DataFrame, max_onehot: int) -> tuple[list[ColumnEncoding], list[dict[str, str]]]:
    encodings, dropped = [], []
    for name in train.columns:
        series = train[name]
        missing = float(series.isna().mean())
        if missing == 1.0:
            dropped.append({"name": name, "reason": "every value is missing in the train split"})
            continue
        if _is_numeric(series) or pd.api.types.is_bool_dtype(series):
            values = series.astype(float)
            encodings.append(ColumnEncoding(name, "numeric", "passthrough",
                                            impute_value=float(values.median()), missing_in_train=missing))
            continue
        strings = _as_category_strings(series)
        counts = strings.value_counts()
        cardinality = len(counts)
        if cardinality <= max_onehot:
            encodings.append(ColumnEncoding(name, "categorical", "one_hot", categories=sorted(counts.index),
                                            missing_in_train=missing, cardinality=cardinality))
        else:
            freq = {str(k): float(v) / len(strings) for k, v in sorted(counts.items())}
            encodings.append(ColumnEncoding(name, "categorical", "frequency", frequencies=freq,
                                            missing_in_train=missing, cardinality=cardinality))
    if not encodings:
        raise NoFeaturesError("No usable feature columns: every column besides the target is empty. "
                              "Check the export includes the feature columns.")
    return encodings, dropped


def transform(encodings: list[ColumnEncoding], frame: pd.DataFrame) -> np.ndarray:
    return np.hstack([enc.transform(frame[enc.name]) for enc in encodings])


def transform_with_schema(schema: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Encode raw rows (with the original columns) exactly as the train split was encoded."""
    return transform([ColumnEncoding.from_json(c) for c in schema["source_columns"]], frame)


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
            counts = _as_category_strings(raw_train[enc.name]).value_counts()
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
    frame = pd.DataFrame(features)
    # Whole-valued columns (one-hot flags, counts, ages) are written as integers: "1", not "1.0".
    # Lossless, every reader parses them as floats, and the splits take about half the disk.
    whole = np.isfinite(features).all(axis=0) & (np.mod(features, 1) == 0).all(axis=0) & (np.abs(features) < 2**53).all(axis=0)
    for column in np.flatnonzero(whole):
        frame[column] = features[:, column].astype(np.int64)
    if labels is not None:
        frame.insert(0, "label", labels)
    frame.to_csv(str(path), header=False, index=False)


def write_outputs(output_dir: Path, parts: dict[str, Any]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".preprocess-staging-", dir=str(output_dir)))
    try:
        for key, rel in OUTPUT_FILES.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            value = parts[key]
            if isinstance(value, dict):
                target.write_text(json.dumps(value, indent=2) + "\n")
            else:
                _write_csv(target, *value)
        for rel in OUTPUT_FILES.values():
            final = output_dir / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The whole run


def run(options: Options) -> dict[str, Any]:
    """Preprocess per options; return the schema written."""
    options.validate()
    raw, file_names = read_raw(options)
    target = options.target_column
    if target not in raw.columns:
        near = [c for c in raw.columns if c.lower() == target.lower()]
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise MissingTargetColumnError(f"Target column {target!r} is not in the input columns "
                                       f"{list(raw.columns)}.{hint} Pass --target-column with one of them.")
    rows_in = len(raw)
    data = raw[raw[target].notna()]
    if len(data) == 0:
        raise AllNullTargetError(f"Target column {target!r} is empty in all {rows_in} rows. "
                                 "Check the export fills the target column.")
    dropped_null = rows_in - len(data)
    deduplicated = data.drop_duplicates()
    dropped_dupes = len(data) - len(deduplicated)
    data = deduplicated.reset_index(drop=True)
    log.info("%d rows read; %d without a target and %d duplicates dropped", rows_in, dropped_null, dropped_dupes)

    problem_type = infer_problem_type(data[target], options.problem_type, target)
    classification = problem_type != REGRESSION
    mapping = label_mapping(data[target]) if classification else None
    if classification and len(mapping) > MAX_CLASSES:
        raise TargetClassCountError(f"Target column {target!r} has {len(mapping)} distinct values, more than "
                                    f"{MAX_CLASSES} classes. Pick the right target or use --problem-type regression.")
    y = encode_target(data[target], problem_type, mapping)
    train_idx, val_idx, test_idx = split_indices(y, problem_type, options)

    feature_frame = data.drop(columns=[target])
    train_frame = feature_frame.iloc[train_idx].reset_index(drop=True)
    encodings, dropped_columns = fit_encodings(train_frame, options.max_onehot_cardinality)
    feature_names = [n for enc in encodings for n in enc.output_names()]
    x = {key: transform(encodings, feature_frame.iloc[idx]) for key, idx in
         (("train", train_idx), ("validation", val_idx), ("test", test_idx))}
    labels = {"train": y[train_idx], "validation": y[val_idx], "test": y[test_idx]}

    objective, tuning_metric = OBJECTIVES[problem_type]
    features_json = []
    for enc in encodings:
        for i, name in enumerate(enc.output_names()):
            entry = {"name": name, "type": "numeric" if enc.kind == "numeric" else enc.encoding,
                     "source_column": enc.name}
            if enc.encoding == "one_hot":
                entry["category"] = enc.categories[i]
            features_json.append(entry)
    schema = {
        "schema_version": SCHEMA_VERSION,
        "target_column": target,
        "problem_type": problem_type,
        "num_classes": len(mapping) if classification else None,
        "label_mapping": mapping,
        "features": features_json,
        "feature_names": feature_names,
        "source_columns": [enc.to_json() for enc in encodings],
        "dropped_columns": dropped_columns,
        "row_counts": {"input": rows_in, "dropped_null_target": dropped_null,
                       "dropped_duplicates": dropped_dupes, "train": len(train_idx),
                       "validation": len(val_idx), "test": len(test_idx), "batch": len(test_idx)},
        "split": {"validation_fraction": options.validation_fraction, "test_fraction": options.test_fraction,
                  "seed": options.seed, "stratified": classification},
        "csv_format": {"header": False, "label_column": 0, "batch_has_label": False},
        "xgboost": {"objective": objective, "num_class": len(mapping) if problem_type == MULTICLASS else None,
                    "tuning_objective_metric": tuning_metric},
        "input_files": file_names,
        "max_onehot_cardinality": options.max_onehot_cardinality,
    }
    baseline = build_baseline(encodings, x["train"], feature_names, train_frame, labels["train"], problem_type)
    write_outputs(options.output_dir, {
        "train": (labels["train"], x["train"]),
        "validation": (labels["validation"], x["validation"]),
        "test": (labels["test"], x["test"]),
        "batch": (None, x["test"]),
        "schema": schema,
        "baseline": baseline,
    })
    log.info("%s problem; %d features; train/validation/test = %d/%d/%d rows", problem_type,
             len(feature_names), len(train_idx), len(val_idx), len(test_idx))
    return schema


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
    parser.add_argument("--failure-file", default=None)
    args = parser.parse_args(argv)
    options = Options(args.input_dir, args.output_dir, args.target_column, args.problem_type,
                      args.validation_fraction, args.test_fraction, args.seed, args.max_onehot_cardinality)
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
