"""Serving a model container locally: container -> predictor (the serving twin, loaded once per
process), model artifacts unpacked once by content, and how an endpoint's traffic is routed.

The one step from a container to what answers requests is ``prepare_container`` (which twin, which
unpacked model folder) followed by ``load_predictor(kind, model_dir)``; a new kind of serving twin
is one more entry in PREDICTOR_LOADERS and one more case in ``container_kind``.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import random
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.exceptions import ValidationException
from emulator.services.sagemaker.images import UnsupportedImage, check_xgboost_version, parse_image

log = logging.getLogger("emulator.services.sagemaker.serving")


class Predictor(Protocol):
    """What a serving twin returns (containers/xgboost/serving.py): thread-safe ``invoke``."""

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> Any: ...


# Serving twins by image kind: "module:function" taking the extracted model folder and batch=.
# Tests may replace an entry; the value may also be a callable.
PREDICTOR_LOADERS: dict[str, str | Callable[..., Predictor]] = {
    "xgboost": "containers.xgboost.serving:load_predictor",
}


def container_kind(container: dict) -> str:
    """The local serving twin of a model container, by its image's repository (any account/region)."""
    image = container.get("Image", "") or ""
    ref = parse_image(image)
    if ref.name == "sagemaker-xgboost":
        check_xgboost_version(ref)
        return "xgboost"
    raise UnsupportedImage(
        image, "only models for the built-in XGBoost image (sagemaker-xgboost) can be served locally; "
        "use it in the model's PrimaryContainer"
    )


@dataclass(frozen=True)
class ServedModel:
    """What serves one container: the twin's kind and the unpacked model folder."""

    kind: str
    model_dir: Path


def prepare_container(container: dict, s3: LocalS3, artifacts_root: Path) -> ServedModel:
    """The container's twin and its model unpacked (ValidationException when it cannot serve)."""
    kind = container_kind(container)
    return ServedModel(kind, extract_model(container, s3, artifacts_root))


