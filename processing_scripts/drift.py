"""Drift and live-quality analysis of an endpoint's captured traffic against the champion's baseline.

    python3 drift.py --capture-dir /opt/ml/processing/capture --baseline-dir /opt/ml/processing/baseline \
        --output-dir /opt/ml/processing/output [--ground-truth-dir /opt/ml/processing/ground_truth]
        [--drift-threshold 0.1] [--significance-level 0.001] [--quality-metric auto]
        [--quality-threshold auto] [--quality-tolerance 0.1] [--min-labelled-records 100]
        [--failure-file /opt/ml/output/message]

Runs as a processing job in the scikit-learn image (pandas, numpy, scipy, scikit-learn; the same
verdicts under pandas 1.5.3/scipy 1.10/scikit-learn 1.2 as under the project's pandas 3.1/scipy 1.17)
with this folder as its code. Reads the window's capture files (capture_records.py, any folder depth), the
baseline folder (statistics.json, constraints.json and schema.json from preprocess, evaluation.json
of the champion) and optional ground truth; writes to --output-dir
  constraint_violations.json  Model Monitor's format: {"violations": [{"feature_name",
                              "constraint_check_type", "description"}]}
  drift_summary.json          {"record_count", "row_count", "drifted_feature_share", "max_psi",
                              "features": {name: {"psi", "ks_pvalue", "chi2_pvalue", "drifted", ...}},
                              "live_quality": {...} or null, "quality_degraded", "thresholds", ...}
  report.html                 the same, for a person; self-contained (inline SVG, no network asset)

This file is the job: arguments, the baseline folder, the run and its outputs. Its siblings hold the rest:
drift_checks.py the checks below (on drift_stats.py's PSI and tests), live_quality.py the quality verdict,
drift_report.py the page.

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
are labelled and even the favourable end of a 99% interval of the live metric (the value +- 2.576
bootstrap standard errors, 60 resamples; computed only when the point estimate misses the bar, the
one case where it decides) is worse than the bar: the champion's test value worsened by --quality-tolerance (x(1+tol) for an error metric, -tol
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__:  # imported from the source tree (tests, benchmarks)
    from . import capture_records, drift_checks, drift_report, live_quality
    from . import problem_rules as rules
else:  # run as the job's script: its siblings sit beside it in the job's code folder
    import capture_records
    import drift_checks
    import drift_report
    import live_quality
    import problem_rules as rules

log = logging.getLogger("drift")

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
    significance_level: float | None = None  # None: constraints.json's, else monitor_baseline.DEFAULT_SIGNIFICANCE
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
# The whole run


def analyse(window: capture_records.CaptureWindow, baseline: Baseline, options: Options,
            truth: dict[str, list[str]] | None = None) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(violations, drift summary) of a decoded window against the baseline."""
    limits = drift_checks.Thresholds.of(baseline.constraints, options.drift_threshold, options.significance_level)
    constraints = {f["name"]: f for f in baseline.constraints.get("features", [])}
    violations = drift_checks.column_checks(window, baseline.columns)
    features = {}
    for stats in baseline.statistics["features"]:
        name = stats["name"]
        if name not in window.cells.columns:
            continue  # reported by the column checks
        entry, found = drift_checks.feature_checks(name, stats, constraints.get(name, {}), window.cells[name], limits)
        features[name] = entry
        violations += found
    drifted = [name for name, entry in features.items() if entry["drifted"]]
    psis = [entry["psi"] for entry in features.values() if entry["psi"] is not None]
    try:
        quality = live_quality.measure(window, truth or {}, problem_type=baseline.problem_type, labels=baseline.labels,
                                       evaluation=baseline.evaluation, metric=options.quality_metric,
                                       gate=options.quality_threshold, tolerance=options.quality_tolerance)
    except live_quality.QualitySettingError as err:
        raise InvalidArgumentError(str(err)) from None
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
        "quality_degraded": live_quality.degraded(quality, options.min_labelled_records),
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
    # read only when it exists: a window without labels has no quality figure
    parser.add_argument("--ground-truth-dir", type=Path, default=Path("/opt/ml/processing/ground_truth"))
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
