"""Build a retraining set: the champion's training input plus the newly labelled records.

Event: {"previous_input" (the champion's input_s3_uri: an object or a prefix of .csv objects),
"capture" and "ground_truth" (the monitoring run's copies, s3:// prefixes), "schema" (the champion's
schema.json), "output" (s3://<bucket>/retraining/<run>/: a prefix the raw/ upload rule does not
watch, so writing it starts nothing by itself)}. Environment: DATA_BUCKET.

The previous input is copied object by object (server-side: no byte passes through the function), and
the labelled records go to ``labelled.csv`` with the previous input's header, its columns in its
order: each captured request's rows (CSV, a header line equal to the table's skipped, or JSON objects
by column name) joined by eventId with the ground truth (Model Monitor's merge format:
``groundTruthData.data`` holds one label per row of the request, CSV lines; ``eventMetadata.eventId``
is the capture's eventId or the request's InferenceId). Returns
{"input_s3_uri", "start" (the training execution's input: {"input_s3_uri"}), "labelled_records",
"previous_objects", "skipped"}; records without a label, or
whose label count does not match their rows, are counted in "skipped", not guessed.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3

HEADER_BYTES = 64 * 1024


class RetrainingSetError(Exception):
    """The retraining set cannot be built from what the monitoring run found."""


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise RetrainingSetError(f"{uri!r} is not an s3:// URI")
    return parsed.netloc, parsed.path.lstrip("/")


def _decode(part: dict[str, Any]) -> str:
    data = part.get("data", "")
    if str(part.get("encoding", "")).upper() == "BASE64":
        return base64.b64decode(data).decode("utf-8")
    return data if isinstance(data, str) else json.dumps(data)


def request_rows(capture_input: dict[str, Any], columns: list[str]) -> list[list[str]] | None:
    """A captured request's rows as cells in ``columns`` order, or None when it cannot be read."""
    text = _decode(capture_input)
    content_type = str(capture_input.get("observedContentType", "")).split(";")[0].strip().lower()
    if content_type == "application/json" or str(capture_input.get("encoding", "")).upper() == "JSON":
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(value, dict) and isinstance(value.get("instances"), list):
            value = value["instances"]
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in items):
            return None
        return [["" if item.get(c) is None else str(item.get(c)) for c in columns] for item in items]
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if rows and [c.strip() for c in rows[0]] == columns:
        rows = rows[1:]  # the table's own header line, which the endpoint skips too
    if any(len(row) != len(columns) for row in rows):
        return None
    return rows


def labels_of(ground_truth: dict[str, Any]) -> list[str]:
    text = _decode(ground_truth.get("groundTruthData") or {})
    return [row[0] if row else "" for row in csv.reader(io.StringIO(text)) if row]


def jsonl(texts: Iterator[str]) -> Iterator[dict[str, Any]]:
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn line is skipped, as Model Monitor's merge does


def labelled_rows(capture_texts: Iterator[str], ground_truth_texts: Iterator[str], schema: dict[str, Any],
                  header: list[str]) -> tuple[list[list[str]], dict[str, int]]:
    """The pure core: rows in ``header`` order (the input columns and the target) and what was skipped."""
    columns, target = schema["input_columns"], schema["target_column"]
    missing = [c for c in [*columns, target] if c not in header]
    if missing:
        raise RetrainingSetError(f"the previous training input's header {header} lacks {missing}: it is not the table the "
                                 "champion was trained on")
    labels = {}
    for record in jsonl(ground_truth_texts):
        event_id = (record.get("eventMetadata") or {}).get("eventId")
        if event_id:
            labels[event_id] = labels_of(record)
    skipped = {"unlabelled": 0, "unreadable": 0, "label_count_mismatch": 0}
    out = []
    position = {name: i for i, name in enumerate(header)}
    for record in jsonl(capture_texts):
        metadata = record.get("eventMetadata") or {}
        # Model Monitor's merge: the label's eventId is the capture's eventId, or the InferenceId the
        # caller gave with the request (eventMetadata.inferenceId)
        event_id = next((key for key in (metadata.get("inferenceId"), metadata.get("eventId")) if key in labels), None)
        if event_id is None:
            skipped["unlabelled"] += 1
            continue
        rows = request_rows((record.get("captureData") or {}).get("endpointInput") or {}, columns)
        if rows is None:
            skipped["unreadable"] += 1
            continue
        if len(rows) != len(labels[event_id]):
            skipped["label_count_mismatch"] += 1
            continue
        for row, label in zip(rows, labels[event_id], strict=True):
            line = [""] * len(header)
            for name, cell in zip(columns, row, strict=True):
                line[position[name]] = cell
            line[position[target]] = label
            out.append(line)
    return out, skipped


def to_csv(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def build(event: dict[str, Any], client: Any) -> dict[str, Any]:
    out_bucket, out_prefix = split_uri(event["output"])
    out_prefix = out_prefix if out_prefix.endswith("/") else out_prefix + "/"
    prev_bucket, prev_key = split_uri(event["previous_input"])

    def keys(bucket: str, prefix: str, suffix: str) -> list[str]:
        found = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [o["Key"] for o in page.get("Contents", []) if o["Key"].lower().endswith(suffix) and o["Size"] > 0]
        return sorted(found)

    def texts(uri: str) -> Iterator[str]:
        bucket, prefix = split_uri(uri)
        for key in keys(bucket, prefix, ".jsonl"):
            yield client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")

    previous = keys(prev_bucket, prev_key, ".csv") if prev_key.endswith("/") else [prev_key]
    if not previous:
        raise RetrainingSetError(f"the champion's training input {event['previous_input']} holds no .csv object any more; "
                                 "retrain from a new upload under raw/ instead")
    head = client.get_object(Bucket=prev_bucket, Key=previous[0], Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"].read()
    header = next(csv.reader(io.StringIO(head.decode("utf-8-sig").splitlines()[0])))
    schema_bucket, schema_key = split_uri(event["schema"])
    schema = json.loads(client.get_object(Bucket=schema_bucket, Key=schema_key)["Body"].read())
    rows, skipped = labelled_rows(texts(event["capture"]), texts(event["ground_truth"]), schema, header)
    if rows:
        client.put_object(Bucket=out_bucket, Key=f"{out_prefix}labelled.csv", Body=to_csv(header, rows),
                          ContentType="text/csv")
        for i, key in enumerate(previous):
            client.copy_object(Bucket=out_bucket, Key=f"{out_prefix}previous-{i:04d}-{key.rsplit('/', 1)[-1]}",
                               CopySource={"Bucket": prev_bucket, "Key": key})
    uri = f"s3://{out_bucket}/{out_prefix}"
    return {"input_s3_uri": uri, "start": {"input_s3_uri": uri}, "labelled_records": len(rows),
            "previous_objects": len(previous), "skipped": skipped}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return build(event, boto3.client("s3"))


