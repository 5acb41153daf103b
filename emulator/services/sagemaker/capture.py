"""Endpoint data capture, written as SageMaker writes it: JSON Lines files under the endpoint config's
DataCaptureConfig.DestinationS3Uri, at ``<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mmm>-<uuid>.jsonl``.

Each line is one invocation (a multi-record CSV or JSON body is one line, its whole body in
``data``, as a real-time endpoint captures it)::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "M,0.455,...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "8.81", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<the caller's InferenceId, when given>",
                       "inferenceTime": "2026-11-30T07:12:03Z"},
     "eventVersion": "0"}

``encoding`` is CSV or JSON when the content type is one of CaptureContentTypeHeader's CsvContentTypes
or JsonContentTypes (the body then kept as text), BASE64 otherwise. Only the modes in CaptureOptions
are written; InitialSamplingPercentage of the successful invocations are captured (a model error is
not). Lines are buffered in memory and written by a background thread in files of at most
``flush_records`` lines, at the latest ``flush_seconds`` after their first line, so a request pays
for building one dict, never for a file write; ``close`` (the server's clean shutdown, or the
process's exit) writes what is buffered.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from emulator.services.s3.store import LocalS3

log = logging.getLogger("emulator.services.sagemaker.capture")

FLUSH_RECORDS = 1000  # lines per file at most
FLUSH_SECONDS = 1.0  # a line waits at most this long (plus one write) before it is in S3
EVENT_VERSION = "0"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class CaptureConfig:
    """An endpoint config's DataCaptureConfig, as the invoke path applies it."""

    destination: str  # s3://bucket/prefix, no trailing slash
    percentage: float
    capture_input: bool
    capture_output: bool
    csv_types: frozenset[str]
    json_types: frozenset[str]

    @classmethod
    def from_request(cls, config: dict | None) -> CaptureConfig | None:
        """None when there is no DataCaptureConfig, EnableCapture is false or the sampling is 0."""
        if not config or not config.get("EnableCapture", True):
            return None
        percentage = float(config.get("InitialSamplingPercentage", 100))
        modes = {option.get("CaptureMode") for option in config.get("CaptureOptions") or []}
        if percentage <= 0 or not modes:
            return None
        header = config.get("CaptureContentTypeHeader") or {}
        return cls(
            destination=str(config["DestinationS3Uri"]).rstrip("/"),
            percentage=min(percentage, 100.0),
            capture_input=bool(modes & {"Input", "InputAndOutput"}),
            capture_output=bool(modes & {"Output", "InputAndOutput"}),
            csv_types=frozenset(_media_type(t) for t in header.get("CsvContentTypes") or []),
            json_types=frozenset(_media_type(t) for t in header.get("JsonContentTypes") or []),
        )

    def encoded(self, body: bytes, content_type: str | None, mode: str) -> dict:
        """One side of captureData: the body as text (CSV, JSON) or base64, as SageMaker records it."""
        media = _media_type(content_type)
        encoding = "CSV" if media in self.csv_types else "JSON" if media in self.json_types else "BASE64"
        if encoding != "BASE64":
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError:  # declared as text, but is not: keep the bytes
                encoding = "BASE64"
        if encoding == "BASE64":
            data = base64.b64encode(body).decode("ascii")
        return {"observedContentType": content_type or "", "mode": mode, "data": data, "encoding": encoding}


def capture_record(config: CaptureConfig, *, request: bytes, request_type: str | None, response: bytes,
                   response_type: str | None, when: dt.datetime, event_id: str | None = None,
                   inference_id: str | None = None) -> dict:
    """One capture line (a dict), per the module docstring."""
    data = {}
    if config.capture_input:
        data["endpointInput"] = config.encoded(request, request_type, "INPUT")
    if config.capture_output:
        data["endpointOutput"] = config.encoded(response, response_type, "OUTPUT")
    metadata = {"eventId": event_id or str(uuid.uuid4())}
    if inference_id:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"captureData": data, "eventMetadata": metadata, "eventVersion": EVENT_VERSION}


def capture_key(endpoint: str, variant: str, created: dt.datetime, file_id: str | None = None) -> str:
    """The object key under the destination: <endpoint>/<variant>/yyyy/mm/dd/hh/mm-ss-mmm-<uuid>.jsonl."""
    created = created.astimezone(dt.UTC)
    return (f"{endpoint}/{variant}/{created:%Y/%m/%d/%H}/{created:%M-%S}-{created.microsecond // 1000:03d}-"
            f"{file_id or uuid.uuid4()}.jsonl")


