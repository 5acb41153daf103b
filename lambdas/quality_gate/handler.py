"""Quality gate: does the evaluated model meet the threshold and do no worse than the deployed champion?

Event: {"evaluation_s3_uri", "metric", "threshold" (a number, or "auto": beat the naive baseline
evaluate.py scored on the same test split by the shared rules' margin), "direction"
("lower"|"higher"), "champion_s3_uri", "no_worse_than_champion"}. Returns {"passed", "metric",
"value", "threshold", "threshold_rule", "baseline_value", "baseline", "champion_value",
"target_column", "problem_type", "reason", "champion_etag"}; the state machine's Choice fails the
execution with ModelQualityBelowThreshold when "passed" is false, so a rejection is a decision, not an
error.

The deploy repeats the check inside the deployment lock, with "gate_champion_etag" (the champion
record's ETag the gate saw, or null) and "execution_started": a champion recorded since the gate, or
since the execution started (a concurrent execution's), must be beaten, not matched ("champion_changed"; a tie keeps the model already serving), and the returned
"champion_etag" is what the champion record is then replaced under (S3 If-Match / If-None-Match).

Like for like: with "champion_rescored_s3_uri" (the champion scored by the training pipeline on this
run's own test split, processing_scripts/champion_metrics.py), the champion's value is that one, so a
retrain on new data is measured against the champion on the same rows; without it (no champion run
record, or the scoring failed), the champion record's value from its own test split, and the
decision says which ("champion_scored_on").

One stack serves one use case: a champion trained for another target column, problem type or set of
input columns is not a bar this model can be measured against, so that raises ChampionMismatch (a
named error saying what to do) instead of comparing unrelated metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import boto3

if __package__:  # imported from the source tree (tests)
    from . import problem_rules as rules
else:  # the Lambda runtime imports handler.py from the asset root, where CDK staged the rules beside it
    import problem_rules as rules


class EvaluationReportError(Exception):
    """The evaluation report is missing or does not hold the gated metric."""


class ChampionMismatch(Exception):
    """The deployed champion predicts another target, or another kind of problem, than this model."""


def metric_value(report: dict[str, Any], metric: str, where: str) -> float:
    metrics = report.get("metrics")
    if not isinstance(metrics, dict) or metric not in metrics:
        available = sorted(metrics) if isinstance(metrics, dict) else []
        raise EvaluationReportError(
            f"{where} has no metric {metric!r} (it has {available}). Set quality_metric to one of those."
        )
    value = metrics[metric]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise EvaluationReportError(f"{where}: metric {metric!r} is {value!r}, not a number.")
    return float(value)


def baseline_value(report: dict[str, Any], metric: str) -> float | None:
    """The naive baseline's score on the same test split, when evaluate.py reported one."""
    baseline = report.get("baseline")
    value = baseline.get("metrics", {}).get(metric) if isinstance(baseline, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(value)


def not_worse(value: float, reference: float, direction: str) -> bool:
    """A retrain on the same data that matches the champion may replace it; a regression may not."""
    return value <= reference if direction == "lower" else value >= reference


def _shown(columns: list[str]) -> str:
    return str(columns) if len(columns) <= 6 else f"{columns[:6]} and {len(columns) - 6} more"


def check_same_use_case(evaluation: dict[str, Any], champion: dict[str, Any], champion_uri: str) -> None:
    """Refuse to measure a model against a champion of another use case: another target column,
    problem type or set of input columns (the endpoint's request format)."""
    differs = []
    for key, what in (("target_column", "target column"), ("problem_type", "problem type"),
                      ("input_columns", "input columns")):
        mine, theirs = evaluation.get(key), champion.get(key)
        # A record written before champions carried their use case can only be checked on what it has.
        if mine is not None and theirs is not None and mine != theirs:
            differs.append(what)
    if differs:
        detail = ""
        if "input columns" in differs:
            detail = (f" This model's input columns are {_shown(evaluation['input_columns'])}; the champion's are "
                      f"{_shown(champion['input_columns'])}.")
        raise ChampionMismatch(
            f"This model predicts {evaluation.get('target_column')!r} ({evaluation.get('problem_type')}), but the "
            f"deployed champion ({champion_uri}) predicts {champion.get('target_column')!r} "
            f"({champion.get('problem_type')}): they differ in {' and '.join(differs)}.{detail} One stack serves one use "
            "case, so their metrics cannot be compared. Train this table in its own stack (`cdk deploy -c "
            "stack_name=<Name>`, or `python -m emulator run --stack <Name>`), or, to replace the use case on purpose, "
            "delete that champion record (and stop sending the old kind of request to the endpoint) before running again."
        )


def decide(
    evaluation: dict[str, Any],
    champion: dict[str, Any] | None,
    metric: str,
    threshold: float | str,
    direction: str,
    no_worse_than_champion: bool,
    evaluation_uri: str = "evaluation.json",
    champion_uri: str = "the champion record",
    rescored: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The pure core of the gate. ``rescored``: the champion's evaluation on this model's test split."""
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    value = metric_value(evaluation, metric, evaluation_uri)
    baseline = baseline_value(evaluation, metric)
    word = "at most" if direction == "lower" else "at least"
    strategy = (evaluation.get("baseline") or {}).get("strategy", "a naive prediction")
    if threshold == rules.AUTO:
        if baseline is None:
            raise EvaluationReportError(
                f"{evaluation_uri} has no naive-baseline {metric!r}, which quality_threshold \"auto\" compares with "
                "(an evaluation written by an older evaluate.py?). Re-run the pipeline, or set quality_threshold."
            )
        bar = rules.auto_threshold(metric, baseline)
        rule = f"auto: {rules.describe_margin(metric)}, {word} {bar:.6g}"
    else:
        bar = float(threshold)
        rule = f"{word} {bar:g}"
    meets = value <= bar if direction == "lower" else value >= bar
    # The baseline beside the model, in every reason, so a person sees what "good" was measured against.
    beside = (f"; the naive baseline ({strategy}) scores {metric} {baseline:.6g} on the same test split"
              if baseline is not None else "")
    champion_value = None
    scored_on = None
    # A model that misses the bar is refused for that, whatever the champion; only one that meets it
    # is measured against the champion, which must then be of the same use case.
    if champion is not None and meets:
        check_same_use_case(evaluation, champion, champion_uri)
        for document, where in ((rescored, "this model's test split"), (champion, "its own test split")):
            if document is None:
                continue
            try:
                champion_value = metric_value(document, metric, "the champion's evaluation")
                scored_on = where
                break
            except EvaluationReportError:
                continue  # a champion gated on another metric cannot be compared
    if not meets:
        reason = f"{metric} {value:.6g} does not meet the threshold ({rule}){beside}"
        passed = False
    elif no_worse_than_champion and champion_value is not None and not not_worse(value, champion_value, direction):
        reason = f"{metric} {value:.6g} is worse than the deployed champion's {champion_value:.6g} (on {scored_on}){beside}"
        passed = False
    else:
        reason = f"{metric} {value:.6g} meets the threshold ({rule})"
        if champion_value is not None:
            reason += f" and the champion's {champion_value:.6g} (on {scored_on})" if no_worse_than_champion else ""
        reason += beside
        passed = True
    return {
        "passed": passed,
        "metric": metric,
        "value": value,
        "threshold": bar,
        "threshold_rule": rule,
        "direction": direction,
        "baseline_value": baseline,
        "baseline": strategy if baseline is not None else None,
        "champion_value": champion_value,
        "champion_scored_on": scored_on,
        "target_column": evaluation.get("target_column"),
        "problem_type": evaluation.get("problem_type"),
        "reason": reason,
    }


def _reader(client: Any) -> Callable[[str], tuple[dict[str, Any] | None, str | None, dt.datetime | None]]:
    """uri -> (the JSON document, its ETag, its LastModified), or Nones when there is no such object."""
    def read(uri: str) -> tuple[dict[str, Any] | None, str | None, dt.datetime | None]:
        parsed = urlparse(uri)
        try:
            got = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
        except client.exceptions.NoSuchKey:
            return None, None, None
        return json.loads(got["Body"].read()), got["ETag"], got.get("LastModified")

    return read


def recorded_since(last_modified: dt.datetime | None, started: str | None) -> bool:
    """Whether the champion record was written after the execution started (S3 keeps whole seconds,
    so the same second counts as after): then it is a concurrent execution's model, not the one this
    run set out to replace."""
    if last_modified is None or not started:
        return False
    start = dt.datetime.fromisoformat(started).replace(microsecond=0)  # Python 3.11 reads the Z
    return last_modified >= start


def recheck(decision: dict[str, Any], changed: bool) -> dict[str, Any]:
    """The deploy-time verdict: a champion recorded by a concurrent execution must be strictly beaten."""
    decision = {**decision, "champion_changed": changed}
    value, champion = decision["value"], decision["champion_value"]
    if decision["passed"] and changed and champion is not None and value == champion:
        decision["passed"] = False
        decision["reason"] = (f"{decision['metric']} {value:.6g} is not better than the champion's {champion:.6g}, "
                              "recorded by another execution after this run's quality gate or while it ran; the "
                              "endpoint keeps serving that model")
    elif not decision["passed"] and changed:
        decision["reason"] += (" (that champion was recorded by another execution after this run's quality gate "
                               "or while it ran)")
    return decision


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    read = _reader(boto3.client("s3"))
    evaluation, _, _ = read(event["evaluation_s3_uri"])
    if evaluation is None:
        raise EvaluationReportError(
            f"{event['evaluation_s3_uri']} does not exist: the evaluation job wrote no report. Check its logs."
        )
    champion_uri = event.get("champion_s3_uri")
    champion, champion_etag, recorded = read(champion_uri) if champion_uri else (None, None, None)
    threshold = event["threshold"]
    rescored_uri = event.get("champion_rescored_s3_uri")
    rescored = read(rescored_uri)[0] if rescored_uri and champion is not None else None

    def gate(rescored_champion: dict[str, Any] | None) -> dict[str, Any]:
        return decide(
            evaluation,
            champion,
            metric=event["metric"],
            threshold=threshold if threshold == rules.AUTO else float(threshold),
            direction=event["direction"],
            no_worse_than_champion=bool(event.get("no_worse_than_champion", True)),
            evaluation_uri=event["evaluation_s3_uri"],
            champion_uri=champion_uri or "the champion record",
            rescored=rescored_champion,
        )

    decision = gate(rescored)
    decision["champion_etag"] = champion_etag
    if "gate_champion_etag" in event and bool(event.get("no_worse_than_champion", True)):  # the deploy's repeat
        changed = (event["gate_champion_etag"] != champion_etag
                   or recorded_since(recorded, event.get("execution_started")))
        if changed and rescored is not None:  # the champion scored on this split is not the one serving now
            decision = {**gate(None), "champion_etag": champion_etag}
        decision = recheck(decision, changed)
    return decision
