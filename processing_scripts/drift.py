"""Drift and live-quality analysis of an endpoint's captured traffic against the champion's baseline.

    python3 drift.py --capture-dir /opt/ml/processing/capture --baseline-dir /opt/ml/processing/baseline \
        --output-dir /opt/ml/processing/output [--ground-truth-dir /opt/ml/processing/ground_truth]
        [--drift-threshold 0.1] [--significance-level 0.001] [--quality-metric auto]
        [--quality-threshold auto] [--quality-tolerance 0.1] [--min-labelled-records 100]
        [--failure-file /opt/ml/output/message]

Runs as a processing job in the scikit-learn image (pandas, numpy, scipy, scikit-learn) with this
folder as its code. Reads the window's capture files (capture_records.py, any folder depth), the
baseline folder (statistics.json, constraints.json and schema.json from preprocess, evaluation.json
of the champion) and optional ground truth; writes to --output-dir
  constraint_violations.json  Model Monitor's format: {"violations": [{"feature_name",
                              "constraint_check_type", "description"}]}
  drift_summary.json          {"record_count", "row_count", "drifted_feature_share", "max_psi",
                              "features": {name: {"psi", "ks_pvalue", "chi2_pvalue", "drifted", ...}},
                              "live_quality": {...} or null, "quality_degraded", "thresholds", ...}
  report.html                 the same, for a person; self-contained (inline SVG, no network asset)

The checks (constraint_check_type):
  baseline_drift_check      PSI between the baseline and the live distribution - numeric features on 10
                            equal-frequency bins cut at the deciles of the baseline sample (open-ended
                            first and last bins), categorical features on the baseline's categories plus
                            one bin for unseen ones, proportions floored at 1e-4. A feature drifts when
                            its PSI exceeds the threshold (constraints' comparison_threshold, or
                            --drift-threshold) AND the difference is significant at --significance-level:
                            two-sample KS test against the baseline sample (numeric), chi-square test of
                            the baseline counts against the live counts (categorical, bins expecting
                            fewer than 5 live rows pooled). PSI alone fires on sampling noise in small
                            windows (its null expectation is about (bins-1)(1/n+1/N)); a test alone fires
                            on trivial differences in large ones; both together do neither.
  data_type_check           more than datatype_check_threshold of a numeric feature's present cells are
                            not numbers (or, for an Integral feature, not whole numbers)
  completeness_check        the share of present cells fell more than completeness_tolerance below the
                            baseline's completeness, significantly (one-sided binomial test)
  categorical_values_check  more than domain_content_threshold of a categorical feature's present cells
                            are outside the baseline's domain
  missing_column_check      rows lacking a column (CSV rows with too few cells, JSON rows without a key)
  extra_column_check        rows with a column the baseline does not have (CSV cells past the last
                            column are named _c<position>, as Model Monitor names unnamed columns)

Live quality, when ground truth joins captured predictions (by eventId or inferenceId): the gated
metric (--quality-metric, auto = problem_rules' choice: rmse, auc or f1_weighted) computed by
evaluate.py's own metric functions on the live labels and the endpoint's answers (the label decoder's
value, or label and probability). quality_degraded is true when at least --min-labelled-records rows
are labelled and even the favourable end of a 99% bootstrap interval of the live metric (200 resamples,
computed only when the point estimate misses the bar, the one case where it decides) is worse than
the bar: the champion's test value worsened by --quality-tolerance (x(1+tol) for an error metric, -tol
for a score) or the gate's --quality-threshold, whichever is stricter.

Evidently (the library AWS points Model Monitor users to) was tried and not adopted: evidently 0.7.23
pulls 33 packages (~360 MB: plotly, statsmodels, nltk, litestar, ...) on top of pandas/scipy/sklearn,
took 58 s to install into a fresh virtualenv, and its import fails under this project's pandas 3.1.1
(pandas.core.dtypes.common.infer_dtype_from_object is gone). Installing it into the scikit-learn image
through a requirements.txt would risk moving that image's pandas/numpy under preprocess.py, adds a
minute to every job start, and it writes neither Model Monitor's violation format nor a bounded,
mergeable baseline. PSI, KS and chi-square are a few lines on scipy.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__:  # imported from the source tree (tests, benchmarks)
    from . import capture_records, drift_report, evaluate
    from . import monitor_baseline as mb
    from . import problem_rules as rules
else:  # run as the job's script: its siblings sit beside it in the job's code folder
    import capture_records
    import drift_report
    import evaluate
    import monitor_baseline as mb
    import problem_rules as rules

log = logging.getLogger("drift")

PSI_BINS = 10
PSI_FLOOR = 1e-4  # a bin empty on one side counts as this proportion (else PSI is infinite)
MIN_EXPECTED = 5  # chi-square: categories expecting fewer live rows are pooled
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_MAX_ROWS = 20_000  # the interval is estimated on at most this many labelled rows
CONFIDENCE = 0.99
BOOLEANS = {"True": "1", "TRUE": "1", "true": "1", "False": "0", "FALSE": "0", "false": "0"}
OUTPUT_FILES = ("constraint_violations.json", "drift_summary.json", "report.html")


class DriftError(Exception):
    """Base of every error caused by the job's inputs or arguments."""


