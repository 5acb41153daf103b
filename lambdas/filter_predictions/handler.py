"""Flag the low-confidence predictions of an inference execution and write every record's prediction,
before the state machine decides whether the execution fails.

Event: {"plan": <read_records' output>, "config": {...the execution's settings}}. For each batch the
Map scored, the batch's records (``batches/<n>.csv``) and the endpoint's answers (``scores/<n>.csv``:
the value per line for a regression, ``label,probability`` for a classifier) are read back.

Low-confidence: a classifier's record whose top probability is below ``confidence_threshold``; a
regression's record outside the training data on any feature — a numeric value outside the training
split's [min, max] (baseline.json), or a category the training split never had (schema.json).

Writes ``predictions/<execution>/predictions.csv`` (the record's columns, then ``prediction``,
``probability``, ``low_confidence`` and ``reason``) and ``summary.json``; returns the summary: counts,
the share, whether it is within ``max_low_confidence_share``, the first few low-confidence records
and, when it is not, the reason the execution fails with (LowConfidencePrediction).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import boto3

if __package__:
    from . import confidence_rules as confidence
else:
    import confidence_rules as confidence

FIRST = 5  # low-confidence records named in the summary and the failure's cause


class ScoresDoNotMatchRecords(Exception):
    """The endpoint answered a different number of predictions than the batch had records."""


def flag(plan: dict[str, Any], config: dict[str, Any], read_text: Callable[[str], str],
         write_text: Callable[[str, str], None], ranges: confidence.Ranges) -> dict[str, Any]:
    """The pure core: every record's prediction and flag written, the summary returned."""
    columns, problem = plan["columns"], plan["problem_type"]
    threshold, max_share = float(config["confidence_threshold"]), float(config["max_low_confidence_share"])
    lines = json.loads(read_text(plan["lines"]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*columns, "prediction", "probability", "low_confidence", "reason"])
    low: list[dict[str, Any]] = []
    total = 0
    for batch in plan["batches"]:
        rows = list(csv.reader(io.StringIO(read_text(batch["key"]))))
        scores = confidence.parse_scores(read_text(batch["scores_key"]), problem)
        if len(scores) != len(rows):
            raise ScoresDoNotMatchRecords(
                f"Batch {batch['index']} ({batch['key']}) has {len(rows)} records but the endpoint answered "
                f"{len(scores)} predictions ({batch['scores_key']}); the model's output format changed? Check the "
                "endpoint's containers.")
        for offset, (row, (prediction, probability)) in enumerate(zip(rows, scores, strict=True)):
            number = batch["first"] + offset + 1
            reason = confidence.reason(problem, threshold, ranges, columns, row, probability)
            writer.writerow([*row, prediction, "" if probability is None else repr(probability), str(bool(reason)).lower(),
                             reason or ""])
            total += 1
            if reason:
                low.append({"record": number, "line": lines[number - 1], "prediction": prediction,
                            "probability": probability, "reason": reason})
    predictions_key = f"{plan['prefix']}predictions.csv"
    write_text(predictions_key, out.getvalue())
    share = len(low) / total if total else 0.0
    passed = share <= max_share
    summary = {
        "records": total, "low_confidence": len(low), "share": round(share, 6), "max_share": max_share,
        "threshold": threshold if problem != "regression" else None,
        "rule": ("top probability below confidence_threshold" if problem != "regression"
                 else "a feature outside the training data's range"),
        "passed": passed, "first": low[:FIRST], "predictions": f"s3://{plan['bucket']}/{predictions_key}",
    }
    if not passed:
        shown = "; ".join(f"record {r['record']} (line {r['line']}): predicted {r['prediction']}, {r['reason']}"
                          for r in low[:FIRST])
        more = f" and {len(low) - FIRST} more" if len(low) > FIRST else ""
        summary["reason"] = (
            f"{len(low)} of {total} records ({share:.1%}) are low-confidence ({summary['rule']}), more than "
            f"max_low_confidence_share {max_share:g} allows: {shown}{more}. Every prediction is in "
            f"{summary['predictions']} (low_confidence column); review those records, or raise "
            "max_low_confidence_share for this execution if they are expected.")
    write_text(f"{plan['prefix']}summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    client = boto3.client("s3")
    plan = event["plan"]
    bucket = plan["bucket"]

    def read_text(key: str) -> str:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")

    def write_text(key: str, body: str) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=body.encode(),
                          ContentType="application/json" if key.endswith(".json") else "text/csv")

    def read_uri(uri: str) -> dict:
        without = uri.removeprefix("s3://")
        source_bucket, _, key = without.partition("/")
        return json.loads(client.get_object(Bucket=source_bucket, Key=key)["Body"].read())

    ranges = confidence.Ranges.from_files(read_uri(plan["schema"]), read_uri(plan["baseline"])) \
        if plan["problem_type"] == "regression" else confidence.Ranges({}, {})
    return flag(plan, event["config"], read_text, write_text, ranges)

