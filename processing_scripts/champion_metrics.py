"""Score the deployed champion on this run's held-out test split, so the quality gate compares the new
model and the champion on the same rows.

    python3 champion_metrics.py --predictions-dir /opt/ml/processing/predictions \
        --test-dir /opt/ml/processing/test --schema-dir /opt/ml/processing/schema \
        --output-dir /opt/ml/processing/evaluation [--failure-file /opt/ml/output/message]

The champion's answers come from a batch transform of its own serving pipeline (featurizer -> model ->
label decoder) over this run's raw test rows (batch/batch.csv, in the order of test/test.csv), so any
model family is scored as it serves. Its answers are in the table's labels: a value (regression) or
``label,probability`` (classification); the test split's labels are this run's encoded ones, mapped
through schema.json's label_mapping. Writes evaluation.json in evaluate.py's shape ({"target_column",
"problem_type", "input_columns", "metrics", "row_counts"}) with the metrics evaluate.py computes, so the
gate reads it as it reads the champion record. Runs in the scikit-learn image.
Errors end with `<ErrorClass>: <message>` on stderr (and in --failure-file) and exit code 1.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

if __package__:  # imported from the source tree (tests)
    from . import evaluate
else:  # the job's code folder holds evaluate.py beside this script
    import evaluate


class ChampionScoringError(Exception):
    """The champion's predictions cannot be lined up with this run's test split."""


def read_answers(predictions_dir: Path) -> list[list[str]]:
    files = sorted(p for p in predictions_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ChampionScoringError(f"no prediction file under {predictions_dir}: the champion's batch transform wrote nothing")
    rows = []
    for path in files:
        rows += [row for row in csv.reader(io.StringIO(path.read_text())) if row]
    return rows


def champion_metrics(answers: list[list[str]], labels: np.ndarray, schema: dict[str, Any]) -> dict[str, Any]:
    """The pure core: the champion's metrics on this split."""
    if len(answers) != len(labels):
        raise ChampionScoringError(f"the champion answered {len(answers)} rows for {len(labels)} test rows: its batch "
                                   "transform did not keep one answer per row")
    problem_type = schema["problem_type"]
    if problem_type == "regression":
        return evaluate.regression_metrics(labels, np.asarray([float(row[0]) for row in answers]))
    # encoded index -> the label as the table spells it; the decoder answers in those labels
    index = {str(label): int(code) for code, label in (schema.get("label_mapping") or {}).items()}
    if not index:
        index = {str(label): i for i, label in enumerate(schema.get("labels") or [])}
    predicted = np.asarray([index.get(row[0], -1) for row in answers])
    if problem_type == "binary":
        probability = np.asarray([float(row[1]) if len(row) > 1 else 1.0 for row in answers])
        positive = np.where(predicted == 1, probability, 1.0 - probability)  # P(the second label)
        return evaluate.binary_metrics(labels, positive)
    return evaluate.multiclass_metrics(labels, predicted, int(schema.get("num_classes") or len(index)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions-dir", type=Path, default=Path("/opt/ml/processing/predictions"))
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/test"))
    parser.add_argument("--schema-dir", type=Path, default=Path("/opt/ml/processing/schema"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/evaluation"))
    parser.add_argument("--failure-file", default=None)
    args = parser.parse_args(argv)
    try:
        schema = evaluate.load_schema(args.schema_dir)
        _, labels = evaluate.load_test(args.test_dir)
        metrics = champion_metrics(read_answers(args.predictions_dir), labels, schema)
    except (ChampionScoringError, evaluate.EvaluationError, ValueError, IndexError) as error:
        line = f"{type(error).__name__}: {error}"
        print(line, file=sys.stderr)
        if args.failure_file:
            Path(args.failure_file).parent.mkdir(parents=True, exist_ok=True)
            Path(args.failure_file).write_text(line)
        return 1
    evaluate.write_json_atomically(args.output_dir / "evaluation.json", {
        "target_column": schema.get("target_column"), "problem_type": schema["problem_type"],
        "input_columns": schema.get("input_columns"), "metrics": metrics,
        "row_counts": {"test": len(labels)}, "scored": "the deployed champion, on this run's test split"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
