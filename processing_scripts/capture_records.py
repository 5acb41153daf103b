"""Read an endpoint's data-capture files and Model Monitor ground-truth files into rows and labels.

Capture files (SageMaker data capture): ``*.jsonl`` anywhere under a folder, one record per line:
  {"captureData": {"endpointInput": {"observedContentType", "mode": "INPUT", "data", "encoding"},
                   "endpointOutput": {"observedContentType", "mode": "OUTPUT", "data", "encoding"}},
   "eventMetadata": {"eventId", "inferenceTime", "inferenceId"?}, "eventVersion": "0"}
``encoding`` is CSV or JSON (``data`` is the body's text) or BASE64 (the body's bytes, base64). An
input is what the endpoint's featurizer takes (processing_scripts/serving/featurizer.py): text/csv rows
in the table's column order without the target (a first line equal to the header is skipped, several
rows per request), or application/json ``{"instances": [{column: value}]}`` (a bare list or one object
too). Each input row becomes one row of text cells (None where JSON had null or lacked the column);
rows with the wrong number of CSV cells are counted, not kept (the featurizer refuses them).

Ground truth (Model Monitor's merge format): ``*.jsonl`` lines of
  {"groundTruthData": {"data": "<label>", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"},
   "eventVersion": "0"}
where the id is the capture record's eventId or inferenceId; a request of n rows is labelled by n
lines of data.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("capture_records")

CSV_TYPE, JSON_TYPE = "text/csv", "application/json"
SUFFIX = ".jsonl"


class CaptureFormatError(ValueError):
    """A capture or ground-truth file is not in SageMaker's format; the message names the file and line."""


@dataclass
class CaptureWindow:
    """The decoded inputs of every capture record of a window."""

    columns: list[str]
    cells: pd.DataFrame  # one row per input row, ``columns`` in order, text cells (None: absent/null)
    row_record: np.ndarray  # the record (index into event_ids) each row came from
    event_ids: list[str] = field(default_factory=list)
    inference_ids: list[str | None] = field(default_factory=list)
    outputs: list[tuple[str, str] | None] = field(default_factory=list)  # (text, content type), when kept
    files: int = 0
    short_rows: Counter = field(default_factory=Counter)  # CSV cell count -> rows with fewer cells
    long_rows: Counter = field(default_factory=Counter)  # CSV cell count -> rows with more cells
    absent_keys: Counter = field(default_factory=Counter)  # column -> JSON rows without it
    extra_keys: Counter = field(default_factory=Counter)  # JSON key not a column -> rows with it
    undecodable: Counter = field(default_factory=Counter)  # reason -> records skipped

    @property
    def record_count(self) -> int:
        return len(self.event_ids)

    @property
    def malformed_rows(self) -> int:
        return sum(self.short_rows.values()) + sum(self.long_rows.values())


def capture_files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob(f"*{SUFFIX}") if p.is_file()) if folder.is_dir() else []


def body_text(part: dict, where: str) -> tuple[str, str]:
    """(text, media type) of a captured endpointInput/endpointOutput."""
    encoding = str(part.get("encoding", "CSV")).upper()
    data = part.get("data", "")
    media = str(part.get("observedContentType") or CSV_TYPE).split(";", 1)[0].strip().lower()
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as err:
            raise CaptureFormatError(f"{where}: BASE64 data that is not base64 UTF-8 text ({err}).") from None
    elif encoding not in ("CSV", "JSON"):
        raise CaptureFormatError(f"{where}: encoding {encoding!r} is not CSV, JSON or BASE64.")
    if not isinstance(data, str):
        data = json.dumps(data)  # JSON data given as a document rather than its text
    if encoding == "JSON" and media != JSON_TYPE and "json" not in media:
        media = JSON_TYPE
    return data, JSON_TYPE if "json" in media else CSV_TYPE


def split_cells(line: str) -> list[str]:
    """One CSV line's cells: the csv module only when a quote is there (as the featurizer splits)."""
    if '"' not in line:
        return line.split(",")
    return next(csv.reader(io.StringIO(line)))


def _json_cell(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)  # a list or object where a value belongs: kept, judged by the type check


