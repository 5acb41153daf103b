"""Read and validate an inference file against the deployed model's schema, before any inference, and
write the batches the state machine's Map sends to the endpoint.

Event (built by the inference state machine): {"defaults": {...}, "config": {...}, "execution_name":
str}; ``config`` is the execution input ({"input_s3_uri": "s3://<bucket>/inference/x.csv", and any
inference setting}) merged over ``defaults``.

The file: ``.csv`` (raw records, the training table's input columns; a header line is optional — with
one, columns are matched by name in any order and the target column, if present, is ignored) or
``.jsonl`` (one JSON object per line, keyed by column name). The deployed model is the one the
endpoint serves: DescribeEndpoint -> its endpoint config -> its model, whose first container (the
featurizer, ``runs/<run>/processed/featurizer/model.tar.gz``) says which run trained it; that run's
``processed/schema/schema.json`` and ``baseline.json`` are the columns and the training ranges.

Returns the plan the state machine reads: the records' count, the schema and baseline URIs, the problem
type, the batches written under ``predictions/<execution>/batches/`` (CSV rows in the model's column
order, what the endpoint takes) with where each one's scores go, and the capture files of the last
``capture_report_hours`` hours the report draws (a manifest under ``predictions/<execution>/``). Every rejection is a named exception (the error name Step Functions reports) whose message
says what was wrong and what to do.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3

if __package__:  # imported from the source tree (tests, the CDK app)
    from . import problem_rules as rules
else:  # the Lambda runtime imports handler.py from the asset root, where CDK staged the rules beside it
    import problem_rules as rules

MAX_BYTES = 64 * 1024 * 1024  # an inference file larger than this belongs in a batch transform
MAX_BATCHES = 500  # keeps the Map's state (one small entry per batch) far below 256 KiB
EXAMPLES = 3
SETTING_RANGES = {"confidence_threshold": (0.0, 1.0), "max_low_confidence_share": (0.0, 1.0),
                  "inference_batch_size": (1, 1000), "capture_report_hours": (1, 8760)}
WHOLE_SETTINGS = {"inference_batch_size", "capture_report_hours"}
FEATURIZER_SUFFIX = "processed/featurizer/model.tar.gz"


class InferenceInputError(Exception):
    """Base of every rejection."""


class InputOutsideInferencePrefix(InferenceInputError):
    """input_s3_uri is not under the data bucket's inference prefix (the only place the pipeline reads)."""


class InvalidInferenceSetting(InferenceInputError):
    """An execution setting is unknown, of the wrong type or out of range."""


class InputObjectNotFound(InferenceInputError):
    """input_s3_uri is missing, malformed, or names no object."""


class UnreadableRecords(InferenceInputError):
    """The file is not UTF-8 CSV or JSON Lines, or a line does not parse."""


class NoRecords(InferenceInputError):
    """The file holds no record."""


class TooManyRecords(InferenceInputError):
    """More records than one execution scores through the real-time endpoint."""


class SchemaMismatch(InferenceInputError):
    """Columns missing, unknown or of the wrong type for the deployed model."""


class NoDeployedModel(InferenceInputError):
    """No endpoint serves a model of this pipeline yet, or its schema cannot be found."""


# ---------------------------------------------------------------- settings


def check_settings(defaults: dict[str, Any], config: dict[str, Any]) -> None:
    unknown = sorted(set(config) - set(defaults) - {"input_s3_uri"})
    if unknown:
        raise InvalidInferenceSetting(
            f"Unknown setting(s) {unknown} in the execution input. The inference state machine takes input_s3_uri and "
            f"{sorted(defaults)}. Check the spelling or remove them.")
    for key, (low, high) in SETTING_RANGES.items():
        value = config.get(key)
        whole = key in WHOLE_SETTINGS
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and value != int(value)) \
                or not low <= value <= high:
            kind = "a whole number" if whole else "a number"
            raise InvalidInferenceSetting(f"Setting {key!r} must be {kind} from {low} to {high}, got {json.dumps(value)}. "
                                          "Fix it in the execution input.")


