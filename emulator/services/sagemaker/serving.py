"""Serving a model container locally: container -> predictor (the serving twin, loaded once per
process), model artifacts unpacked once by content, and how an endpoint's traffic is routed.

The one step from a container to what answers requests is ``prepare_container`` (which twin, which
unpacked model folder, which Environment) followed by ``load_predictor(kind, model_dir, environment=)``;
a new kind of serving twin is one more entry in PREDICTOR_LOADERS and one more case in
``container_kind``. A model of several containers (CreateModel ``Containers`` with
InferenceExecutionConfig Serial) is ``model_predictor``: the containers' predictors chained by
containers.pipeline.SerialPipeline, each answer the next request with its content type.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from containers.pipeline import SerialPipeline
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.exceptions import ValidationException
from emulator.services.sagemaker.images import UnsupportedImage, check_xgboost_version, parse_image

log = logging.getLogger("emulator.services.sagemaker.serving")


class Predictor(Protocol):
    """What a serving twin returns (containers/xgboost/serving.py): thread-safe ``invoke``."""

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> Any: ...


# Serving twins by image kind: "module:function" taking the extracted model folder and batch=
# (and environment=, the container's Environment, for the kinds in TAKES_ENVIRONMENT).
# Tests may replace an entry; the value may also be a callable.
PREDICTOR_LOADERS: dict[str, str | Callable[..., Predictor]] = {
    "xgboost": "containers.xgboost.serving:load_predictor",
    # the SageMaker scikit-learn framework image: script mode (SAGEMAKER_PROGRAM in code/)
    "sklearn": "containers.sklearn.transformer:load_predictor",
}
TAKES_ENVIRONMENT = {"sklearn"}
MAX_CONTAINERS = 15  # CreateModel's limit for an inference pipeline


def container_kind(container: dict) -> str:
    """The local serving twin of a model container, by its image's repository (any account/region)."""
    image = container.get("Image", "") or ""
    ref = parse_image(image)
    if ref.name == "sagemaker-xgboost":
        check_xgboost_version(ref)
        return "xgboost"
    if ref.name == "sagemaker-scikit-learn":
        return "sklearn"
    raise UnsupportedImage(
        image, "only models for the built-in XGBoost image (sagemaker-xgboost) and the scikit-learn framework "
        "image (sagemaker-scikit-learn) can be served locally"
    )


@dataclass(frozen=True)
class ServedModel:
    """What serves one container: the twin's kind, the unpacked model folder, its Environment and
    the name a serial pipeline's errors give it (ContainerHostname, else container-<n>)."""

    kind: str
    model_dir: Path
    environment: dict = field(default_factory=dict)
    name: str = "primary"

    def to_record(self) -> dict:
        return {"Name": self.name, "Kind": self.kind, "ModelDir": str(self.model_dir),
                "Environment": dict(self.environment or {})}

    @classmethod
    def from_record(cls, record: dict) -> ServedModel:
        return cls(record["Kind"], Path(record["ModelDir"]), dict(record.get("Environment") or {}),
                   record.get("Name", "primary"))


def prepare_container(container: dict, s3: LocalS3, artifacts_root: Path, name: str = "primary") -> ServedModel:
    """The container's twin and its model unpacked (ValidationException when it cannot serve)."""
    kind = container_kind(container)
    environment = dict(container.get("Environment") or {})
    submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    if submit.startswith("s3://"):  # a sourcedir.tar.gz in S3: the local bucket's file is that object
        if not s3.exists(submit):
            raise ValidationException(f"Could not find SAGEMAKER_SUBMIT_DIRECTORY {submit}.")
        environment["SAGEMAKER_SUBMIT_DIRECTORY"] = str(s3.path(submit))
    return ServedModel(kind, extract_model(container, s3, artifacts_root), environment,
                       container.get("ContainerHostname") or name)


def model_containers(spec: dict) -> list[dict]:
    """A model's containers in invocation order: its PrimaryContainer, or its Containers."""
    return [spec["PrimaryContainer"]] if spec.get("PrimaryContainer") else list(spec.get("Containers") or [])