class _Reader:
    def __init__(self, columns: list[str], keep_outputs: bool) -> None:
        self.columns = columns
        self.column_set = set(columns)
        self.width = len(columns)
        self.keep_outputs = keep_outputs
        self.csv_lines: list[str] = []
        self.csv_records: list[int] = []
        self.json_rows: list[list[str | None]] = []
        self.json_records: list[int] = []
        self.window = CaptureWindow(columns, pd.DataFrame(), np.empty(0, dtype=np.int64))

    def record(self, document: dict, where: str) -> None:
        capture = document.get("captureData")
        metadata = document.get("eventMetadata") or {}
        if not isinstance(capture, dict) or "endpointInput" not in capture:
            self.window.undecodable["no captureData.endpointInput"] += 1
            return
        text, media = body_text(capture["endpointInput"], where)
        index = len(self.window.event_ids)
        if media == JSON_TYPE:
            rows = self._json_rows(text, where)
            self.json_rows += rows
            self.json_records += [index] * len(rows)
        else:
            self._csv_rows(text, index)
        window = self.window
        window.event_ids.append(str(metadata.get("eventId", f"{where}")))
        window.inference_ids.append(metadata.get("inferenceId"))
        if self.keep_outputs:
            output = capture.get("endpointOutput")
            window.outputs.append(body_text(output, where) if isinstance(output, dict) else None)

    def _csv_rows(self, text: str, index: int) -> None:
        lines = [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
        if lines and split_cells(lines[0]) == self.columns:
            lines = lines[1:]  # the table's header, as the featurizer skips it
        for line in lines:
            cells = line.count(",") + 1 if '"' not in line else len(split_cells(line))
            if cells == self.width:
                self.csv_lines.append(line)
                self.csv_records.append(index)
            elif cells < self.width:
                self.window.short_rows[cells] += 1
            else:
                self.window.long_rows[cells] += 1

    def _json_rows(self, text: str, where: str) -> list[list[str | None]]:
        try:
            document = json.loads(text)
        except ValueError:
            self.window.undecodable["JSON input that does not parse"] += 1
            return []
        instances = document.get("instances", document) if isinstance(document, dict) else document
        if isinstance(instances, dict):
            instances = [instances]
        if not isinstance(instances, list):
            self.window.undecodable["JSON input without instances"] += 1
            return []
        rows = []
        for instance in instances:
            if not isinstance(instance, dict):
                self.window.undecodable["JSON instance that is not an object"] += 1
                continue
            for key in instance:
                if key not in self.column_set:
                    self.window.extra_keys[key] += 1
            for name in self.columns:
                if name not in instance:
                    self.window.absent_keys[name] += 1
            rows.append([_json_cell(instance.get(name)) for name in self.columns])
        return rows

    def finish(self) -> CaptureWindow:
        frames, owners = [], []
        if self.csv_lines:
            # one C-parser pass over every CSV row: the text as written (NA tokens judged later)
            frames.append(pd.read_csv(io.StringIO("\n".join(self.csv_lines)), header=None, names=self.columns,
                                      dtype=str, keep_default_na=False, na_filter=False, skipinitialspace=True))
            owners.append(np.asarray(self.csv_records, dtype=np.int64))
        if self.json_rows:
            frames.append(pd.DataFrame(self.json_rows, columns=self.columns, dtype=object))
            owners.append(np.asarray(self.json_records, dtype=np.int64))
        window = self.window
        window.cells = (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]) if frames else \
            pd.DataFrame({name: pd.Series([], dtype=object) for name in self.columns})
        window.row_record = np.concatenate(owners) if owners else np.empty(0, dtype=np.int64)
        return window


def read_capture(folder: Path, columns: list[str], keep_outputs: bool = False) -> CaptureWindow:
    """Every capture record under ``folder`` (any depth), decoded into rows of ``columns``."""
    reader = _Reader(columns, keep_outputs)
    files = capture_files(folder)
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path.name} line {number}"
                try:
                    document = json.loads(line)
                except ValueError:
                    reader.window.undecodable["a line that is not JSON"] += 1
                    continue
                if not isinstance(document, dict):
                    reader.window.undecodable["a line that is not a JSON object"] += 1
                    continue
                reader.record(document, where)
    reader.window.files = len(files)
    return reader.finish()


def read_ground_truth(folder: Path) -> dict[str, list[str]]:
    """eventId -> the label of each row of that event, from Model Monitor ground-truth files."""
    labels: dict[str, list[str]] = {}
    for path in capture_files(folder):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path.name} line {number}"
                try:
                    document = json.loads(line)
                    event = str(document["eventMetadata"]["eventId"])
                    part = document["groundTruthData"]
                except (ValueError, KeyError, TypeError):
                    raise CaptureFormatError(
                        f"{where}: not a ground-truth record; each line must be {{\"groundTruthData\": {{\"data\": "
                        "\"<label>\", \"encoding\": \"CSV\"}, \"eventMetadata\": {\"eventId\": \"<the capture "
                        "record's eventId or inferenceId>\"}, \"eventVersion\": \"0\"}.") from None
                text, _ = body_text(part, where)
                labels[event] = [cell for cell in text.replace("\r\n", "\n").split("\n") if cell.strip()]
    return labels
