"""What makes a prediction low-confidence, shared by the inference state machine's filter Lambda and the
capture report (standard library only; ``lambdas/filter_predictions/confidence_rules.py`` is a symlink
to this file, as for problem_rules.py), so the failing execution and the report count the same records.

A classifier's record is low-confidence when its top probability is below the threshold
(``confidence_threshold``, default 0.7); a regression's when it lies outside the training data on any
feature: a numeric value outside the training split's [min, max] (baseline.json's ``features``), or a
category of a one-hot column the training split never had (schema.json's ``source_columns``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

if __package__:  # imported from the source tree (tests) or the Lambda's package
    from . import problem_rules as rules
else:  # beside problem_rules.py in the job's code folder or the Lambda asset's root
    import problem_rules as rules

DEFAULT_THRESHOLD = 0.7


@dataclass(frozen=True)
class Ranges:
    """What the training data held: numeric [min, max] and the categories of one-hot columns."""

    numeric: dict[str, tuple[float, float]]
    categories: dict[str, set[str]]

    @classmethod
    def from_files(cls, schema: dict[str, Any], baseline: dict[str, Any]) -> Ranges:
        numeric, categories = {}, {}
        features = baseline.get("features") or {}
        for column in schema.get("source_columns") or []:
            name = column["name"]
            if column.get("kind") == "numeric" and name in features:
                stats = features[name]
                if stats.get("min") is not None and stats.get("max") is not None:
                    numeric[name] = (float(stats["min"]), float(stats["max"]))
            elif column.get("kind") == "categorical" and column.get("encoding") == "one_hot":
                categories[name] = set(column.get("categories") or [])
        return cls(numeric, categories)

    def outside(self, columns: list[str], row: list[str]) -> str | None:
        """Why a record lies outside the training data, or None."""
        found = []
        for column, cell in zip(columns, row, strict=True):
            if rules.is_missing(cell):
                continue
            if column in self.numeric:
                low, high = self.numeric[column]
                try:
                    value = float(cell)
                except ValueError:
                    continue
                if not low <= value <= high:
                    found.append(f"{column}={cell} outside training range [{low:g}, {high:g}]")
            elif column in self.categories and rules.category_key(cell) not in self.categories[column]:
                found.append(f"{column}={cell!r} never seen in training")
        return "; ".join(found) or None


def parse_scores(body: str, problem_type: str) -> list[tuple[str, float | None]]:
    """(prediction, top probability or None) per line of the endpoint's CSV answer."""
    out = []
    for row in csv.reader(io.StringIO(body)):
        if not row:
            continue
        if problem_type == "regression":
            out.append((row[0], None))
        else:
            out.append((row[0], float(row[1])))
    return out


def parse_json_scores(body: str, problem_type: str) -> list[tuple[str, float | None]]:
    """The same from the endpoint's JSON answer: {"predictions": [{"label", "probability"} or {"score"}]}."""
    out = []
    for item in json.loads(body).get("predictions") or []:
        if problem_type == "regression" or "label" not in item:
            out.append((str(item.get("score", item.get("predicted_label", ""))), None))
        else:
            out.append((str(item["label"]), float(item["probability"])))
    return out


def reason(problem_type: str, threshold: float, ranges: Ranges, columns: list[str], row: list[str],
           probability: float | None) -> str | None:
    """Why this record's prediction is low-confidence, or None when it is not."""
    if problem_type == "regression":
        return ranges.outside(columns, row)
    if probability is not None and probability < threshold:
        return f"top probability {probability:.3f} below {threshold:g}"
    return None