def prepare_model(spec: dict, s3: LocalS3, artifacts_root: Path) -> list[ServedModel]:
    """Every container of a model (CreateModel's request) prepared, in order."""
    containers = model_containers(spec)
    if len(containers) == 1:
        return [prepare_container(containers[0], s3, artifacts_root)]
    return [prepare_container(c, s3, artifacts_root, f"container-{i}") for i, c in enumerate(containers, start=1)]


def model_predictor(served: list[ServedModel], batch: bool = False) -> Predictor:
    """One container's predictor, or the serial pipeline of several (each loaded once per process)."""
    predictors = [(s.name, load_predictor(s.kind, s.model_dir, batch=batch, environment=s.environment))
                  for s in served]
    return predictors[0][1] if len(predictors) == 1 else SerialPipeline(predictors)


def variant_predictor(variant: dict, batch: bool = False) -> Predictor:
    """The predictor of an endpoint variant as its record stores it (``Containers``, else one
    container's ``Kind``/``ModelDir``)."""
    containers = variant.get("Containers")
    if containers:
        return model_predictor([ServedModel.from_record(c) for c in containers], batch=batch)
    return load_predictor(variant["Kind"], variant["ModelDir"], batch=batch)


def extract_model(container: dict, s3: LocalS3, artifacts_root: Path) -> Path:
    """The model artifact unpacked into a folder named by its content hash (shared, immutable)."""
    source = (container.get("ModelDataSource") or {}).get("S3DataSource")
    url = container.get("ModelDataUrl") or (source or {}).get("S3Uri")
    if not url:
        raise ValidationException(f"The model's container {container.get('Image')} has no ModelDataUrl: its serving "
                                  "twin needs a model.tar.gz.")
    artifacts_root.mkdir(parents=True, exist_ok=True)
    if source and source.get("CompressionType") == "None":
        digest = hashlib.sha256("\n".join(s3.list(url)).encode() + str(time.time()).encode()).hexdigest()[:20]
        target = artifacts_root / digest
        s3.download_prefix(url, target)
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

# keyed by (kind, model folder, batch, the container's Environment as sorted items)
_predictor_cache: dict[tuple, Predictor] = {}
_predictor_locks: dict[tuple, threading.Lock] = {}
_predictor_guard = threading.Lock()


def load_predictor(kind: str, model_dir: str | Path, batch: bool = False, environment: dict | None = None) -> Predictor:
    """The predictor for an extracted model folder, loaded once per process (thread-safe).

    ``batch`` is what SAGEMAKER_BATCH=true tells the container in a transform job (the XGBoost twin
    then answers text/csv one row per line instead of comma-joined). ``environment`` is the
    container's Environment: the scikit-learn twin finds its entry point there, and every twin its
    SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (how a pipeline picks its intermediate formats)."""
    environment = dict(environment or {})
    key = (kind, str(model_dir), batch, tuple(sorted(environment.items())))
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
            if kind in TAKES_ENVIRONMENT:
                cached = loader(Path(model_dir), batch=batch, environment=environment)
            else:
                cached = loader(Path(model_dir), batch=batch)
                accept = environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")
                if accept and hasattr(cached, "default_accept"):  # the twin reads it from its process
                    cached.default_accept = accept
            _predictor_cache[key] = cached
            log.debug("loaded %s predictor from %s", kind, model_dir)
    return cached


def predictor_cached(kind: str, model_dir: str | Path, batch: bool = False) -> bool:
    return any(key[:3] == (kind, str(model_dir), batch) for key in list(_predictor_cache))


def forget_predictors(keep: Callable[[tuple], bool] | None = None) -> int:
    """Drop cached predictors (all, or those ``keep((kind, model_dir, batch, environment))`` rejects);
    returns how many. A request in flight keeps its own reference, so dropping never fails one."""
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
        for variant in variants:
            referenced.update([variant["ModelDir"], *(c["ModelDir"] for c in variant.get("Containers") or [])])
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