class BaselineNotFound(DriftError):
    pass


class BaselineFormatError(DriftError):
    pass


class NoCapturedRecords(DriftError):
    pass


class InvalidArgumentError(DriftError):
    pass


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Options:
    capture_dir: Path
    baseline_dir: Path
    output_dir: Path
    ground_truth_dir: Path | None = None
    drift_threshold: float | None = None  # None: constraints.json's comparison thresholds
    significance_level: float | None = None  # None: constraints.json's, else mb.DEFAULT_SIGNIFICANCE
    quality_metric: str = "auto"
    quality_threshold: str = "auto"
    quality_tolerance: float = 0.1
    min_labelled_records: int = 100

    def validate(self) -> None:
        if self.drift_threshold is not None and not self.drift_threshold > 0:
            raise InvalidArgumentError(f"--drift-threshold {self.drift_threshold} must be a positive PSI (0.1 is usual).")
        if self.significance_level is not None and not 0 < self.significance_level < 1:
            raise InvalidArgumentError(f"--significance-level {self.significance_level} must be between 0 and 1.")
        if not 0 <= self.quality_tolerance < 1:
            raise InvalidArgumentError(f"--quality-tolerance {self.quality_tolerance} must be in [0, 1).")
        if self.min_labelled_records < 1:
            raise InvalidArgumentError("--min-labelled-records must be 1 or more.")
        if self.quality_metric != rules.AUTO and self.quality_metric not in rules.ALL_METRICS:
            raise InvalidArgumentError(f"--quality-metric {self.quality_metric!r} is not auto or one of "
                                       f"{sorted(rules.ALL_METRICS)}.")


@dataclass
class Baseline:
    statistics: dict[str, Any]
    constraints: dict[str, Any]
    schema: dict[str, Any] | None
    evaluation: dict[str, Any] | None

    @property
    def columns(self) -> list[str]:
        """The columns a request carries, in order: schema.json's input_columns (the featurizer's
        contract), else the monitored features."""
        if self.schema and self.schema.get("input_columns"):
            return list(self.schema["input_columns"])
        return [f["name"] for f in self.statistics["features"]]

    @property
    def problem_type(self) -> str | None:
        return (self.evaluation or {}).get("problem_type") or (self.schema or {}).get("problem_type")

    @property
    def labels(self) -> list[str] | None:
        return (self.evaluation or {}).get("labels") or (self.schema or {}).get("labels")


def _find(folder: Path, name: str) -> Path | None:
    path = folder / name
    if path.is_file():
        return path
    found = sorted(folder.rglob(name)) if folder.is_dir() else []
    return found[0] if found else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BaselineFormatError(f"{path} is not readable JSON ({err}).") from None
    if not isinstance(document, dict):
        raise BaselineFormatError(f"{path} holds a {type(document).__name__}, not a JSON object.")
    return document


