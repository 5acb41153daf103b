"""The scikit-learn container's default decoders and encoders: text/csv, application/json, application/x-npy.

The defaults behind ``input_fn`` and ``output_fn`` when a user module does not define them, as the
container's framework library implements them: CSV rows are read with the csv module (quoted cells
allowed) and a single row or column is squeezed to one dimension; JSON is ``numpy.array(json.loads)``;
NPY is ``numpy.load``. Encoding writes CSV one row per line (a 1-D array as a column), JSON through
``tolist()``, NPY with ``numpy.save``. Any other media type is an UnsupportedFormatError, which the
container answers with 415 (decoding) or 406 (encoding).
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
OCTET_STREAM = "application/octet-stream"
ANY = "*/*"
# bodies of these types reach input_fn as str (UTF-8 decoded), every other type as bytes
UTF8_TYPES = (JSON, CSV)


class UnsupportedFormatError(Exception):
    """A content type (request) or accept type (response) the default functions cannot handle."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        super().__init__(f"Content type {content_type} is not supported by this framework. Please implement "
                         "input_fn to deserialize the request data or an output_fn to serialize the response.")


class DecodeError(ValueError):
    """A body of a supported content type that does not parse; the message says where."""


def _text(data: str | bytes) -> str:
    return data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data


def csv_to_numpy(data: str | bytes) -> np.ndarray:
    try:
        rows = list(csv.reader(io.StringIO(_text(data)), delimiter=",", quotechar='"', doublequote=True, strict=True))
        return np.array([row for row in rows if row]).squeeze()
    except (csv.Error, UnicodeDecodeError, ValueError) as err:
        raise DecodeError(f"Error while decoding csv: {err}") from None


def json_to_numpy(data: str | bytes) -> np.ndarray:
    try:
        return np.array(json.loads(data))
    except ValueError as err:
        raise DecodeError(f"Error while decoding json: {err}") from None


def npy_to_numpy(data: bytes) -> np.ndarray:
    try:
        # allow_pickle=False: a request body must not be able to run code (the newer images patch it so too)
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DecodeError(f"Error while decoding npy: {err}") from None


def array_to_csv(array_like) -> str:
    array = np.array(array_like)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(-1, 1)
    stream = io.StringIO()
    csv.writer(stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True, strict=True).writerows(array)
    return stream.getvalue()


def array_to_json(array_like) -> str:
    def default(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(array_like, default=default)


def array_to_npy(array_like) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array_like), allow_pickle=False)
    return buffer.getvalue()


DECODERS = {CSV: csv_to_numpy, JSON: json_to_numpy, NPY: npy_to_numpy}
ENCODERS = {CSV: array_to_csv, JSON: array_to_json, NPY: array_to_npy}


def decode(data: str | bytes, content_type: str) -> np.ndarray:
    decoder = DECODERS.get(content_type)
    if decoder is None:
        raise UnsupportedFormatError(content_type)
    return decoder(data)


def encode(array_like, accept: str) -> str | bytes:
    encoder = ENCODERS.get(accept)
    if encoder is None:
        raise UnsupportedFormatError(accept)
    return encoder(array_like)
