"""Quality gate: does the evaluated model meet the threshold and do no worse than the deployed champion?

Event: {"evaluation_s3_uri", "metric", "threshold", "direction" ("lower"|"higher"),
"champion_s3_uri", "no_worse_than_champion"}. Returns {"passed", "metric", "value", "threshold",
"champion_value", "reason"}; the state machine's Choice fails the execution with
ModelQualityBelowThreshold when "passed" is false, so a rejection is a decision, not an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import boto3


class EvaluationReportError(Exception):
    """The evaluation report is missing or does not hold the gated metric."""


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


def not_worse(value: float, reference: float, direction: str) -> bool:
    """A retrain on the same data that matches the champion may replace it; a regression may not."""
    return value <= reference if direction == "lower" else value >= reference


def decide(
    evaluation: dict[str, Any],
    champion: dict[str, Any] | None,
    metric: str,
    threshold: float,
    direction: str,
    no_worse_than_champion: bool,
    evaluation_uri: str = "evaluation.json",
) -> dict[str, Any]:
    """The pure core of the gate."""
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    value = metric_value(evaluation, metric, evaluation_uri)
    meets = value <= threshold if direction == "lower" else value >= threshold
    word = "at most" if direction == "lower" else "at least"
    champion_value = None
    if champion is not None:
        try:
            champion_value = metric_value(champion, metric, "the champion's evaluation")
        except EvaluationReportError:
            champion_value = None  # a champion gated on another metric cannot be compared
    if not meets:
        reason = f"{metric} {value:.6g} does not meet the threshold ({word} {threshold:g})"
        passed = False
    elif no_worse_than_champion and champion_value is not None and not not_worse(value, champion_value, direction):
        reason = f"{metric} {value:.6g} is worse than the deployed champion's {champion_value:.6g}"
        passed = False
    else:
        reason = f"{metric} {value:.6g} meets the threshold ({word} {threshold:g})"
        if champion_value is not None:
            reason += f" and the champion's {champion_value:.6g}" if no_worse_than_champion else ""
        passed = True
    return {
        "passed": passed,
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "direction": direction,
        "champion_value": champion_value,
        "reason": reason,
    }


def _reader(client: Any) -> Callable[[str], dict[str, Any] | None]:
    def read(uri: str) -> dict[str, Any] | None:
        parsed = urlparse(uri)
        try:
            body = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return json.loads(body)

    return read


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    read = _reader(boto3.client("s3"))
    evaluation = read(event["evaluation_s3_uri"])
    if evaluation is None:
        raise EvaluationReportError(
            f"{event['evaluation_s3_uri']} does not exist: the evaluation job wrote no report. Check its logs."
        )
    champion = read(event["champion_s3_uri"]) if event.get("champion_s3_uri") else None
    return decide(
        evaluation,
        champion,
        metric=event["metric"],
        threshold=float(event["threshold"]),
        direction=event["direction"],
        no_worse_than_champion=bool(event.get("no_worse_than_champion", True)),
        evaluation_uri=event["evaluation_s3_uri"],
    )