def load_baseline(folder: Path) -> Baseline:
    documents = {}
    for name in ("statistics.json", "constraints.json"):
        path = _find(folder, name)
        if path is None:
            raise BaselineNotFound(f"No {name} under {folder}. Point --baseline-dir at the champion's schema/ "
                                   "output of preprocess (statistics.json, constraints.json, schema.json).")
        documents[name] = _read_json(path)
    statistics, constraints = documents["statistics.json"], documents["constraints.json"]
    if not isinstance(statistics.get("features"), list) or not statistics["features"]:
        raise BaselineFormatError(f"statistics.json under {folder} has no features list (Model Monitor's format).")
    optional = {name: _find(folder, name) for name in ("schema.json", "evaluation.json")}
    return Baseline(statistics, constraints, *(_read_json(p) if p else None for p in optional.values()))


# ---------------------------------------------------------------------------------------------
# Live cells -> values, as the featurizer reads them


@dataclass
class LiveFeature:
    """One feature's live cells, decoded: numbers (numeric) or category keys (categorical)."""

    rows: int
    missing: int
    values: np.ndarray | pd.Series  # present values only
    type_errors: int = 0  # present cells that are not numbers (numeric features)
    not_whole: int = 0  # numbers that are not whole (an Integral feature)
    examples: list[str] = field(default_factory=list)


def _present(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(text with leading spaces removed, missing mask): NA tokens and absent cells are missing."""
    text = cells.astype(object)
    text = text.where(text.isna(), text.astype(str).str.lstrip(" "))
    missing = text.isna() | text.isin(rules.MISSING_MARKERS)
    return text, missing


def decode_numeric(cells: pd.Series, integral: bool) -> LiveFeature:
    text, missing = _present(cells)
    candidates = text[~missing].replace(BOOLEANS)
    numbers = pd.to_numeric(candidates, errors="coerce")
    bad = numbers.isna()
    infinite = np.isinf(numbers.to_numpy(dtype=np.float64, na_value=np.nan))
    values = numbers[~bad & ~infinite].to_numpy(dtype=np.float64)
    not_whole = int((np.mod(values, 1) != 0).sum()) if integral else 0
    examples = list(dict.fromkeys(candidates[bad].astype(str).str.slice(0, 40).head(50)))[:3]
    # an infinite number is missing, as preprocess read it in training (feature_rules.py)
    return LiveFeature(len(cells), int(missing.sum() + infinite.sum()), values, int(bad.sum()), not_whole, examples)


def decode_categorical(cells: pd.Series) -> LiveFeature:
    text, missing = _present(cells)
    keys = mb.category_keys(text.where(~missing))
    present = keys.dropna()
    return LiveFeature(len(cells), len(keys) - len(present), present)


# ---------------------------------------------------------------------------------------------
# Distances and tests


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    e = np.maximum(expected / expected.sum(), PSI_FLOOR)
    a = np.maximum(actual / actual.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def decile_edges(sample: np.ndarray) -> np.ndarray:
    """Inner bin edges at the baseline sample's deciles; repeated edges (a value holding over a tenth of
    the rows, such as pdays=-1) collapse, so that value gets a bin of its own."""
    return np.unique(np.quantile(sample, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in (-inf, e1], (e1, e2], ..., (ek, inf)."""
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)


def numeric_drift(sample: np.ndarray, live: np.ndarray) -> dict[str, Any]:
    from scipy import stats

    edges = decile_edges(sample)
    expected, actual = bin_counts(sample, edges), bin_counts(live, edges)
    # the exact distribution costs O(n*m); past a million pairs the asymptotic one is as good at these levels
    method = "exact" if sample.size * live.size <= 1_000_000 else "asymp"
    return {"psi": psi(expected, actual), "ks_pvalue": float(stats.ks_2samp(sample, live, method=method).pvalue),
            "bins": {"edges": edges.tolist(), "baseline": (expected / expected.sum()).tolist(),
                     "live": (actual / actual.sum()).tolist()}}


