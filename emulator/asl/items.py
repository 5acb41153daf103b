"""A Distributed Map's items: ItemReader over S3 (through the integration port), ReaderConfig, ItemBatcher.

AWS "ItemReader (Map)": ``s3:getObject`` reads one object as a JSON array, JSON Lines, a CSV file
(header from the first row or given in CSVHeaders; every value a string) or an S3 inventory
manifest (``manifest.json`` naming gzipped CSV files whose columns are its ``fileSchema``);
``s3:listObjectsV2`` lists a bucket prefix, each object an item ``{Etag, Key, LastModified (epoch
seconds), Size, StorageClass}``. ``MaxItems`` keeps the first items. AWS "ItemBatcher (Map)": a
child execution gets ``{"Items": [...], "BatchInput": ...}`` holding at most MaxItemsPerBatch items
and at most MaxInputBytesPerBatch bytes. S3 is reached only through the integrations registered
for the ItemReader's Resource key (``s3:getObject``, ``s3:listObjectsV2``): the interpreter imports
no service.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from emulator.asl import model
from emulator.asl.dataflow import read_value, render_payload
from emulator.asl.errors import ITEM_READER_FAILED, QUERY_EVALUATION_ERROR, RUNTIME, StatesError
from emulator.asl.execution import Cancelled, Execution, Frame
from emulator.asl.history import to_json
from emulator.asl.jsonpath import JsonPath
from emulator.asl.paths import Env
from emulator.asl.ports import TaskOutcome, TaskRequest

CSV_DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
LIST_PAGE = 1000  # keys per listObjectsV2 call, S3's own maximum


def call_s3(ex: Execution, resource: str, parameters: dict, state: model.State, frame: Frame) -> Any:
    """One request-response call of the S3 integration registered for ``resource``'s key; its raw result."""
    if ex.integrations is None:
        raise StatesError(RUNTIME, f"Map state {state.name!r} reads or writes S3 through {resource!r}, but no integrations were given")
    key, integration = ex.integrations.lookup(resource)
    request = TaskRequest(resource=resource, key=key, parameters=parameters, state_name=state.name,
                          execution_arn=ex.execution_arn, execution_name=ex.execution_name)
    handle = integration.start(request)
    while True:
        outcome = integration.poll(handle)
        if isinstance(outcome, TaskOutcome):
            return outcome.output
        if frame.cancelled():
            raise Cancelled()
        time.sleep(integration.poll_interval(handle))


def read_items(ex: Execution, state: model.Map, reader: model.ItemReader, env: Env, frame: Frame) -> list:
    """The items an ItemReader yields, MaxItems applied; a failure is States.ItemReaderFailed."""
    where = "Arguments" if state.jsonata else "Parameters"
    parameters = render_payload(reader.parameters, env, f"ItemReader {where}") if reader.parameters is not None else {}
    if not isinstance(parameters, dict) or not isinstance(parameters.get("Bucket"), str):
        raise StatesError(ITEM_READER_FAILED, f"the ItemReader {where} of Map state {state.name!r} must name a Bucket, "
                          f"got {to_json(parameters)[:200]}")
    max_items = reader.max_items
    if reader.max_items_path is not None:
        max_items = read_value(reader.max_items_path, env, "MaxItems" if state.jsonata else "MaxItemsPath")
        if not isinstance(max_items, int) or isinstance(max_items, bool) or not 0 <= max_items <= 100_000_000:
            error = RUNTIME if isinstance(reader.max_items_path, JsonPath) else QUERY_EVALUATION_ERROR
            raise StatesError(error, f"MaxItems of Map state {state.name!r} must be an integer from 0 to 100000000, got {to_json(max_items)}")
    limit = max_items or None  # 0 means no limit
    try:
        if reader.action == "listObjectsV2":
            items = _listed(ex, reader, parameters, state, frame, limit)
        else:
            if not isinstance(parameters.get("Key"), str):
                raise StatesError(ITEM_READER_FAILED, f"the ItemReader {where} of Map state {state.name!r} must name a Key")
            body = _get(ex, reader.resource, parameters, state, frame)
            items = _parsed(ex, reader, parameters, body, state, frame, limit)
    except StatesError as err:
        if err.name in (ITEM_READER_FAILED, RUNTIME, QUERY_EVALUATION_ERROR):
            raise
        raise StatesError(ITEM_READER_FAILED, f"Map state {state.name!r} could not read its items: {err.name}: {err.cause}") from None
    return items