def parse_s3_uri(uri: Any) -> tuple[str, str]:
    parsed = urlparse(uri) if isinstance(uri, str) else None
    if not parsed or parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise InputObjectNotFound(f"input_s3_uri must be an s3://bucket/key URI of a .csv or .jsonl file, got "
                                  f"{json.dumps(uri)}. Start the execution with {{\"input_s3_uri\": "
                                  "\"s3://<bucket>/inference/records.csv\"}.")
    return parsed.netloc, parsed.path.lstrip("/")


# ---------------------------------------------------------------- the deployed model


@dataclass(frozen=True)
class Schema:
    """What the deployed model takes: its input columns and their kinds."""

    columns: list[str]
    kinds: dict[str, str]  # column -> numeric | categorical | date
    target: str
    problem_type: str
    labels: list[str] | None

    @classmethod
    def from_json(cls, schema: dict[str, Any]) -> Schema:
        kinds = {c["name"]: c.get("kind", "categorical") for c in schema.get("source_columns") or []}
        return cls(list(schema["input_columns"]), kinds, schema.get("target_column", ""), schema["problem_type"],
                   schema.get("labels"))


def schema_prefix(featurizer_url: str) -> str:
    """runs/<run>/processed/featurizer/model.tar.gz -> runs/<run>/processed/schema/ (the same run)."""
    if not featurizer_url.endswith(FEATURIZER_SUFFIX):
        raise NoDeployedModel(
            f"The endpoint's model does not start with this pipeline's featurizer ({featurizer_url} does not end with "
            f"{FEATURIZER_SUFFIX}): it was not deployed by the training pipeline, so its schema is unknown. Deploy a "
            "model with the training pipeline, then start the inference again.")
    return featurizer_url[: -len(FEATURIZER_SUFFIX)] + "processed/schema/"


# ---------------------------------------------------------------- reading records


@dataclass
class Records:
    """The records as text cells in the model's column order, with their line numbers."""

    rows: list[list[str]]
    lines: list[int]
    file_format: str
    header: bool
    notes: list[str]


def _norm(name: str) -> str:
    return str(name).strip().casefold()


def _mismatch(where: str, schema: Schema, missing: list[str], unknown: list[str], wrong: list[str]) -> None:
    problems = []
    if missing:
        problems.append(f"missing column(s) {missing}")
    if unknown:
        problems.append(f"unknown column(s) {unknown}")
    if wrong:
        problems.append("wrong type: " + "; ".join(wrong))
    if problems:
        raise SchemaMismatch(
            f"{where} does not match the deployed model's columns: {'; '.join(problems)}. The model takes "
            f"{schema.columns} (target {schema.target!r} not needed). Fix the file and upload it again; nothing was "
            "sent to the endpoint.")


def _match_columns(names: list[str], schema: Schema, where: str) -> tuple[list[int | None], list[str]]:
    """For each model column, its position in ``names`` (None: absent); and the names ignored."""
    position = {}
    for i, name in enumerate(names):
        position.setdefault(_norm(name), i)
    missing = [c for c in schema.columns if _norm(c) not in position]
    known = {_norm(c) for c in schema.columns}
    unknown = [n for n in names if _norm(n) not in known and _norm(n) != _norm(schema.target) and str(n).strip()]
    _mismatch(where, schema, missing, unknown, [])
    ignored = [n for n in names if _norm(n) == _norm(schema.target)]
    return [position.get(_norm(c)) for c in schema.columns], ignored