def categorical_drift(baseline: dict[str, float], live: pd.Series) -> dict[str, Any]:
    from scipy import stats

    names = list(baseline)
    live_counts = live.value_counts()
    expected = np.asarray([baseline[n] for n in names] + [0.0])
    actual = np.asarray([float(live_counts.get(n, 0)) for n in names] + [float(len(live) - live_counts.reindex(
        names).fillna(0).sum())])
    # pool the bins expecting fewer than MIN_EXPECTED live rows, so the chi-square approximation holds
    share = expected / expected.sum()
    small = share * actual.sum() < MIN_EXPECTED
    table = np.vstack([np.append(expected[~small], expected[small].sum()),
                       np.append(actual[~small], actual[small].sum())])
    table = table[:, table.sum(axis=0) > 0]
    pvalue = float(stats.chi2_contingency(table, correction=False).pvalue) if table.shape[1] > 1 else 1.0
    return {"psi": psi(expected, actual), "chi2_pvalue": pvalue,
            "bins": {"categories": names + ["(unseen)"], "baseline": share.tolist(),
                     "live": (actual / max(actual.sum(), 1)).tolist()}}


# ---------------------------------------------------------------------------------------------
# The checks


@dataclass
class Thresholds:
    numeric_psi: float
    categorical_psi: float
    significance: float
    datatype: float
    domain: float
    completeness: float

    @classmethod
    def of(cls, constraints: dict[str, Any], options: Options) -> Thresholds:
        config = constraints.get("monitoring_config") or {}
        distribution = config.get("distribution_constraints") or {}
        numeric = options.drift_threshold or distribution.get("comparison_threshold", mb.DEFAULT_DRIFT_THRESHOLD)
        categorical = options.drift_threshold or distribution.get("categorical_comparison_threshold", numeric)
        return cls(float(numeric), float(categorical),
                   float(options.significance_level or distribution.get("significance_level", mb.DEFAULT_SIGNIFICANCE)),
                   float(config.get("datatype_check_threshold", mb.DEFAULT_DATATYPE_THRESHOLD)),
                   float(config.get("domain_content_threshold", mb.DEFAULT_DOMAIN_THRESHOLD)),
                   float(config.get("completeness_tolerance", mb.DEFAULT_COMPLETENESS_TOLERANCE)))

    def to_json(self) -> dict[str, float]:
        return {"comparison_threshold": self.numeric_psi, "categorical_comparison_threshold": self.categorical_psi,
                "significance_level": self.significance, "datatype_check_threshold": self.datatype,
                "domain_content_threshold": self.domain, "completeness_tolerance": self.completeness}


def violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "0%"


def column_checks(window: capture_records.CaptureWindow, columns: list[str]) -> list[dict[str, str]]:
    """missing_column_check and extra_column_check: rows whose shape is not the baseline's."""
    found = []
    rows = len(window.cells) + window.malformed_rows
    missing = dict(window.absent_keys)
    for cells, count in window.short_rows.items():
        for name in columns[cells:]:
            missing[name] = missing.get(name, 0) + count
    for name in columns:
        if missing.get(name):
            found.append(violation(name, "missing_column_check",
                                   f"{missing[name]} of {rows} rows ({_pct(missing[name], rows)}) lack column {name!r}; "
                                   f"the baseline has {len(columns)} columns: {', '.join(columns)}."))
    extra = dict(window.extra_keys)
    for cells, count in window.long_rows.items():
        for position in range(len(columns), cells):
            extra[f"_c{position}"] = extra.get(f"_c{position}", 0) + count
    for name, count in sorted(extra.items()):
        found.append(violation(name, "extra_column_check",
                               f"{count} of {rows} rows ({_pct(count, rows)}) carry column {name!r}, which the "
                               f"baseline does not have (it has {len(columns)} columns)."))
    return found