def _get(ex: Execution, resource: str, parameters: dict, state: model.Map, frame: Frame) -> bytes:
    answer = call_s3(ex, resource, parameters, state, frame)
    body = answer.get("Body") if isinstance(answer, dict) else None
    if isinstance(body, str):
        return body.encode()
    if not isinstance(body, (bytes, bytearray)):
        raise StatesError(ITEM_READER_FAILED, f"s3:getObject returned no Body for s3://{parameters['Bucket']}/{parameters.get('Key')}")
    return bytes(body)


def _take(rows: Iterator[Any], limit: int | None) -> list:
    out = []
    for row in rows:
        if limit is not None and len(out) >= limit:
            break
        out.append(row)
    return out


def _parsed(ex: Execution, reader: model.ItemReader, parameters: dict, body: bytes, state: model.Map, frame: Frame,
            limit: int | None) -> list:
    uri = f"s3://{parameters['Bucket']}/{parameters['Key']}"
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StatesError(ITEM_READER_FAILED, f"{uri} is not UTF-8 text ({exc})") from None
    if reader.input_type == "JSON":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StatesError(ITEM_READER_FAILED, f"{uri} is not valid JSON ({exc})") from None
        if not isinstance(value, list):
            raise StatesError(ITEM_READER_FAILED, f"{uri} must hold a JSON array of items, got a JSON {type(value).__name__}")
        return value[:limit] if limit is not None else value
    if reader.input_type == "JSONL":
        return _take(_json_lines(text, uri), limit)
    if reader.input_type == "CSV":
        headers = list(reader.csv_headers) if reader.csv_header_location == "GIVEN" else None
        return _take(_csv_rows(text, CSV_DELIMITERS[reader.csv_delimiter], headers, uri), limit)
    return _take(_inventory(ex, reader, text, uri, state, frame), limit)  # MANIFEST


def _json_lines(text: str, uri: str) -> Iterator[Any]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise StatesError(ITEM_READER_FAILED, f"{uri} line {number} is not a JSON value ({exc})") from None


def _csv_rows(text: str, delimiter: str, headers: list[str] | None, uri: str) -> Iterator[dict]:
    """Rows as {column: string}; a row with a different number of fields than the header fails."""
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    if headers is None:
        headers = next((row for row in rows if row), None)
        if headers is None:
            return
    width = len(headers)
    for row in rows:
        if not row:
            continue
        if len(row) != width:
            raise StatesError(ITEM_READER_FAILED, f"{uri} line {rows.line_num} has {len(row)} fields but the header has "
                              f"{width} ({', '.join(headers)})")
        yield dict(zip(headers, row, strict=True))


def _inventory(ex: Execution, reader: model.ItemReader, text: str, uri: str, state: model.Map, frame: Frame) -> Iterator[dict]:
    """An S3 inventory manifest.json: each listed gzipped CSV file, columns named by fileSchema."""
    try:
        manifest = json.loads(text)
        schema = [name.strip() for name in manifest["fileSchema"].split(",")]
        files = manifest["files"]
        bucket = manifest.get("destinationBucket", "").removeprefix("arn:aws:s3:::")
    except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as exc:
        raise StatesError(ITEM_READER_FAILED, f"{uri} is not an S3 inventory manifest.json (needs fileSchema, files and "
                          f"destinationBucket): {exc}") from None
    if manifest.get("fileFormat", "CSV") != "CSV":
        raise StatesError(ITEM_READER_FAILED, f"{uri}: the emulator reads CSV inventories only, not {manifest['fileFormat']}")
    for entry in files:
        data = _get(ex, reader.resource, {"Bucket": bucket, "Key": entry["key"]}, state, frame)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        yield from _csv_rows(data.decode("utf-8"), ",", schema, f"s3://{bucket}/{entry['key']}")


