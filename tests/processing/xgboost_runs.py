"""The pipeline's train-then-evaluate path without a state machine, for the processing tests: the
XGBoost twin trains in a job folder on preprocess.py's splits, evaluate.py scores the test split."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

from containers.xgboost import train as twin
from processing_scripts import evaluate


def train_and_evaluate(splits: Path, hyperparameters: dict[str, str], work: Path) -> dict:
    """evaluation.json of a model trained with ``hyperparameters`` on ``splits`` (train, validation,
    test, schema as preprocess.py writes them); the job folders live under ``work``."""
    ml = work / "ml"
    (ml / "input" / "config").mkdir(parents=True)
    (ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (ml / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({c: {"ContentType": "text/csv"} for c in ("train", "validation")}))
    for channel in ("train", "validation"):
        shutil.copytree(splits / channel, ml / "input" / "data" / channel)
    assert twin.main(["--ml-root", str(ml)]) == 0
    (work / "model").mkdir()
    with tarfile.open(work / "model" / "model.tar.gz", "w:gz") as tar:
        tar.add(ml / "model" / "xgboost-model", arcname="xgboost-model")
    assert evaluate.main(["--model-dir", str(work / "model"), "--test-dir", str(splits / "test"),
                          "--schema-dir", str(splits / "schema"), "--output-dir", str(work / "evaluation")]) == 0
    return json.loads((work / "evaluation" / "evaluation.json").read_text())