def feature_checks(name: str, stats: dict[str, Any], constraint: dict[str, Any], cells: pd.Series,
                   limits: Thresholds) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """One feature's summary entry and violations."""
    from scipy import stats as sps

    numeric = stats["inferred_type"] != mb.STRING
    found = []
    if numeric:
        live = decode_numeric(cells, stats["inferred_type"] == mb.INTEGRAL)
        present = live.rows - live.missing - live.type_errors
        shown = f" (e.g. {', '.join(map(repr, live.examples))})" if live.examples else ""
        if live.rows and live.type_errors / max(live.rows - live.missing, 1) > limits.datatype:
            found.append(violation(name, "data_type_check",
                                   f"{live.type_errors} of {live.rows - live.missing} present values "
                                   f"({_pct(live.type_errors, live.rows - live.missing)}) are not numbers{shown}; the "
                                   f"baseline's type is {stats['inferred_type']} (threshold "
                                   f"{limits.datatype:g})."))
        elif present and live.not_whole / present > limits.datatype:
            found.append(violation(name, "data_type_check",
                                   f"{live.not_whole} of {present} values ({_pct(live.not_whole, present)}) are "
                                   f"Fractional; the baseline's type is Integral (threshold {limits.datatype:g})."))
    else:
        live = decode_categorical(cells)
        present = len(live.values)
    entry: dict[str, Any] = {"kind": mb.NUMERIC if numeric else mb.CATEGORICAL, "inferred_type": stats["inferred_type"],
                             "rows": live.rows, "present": int(present), "psi": None, "ks_pvalue": None,
                             "chi2_pvalue": None, "drifted": False}
    # completeness (the share of non-null cells, a non-number included: data_type_check judges those):
    # a significant fall of more than the tolerance
    expected = float(constraint.get("completeness", 1.0))
    absent = live.missing
    observed = 1 - absent / live.rows if live.rows else 1.0
    entry["completeness"] = {"baseline": expected, "live": observed}
    if live.rows and expected - observed > limits.completeness:
        pvalue = float(sps.binomtest(int(absent), live.rows, min(max(1 - expected, 0.0), 1.0),
                                     alternative="greater").pvalue) if expected < 1 else 0.0
        if pvalue < limits.significance:
            found.append(violation(name, "completeness_check",
                                   f"{observed:.2%} of {live.rows} rows have a value, against {expected:.2%} in the "
                                   f"baseline (tolerance {limits.completeness:g}, binomial p={pvalue:.2g})."))
    if not present:
        return entry, found
    if numeric:
        sample = np.asarray(stats["numerical_statistics"]["distribution"]["sample"]["values"], dtype=np.float64)
        result = numeric_drift(sample, live.values)
        threshold, pvalue, test = limits.numeric_psi, result["ks_pvalue"], "KS"
        entry.update(live_mean=float(np.mean(live.values)), baseline_mean=stats["numerical_statistics"]["mean"],
                     baseline_std=stats["numerical_statistics"]["std_dev"])
        moved = (f"; live mean {entry['live_mean']:.4g}, baseline mean {entry['baseline_mean']:.4g} "
                 f"(std {entry['baseline_std']:.4g})")
    else:
        buckets = stats["string_statistics"]["distribution"]["categorical"]["buckets"]
        result = categorical_drift({b["value"]: float(b["count"]) for b in buckets}, live.values)
        threshold, pvalue, test = limits.categorical_psi, result["chi2_pvalue"], "chi-square"
        domains = (constraint.get("string_constraints") or {}).get("domains")
        if domains is not None:
            unknown = live.values[~live.values.isin(domains)]
            if len(unknown) / present > limits.domain:
                top = ", ".join(repr(v) for v in unknown.value_counts().index[:5])
                found.append(violation(name, "categorical_values_check",
                                       f"{len(unknown)} of {present} values ({_pct(len(unknown), present)}) are not "
                                       f"among the baseline's {len(domains)} categories (e.g. {top}; threshold "
                                       f"{limits.domain:g})."))
        live_share = dict(zip(result["bins"]["categories"], result["bins"]["live"]))
        base_share = dict(zip(result["bins"]["categories"], result["bins"]["baseline"]))
        moved_most = sorted(live_share, key=lambda c: -abs(live_share[c] - base_share[c]))[:3]
        moved = "; " + ", ".join(f"{c!r} {base_share[c]:.1%} -> {live_share[c]:.1%}" for c in moved_most)
    entry.update(psi=result["psi"], bins=result["bins"])
    entry["ks_pvalue" if numeric else "chi2_pvalue"] = pvalue
    entry["drifted"] = bool(result["psi"] > threshold and pvalue < limits.significance)
    if entry["drifted"]:
        found.append(violation(name, "baseline_drift_check",
                               f"PSI {result['psi']:.3f} > {threshold:g} and {test} p={pvalue:.2g} < "
                               f"{limits.significance:g} over {present} values{moved}."))
    return entry, found


