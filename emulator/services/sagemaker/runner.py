"""Launch a job's process in its job folder and watch it: logs to files, a deadline, stop.

The job folder plays the container's /opt/ml: ``map_paths`` rewrites every /opt/ml path in a
command line to the folder, and the process gets ``SM_ML_ROOT`` pointing at it (what the twins
read instead of the hard-coded /opt/ml).

A job's inputs are read-only hard links to bucket objects (LocalS3.link_prefix): the file mode is
what keeps a job from writing through them. Root ignores file modes while it holds
CAP_DAC_OVERRIDE, so a job launched by root runs without it (util-linux ``setpriv``), and reads
everything but writes only what it owns and may write, as any user's job does.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from emulator.storage.processes import ProcessGroups

log = logging.getLogger("emulator.services.sagemaker.runner")

OPT_ML = "/opt/ml"
_LIVE: set = set()  # running JobProcesses, stopped at exit so no job outlives the emulator


def map_path(value: str, ml_root: Path) -> str:
    """Rewrite /opt/ml (and /opt/ml/...) anywhere in ``value`` (``--x=/opt/ml/a`` too)."""
    root = str(ml_root)
    if value == OPT_ML:
        return root
    return value.replace(OPT_ML + "/", root + "/").replace("=" + OPT_ML, "=" + root) if OPT_ML in value else value


def map_paths(values: list[str], ml_root: Path) -> list[str]:
    return [map_path(v, ml_root) for v in values]


def local_path(container_path: str, ml_root: Path) -> Path:
    """A container path under /opt/ml as a path in the job folder (anything else is refused)."""
    if container_path != OPT_ML and not container_path.startswith(OPT_ML + "/"):
        raise ValueError(f"{container_path!r} is not under {OPT_ML}")
    return ml_root / container_path[len(OPT_ML):].lstrip("/")


@dataclass
class ProcessResult:
    returncode: int | None  # None: still running
    timed_out: bool = False
    stopped: bool = False


@dataclass(eq=False)
class JobProcess:
    """One running job process; ``stdout.log``/``stderr.log`` in ``log_dir`` hold its output."""

    command: list[str]
    popen: subprocess.Popen
    log_dir: Path
    deadline: float | None
    started: float = field(default_factory=time.monotonic)
    timed_out: bool = False
    stopped: bool = False
    groups: ProcessGroups | None = None  # where its process group is recorded while it runs
    peak_rss: int | None = None  # bytes, once reaped

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / "stderr.log"

    def _reap(self) -> int | None:
        """The exit code once the process has ended (None while it runs). Reaped with wait4, whose
        rusage gives the process's peak resident memory (its waited-for children's included): the
        run summary reports it per stage."""
        if self.popen.returncode is not None:
            return self.popen.returncode
        try:
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere (Popen's own wait): no usage to read
            return self.popen.poll()
        if pid == 0:
            return None
        self.peak_rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        return self.popen.returncode

    def poll(self) -> ProcessResult:
        code = self._reap()
        if code is None and self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
            self._kill()
            while (code := self._reap()) is None:
                time.sleep(0.02)
        if code is not None:
            self._ended()
        return ProcessResult(code, self.timed_out, self.stopped)

    def wait(self) -> ProcessResult:
        """Block until the process exits (or its deadline kills it); returns within ~20 ms of the exit."""
        while True:
            result = self.poll()
            if result.returncode is not None:
                return result
            time.sleep(0.02)

    def read_new_lines(self, offset: int) -> tuple[list[str], int]:
        """Complete stdout lines written since byte ``offset``, and the offset after them."""
        try:
            with open(self.stdout_path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        except FileNotFoundError:
            return [], offset
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            return [], offset
        return chunk[:end].decode(errors="replace").splitlines(), offset + end

    def stop(self) -> None:
        """StopTrainingJob/StopProcessingJob: SIGTERM, then SIGKILL after a grace period."""
        if self._reap() is None:
            self.stopped = True
            self._kill()

    def _kill(self, grace: float = 2.0) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        until = time.monotonic() + grace
        while self._reap() is None:
            if time.monotonic() > until:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            time.sleep(0.02)

    def _ended(self) -> None:
        if self in _LIVE:
            _LIVE.discard(self)
            if self.groups is not None:
                # children the job left behind in its group end with it
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                self.groups.ended(self.popen.pid)

    def log_text(self) -> str:
        """stdout then stderr, as one log (CloudWatch shows both in the job's stream)."""
        parts = [p.read_text(errors="replace") for p in (self.stdout_path, self.stderr_path) if p.exists()]
        return "\n".join(parts)

    def tail(self, lines: int = 20) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        if not text.strip() and self.stdout_path.exists():
            text = self.stdout_path.read_text(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])


@functools.cache
def _mode_keeper() -> list[str]:
    """The prefix that makes a root-launched job respect file modes ([] when not root or not possible)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return []
    prefix = [shutil.which("setpriv") or "setpriv", "--bounding-set", "-dac_override", "--"]
    try:
        ok = subprocess.run([*prefix, "true"], check=False, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        log.warning("jobs run as root with CAP_DAC_OVERRIDE (no usable setpriv): a job could write "
                    "through its read-only input links into the bucket")
        return []
    return prefix


def launch(
    command: list[str],
    *,
    ml_root: Path,
    log_dir: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    pythonpath: list[Path] | None = None,
    max_runtime: float | None = None,
    groups: ProcessGroups | None = None,
) -> JobProcess:
    """Start ``command`` (already mapped) in its own process group, output to ``log_dir``; the group
    is recorded in ``groups`` until it ends, so a later emulator process can end it if this one dies."""
    log_dir.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["SM_ML_ROOT"] = str(ml_root)
    full_env["PYTHONUNBUFFERED"] = "1"  # logs reach the file (and the metric parser) line by line
    paths = [str(p) for p in (pythonpath or [])]
    if full_env.get("PYTHONPATH"):
        paths.append(full_env["PYTHONPATH"])
    if paths:
        full_env["PYTHONPATH"] = os.pathsep.join(paths)
    with open(log_dir / "stdout.log", "wb") as out, open(log_dir / "stderr.log", "wb") as err:
        popen = subprocess.Popen(
            [*_mode_keeper(), *command], cwd=cwd, env=full_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
    log.debug("started pid %d: %s", popen.pid, " ".join(command))
    deadline = time.monotonic() + max_runtime if max_runtime else None
    process = JobProcess(command, popen, log_dir, deadline, groups=groups)
    _LIVE.add(process)
    if groups is not None:
        groups.started(popen.pid, f"job process {' '.join(command)[:200]}")
    return process


@atexit.register
def _stop_all() -> None:
    for process in list(_LIVE):
        process.stop()
        process.poll()


def killed_reason(returncode: int | None) -> str | None:
    """What a FailureReason says of a job process that a signal ended (negative return code), or None.
    Nothing in the job wrote a reason then: the kill is the reason, and who sends SIGKILL is the
    kernel's out-of-memory killer or a person."""
    if returncode is None or returncode >= 0:
        return None
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "an unknown signal"
    cause = (" (the system's out-of-memory killer, or a kill from outside the job)" if -returncode == signal.SIGKILL
             else "")
    return f"the job's process was killed by signal {-returncode} ({name}){cause}"