def read_csv(text: str, schema: Schema, where: str) -> Records:
    try:
        parsed = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text)), start=1)
                  if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise UnreadableRecords(f"{where} is not valid CSV: {error}. Save it as comma-separated text.") from None
    if not parsed:
        raise NoRecords(f"{where} holds no record. Upload a file with at least one row.")
    first = [c for c in parsed[0][1] if c.strip()]
    known = {_norm(c) for c in [*schema.columns, schema.target]}
    header = bool(first) and sum(_norm(c) in known for c in first) * 2 >= len(first)
    notes: list[str] = []
    if header:
        order, ignored = _match_columns(parsed[0][1], schema, where)
        if ignored:
            notes.append(f"the file's target column {ignored[0]!r} is ignored: the model predicts it")
        parsed = parsed[1:]
        if not parsed:
            raise NoRecords(f"{where} has a header line and no record. Add the rows to score.")
        width = len(order)
    else:
        width = len(schema.columns)
        order = list(range(width))
    rows, lines = [], []
    expected = None if header else width
    for number, row in parsed:
        if expected is not None and len(row) != expected:
            raise SchemaMismatch(
                f"{where} line {number} has {len(row)} column(s); the deployed model takes {expected}: {schema.columns} "
                f"(target {schema.target!r} not needed). Without a header line the columns must be exactly those, in "
                "that order; add a header line naming the columns so extra or missing ones can be named.")
        rows.append(["" if i is None or i >= len(row) else row[i] for i in order])
        lines.append(number)
    return Records(rows, lines, "csv", header, notes)


def read_jsonl(text: str, schema: Schema, where: str) -> Records:
    objects, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise UnreadableRecords(f"{where} line {number} is not JSON ({error.msg}). Each line must be one JSON "
                                    "object of column: value.") from None
        if not isinstance(value, dict):
            raise UnreadableRecords(f"{where} line {number} is a JSON {type(value).__name__}, not an object of "
                                    "column: value.")
        objects.append(value)
        lines.append(number)
    if not objects:
        raise NoRecords(f"{where} holds no record. Upload a file with at least one JSON object per line.")
    names: list[str] = []
    for value in objects:
        names += [k for k in value if k not in names]
    order, ignored = _match_columns(names, schema, where)
    notes = [f"the records' target field {ignored[0]!r} is ignored: the model predicts it"] if ignored else []
    rows = []
    for value in objects:
        cells = [None if i is None else value.get(names[i]) for i in order]
        rows.append(["" if cell is None else cell if isinstance(cell, str) else json.dumps(cell) for cell in cells])
    return Records(rows, lines, "jsonl", True, notes)


def check_types(records: Records, schema: Schema, where: str) -> None:
    """A numeric column's filled cells must be finite numbers (the featurizer refuses anything else)."""
    wrong = []
    for index, column in enumerate(schema.columns):
        if schema.kinds.get(column) != "numeric":
            continue
        bad = []
        for row, line in zip(records.rows, records.lines, strict=True):
            cell = row[index]
            if rules.is_missing(cell):  # imputed by the featurizer, as in training
                continue
            try:
                ok = math.isfinite(float(cell))
            except ValueError:
                ok = False
            if not ok:
                bad.append((line, cell))
        if bad:
            shown = ", ".join(f"line {line}: {cell!r}" for line, cell in bad[:EXAMPLES])
            wrong.append(f"{column!r} is numeric but {len(bad)} record(s) hold something else ({shown})")
    _mismatch(where, schema, [], [], wrong)


def read_records(data: bytes, key: str, schema: Schema, where: str) -> Records:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableRecords(f"{where} is not UTF-8 text (byte {error.start}). Save it as UTF-8 CSV or JSON "
                                "Lines.") from None
    lower = key.lower()
    if lower.endswith(".jsonl"):
        records = read_jsonl(text, schema, where)
    elif lower.endswith(".csv"):
        records = read_csv(text, schema, where)
    else:
        raise UnreadableRecords(f"{where} is neither .csv nor .jsonl. Name the file by its format.")
    check_types(records, schema, where)
    return records


# ---------------------------------------------------------------- the plan


