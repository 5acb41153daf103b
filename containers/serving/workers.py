"""Run an InvocationsApp on uvicorn worker processes, one per core, sharing one listening socket.

    serve("containers.serving.factories:model_app", host="127.0.0.1", port=0, workers=2)
    server = ServerProcess.start("containers.serving.factories:model_app", env={...})   # tests, benchmarks

uvicorn (httptools parser, uvloop) was measured against granian (RSGI and ASGI) and SageMaker's own
stack (gunicorn + gevent + Flask) before choosing; benchmarks/bench_endpoint.py has the figures. The
app is named by an import string (``module:factory``), because each worker is a fresh process that
builds its own app: configuration travels in environment variables, and each worker loads its own
models. SIGHUP to the parent replaces the workers one at a time, each new one serving before the old
one stops (uvicorn's supervisor): requests in flight finish, and the retiring worker closes its idle
keep-alive connections, which clients reopen (botocore does); a worker that dies is replaced.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTENING = "Listening on http://"


def default_workers() -> int:
    """One worker per core, as SageMaker's containers run (SAGEMAKER_MODEL_SERVER_WORKERS overrides)."""
    return int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or os.cpu_count() or 1)


def serve(app: str, host: str = "127.0.0.1", port: int = 0, workers: int | None = None) -> None:
    """Serve ``app`` (an import string of a factory returning an ASGI app) until SIGINT/SIGTERM;
    prints ``Listening on http://HOST:PORT`` once the socket accepts connections (port 0: a free one)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    workers = workers or default_workers()
    config = uvicorn.Config(app, factory=True, host=host, port=port, workers=workers, http="httptools",
                            loop="uvloop", lifespan="on", access_log=False, log_level="warning",
                            timeout_keep_alive=60, backlog=2048,
                            # a new worker imports the libraries and loads its models before it serves:
                            # seconds on a busy machine, and a reload gives up on a worker not ready in time
                            timeout_worker_healthcheck=60)
    sock = config.bind_socket()
    print(f"{LISTENING}{host}:{sock.getsockname()[1]}", flush=True)
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()


@dataclass
class ServerProcess:
    """``serve`` in a child process (``python -m containers.serving``), for tests and benchmarks."""

    process: subprocess.Popen
    base_url: str

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @classmethod
    def start(cls, app: str, env: dict[str, str] | None = None, workers: int | None = None,
              timeout: float = 60.0) -> ServerProcess:
        command = [sys.executable, "-m", "containers.serving", app, "--port", "0"]
        if workers:
            command += ["--workers", str(workers)]
        return cls.launch(command, env, timeout)

    @classmethod
    def launch(cls, command: list[str], env: dict[str, str] | None = None, timeout: float = 60.0) -> ServerProcess:
        """Any command that serves and prints ``Listening on http://HOST:PORT`` (a container's serve)."""
        environment = {**os.environ, **(env or {})}
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.2)
            if ready:
                line = process.stdout.readline()
                if line.startswith(LISTENING):
                    server = cls(process, "http://" + line.strip()[len(LISTENING):])
                    server.wait_ready(deadline - time.monotonic())
                    return server
            if process.poll() is not None:
                raise RuntimeError(f"The server exited ({process.returncode}) before listening; see its stderr.")
        process.kill()
        raise TimeoutError(f"The server did not listen within {timeout} s.")

    def wait_ready(self, timeout: float) -> None:
        """Until GET /ping answers 200 (every worker loads its model at start)."""
        import urllib.request

        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/ping", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
            time.sleep(0.05)

    def reload(self) -> None:
        """Replace the workers one by one (they load the models again); see the module docstring."""
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
