"""Random Forest serving functions for the scikit-learn image: model_fn, input_fn, predict_fn, output_fn.

The model container between the featurizer and the label decoder of the serial inference pipeline,
answering what the label decoder reads from the XGBoost container
(processing_scripts/serving/label_decoder.py):

  in   text/csv           the featurizer's output: one row of encoded features per line, no label
       application/json   {"instances": [[f1, f2, ...], ...]} (or a bare list of rows, or one row;
                          a row may be {"features": [...]})
  out  application/json   {"predictions": [{"score": s}, ...]}
       text/csv           one score per line
  score: regression the predicted value; binary the probability of the positive class (index 1);
  multiclass the list of every class's probability, in class index order ("[0.1, 0.2, 0.7]" per CSV line)

A wrong feature count or a cell that is not a number answers 400 naming the row; an unsupported
content type 415, accept 406 (errors carry ``status_code``, as the inference toolkit's do). Empty
cells are missing values (scikit-learn's forests route them).
"""

from __future__ import annotations

import json
import math
import os

import joblib
import numpy as np

try:  # the model's code/ folder (and the sourcedir) hold contract.py beside this file
    import contract
except ImportError:  # imported from the source tree
    from training_scripts.random_forest import contract

CSV, JSON = "text/csv", "application/json"


class RequestError(Exception):
    """A request the model cannot answer; the container answers ``status_code`` with ``message``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code, self.message = status_code, message


class ForestModel:
    """What model_fn loads: the fitted estimator and model.json's facts about it."""

    def __init__(self, estimator, info: dict) -> None:
        self.estimator = estimator
        self.problem_type: str = info["problem_type"]
        self.num_classes: int | None = info.get("num_classes")
        self.n_features: int = int(info["n_features"])
        self.info = info

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Regression values, the positive class's probability (binary), or every class's (multiclass)."""
        if self.problem_type == contract.REGRESSION:
            return self.estimator.predict(x)
        proba = self.estimator.predict_proba(x)
        full = np.zeros((len(x), self.num_classes))
        full[:, self.estimator.classes_.astype(int)] = proba
        return full[:, 1] if self.problem_type == contract.BINARY else full


def _media_type(header: str | None, default: str) -> str:
    return (header or default).split(";", 1)[0].strip().lower()


def model_fn(model_dir: str) -> ForestModel:
    with open(os.path.join(model_dir, contract.INFO_FILE)) as handle:
        info = json.load(handle)
    return ForestModel(joblib.load(os.path.join(model_dir, contract.MODEL_FILE)), info)


def _number(text: str, row: int, column: int) -> float:
    text = text.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise RequestError(400, f"Row {row}, feature {column}: {text[:40]!r} is not a number; send the encoded "
                                "features (the featurizer's output).") from None


def _rows_from_csv(text: str) -> list[list[float]]:
    lines = [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
    return [[_number(cell, row, column) for column, cell in enumerate(line.split(","), start=1)]
            for row, line in enumerate(lines, start=1)]


def _rows_from_json(text: str) -> list[list[float]]:
    try:
        document = json.loads(text)
    except ValueError as err:
        raise RequestError(400, f"The body is not JSON: {err}.") from None
    rows = document.get("instances", document) if isinstance(document, dict) else document
    if isinstance(rows, list) and rows and not isinstance(rows[0], (list, dict)):
        rows = [rows]  # one row
    if not isinstance(rows, list):
        raise RequestError(400, 'Send {"instances": [[feature, ...], ...]}: a list of feature rows.')
    out = []
    for number, row in enumerate(rows, start=1):
        if isinstance(row, dict):
            row = row.get("features")
        if not isinstance(row, list):
            raise RequestError(400, f"Row {number} is not a list of features.")
        try:
            out.append([math.nan if value is None else float(value) for value in row])
        except (TypeError, ValueError):
            raise RequestError(400, f"Row {number} holds a value that is not a number.") from None
    return out


def input_fn(input_data, content_type: str) -> np.ndarray:
    media_type = _media_type(content_type, JSON)
    if media_type not in (CSV, JSON):
        raise RequestError(415, f"Content type {content_type} is not supported; send text/csv or application/json "
                                "feature rows.")
    text = input_data.decode("utf-8") if isinstance(input_data, (bytes, bytearray)) else input_data
    rows = _rows_from_csv(text) if media_type == CSV else _rows_from_json(text)
    if not rows:
        raise RequestError(400, "The request holds no rows.")
    return _matrix(rows)


def _matrix(rows: list[list[float]]) -> np.ndarray:
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        first = next(n for n, row in enumerate(rows, start=1) if len(row) != len(rows[0]))
        raise RequestError(400, f"Row {first} has {len(rows[first - 1])} features, row 1 has {len(rows[0])}.")
    return np.asarray(rows, dtype=np.float64)


def predict_fn(input_data: np.ndarray, model: ForestModel) -> np.ndarray:
    if input_data.ndim != 2 or input_data.shape[1] != model.n_features:
        got = input_data.shape[1] if input_data.ndim == 2 else input_data.size
        raise RequestError(400, f"Each row needs {model.n_features} features, got {got}: send the featurizer's "
                                "output for the table this model was trained on.")
    return model.scores(input_data)


def output_fn(prediction: np.ndarray, accept: str):
    media_type = _media_type(accept, JSON)
    rows = np.asarray(prediction).tolist()
    if media_type == JSON:
        return json.dumps({"predictions": [{"score": row} for row in rows]}), JSON
    if media_type == CSV:
        return "".join(f"{row!r}\n" for row in rows), CSV
    raise RequestError(406, f"Accept {accept} is not supported; ask for application/json or text/csv.")
