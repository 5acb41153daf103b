"""SageMaker hosting, locally: models, endpoint configs, endpoints and the model registry.

Every resource is one JSON file under ``<state_dir>/sagemaker/<kind>/<name>.json`` written atomically,
so a ``serve`` process, a second ``run`` and this process all see the same state. Methods are named
after the API operation, take its PascalCase request members and return its response dict (times as
``datetime``), raising the flat errors of ``exceptions.py`` with SageMaker's wording.

An endpoint's traffic is served by ``runtime_server.py``; what it serves is decided here and written
into the endpoint's record under ``_hosting`` (never returned by Describe): the prepared variants
(model artifact extracted to a content-addressed folder, predictor loaded once to fail early) and,
during an update, the pending variants with the traffic-shift schedule of the DeploymentConfig.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import importlib
import json
import logging
import os
import random
import re
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from emulator.aws.jsontree import map_datetimes
from emulator.services.s3.store import S3Error
from emulator.services.sagemaker.exceptions import ResourceLimitExceeded, ValidationException
from emulator.services.sagemaker.images import UnsupportedImage, parse_image, resolve_image

log = logging.getLogger("emulator.services.sagemaker.hosting")

DEFAULT_ACCOUNT = "000000000000"
ALARM_NOTE = "alarms recorded, not evaluated: there is no CloudWatch locally, so no automatic rollback"


class Predictor(Protocol):
    """What a serving twin returns (containers/xgboost/serving.py): thread-safe ``invoke``."""

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> Any: ...


# Serving twins by image kind: "module:function" taking the extracted model folder and batch=.
# Tests may replace an entry; the value may also be a callable.
PREDICTOR_LOADERS: dict[str, str | Callable[[Path], Predictor]] = {
    "xgboost": "containers.xgboost.serving:load_predictor",
}


def image_kind(image: str) -> str:
    """The local serving twin of a container image, by repository name (any account/region)."""
    ref = parse_image(image or "")
    if ref.name == "sagemaker-xgboost":
        resolve_image(image, Path("."))  # the version check of the training twin
        return "xgboost"
    raise UnsupportedImage(
        image, "only models for the built-in XGBoost image (sagemaker-xgboost) can be served locally; "
        "use it in the model's PrimaryContainer"
    )


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


def forget_predictors(keep: Callable[[tuple[str, str, bool]], bool] | None = None) -> int:
    """Drop cached predictors (all, or those ``keep((kind, model_dir, batch))`` rejects); returns how
    many. A request in flight keeps its own reference, so dropping never fails one."""
    with _predictor_guard:
        dropped = [key for key in _predictor_cache if keep is None or not keep(key)]
        for key in dropped:
            _predictor_cache.pop(key, None)
    return len(dropped)


def referenced_model_dirs(state_dir: str | Path) -> set[str]:
    """Model folders some endpoint on disk serves or is shifting traffic to."""
    folder = Path(state_dir) / "sagemaker" / "endpoints"
    referenced: set[str] = set()
    for file in folder.glob("*.json") if folder.is_dir() else []:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            hosting = json.loads(file.read_text()).get("_hosting") or {}
            variants = (hosting.get("Variants") or []) + ((hosting.get("Pending") or {}).get("Variants") or [])
            referenced.update(v["ModelDir"] for v in variants)
    return referenced


# -- state on disk --------------------------------------------------------------------------


def _now() -> float:
    return time.time()


def to_datetimes(doc: Any) -> Any:
    """A stored record as the API returns it: epoch numbers under ``*Time`` keys become datetimes,
    internal ``_*`` keys are dropped."""
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if key.startswith("_"):
                continue
            if key.endswith("Time") and isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = datetime.fromtimestamp(value, tz=UTC)
            else:
                out[key] = to_datetimes(value)
        return out
    if isinstance(doc, list):
        return [to_datetimes(v) for v in doc]
    return doc


def _jsonable(value: Any) -> Any:
    return map_datetimes(value, datetime.timestamp)


@dataclass
class Store:
    """One JSON file per resource: ``<root>/<kind>/<key>.json``; keys are lower-cased names, as
    SageMaker names are case-insensitive and its ARNs lower-case them."""

    root: Path

    def path(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{name.lower()}.json"

    def read(self, kind: str, name: str) -> dict | None:
        try:
            return json.loads(self.path(kind, name).read_text())
        except FileNotFoundError:
            return None

    def write(self, kind: str, name: str, doc: dict) -> None:
        target = self.path(kind, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(_jsonable(doc), handle, indent=1, sort_keys=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, kind: str, name: str) -> None:
        self.path(kind, name).unlink(missing_ok=True)

    def all(self, kind: str) -> list[dict]:
        folder = self.root / kind
        docs = []
        for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                docs.append(json.loads(file.read_text()))
        return docs

    @contextlib.contextmanager
    def lock(self, kind: str, name: str) -> Iterator[None]:
        """An exclusive lock across processes and threads for read-modify-write of one record."""
        folder = self.root / ".locks"
        folder.mkdir(parents=True, exist_ok=True)
        with _thread_lock(f"{self.root}/{kind}/{name.lower()}"), open(folder / f"{kind}-{name.lower()}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(key: str) -> threading.RLock:
    # flock is per open file, so two threads of one process need their own mutual exclusion too.
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.RLock())


def sagemaker_dir(runtime: Any) -> Path:
    return Path(runtime.state_dir) / "sagemaker"


# -- traffic routing (shared with runtime_server) -------------------------------------------


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
    hosting = record.get("_hosting") or {}
    live = hosting.get("Variants") or []
    pending = hosting.get("Pending")
    if pending and pending.get("ShiftStart") is not None:
        share = new_traffic_share(pending, now)
        if not live or share >= 1.0 or (share > 0 and (rng or random).random() < share):
            return pending["Variants"]
    return live


# -- the backend ----------------------------------------------------------------------------


class HostingBackend:
    """Models, endpoint configs, endpoints and model packages of one local account."""

    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.store = Store(sagemaker_dir(runtime))
        self.region = getattr(runtime, "region", None) or "us-east-1"
        self.account = getattr(runtime, "account", None) or DEFAULT_ACCOUNT
        self.time_scale = float(getattr(runtime, "time_scale", 1.0) or 0.0)
        self._workers: dict[str, threading.Thread] = {}

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    # -- models -----------------------------------------------------------------------------

    def create_model(self, ModelName: str, PrimaryContainer: dict | None = None, Containers: list | None = None,
                     ExecutionRoleArn: str | None = None, **rest: Any) -> dict:
        arn = self.arn("model", ModelName)
        if PrimaryContainer is None and not Containers:
            raise ValidationException("Either PrimaryContainer or Containers must be specified.")
        if Containers and len(Containers) > 1 and PrimaryContainer is None:
            raise ValidationException(
                f"Model {ModelName!r} has {len(Containers)} containers: the emulator serves single-container "
                f"models only; put the model in PrimaryContainer"
            )
        container = PrimaryContainer or Containers[0]
        image_kind(container.get("Image", ""))
        self._check_model_data(container)
        with self.store.lock("models", ModelName):
            if self.store.read("models", ModelName) is not None:
                raise ValidationException(f'Cannot create already existing model "{arn}".')
            doc = {"ModelName": ModelName, "ModelArn": arn, "CreationTime": _now(),
                   "EnableNetworkIsolation": bool(rest.pop("EnableNetworkIsolation", False))}
            if PrimaryContainer is not None:
                doc["PrimaryContainer"] = PrimaryContainer
            if Containers:
                doc["Containers"] = Containers
            if ExecutionRoleArn:
                doc["ExecutionRoleArn"] = ExecutionRoleArn
            for key in ("VpcConfig", "InferenceExecutionConfig", "DeploymentRecommendation"):
                if key in rest:
                    doc[key] = rest[key]
            self.store.write("models", ModelName, doc)
        log.info("model %s created (image %s)", ModelName, container.get("Image"))
        return {"ModelArn": arn}

    def _check_model_data(self, container: dict) -> None:
        url = container.get("ModelDataUrl")
        source = (container.get("ModelDataSource") or {}).get("S3DataSource")
        if source and source.get("CompressionType") == "Gzip":
            url = url or source.get("S3Uri")
        if not url:
            return
        try:
            found = self.runtime.s3.exists(url)
        except S3Error as exc:  # a malformed URI: SageMaker rejects it the same way
            raise ValidationException(f"Could not access model data at {url}: {exc}") from exc
        if not found:
            raise ValidationException(f"Could not find model data at {url}.")

    def describe_model(self, ModelName: str) -> dict:
        return to_datetimes(self._model(ModelName))

    def _model(self, name: str) -> dict:
        doc = self.store.read("models", name)
        if doc is None:
            raise ValidationException(f'Could not find model "{self.arn("model", name)}".')
        return doc

    def delete_model(self, ModelName: str) -> dict:
        self._model(ModelName)
        self.store.delete("models", ModelName)
        return {}

    # -- endpoint configs -------------------------------------------------------------------

    def create_endpoint_config(self, EndpointConfigName: str, ProductionVariants: list, **rest: Any) -> dict:
        arn = self.arn("endpoint-config", EndpointConfigName)
        names = [v["VariantName"] for v in ProductionVariants]
        if len(set(names)) != len(names):
            raise ValidationException(f"Variant names must be unique in endpoint configuration {EndpointConfigName!r}: {names}")
        for variant in ProductionVariants:
            self._model(variant["ModelName"])
            if "ServerlessConfig" not in variant and "InstanceType" not in variant:
                raise ValidationException(
                    f"Production variant {variant['VariantName']!r} must specify InstanceType or ServerlessConfig."
                )
        with self.store.lock("endpoint-configs", EndpointConfigName):
            if self.store.read("endpoint-configs", EndpointConfigName) is not None:
                raise ValidationException(f'Cannot create already existing endpoint configuration "{arn}".')
            doc = {"EndpointConfigName": EndpointConfigName, "EndpointConfigArn": arn,
                   "ProductionVariants": ProductionVariants, "CreationTime": _now()}
            for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig",
                        "ShadowProductionVariants", "EnableNetworkIsolation", "ExecutionRoleArn", "VpcConfig"):
                if key in rest:
                    doc[key] = rest[key]
            self.store.write("endpoint-configs", EndpointConfigName, doc)
        log.info("endpoint config %s created (%s)", EndpointConfigName,
                 ", ".join(f"{v['VariantName']}->{v['ModelName']}" for v in ProductionVariants))
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict:
        return to_datetimes(self._endpoint_config(EndpointConfigName))

    def _endpoint_config(self, name: str) -> dict:
        doc = self.store.read("endpoint-configs", name)
        if doc is None:
            raise ValidationException(f'Could not find endpoint configuration "{self.arn("endpoint-config", name)}".')
        return doc

    def delete_endpoint_config(self, EndpointConfigName: str) -> dict:
        self._endpoint_config(EndpointConfigName)
        self.store.delete("endpoint-configs", EndpointConfigName)
        return {}

    # -- endpoints --------------------------------------------------------------------------

    def create_endpoint(self, EndpointName: str, EndpointConfigName: str, DeploymentConfig: dict | None = None,
                        Tags: list | None = None, **_: Any) -> dict:
        arn = self.arn("endpoint", EndpointName)
        config = self._endpoint_config(EndpointConfigName)
        for variant in config["ProductionVariants"]:
            self._model(variant["ModelName"])
        with self.store.lock("endpoints", EndpointName):
            if self.store.read("endpoints", EndpointName) is not None:
                raise ValidationException(f'Cannot create already existing endpoint "{arn}".')
            now = _now()
            record = {
                "EndpointName": EndpointName, "EndpointArn": arn, "EndpointConfigName": EndpointConfigName,
                "EndpointStatus": "Creating", "CreationTime": now, "LastModifiedTime": now,
                "_hosting": {"Variants": [], "Pending": self._pending(config, None, now)},
            }
            if config.get("DataCaptureConfig"):
                record["DataCaptureConfig"] = _capture_summary(config["DataCaptureConfig"])
            if DeploymentConfig:
                record["_hosting"]["DeploymentConfig"] = DeploymentConfig
            self.store.write("endpoints", EndpointName, record)
        log.info("endpoint %s creating with config %s", EndpointName, EndpointConfigName)
        self._start_worker(EndpointName)
        return {"EndpointArn": arn}

    def update_endpoint(self, EndpointName: str, EndpointConfigName: str, DeploymentConfig: dict | None = None,
                        RetainAllVariantProperties: bool = False, **_: Any) -> dict:
        arn = self.arn("endpoint", EndpointName)
        config = self._endpoint_config(EndpointConfigName)
        with self.store.lock("endpoints", EndpointName):
            record = self.store.read("endpoints", EndpointName)
            if record is None:
                raise ValidationException(f'Could not find endpoint "{arn}".')
            self._advance(record)
            status = record["EndpointStatus"]
            if status in ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"):
                raise ValidationException(f'Cannot update in-progress endpoint "{arn}".')
            if status == "Failed":
                raise ValidationException(
                    f'Cannot update endpoint "{arn}" because it is in Failed state; delete it and create it again.'
                )
            now = _now()
            record["EndpointStatus"] = "Updating"
            record["LastModifiedTime"] = now
            record.pop("FailureReason", None)
            record["_hosting"]["Pending"] = self._pending(config, DeploymentConfig, now)
            if DeploymentConfig:
                record["LastDeploymentConfig"] = _recorded_deployment(DeploymentConfig)
            self.store.write("endpoints", EndpointName, record)
        log.info("endpoint %s updating to config %s", EndpointName, EndpointConfigName)
        self._start_worker(EndpointName)
        return {"EndpointArn": arn}

    def describe_endpoint(self, EndpointName: str) -> dict:
        record = self._endpoint(EndpointName)
        if record["EndpointStatus"] in ("Creating", "Updating"):
            worker = self._workers.get(EndpointName.lower())
            if worker is None or not worker.is_alive():
                # Nobody in this process is preparing it (e.g. the creating process exited): do it now.
                self._prepare(EndpointName)
            with self.store.lock("endpoints", EndpointName):
                record = self._endpoint(EndpointName)
                if self._advance(record):
                    self.store.write("endpoints", EndpointName, record)
        return self._describe(record)

    def _describe(self, record: dict) -> dict:
        out = to_datetimes(record)
        pending = (record.get("_hosting") or {}).get("Pending")
        if pending and record["EndpointStatus"] == "Updating":
            out["PendingDeploymentSummary"] = to_datetimes({
                "EndpointConfigName": pending["EndpointConfigName"],
                "ProductionVariants": [
                    {**_variant_summary(v, pending.get("ShiftStart") or pending["Requested"]),
                     "VariantStatus": [{"Status": "Baking" if pending.get("ShiftStart") else "Creating",
                                        "StartTime": pending.get("ShiftStart") or pending["Requested"]}]}
                    for v in pending["Variants"]
                ],
                "StartTime": pending["Requested"],
            })
        return out

    def _endpoint(self, name: str) -> dict:
        record = self.store.read("endpoints", name)
        if record is None:
            raise ValidationException(f'Could not find endpoint "{self.arn("endpoint", name)}".')
        return record

    def delete_endpoint(self, EndpointName: str) -> dict:
        with self.store.lock("endpoints", EndpointName):
            self._endpoint(EndpointName)
            self.store.delete("endpoints", EndpointName)
        log.info("endpoint %s deleted", EndpointName)
        return {}

    def list_endpoints(self, SortBy: str = "CreationTime", SortOrder: str = "Descending", NextToken: str | None = None,
                       MaxResults: int | None = None, NameContains: str | None = None, StatusEquals: str | None = None,
                       CreationTimeBefore: Any = None, CreationTimeAfter: Any = None,
                       LastModifiedTimeBefore: Any = None, LastModifiedTimeAfter: Any = None) -> dict:
        rows = []
        for record in self.store.all("endpoints"):
            if record["EndpointStatus"] in ("Creating", "Updating"):
                with contextlib.suppress(ValidationException):  # deleted meanwhile
                    record = {**record, **self.describe_endpoint(EndpointName=record["EndpointName"])}
                    record = {k: _epoch(v) if k.endswith("Time") else v for k, v in record.items()}
            if NameContains and NameContains.lower() not in record["EndpointName"].lower():
                continue
            if StatusEquals and record["EndpointStatus"] != StatusEquals:
                continue
            if not _in_window(record["CreationTime"], CreationTimeAfter, CreationTimeBefore):
                continue
            if not _in_window(record["LastModifiedTime"], LastModifiedTimeAfter, LastModifiedTimeBefore):
                continue
            rows.append({k: record[k] for k in ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")})
        key = {"Name": "EndpointName", "Status": "EndpointStatus"}.get(SortBy, "CreationTime")
        rows.sort(key=lambda r: r[key], reverse=SortOrder == "Descending")
        page, token = _paginate(rows, NextToken, MaxResults)
        out: dict = {"Endpoints": to_datetimes(page)}
        if token:
            out["NextToken"] = token
        return out

    def endpoint_url(self, EndpointName: str) -> str:
        """The InvokeEndpoint URL of an endpoint on the local runtime server (started if needed)."""
        from emulator.services.sagemaker.serve import ensure_runtime_server

        return f"{ensure_runtime_server(self.runtime)}/endpoints/{EndpointName}/invocations"

    # endpoint lifecycle: prepare (extract + load) the pending variants, then shift traffic on the
    # schedule, then retire the old variants.

    def _pending(self, config: dict, deployment: dict | None, now: float) -> dict:
        count = sum(int(v.get("InitialInstanceCount", 1)) for v in config["ProductionVariants"])
        schedule, end = shift_schedule(deployment, count, self.time_scale)
        return {"EndpointConfigName": config["EndpointConfigName"], "Requested": now, "Schedule": schedule,
                "End": end, "ShiftStart": None, "Variants": [], "DeploymentConfig": deployment}

    def _start_worker(self, name: str) -> None:
        from emulator.services.sagemaker.serve import ensure_runtime_server

        with contextlib.suppress(Exception):
            ensure_runtime_server(self.runtime)  # the endpoint must be reachable once InService
        worker = threading.Thread(target=self._prepare, args=(name,), name=f"endpoint-{name}", daemon=True)
        self._workers[name.lower()] = worker
        worker.start()

    def _prepare(self, name: str) -> None:
        """Extract and load the pending variants' models; failures fail the create / roll back the
        update, as SageMaker does when a container will not start."""
        record = self.store.read("endpoints", name)
        pending = (record or {}).get("_hosting", {}).get("Pending")
        if not pending or pending.get("ShiftStart") is not None:
            return
        try:
            config = self._endpoint_config(pending["EndpointConfigName"])
            variants = [self._prepare_variant(v) for v in config["ProductionVariants"]]
            error = None
        except Exception as exc:  # noqa: BLE001 - any failure to load a model is the endpoint's failure
            log.warning("endpoint %s: %s", name, exc)
            variants, error = [], str(getattr(exc, "message", None) or exc)
        with self.store.lock("endpoints", name):
            record = self.store.read("endpoints", name)
            pending_now = (record or {}).get("_hosting", {}).get("Pending")
            if not pending_now or pending_now["Requested"] != pending["Requested"] or pending_now.get("ShiftStart"):
                return  # deleted, superseded or prepared by another process meanwhile
            if error is not None:
                self._fail(record, error)
            else:
                pending_now["Variants"] = variants
                pending_now["ShiftStart"] = _now()
                self._advance(record)
            self.store.write("endpoints", name, record)

    def _prepare_variant(self, variant: dict) -> dict:
        model = self._model(variant["ModelName"])
        container = model.get("PrimaryContainer") or model["Containers"][0]
        kind = image_kind(container.get("Image", ""))
        model_dir = self._extract(container)
        load_predictor(kind, model_dir)
        return {
            "VariantName": variant["VariantName"], "ModelName": variant["ModelName"], "Kind": kind,
            "ModelDir": str(model_dir), "Image": container.get("Image"),
            "Weight": float(variant.get("InitialVariantWeight", 1.0)),
            "InstanceCount": int(variant.get("InitialInstanceCount", 1)),
        }

    def _extract(self, container: dict) -> Path:
        """The model artifact unpacked into a folder named by its content hash (shared, immutable)."""
        source = (container.get("ModelDataSource") or {}).get("S3DataSource")
        url = container.get("ModelDataUrl") or (source or {}).get("S3Uri")
        if not url:
            raise ValidationException("The model has no ModelDataUrl: the XGBoost serving twin needs a trained model.")
        s3 = self.runtime.s3
        artifacts = self.store.root / "model-artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        if source and source.get("CompressionType") == "None":
            digest = hashlib.sha256("\n".join(s3.list(url)).encode() + str(_now()).encode()).hexdigest()[:20]
            target = artifacts / digest
            s3.download_prefix(url, target)
            return target
        if not s3.exists(url):
            raise ValidationException(f"Could not find model data at {url}.")
        tar_path = s3.path(url)
        digest = hashlib.sha256()
        with open(tar_path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        target = artifacts / digest.hexdigest()[:20]
        if not target.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=artifacts))
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

    def _fail(self, record: dict, reason: str) -> None:
        hosting = record["_hosting"]
        hosting["Pending"] = None
        record["LastModifiedTime"] = _now()
        if record["EndpointStatus"] == "Creating":
            record["EndpointStatus"] = "Failed"
            record["FailureReason"] = reason
        else:  # a failed update leaves the old fleet serving
            record["EndpointStatus"] = "InService"
            record["FailureReason"] = f"Update to endpoint config {record.get('EndpointConfigName')!r} failed: {reason}"

    def _advance(self, record: dict) -> bool:
        """Move Creating/Updating on once the traffic shift is over; True if the record changed."""
        hosting = record.get("_hosting") or {}
        pending = hosting.get("Pending")
        if not pending or pending.get("ShiftStart") is None:
            return False
        now = _now()
        if hosting.get("Variants") and now < pending["ShiftStart"] + pending["End"]:
            return False
        hosting["Variants"] = pending["Variants"]
        hosting["Pending"] = None
        record["EndpointConfigName"] = pending["EndpointConfigName"]
        record["ProductionVariants"] = [_variant_summary(v, pending["ShiftStart"]) for v in pending["Variants"]]
        record["EndpointStatus"] = "InService"
        record["LastModifiedTime"] = now
        log.info("endpoint %s InService with config %s", record["EndpointName"], pending["EndpointConfigName"])
        return True

    # -- model registry ---------------------------------------------------------------------

    def create_model_package_group(self, ModelPackageGroupName: str, ModelPackageGroupDescription: str | None = None,
                                   Tags: list | None = None) -> dict:
        arn = self.arn("model-package-group", ModelPackageGroupName)
        with self.store.lock("model-package-groups", ModelPackageGroupName):
            if self.store.read("model-package-groups", ModelPackageGroupName) is not None:
                raise ValidationException(f"Model Package Group already exists: {arn}")
            doc = {"ModelPackageGroupName": ModelPackageGroupName, "ModelPackageGroupArn": arn,
                   "CreationTime": _now(), "ModelPackageGroupStatus": "Completed",
                   "CreatedBy": {"UserProfileName": "local"}}
            if ModelPackageGroupDescription:
                doc["ModelPackageGroupDescription"] = ModelPackageGroupDescription
            self.store.write("model-package-groups", ModelPackageGroupName, doc)
        return {"ModelPackageGroupArn": arn}

    def describe_model_package_group(self, ModelPackageGroupName: str) -> dict:
        return to_datetimes(self._group(ModelPackageGroupName))

    def _group(self, name_or_arn: str) -> dict:
        name = name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        doc = self.store.read("model-package-groups", name) or self._deployed_group(name)
        if doc is None:
            raise ValidationException(f"ModelPackageGroup {self.arn('model-package-group', name)} does not exist.")
        return doc

    def _deployed_group(self, name: str) -> dict | None:
        """A group the stack declares (AWS::SageMaker::ModelPackageGroup), created on first use as
        CloudFormation would have created it at deploy time."""
        deployment = getattr(self.runtime, "deployment", None)
        for resource in getattr(deployment, "resources", None) or []:
            properties = getattr(resource, "properties", None) or {}
            if getattr(resource, "type", "") != "AWS::SageMaker::ModelPackageGroup":
                continue
            if str(properties.get("ModelPackageGroupName", "")).lower() != name.lower():
                continue
            with contextlib.suppress(ValidationException):  # another process created it meanwhile
                self.create_model_package_group(ModelPackageGroupName=properties["ModelPackageGroupName"],
                                                ModelPackageGroupDescription=properties.get("ModelPackageGroupDescription"))
                log.info("model package group %s created from the deployed stack (%s)",
                         properties["ModelPackageGroupName"], resource.logical_id)
            return self.store.read("model-package-groups", name)
        return None

    def create_model_package(self, ModelPackageGroupName: str | None = None, ModelPackageName: str | None = None,
                             ModelApprovalStatus: str | None = None, **rest: Any) -> dict:
        if bool(ModelPackageGroupName) == bool(ModelPackageName):
            raise ValidationException(
                "Specify exactly one of ModelPackageGroupName (a versioned package) and ModelPackageName "
                "(an unversioned package)."
            )
        rest.pop("ClientToken", None)
        rest.pop("Tags", None)
        now = _now()
        if ModelPackageName:
            arn = self.arn("model-package", ModelPackageName)
            key, doc = f"_unversioned.{ModelPackageName}", {"ModelPackageName": ModelPackageName}
        else:
            group = self._group(ModelPackageGroupName)
            name = group["ModelPackageGroupName"]
            with self.store.lock("model-package-groups", name):
                group = self._group(name)
                version = int(group.get("_LatestVersion", 0)) + 1
                group["_LatestVersion"] = version
                if version > 10000:
                    raise ResourceLimitExceeded(f"Model package group {name} has reached its limit of versions.")
                self.store.write("model-package-groups", name, group)
            arn = f"{self.arn('model-package', name)}/{version}"
            key = f"{name}.{version}"
            doc = {"ModelPackageName": name, "ModelPackageGroupName": name, "ModelPackageVersion": version}
        doc.update({
            "ModelPackageArn": arn, "CreationTime": now, "LastModifiedTime": now,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "CertifyForMarketplace": bool(rest.pop("CertifyForMarketplace", False)),
            "ModelApprovalStatus": ModelApprovalStatus or "PendingManualApproval",
            "CreatedBy": {"UserProfileName": "local"},
            "ModelPackageRegistrationType": rest.pop("ModelPackageRegistrationType", "Logged"),
        })
        doc.update(rest)
        self.store.write("model-packages", key, doc)
        log.info("model package %s registered (%s)", arn, doc["ModelApprovalStatus"])
        return {"ModelPackageArn": arn}

    def _package_key(self, name_or_arn: str) -> str:
        match = re.match(r"^arn:[\w-]+:sagemaker:[\w-]+:\d{12}:model-package/(?P<name>[^/]+)(?:/(?P<v>\d+))?$", name_or_arn)
        if match:
            name, version = match.group("name"), match.group("v")
            return f"{name}.{version}" if version else f"_unversioned.{name}"
        return f"_unversioned.{name_or_arn}"

    def _package(self, name_or_arn: str) -> dict:
        key = self._package_key(name_or_arn)
        doc = self.store.read("model-packages", key)
        if doc is None:
            arn = name_or_arn if name_or_arn.startswith("arn:") else self.arn("model-package", name_or_arn)
            raise ValidationException(f"ModelPackage {arn} does not exist.")
        return doc

    def describe_model_package(self, ModelPackageName: str, IncludedData: Any = None) -> dict:
        return to_datetimes(self._package(ModelPackageName))

    def update_model_package(self, ModelPackageArn: str, ModelApprovalStatus: str | None = None,
                             ApprovalDescription: str | None = None, CustomerMetadataProperties: dict | None = None,
                             CustomerMetadataPropertiesToRemove: list | None = None, **rest: Any) -> dict:
        key = self._package_key(ModelPackageArn)
        with self.store.lock("model-packages", key):
            doc = self._package(ModelPackageArn)
            if ModelApprovalStatus:
                doc["ModelApprovalStatus"] = ModelApprovalStatus
            if ApprovalDescription is not None:
                doc["ApprovalDescription"] = ApprovalDescription
            if CustomerMetadataProperties:
                doc.setdefault("CustomerMetadataProperties", {}).update(CustomerMetadataProperties)
            for prop in CustomerMetadataPropertiesToRemove or []:
                doc.get("CustomerMetadataProperties", {}).pop(prop, None)
            additional = rest.pop("AdditionalInferenceSpecificationsToAdd", None)
            if additional:
                doc.setdefault("AdditionalInferenceSpecifications", []).extend(additional)
            rest.pop("ClientToken", None)
            doc.update(rest)
            doc["LastModifiedTime"] = _now()
            doc["LastModifiedBy"] = {"UserProfileName": "local"}
            self.store.write("model-packages", key, doc)
        return {"ModelPackageArn": doc["ModelPackageArn"]}

    def list_model_packages(self, ModelPackageGroupName: str | None = None, ModelApprovalStatus: str | None = None,
                            SortBy: str = "CreationTime", SortOrder: str = "Ascending", MaxResults: int | None = None,
                            NextToken: str | None = None, NameContains: str | None = None,
                            ModelPackageType: str = "Both", CreationTimeAfter: Any = None,
                            CreationTimeBefore: Any = None) -> dict:
        group = self._group(ModelPackageGroupName)["ModelPackageGroupName"] if ModelPackageGroupName else None
        rows = []
        for doc in self.store.all("model-packages"):
            versioned = "ModelPackageVersion" in doc
            if group and doc.get("ModelPackageGroupName") != group:
                continue
            if ModelPackageType == "Versioned" and not versioned or ModelPackageType == "Unversioned" and versioned:
                continue
            if ModelApprovalStatus and doc["ModelApprovalStatus"] != ModelApprovalStatus:
                continue
            if NameContains and NameContains.lower() not in doc["ModelPackageName"].lower():
                continue
            if not _in_window(doc["CreationTime"], CreationTimeAfter, CreationTimeBefore):
                continue
            rows.append({k: doc[k] for k in (
                "ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn",
                "ModelPackageDescription", "CreationTime", "ModelPackageStatus", "ModelApprovalStatus",
                "ModelPackageRegistrationType") if k in doc})
        if SortBy == "Name":
            rows.sort(key=lambda r: (r["ModelPackageName"], r.get("ModelPackageVersion", 0)))
        else:
            rows.sort(key=lambda r: (r["CreationTime"], r.get("ModelPackageVersion", 0)))
        if SortOrder == "Descending":
            rows.reverse()
        page, token = _paginate(rows, NextToken, MaxResults)
        out: dict = {"ModelPackageSummaryList": to_datetimes(page)}
        if token:
            out["NextToken"] = token
        return out


def _variant_summary(variant: dict, since: float) -> dict:
    return {
        "VariantName": variant["VariantName"],
        "DeployedImages": [{"SpecifiedImage": variant["Image"], "ResolvedImage": variant["Image"], "ResolutionTime": since}],
        "CurrentWeight": variant["Weight"], "DesiredWeight": variant["Weight"],
        "CurrentInstanceCount": variant["InstanceCount"], "DesiredInstanceCount": variant["InstanceCount"],
    }


def _capture_summary(capture: dict) -> dict:
    return {"EnableCapture": bool(capture.get("EnableCapture", True)), "CaptureStatus": "Started",
            "CurrentSamplingPercentage": capture.get("InitialSamplingPercentage", 100),
            "DestinationS3Uri": capture.get("DestinationS3Uri", "")}


def _recorded_deployment(deployment: dict) -> dict:
    recorded = copy.deepcopy(deployment)
    rollback = recorded.get("AutoRollbackConfiguration")
    if rollback and rollback.get("Alarms"):
        rollback["EmulatorNote"] = ALARM_NOTE
        log.warning("AutoRollbackConfiguration alarms %s: %s",
                    [a.get("AlarmName") for a in rollback["Alarms"]], ALARM_NOTE)
    return recorded


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _in_window(stamp: float, after: Any, before: Any) -> bool:
    after, before = _epoch(after), _epoch(before)
    return (after is None or stamp > after) and (before is None or stamp < before)


def _paginate(rows: list, token: str | None, max_results: int | None) -> tuple[list, str | None]:
    start = int(token) if token and token.isdigit() else 0
    size = int(max_results) if max_results else 100
    page = rows[start:start + size]
    return page, (str(start + size) if start + size < len(rows) else None)
