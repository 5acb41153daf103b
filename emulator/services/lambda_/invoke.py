"""Run one Lambda invocation as a local process: the real handler from its staged asset folder
(bootstrap.py), the template's environment, the Lambda runtime variables, dummy credentials, the
local endpoints of the services the emulator provides, the function's Timeout enforced, and the
START/END/REPORT lines CloudWatch shows written to a log file."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from emulator.aws.clock import utcnow
from emulator.services.lambda_.functions import FunctionSpec
from emulator.storage.layout import Layout
from emulator.storage.processes import ProcessGroups

log = logging.getLogger(__name__)

BOOTSTRAP = Path(__file__).resolve().parent / "bootstrap.py"
# botocore sends every service without its own endpoint here: a closed local port, so a handler
# calling a service the emulator does not provide fails fast instead of reaching AWS.
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"
_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")


@dataclass
class Invocation:
    """One running invocation: its process, folder and deadline."""

    function: FunctionSpec
    request_id: str
    folder: Path
    process: subprocess.Popen
    started: float
    deadline: float
    log_file: Path
    _log: IO[str] | None = field(default=None, repr=False)
    groups: ProcessGroups | None = None  # where its process group is recorded while it runs
    result: dict | None = None  # {"ok": bool, "payload"|"error": ...} once finished

    def poll(self) -> dict | None:
        if self.result is not None:
            return self.result
        code = self.process.poll()
        if code is None:
            if time.monotonic() < self.deadline:
                return None
            self.kill()
            self.result = {"ok": False, "error": {
                "errorMessage": f"RequestId: {self.request_id} Error: Task timed out after "
                                f"{self.function.timeout:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            }}
        else:
            response = self.folder / "response.json"
            if response.is_file():
                self.result = json.loads(response.read_text())
            else:
                self.result = {"ok": False, "error": {
                    "errorMessage": f"RequestId: {self.request_id} Error: Runtime exited with error: "
                                    f"exit status {code}",
                    "errorType": "Runtime.ExitError",
                }}
        self._finish()
        return self.result

    def wait(self) -> dict:
        while (result := self.poll()) is None:
            time.sleep(0.02)
        return result

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)  # the handler and anything it started
            self.process.wait()

    def _finish(self) -> None:
        if self.groups is not None:
            self.groups.ended(self.process.pid)
        duration_ms = (time.monotonic() - self.started) * 1000
        if self._log is not None:
            if self.result and not self.result["ok"]:
                self._log.write(json.dumps(self.result["error"]) + "\n")
            self._log.write(f"END RequestId: {self.request_id}\n")
            self._log.write(
                f"REPORT RequestId: {self.request_id}\tDuration: {duration_ms:.2f} ms\t"
                f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {self.function.memory} MB\n")
            self._log.close()
            self._log = None
        shutil.rmtree(self.folder, ignore_errors=True)


class LambdaRunner:
    """Starts invocations of deployed functions as local processes."""

    def __init__(self, layout: Layout, *, region: str, service_endpoints: dict[str, str] | None = None):
        self.layout = layout
        self.region = region
        # local endpoints of the services a handler may call, by botocore's AWS_ENDPOINT_URL_<SERVICE>
        # suffix ({"S3": "http://127.0.0.1:..."}); every other service fails fast, never reaching AWS
        self.service_endpoints = service_endpoints if service_endpoints is not None else {}
        self.groups = ProcessGroups(layout.process_groups_dir)

    def environment(self, fn: FunctionSpec, log_stream: str) -> dict[str, str]:
        env = {key: os.environ[key] for key in _PASSTHROUGH if key in os.environ}
        region = self.region
        env.update({
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": UNREACHABLE_ENDPOINT,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": fn.code_dir,
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
            "_HANDLER": fn.handler,
            "TZ": ":UTC",
        })
        for service, url in self.service_endpoints.items():
            env[f"AWS_ENDPOINT_URL_{service.upper()}"] = url
        env.update(fn.environment)  # the template's variables, resolved at deploy time
        return env

    def start(self, fn: FunctionSpec, event: Any, log_file: Path) -> Invocation:
        request_id = str(uuid.uuid4())
        folder = self.layout.lambda_invocation_dir(request_id)
        folder.mkdir(parents=True)
        now = utcnow()
        log_stream = f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        started = time.monotonic()
        request = {
            "request_id": request_id, "handler": fn.handler, "code_dir": fn.code_dir,
            "layer_dirs": fn.layer_dirs, "event": json.dumps(event), "function_name": fn.name,
            "function_arn": fn.arn, "memory": fn.memory, "version": "$LATEST",
            "log_group": fn.log_group_name, "log_stream": log_stream,
            "deadline_epoch_ms": time.time() * 1000 + fn.timeout * 1000,
        }
        (folder / "request.json").write_text(json.dumps(request))
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handle = log_file.open("a")
        handle.write(f"START RequestId: {request_id} Version: $LATEST\n")
        handle.flush()
        process = subprocess.Popen(
            [sys.executable, "-I", "-u", "-B", str(BOOTSTRAP), str(folder)],
            cwd=fn.code_dir, env=self.environment(fn, log_stream), stdin=subprocess.DEVNULL,
            stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, which a later emulator process can end
        )
        self.groups.started(process.pid, f"Lambda {fn.name} (request {request_id})")
        log.debug("invoking %s (request %s), log %s", fn.name, request_id, log_file)
        return Invocation(fn, request_id, folder, process, started, started + fn.timeout, log_file, handle,
                          groups=self.groups)