# ---------------------------------------------------------------------------------------------
# Live quality


def decode_answers(text: str, media: str, problem_type: str) -> list[tuple]:
    """The label decoder's answer as rows: (value,) for regression, (label, probability, {label: p} or
    None) for classification."""
    if media == capture_records.JSON_TYPE:
        predictions = json.loads(text)["predictions"]
        if problem_type == rules.REGRESSION:
            return [(float(p["score"]),) for p in predictions]
        return [(str(p["label"]), float(p["probability"]), p.get("probabilities")) for p in predictions]
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if problem_type == rules.REGRESSION:
        return [(float(line.split(",")[0]),) for line in lines]
    rows = []
    for line in lines:
        cells = capture_records.split_cells(line) if '"' in line else line.rsplit(",", 1)
        rows.append((cells[0], float(cells[1]), None))
    return rows


def _metric(metric: str, problem_type: str, y: np.ndarray, answer: np.ndarray, classes: int) -> float | None:
    """The gated metric by evaluate.py's functions: the same definitions the gate judged the champion by."""
    if problem_type == rules.REGRESSION:
        return evaluate.regression_metrics(y, answer).get(metric)
    if problem_type == rules.BINARY:
        return evaluate.binary_metrics(y, answer).get(metric)
    return evaluate.multiclass_metrics(y, answer, classes).get(metric)


def live_quality(window: capture_records.CaptureWindow, truth: dict[str, list[str]], baseline: Baseline,
                 options: Options) -> dict[str, Any] | None:
    problem_type = baseline.problem_type
    if not truth or problem_type not in rules.METRICS:
        return None
    metric = rules.metric_for(problem_type, options.quality_metric)
    if metric not in rules.METRICS[problem_type]:
        raise InvalidArgumentError(f"--quality-metric {metric} does not fit a {problem_type} model; use one of "
                                   f"{sorted(rules.METRICS[problem_type])}.")
    labels = [str(label) for label in baseline.labels or []]
    index = {rules.label_key(label): i for i, label in enumerate(labels)}
    y, answers, unmatched, unknown = [], [], 0, 0
    for record, event in enumerate(window.event_ids):
        given = truth.get(event)
        if given is None and window.inference_ids[record] is not None:
            given = truth.get(str(window.inference_ids[record]))
        output = window.outputs[record] if record < len(window.outputs) else None
        if given is None:
            continue
        try:
            rows = decode_answers(*output, problem_type) if output else []
        except (ValueError, KeyError, TypeError, IndexError):
            rows = []
        if len(rows) != len(given):
            unmatched += 1
            continue
        for label, row in zip(given, rows):
            if problem_type == rules.REGRESSION:
                try:
                    y.append(float(label))
                except ValueError:
                    unknown += 1
                    continue
                answers.append(row[0])
                continue
            key = rules.label_key(label)
            if key not in index or rules.label_key(row[0]) not in index:
                unknown += 1
                continue
            y.append(index[key])
            if problem_type == rules.BINARY:
                # P(the positive class, the second label): the JSON answer lists it; the CSV answer's
                # probability is the answered label's
                p = (row[2] or {}).get(labels[1])
                if p is None:
                    p = row[1] if index[rules.label_key(row[0])] == 1 else 1.0 - row[1]
                answers.append(float(p))
            else:
                answers.append(index[rules.label_key(row[0])])
    champion = ((baseline.evaluation or {}).get("metrics") or {}).get(metric)
    result: dict[str, Any] = {"metric": metric, "value": None, "champion_value": champion, "records": len(y),
                              "unmatched_records": unmatched, "unknown_labels": unknown, "interval": None,
                              "bar": None, "direction": rules.ALL_METRICS[metric].direction}
    if not y:
        return result
    y_arr = np.asarray(y, dtype=np.float64 if problem_type == rules.REGRESSION else np.int64)
    answer = np.asarray(answers, dtype=np.float64 if problem_type != rules.MULTICLASS else np.int64)
    classes = len(labels)
    result["value"] = _metric(metric, problem_type, y_arr, answer, classes)
    result["bar"] = quality_bar(metric, champion, options.quality_threshold, options.quality_tolerance, baseline)
    if result["value"] is None or result["bar"] is None or rules.meets(metric, result["value"], result["bar"]):
        return result  # the interval decides only when the point estimate misses the bar: spare its cost
    rng = np.random.default_rng(0)
    n = min(len(y_arr), BOOTSTRAP_MAX_ROWS)
    pick = rng.choice(len(y_arr), n, replace=False) if n < len(y_arr) else np.arange(n)
    draws = [_metric(metric, problem_type, y_arr[pick][idx], answer[pick][idx], classes)
             for idx in (rng.integers(0, n, n) for _ in range(BOOTSTRAP_RESAMPLES))]
    draws = [d for d in draws if d is not None]
    if draws:
        tail = (1 - CONFIDENCE) * 100
        result["interval"] = [float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))]
    return result


