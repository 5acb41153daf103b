"""Select the winner of the competition: the leaderboard with paired-bootstrap confidence intervals, and the rule.

Event (built by the state machine after the fan-out): {"candidates": [one entry per Map iteration],
"metric", "direction" ("lower"|"higher")}. An iteration's entry is either
  {"name", "family", "status": "Succeeded", "model_data", "training_job", "training_seconds",
   "tuning", "evaluation_report", "evaluation_copy_source", "explainability", "serving": {...}}
or {"name", "family", "status": "Failed", "error", "cause"} (the iteration caught its own failure).

For every candidate that trained, evaluate.py wrote evaluation.json (the metric, its own 95% interval,
model size, mean single-row latency) and bootstrap.json beside it: the metric on the same 1,000
resamples of the shared test split for every candidate (the resampled rows come from one seed and
the row count), so the values pair up resample by resample. The paired difference between a
candidate and the best one is what decides whether they are told apart. The arithmetic here is
percentiles over those lists: standard library only, as the Lambda runtime has no numpy.

The rule (README, "Models compete"):
  1. the best metric leads (direction of the gated metric);
  2. a candidate whose paired 95% interval of the difference from the leader holds 0 is tied with it;
  3. among the leader and those tied with it, the simplest wins: the smallest model, then the best
     metric. Not the fastest: latency measured on a busy machine moves by tens of percent (and across
     any threshold) between identical runs, so two runs on the same data would deploy different
     models and the champion check would reject the second; a model's size is the same every time.
     The latency stays on the leaderboard for people to weigh.
Returns {"metric", "direction", "rule", "winner": <its entry + figures>, "losers": [entries with a
"reason"], "leaderboard": [rows], "table": [text lines]}; AllCandidatesFailed when no candidate trained.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import boto3

RULE = ("best metric leads; a candidate whose paired-bootstrap 95% interval of the difference from the leader holds 0 "
        "is tied with it; among tied candidates the smallest model wins (then the better metric)")


class AllCandidatesFailed(Exception):
    """No candidate produced an evaluated model: the run has nothing to deploy."""


class EvaluationReportError(Exception):
    """A candidate's evaluation report or bootstrap is missing or unreadable."""


