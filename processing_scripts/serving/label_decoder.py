"""Label decoder: the model's scores in, the answer in the user's own labels out.

The last container of the serial inference pipeline (SageMaker scikit-learn image). model.tar.gz
holds ``labels.json`` ({"problem_type", "labels": the classes in the model's index order, as the
uploaded file spelt them}) and ``code/`` (this file, errors.py). It reads what the XGBoost container
answers: application/json ``{"predictions": [{"score": 0.8}, ...]}`` (a list of class probabilities
per row for multiclass), or text/csv scores (one row per line, or comma-joined single scores, or
comma-joined ``[p0, p1, ...]`` lists).

Answers, one per row:
  regression   text/csv: the value             application/json: {"predictions": [{"score": 7.2}]}
  binary       text/csv: label,probability     application/json: {"predictions": [{"label": "yes",
  multiclass                                      "probability": 0.9, "probabilities": {"no": 0.1, "yes": 0.9}}]}
A binary row is the positive class (the second label) when its probability is above 0.5, as the
evaluation counts it; a multiclass row is its most probable class (the first one on a tie).
"""

from __future__ import annotations

import csv
import io
import json
import os

try:  # packaged: code/ holds errors.py beside this file
    from errors import RequestError, respond
except ImportError:  # imported from the project tree
    from processing_scripts.serving.errors import RequestError, respond

CSV, JSON = "text/csv", "application/json"
LABELS_FILE = "labels.json"
REGRESSION, BINARY, MULTICLASS = "regression", "binary", "multiclass"
THRESHOLD = 0.5


def _csv_cell(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([text])
        return buffer.getvalue()
    return text


class LabelDecoder:
    """What model_fn loads: the problem type and the labels in the model's class order."""

    def __init__(self, problem_type: str, labels: list[str] | None) -> None:
        if problem_type not in (REGRESSION, BINARY, MULTICLASS):
            raise ValueError(f"{LABELS_FILE}: problem_type {problem_type!r} is not regression, binary or multiclass.")
        if problem_type != REGRESSION and (not labels or len(labels) < 2):
            raise ValueError(f"{LABELS_FILE}: a {problem_type} model needs its class labels, got {labels!r}.")
        self.problem_type = problem_type
        self.labels = [str(label) for label in labels or []]
        self.csv_labels = [_csv_cell(label) for label in self.labels]

    def decode(self, scores: list) -> list[tuple]:
        """Per row: (value,) for regression, (class index, probability, class probabilities) else."""
        if self.problem_type == REGRESSION:
            return [(float(score),) for score in scores]
        out = []
        if self.problem_type == BINARY:
            for score in scores:
                p = float(score)
                positive = p > THRESHOLD
                out.append((1 if positive else 0, p if positive else 1.0 - p, [1.0 - p, p]))
            return out
        width = len(self.labels)
        for number, score in enumerate(scores, start=1):
            if not isinstance(score, list) or len(score) != width:
                raise RequestError(400, f"Row {number}: expected {width} class probabilities from the model, got "
                                        f"{score!r}. Is the model multi:softprob with num_class={width}?")
            probabilities = [float(p) for p in score]
            best = max(range(width), key=probabilities.__getitem__)
            out.append((best, probabilities[best], probabilities))
        return out

    def encode(self, rows: list[tuple], accept: str) -> tuple[str, str]:
        if self.problem_type == REGRESSION:
            if accept == JSON:
                return json.dumps({"predictions": [{"score": value} for (value,) in rows]}), JSON
            return "".join(f"{value!r}\n" for (value,) in rows), CSV
        if accept == JSON:
            return json.dumps({"predictions": [
                {"label": self.labels[index], "probability": probability,
                 "probabilities": dict(zip(self.labels, probabilities))}
                for index, probability, probabilities in rows]}), JSON
        return "".join(f"{self.csv_labels[index]},{probability!r}\n" for index, probability, _ in rows), CSV


def read_scores(body: str, content_type: str) -> list:
    """The model container's answer as one score (or probability list) per row."""
    media_type = (content_type or JSON).split(";", 1)[0].strip().lower()
    if media_type == JSON:
        try:
            predictions = json.loads(body)["predictions"]
            return [row["score"] for row in predictions]
        except (ValueError, KeyError, TypeError) as err:
            raise RequestError(400, f"The model's JSON answer has no predictions[].score ({err}).") from None
    if media_type == CSV:
        lines = [line for line in body.strip().splitlines() if line.strip()]
        try:
            if "[" in body:  # the XGBoost container's CSV of probability lists: "[0.1, 0.9],[0.8, 0.2]"
                return json.loads("[" + ",".join(lines) + "]")
            if len(lines) == 1:
                return [float(v) for v in lines[0].split(",")]
            return [float(line) if "," not in line else [float(v) for v in line.split(",")] for line in lines]
        except ValueError as err:
            raise RequestError(400, f"The model's CSV answer is not numbers ({err}).") from None
    raise RequestError(415, f"Content type {content_type} is not supported; the label decoder reads the model's "
                            "application/json or text/csv answer.")


def model_fn(model_dir: str) -> LabelDecoder:
    with open(os.path.join(model_dir, LABELS_FILE)) as handle:
        spec = json.load(handle)
    return LabelDecoder(spec["problem_type"], spec.get("labels"))


def transform_fn(model: LabelDecoder, body, content_type: str, accept: str):
    try:
        out_type = (accept or CSV).split(";", 1)[0].strip().lower()
        if out_type not in (CSV, JSON):
            raise RequestError(406, f"Accept {accept} is not supported; ask for text/csv or application/json.")
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        return model.encode(model.decode(read_scores(text, content_type)), out_type)
    except RequestError as err:
        return respond(err)
