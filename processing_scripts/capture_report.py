"""The capture report: the endpoint's captured traffic over time, drawn from its data-capture files.

    python3 capture_report.py --capture-dir /opt/ml/processing/capture --schema-dir /opt/ml/processing/schema \
        --output-dir /opt/ml/processing/report --run <execution name> [--confidence-threshold 0.7]

Reads every ``*.jsonl`` capture file under ``--capture-dir`` (SageMaker's data-capture format: one line
per invocation, its request and response bodies as CSV, JSON or base64) and the deployed run's
``schema.json`` and ``baseline.json`` under ``--schema-dir``; writes under ``--output-dir``:

* ``report.png``: requests (and records) per hour; the predictions per hour (each class's count, or a
  regression's quartiles); the confidence histogram (a classifier's top probability, the threshold
  marked; a regression's predictions against the training target); the low-confidence rate per hour
  (confidence_rules.py, the rule the inference state machine fails on); each input feature the model
  uses (numeric or categorical; not a dropped ID or a date) against the training baseline;
* ``report.html``: the same picture embedded (a data: URI) with the numbers as tables — one file, no
  script, no stylesheet or font loaded from anywhere;
* ``report.json``: the numbers the figures show.

The inference state machine runs it as a processing job after scoring; ``python -m emulator report``
calls ``build_report`` directly on the local bucket's folders. Bad input stops with a named error
(``NoCaptureFiles``, ``SchemaError``) on the last stderr line and exit code 1.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import csv
import datetime as dt
import html
import io
import json
import logging
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

if __package__:  # imported from the source tree (tests, the emulator's CLI)
    from . import confidence_rules as confidence
    from . import problem_rules as rules
else:  # a processing job: this folder is the script's, on sys.path
    import confidence_rules as confidence
    import problem_rules as rules

log = logging.getLogger("capture_report")

MAX_FEATURES = 8  # feature panels drawn (the rest are in report.json and the HTML tables)
CONFIDENCE_BINS = 20
COLORS = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#718096"]


class ReportError(Exception):
    """Base of the report's named errors."""


class NoCaptureFiles(ReportError):
    """No capture line under the capture folder."""


class SchemaError(ReportError):
    """schema.json or baseline.json is missing or unreadable."""


# ---------------------------------------------------------------- reading capture