def quality_bar(metric: str, champion: float | None, gate: str, tolerance: float, baseline: Baseline) -> float | None:
    """The worst live value still acceptable: the champion's worsened by the tolerance, or the gate's
    threshold (auto: problem_rules' bar over the naive baseline), whichever is stricter."""
    lower = rules.ALL_METRICS[metric].direction == "lower"
    bars = []
    if champion is not None:
        bars.append(champion * (1 + tolerance) if lower else champion - tolerance)
    if gate == rules.AUTO:
        naive = (((baseline.evaluation or {}).get("baseline") or {}).get("metrics") or {}).get(metric)
        if naive is not None:
            bars.append(rules.auto_threshold(metric, float(naive)))
    else:
        try:
            bars.append(float(gate))
        except ValueError:
            raise InvalidArgumentError(f"--quality-threshold {gate!r} must be a number or auto.") from None
    if not bars:
        return None
    return min(bars) if lower else max(bars)


def degraded(quality: dict[str, Any] | None, minimum: int) -> bool:
    """True when enough rows are labelled and even the favourable end of the interval misses the bar."""
    if not quality or quality["value"] is None or quality["bar"] is None or quality["records"] < minimum:
        return False
    low, high = quality["interval"] or (quality["value"], quality["value"])
    if quality["direction"] == "lower":
        return low > quality["bar"]
    return high < quality["bar"]


# ---------------------------------------------------------------------------------------------
# The whole run