def percentile(values: list[float], q: float) -> float:
    """numpy's default (linear) percentile of a non-empty list."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def interval(values: list[float]) -> list[float] | None:
    return [percentile(values, 2.5), percentile(values, 97.5)] if values else None


def paired_difference(candidate: list[float | None], leader: list[float | None]) -> list[float]:
    """candidate - leader on each resample both scored (an AUC resample with one class scores none)."""
    if len(candidate) != len(leader):
        raise EvaluationReportError(
            f"The candidates' bootstraps have {len(candidate)} and {len(leader)} resamples: they were not drawn "
            "alike (same --bootstrap-resamples and --bootstrap-seed), so they cannot be paired.")
    return [c - w for c, w in zip(candidate, leader) if c is not None and w is not None]


def _metric(report: dict[str, Any], metric: str, name: str) -> float:
    value = (report.get("metrics") or {}).get(metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise EvaluationReportError(f"Candidate {name!r}'s evaluation has no finite {metric!r} (got {value!r}).")
    return float(value)


def select(entries: list[dict[str, Any]], reports: dict[str, dict[str, Any]], bootstraps: dict[str, dict[str, Any]],
           metric: str, direction: str) -> dict[str, Any]:
    """The pure core: ``reports``/``bootstraps`` are the evaluation.json/bootstrap.json of each
    candidate that trained, by name."""
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    trained = [e for e in entries if e.get("status") == "Succeeded"]
    failed = [e for e in entries if e.get("status") != "Succeeded"]
    if not trained:
        detail = "; ".join(f"{e.get('name')} ({e.get('family')}): {e.get('error')}: {_short(e.get('cause'))}" for e in failed)
        raise AllCandidatesFailed(
            f"Every candidate failed, so there is no model to gate or deploy: {detail or 'no candidates ran'}. "
            "Fix the cause named for each (its job's logs hold the rest) and start the execution again.")
    sign = 1 if direction == "lower" else -1
    value = {e["name"]: _metric(reports[e["name"]], metric, e["name"]) for e in trained}
    figures = {e["name"]: reports[e["name"]].get("model") or {} for e in trained}
    leader = min(trained, key=lambda e: (sign * value[e["name"]], e["name"]))["name"]
    for entry in trained:
        resampled = bootstraps[entry["name"]].get("metric")
        if resampled != metric:
            raise EvaluationReportError(
                f"Candidate {entry['name']!r}'s bootstrap resampled {resampled!r}, not the gated {metric!r}: its "
                "evaluation job was started with another --metric. Re-run the pipeline.")
    leader_values = bootstraps[leader]["values"]
    difference: dict[str, list[float] | None] = {}
    tied = {leader}
    for entry in trained:
        name = entry["name"]
        if name == leader:
            continue
        difference[name] = interval(paired_difference(bootstraps[name]["values"], leader_values))
        if difference[name] is not None and difference[name][0] <= 0 <= difference[name][1]:
            tied.add(name)

    def simplicity(name: str) -> tuple:
        size = figures[name].get("size_bytes")
        return (size if size is not None else math.inf, sign * value[name], name)

    winner = min(tied, key=simplicity)
    ranked = sorted(trained, key=lambda e: (e["name"] != winner, sign * value[e["name"]], e["name"]))

    def shown(name: str) -> str:
        ci = reports[name].get("bootstrap", {}).get("ci95")
        return f"{metric} {value[name]:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")

    def reason(name: str) -> str:
        diff = difference.get(name)
        between = f"paired 95% interval of the difference from {leader!r}: [{diff[0]:.4g}, {diff[1]:.4g}]" if diff else ""
        if name == winner and len(trained) == 1:
            return f"{shown(name)}; the only candidate that trained"
        if name == winner and name == leader:
            tied_with = sorted(tied - {name})
            return (f"best {shown(name)}" + (f"; tied with {tied_with} and the smallest model" if tied_with else
                                              "; the others are worse beyond their paired intervals"))
        if name == winner:
            return (f"tied with the best ({between}) and smaller: {figures[name].get('size_bytes', 0)} bytes against "
                    f"{figures[leader].get('size_bytes', 0)}")
        if name in tied:
            return f"Not selected: tied with the best ({between}) but a larger model than {winner!r} (the tie rule)"
        return f"Not selected: {shown(name)} is worse than {leader!r}'s {shown(leader)} ({between}, which excludes 0)"

    rows = []
    for rank, entry in enumerate(ranked, start=1):
        name = entry["name"]
        report = reports[name]
        rows.append({
            "rank": rank, "name": name, "family": entry["family"], "status": "Succeeded",
            "metric": metric, "value": value[name], "ci95": report.get("bootstrap", {}).get("ci95"),
            "difference_ci95": difference.get(name), "tied_with_best": name in tied,
            "training_seconds": entry.get("training_seconds"), "size_bytes": figures[name].get("size_bytes"),
            "latency_ms": figures[name].get("latency_ms"), "winner": name == winner, "reason": reason(name),
            "top_feature": (report.get("explainability") or {}).get("top_feature"),
            "evaluation_report": entry.get("evaluation_report"), "explainability": entry.get("explainability"),
        })
    for entry in failed:
        rows.append({"rank": None, "name": entry.get("name"), "family": entry.get("family"), "status": "Failed",
                     "metric": metric, "value": None, "ci95": None, "winner": False,
                     "error": entry.get("error"), "cause": entry.get("cause"),
                     "reason": f"Failed: {entry.get('error')}: {_short(entry.get('cause'))}"})
    by_name = {e["name"]: e for e in trained}
    reasons = {row["name"]: row["reason"] for row in rows}
    return {
        "metric": metric,
        "direction": direction,
        "rule": RULE,
        "winner": {**by_name[winner], "value": value[winner], "reason": reasons[winner]},
        "losers": [{**by_name[e["name"]], "reason": reasons[e["name"]][:800]} for e in ranked if e["name"] != winner],
        "leaderboard": rows,
        "table": table(rows, metric),
    }


def _short(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def table(rows: list[dict[str, Any]], metric: str) -> list[str]:
    """The leaderboard as fixed-width text lines (each under 200 columns)."""
    header = f"{'':2}{'candidate':<22}{'family':<15}{metric:>10}  {'95% CI':<21}{'train s':>8}{'size':>10}{'ms/row':>8}  note"
    lines = [header]
    for row in rows:
        mark = "*" if row.get("winner") else " "
        if row["status"] != "Succeeded":
            lines.append(f"{mark} {row['name'][:21]:<22}{row['family']:<15}{'failed':>10}  {_short(row['reason'], 130)}")
            continue
        ci = row.get("ci95")
        ci_text = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "-"
        seconds = row.get("training_seconds")
        size = row.get("size_bytes")
        latency = row.get("latency_ms")
        note = "winner" if row.get("winner") else ("tied" if row.get("tied_with_best") else "worse")
        lines.append(
            f"{mark} {row['name'][:21]:<22}{row['family']:<15}{row['value']:>10.4g}  {ci_text:<21}"
            f"{(f'{seconds:.0f}' if isinstance(seconds, (int, float)) else '-'):>8}"
            f"{(_size(size) if isinstance(size, int) else '-'):>10}"
            f"{(f'{latency:.3g}' if isinstance(latency, (int, float)) else '-'):>8}  {note}")
    return [line[:199] for line in lines]


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)


def bootstrap_uri(evaluation_uri: str) -> str:
    return evaluation_uri.rsplit("/", 1)[0] + "/bootstrap.json"


def _reader(client: Any) -> Callable[[str], dict[str, Any]]:
    def read(uri: str) -> dict[str, Any]:
        parsed = urlparse(uri)
        try:
            body = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
        except client.exceptions.NoSuchKey:
            raise EvaluationReportError(f"{uri} does not exist: the candidate's evaluation job wrote no such file. "
                                        "Check its logs.") from None
        return json.loads(body)

    return read


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    read = _reader(boto3.client("s3"))
    entries = event["candidates"]
    reports, bootstraps = {}, {}
    for entry in entries:
        if entry.get("status") == "Succeeded":
            reports[entry["name"]] = read(entry["evaluation_report"])
            bootstraps[entry["name"]] = read(bootstrap_uri(entry["evaluation_report"]))
    return select(entries, reports, bootstraps, event["metric"], event["direction"])
