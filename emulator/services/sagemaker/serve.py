"""Where a state folder's endpoints are served: a live `serve` process, or a server started here.

The serve process hosts every endpoint recorded under ``<state_dir>/sagemaker/endpoints`` (it reads
them per request, so endpoints created or updated later are served too) and advertises itself in
``<state_dir>/sagemaker/runtime_server.json`` ({"pid", "port", "url"}). ``ensure_runtime_server``
is what `run` (via create_endpoint) calls: it reuses a live serve process, else starts one server
thread in this process for the state folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import urllib.request
from pathlib import Path
from typing import Any

from emulator.services.sagemaker.hosting import DEFAULT_ACCOUNT, load_predictor
from emulator.services.sagemaker.invoke_server import RuntimeServer
from emulator.services.sagemaker.runner import pid_alive
from emulator.storage.records import write_json_atomic

log = logging.getLogger("emulator.services.sagemaker.serve")

INFO_FILE = "runtime_server.json"

_in_process: dict[str, RuntimeServer] = {}
_in_process_lock = threading.Lock()


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


def warm(state_dir: Path, server: RuntimeServer) -> list[str]:
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


def advertise(state_dir: Path, server: RuntimeServer) -> Path:
    """Record this process's server in the state folder, so `run` in another process uses it."""
    info_path = Path(state_dir) / "sagemaker" / INFO_FILE
    write_json_atomic(info_path, {"pid": os.getpid(), "port": server.port, "url": server.base_url})
    return info_path


def withdraw(info_path: Path) -> None:
    """Remove the record advertise wrote, if it is still this process's."""
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        if json.loads(info_path.read_text()).get("pid") == os.getpid():
            info_path.unlink()
