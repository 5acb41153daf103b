"""The Step Functions API on localhost (the awsJson1_0 protocol), over a StepFunctionsBackend.

    boto3.client("stepfunctions", endpoint_url=URL).start_execution(stateMachineArn=..., input=...)
    aws stepfunctions --endpoint-url URL list-executions --state-machine-arn ...

POST / with ``X-Amz-Target: AWSStepFunctions.<Operation>``; errors are HTTP 400 with
``{"__type": <code>, "message": ...}``, which botocore raises as the modelled exception.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from emulator.services.stepfunctions.backend import StepFunctionsBackend
from emulator.services.stepfunctions.exceptions import SerializationException, StepFunctionsError, UnknownOperation

log = logging.getLogger(__name__)

TARGET_PREFIX = "AWSStepFunctions."


class StepFunctionsServer:
    """The API on a ThreadingHTTPServer thread; ``url`` is what clients take as endpoint_url."""

    def __init__(self, api: StepFunctionsBackend, host: str = "127.0.0.1", port: int = 0):
        handler = type("Handler", (_Handler,), {"api": api})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="stepfunctions-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StepFunctionsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


MAX_BODY_BYTES = 1024 * 1024  # a request bigger than any the API takes (256 KiB inputs, definitions)


class _Handler(BaseHTTPRequestHandler):
    api: StepFunctionsBackend
    protocol_version = "HTTP/1.1"
    # a socket read that waits longer ends the connection: an idle or stalled client does not keep
    # a handler thread forever
    timeout = 60

    def _body(self) -> bytes:
        text = self.headers.get("Content-Length")
        if text is None:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                self.close_connection = True
                raise SerializationException("chunked request bodies are not accepted: send Content-Length")
            return b""
        if not text.strip().isdigit():
            self.close_connection = True  # the rest of the stream cannot be framed
            raise SerializationException(f"Content-Length {text!r} is not a non-negative integer")
        if int(text) > MAX_BODY_BYTES:
            self.close_connection = True
            raise SerializationException(f"the request body of {int(text)} bytes is over {MAX_BODY_BYTES}")
        return self.rfile.read(int(text))

    def do_POST(self) -> None:
        target = self.headers.get("X-Amz-Target", "")
        try:
            body = self._body()
            if not target.startswith(TARGET_PREFIX):
                raise UnknownOperation(f"X-Amz-Target {target!r} is not a Step Functions operation")
            try:
                request = json.loads(body or b"{}")
            except json.JSONDecodeError as exc:
                raise SerializationException(f"the request body is not JSON: {exc}") from None
            except UnicodeDecodeError:
                raise SerializationException("the request body is not UTF-8 JSON") from None
            if not isinstance(request, dict):
                raise SerializationException("the request body must be a JSON object")
            status, answer = 200, self.api.call(target.removeprefix(TARGET_PREFIX), request)
        except StepFunctionsError as err:
            status, answer = 400, {"__type": err.code, "message": err.message}
        except Exception:
            log.exception("Step Functions API %s failed", target)
            # the details go to the log, not to the client
            status, answer = 500, {"__type": "InternalServerError",
                                   "message": "The local Step Functions API failed on this request; see the emulator's log"}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