def extract_model(container: dict, s3: LocalS3, artifacts_root: Path) -> Path:
    """The model artifact unpacked into a folder named by its content hash (shared, immutable)."""
    source = (container.get("ModelDataSource") or {}).get("S3DataSource")
    url = container.get("ModelDataUrl") or (source or {}).get("S3Uri")
    if not url:
        raise ValidationException("The model has no ModelDataUrl: the XGBoost serving twin needs a trained model.")
    artifacts_root.mkdir(parents=True, exist_ok=True)
    if source and source.get("CompressionType") == "None":
        digest = hashlib.sha256("\n".join(s3.list(url)).encode() + str(time.time()).encode()).hexdigest()[:20]
        target = artifacts_root / digest
        s3.link_prefix(url, target)  # read-only links: nothing served can change the objects
        return target
    if not s3.exists(url):
        raise ValidationException(f"Could not find model data at {url}.")
    tar_path = s3.path(url)
    digest = hashlib.sha256()
    with open(tar_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    target = artifacts_root / digest.hexdigest()[:20]
    if not target.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=artifacts_root))
        try:
            with tarfile.open(tar_path) as archive:
                archive.extractall(staging, filter="data")
            os.replace(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.is_dir():  # another process won the race otherwise
                raise
        except tarfile.TarError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ValidationException(f"Model data at {url} is not a valid model.tar.gz: {exc}") from exc
    return target


# -- the predictor cache ---------------------------------------------------------------------

_predictor_cache: dict[tuple[str, str, bool], Predictor] = {}
_predictor_locks: dict[tuple[str, str, bool], threading.Lock] = {}
_predictor_guard = threading.Lock()


def load_predictor(kind: str, model_dir: str | Path, batch: bool = False) -> Predictor:
    """The predictor for an extracted model folder, loaded once per process (thread-safe).

    ``batch`` is what SAGEMAKER_BATCH=true tells the container in a transform job (the XGBoost twin
    then answers text/csv one row per line instead of comma-joined)."""
    key = (kind, str(model_dir), batch)
    cached = _predictor_cache.get(key)
    if cached is not None:
        return cached
    with _predictor_guard:
        lock = _predictor_locks.setdefault(key, threading.Lock())
    with lock:
        cached = _predictor_cache.get(key)
        if cached is None:
            loader = PREDICTOR_LOADERS[kind]
            if isinstance(loader, str):
                module, _, func = loader.partition(":")
                loader = getattr(importlib.import_module(module), func)
            cached = loader(Path(model_dir), batch=batch)
            _predictor_cache[key] = cached
            log.debug("loaded %s predictor from %s", kind, model_dir)
    return cached


def predictor_cached(kind: str, model_dir: str | Path, batch: bool = False) -> bool:
    return (kind, str(model_dir), batch) in _predictor_cache


def forget_predictors(keep: Callable[[tuple[str, str, bool]], bool] | None = None) -> int:
    """Drop cached predictors (all, or those ``keep((kind, model_dir, batch))`` rejects); returns how
    many. A request in flight keeps its own reference, so dropping never fails one."""
    with _predictor_guard:
        dropped = [key for key in _predictor_cache if keep is None or not keep(key)]
        for key in dropped:
            _predictor_cache.pop(key, None)
    return len(dropped)


# -- traffic routing (an endpoint record's "_hosting" part; read by the invoke server) --------


def serving_state(record: dict) -> dict:
    """The part of an endpoint record the invoke server routes by (never returned by Describe)."""
    return record.get("_hosting") or {}


def referenced_model_dirs(endpoint_records: list[dict]) -> set[str]:
    """Model folders these endpoints serve or are shifting traffic to."""
    referenced: set[str] = set()
    for record in endpoint_records:
        hosting = serving_state(record)
        variants = (hosting.get("Variants") or []) + ((hosting.get("Pending") or {}).get("Variants") or [])
        referenced.update(v["ModelDir"] for v in variants)
    return referenced


def shift_schedule(deployment: dict | None, instance_count: int, time_scale: float) -> tuple[list[list[float]], float]:
    """([[offset_s, fraction_on_new], ...], end_offset_s) for an update, in wall-clock seconds.

    BlueGreen ALL_AT_ONCE shifts everything, then bakes for WaitIntervalInSeconds; CANARY sends
    CanarySize first and the rest after the wait; LINEAR moves LinearStepSize per wait; a
    RollingUpdatePolicy moves MaximumBatchSize per wait. TerminationWaitInSeconds keeps the old
    fleet (and the Updating status) afterwards. Without a DeploymentConfig the swap is immediate.
    """
    if not deployment:
        return [[0.0, 1.0]], 0.0
    count = max(1, instance_count)

    def fraction(size: dict | None) -> float:
        if not size:
            return 1.0
        value = float(size.get("Value", 100))
        share = value / 100.0 if size.get("Type") == "CAPACITY_PERCENT" else value / count
        return min(1.0, max(0.0, share)) or 1.0

    blue_green = deployment.get("BlueGreenUpdatePolicy")
    rolling = deployment.get("RollingUpdatePolicy")
    if blue_green:
        routing = blue_green.get("TrafficRoutingConfiguration") or {}
        wait = float(routing.get("WaitIntervalInSeconds", 0)) * time_scale
        kind = routing.get("Type", "ALL_AT_ONCE")
        if kind == "CANARY":
            steps = [[0.0, fraction(routing.get("CanarySize"))], [wait, 1.0]]
        elif kind == "LINEAR":
            steps = _linear(fraction(routing.get("LinearStepSize")), wait)
        else:
            steps = [[0.0, 1.0]]
        bake = wait if kind == "ALL_AT_ONCE" else 0.0
        end = steps[-1][0] + bake + float(blue_green.get("TerminationWaitInSeconds", 0)) * time_scale
        return steps, end
    if rolling:
        wait = float(rolling.get("WaitIntervalInSeconds", 0)) * time_scale
        steps = _linear(fraction(rolling.get("MaximumBatchSize")), wait)
        return steps, steps[-1][0]
    return [[0.0, 1.0]], 0.0


def _linear(step: float, wait: float) -> list[list[float]]:
    steps, share, offset = [], 0.0, 0.0
    while share < 1.0 - 1e-9:
        share = min(1.0, share + step)
        steps.append([offset, share])
        offset += wait
    return steps


def new_traffic_share(pending: dict, now: float) -> float:
    """The fraction of requests the pending (new) variants take at ``now``."""
    started = pending.get("ShiftStart")
    if started is None:
        return 0.0
    share = 0.0
    for offset, fraction in pending["Schedule"]:
        if now >= started + offset:
            share = fraction
    return share


def pick_variant(variants: list[dict], target: str | None = None, rng: random.Random | None = None) -> dict | None:
    """A variant by name (TargetVariant) or at random by weight, as SageMaker splits traffic."""
    if target:
        return next((v for v in variants if v["VariantName"] == target), None)
    if len(variants) == 1:
        return variants[0]
    total = sum(max(0.0, v["Weight"]) for v in variants)
    if total <= 0:
        return variants[0]
    point = (rng or random).random() * total
    for variant in variants:
        point -= max(0.0, variant["Weight"])
        if point < 0:
            return variant
    return variants[-1]


def routable_variants(record: dict, now: float, rng: random.Random | None = None) -> list[dict]:
    """The variant set a request goes to now: the pending set with its traffic share, else the live."""
    hosting = serving_state(record)
    live = hosting.get("Variants") or []
    pending = hosting.get("Pending")
    if pending and pending.get("ShiftStart") is not None:
        share = new_traffic_share(pending, now)
        if not live or share >= 1.0 or (share > 0 and (rng or random).random() < share):
            return pending["Variants"]
    return live