def analyse(window: capture_records.CaptureWindow, baseline: Baseline, options: Options,
            truth: dict[str, list[str]] | None = None) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(violations, drift summary) of a decoded window against the baseline."""
    limits = Thresholds.of(baseline.constraints, options)
    constraints = {f["name"]: f for f in baseline.constraints.get("features", [])}
    violations = column_checks(window, baseline.columns)
    features = {}
    for stats in baseline.statistics["features"]:
        name = stats["name"]
        if name not in window.cells.columns:
            continue  # reported by the column checks
        entry, found = feature_checks(name, stats, constraints.get(name, {}), window.cells[name], limits)
        features[name] = entry
        violations += found
    drifted = [name for name, entry in features.items() if entry["drifted"]]
    psis = [entry["psi"] for entry in features.values() if entry["psi"] is not None]
    quality = live_quality(window, truth or {}, baseline, options)
    summary = {
        "record_count": window.record_count,
        "row_count": len(window.cells),
        "malformed_rows": window.malformed_rows,
        "undecodable_records": dict(window.undecodable),
        "drifted_feature_share": len(drifted) / len(features) if features else 0.0,
        "drifted_features": drifted,
        "max_psi": max(psis) if psis else None,
        "features": features,
        "live_quality": quality,
        "quality_degraded": degraded(quality, options.min_labelled_records),
        "thresholds": {**limits.to_json(), "quality_tolerance": options.quality_tolerance,
                       "min_labelled_records": options.min_labelled_records},
        "violation_count": len(violations),
    }
    return violations, summary


def write_outputs(output_dir: Path, violations: list[dict[str, str]], summary: dict[str, Any],
                  baseline: Baseline) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    documents = {
        "constraint_violations.json": json.dumps({"violations": violations}, indent=2) + "\n",
        "drift_summary.json": json.dumps(summary, indent=2) + "\n",
        "report.html": drift_report.render(summary, violations, baseline.columns),
    }
    for name, text in documents.items():  # each file whole or not at all
        staging = output_dir / f".{name}.{os.getpid()}.tmp"
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, output_dir / name)


def run(options: Options) -> dict[str, Any]:
    options.validate()
    baseline = load_baseline(options.baseline_dir)
    keep_outputs = options.ground_truth_dir is not None and options.ground_truth_dir.exists()
    try:
        window = capture_records.read_capture(options.capture_dir, baseline.columns, keep_outputs)
        truth = capture_records.read_ground_truth(options.ground_truth_dir) if keep_outputs else {}
    except capture_records.CaptureFormatError as err:
        raise DriftError(str(err)) from None
    if not window.record_count:
        skipped = f" ({sum(window.undecodable.values())} lines could not be read: {dict(window.undecodable)})" \
            if window.undecodable else ""
        raise NoCapturedRecords(f"No capture records under {options.capture_dir} ({window.files} *.jsonl files)"
                                f"{skipped}. Point --capture-dir at the window's data-capture files.")
    violations, summary = analyse(window, baseline, options, truth)
    write_outputs(options.output_dir, violations, summary, baseline)
    log.info("%d records, %d rows: %d violations, drifted share %.3f, max PSI %s, quality degraded %s",
             summary["record_count"], summary["row_count"], len(violations), summary["drifted_feature_share"],
             summary["max_psi"], summary["quality_degraded"])
    return summary


def parse_args(argv: list[str] | None) -> tuple[Options, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture-dir", type=Path, default=Path("/opt/ml/processing/capture"))
    parser.add_argument("--baseline-dir", type=Path, default=Path("/opt/ml/processing/baseline"))
    parser.add_argument("--ground-truth-dir", type=Path, default=None)
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--drift-threshold", type=float, default=None)
    parser.add_argument("--significance-level", type=float, default=None)
    parser.add_argument("--quality-metric", default=rules.AUTO)
    parser.add_argument("--quality-threshold", default=rules.AUTO)
    parser.add_argument("--quality-tolerance", type=float, default=0.1)
    parser.add_argument("--min-labelled-records", type=int, default=100)
    parser.add_argument("--failure-file", default=None)
    args = parser.parse_args(argv)
    options = Options(args.capture_dir, args.baseline_dir, args.output_dir, args.ground_truth_dir,
                      args.drift_threshold, args.significance_level, args.quality_metric, args.quality_threshold,
                      args.quality_tolerance, args.min_labelled_records)
    return options, args.failure_file


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options, failure_file = parse_args(argv)
    try:
        run(options)
    except Exception as err:
        if not isinstance(err, DriftError):
            log.exception("Unexpected failure")
        line = f"{type(err).__name__}: {err}"
        print(line, file=sys.stderr, flush=True)
        if failure_file:
            Path(failure_file).parent.mkdir(parents=True, exist_ok=True)
            Path(failure_file).write_text(line + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
