"""Shared by the serving tests and bench_endpoint.py: a preprocessed table, a real XGBoost model on it
and the three containers of its serial inference pipeline (featurizer -> model -> label decoder)."""

from __future__ import annotations

import csv
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.datasets import load_iris

from containers.pipeline import ContainerSpec
from processing_scripts import preprocess
from processing_scripts.serving.package import CONTAINER_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
TARGETS = {"abalone.csv": "rings", "bank-marketing.csv": "deposit", "iris.csv": "species", "churn.csv": "churn"}


def iris_csv(folder: Path) -> Path:
    """Iris with its species names as labels (a multiclass table whose labels are words)."""
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns={"target": "species"})
    frame["species"] = [data.target_names[i] for i in data.target]
    path = folder / "iris.csv"
    frame.to_csv(path, index=False)
    return path


@dataclass
class PipelineModel:
    """Everything a test needs about one trained table."""

    folder: Path
    schema: dict
    booster: xgb.Booster
    raw: pd.DataFrame  # the uploaded table as preprocess read it
    containers: list[ContainerSpec]
    source: Path  # the uploaded file

    def file_lines(self) -> list[str]:
        """The uploaded file's own data lines, the target's cell cut out (the text a user would send)."""
        with open(self.source, newline="") as handle:
            header, *rows = list(csv.reader(handle))
        at = header.index(self.schema["target_column"])
        assert not any('"' in cell or "," in cell for row in rows for cell in row), "quoted cells: re-join with csv"
        return [",".join(cell for i, cell in enumerate(row) if i != at) for row in rows]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        data = np.loadtxt(self.folder / "out" / name / f"{name}.csv", delimiter=",", ndmin=2)
        return data[:, 1:], data[:, 0]

    def feature_rows(self) -> pd.DataFrame:
        """The raw rows without the target, in the table's column order."""
        return self.raw.drop(columns=[self.schema["target_column"]])


def _extract(archive: Path, target: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def build(dataset: str, folder: Path, rounds: int = 20, max_depth: int = 4) -> PipelineModel:
    """Preprocess ``dataset`` (a file in data/, iris.csv or churn.csv), train XGBoost on its train split with the
    schema's objective, extract the three models as the endpoint would."""
    if dataset == "iris.csv":
        source = iris_csv(folder)
    elif dataset == "churn.csv":  # a messy export: IDs, a date, categories spelt many ways, gaps
        sys.path.insert(0, str(ROOT / "tests"))
        import user_tables

        source = user_tables.churn(folder)
    else:
        source = DATA / dataset
    out = folder / "out"
    assert preprocess.main(["--input-dir", str(source), "--output-dir", str(out),
                            "--target-column", TARGETS[dataset]]) == 0
    schema = preprocess.json.loads((out / "schema" / "schema.json").read_text())
    train = np.loadtxt(out / "train" / "train.csv", delimiter=",", ndmin=2)
    params = {"objective": schema["xgboost"]["objective"], "max_depth": max_depth, "eta": 0.3, "nthread": 1}
    if schema["xgboost"]["num_class"]:
        params["num_class"] = schema["xgboost"]["num_class"]
    booster = xgb.train(params, xgb.DMatrix(train[:, 1:], label=train[:, 0]), rounds)
    model_dir = folder / "model"
    model_dir.mkdir()
    booster.save_model(str(model_dir / "xgboost-model.ubj"))
    (model_dir / "xgboost-model.ubj").rename(model_dir / "xgboost-model")
    containers = [
        ContainerSpec("featurizer", SKLEARN_IMAGE, _extract(out / "featurizer" / "model.tar.gz", folder / "featurizer"),
                      CONTAINER_ENVIRONMENT["featurizer"]),
        ContainerSpec("model", XGBOOST_IMAGE, model_dir, CONTAINER_ENVIRONMENT["model"]),
        ContainerSpec("decoder", SKLEARN_IMAGE, _extract(out / "decoder" / "model.tar.gz", folder / "decoder"),
                      CONTAINER_ENVIRONMENT["decoder"]),
    ]
    raw = preprocess.read_csv_file(source, source.name)
    return PipelineModel(folder, schema, booster, raw, containers, source)


def csv_lines(frame: pd.DataFrame) -> list[str]:
    """Each row as the uploaded file has it (pandas' own CSV writing, no header)."""
    return frame.to_csv(header=False, index=False).splitlines()
