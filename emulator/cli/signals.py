"""SIGTERM stops a command as Ctrl-C does: the running execution ends ABORTED on disk with the signal
named, its jobs are stopped, and the process exits 128 + the signal's number."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM (or SIGINT); the message is the execution's abort cause."""

    def __init__(self, signum: int):
        self.signum = signum
        name = signal.Signals(signum).name
        how = "Ctrl-C" if signum == signal.SIGINT else f"{name} (e.g. `kill`, a container or service manager)"
        super().__init__(f"the emulator process was stopped by {how}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside: SIGTERM and SIGINT raise Stopped in the main thread (restored afterwards)."""
    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
