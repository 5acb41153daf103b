"""Run the branches of a Parallel or the iterations of a Map, inline or in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emulator.asl.errors import EXCEED_TOLERATED_FAILURE_THRESHOLD, StatesError
from emulator.asl.execution import Cancelled, Execution, Frame
from emulator.asl.redrive import group_progress

MAX_THREADS = 40  # cap for MaxConcurrency 0 (unbounded) and for Parallel branches


def run_group(
    ex: Execution,
    jobs: list[Callable[[Frame], Any]],
    frame: Frame,
    *,
    limit: int,
    threaded: bool,
    tolerance: tuple[int | None, float | None] | None = None,
) -> list[Any]:
    """Run branch/iteration jobs (inline or in threads) and return their outputs in job order.

    Without ``tolerance`` the first failure cancels the others and is raised. With it, failures
    are counted and the group fails with States.ExceedToleratedFailureThreshold once the count or
    percentage passes what is tolerated; failed slots hold {"Error", "Cause"}. Whatever the group
    raises carries its progress (``group_progress``: finished outputs, where the others stopped),
    which a redrive picks up from.
    """
    total = len(jobs)
    group = threading.Event()
    results: list[Any] = [None] * total
    failures: list[tuple[int, BaseException]] = []
    lock = threading.Lock()
    frames = [frame.child(group) for _ in jobs]
    done: set[int] = set()
    stopped: dict[int, BaseException] = {}  # cancelled part-way: a redrive picks up where they were

    def exceeded(failed: int) -> bool:
        count, pct = tolerance or (None, None)
        if count is None and pct is None:
            return failed > 0
        if count is not None and failed > count:
            return True
        return pct is not None and total > 0 and failed * 100.0 / total > pct

    def one(index: int) -> None:
        child = frames[index]
        if child.cancelled():
            return
        try:
            results[index] = jobs[index](child)
            done.add(index)
        except StatesError as err:
            with lock:
                failures.append((index, err))
                failed = sum(1 for _, e in failures if isinstance(e, StatesError))
                if tolerance is None or exceeded(failed):
                    group.set()
            results[index] = {"Error": err.name, "Cause": err.cause if err.cause is not None else ""}
        except Cancelled as exc:
            stopped[index] = exc
        except BaseException as exc:  # noqa: BLE001 - timeouts and emulator bugs stop every sibling
            with lock:
                failures.append((index, exc))
                group.set()

    if threaded and total > 1:
        with ThreadPoolExecutor(max_workers=max(1, min(limit, total))) as pool:
            try:
                for future in [pool.submit(one, i) for i in range(total)]:
                    future.result()
            except BaseException:  # Ctrl-C in the main thread: let the workers wind down first
                group.set()
                raise
    else:
        for index in range(total):
            if group.is_set():
                break
            one(index)
    # The branches' events moved the clock on: the parent continues after the latest of them.
    frame.cursor.offset = max([frame.cursor.offset] + [f.cursor.offset for f in frames])
    frame.cursor.last_id = max([frame.cursor.last_id] + [f.cursor.last_id for f in frames])

    def progress(exc: BaseException) -> BaseException:
        unfinished: dict[int, BaseException | None] = {i: None for i in range(total) if i not in done}
        unfinished.update(stopped)
        unfinished.update({i: e for i, e in failures})
        exc.group_progress = group_progress({i: results[i] for i in sorted(done)}, unfinished)  # type: ignore[attr-defined]
        return exc

    for _, exc in failures:
        if not isinstance(exc, StatesError):
            raise progress(exc)
    if frame.cancelled():
        raise progress(Cancelled())
    errors = [err for _, err in failures]
    if not errors:
        return results
    if tolerance is None:
        raise progress(errors[0])
    if exceeded(len(errors)):
        raise progress(StatesError(
            EXCEED_TOLERATED_FAILURE_THRESHOLD,
            f"{len(errors)} of {total} Map iterations failed, more than tolerated",
        ))
    return results
