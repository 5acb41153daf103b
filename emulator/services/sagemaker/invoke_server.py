"""The SageMaker runtime InvokeEndpoint API on localhost, for every endpoint in a state folder.

``POST /endpoints/<name>/invocations`` answers as ``runtime.sagemaker.<region>.amazonaws.com`` does,
so ``boto3.client("sagemaker-runtime", endpoint_url=<base url>)`` works unchanged; ``GET /ping``
answers 200. The server holds no endpoint state of its own: each request reads the endpoint's
record from disk (cached until the file changes), so an update written by another process takes
effect on the next request, while requests in flight finish on the predictor they started with.

Discovery: a `serve` process advertises itself in ``layout.invoke_server_file``; ``live_serve_url``
finds a live one, and ``ensure_invoke_server`` (what the runtime injects into the SageMaker context
as ``invoke_server_url``) reuses it or starts one server thread per state folder in this process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import socket
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from emulator.aws.arns import ACCOUNT, DEFAULT_REGION
from emulator.services.cloudwatch import MetricStore
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.capture import CaptureConfig, CaptureWriter
from emulator.services.sagemaker.serving import (
    forget_predictors,
    pick_variant,
    referenced_model_dirs,
    routable_variants,
    serving_state,
    variant_predictor,
)
from emulator.storage.layout import Layout
from emulator.storage.records import RecordStore, pid_alive, read_json, write_json_atomic

log = logging.getLogger("emulator.services.sagemaker.invoke_server")

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's documented request limit
_INVOKE = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations/?$")
_HEX = re.compile(rb"^[0-9a-fA-F]{1,16}$")


class InvokeError(Exception):
    """A runtime API error: ``code`` is the x-amzn-ErrorType, ``status`` the HTTP status."""

    def __init__(self, code: str, status: int, message: str, **extra: object):
        super().__init__(message)
        self.code, self.status, self.message, self.extra = code, status, message, extra


@dataclass
class _Cached:
    mtime_ns: int
    record: dict


@dataclass
class EndpointDirectory:
    """Endpoint records read from the SageMaker record store, re-read when they change."""

    layout: Layout
    account: str = ACCOUNT
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.records = RecordStore(self.layout.sagemaker_records, casefold=True)
        # per-variant endpoint metrics (AWS/SageMaker), what the rollback alarms are evaluated on
        self.metrics = MetricStore(self.layout.cloudwatch_dir / "metrics.sqlite")
        # data capture of the variants whose endpoint config asks for it (DataCaptureConfig)
        self.capture = CaptureWriter(LocalS3(self.layout.s3_root))

    def capture_config(self, variant: dict) -> CaptureConfig | None:
        """The variant's DataCaptureConfig, parsed once per record read (kept on the cached dict)."""
        if "_capture" not in variant:
            variant["_capture"] = CaptureConfig.from_request(variant.get("DataCapture"))
        return variant["_capture"]

    def record_invocation(self, endpoint: str, variant: str, status: int, model_seconds: float | None,
                          total_seconds: float) -> None:
        """The metrics SageMaker publishes per request: Invocations, Invocation4XX/5XXErrors (the
        model's answer), ModelLatency and OverheadLatency in microseconds."""
        dims = {"EndpointName": endpoint, "VariantName": variant}
        rows = [("Invocations", 1.0), ("InvocationsPerInstance", 1.0),
                ("Invocation4XXErrors", 1.0 if 400 <= status < 500 else 0.0),
                ("Invocation5XXErrors", 1.0 if status >= 500 else 0.0)]
        if model_seconds is not None:
            rows += [("ModelLatency", model_seconds * 1e6),
                     ("OverheadLatency", max(total_seconds - model_seconds, 0.0) * 1e6)]
        try:
            self.metrics.put_many(("AWS/SageMaker", name, dims, value, None, None) for name, value in rows)
        except Exception:
            log.exception("endpoint %s: metrics not recorded", endpoint)

    def record(self, name: str) -> dict | None:
        path = self.records.path("endpoints", name)
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            self._cache.pop(name, None)
            return None
        cached = self._cache.get(name)
        if cached is None or cached.mtime_ns != mtime:
            previous = cached.record.get("EndpointConfigName") if cached else None
            try:
                cached = _Cached(mtime, read_json(path) or {})
            except json.JSONDecodeError:
                return cached.record if cached else None
            self._cache[name] = cached
            if cached.record.get("EndpointConfigName") != previous:
                log.debug("serving endpoint %s (config %s, %s)", name, cached.record.get("EndpointConfigName"),
                         cached.record.get("EndpointStatus"))
                if previous is not None:
                    self._release_retired_models()
        return cached.record

    def _release_retired_models(self) -> None:
        """After an update completes, drop real-time predictors no endpoint uses any more, so a
        long-lived serve process does not keep every model it ever served."""
        referenced = referenced_model_dirs(self.records.all("endpoints"))
        dropped = forget_predictors(keep=lambda key: key[2] or key[1] in referenced)
        if dropped:
            log.debug("released %d retired model(s)", dropped)

    def route(self, name: str, target_variant: str | None = None) -> dict:
        """The variant (with its model folder) that serves this request, or an InvokeError."""
        record = self.record(name)
        if record is None or record.get("EndpointName") != name and record.get("EndpointName", "").lower() != name.lower():
            raise InvokeError("ValidationError", 400, f"Endpoint {name} of account {self.account} not found.")
        variants = routable_variants(record, time.time(), self._rng)
        if not variants:
            status = record.get("EndpointStatus")
            raise InvokeError("ValidationError", 400,
                              f"Endpoint {name} of account {self.account} is not in service (status {status}); "
                              f"wait for DescribeEndpoint to report InService.")
        if target_variant:
            everything = variants + (serving_state(record).get("Variants") or [])
            chosen = pick_variant(everything, target_variant)
            if chosen is None:
                raise InvokeError("ValidationError", 400,
                                  f"Target variant {target_variant} not found for endpoint {name}.")
            return chosen
        return pick_variant(variants, None, self._rng)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses its pooled connection
    server: RuntimeHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/ping":
            self._send(200, b"", "text/plain")
        else:
            self._error(InvokeError("UnknownOperationException", 404, f"No operation at GET {self.path}"))

    def handle_one_request(self) -> None:
        """One request of a keep-alive connection, under the server's deadlines: the idle timeout
        until its first byte arrives, then the header timeout until its headers are read."""
        server, connection = self.server, self.connection
        server.arm(connection, server.idle_timeout)
        try:
            waiting = self.rfile.peek(1)
        except (OSError, ValueError):
            waiting = b""
        if not waiting:  # the client left, or the watchdog ended an idle connection
            self.close_connection = True
            return
        server.arm(connection, server.header_timeout)
        super().handle_one_request()

    def do_POST(self) -> None:
        try:
            self.server.arm(self.connection, self.server.body_timeout)
            body = self._read_body()
            self.server.disarm(self.connection)  # the model may take its time; the client waits
            match = _INVOKE.match(self.path.split("?", 1)[0])
            if not match:
                raise InvokeError("UnknownOperationException", 404, f"No operation at POST {self.path}")
            self._invoke(unquote(match.group("name")), body)
        except InvokeError as exc:
            self._error(exc)

    def _read_body(self) -> bytes:
        """The request body, framed by Content-Length or chunks; a framing that cannot be trusted is a
        400 and ends the connection (the rest of the stream cannot be parsed)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = self._chunk_size(self.rfile.readline(1024))
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    raise self._framing_error(f"Request payload exceeds the {MAX_PAYLOAD_BYTES} byte limit.")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)  # the CRLF after each chunk
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        if not text.strip().isdigit():
            raise self._framing_error(f"Content-Length {text!r} is not a non-negative integer.")
        length = int(text)
        if length > MAX_PAYLOAD_BYTES:
            raise self._framing_error(f"Request payload of {length} bytes exceeds the {MAX_PAYLOAD_BYTES} byte limit.")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise self._framing_error(f"The body ended after {len(body)} of its Content-Length {length} bytes.")
        return body

    def _chunk_size(self, line: bytes) -> int:
        text = line.split(b";", 1)[0].strip()
        if not _HEX.match(text):
            raise self._framing_error(f"The chunk size {text[:40]!r} is not a hexadecimal number.")
        return int(text, 16)

    def _framing_error(self, message: str) -> InvokeError:
        self.close_connection = True
        return InvokeError("ValidationError", 400, message)

    def _invoke(self, name: str, body: bytes) -> None:
        if len(body) > MAX_PAYLOAD_BYTES:
            raise InvokeError("ValidationError", 400,
                              f"Request payload of {len(body)} bytes exceeds the {MAX_PAYLOAD_BYTES} byte limit.")
        headers = self.headers
        variant = self.server.directory.route(name, headers.get("X-Amzn-SageMaker-Target-Variant"))
        content_type = headers.get("Content-Type") or "application/octet-stream"
        accept = headers.get("Accept")
        began = time.perf_counter()
        directory = self.server.directory
        try:
            predictor = variant_predictor(variant)
            model_began = time.perf_counter()
            response = predictor.invoke(body, content_type, accept)
        except Exception as exc:
            log.exception("endpoint %s variant %s failed", name, variant["VariantName"])
            directory.record_invocation(name, variant["VariantName"], 500, None, time.perf_counter() - began)
            raise self._model_error(name, 500, f"{type(exc).__name__}: {exc}") from exc
        ended = time.perf_counter()
        directory.record_invocation(name, variant["VariantName"], response.status, ended - model_began, ended - began)
        if response.status >= 400:
            message = response.body.decode("utf-8", "replace")
            # a serial pipeline's answer names the container that refused, as SageMaker's message does
            raise self._model_error(name, response.status, message, getattr(response, "container", None) or "primary")
        extra = {"x-Amzn-Invoked-Production-Variant": variant["VariantName"]}
        custom = headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if custom is not None:
            extra["X-Amzn-SageMaker-Custom-Attributes"] = custom
        answer_type = response.content_type or accept or "text/csv"
        directory.capture.capture(name, variant["VariantName"], directory.capture_config(variant), request=body,
                                  request_type=content_type, response=response.body, response_type=answer_type,
                                  inference_id=headers.get("X-Amzn-SageMaker-Inference-Id"))
        self._send(200, response.body, answer_type, extra)

    def _model_error(self, name: str, status: int, message: str, container: str = "primary") -> InvokeError:
        kind = "client" if status < 500 else "server"
        log_group = f"/aws/sagemaker/Endpoints/{name}"
        return InvokeError(
            "ModelError", 424,
            f'Received {kind} error ({status}) from {container} with message "{message}". '
            f"See the emulator log (logger emulator.services.sagemaker.invoke_server; log group {log_group}) "
            f"in account {self.server.directory.account} for more information.",
            OriginalStatusCode=status, OriginalMessage=message,
            LogStreamArn=f"arn:aws:logs:{DEFAULT_REGION}:{self.server.directory.account}:log-group:{log_group}",
        )

    def _error(self, exc: InvokeError) -> None:
        payload = json.dumps({"Message": exc.message, **exc.extra}).encode()
        self._send(exc.status, payload, "application/json", {"x-amzn-ErrorType": exc.code})

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


class RuntimeHTTPServer(ThreadingHTTPServer):
    # Handler threads are joined on close: a keep-alive connection keeps its thread reading, so
    # close_connections() ends them first (no request thread outlives the server).
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128
    # Seconds a connection may wait for each phase before it is ended (a stalled or idle client
    # must not hold a thread and a socket forever): its headers once its first byte came, its body
    # once its headers were read, its next request once an answer was sent (boto3 reconnects).
    header_timeout = 10.0
    body_timeout = 30.0
    idle_timeout = 60.0

    def __init__(self, directory: EndpointDirectory, host: str = "127.0.0.1", port: int = 0):
        self.directory = directory
        self._connections: set[socket.socket] = set()
        self._deadlines: dict[socket.socket, float] = {}
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def arm(self, connection: socket.socket, seconds: float) -> None:
        """End ``connection`` if it is still in its current phase ``seconds`` from now."""
        with self._connections_lock:
            if connection in self._connections:
                self._deadlines[connection] = time.monotonic() + seconds

    def disarm(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._deadlines.pop(connection, None)

    def service_actions(self) -> None:
        """The watchdog, run by serve_forever between polls: end the connections past their deadline."""
        now = time.monotonic()
        with self._connections_lock:
            expired = [c for c, deadline in self._deadlines.items() if deadline < now]
            for connection in expired:
                del self._deadlines[connection]
        for connection in expired:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def process_request(self, request, client_address) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._connections_lock:
            self._connections.discard(request)
            self._deadlines.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open client connection: its handler's next read returns at once."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class RuntimeServer:
    """A RuntimeHTTPServer on a background thread: ``start``, then ``stop`` (which joins it)."""

    def __init__(self, layout: Layout, host: str = "127.0.0.1", port: int = 0, account: str = ACCOUNT):
        self.layout = layout
        self.httpd = RuntimeHTTPServer(EndpointDirectory(layout, account), host, port)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return self.httpd.base_url

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def endpoint_url(self, name: str) -> str:
        return f"{self.base_url}/endpoints/{name}/invocations"

    def start(self) -> RuntimeServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="sagemaker-runtime", daemon=True)
        self._thread.start()
        log.debug("SageMaker runtime API listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop accepting, end open connections, then join the request threads and the server's."""
        self.httpd.shutdown()
        self.httpd.close_connections()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self.httpd.directory.capture.close()  # what was captured is written, never lost


