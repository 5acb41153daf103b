"""Inference of the built-in XGBoost algorithm: one request body in, one response out.

    predictor = load_predictor(model_dir)
    response = predictor.invoke(b"5.1,3.5,1.4", "text/csv", "application/json")

In: text/csv (one row per line, no label, an empty cell is a missing value) or text/libsvm.
Out: text/csv (default), application/json `{"predictions": [{"score": 0.5}]}` (a list of class
probabilities per row for multi:softprob) or application/jsonlines (one `{"score": ...}` per line).
Status codes as the built-in server: 204 empty body, 415 unsupported or unreadable content type,
406 unsupported accept, 400 rows the model cannot score.
The text/csv body is the built-in's: comma-joined in real time, one row per line (newline-ended)
when the predictor serves a batch transform (env SAGEMAKER_BATCH=true, or batch=True).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb

log = logging.getLogger(__name__)

CSV = "text/csv"
LIBSVM = "text/libsvm"
JSON = "application/json"
JSONLINES = "application/jsonlines"
CONTENT_TYPES = {CSV: CSV, LIBSVM: LIBSVM, "text/x-libsvm": LIBSVM}
ACCEPTS = (CSV, JSON, JSONLINES)
MODEL_FILE = "xgboost-model"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str


class RequestError(Exception):
    """A request the predictor refuses; carries its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ModelLoadError(Exception):
    """The model folder holds no loadable xgboost model."""


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def parse_content_type(header: str | None) -> str:
    media_type = _media_type(header) or CSV
    if media_type not in CONTENT_TYPES:
        raise RequestError(415, f"Content-type {media_type} not supported. "
                                "Supported content-type is text/csv, text/libsvm")
    return CONTENT_TYPES[media_type]


def parse_accept(header: str | None, default: str) -> str:
    """The first supported media type of an Accept header; none or */* means the default."""
    offered = [_media_type(part) for part in (header or "").split(",") if part.strip()]
    if not offered or "*/*" in offered:
        return default
    for media_type in offered:
        if media_type in ACCEPTS:
            return media_type
    raise RequestError(406, f"Accept type {header} is not supported. "
                            f"Please use supported accept types: {', '.join(ACCEPTS)}.")


# From this many rows on, pandas' C parser is tried first (batch transform's MultiRecord payloads);
# below it, its fixed set-up cost would dominate a real-time request.
_PANDAS_MIN_ROWS = 64
_UTF8_BOM = b"\xef\xbb\xbf"


def _count_byte(body: bytes, byte: int) -> int:
    """Occurrences of one byte value; numpy's vectorised compare is ~5x bytes.count on payloads."""
    return int(np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == byte))


def _csv_rows(body: bytes) -> np.ndarray:
    """Rows of floats from a CSV body: an empty cell is a missing value; rows end at \\n, \\r\\n or
    \\r. pandas is only a fast path: a body it refuses goes to the reference parser, which alone
    decides what is accepted (so "nan" or "1_000" are read whatever the body's size)."""
    body = body.strip()
    if _count_byte(body, 0x0A) + 1 >= _PANDAS_MIN_ROWS and not body.startswith(_UTF8_BOM):
        try:
            return _csv_rows_pandas(body)
        except ValueError:  # includes UnicodeDecodeError and pandas' ParserError
            pass
    return _csv_rows_reference(body)


def _csv_rows_pandas(body: bytes) -> np.ndarray:
    import csv
    import io

    import pandas as pd

    # Blank lines are skipped by the parser; a row longer than the first is its ParserError; a
    # shorter one it would pad with NaN, so the comma count catches those. No quoting: a quoted
    # cell is not a number, as in the reference parser.
    frame = pd.read_csv(io.BytesIO(body), header=None, dtype=np.float32, na_values=[""], keep_default_na=False,
                        skip_blank_lines=True, engine="c", encoding="utf-8", quoting=csv.QUOTE_NONE)
    if _count_byte(body, ord(",")) != frame.shape[0] * (frame.shape[1] - 1):
        raise ValueError("rows have different numbers of columns")
    return frame.to_numpy(dtype=np.float32)


def _csv_rows_reference(body: bytes) -> np.ndarray:
    text = body.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    rows = [line for line in text.split("\n") if line.strip()]
    widths = {line.count(",") + 1 for line in rows}
    if len(widths) != 1:
        raise ValueError(f"rows have different numbers of columns {sorted(widths)}")
    values = [[float(cell) if cell.strip() else np.nan for cell in row.split(",")] for row in rows]
    return np.asarray(values, dtype=np.float32)


def _libsvm_rows(text: str, num_features: int):
    import scipy.sparse as sp

    indptr, indices, data = [0], [], []
    for line in (ln for ln in text.splitlines() if ln.strip()):
        for item in line.split():
            if ":" in item:  # a leading label (no colon) is ignored, as the built-in does
                index, value = item.split(":", 1)
                indices.append(int(index))
                data.append(float(value))
        indptr.append(len(indices))
    width = max([num_features, *(i + 1 for i in indices)])
    return sp.csr_matrix((np.asarray(data, dtype=np.float32), indices, indptr),
                         shape=(len(indptr) - 1, width))


