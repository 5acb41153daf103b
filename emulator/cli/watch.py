"""The drop folder: files dropped in a folder are uploaded under the trigger prefix and play the
S3 -> EventBridge -> Step Functions trigger, as an upload to the bucket would on AWS. A subfolder named
like another trigger's prefix (``inference/``) uploads under that prefix instead."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from emulator.services.eventbridge import Delivery, EventBus
from emulator.services.s3.store import LocalS3

log = logging.getLogger("emulator.watch")


def watch(folder: Path, s3: LocalS3, bus: EventBus, *, bucket: str, prefix: str, interval: float = 0.5,
          stop: Callable[[], bool] | None = None, on_delivery: Callable[[Path, list[Delivery]], None] | None = None,
          routes: tuple[str, ...] = ()) -> None:
    """Poll ``folder``; every file that stops growing is copied to s3://bucket/prefix<relative path>
    (s3://bucket/<relative path> when its first folder is one of ``routes``, other trigger prefixes
    like "inference/"), plays the Object Created event and is moved to ``folder/.done/`` (never deleted)."""
    folder = Path(folder)
    done = folder / ".done"
    sizes: dict[Path, int] = {}
    while not (stop and stop()):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder)
            if rel.parts[0].startswith("."):
                continue
            size = path.stat().st_size
            if sizes.get(path) != size:  # still being written, or new: look again next round
                sizes[path] = size
                continue
            del sizes[path]
            routed = len(rel.parts) > 1 and f"{rel.parts[0]}/" in routes
            uri = LocalS3.uri(bucket, ("" if routed else prefix) + rel.as_posix())
            s3.put_file(uri, path)
            target = done / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = 1
            while target.exists():  # a file dropped again under the same name keeps its earlier copy
                target = done / rel.with_name(f"{rel.stem}.{copy}{rel.suffix}")
                copy += 1
            shutil.move(path, target)
            log.info("dropped %s -> %s", rel, uri)
            deliveries = bus.object_created(s3, uri)
            if on_delivery:
                on_delivery(path, deliveries)
        time.sleep(interval)
