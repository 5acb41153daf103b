"""model.tar.gz of the featurizer and of the label decoder, written by preprocess beside the splits.

Both run in the SageMaker scikit-learn image (script mode): the archive holds the model's data as
JSON and ``code/`` with the entry point and every module it imports, so the model needs no
sourcedir. The archives are byte-for-byte reproducible (sorted, zero mtimes), so the same schema
gives the same artifact. Create each model with CONTAINER_ENVIRONMENT[<name>] as its Environment.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

SERVING_DIR = Path(__file__).resolve().parent
# the featurizer imports preprocess, which imports these siblings at module level
FEATURIZER_MODULES = tuple(SERVING_DIR.parent / name for name in
                           ("preprocess.py", "problem_rules.py", "feature_rules.py", "monitor_baseline.py"))
# The SageMaker Python SDK's layout for a model.tar.gz that carries its code (framework >= 0.23).
CODE_DIR = "/opt/ml/model/code"
CONTAINER_ENVIRONMENT = {
    # featurizer -> model: the feature matrix as CSV, which the XGBoost container reads
    "featurizer": {"SAGEMAKER_PROGRAM": "featurizer.py", "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIR,
                   "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"},
    # model -> decoder: JSON scores (a probability list per row for multiclass, unambiguous)
    "model": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"},
    # what a caller that sends no Accept gets: CSV label,probability (or the value)
    "decoder": {"SAGEMAKER_PROGRAM": "label_decoder.py", "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIR,
                "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"},
}
ARCHIVES = {"featurizer": "featurizer/model.tar.gz", "decoder": "decoder/model.tar.gz"}


def class_labels(schema: dict[str, Any]) -> list[str] | None:
    """The classes in the model's index order, as the uploaded file spelt them; None for regression.
    schema["labels"]; schemas written before it had label_mapping as label -> index."""
    if schema["problem_type"] == "regression":
        return None
    if schema.get("labels"):
        return [str(label) for label in schema["labels"]]
    mapping = schema["label_mapping"]
    return [label for label, _ in sorted(mapping.items(), key=lambda item: int(item[1]))]


def _archive(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), mtime=0)


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


def featurizer_archive(schema: dict[str, Any]) -> bytes:
    return _archive({
        "schema.json": _json(schema),
        "code/featurizer.py": (SERVING_DIR / "featurizer.py").read_bytes(),
        "code/errors.py": (SERVING_DIR / "errors.py").read_bytes(),
        **{f"code/{module.name}": module.read_bytes() for module in FEATURIZER_MODULES},
    })


def decoder_archive(schema: dict[str, Any]) -> bytes:
    return _archive({
        "labels.json": _json({"problem_type": schema["problem_type"], "labels": class_labels(schema)}),
        "code/label_decoder.py": (SERVING_DIR / "label_decoder.py").read_bytes(),
        "code/errors.py": (SERVING_DIR / "errors.py").read_bytes(),
    })


def serving_archives(schema: dict[str, Any]) -> dict[str, bytes]:
    """{"featurizer": bytes, "decoder": bytes}: the two model.tar.gz files (paths in ARCHIVES)."""
    return {"featurizer": featurizer_archive(schema), "decoder": decoder_archive(schema)}
