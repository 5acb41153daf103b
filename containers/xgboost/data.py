"""Training channels: validate inputdataconfig.json and load each channel's files.

The built-in algorithm takes `train` (required) and `validation` channels in text/csv (label in
column 0, no header; with csv_weights=1 the weight in column 1) or text/libsvm.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import UserError

log = logging.getLogger(__name__)

TRAIN = "train"
VALIDATION = "validation"
CHANNELS = (TRAIN, VALIDATION)
CSV = "text/csv"
LIBSVM = "text/libsvm"
CONTENT_TYPES = {CSV: CSV, LIBSVM: LIBSVM, "text/x-libsvm": LIBSVM}
AWS_ONLY_CONTENT_TYPES = ("application/x-parquet", "application/x-recordio-protobuf")
# Like the built-in algorithm: a channel without ContentType is read as libsvm.
DEFAULT_CONTENT_TYPE = LIBSVM


@dataclass(frozen=True)
class Channel:
    name: str
    content_type: str  # CSV or LIBSVM
    files: tuple[Path, ...]


@dataclass
class Dataset:
    """Features, labels and optional weights of one channel, ready for xgboost.DMatrix."""

    features: Any  # numpy array (csv) or scipy CSR matrix (libsvm)
    labels: np.ndarray
    weights: np.ndarray | None = None

    @property
    def num_features(self) -> int:
        return self.features.shape[1]


def _content_type(name: str, config: Mapping[str, Any]) -> str:
    raw = str(config.get("ContentType") or DEFAULT_CONTENT_TYPE)
    media_type = raw.split(";", 1)[0].strip().lower()
    if media_type in CONTENT_TYPES:
        return CONTENT_TYPES[media_type]
    if media_type in AWS_ONLY_CONTENT_TYPES:
        raise UserError(f"Channel {name}: content type {raw} is supported by the AWS image only; "
                        "convert the data to text/csv or text/libsvm to train locally.")
    raise UserError(f"Channel {name}: content type {raw} is not supported. "
                    "Supported content types are text/csv and text/libsvm.")


def _files(folder: Path) -> tuple[Path, ...]:
    if not folder.is_dir():
        return ()
    return tuple(
        p for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def resolve_channels(input_data_config: Mapping[str, Any], data_dir: Path,
                     allow_empty: bool = False) -> dict[str, Channel]:
    """Check the channel names and content types; list each channel's files. ``allow_empty``: a
    host of a cluster, whose share of a ShardedByS3Key channel may be empty (it is then left out)."""
    # the built-in's order: a missing train channel is reported before an extraneous one
    if TRAIN not in input_data_config:
        raise UserError("Missing required channel: train. Add a 'train' channel to InputDataConfig.")
    for name in input_data_config:
        if name not in CHANNELS:
            raise UserError(f"Extraneous channel found: {name}")
    channels = {}
    for name, config in input_data_config.items():
        mode = str(config.get("TrainingInputMode", "File"))
        if mode not in ("File", "FastFile"):
            raise UserError(f"Channel {name}: TrainingInputMode {mode} is not supported locally; use File.")
        files = _files(data_dir / name)
        if not files and not allow_empty:
            raise UserError(f"Channel {name} has no data files under {data_dir / name}. "
                            "Check the channel's S3 prefix.")
        channels[name] = Channel(name, _content_type(name, config), files)
    return channels


def _read_csv(path: Path) -> np.ndarray:
    import pandas as pd  # xgboost imports pandas already, so this costs nothing extra

    try:
        frame = pd.read_csv(path, header=None, dtype=np.float64, engine="c", skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        return np.empty((0, 0))
    except (ValueError, pd.errors.ParserError) as err:
        raise UserError(f"Could not read {path.name} as header-less numeric CSV ({err}). "
                        "Training CSV must be numbers only, label in the first column, no header.") from None
    return frame.to_numpy()


def load_csv(channel: Channel, csv_weights: bool) -> Dataset:
    blocks = [b for b in (_read_csv(f) for f in channel.files) if b.size]
    if not blocks:
        raise UserError(f"Channel {channel.name}: all files are empty.")
    widths = {b.shape[1] for b in blocks}
    if len(widths) > 1:
        raise UserError(f"Channel {channel.name}: files have different column counts {sorted(widths)}.")
    data = blocks[0] if len(blocks) == 1 else np.vstack(blocks)
    first_feature = 2 if csv_weights else 1
    if data.shape[1] <= first_feature:
        raise UserError(f"Channel {channel.name}: CSV needs a label column"
                        f"{' and a weight column' if csv_weights else ''} followed by features.")
    labels = data[:, 0]
    if np.isnan(labels).any():
        raise UserError(f"Channel {channel.name}: the label column (column 0) has empty values.")
    return Dataset(
        features=data[:, first_feature:],
        labels=labels,
        weights=data[:, 1] if csv_weights else None,
    )


def load_libsvm(channel: Channel) -> Dataset:
    import scipy.sparse as sp
    from sklearn.datasets import load_svmlight_files

    try:
        loaded = load_svmlight_files([str(f) for f in channel.files], zero_based=True)
    except ValueError as err:
        raise UserError(f"Channel {channel.name}: could not parse libsvm data ({err}).") from None
    matrices, labels = loaded[0::2], loaded[1::2]
    return Dataset(features=sp.vstack(matrices).tocsr(), labels=np.concatenate(labels))


def load(channel: Channel, csv_weights: bool = False) -> Dataset:
    log.info("Loading channel %s (%s, %d file(s))", channel.name, channel.content_type, len(channel.files))
    if channel.content_type == CSV:
        return load_csv(channel, csv_weights)
    return load_libsvm(channel)


def align_sparse_width(datasets: list[Dataset]) -> None:
    """Give libsvm channels one feature count (a channel may never mention the last columns)."""
    width = max(d.num_features for d in datasets)
    for d in datasets:
        if hasattr(d.features, "resize") and d.num_features < width:
            d.features.resize((d.features.shape[0], width))
