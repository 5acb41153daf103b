"""Shared by the XGBoost twin tests: job folders laid out like /opt/ml, and preprocessed sample data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from processing_scripts import preprocess

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def preprocessed(dataset: str, target: str, out: Path) -> Path:
    assert preprocess.main(["--input-dir", str(DATA / dataset), "--output-dir", str(out),
                            "--target-column", target]) == 0
    return out


def load_split(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(folder / name / f"{name}.csv", delimiter=",", ndmin=2)
    return data[:, 1:], data[:, 0]


def make_job(ml_root: Path, hyperparameters: dict[str, str], channels: dict[str, Path | list[Path]],
             content_type: str = "text/csv") -> Path:
    """Lay out ml_root as SageMaker does before a training job starts."""
    config = ml_root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({
        name: {"ContentType": content_type, "TrainingInputMode": "File",
               "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        for name in channels}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    for name, files in channels.items():
        folder = ml_root / "input" / "data" / name
        folder.mkdir(parents=True)
        for f in files if isinstance(files, list) else [files]:
            shutil.copy(f, folder / f.name)
    return ml_root
