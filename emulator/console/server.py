"""The console's HTTP server on 127.0.0.1: the page and its static files, JSON views read through the
local APIs, and the guarded actions.

Why the server calls the APIs with boto3 instead of the browser calling them through a proxy: the
page then speaks plain JSON (not S3's XML, awsJson or CBOR, nor SigV4), the API servers need no CORS,
and every change goes through one place that checks the token; what the page shows is still exactly
what boto3 reads from the same URLs a user's scripts use.

    GET  /                         the page (the per-run token embedded in a <meta> tag)
    GET  /static/<file>            its scripts, styles and the vendored layout library
    GET  /api/<view>?...           machines, machine, executions, execution, job, log, endpoints,
                                   registry, reports (JSON); object (an S3 object, sandboxed)
    POST /api/<action>             start, stop, redrive, decide (JSON body; token, Origin, Host checked)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import mimetypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from emulator.console import views
from emulator.console.actions import ACTIONS, BadRequest
from emulator.console.clients import Clients, MissingApi
from emulator.console.guard import TOKEN_HEADER, Guard, Refused

log = logging.getLogger("emulator.console")

HOST = "127.0.0.1"  # never another interface: the console changes things and has no login
STATIC = Path(str(resources.files("emulator.console") / "static"))
MAX_BODY_BYTES = 512 * 1024  # an execution input is at most 256 KiB
# the page loads only its own files; nothing it renders can run script or be framed elsewhere
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# an S3 object (a report's HTML) shown from this origin: its own sandboxed origin, no script
OBJECT_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"


def _q(query: dict[str, list[str]], name: str, required: bool = True) -> str | None:
    value = (query.get(name) or [None])[0]
    if required and not value:
        raise BadRequest(f"the query parameter {name!r} is required")
    return value


VIEWS = {
    "machines": lambda c, q: views.state_machines(c),
    "machine": lambda c, q: views.state_machine(c, _q(q, "arn")),
    "executions": lambda c, q: views.executions(c, _q(q, "arn"), _q(q, "status", required=False)),
    "execution": lambda c, q: views.execution(c, _q(q, "arn")),
    "job": lambda c, q: views.job(c, _q(q, "kind"), _q(q, "name")),
    "log": lambda c, q: views.job_log(c, _q(q, "kind"), _q(q, "name")),
    "endpoints": lambda c, q: views.endpoints(c),
    "registry": lambda c, q: views.registry(c),
    "reports": lambda c, q: views.reports(c),
}


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON")


class ConsoleServer:
    """The console on a ThreadingHTTPServer thread, bound to 127.0.0.1; ``url`` is what to open."""

    def __init__(self, urls: dict[str, str], region: str, port: int = 0):
        clients = Clients(dict(urls), region)
        self.httpd = ThreadingHTTPServer((HOST, port), _Handler)
        self.httpd.daemon_threads = True
        self.guard = Guard(self.httpd.server_address[1])
        self.httpd.console = (clients, self.guard)  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="console", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.httpd.server_address[1]}/"

    def start(self) -> ConsoleServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    server_version = "emulator-console"

    @property
    def clients(self) -> Clients:
        return self.server.console[0]  # type: ignore[attr-defined]

    @property
    def guard(self) -> Guard:
        return self.server.console[1]  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            self.guard.check_read(self.headers)
            if url.path in ("/", "/index.html"):
                return self._page()
            if url.path.startswith("/static/"):
                return self._static(url.path.removeprefix("/static/"))
            if url.path == "/api/object":
                query = parse_qs(url.query)
                body, kind = views.s3_object(self.clients, _q(query, "bucket"), _q(query, "key"))
                return self._send(200, body, kind, {"Content-Security-Policy": OBJECT_POLICY})
            name = url.path.removeprefix("/api/")
            if not url.path.startswith("/api/") or name not in VIEWS:
                return self._json(404, {"error": "NotFound", "message": f"no page or view at {url.path}"})
            self._json(200, VIEWS[name](self.clients, parse_qs(url.query)))
        except Exception as error:  # noqa: BLE001 - every failure becomes an answer the page shows
            self._fail(error)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        try:
            self.guard.check_change(self.headers)
            name = url.path.removeprefix("/api/")
            if not url.path.startswith("/api/") or name not in ACTIONS:
                return self._json(404, {"error": "NotFound", "message": f"no action at {url.path}"})
            length = self.headers.get("Content-Length") or "0"
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                self.close_connection = True
                raise BadRequest(f"send a Content-Length of at most {MAX_BODY_BYTES} bytes")
            try:
                body = json.loads(self.rfile.read(int(length)) or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise BadRequest(f"the request body is not JSON: {error}") from None
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            self._json(200, ACTIONS[name](self.clients, body))
        except Exception as error:  # noqa: BLE001
            self.close_connection = True  # an unread body must not be taken for the next request
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        if isinstance(error, Refused):
            log.warning("console: refused %s %s: %s", self.command, self.path, error)
            return self._json(403, {"error": "Forbidden", "message": str(error)})
        if isinstance(error, (BadRequest, ValueError)):
            return self._json(400, {"error": "BadRequest", "message": str(error)})
        if isinstance(error, ClientError):  # the API's own answer, passed on as it is
            err = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            return self._json(status if 400 <= status < 600 else 400,
                              {"error": err.get("Code", "ClientError"), "message": err.get("Message", str(error))})
        if isinstance(error, (MissingApi, BotoCoreError)):
            return self._json(503, {"error": type(error).__name__, "message": str(error)})
        log.exception("console: %s %s failed", self.command, self.path)
        self._json(500, {"error": "InternalError", "message": f"{type(error).__name__}: {error}"})

    def _page(self) -> None:
        text = (STATIC / "index.html").read_text(encoding="utf-8")
        # the token is URL-safe base64: nothing in it needs escaping inside an attribute
        body = text.replace("{{TOKEN}}", self.guard.token).replace("{{TOKEN_HEADER}}", TOKEN_HEADER).encode()
        self._send(200, body, "text/html; charset=utf-8", {"Content-Security-Policy": PAGE_POLICY,
                                                           "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"})

    def _static(self, relative: str) -> None:
        path = (STATIC / relative).resolve()
        if not path.is_relative_to(STATIC.resolve()) or not path.is_file():
            return self._json(404, {"error": "NotFound", "message": f"no static file {relative!r}"})
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        self._send(200, path.read_bytes(), kind, {"Cache-Control": "no-cache"})

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document, default=_json_default).encode(), "application/json")

    def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