def _listed(ex: Execution, reader: model.ItemReader, parameters: dict, state: model.Map, frame: Frame,
            limit: int | None) -> list:
    items: list = []
    request = {key: parameters[key] for key in ("Bucket", "Prefix") if key in parameters}
    while limit is None or len(items) < limit:
        page = call_s3(ex, reader.resource, {**request, "MaxKeys": LIST_PAGE}, state, frame)
        for entry in page.get("Contents", []):
            items.append({"Etag": entry.get("ETag"), "Key": entry["Key"], "LastModified": _epoch(entry.get("LastModified")),
                          "Size": entry.get("Size"), "StorageClass": entry.get("StorageClass", "STANDARD")})
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            break
        request["ContinuationToken"] = token
    return items[:limit] if limit is not None else items


def _epoch(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value).timestamp())
        except ValueError:
            return value
    return value


# -- ItemBatcher -------------------------------------------------------------------------------------


def batch_settings(state: model.Map, batcher: model.ItemBatcher, env: Env) -> tuple[int | None, int | None, Any]:
    """(MaxItemsPerBatch, MaxInputBytesPerBatch, BatchInput) evaluated for this run."""
    count = _batch_number(state, batcher.max_items_per_batch, batcher.max_items_per_batch_path, env, "MaxItemsPerBatch", None)
    size = _batch_number(state, batcher.max_input_bytes_per_batch, batcher.max_input_bytes_per_batch_path, env,
                         "MaxInputBytesPerBatch", 262_144)
    batch_input = render_payload(batcher.batch_input, env, "BatchInput") if batcher.batch_input is not None else None
    if batch_input is not None and not isinstance(batch_input, dict):
        raise StatesError(QUERY_EVALUATION_ERROR if state.jsonata else RUNTIME,
                          f"BatchInput of Map state {state.name!r} must be a JSON object, got {to_json(batch_input)[:200]}")
    return count, size, batch_input


def _batch_number(state: model.Map, static: int | None, path: Any, env: Env, what: str, high: int | None) -> int | None:
    if path is None:
        return static
    value = read_value(path, env, what if state.jsonata else what + "Path")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (high is not None and value > high):
        error = RUNTIME if isinstance(path, JsonPath) else QUERY_EVALUATION_ERROR
        raise StatesError(error, f"{what} of Map state {state.name!r} must be a positive integer"
                          f"{f' up to {high}' if high else ''}, got {to_json(value)}")
    return value


def batches(items: list, max_items: int | None, max_bytes: int | None, batch_input: Any) -> list[tuple[int, int, dict]]:
    """(first item index, item count, child input) per batch, filled in item order."""
    out: list[tuple[int, int, dict]] = []
    overhead = len(to_json({"Items": [], **({"BatchInput": batch_input} if batch_input is not None else {})}).encode())
    start, current, size = 0, [], overhead
    for index, item in enumerate(items):
        item_size = len(to_json(item).encode()) + (1 if current else 0)
        full = (max_items is not None and len(current) >= max_items) or (max_bytes is not None and current and size + item_size > max_bytes)
        if full:
            out.append((start, len(current), _batch(current, batch_input)))
            start, current, size = index, [], overhead
            item_size -= 1  # the first item of a batch has no separator before it
        current.append(item)
        size += item_size
    if current:
        out.append((start, len(current), _batch(current, batch_input)))
    return out


def _batch(items: list, batch_input: Any) -> dict:
    return {"Items": items, "BatchInput": batch_input} if batch_input is not None else {"Items": items}
