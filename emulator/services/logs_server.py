"""The CloudWatch Logs API on localhost (awsJson1_1), over a LogsBackend: the SageMaker jobs' logs.

    aws logs --endpoint-url URL get-log-events --log-group-name /aws/sagemaker/TrainingJobs --log-stream-name JOB/algo-1
    boto3.client("logs", endpoint_url=URL).get_log_events(...)

POST / with ``X-Amz-Target: Logs_20140328.<Operation>``; errors are HTTP 400 with ``__type`` and
``message``, which botocore raises as ClientError with that code.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from emulator.services.logs import LogsBackend, LogsError

log = logging.getLogger("emulator.services.logs_server")

TARGET_PREFIX = "Logs_20140328."
MAX_BODY_BYTES = 1024 * 1024


class LogsServer:
    """The API on a ThreadingHTTPServer thread; ``url`` is what clients take as endpoint_url."""

    def __init__(self, api: LogsBackend, host: str = "127.0.0.1", port: int = 0):
        handler = type("Handler", (_Handler,), {"api": api})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="logs-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LogsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    api: LogsBackend
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle client does not hold a handler thread forever

    def do_POST(self) -> None:
        target = self.headers.get("X-Amz-Target", "")
        length = self.headers.get("Content-Length") or "0"
        try:
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                self.close_connection = True
                raise _Serialization(f"Content-Length {length!r}: send a body of at most {MAX_BODY_BYTES} bytes")
            body = self.rfile.read(int(length))
            if not target.startswith(TARGET_PREFIX):
                raise _Serialization(f"X-Amz-Target {target!r} is not a CloudWatch Logs operation")
            try:
                request = json.loads(body or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise _Serialization(f"the request body is not JSON: {error}") from None
            if not isinstance(request, dict):
                raise _Serialization("the request body must be a JSON object")
            status, answer = 200, self.api.call(target.removeprefix(TARGET_PREFIX), request)
        except LogsError as error:
            status, answer = 400, {"__type": error.code, "message": error.message}
        except TypeError as error:  # a missing required field
            status, answer = 400, {"__type": "InvalidParameterException", "message": str(error)}
        except Exception as error:  # an emulator bug: a 500 with the reason, never a dropped connection
            log.exception("CloudWatch Logs API %s failed", target)
            status, answer = 500, {"__type": "ServiceUnavailableException", "message": f"{type(error).__name__}: {error}"}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Serialization(LogsError):
    code = "SerializationException"
