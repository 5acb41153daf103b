"""The one rule for what a target column is and how a model of it is judged, shared by every step.

Standard library only: the validation Lambda (plain boto3 runtime), preprocess.py (scikit-learn
image), evaluate.py (each candidate's serving image), the quality gate and the CDK app all import this same file —
the processing jobs from their code folder, the Lambdas from a copy CDK stages into their asset
(``lambdas/<name>/problem_rules.py`` is a symlink to this file) — so they cannot disagree.

The problem type, from the target's cells as text:
  * a non-numeric target is classification: binary with 2 classes, multiclass with more;
  * an integer target with at most ``MAX_INTEGER_CLASSES`` distinct values (iris' 0/1/2, a 1-5
    rating) is classification too, and a note says so (set problem_type regression to override);
  * any other numeric target is regression.
Class labels are compared after trimming whitespace and folding case (numbers by value, so "1" and
"1.0" are one class); each class answers to its most frequent spelling, and a note names the
spellings merged.

Quality: every metric evaluate.py reports has a direction and a range. ``quality_metric: auto``
picks rmse (regression), auc (binary) or f1_weighted (multiclass); ``quality_threshold: auto``
requires beating the naive baseline (the train mean, or the train class prior) on the same test
split by ``AUTO_MARGIN``: an error metric at least 10% below the baseline's, a score metric at
least 20% of the way from the baseline's to a perfect 1.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

REGRESSION, BINARY, MULTICLASS = "regression", "binary", "multiclass"
PROBLEM_TYPES = ("auto", REGRESSION, BINARY, MULTICLASS)
# An integer target with at most this many distinct values is read as class labels (iris, wine,
# ratings); abalone's 28 ring counts and diabetes' 214 values stay regression.
MAX_INTEGER_CLASSES = 10
MAX_CLASSES = 100
# Beyond this many distinct values a target is no classification; stop counting (bounded memory).
MAX_TRACKED_VALUES = 10_000
# Fewer labelled rows cannot fill train/validation/test splits usefully.
MIN_LABELLED_ROWS = 50
# A stratified train/validation/test split puts at least one row of each class in each split.
MIN_ROWS_PER_CLASS = 3
# What pandas (and so preprocess.py) reads as missing; such cells are no label.
MISSING_MARKERS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
INFINITE_SPELLINGS = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})


class UnusableTarget(ValueError):
    """The target column cannot be learned as asked; the message says why and what to set."""


class InsufficientData(ValueError):
    """Too few labelled rows (or rows of one class) to split and train; the message gives the counts."""


# ---------------------------------------------------------------- labels


def is_missing(cell: object) -> bool:
    """Empty, a marker pandas reads as missing, or an infinite number (inf, -inf, Infinity): no label
    and no value a model can use (feature_rules.py treats infinite feature cells alike)."""
    if cell is None:
        return True
    if isinstance(cell, float) and not math.isfinite(cell):
        return True
    text = str(cell).strip()
    return text in MISSING_MARKERS or text.casefold() in INFINITE_SPELLINGS


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def label_key(cell: object) -> str:
    """The identity of a class label: numbers by value ("1" == "1.0"), text trimmed and case-folded."""
    text = str(cell).strip()
    number = _number(text)
    if number is not None:
        return str(int(number)) if number.is_integer() else repr(number)
    return text.casefold()


def category_key(cell: object) -> str:
    """The identity of a feature category: the same trimming and case folding as labels ("Pro" ==
    "pro "), so a feature column and the target treat spellings alike."""
    return str(cell).strip().casefold()


@dataclass
class TargetSummary:
    """What the rule needs to know about a target column, accumulated one cell at a time."""

    rows: int = 0
    missing: int = 0
    numeric: bool = True
    integer: bool = True
    # label key -> spelling (trimmed) -> count; stops growing at MAX_TRACKED_VALUES keys
    spellings: dict[str, Counter] = field(default_factory=dict)
    overflow: bool = False
    infinite: int = 0  # of the missing cells, how many were inf/-inf/Infinity
    non_numeric_examples: list[str] = field(default_factory=list)

    def add(self, cell: object) -> None:
        self.rows += 1
        if is_missing(cell):
            self.missing += 1
            self.infinite += str(cell).strip().casefold() in INFINITE_SPELLINGS
            return
        text = str(cell).strip()
        number = _number(text)
        if number is None:
            self.numeric = False
            if len(self.non_numeric_examples) < 5 and text not in self.non_numeric_examples:
                self.non_numeric_examples.append(text)
        elif not number.is_integer():
            self.integer = False
        key = label_key(text)
        if key in self.spellings:
            self.spellings[key][text] += 1
        elif len(self.spellings) < MAX_TRACKED_VALUES:
            self.spellings[key] = Counter({text: 1})
        else:
            self.overflow = True

    @classmethod
    def of(cls, cells: Iterable[object]) -> TargetSummary:
        summary = cls()
        for cell in cells:
            summary.add(cell)
        return summary

    @property
    def labelled(self) -> int:
        return self.rows - self.missing

    @property
    def distinct(self) -> int:
        return len(self.spellings) + (1 if self.overflow else 0)


@dataclass(frozen=True)
class TargetDecision:
    """The problem type, the classes in encoded order with their labels, and what to tell the user."""

    problem_type: str
    keys: tuple[str, ...] = ()  # label keys, index = encoded class
    labels: tuple[str, ...] = ()  # the most frequent spelling of each class
    merged: dict[str, list[str]] = field(default_factory=dict)  # label -> every spelling seen
    notes: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int | None:
        return len(self.keys) if self.problem_type != REGRESSION else None

    def index(self) -> dict[str, int]:
        """Label key -> encoded class."""
        return {key: i for i, key in enumerate(self.keys)}

    def label_mapping(self) -> dict[str, str]:
        """Encoded index (as text, JSON's key type) -> the user's label."""
        return {str(i): label for i, label in enumerate(self.labels)}


def _class_order(keys: Iterable[str], numeric: bool) -> list[str]:
    return sorted(keys, key=float) if numeric else sorted(keys)


def decide(summary: TargetSummary, requested: str, column: str, where: str) -> TargetDecision:
    """The rule. Raises UnusableTarget when the target cannot be learned as requested."""
    if requested not in PROBLEM_TYPES:
        raise UnusableTarget(f"problem_type {requested!r} must be one of {list(PROBLEM_TYPES)}; 'auto' infers it.")
    if not summary.labelled:
        raise UnusableTarget(f"Target column {column!r} of {where} is empty in every row. Choose a column with values.")
    distinct = summary.distinct
    notes: list[str] = []
    problem = requested
    if requested == "auto":
        if not summary.numeric:
            problem = BINARY if distinct == 2 else MULTICLASS
        elif summary.integer and distinct <= MAX_INTEGER_CLASSES:
            problem = BINARY if distinct == 2 else MULTICLASS
            if distinct > 1:
                shown = ", ".join(_class_order(summary.spellings, True))
                notes.append(f"Target {column!r} holds {distinct} integer values ({shown}): read as {problem} "
                             f"classification. Set problem_type regression to predict it as a number.")
        else:
            problem = REGRESSION
    if problem == REGRESSION:
        if not summary.numeric:
            raise UnusableTarget(
                f"problem_type regression needs a numeric target, but {column!r} of {where} has values like "
                f"{summary.non_numeric_examples}. Use problem_type binary/multiclass, or choose a numeric target column."
            )
        return TargetDecision(REGRESSION, notes=tuple(notes))
    if distinct < 2:
        only = next(iter(summary.spellings))
        raise UnusableTarget(
            f"Target column {column!r} of {where} has a single class ({only!r}) in every labelled row; a classifier "
            "needs at least two. Check the target column or the data export."
        )
    if distinct > MAX_CLASSES:
        raise UnusableTarget(
            f"Target column {column!r} of {where} has {'more than ' if summary.overflow else ''}{distinct} distinct "
            f"values, more than {MAX_CLASSES} classes. Pick the right target, or set problem_type regression if it is a number."
        )
    if problem == BINARY and distinct != 2:
        raise UnusableTarget(
            f"problem_type binary needs exactly 2 classes; {column!r} of {where} has {distinct} "
            f"({', '.join(sorted(summary.spellings)[:10])}) after trimming and case folding. Use multiclass."
        )
    keys = _class_order(summary.spellings, summary.numeric)
    labels, merged = [], {}
    for key in keys:
        counts = summary.spellings[key]
        # the most frequent spelling names the class; ties go to the first in sorted order
        label = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        labels.append(label)
        if len(counts) > 1:
            merged[label] = sorted(counts)
    if merged:
        notes.append("Target labels merged after trimming and case folding: " + "; ".join(
            f"{spellings} -> {label!r}" for label, spellings in merged.items()) + ".")
    return TargetDecision(problem, tuple(keys), tuple(labels), merged, tuple(notes))


def check_class_sizes(class_counts: dict[str, int], column: str) -> None:
    """A stratified train/validation/test split needs MIN_ROWS_PER_CLASS rows of every class."""
    small = {label: n for label, n in class_counts.items() if n < MIN_ROWS_PER_CLASS}
    if small:
        listed = ", ".join(f"{label!r}: {n}" for label, n in sorted(small.items(), key=lambda kv: kv[1]))
        raise InsufficientData(
            f"Target {column!r}: class(es) with too few labelled rows ({listed}); a stratified train/validation/test "
            f"split needs at least {MIN_ROWS_PER_CLASS} rows of every class. Add rows of those classes, or remove "
            "them from the file."
        )


def check_labelled_rows(labelled: int, without_target: int, column: str, where: str) -> None:
    if labelled < MIN_LABELLED_ROWS:
        raise InsufficientData(
            f"{where} has {labelled} usable row(s) with a value in target {column!r} ({without_target} row(s) have "
            f"none); the pipeline needs at least {MIN_LABELLED_ROWS} labelled rows to split train/validation/test. "
            "Fill in the target, or upload more labelled rows."
        )


# ---------------------------------------------------------------- quality


@dataclass(frozen=True)
class Metric:
    direction: str  # "lower" or "higher" is better
    low: float  # the range a value (and so a threshold) can take
    high: float

    def in_range(self, value: float) -> bool:
        return self.low <= value <= self.high

    def range_text(self) -> str:
        low = "(-inf" if self.low == -math.inf else f"[{self.low:g}"
        high = "inf)" if self.high == math.inf else f"{self.high:g}]"
        return f"{low}, {high}"


_ERROR = Metric("lower", 0.0, math.inf)
_SCORE = Metric("higher", 0.0, 1.0)
# The metrics evaluate.py writes, per problem type.
METRICS: dict[str, dict[str, Metric]] = {
    REGRESSION: {"rmse": _ERROR, "mse": _ERROR, "mae": _ERROR, "r2": Metric("higher", -math.inf, 1.0)},
    BINARY: {"auc": _SCORE, "accuracy": _SCORE, "precision": _SCORE, "recall": _SCORE, "f1": _SCORE,
             "logloss": _ERROR},
    MULTICLASS: {"accuracy": _SCORE, "f1_weighted": _SCORE},
}
ALL_METRICS: dict[str, Metric] = {name: m for table in METRICS.values() for name, m in table.items()}
AUTO_METRIC = {REGRESSION: "rmse", BINARY: "auc", MULTICLASS: "f1_weighted"}
# quality_threshold auto: an error metric must be this fraction below the baseline's; a score
# metric must close this fraction of the gap between the baseline's and a perfect 1.
AUTO_MARGIN = {"lower": 0.10, "higher": 0.20}
AUTO = "auto"


def metric_for(problem_type: str, requested: str) -> str:
    return AUTO_METRIC[problem_type] if requested == AUTO else requested


def threshold_problem(metric: str, threshold: object) -> str | None:
    """Why an explicit threshold cannot be met or missed by ``metric``, or None when it fits."""
    spec = ALL_METRICS[metric]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        return f"quality_threshold must be a number or \"auto\", got {threshold!r}."
    if not spec.in_range(float(threshold)):
        better = "lower" if spec.direction == "lower" else "higher"
        return (f"quality_threshold {threshold:g} is outside {metric}'s range {spec.range_text()} ({better} is "
                f"better): a model's {metric} is never there. Set a value in that range, or \"auto\" to require "
                f"{describe_margin(metric)}.")
    return None


def describe_margin(metric: str) -> str:
    """What quality_threshold auto asks of ``metric``, in words."""
    spec = ALL_METRICS[metric]
    margin = AUTO_MARGIN[spec.direction]
    if spec.direction == "lower":
        return f"{metric} at least {margin:.0%} lower than the naive baseline's"
    return f"{metric} at least {margin:.0%} of the way from the naive baseline's to a perfect {spec.high:g}"


def auto_threshold(metric: str, baseline: float) -> float:
    """The bar quality_threshold auto sets from the naive baseline's value of the same metric."""
    spec = ALL_METRICS[metric]
    margin = AUTO_MARGIN[spec.direction]
    if spec.direction == "lower":
        return baseline * (1 - margin)
    return baseline + margin * (spec.high - baseline)


def meets(metric: str, value: float, threshold: float) -> bool:
    return value <= threshold if ALL_METRICS[metric].direction == "lower" else value >= threshold