def capture_lines(folder: Path) -> list[dict[str, Any]]:
    """Every capture line under ``folder`` (files in name order: SageMaker's keys sort by time)."""
    lines = []
    folder = Path(folder)
    for path in sorted(folder.rglob("*.jsonl")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue  # hidden files (a local bucket's metadata sidecars, editors' temp files) are not capture
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                line = None
            if not isinstance(line, dict) or "inferenceTime" not in (line.get("eventMetadata") or {}):
                log.warning("%s line %d is not a capture line; skipped", path, number)
                continue
            lines.append(line)
    return lines


def _text(side: dict[str, Any] | None) -> str:
    if not side:
        return ""
    data = side.get("data", "")
    return base64.b64decode(data).decode("utf-8", "replace") if side.get("encoding") == "BASE64" else data


def _media(side: dict[str, Any] | None) -> str:
    return ((side or {}).get("observedContentType") or "").split(";", 1)[0].strip().lower()


def input_rows(side: dict[str, Any] | None, columns: list[str]) -> list[list[str]]:
    """The records of one captured request, as cells in the model's column order."""
    text = _text(side)
    if not text:
        return []
    if _media(side) == "application/json":
        try:
            instances = json.loads(text).get("instances") or []
        except (ValueError, AttributeError):
            return []
        rows = []
        for item in instances:
            if isinstance(item, dict):
                rows.append(["" if item.get(c) is None else str(item.get(c)) for c in columns])
            elif isinstance(item, list):
                rows.append(["" if v is None else str(v) for v in item])
        return rows
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if rows and [c.strip().casefold() for c in rows[0]] == [c.casefold() for c in columns]:
        rows = rows[1:]  # a header line, which the featurizer skips too
    return rows


def output_predictions(side: dict[str, Any] | None, problem_type: str) -> list[tuple[str, float | None]]:
    text = _text(side)
    if not text:
        return []
    try:
        if _media(side) == "application/json":
            return confidence.parse_json_scores(text, problem_type)
        return confidence.parse_scores(text, problem_type)
    except (ValueError, IndexError, AttributeError):
        return []


def _hour(line: dict[str, Any]) -> str:
    moment = dt.datetime.strptime(line["eventMetadata"]["inferenceTime"][:19], "%Y-%m-%dT%H:%M:%S")
    return f"{moment:%Y-%m-%dT%H}:00Z"


# ---------------------------------------------------------------- the numbers


def load_schema(schema_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        schema = json.loads((Path(schema_dir) / "schema.json").read_text())
        baseline = json.loads((Path(schema_dir) / "baseline.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SchemaError(f"--schema-dir {schema_dir} must hold the deployed run's schema.json and baseline.json "
                          f"(runs/<run>/processed/schema/): {error}") from None
    return schema, baseline


def analyze(lines: list[dict[str, Any]], schema: dict[str, Any], baseline: dict[str, Any],
            threshold: float = confidence.DEFAULT_THRESHOLD) -> dict[str, Any]:
    """report.json: per hour, the confidence histogram, and the features against the baseline."""
    columns, problem = list(schema["input_columns"]), schema["problem_type"]
    kinds = {c["name"]: c.get("kind") for c in schema.get("source_columns") or []}
    ranges = confidence.Ranges.from_files(schema, baseline)
    hours: dict[str, dict[str, Any]] = defaultdict(lambda: {"requests": 0, "records": 0, "low_confidence": 0,
                                                            "predictions": Counter(), "values": []})
    probabilities: list[float] = []
    predicted_values: list[float] = []
    live: dict[str, list[str]] = {c: [] for c in columns}
    for line in lines:
        hour = hours[_hour(line)]
        hour["requests"] += 1
        data = line.get("captureData") or {}
        rows = input_rows(data.get("endpointInput"), columns)
        answers = output_predictions(data.get("endpointOutput"), problem)
        for row in rows:
            for column, cell in zip(columns, row, strict=False):
                live[column].append(cell)
        for index, (prediction, probability) in enumerate(answers):
            hour["records"] += 1
            row = rows[index] if index < len(rows) and len(rows[index]) == len(columns) else None
            # a regression's record is judged on its cells; a request whose records cannot be read is not counted
            if row is not None or problem != "regression":
                hour["low_confidence"] += bool(confidence.reason(problem, threshold, ranges, columns, row or [],
                                                                 probability))
            if problem == "regression":
                try:
                    value = float(prediction)
                except ValueError:
                    continue
                hour["values"].append(value)
                predicted_values.append(value)
            else:
                hour["predictions"][prediction] += 1
                probabilities.append(probability)
    per_hour = []
    for name in sorted(hours):
        hour = hours[name]
        entry = {"hour": name, "requests": hour["requests"], "records": hour["records"],
                 "low_confidence": hour["low_confidence"],
                 "low_confidence_rate": round(hour["low_confidence"] / hour["records"], 6) if hour["records"] else None}
        if problem == "regression":
            entry["prediction_quartiles"] = _quartiles(hour["values"])
        else:
            entry["predictions"] = dict(sorted(hour["predictions"].items()))
        per_hour.append(entry)
    report = {
        "problem_type": problem, "target": schema.get("target_column"), "columns": columns,
        "capture_lines": len(lines), "records": sum(h["records"] for h in per_hour),
        "low_confidence": sum(h["low_confidence"] for h in per_hour),
        "rule": (f"top probability below {threshold:g}" if problem != "regression"
                 else "a feature outside the training data's range"),
        "hours": per_hour,
        "features": {c: _feature(c, kinds.get(c), live[c], baseline) for c in columns},
    }
    if problem == "regression":
        edges = ((baseline.get("label") or {}).get("histogram") or {}).get("bin_edges")
        report["predictions"] = {"values": len(predicted_values), "quartiles": _quartiles(predicted_values),
                                 "histogram": _histogram(predicted_values, edges) if edges else None,
                                 "training_histogram": (baseline.get("label") or {}).get("histogram")}
    else:
        edges = [i / CONFIDENCE_BINS for i in range(CONFIDENCE_BINS + 1)]
        report["confidence"] = {"threshold": threshold, "histogram": _histogram(probabilities, edges)}
    return report


def _quartiles(values: list[float]) -> list[float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(q: float) -> float:
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return [at(q) for q in (0.0, 0.25, 0.5, 0.75, 1.0)]


def _histogram(values: list[float], edges: list[float]) -> dict[str, Any]:
    """Counts on fixed edges, with what falls below the first and above the last counted apart."""
    counts = [0] * (len(edges) - 1)
    below = above = 0
    for value in values:
        if value < edges[0]:
            below += 1
        elif value > edges[-1]:
            above += 1
        else:  # numpy's bins: [edge, next edge), the last one closed, as baseline.json's histograms
            counts[min(len(counts) - 1, bisect.bisect_right(edges, value) - 1)] += 1
    return {"bin_edges": list(edges), "counts": counts, "below": below, "above": above}


def _feature(column: str, kind: str | None, cells: list[str], baseline: dict[str, Any]) -> dict[str, Any]:
    filled = [c for c in cells if not rules.is_missing(c)]
    out: dict[str, Any] = {"kind": kind or "unused", "values": len(cells), "missing": len(cells) - len(filled)}
    if kind not in ("numeric", "categorical"):  # dropped by preprocess (an ID), or a date: nothing to compare
        return out
    if kind == "numeric":
        numbers = []
        for cell in filled:
            try:
                numbers.append(float(cell))
            except ValueError:
                continue
        training = (baseline.get("features") or {}).get(column) or {}
        edges = (training.get("histogram") or {}).get("bin_edges")
        out["training"] = {k: training.get(k) for k in ("mean", "std", "min", "max")}
        out["training_histogram"] = training.get("histogram")
        out["live"] = {"mean": sum(numbers) / len(numbers) if numbers else None,
                       "min": min(numbers) if numbers else None, "max": max(numbers) if numbers else None}
        out["histogram"] = _histogram(numbers, edges) if edges else None
        out["outside_training_range"] = (out["histogram"]["below"] + out["histogram"]["above"]) if edges else None
    else:
        counts = Counter(rules.category_key(c) for c in filled)
        training = ((baseline.get("source_columns") or {}).get(column) or {}).get("top_categories") or {}
        out["training_fractions"] = training
        out["live_fractions"] = {k: v / len(filled) for k, v in counts.most_common()} if filled else {}
        out["unseen"] = sorted(set(counts) - set(training))[:10]
    return out


# ---------------------------------------------------------------- the picture


def draw(report: dict[str, Any], path: Path, run: str) -> None:
    """report.png: two rows of time panels, then the feature panels (at most MAX_FEATURES)."""
    plt = _pyplot()

    features = [c for c in report["columns"] if report["features"][c]["kind"] in ("numeric", "categorical")][:MAX_FEATURES]
    feature_rows = (len(features) + 3) // 4
    figure = plt.figure(figsize=(18, 9 + 3.6 * feature_rows), dpi=100, layout="constrained")
    grid = figure.add_gridspec(2 + feature_rows, 4)
    hours = report["hours"]
    labels = [h["hour"][5:16].replace("T", " ") for h in hours]  # MM-DD HH:00
    x = list(range(len(hours)))
    figure.suptitle(f"Endpoint traffic from data capture — {run}: {report['capture_lines']} requests, "
                    f"{report['records']} records, {report['low_confidence']} low-confidence ({report['rule']})",
                    fontsize=15, fontweight="bold")

    axis = figure.add_subplot(grid[0, 0:2])
    bars = axis.bar(x, [h["requests"] for h in hours], width=0.6, color=COLORS[0], label="requests (invocations)")
    _hour_axis(axis, x, labels, "Requests per hour (UTC)", "requests")
    axis.set_ylim(0, 1.3 * max([1, *(h["requests"] for h in hours)]))
    records = axis.twinx()  # a request may carry many records: their own scale, on the right
    line = records.plot(x, [h["records"] for h in hours], "o-", color=COLORS[1], linewidth=2, label="records scored")
    records.set_ylim(0, 1.3 * max([1, *(h["records"] for h in hours)]))
    records.set_ylabel("records", color=COLORS[1])
    axis.legend([bars, *line], ["requests (invocations)", "records scored"], loc="upper left", ncols=2)

    axis = figure.add_subplot(grid[0, 2:4])
    if report["problem_type"] == "regression":
        boxes = [h["prediction_quartiles"] for h in hours]
        for i, quartiles in enumerate(boxes):
            if quartiles:
                axis.vlines(i, quartiles[0], quartiles[4], color=COLORS[0], linewidth=1)
                axis.add_patch(plt.Rectangle((i - 0.3, quartiles[1]), 0.6, quartiles[3] - quartiles[1],
                                             facecolor=COLORS[0], alpha=0.35, edgecolor=COLORS[0]))
                axis.hlines(quartiles[2], i - 0.3, i + 0.3, color=COLORS[1], linewidth=2)
        _hour_axis(axis, x, labels, f"Predicted {report['target']} per hour (min, quartiles, max)", report["target"] or "")
    else:
        classes = sorted({k for h in hours for k in h["predictions"]})
        bottom = [0] * len(hours)
        for i, label in enumerate(classes):
            counts = [h["predictions"].get(label, 0) for h in hours]
            axis.bar(x, counts, bottom=bottom, width=0.6, color=COLORS[i % len(COLORS)], label=str(label))
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        _hour_axis(axis, x, labels, f"Predicted {report['target']} per hour", "records")
        if classes:
            axis.legend(title="class", loc="upper left", ncols=min(4, len(classes)))

    axis = figure.add_subplot(grid[1, 0:2])
    if report["problem_type"] == "regression":
        predictions = report["predictions"]
        live, training = predictions.get("histogram"), predictions.get("training_histogram")
        if live and training:
            _compare_histograms(axis, training, live)
            axis.legend(loc="upper right")
        axis.set_title(f"Predicted {report['target']} against the training target (no probability in a regression)",
                       fontsize=12)
        axis.set_ylabel("share of values")
    else:
        histogram = report["confidence"]["histogram"]
        edges, counts = histogram["bin_edges"], histogram["counts"]
        threshold = report["confidence"]["threshold"]
        colors = [COLORS[1] if edges[i + 1] <= threshold else COLORS[0] for i in range(len(counts))]
        axis.bar(edges[:-1], counts, width=[edges[i + 1] - edges[i] for i in range(len(counts))], align="edge",
                 color=colors, edgecolor="white")
        axis.axvline(threshold, color="#c53030", linestyle="--", linewidth=2, label=f"confidence_threshold {threshold:g}")
        axis.set_xlim(0, 1)
        axis.set_title("Top probability of each prediction", fontsize=12)
        axis.set_xlabel("top probability")
        axis.set_ylabel("records")
        axis.legend(loc="upper left")

    axis = figure.add_subplot(grid[1, 2:4])
    rates = [100 * (h["low_confidence_rate"] or 0) for h in hours]
    axis.plot(x, rates, "o-", color="#c53030", linewidth=2)
    axis.fill_between(x, rates, color="#c53030", alpha=0.15)
    _hour_axis(axis, x, labels, f"Low-confidence records per hour ({report['rule']})", "% of records")
    axis.set_ylim(0, max(5.0, max(rates, default=0) * 1.2))

    for index, column in enumerate(features):
        axis = figure.add_subplot(grid[2 + index // 4, index % 4])
        _feature_panel(axis, column, report["features"][column])
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _pyplot():
    """matplotlib's pyplot on the Agg backend. The SageMaker scikit-learn image has no matplotlib: a job
    there installs it from PyPI first (processing jobs have network access unless isolated)."""
    try:
        import matplotlib
    except ImportError:
        import subprocess

        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib>=3.7,<4"], check=True)
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hour_axis(axis, x: list[int], labels: list[str], title: str, ylabel: str) -> None:
    axis.set_title(title, fontsize=12)
    axis.set_ylabel(ylabel)
    if x:
        axis.set_xlim(-0.6, len(x) - 0.4)  # one hour of traffic is one narrow bar, not the whole width
    step = max(1, len(x) // 12)  # at most about a dozen hour labels
    axis.set_xticks(x[::step], labels[::step], rotation=30 if len(x) > 4 else 0, ha="right" if len(x) > 4 else "center")
    axis.grid(axis="y", alpha=0.3)


def _compare_histograms(axis, training: dict[str, Any], live: dict[str, Any]) -> None:
    edges = training["bin_edges"]
    widths = [edges[i + 1] - edges[i] for i in range(len(edges) - 1)]
    total_training = sum(training["counts"]) or 1
    total_live = (sum(live["counts"]) + live["below"] + live["above"]) or 1
    axis.bar(edges[:-1], [c / total_training for c in training["counts"]], width=widths, align="edge",
             color="#a0aec0", alpha=0.7, label="training")
    axis.step(edges, [c / total_live for c in live["counts"]] + [live["counts"][-1] / total_live], where="post",
              color=COLORS[0], linewidth=2, label="captured")
    outside = live["below"] + live["above"]
    if outside:
        axis.text(0.02, 0.93, f"{outside} outside the\ntraining range", transform=axis.transAxes, ha="left", va="top",
                  color="#c53030", fontsize=10)


def _feature_panel(axis, column: str, feature: dict[str, Any]) -> None:
    if feature.get("kind") == "numeric" and feature.get("histogram") and feature.get("training_histogram"):
        _compare_histograms(axis, feature["training_histogram"], feature["histogram"])
        axis.legend(loc="best", fontsize=8)
    elif feature.get("kind") != "numeric":
        keys = list(dict.fromkeys([*feature.get("training_fractions", {}), *feature.get("live_fractions", {})]))[:8]
        x = list(range(len(keys)))
        axis.bar([i - 0.2 for i in x], [feature["training_fractions"].get(k, 0) for k in keys], width=0.4,
                 color="#a0aec0", label="training")
        axis.bar([i + 0.2 for i in x], [feature["live_fractions"].get(k, 0) for k in keys], width=0.4,
                 color=COLORS[0], label="captured")
        axis.set_xticks(x, [k[:12] for k in keys], rotation=30 if len(keys) > 4 else 0)
        axis.legend(loc="upper right", fontsize=8)
    axis.set_title(f"{column} ({feature.get('values', 0)} values)", fontsize=11)
    axis.set_ylabel("share")
    axis.grid(axis="y", alpha=0.3)


# ---------------------------------------------------------------- the page


def page(report: dict[str, Any], png: bytes, run: str) -> str:
    """report.html: one file, the picture inline, the numbers as tables, nothing loaded from anywhere."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(h['hour'])}</td><td>{h['requests']}</td><td>{h['records']}</td><td>{h['low_confidence']}</td>"
        f"<td>{_percent(h['low_confidence_rate'])}</td><td>{esc(_prediction_cell(h))}</td></tr>"
        for h in report["hours"])
    features = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(str(f.get('kind')))}</td><td>{f['values']}</td><td>{f['missing']}</td>"
        f"<td>{esc(_feature_cell(f))}</td></tr>"
        for name, f in report["features"].items())
    image = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Capture report — {esc(run)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1a202c; }}
table {{ border-collapse: collapse; margin: 1rem 0 2rem; }}
th, td {{ border: 1px solid #cbd5e0; padding: 0.3rem 0.6rem; text-align: right; }}
th {{ background: #edf2f7; }} td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>Capture report — {esc(run)}</h1>
<p>{report['capture_lines']} captured requests, {report['records']} records, {report['low_confidence']} low-confidence
({esc(report['rule'])}). Problem type: {esc(report['problem_type'])}; target {esc(str(report['target']))}.</p>
<img alt="Requests, predictions, confidence and input features over time" src="data:image/png;base64,{image}">
<h2>Per hour (UTC)</h2>
<table><tr><th>hour</th><th>requests</th><th>records</th><th>low-confidence</th><th>rate</th><th>predictions</th></tr>
{rows}</table>
<h2>Input features against the training baseline</h2>
<table><tr><th>feature</th><th>kind</th><th>values</th><th>missing</th><th>captured vs training</th></tr>
{features}</table>
</body></html>
"""


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{100 * rate:.1f}%"


def _prediction_cell(hour: dict[str, Any]) -> str:
    if "predictions" in hour:
        return ", ".join(f"{k}: {v}" for k, v in hour["predictions"].items())
    quartiles = hour.get("prediction_quartiles")
    return "" if not quartiles else f"median {quartiles[2]:.3g} (quartiles {quartiles[1]:.3g}–{quartiles[3]:.3g})"


def _feature_cell(feature: dict[str, Any]) -> str:
    if feature.get("kind") == "numeric":
        live, training = feature.get("live") or {}, feature.get("training") or {}
        if live.get("mean") is None:
            return "no values"
        outside = feature.get("outside_training_range")
        return (f"mean {live['mean']:.4g} (training {training.get('mean') or 0:.4g}); range {live['min']:.4g}–"
                f"{live['max']:.4g} (training {training.get('min') or 0:.4g}–{training.get('max') or 0:.4g})"
                + (f"; {outside} outside the training range" if outside else ""))
    if feature.get("kind") != "categorical":
        return "not compared (not used by the model as it is, or a date)"
    top = ", ".join(f"{k} {v:.0%}" for k, v in list(feature.get("live_fractions", {}).items())[:4])
    unseen = feature.get("unseen") or []
    return top + (f"; never seen in training: {', '.join(unseen)}" if unseen else "")


# ---------------------------------------------------------------- entry points


def build_report(capture_dir: Path, schema_dir: Path, output_dir: Path, run: str,
                 threshold: float = confidence.DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Read, analyze, draw, write the three files; returns report.json's content."""
    schema, baseline = load_schema(schema_dir)
    lines = capture_lines(capture_dir)
    if not lines:
        raise NoCaptureFiles(f"No capture line under {capture_dir}: the endpoint has captured nothing yet (is "
                             "DataCaptureConfig on, and has it been called?).")
    report = analyze(lines, schema, baseline, threshold)
    report["run"] = run
    report["generated"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    png_path = output_dir / "report.png"
    draw(report, png_path, run)
    (output_dir / "report.html").write_text(page(report, png_path.read_bytes(), run), encoding="utf-8")
    (output_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture-dir", required=True, type=Path)
    parser.add_argument("--schema-dir", required=True, type=Path)
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--run", required=True)
    parser.add_argument("--confidence-threshold", type=float, default=confidence.DEFAULT_THRESHOLD)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        report = build_report(args.capture_dir, args.schema_dir, args.output_dir, args.run, args.confidence_threshold)
    except ReportError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"capture report: {report['capture_lines']} requests, {report['records']} records -> {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
