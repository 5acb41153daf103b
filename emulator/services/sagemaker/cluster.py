"""The instances of a multi-instance job: host names, each host's /opt/ml, resourceconfig.json, its share
of an input, and what the processes it ran used.

SageMaker names a job's instances ``algo-1`` .. ``algo-N`` and tells each which it is in
``resourceconfig.json`` (``current_host``, ``hosts``). Locally every instance is one process with its own
folder playing its /opt/ml: the first host keeps the job's ``ml/`` and ``logs/`` (so a one-instance job
looks as it always did), host k>1 gets ``hosts/algo-k/ml`` and ``logs/algo-k``. An input's
``S3DataDistributionType`` decides what each host receives: ``FullyReplicated`` every object,
``ShardedByS3Key`` every N-th object in key order from its own rank (a host may receive none, as on
SageMaker when a prefix holds fewer objects than instances).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

FULLY_REPLICATED, SHARDED = "FullyReplicated", "ShardedByS3Key"
RESOURCES_FILE = "resources.json"  # in the job's logs/: peak memory of each host's process


@dataclass(frozen=True)
class Host:
    """One instance of a job: its name, its rank (0-based, sorted order) and its local folders."""

    name: str
    rank: int
    count: int
    ml_root: Path
    log_dir: Path

    def shard(self, distribution: str | None) -> tuple[int, int] | None:
        """What link_prefix needs for an input of this distribution type (None: every object)."""
        return (self.rank, self.count) if distribution == SHARDED and self.count > 1 else None


def host_names(count: int) -> list[str]:
    return [f"algo-{i}" for i in range(1, max(1, count) + 1)]


def hosts(folder: Path, count: int) -> list[Host]:
    """The job's hosts; the first plays in the job's own ml/ and logs/."""
    names = host_names(count)
    out = []
    for rank, name in enumerate(names):
        if rank == 0:
            out.append(Host(name, rank, len(names), folder / "ml", folder / "logs"))
        else:
            out.append(Host(name, rank, len(names), folder / "hosts" / name / "ml", folder / "logs" / name))
    return out


def resource_config(resources: dict, current_host: str = "algo-1") -> dict:
    """resourceconfig.json as SageMaker writes it on ``current_host`` of the job's cluster."""
    instance_type = resources.get("InstanceType", "local")
    names = host_names(int(resources.get("InstanceCount", 1) or 1))
    return {
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": names,
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type,
                             "hosts": names}],
        "network_interface_name": "eth0",
    }


def tracker_port() -> int:
    """A free port p with p+1 free too, for a distributed XGBoost job's two collective rounds (the
    built-in container uses 9099 and 9100 on each job's private network; locally jobs share one
    loopback, so each multi-host job gets its own pair)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise OSError("no two consecutive free ports on 127.0.0.1 for the XGBoost tracker")


def host_env(count: int) -> dict[str, str]:
    """The environment of each host process of a local ``count``-host training job."""
    return {"XGBOOST_TRACKER_HOST": "127.0.0.1", "XGBOOST_TRACKER_PORT": str(tracker_port()),
            "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // count)), "OMP_WAIT_POLICY": "PASSIVE"}


def write_resources(log_dir: Path, peaks: dict[str, int | None]) -> None:
    """Each host's peak resident memory (bytes), for the run summary."""
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / RESOURCES_FILE).write_text(json.dumps({"peak_rss_bytes": peaks}, indent=1) + "\n")


def read_resources(log_dir: Path) -> dict[str, int | None]:
    path = log_dir / RESOURCES_FILE
    try:
        return dict(json.loads(path.read_text())["peak_rss_bytes"])
    except (OSError, ValueError, KeyError):
        return {}
