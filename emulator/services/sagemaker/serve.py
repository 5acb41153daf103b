"""`python -m emulator serve`: keep the local endpoints reachable after `run` has exited.

The serve process hosts every endpoint in the state folder's SageMaker records (it reads them per
request, so endpoints created or updated later are served too) and advertises itself in
``layout.invoke_server_file`` ({"pid", "port", "url"}). The server and its discovery live in
invoke_server.py; this module is the command (it moves to emulator/cli/) and, until the runtime
injects ``invoke_server.ensure_invoke_server``, the ``ensure_runtime_server(runtime)`` entry point.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Protocol

from emulator.aws.arns import ACCOUNT
from emulator.services.sagemaker import invoke_server
from emulator.services.sagemaker.invoke_server import RuntimeServer, stop_in_process_servers
from emulator.storage.layout import Layout

log = logging.getLogger("emulator.services.sagemaker.serve")

__all__ = ["ensure_runtime_server", "live_serve_url", "main", "stop_in_process_servers"]


class _StateFolder(Protocol):
    state_dir: Path
    account: str


def ensure_runtime_server(runtime: _StateFolder) -> str:
    """The base URL serving ``runtime``'s endpoints (see invoke_server.ensure_invoke_server)."""
    return invoke_server.ensure_invoke_server(Layout.at(runtime.state_dir), runtime.account)


def live_serve_url(state_dir: Path) -> str | None:
    """The URL of a live `serve` process for this state folder, if there is one."""
    return invoke_server.live_serve_url(Layout.at(state_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator serve",
                                     description="Serve the local SageMaker endpoints (InvokeEndpoint) on localhost.")
    parser.add_argument("--state-dir", type=Path, default=Path(".emulator"), help="the emulator's state folder (default: .emulator)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--account", default=ACCOUNT)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    layout = Layout.at(args.state_dir)
    if not layout.root.is_dir():
        log.error("no emulator state at %s: run `python -m emulator run` first, or pass the state folder it used "
                  "with `serve --state-dir DIR`", layout.root)
        return 2
    existing = invoke_server.live_serve_url(layout)
    if existing:
        log.error("a serve process already serves %s at %s; stop it first or use another --state-dir", layout.root, existing)
        return 1
    # Serve first, then advertise, then warm: a `run` that finds the file can use the server at once.
    server = RuntimeServer(layout, args.host, args.port, args.account).start()
    invoke_server.advertise(layout, server)
    log.info("SageMaker runtime API on %s (state %s); Ctrl-C to stop", server.base_url, layout.root)
    if not invoke_server.warm(layout, server):
        log.info("no endpoint is InService yet; endpoints created later are served as they appear")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        invoke_server.withdraw(layout)
        log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
