"""The sample datasets under data/ and the synth context each needs beyond cdk.json's defaults."""

from __future__ import annotations

from pathlib import Path

DATASETS: dict[str, dict[str, str]] = {
    "abalone": {},
    "bank-marketing": {
        "pipeline.target_column": "deposit",
        "pipeline.quality_metric": "auc",
        "pipeline.quality_threshold": "0.85",
    },
}


def sample_file(project: Path, dataset: str) -> Path:
    return project / "data" / f"{dataset}.csv"
