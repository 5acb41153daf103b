"""The awsJson protocol on localhost: one HTTP server for every local API spoken as JSON RPC.

A client POSTs / with ``X-Amz-Target: <Prefix>.<Operation>`` and a JSON object body; the answer is
JSON with the service's content type, and an error is ``{"__type": <code>, "message": ...}`` (400
for a client error), which botocore raises as the modelled exception. Each service supplies only
its backend's ``call(operation, request)``, raising services.errors.ServiceError subclasses
(``answer`` turns them into ``(status, document)``); the framing, the threads, the deadlines and the masking of internal
faults live here, once.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from emulator.services.errors import ServiceError

log = logging.getLogger(__name__)

Answer = Callable[[str, bytes], "tuple[int, dict]"]

# bigger than any request the served APIs take (Step Functions: 256 KiB inputs, definitions)
MAX_BODY_BYTES = 1024 * 1024


class ProtocolError(ServiceError):
    """A request the protocol refuses before any service sees it."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def error_document(code: str, message: str) -> dict:
    return {"__type": code, "message": message}


def internal_fault(service: str) -> tuple[int, dict]:
    """A 500 for an emulator bug (the caller logs the details): never Python's text to the client."""
    return 500, error_document("InternalFailure", f"The local {service} API failed on this request; see the emulator's log")


def parse_request(body: bytes) -> dict:
    """The request body as a JSON object, or the SerializationException botocore expects."""
    try:
        request = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise ProtocolError("SerializationException", f"the request body is not JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ProtocolError("SerializationException", "the request body is not UTF-8 JSON") from None
    if not isinstance(request, dict):
        raise ProtocolError("SerializationException", "the request body must be a JSON object")
    return request


def operation_of(target: str, prefix: str, service: str) -> str:
    """``Prefix.Operation`` -> ``Operation``; another service's target is an UnknownOperationException."""
    if not target.startswith(prefix):
        raise ProtocolError("UnknownOperationException",
                            f"X-Amz-Target {target!r} is not a {service} operation (expected {prefix}<Operation>)")
    return target.removeprefix(prefix)


def answer(target: str, body: bytes, *, service: str, prefix: str, call: Callable[[str, dict], dict],
           decode: Callable[[str, dict], dict] | None = None) -> tuple[int, dict]:
    """(HTTP status, JSON body) for one request; the whole protocol, without the socket. ``decode``
    may check the operation and turn the wire request into the backend's (SageMaker's timestamps)."""
    def work() -> dict:
        operation = operation_of(target, prefix, service)
        request = parse_request(body)
        return call(operation, decode(operation, request) if decode else request)

    return answered(work, service, target)


def answered(work: Callable[[], dict], service: str, what: str) -> tuple[int, dict]:
    """(200, what ``work`` returns), or its ServiceError as the API's error document, or the masked 500
    (logged with ``what``, the operation) for anything else."""
    try:
        return 200, work()
    except ServiceError as error:
        return error.status, error_document(error.code, error.message)
    except Exception:
        log.exception("%s API %s failed", service, what)
        return internal_fault(service)


def send_document(handler: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
    """One response: the status, its content type and length, a request id, the encoded body."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.send_header("x-amzn-RequestId", str(uuid.uuid4()))
    handler.end_headers()
    handler.wfile.write(payload)


class LocalServer:
    """A handler class on a ThreadingHTTPServer thread; ``url`` is what clients take as endpoint_url."""

    def __init__(self, name: str, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=name, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalServer:
        self._thread.start()
        log.debug("%s listening on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class AwsJsonServer(LocalServer):
    """``answer`` served as the awsJson protocol."""

    def __init__(self, name: str, answer: Answer, content_type: str, host: str = "127.0.0.1", port: int = 0,
                 encode: Callable[[Any], Any] | None = None) -> None:
        handler = type("Handler", (_Handler,), {"answer": staticmethod(answer), "content_type": content_type,
                                                "encode": staticmethod(encode) if encode else None})
        super().__init__(name, handler, host, port)


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body by its Content-Length (no chunked bodies, at most MAX_BODY_BYTES); a body that
    cannot be framed ends the connection, since the rest of the stream cannot be read either."""
    text = handler.headers.get("Content-Length")
    if text is None:
        if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
            handler.close_connection = True
            raise ProtocolError("SerializationException", "chunked request bodies are not accepted: send Content-Length")
        return b""
    if not text.strip().isdigit():
        handler.close_connection = True
        raise ProtocolError("SerializationException", f"Content-Length {text!r} is not a non-negative integer")
    if int(text) > MAX_BODY_BYTES:
        handler.close_connection = True
        raise ProtocolError("SerializationException", f"the request body of {int(text)} bytes is over {MAX_BODY_BYTES}")
    return handler.rfile.read(int(text))


class _Handler(BaseHTTPRequestHandler):
    answer: Answer
    content_type: str
    encode: Callable[[Any], Any] | None
    protocol_version = "HTTP/1.1"
    # a socket read that waits longer ends the connection: an idle or stalled client does not keep
    # a handler thread forever
    timeout = 60

    def do_POST(self) -> None:
        target = self.headers.get("X-Amz-Target", "")
        try:
            status, document = self.answer(target, read_body(self))
        except ProtocolError as error:
            status, document = error.status, error_document(error.code, error.message)
        send_document(self, status, json.dumps(document, default=self.encode).encode(), self.content_type)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
