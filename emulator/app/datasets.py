"""The sample datasets under data/ and the synth context each needs beyond cdk.json's defaults."""

from __future__ import annotations

from pathlib import Path

DATASETS: dict[str, dict[str, str]] = {
    "abalone": {},
    # a use case of its own: its own stack, bucket, endpoint and champion (one use case per stack)
    "bank-marketing": {
        "stack_name": "BankMarketing",
        "pipeline.target_column": "deposit",
    },
}


def sample_file(project: Path, dataset: str) -> Path:
    return project / "data" / f"{dataset}.csv"