def csv_body(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def inference_id(execution_name: str, index: int) -> str:
    """eventMetadata.inferenceId of a batch's capture line (InvokeEndpoint allows 64 characters)."""
    digest = hashlib.sha256(execution_name.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9-]', '-', execution_name)[:40]}-{digest}-{index:05d}"


def build_plan(defaults: dict[str, Any], config: dict[str, Any], execution_name: str, data_bucket: str,
               endpoint_name: str, inference_prefix: str, read_object: Callable[[str, str], bytes],
               deployed_featurizer: Callable[[str], str], read_json: Callable[[str], dict],
               write_object: Callable[[str, str, str], None], list_keys: Callable[[str, str], list[str]],
               list_folders: Callable[[str, str], list[str]], now: dt.datetime) -> dict[str, Any]:
    """The pure core: validate, write the batches, return the plan (or raise a named error)."""
    check_settings(defaults, config)
    bucket, key = parse_s3_uri(config.get("input_s3_uri"))
    where = f"s3://{bucket}/{key}"
    if bucket != data_bucket or not key.startswith(inference_prefix):
        raise InputOutsideInferencePrefix(
            f"{where} is not under s3://{data_bucket}/{inference_prefix}, the only place the inference pipeline reads "
            "records from. Copy the file there (which also starts an execution).")
    featurizer = deployed_featurizer(endpoint_name)
    prefix = schema_prefix(featurizer)
    schema = Schema.from_json(read_json(prefix + "schema.json"))
    records = read_records(read_object(bucket, key), key, schema, where)
    size = int(config["inference_batch_size"])
    batches = math.ceil(len(records.rows) / size)
    if batches > MAX_BATCHES:
        raise TooManyRecords(
            f"{where} holds {len(records.rows)} records: {batches} batches of {size}, more than the {MAX_BATCHES} one "
            f"execution scores through the endpoint. Split the file, raise inference_batch_size (up to 1000), or score "
            "it with a batch transform job.")
    out = f"predictions/{execution_name}/"
    # each record's line in the file, for naming records later (kept in S3: the state stays small)
    write_object(data_bucket, f"{out}lines.json", json.dumps(records.lines))
    plan_batches = []
    for index in range(batches):
        first = index * size
        rows = records.rows[first:first + size]
        batch_key = f"{out}batches/{index:05d}.csv"
        write_object(data_bucket, batch_key, csv_body(rows))
        plan_batches.append({"index": index, "key": batch_key, "scores_key": f"{out}scores/{index:05d}.csv",
                             "first": first, "count": len(rows), "inference_id": inference_id(execution_name, index)})
    capture_prefix = f"capture/{endpoint_name}/"
    hours = int(config["capture_report_hours"])
    captured = capture_in_window(data_bucket, capture_prefix, hours, now, list_keys, list_folders)
    manifest = f"{out}capture-manifest.json"
    if captured:
        # the report reads only this window's files, whatever the endpoint captured before it
        write_object(data_bucket, manifest, json.dumps([{"prefix": f"s3://{data_bucket}/{capture_prefix}"}, *captured]))
    return {
        "input": where,
        "format": records.file_format,
        "header": records.header,
        "records": len(records.rows),
        "lines": f"{out}lines.json",
        "columns": schema.columns,
        "kinds": schema.kinds,
        "problem_type": schema.problem_type,
        "labels": schema.labels,
        "target": schema.target,
        "notes": records.notes,
        "model_data": featurizer,
        "schema_prefix": prefix,
        "schema": prefix + "schema.json",
        "baseline": prefix + "baseline.json",
        "endpoint_name": endpoint_name,
        "bucket": data_bucket,
        "prefix": out,
        "predictions": f"s3://{data_bucket}/{out}predictions.csv",
        "batches": plan_batches,
        "capture": f"s3://{data_bucket}/{manifest}",
        "capture_exists": bool(captured),
        "capture_files": len(captured),
        "capture_window_hours": hours,
        "report": {"job_name": report_job_name(execution_name),
                   "output": f"s3://{data_bucket}/reports/capture/{execution_name}/"},
    }


def capture_in_window(bucket: str, prefix: str, hours: int, now: dt.datetime, list_keys: Callable[[str, str], list[str]],
                      list_folders: Callable[[str, str], list[str]]) -> list[str]:
    """The capture files of the last ``hours`` hour folders (this one included), relative to ``prefix``.

    SageMaker writes capture under <prefix><variant>/yyyy/mm/dd/hh/, the hour the file was created, so
    only those folders are listed: the cost follows the window, not the endpoint's whole history."""
    hour = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    folders = [f"{hour - dt.timedelta(hours=back):%Y/%m/%d/%H}/" for back in range(hours - 1, -1, -1)]
    found = []
    for variant in list_folders(bucket, prefix):
        for folder in folders:
            found += [key[len(prefix):] for key in list_keys(bucket, f"{variant}{folder}") if key.endswith(".jsonl")]
    return found


def report_job_name(execution_name: str) -> str:
    digest = hashlib.sha256(execution_name.encode()).hexdigest()[:10]
    return f"capture-report-{re.sub(r'[^A-Za-z0-9-]', '-', execution_name)[:36].strip('-')}-{digest}"


# ---------------------------------------------------------------- AWS glue


def _reader(client: Any) -> Callable[[str, str], bytes]:
    def read(bucket: str, key: str) -> bytes:
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                raise InputObjectNotFound(f"s3://{bucket}/{key} does not exist. Upload the records there, or fix "
                                          "input_s3_uri.") from None
            raise
        if head["ContentLength"] > MAX_BYTES:
            raise TooManyRecords(f"s3://{bucket}/{key} is {head['ContentLength']} bytes, more than the "
                                 f"{MAX_BYTES // 2**20} MiB one execution scores through the endpoint; score it with a "
                                 "batch transform job, or split it.")
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    return read


def _json_reader(client: Any) -> Callable[[str], dict]:
    def read(uri: str) -> dict:
        bucket, key = parse_s3_uri(uri)
        try:
            return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            raise NoDeployedModel(f"{uri} is missing: the deployed model's run has no schema. Retrain and deploy with "
                                  "the training pipeline.") from None

    return read


def _deployed_featurizer(sagemaker: Any) -> Callable[[str], str]:
    def find(endpoint_name: str) -> str:
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
        except sagemaker.exceptions.ClientError as exc:
            if "Could not find endpoint" in str(exc):
                raise NoDeployedModel(f"Endpoint {endpoint_name} does not exist: no model is deployed yet. Run the "
                                      "training pipeline first (upload a table under raw/).") from None
            raise
        if endpoint.get("EndpointStatus") not in ("InService", "Updating"):
            raise NoDeployedModel(f"Endpoint {endpoint_name} is {endpoint.get('EndpointStatus')}, not InService. Wait "
                                  "for the deployment to finish (or fix it), then start the inference again.")
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
        return containers[0].get("ModelDataUrl", "")

    return find


def _writer(client: Any) -> Callable[[str, str, str], None]:
    def write(bucket: str, key: str, body: str) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=body.encode(),
                          ContentType="application/json" if key.endswith(".json") else "text/csv")

    return write


def _key_lister(client: Any) -> Callable[[str, str], list[str]]:
    def keys(bucket: str, prefix: str) -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    return keys


def _folder_lister(client: Any) -> Callable[[str, str], list[str]]:
    def folders(bucket: str, prefix: str) -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        return [item["Prefix"] for page in pages for item in page.get("CommonPrefixes", [])]

    return folders


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    s3 = boto3.client("s3")
    return build_plan(
        defaults=event["defaults"], config=event["config"], execution_name=event["execution_name"],
        data_bucket=os.environ["DATA_BUCKET"], endpoint_name=os.environ["ENDPOINT_NAME"],
        inference_prefix=os.environ.get("INFERENCE_PREFIX", "inference/"),
        read_object=_reader(s3), deployed_featurizer=_deployed_featurizer(boto3.client("sagemaker")),
        read_json=_json_reader(s3), write_object=_writer(s3), list_keys=_key_lister(s3),
        list_folders=_folder_lister(s3), now=dt.datetime.now(dt.UTC),
    )
