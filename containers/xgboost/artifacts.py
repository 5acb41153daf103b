"""The built-in algorithm's model artifact: model.tar.gz holding one UBJSON file, `xgboost-model`."""

from __future__ import annotations

import io
import tarfile

import xgboost as xgb

MODEL_FILE = "xgboost-model"


def model_archive(booster: xgb.Booster) -> bytes:
    """model.tar.gz bytes for ``booster``, as a training job of the 3.0-5 image uploads it."""
    raw = bytes(booster.save_raw("ubj"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(MODEL_FILE)
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()