@dataclass
class _Buffer:
    created: dt.datetime
    lines: list[dict]


class CaptureWriter:
    """Samples, buffers and writes the capture lines of every endpoint one invoke server answers."""

    def __init__(self, s3: LocalS3, *, flush_records: int = FLUSH_RECORDS, flush_seconds: float = FLUSH_SECONDS,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.time):
        self.s3 = s3
        self.flush_records = max(1, flush_records)
        self.flush_seconds = flush_seconds
        self._rng = rng or random.Random()
        self._clock = clock
        # (destination, endpoint, variant, hour) -> the lines waiting for their file
        self._buffers: dict[tuple[str, str, str, str], _Buffer] = {}
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.captured = 0  # lines accepted (sampled in), for tests and the benchmark
        self.files_written = 0

    def sampled(self, config: CaptureConfig) -> bool:
        return config.percentage >= 100 or self._rng.random() * 100 < config.percentage

    def capture(self, endpoint: str, variant: str, config: CaptureConfig | None, *, request: bytes,
                request_type: str | None, response: bytes, response_type: str | None,
                inference_id: str | None = None) -> bool:
        """Buffer one invocation's line if capture is on and it is sampled in; True if it was."""
        if config is None or not self.sampled(config):
            return False
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        line = capture_record(config, request=request, request_type=request_type, response=response,
                              response_type=response_type, when=now, inference_id=inference_id)
        key = (config.destination, endpoint, variant, f"{now:%Y%m%d%H}")
        with self._lock:
            if self._closed:  # after shutdown: written at once, never dropped
                self.captured += 1
                self._write(key, _Buffer(now, [line]))
                return True
            buffer = self._buffers.get(key)
            if buffer is None:
                buffer = self._buffers[key] = _Buffer(now, [])
            buffer.lines.append(line)
            self.captured += 1
            if self._thread is None:
                self._start()
            if len(buffer.lines) >= self.flush_records:
                self._lock.notify()
        return True

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sagemaker-capture", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # an interpreter that exits cleanly writes what is buffered

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                self._lock.wait(self._due_in())
                self._flush_due(self._clock())

    def _due_in(self) -> float:
        """Seconds until the oldest buffer is due (0 when one is full)."""
        if not self._buffers:
            return self.flush_seconds
        if any(len(b.lines) >= self.flush_records for b in self._buffers.values()):
            return 0.0
        oldest = min(b.created.timestamp() for b in self._buffers.values())
        return max(0.0, oldest + self.flush_seconds - self._clock())

    def _flush_due(self, now: float, everything: bool = False) -> None:
        """Write the buffers that are full or old enough (all with ``everything``); the lock is held
        while the lines are taken, released while they are written."""
        due: list[tuple[tuple[str, str, str, str], _Buffer]] = []
        for key, buffer in list(self._buffers.items()):
            if everything or buffer.created.timestamp() + self.flush_seconds <= now:
                keep = 0
            elif len(buffer.lines) >= self.flush_records:  # full files only; the rest waits for its time
                keep = len(buffer.lines) % self.flush_records
            else:
                continue
            cut = len(buffer.lines) - keep
            for start in range(0, cut, self.flush_records):
                due.append((key, _Buffer(buffer.created, buffer.lines[start:min(start + self.flush_records, cut)])))
            if keep:
                buffer.lines = buffer.lines[cut:]
            else:
                del self._buffers[key]
        if not due:
            return
        self._lock.release()
        try:
            for key, part in due:
                self._write(key, part)
        finally:
            self._lock.acquire()

    def _write(self, key: tuple[str, str, str, str], buffer: _Buffer) -> None:
        destination, endpoint, variant, _ = key
        uri = f"{destination}/{capture_key(endpoint, variant, buffer.created)}"
        body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in buffer.lines).encode()
        try:
            self.s3.put_bytes(uri, body)
            self.files_written += 1
        except Exception:  # capture never fails an inference; say what was lost
            log.exception("data capture: %d line(s) for %s/%s could not be written to %s",
                          len(buffer.lines), endpoint, variant, uri)

    def flush(self) -> None:
        """Write everything buffered now (the caller waits for the files)."""
        with self._lock:
            self._flush_due(self._clock(), everything=True)

    def close(self) -> None:
        """Write what is buffered and stop the writer thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lock.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        with self._lock:
            self._flush_due(self._clock(), everything=True)
        atexit.unregister(self.close)
