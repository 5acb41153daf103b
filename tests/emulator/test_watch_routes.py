"""The drop folder routes a subfolder named like another trigger's prefix (``inference/``) to that
prefix, and every other file under the training upload prefix, as before."""

from __future__ import annotations

import threading
import time

from emulator.cli.watch import watch
from emulator.services.eventbridge import EventBus
from emulator.services.s3.store import LocalS3


def test_a_subfolder_named_like_a_trigger_prefix_uploads_there(mini_runtime, tmp_path):
    deployment = mini_runtime.deployment
    bus = EventBus(deployment.rules, deployment.buckets, region=deployment.region, account=deployment.account,
                   dead_letters_dir=deployment.layout.dead_letters_dir, start_execution=lambda *a: None)
    bucket, prefix = bus.upload_trigger()
    assert bus.upload_triggers() == [(bucket, prefix)]
    drop = tmp_path / "drop"
    (drop / "inference").mkdir(parents=True)
    (drop / "inference" / "records.csv").write_bytes(b"1,2\n")
    (drop / "other").mkdir()
    (drop / "other" / "table.csv").write_bytes(b"x,y\n1,2\n")
    seen, stop = [], threading.Event()
    thread = threading.Thread(target=watch, args=(drop, mini_runtime.s3, bus), kwargs={
        "bucket": bucket, "prefix": prefix, "interval": 0.05, "stop": stop.is_set, "routes": ("inference/",),
        "on_delivery": lambda path, deliveries: seen.append(path.name)})
    thread.start()
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    s3 = LocalS3(deployment.layout.s3_root)
    assert s3.get_bytes(f"s3://{bucket}/inference/records.csv") == b"1,2\n"
    assert s3.get_bytes(f"s3://{bucket}/{prefix}other/table.csv") == b"x,y\n1,2\n"
    assert not s3.exists(f"s3://{bucket}/{prefix}inference/records.csv")
    assert (drop / ".done" / "inference" / "records.csv").is_file()
