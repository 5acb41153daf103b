"""Runs one Lambda invocation in its own process, as the Python runtime would.

Started as ``python -I -u -B lambda_bootstrap.py <invocation folder>``: isolated mode puts neither this
folder, the project nor PYTHONPATH on sys.path, so the handler imports only from its asset folder, its
layers and the interpreter's site-packages, as in Lambda. Reads ``request.json``, imports the handler from the
asset folder, calls it with the event and a context object, and writes ``response.json`` with the
result or the error in the shape the Lambda Python runtime reports ({"errorMessage", "errorType",
"requestId", "stackTrace"}). Standard library only.
"""

import importlib
import json
import logging
import os
import sys
import time
import traceback


class LambdaContext:
    """The attributes and method handlers read from the Lambda context object."""

    def __init__(self, request: dict):
        self.function_name = request["function_name"]
        self.function_version = request.get("version", "$LATEST")
        self.invoked_function_arn = request["function_arn"]
        self.memory_limit_in_mb = str(request["memory"])  # a string in the Python runtime
        self.aws_request_id = request["request_id"]
        self.log_group_name = request["log_group"]
        self.log_stream_name = request["log_stream"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = request["deadline_epoch_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(int(self._deadline_ms - time.time() * 1000), 0)


class _RequestIdFilter(logging.Filter):
    def __init__(self, request_id: str):
        super().__init__()
        self.request_id = request_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _configure_logging(request_id: str) -> None:
    """The runtime's root handler: ``[LEVEL]\\t<time>\\t<request id>\\t<message>``."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"))
    handler.formatter.converter = time.gmtime
    handler.addFilter(_RequestIdFilter(request_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())


def _error(request_id: str, error_type: str, message: str, stack: list[str] | None = None) -> dict:
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []}


def _write(folder: str, response: dict) -> None:
    tmp = os.path.join(folder, ".response.json.tmp")
    with open(tmp, "w") as handle:
        json.dump(response, handle)
    os.replace(tmp, os.path.join(folder, "response.json"))


def _load_handler(spec: str, request_id: str):
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        return None, _error(request_id, "Runtime.MalformedHandlerName",
                            f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        return None, _error(request_id, "Runtime.ImportModuleError",
                            f"Unable to import module '{module_name}': {exc}")
    except Exception as exc:  # noqa: BLE001 - any error in the module's top-level code is the function's error
        stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
        return None, _error(request_id, "Runtime.UserCodeSyntaxError" if isinstance(exc, SyntaxError)
                            else type(exc).__name__, str(exc), stack)
    handler = getattr(module, function_name, None)
    if handler is None:
        return None, _error(request_id, "Runtime.HandlerNotFound",
                            f"Handler '{function_name}' missing on module '{module_name}'")
    return handler, None


def main(folder: str) -> int:
    with open(os.path.join(folder, "request.json")) as handle:
        request = json.load(handle)
    request_id = request["request_id"]
    # The handler's asset folder first, then its layers (/opt/python in Lambda).
    sys.path.insert(0, request["code_dir"])
    for layer in reversed(request.get("layer_dirs", [])):
        sys.path.insert(1, os.path.join(layer, "python"))
    os.chdir(request["code_dir"])
    _configure_logging(request_id)

    handler, error = _load_handler(request["handler"], request_id)
    if error:
        _write(folder, {"ok": False, "error": error})
        return 0
    context = LambdaContext(request)
    try:
        result = handler(json.loads(request["event"]), context)
    except Exception as exc:  # noqa: BLE001 - every handler exception becomes the invocation's error
        # Drop this bootstrap's own frame: the trace starts in the handler, as Lambda reports it.
        stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
        _write(folder, {"ok": False, "error": _error(request_id, type(exc).__name__, str(exc), stack)})
        return 0
    try:
        payload = json.dumps(result)
    except (TypeError, ValueError) as exc:
        _write(folder, {"ok": False, "error": _error(request_id, "Runtime.MarshalError",
                                                     f"Unable to marshal response: {exc}")})
        return 0
    _write(folder, {"ok": True, "payload": payload})
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    sys.exit(main(sys.argv[1]))