def warm(layout: Layout, server: RuntimeServer) -> list[str]:
    """Load every InService endpoint's predictors now, so the first request is not the slow one."""
    names = []
    for record in RecordStore(layout.sagemaker_records, casefold=True).all("endpoints"):
        if record.get("EndpointStatus") not in ("InService", "Updating"):
            continue
        for variant in serving_state(record).get("Variants") or []:
            try:
                variant_predictor(variant)
            except Exception as exc:  # noqa: BLE001 - report and keep serving the others
                log.warning("endpoint %s variant %s cannot load: %s", record["EndpointName"], variant["VariantName"], exc)
        names.append(record["EndpointName"])
        log.info("endpoint %s: %s", record["EndpointName"], server.endpoint_url(record["EndpointName"]))
    return names


# -- discovery: the serve process's advertisement and the in-process servers -----------------


def _ping(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def advertise(layout: Layout, server: RuntimeServer) -> None:
    """Name this process's server in the layout, for `run` processes to reuse."""
    write_json_atomic(layout.invoke_server_file, {"pid": os.getpid(), "port": server.port, "url": server.base_url})


def withdraw(layout: Layout) -> None:
    """Remove this process's advertisement (another process's is left alone)."""
    with contextlib.suppress(json.JSONDecodeError):
        if (read_json(layout.invoke_server_file) or {}).get("pid") == os.getpid():
            layout.invoke_server_file.unlink(missing_ok=True)


def live_serve_url(layout: Layout) -> str | None:
    """The URL of a live `serve` process for this state folder, if there is one."""
    try:
        info = read_json(layout.invoke_server_file)
    except json.JSONDecodeError:
        return None
    if not info or not pid_alive(info.get("pid")) or not _ping(info["url"]):
        return None
    return info["url"]


_in_process: dict[str, RuntimeServer] = {}
_in_process_lock = threading.Lock()


def ensure_invoke_server(layout: Layout, account: str = ACCOUNT) -> str:
    """The base URL that serves this layout's endpoints: a live serve process's, else an
    in-process server thread's (started once per state folder)."""
    url = live_serve_url(layout)
    if url:
        return url
    key = str(layout.root)
    with _in_process_lock:
        server = _in_process.get(key)
        if server is None:
            server = RuntimeServer(layout, account=account).start()
            _in_process[key] = server
    return server.base_url


def stop_in_process_servers() -> None:
    """Stop the servers ensure_invoke_server started in this process (tests, shutdown)."""
    with _in_process_lock:
        servers = list(_in_process.values())
        _in_process.clear()
    for server in servers:
        server.stop()
