"""Live quality: the gated metric on captured answers joined to ground truth, its bar and the verdict."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

if __package__:  # imported from the source tree (tests, benchmarks)
    from . import capture_records, evaluate
    from . import problem_rules as rules
else:  # run as the job's script: its siblings sit beside it in the job's code folder
    import capture_records
    import evaluate
    import problem_rules as rules

# the interval: the value +- Z99 bootstrap standard errors (a normal bootstrap interval: its standard
# error settles with far fewer resamples than a percentile interval's 1% tails, and each resample
# recomputes evaluate.py's whole metric set)
BOOTSTRAP_RESAMPLES = 60
BOOTSTRAP_MAX_ROWS = 20_000  # the standard error is estimated on at most this many rows, then scaled
Z99 = 2.576  # two-sided 99%


class QualitySettingError(ValueError):
    """A quality setting (metric or threshold) that does not fit the model: drift.py reports it as its
    InvalidArgumentError, since it names the job's argument."""


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


def measure(window: capture_records.CaptureWindow, truth: dict[str, list[str]], *, problem_type: str | None,
            labels: list[str] | None, evaluation: dict[str, Any] | None, metric: str, gate: str,
            tolerance: float) -> dict[str, Any] | None:
    """The live metric of the window's labelled rows against the champion (``evaluation``: its
    evaluation.json); ``metric`` and ``gate`` as --quality-metric and --quality-threshold take them.
    None when nothing is labelled or the problem type is unknown."""
    if not truth or problem_type not in rules.METRICS:
        return None
    metric = rules.metric_for(problem_type, metric)
    if metric not in rules.METRICS[problem_type]:
        raise QualitySettingError(f"--quality-metric {metric} does not fit a {problem_type} model; use one of "
                                  f"{sorted(rules.METRICS[problem_type])}.")
    labels = [str(label) for label in labels or []]
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
    champion = ((evaluation or {}).get("metrics") or {}).get(metric)
    result: dict[str, Any] = {"metric": metric, "value": None, "champion_value": champion, "records": len(y),
                              "unmatched_records": unmatched, "unknown_labels": unknown, "interval": None,
                              "bar": None, "direction": rules.ALL_METRICS[metric].direction}
    if not y:
        return result
    y_arr = np.asarray(y, dtype=np.float64 if problem_type == rules.REGRESSION else np.int64)
    answer = np.asarray(answers, dtype=np.float64 if problem_type != rules.MULTICLASS else np.int64)
    classes = len(labels)
    result["value"] = _metric(metric, problem_type, y_arr, answer, classes)
    result["bar"] = quality_bar(metric, champion, gate, tolerance, evaluation)
    if result["value"] is None or result["bar"] is None or rules.meets(metric, result["value"], result["bar"]):
        return result  # the interval decides only when the point estimate misses the bar: spare its cost
    rng = np.random.default_rng(0)
    n = min(len(y_arr), BOOTSTRAP_MAX_ROWS)
    pick = rng.choice(len(y_arr), n, replace=False) if n < len(y_arr) else np.arange(n)
    draws = [_metric(metric, problem_type, y_arr[pick][idx], answer[pick][idx], classes)
             for idx in (rng.integers(0, n, n) for _ in range(BOOTSTRAP_RESAMPLES))]
    draws = [d for d in draws if d is not None]
    if len(draws) > 1:
        error = float(np.std(draws, ddof=1)) * math.sqrt(n / len(y_arr))
        result["interval"] = [result["value"] - Z99 * error, result["value"] + Z99 * error]
    return result


def quality_bar(metric: str, champion: float | None, gate: str, tolerance: float,
                evaluation: dict[str, Any] | None) -> float | None:
    """The worst live value still acceptable: the champion's worsened by the tolerance, or the gate's
    threshold (auto: problem_rules' bar over the naive baseline), whichever is stricter."""
    lower = rules.ALL_METRICS[metric].direction == "lower"
    bars = []
    if champion is not None:
        bars.append(champion * (1 + tolerance) if lower else champion - tolerance)
    if gate == rules.AUTO:
        naive = (((evaluation or {}).get("baseline") or {}).get("metrics") or {}).get(metric)
        if naive is not None:
            bars.append(rules.auto_threshold(metric, float(naive)))
    else:
        try:
            bars.append(float(gate))
        except ValueError:
            raise QualitySettingError(f"--quality-threshold {gate!r} must be a number or auto.") from None
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
