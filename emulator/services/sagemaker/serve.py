"""`python -m emulator serve`: keep the local endpoints reachable after `run` has exited.

The serve process hosts every endpoint recorded under ``<state_dir>/sagemaker/endpoints`` (it reads
them per request, so endpoints created or updated later are served too) and advertises itself in
``<state_dir>/sagemaker/runtime_server.json`` ({"pid", "port", "url"}). ``ensure_runtime_server``
is what `run` (via create_endpoint) calls: it reuses a live serve process, else starts one server
thread in this process for the state folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import threading
import urllib.request
from pathlib import Path
from typing import Any

from emulator.services.sagemaker.hosting import DEFAULT_ACCOUNT, load_predictor
from emulator.services.sagemaker.invoke_server import RuntimeServer
from emulator.services.sagemaker.runner import pid_alive

log = logging.getLogger("emulator.services.sagemaker.serve")

INFO_FILE = "runtime_server.json"

_in_process: dict[str, RuntimeServer] = {}
_in_process_lock = threading.Lock()


def _default_state_dir() -> Path:
    try:
        from emulator import runtime as runtime_module

        default = getattr(runtime_module, "DEFAULT_STATE_DIR", None)
        if default:
            return Path(default)
    except ImportError:
        pass
    return Path(".emulator")



def _ping(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def live_serve_url(state_dir: Path) -> str | None:
    """The URL of a live `serve` process for this state folder, if there is one."""
    info_path = Path(state_dir) / "sagemaker" / INFO_FILE
    try:
        info = json.loads(info_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not pid_alive(int(info.get("pid", 0))) or not _ping(info["url"]):
        return None
    return info["url"]


def ensure_runtime_server(runtime: Any) -> str:
    """The base URL that serves this runtime's endpoints: a live serve process's, else an
    in-process server thread's (started once per state folder)."""
    state_dir = Path(runtime.state_dir)
    url = live_serve_url(state_dir)
    if url:
        return url
    key = str(state_dir.resolve())
    with _in_process_lock:
        server = _in_process.get(key)
        if server is None:
            server = RuntimeServer(state_dir, account=getattr(runtime, "account", None) or DEFAULT_ACCOUNT).start()
            _in_process[key] = server
    return server.base_url


def stop_in_process_servers() -> None:
    """Stop the servers ensure_runtime_server started in this process (tests, shutdown)."""
    with _in_process_lock:
        servers = list(_in_process.values())
        _in_process.clear()
    for server in servers:
        server.stop()


def _warm(state_dir: Path, server: RuntimeServer) -> list[str]:
    """Load every InService endpoint's predictors now, so the first request is not the slow one."""
    names = []
    folder = Path(state_dir) / "sagemaker" / "endpoints"
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            record = json.loads(file.read_text())
            if record.get("EndpointStatus") not in ("InService", "Updating"):
                continue
            for variant in (record.get("_hosting") or {}).get("Variants") or []:
                try:
                    load_predictor(variant["Kind"], variant["ModelDir"])
                except Exception as exc:  # noqa: BLE001 - report and keep serving the others
                    log.warning("endpoint %s variant %s cannot load: %s", record["EndpointName"], variant["VariantName"], exc)
            names.append(record["EndpointName"])
            log.info("endpoint %s: %s", record["EndpointName"], server.endpoint_url(record["EndpointName"]))
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator serve",
                                     description="Serve the local SageMaker endpoints (InvokeEndpoint) on localhost.")
    parser.add_argument("--state-dir", type=Path, default=None, help="the emulator's state folder (default: .emulator)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--account", default=DEFAULT_ACCOUNT)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state_dir = (args.state_dir or _default_state_dir()).resolve()
    if not state_dir.is_dir():
        log.error("no emulator state at %s: run `python -m emulator run` first, or pass the state folder it used "
                  "with `serve --state-dir DIR`", state_dir)
        return 2
    existing = live_serve_url(state_dir)
    if existing:
        log.error("a serve process already serves %s at %s; stop it first or use another --state-dir", state_dir, existing)
        return 1
    # Serve first, then advertise, then warm: a `run` that finds the file can use the server at once.
    server = RuntimeServer(state_dir, args.host, args.port, args.account).start()
    info_path = state_dir / "sagemaker" / INFO_FILE
    info_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = info_path.with_name(f".{INFO_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps({"pid": os.getpid(), "port": server.port, "url": server.base_url}))
    os.replace(tmp, info_path)
    log.info("SageMaker runtime API on %s (state %s); Ctrl-C to stop", server.base_url, state_dir)
    if not _warm(state_dir, server):
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
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            if json.loads(info_path.read_text()).get("pid") == os.getpid():
                info_path.unlink()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
