"""Endpoint traffic for drift tests and benchmarks: raw rows of the sample tables written as SageMaker
data-capture files (and Model Monitor ground truth), unshifted or with chosen features shifted."""

from __future__ import annotations

import base64
import io
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"abalone": "rings", "bank-marketing": "deposit"}


def table(dataset: str) -> tuple[pd.DataFrame, str]:
    """The sample table as uploaded (every column as text, as a client would send it) and its target."""
    return pd.read_csv(ROOT / "data" / f"{dataset}.csv", dtype=str, keep_default_na=False), TARGETS[dataset]


def csv_text(rows: pd.DataFrame) -> str:
    buffer = io.StringIO()
    rows.to_csv(buffer, header=False, index=False, lineterminator="\n")
    return buffer.getvalue()


def capture_record(body: str, content_type: str, answer: str, event_id: str, encoding: str = "CSV") -> dict:
    data = base64.b64encode(body.encode()).decode() if encoding == "BASE64" else body
    return {"captureData": {
        "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding},
        "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT", "data": answer,
                           "encoding": "CSV"}},
        "eventMetadata": {"eventId": event_id, "inferenceTime": "2026-11-30T07:00:00Z"}, "eventVersion": "0"}


def write_capture(folder: Path, rows: pd.DataFrame, rows_per_request: int = 1, content: str = "csv",
                  answers: list[str] | None = None, hour: str = "2026/11/30/07", per_file: int = 1000,
                  ) -> list[str]:
    """Capture files of ``rows`` (input columns, text cells) sent ``rows_per_request`` at a time, as
    text/csv, application/json or base64 CSV; returns the event ids. ``answers``: one output per request."""
    target = folder / "ml-pipeline-endpoint" / "AllTraffic" / hour
    target.mkdir(parents=True, exist_ok=True)
    ids, lines = [], []
    # every row rendered once (pandas' CSV writer, or the records), then grouped into requests
    rendered = rows.to_dict(orient="records") if content == "json" else csv_text(rows).splitlines()
    for number, start in enumerate(range(0, len(rows), rows_per_request)):
        chunk = rendered[start:start + rows_per_request]
        if content == "json":
            body, media, encoding = json.dumps({"instances": chunk}), "application/json", "JSON"
        else:
            body, media, encoding = "\n".join(chunk) + "\n", "text/csv", "BASE64" if content == "base64" else "CSV"
        event = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{target}/{number}"))
        ids.append(event)
        lines.append(json.dumps(capture_record(body, media, answers[number] if answers else "0", event, encoding)))
    for part, start in enumerate(range(0, len(lines), per_file)):
        (target / f"capture-{part:05d}.jsonl").write_text("\n".join(lines[start:start + per_file]) + "\n")
    return ids


def write_ground_truth(folder: Path, labels: dict[str, str]) -> None:
    target = folder / "2026" / "11" / "30" / "08"
    target.mkdir(parents=True, exist_ok=True)
    (target / "labels.jsonl").write_text("".join(
        json.dumps({"groundTruthData": {"data": label, "encoding": "CSV"}, "eventMetadata": {"eventId": event},
                    "eventVersion": "0"}) + "\n" for event, label in labels.items()))


def shifted(rows: pd.DataFrame, numeric: str, std: float, sds: float, categorical: str, mix: dict[str, float],
            rng: np.random.Generator) -> pd.DataFrame:
    """``numeric`` moved by ``sds`` standard deviations (a whole number of units for a whole-numbered
    column, which stays whole); ``categorical`` (if named) redrawn with the shares ``mix``."""
    out = rows.copy()
    values = pd.to_numeric(out[numeric])
    whole = bool(np.all(np.mod(values, 1) == 0))
    out[numeric] = (values + (round(sds * std) if whole else sds * std)).map(lambda v: str(int(v)) if whole else repr(v))
    if categorical:
        out[categorical] = rng.choice(list(mix), size=len(out), p=list(mix.values()))
    return out


def split_rows(dataset: str, with_target: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train rows, held-out rows) as the file spells them, without the target, by preprocess's own split
    (its functions and default options). The held-out rows (validation and test) are traffic from the
    training distribution that the baseline never saw."""
    from processing_scripts import preprocess

    text, target = table(dataset)
    options = preprocess.Options(ROOT / "data" / f"{dataset}.csv", Path("unused"), target)
    raw, _ = preprocess.read_raw(options)
    raw, _ = preprocess.read_feature_cells(raw, target)
    data, dropped_null, dropped_dupes = preprocess.labelled_rows(raw, target)
    assert dropped_null == dropped_dupes == 0, "the sample tables have neither; positions map to file rows"
    decision = preprocess.decide_target(data[target], "auto", target)
    y = preprocess.encode_target(data[target], decision)
    train, validation, test = preprocess.split_indices(y, decision.problem_type, options)
    features = text if with_target else text.drop(columns=[target])
    return (features.iloc[train].reset_index(drop=True),
            features.iloc[np.concatenate([validation, test])].reset_index(drop=True))


def held_out(dataset: str) -> pd.DataFrame:
    return split_rows(dataset)[1]