def _inplace_predictor():
    """Booster.inplace_predict for a dense float32 array, minus the wrapper's per-call work (type
    sniffing of every input kind, imports, the config re-encoded): the same C call with the same
    configuration, ~25 us less per call, which is a tenth of a real-time request. Falls back to
    inplace_predict itself if this xgboost's internals differ (the twin pins 3.0.5)."""
    try:
        import ctypes

        from xgboost import core
        from xgboost._data_utils import array_interface

        config = core.make_jcargs(type=0, training=False, iteration_begin=0, iteration_end=0, missing=np.nan,
                                  strict_shape=False, cache_id=0)
        call, check, output = core._LIB.XGBoosterPredictFromDense, core._check_call, core._prediction_output
        no_proxy, ulong, c_float = ctypes.c_void_p(), core.c_bst_ulong, ctypes.c_float
    except (ImportError, AttributeError):
        return lambda booster, rows: booster.inplace_predict(rows, missing=np.nan, validate_features=False)

    def predict(booster: xgb.Booster, rows: np.ndarray) -> np.ndarray:
        preds, shape, dims = ctypes.POINTER(c_float)(), ctypes.POINTER(ulong)(), ulong()
        check(call(booster.handle, array_interface(rows), config, no_proxy, ctypes.byref(shape),
                   ctypes.byref(dims), ctypes.byref(preds)))
        return output(shape, dims, preds, False)

    return predict


_predict_dense = _inplace_predictor()


class Predictor:
    """Scores request bodies with one booster; safe to call from many threads at once."""

    def __init__(self, booster: xgb.Booster, batch: bool = False, default_accept: str = CSV) -> None:
        self.booster = booster
        self.batch = batch
        self.default_accept = default_accept
        config = json.loads(booster.save_config())
        self.objective: str = config["learner"]["objective"]["name"]
        self.num_features: int = booster.num_features()
        # Booster.predict is thread-safe for tree boosters; gblinear's is not, so it is serialised
        self._lock = threading.Lock() if config["learner"]["gradient_booster"]["name"] == "gblinear" else None
        # Real-time rows are scored on one thread: OpenMP's hand-off to a team costs more than a few
        # rows' trees (milliseconds on a busy machine); the copy keeps the model's own nthread for batches.
        self._one_thread = booster.copy()
        self._one_thread.set_param({"nthread": 1})

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Response:
        if not body:
            return Response(204, b"", self.default_accept)
        try:
            media_type = parse_content_type(content_type)
            dmatrix = self._decode(body, media_type)
            out_type = parse_accept(accept, self.default_accept)
            predictions = self.predict(dmatrix)
        except RequestError as err:
            log.info("Rejected request: %s", err)
            return Response(err.status, str(err).encode(), "text/plain")
        return Response(200, self.encode(predictions, out_type), out_type)

    def _decode(self, body: bytes, media_type: str) -> xgb.DMatrix | np.ndarray:
        try:
            if media_type == CSV:
                return _csv_rows(body)  # predict() chooses between in-place and DMatrix scoring
            return xgb.DMatrix(_libsvm_rows(body.decode("utf-8").strip(), self.num_features))
        except (UnicodeDecodeError, ValueError) as err:
            kind = "csv" if media_type == CSV else "libsvm"
            raise RequestError(415, f"Loading {kind} data failed with Exception, please ensure data "
                                    f"is in {kind} format: {type(err).__name__}: {err}") from None

    def predict(self, dmatrix: xgb.DMatrix | np.ndarray) -> np.ndarray:
        if isinstance(dmatrix, np.ndarray):
            if dmatrix.ndim == 2 and len(dmatrix) < _PANDAS_MIN_ROWS and dmatrix.shape[1] == self.num_features \
                    and self._lock is None:
                # the same trees on the same float32 values: equal to predict(DMatrix), tested
                return _predict_dense(self._one_thread, np.ascontiguousarray(dmatrix, dtype=np.float32))
            dmatrix = xgb.DMatrix(dmatrix, missing=np.nan)
        if dmatrix.num_col() != self.num_features:
            raise RequestError(400, f"Unable to evaluate payload provided: feature size of input "
                                    f"({dmatrix.num_col()}) does not match the model "
                                    f"({self.num_features}).")
        try:
            if self._lock is None:
                return self.booster.predict(dmatrix, validate_features=False)
            with self._lock:
                return self.booster.predict(dmatrix, validate_features=False)
        except xgb.core.XGBoostError as err:
            raise RequestError(400, f"Unable to evaluate payload provided: {err}") from None

    def encode(self, predictions: np.ndarray, accept: str) -> bytes:
        rows = predictions.tolist()
        if accept == JSON:
            return json.dumps({"predictions": [{"score": row} for row in rows]}).encode()
        if accept == JSONLINES:
            return "".join(json.dumps({"score": row}) + "\n" for row in rows).encode()
        if self.batch:
            return ("\n".join(map(str, rows)) + "\n").encode()
        return ",".join(map(str, rows)).encode()


def _model_file(model_dir: Path) -> Path:
    preferred = model_dir / MODEL_FILE
    if preferred.is_file():
        return preferred
    candidates = sorted(p for p in model_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(candidates) != 1:
        raise ModelLoadError(f"{model_dir} should hold one model file named {MODEL_FILE}; "
                             f"found {[p.name for p in candidates]}.")
    return candidates[0]


def load_predictor(model_dir: str | os.PathLike[str], batch: bool | None = None) -> Predictor:
    """Load the model in model_dir (the extracted model.tar.gz) into a Predictor."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise ModelLoadError(f"Model folder {folder} does not exist; extract model.tar.gz into it.")
    path = _model_file(folder)
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(path.read_bytes()))
    except xgb.core.XGBoostError as err:
        raise ModelLoadError(f"{path} is not an xgboost model: {err}") from None
    if batch is None:
        batch = os.environ.get("SAGEMAKER_BATCH", "").lower() in ("1", "true")
    default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", CSV)
    log.info("Loaded %s (objective %s)", path, json.loads(booster.save_config())["learner"]["objective"]["name"])
    return Predictor(booster, batch=batch, default_accept=default_accept)
