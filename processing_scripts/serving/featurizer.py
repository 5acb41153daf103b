"""Featurizer: raw rows of the user's table in, the model's feature matrix out (text/csv).

The first container of the serial inference pipeline (SageMaker scikit-learn image). model.tar.gz
holds ``schema.json`` (preprocess's, unchanged: ``input_columns`` is the request's column order) and
``code/`` (this file, errors.py, preprocess.py, problem_rules.py). Every row is encoded by
``preprocess.transform_with_schema`` - the function that encoded the training data - so training
and serving cannot disagree.

Requests:
  text/csv          rows in the table's column order without the target; a first line equal to the
                    header is skipped; an empty cell or a pandas NA token ("NA", "null", ...) is missing
  application/json  {"instances": [{"age": 45, "job": "admin.", ...}, ...]} (or a bare list, or one
                    object); null is missing; keys the model does not use are ignored
Refused with 400 and the row and column named: a CSV row with the wrong number of cells, a value that
is not a number in a numeric column, a JSON row without a column the model uses. An infinite value is
missing, as preprocess read it in training. A category never
seen in training is encoded as training encoded rare ones. Response: text/csv, one row per line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

try:  # packaged: code/ holds preprocess.py and errors.py beside this file
    import preprocess
    from errors import RequestError, respond
except ImportError:  # imported from the project tree
    from processing_scripts import preprocess
    from processing_scripts.serving.errors import RequestError, respond

CSV, JSON = "text/csv", "application/json"
SCHEMA_FILE = "schema.json"
# read as missing, as pandas.read_csv's default na_values read them in training
NA_TOKENS = frozenset(["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                       "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"])
# read_csv's booleans: a True/False column was encoded as a number (1/0)
BOOLEANS = {"True": 1.0, "TRUE": 1.0, "true": 1.0, "False": 0.0, "FALSE": 0.0, "false": 0.0}


class Featurizer:
    """What model_fn loads: the schema, the request columns and a parser per column."""

    def __init__(self, schema: dict, columns: list[str]) -> None:
        self.schema = schema
        self.columns = columns
        self.numeric = {c["name"] for c in schema["source_columns"] if c["kind"] == "numeric"}
        self.used = [c["name"] for c in schema["source_columns"]]
        missing = [name for name in self.used if name not in columns]
        if missing:
            raise ValueError(f"{SCHEMA_FILE}: input_columns lacks the encoded columns {missing}; re-run preprocess.")
        self.positions = [(name, columns.index(name)) for name in self.used]

    def cell(self, name: str, text: str | None, row: int):
        """One raw value as read_csv read it in training: a float (numeric) or str, None if missing."""
        if text is None:
            return None
        text = text.lstrip(" ")  # read_csv(skipinitialspace=True)
        if text in NA_TOKENS:
            return None
        if name not in self.numeric:
            return text
        if text in BOOLEANS:
            return BOOLEANS[text]
        try:
            if "_" in text:  # float() accepts 1_000, read_csv does not
                raise ValueError(text)
            number = float(text)
        except ValueError:
            raise RequestError(400, f"Row {row}, column {name!r}: {text[:40]!r} is not a number; column {name!r} "
                                    "is numeric in the training data. Send a number or leave the cell empty.") from None
        # preprocess read infinite cells as missing (feature_rules.py); the same cell here means the same
        return None if math.isinf(number) else number

    def json_value(self, name: str, value, row: int):
        if value is None:
            return None
        if isinstance(value, bool):
            return (1.0 if value else 0.0) if name in self.numeric else str(value)
        if isinstance(value, (int, float)):
            if name in self.numeric:
                return None if math.isnan(value) or math.isinf(value) else float(value)
            return str(value)
        if isinstance(value, str):
            return self.cell(name, value, row)
        raise RequestError(400, f"Row {row}, column {name!r}: {type(value).__name__} is not a value; send a "
                                "number, a string or null.")

    def rows_from_csv(self, text: str) -> list[dict]:
        lines = [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
        if lines and _split(lines[0]) == self.columns:
            lines = lines[1:]  # the header of the uploaded file
        width = len(self.columns)
        rows = []
        for number, line in enumerate(lines, start=1):
            cells = _split(line)
            if len(cells) != width:
                raise RequestError(400, f"Row {number} has {len(cells)} columns; expected {width}: "
                                        f"{', '.join(self.columns)} (the table's columns without the target, in "
                                        "file order).")
            rows.append({name: self.cell(name, cells[at], number) for name, at in self.positions})
        return rows

    def rows_from_json(self, text: str) -> list[dict]:
        try:
            document = json.loads(text)
        except ValueError as err:
            raise RequestError(400, f"The body is not JSON: {err}. Send {{\"instances\": [{{column: value}}]}}.") from None
        instances = document.get("instances", document) if isinstance(document, dict) else document
        if isinstance(instances, dict):
            instances = [instances]
        if not isinstance(instances, list):
            raise RequestError(400, "Send {\"instances\": [{column: value, ...}, ...]}: a list of rows by column name.")
        rows = []
        for number, instance in enumerate(instances, start=1):
            if not isinstance(instance, dict):
                raise RequestError(400, f"Row {number} is a {type(instance).__name__}, not an object of column: value.")
            absent = [name for name in self.used if name not in instance]
            if absent:
                raise RequestError(400, f"Row {number} lacks column {absent[0]!r}"
                                        f"{f' (and {len(absent) - 1} more: {absent[1:]})' if len(absent) > 1 else ''}; "
                                        "the model needs every one of "
                                        f"{self.used} (null for a missing value).")
            rows.append({name: self.json_value(name, instance[name], number) for name in self.used})
        return rows

    def features(self, body: str, content_type: str) -> list[list[float]]:
        rows = self.rows_from_json(body) if content_type == JSON else self.rows_from_csv(body)
        if not rows:
            raise RequestError(400, "The request holds no rows.")
        return preprocess.transform_with_schema(self.schema, rows).tolist()


def _split(line: str) -> list[str]:
    """One CSV line's cells; the csv module only when a quote is there (one row: ~10x faster)."""
    if '"' not in line:
        return line.split(",")
    return next(csv.reader(io.StringIO(line)))


def _media_type(header: str | None) -> str:
    return (header or CSV).split(";", 1)[0].strip().lower()


def model_fn(model_dir: str) -> Featurizer:
    with open(os.path.join(model_dir, SCHEMA_FILE)) as handle:
        schema = json.load(handle)
    return Featurizer(schema, schema["input_columns"])


def transform_fn(model: Featurizer, body, content_type: str, accept: str):
    """Raw rows -> the feature matrix as text/csv (what the XGBoost container reads)."""
    try:
        media_type = _media_type(content_type)
        if media_type not in (CSV, JSON):
            raise RequestError(415, f"Content type {content_type} is not supported; send text/csv rows or "
                                    "application/json {\"instances\": [...]}.")
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        matrix = model.features(text, media_type)
    except RequestError as err:
        return respond(err)
    except UnicodeDecodeError as err:
        return respond(RequestError(400, f"The body is not UTF-8 text ({err.reason} at byte {err.start})."))
    return "".join(",".join(map(repr, row)) + "\n" for row in matrix), CSV
