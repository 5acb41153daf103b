"""Distributed training as the built-in XGBoost container does it (sagemaker_xgboost_container/distributed.py).

Hosts are sorted; the first (the master) runs XGBoost's own tracker (``xgboost.tracker.RabitTracker``)
and every host joins the collective (``xgboost.collective.CommunicatorContext``) with its index as
``dmlc_task_id``, so ranks follow the sorted host names. Two rounds, like the built-in's ``rabit_run``:
the first, over every host, broadcasts which hosts hold training (and validation) data; a host without
any logs the built-in's warning and leaves; the second, over the hosts with data, trains — xgboost
then builds its quantile sketch and every tree over all hosts' rows — and only the master saves.

Where the tracker listens: the built-in resolves the master's host name and uses port 9099 (9100 for
the second round) on the job's private network. Locally, where a job's hosts share one loopback with
every other job, the emulator passes ``XGBOOST_TRACKER_HOST`` (127.0.0.1) and ``XGBOOST_TRACKER_PORT``
(a free pair); without them this module behaves as the built-in.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any, Self

from xgboost import collective
from xgboost.tracker import RabitTracker

log = logging.getLogger("RabitContextManager")

DEFAULT_PORT = 9099
CONNECT_ATTEMPTS = 20
DIVIDE_DATA_DOC = ("https://docs.aws.amazon.com/sagemaker/latest/dg/xgboost.html"
                   "#Instance-XGBoost-distributed-training-divide-data")


def no_train_data_warning(host: str) -> str:
    return (f"Host {host} does not have training data. Will broadcast to cluster and this host {host} will not be "
            f"used in distributed training. Please divide the training data across instances properly. See "
            f"{DIVIDE_DATA_DOC}. ")


def no_validation_data_warning(host: str, channel: str) -> str:
    return (f"Host {host} does not have validation data in the validation channel : {channel}. Will broadcast to "
            f"cluster and this host {host} will not be used in distributed training. Please divide the validation "
            f"data across instances properly. See {DIVIDE_DATA_DOC}. ")


def _tracker_address(master: str) -> tuple[str, int]:
    host = os.environ.get("XGBOOST_TRACKER_HOST") or socket.gethostbyname(master)
    return host, int(os.environ.get("XGBOOST_TRACKER_PORT") or DEFAULT_PORT)


class Collective:
    """One round of the collective over ``hosts`` (sorted); the master runs the tracker."""

    def __init__(self, hosts: list[str], current_host: str, port: int) -> None:
        self.hosts = sorted(hosts)
        self.current_host = current_host
        self.rank = self.hosts.index(current_host)
        self.is_master = self.rank == 0
        self.ip, _ = _tracker_address(self.hosts[0])
        self.port = port
        self.tracker: RabitTracker | None = None
        self.context: collective.CommunicatorContext | None = None

    def __enter__(self) -> Self:
        if len(self.hosts) == 1:
            return self
        if self.is_master:
            self.tracker = RabitTracker(n_workers=len(self.hosts), host_ip=self.ip, port=self.port, sortby="task")
            self.tracker.start()
            log.info("RabitTracker started, worker_args: %s", self.tracker.worker_args())
        args: dict[str, Any] = {"dmlc_tracker_uri": self.ip, "dmlc_tracker_port": self.port,
                                "dmlc_task_id": str(self.rank), "dmlc_timeout": 60}
        # the built-in retries the whole init: CommunicatorContext does not retry a refused connection
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                self.context = collective.CommunicatorContext(**args)
                self.context.__enter__()
                break
            except Exception:
                self.context = None
                if attempt == CONNECT_ATTEMPTS - 1:
                    self._free()
                    raise
                time.sleep(0.5)
        log.info("%s joined the collective as rank %d of %d (tracker %s:%d)", self.current_host,
                 collective.get_rank(), collective.get_world_size(), self.ip, self.port)
        return self

    def synchronize(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Every host's record, in rank order (a broadcast from each rank in turn)."""
        if len(self.hosts) == 1:
            return [record]
        text = json.dumps(record)
        return [json.loads(str(collective.broadcast(text if i == self.rank else "", i)))
                for i in range(len(self.hosts))]

    def __exit__(self, *exc: object) -> None:
        if self.context is not None:
            self.context.__exit__(None, None, None)
            self.context = None
        self._free()

    def _free(self) -> None:
        if self.tracker is not None:
            try:
                self.tracker.wait_for(timeout=5)
            except Exception as err:  # noqa: BLE001 - the tracker's end is best effort, as in the built-in
                log.debug("tracker did not end cleanly: %s", err)
            self.tracker.free()
            self.tracker = None


def rabit_run(train: Callable[[bool], Any], include_in_training: bool, hosts: list[str], current_host: str) -> Any:
    """The built-in's rabit_run: agree on the hosts with data, then ``train(is_master)`` over them.
    Returns None on a host left out of training."""
    _, port = _tracker_address(min(hosts))
    with Collective(hosts, current_host, port) as everyone:
        records = everyone.synchronize({"host": current_host, "include_in_training": include_in_training})
    with_data = [r["host"] for r in records if r["include_in_training"]]
    if not include_in_training:
        log.warning("Host %s not being used for distributed training.", current_host)
        return None
    if not with_data:
        raise RuntimeError("No hosts received training data.")
    if len(with_data) == 1:
        log.info("Only 1 host with training data, starting single node training.")
        return train(True)
    with Collective(with_data, current_host, port + 1) as cluster:
        return train(cluster.is_master)
