"""`serve` of the built-in XGBoost algorithm: GET /ping and POST /invocations over HTTP.

    python -m containers.xgboost.serve [--ml-root DIR]     (or: python containers/xgboost/serve.py)

The model is read from <ml root>/model (env SM_ML_ROOT, default /opt/ml). The server binds
SAGEMAKER_BIND_TO_HOST (default 127.0.0.1, so a laptop run is not exposed; the AWS image binds
0.0.0.0:8080) and SAGEMAKER_BIND_TO_PORT (default 8080; 0 picks a free port). It prints
`Listening on http://HOST:PORT` once it accepts requests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

if __package__ in (None, ""):  # run as a path: make `containers` importable from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from containers.xgboost.serving import Predictor, Response, load_predictor

log = logging.getLogger(__name__)

MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(6 * 1024 * 1024)))


def make_handler(predictor: Predictor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/ping":
                self._send(Response(200, b"", "text/plain"))
            elif self.path == "/execution-parameters":
                body = json.dumps({"MaxConcurrentTransforms": os.cpu_count() or 1,
                                   "BatchStrategy": "MULTI_RECORD",
                                   "MaxPayloadInMB": MAX_CONTENT_LENGTH // (1024 * 1024)})
                self._send(Response(200, body.encode(), "application/json"))
            else:
                self._send(Response(404, b"Not found", "text/plain"))

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self._send(Response(404, b"Not found", "text/plain"))
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_CONTENT_LENGTH:
                self.rfile.read(length)
                self._send(Response(413, b"Payload too large", "text/plain"))
                return
            body = self.rfile.read(length)
            self._send(predictor.invoke(body, self.headers.get("Content-Type"), self.headers.get("Accept")))

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if response.body:
                self.wfile.write(response.body)

        def log_message(self, format: str, *args) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return Handler


def make_server(predictor: Predictor, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(predictor))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml-root", default=os.environ.get("SM_ML_ROOT", "/opt/ml"))
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="[%(asctime)s:%(levelname)s] %(message)s")
    predictor = load_predictor(Path(args.ml_root) / "model")
    host = os.environ.get("SAGEMAKER_BIND_TO_HOST", "127.0.0.1")
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = make_server(predictor, host, port)
    print(f"Listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
