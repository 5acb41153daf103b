"""SageMaker hosting, locally: models, endpoint configs and endpoints (create, update, delete).

Each resource is a small class with its status, ARN and Describe answer, stored as one record in
the SageMaker record store, so a ``serve`` process, a second ``run`` and this process all see the
same state. Methods are named after the API operation, take its PascalCase request members and
return its response dict, raising the flat errors of ``exceptions.py`` with SageMaker's wording.

What an endpoint serves is decided here and written into its record under ``_hosting`` (never
returned by Describe; the invoke server routes by it): the prepared variants (model unpacked, its
predictor loaded once to fail early) and, during an update, the pending variants with the
traffic-shift schedule of the DeploymentConfig, and the configuration it served before the last
change (``Previous``). The process that requests a change owns the record until the endpoint is
InService again; if it dies meanwhile, the change is rolled back (``revert_change``) by whoever
looks next — the endpoint goes on serving what it served, and a creation that never served is
removed — so a model never goes live because the run deploying it was killed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Any

from emulator.services.s3.store import S3Error
from emulator.services.sagemaker import serving
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.exceptions import (
    AlreadyExisting,
    EndpointConfigNotFound,
    EndpointNotFound,
    ModelNotFound,
    ValidationException,
)
from emulator.services.sagemaker.listing import in_window, page
from emulator.services.sagemaker.resources import (
    IN_PROGRESS,
    Endpoint,
    EndpointConfig,
    Model,
    capture_summary,
    moment,
    recorded_deployment,
)
from emulator.storage.records import owner_dead

log = logging.getLogger("emulator.services.sagemaker.hosting")

WATCH_INTERVAL = 0.1  # wall seconds between alarm evaluations while an update shifts traffic or bakes
MODELS, CONFIGS, ENDPOINTS = "models", "endpoint-configs", "endpoints"  # record kinds


class HostingBackend:
    """Models, endpoint configs and endpoints of one local account."""

    def __init__(self, context: SageMakerContext):
        self.context = context
        self.records = context.records()
        self.time_scale = float(context.time_scale or 0.0)
        self._workers: dict[str, threading.Thread] = {}
        self._workers_lock = threading.Lock()
        self._closing = threading.Event()

    @property
    def artifacts_root(self) -> Path:
        """Unpacked model artifacts, one folder per content hash, shared by endpoints and transforms."""
        return self.context.layout.sagemaker_work_dir("model-artifacts", "")

    # -- models ---------------------------------------------------------------------------------

    def create_model(self, ModelName: str, PrimaryContainer: dict | None = None, Containers: list | None = None,
                     ExecutionRoleArn: str | None = None, **rest: Any) -> dict:
        arn = self.context.arn("model", ModelName)
        if PrimaryContainer is None and not Containers:
            raise ValidationException("Either PrimaryContainer or Containers must be specified.")
        if PrimaryContainer is not None and Containers:
            raise ValidationException("Specify either PrimaryContainer or Containers, not both: an inference "
                                      "pipeline lists every container in Containers.")
        containers = [PrimaryContainer] if PrimaryContainer is not None else list(Containers)
        if len(containers) > serving.MAX_CONTAINERS:
            raise ValidationException(f"Model {ModelName!r} has {len(containers)} containers; an inference pipeline "
                                      f"holds at most {serving.MAX_CONTAINERS}.")
        mode = (rest.get("InferenceExecutionConfig") or {}).get("Mode", "Serial")
        if len(containers) > 1 and mode != "Serial":
            raise ValidationException(
                f"Model {ModelName!r}: InferenceExecutionConfig Mode {mode!r} is not served locally; the emulator "
                "runs multi-container models in Serial mode (each container's answer is the next one's request)."
            )
        for container in containers:
            serving.container_kind(container)
            self._check_model_data(container)
        spec: dict[str, Any] = {"EnableNetworkIsolation": bool(rest.pop("EnableNetworkIsolation", False))}
        if PrimaryContainer is not None:
            spec["PrimaryContainer"] = PrimaryContainer
        if Containers:
            spec["Containers"] = Containers
        if ExecutionRoleArn:
            spec["ExecutionRoleArn"] = ExecutionRoleArn
        for key in ("VpcConfig", "InferenceExecutionConfig", "DeploymentRecommendation"):
            if key in rest:
                spec[key] = rest[key]
        with self.records.lock(MODELS, ModelName):
            if self.records.exists(MODELS, ModelName):
                raise AlreadyExisting("model", arn)
            self.records.write(MODELS, ModelName, Model(ModelName, arn, dt.datetime.now(dt.UTC), spec).describe())
        log.debug("model %s created (images %s)", ModelName, ", ".join(c.get("Image", "?") for c in containers))
        return {"ModelArn": arn}

    def _check_model_data(self, container: dict) -> None:
        url = container.get("ModelDataUrl")
        source = (container.get("ModelDataSource") or {}).get("S3DataSource")
        if source and source.get("CompressionType") == "Gzip":
            url = url or source.get("S3Uri")
        if not url:
            return
        try:
            found = self.context.s3.exists(url)
        except S3Error as exc:  # a malformed URI: SageMaker rejects it the same way
            raise ValidationException(f"Could not access model data at {url}: {exc}") from exc
        if not found:
            raise ValidationException(f"Could not find model data at {url}.")

    def model(self, name: str) -> Model:
        """The model resource (ModelNotFound, SageMaker's ValidationException, if there is none)."""
        record = self.records.read(MODELS, name)
        if record is None:
            raise ModelNotFound(self.context.arn("model", name))
        return Model.from_record(record)

    def describe_model(self, ModelName: str) -> dict:
        return self.model(ModelName).describe()

    def delete_model(self, ModelName: str) -> dict:
        self.model(ModelName)
        self.records.delete(MODELS, ModelName)
        return {}

    def list_models(self, SortBy: str = "CreationTime", SortOrder: str = "Descending", NextToken: str | None = None,
                    MaxResults: int | None = None, NameContains: str | None = None, CreationTimeBefore: Any = None,
                    CreationTimeAfter: Any = None) -> dict:
        rows = [{"ModelName": r["ModelName"], "ModelArn": r["ModelArn"], "CreationTime": r["CreationTime"]}
                for r in self.records.all(MODELS)]
        return _listed(rows, "ModelName", SortBy, SortOrder, NameContains, CreationTimeAfter, CreationTimeBefore,
                       NextToken, MaxResults, "Models")

    def predictor(self, model_name: str, batch: bool = False) -> serving.Predictor:
        """The loaded predictor of a model (one container, or its serial pipeline): a transform job
        scores with it."""
        served = serving.prepare_model(self.model(model_name).spec, self.context.s3, self.artifacts_root)
        return serving.model_predictor(served, batch=batch)

    # -- endpoint configs -----------------------------------------------------------------------

    def create_endpoint_config(self, EndpointConfigName: str, ProductionVariants: list, **rest: Any) -> dict:
        arn = self.context.arn("endpoint-config", EndpointConfigName)
        names = [v["VariantName"] for v in ProductionVariants]
        if len(set(names)) != len(names):
            raise ValidationException(f"Variant names must be unique in endpoint configuration {EndpointConfigName!r}: {names}")
        for variant in ProductionVariants:
            self.model(variant["ModelName"])
            if "ServerlessConfig" not in variant and "InstanceType" not in variant:
                raise ValidationException(
                    f"Production variant {variant['VariantName']!r} must specify InstanceType or ServerlessConfig."
                )
        spec = {key: rest[key] for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig",
                                           "ShadowProductionVariants", "EnableNetworkIsolation", "ExecutionRoleArn",
                                           "VpcConfig") if key in rest}
        config = EndpointConfig(EndpointConfigName, arn, dt.datetime.now(dt.UTC), ProductionVariants, spec)
        with self.records.lock(CONFIGS, EndpointConfigName):
            if self.records.exists(CONFIGS, EndpointConfigName):
                raise AlreadyExisting("endpoint configuration", arn)
            self.records.write(CONFIGS, EndpointConfigName, config.describe())
        log.debug("endpoint config %s created (%s)", EndpointConfigName,
                 ", ".join(f"{v['VariantName']}->{v['ModelName']}" for v in ProductionVariants))
        return {"EndpointConfigArn": arn}

    def endpoint_config(self, name: str) -> EndpointConfig:
        record = self.records.read(CONFIGS, name)
        if record is None:
            raise EndpointConfigNotFound(self.context.arn("endpoint-config", name))
        return EndpointConfig.from_record(record)

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict:
        return self.endpoint_config(EndpointConfigName).describe()

    def delete_endpoint_config(self, EndpointConfigName: str) -> dict:
        self.endpoint_config(EndpointConfigName)
        self.records.delete(CONFIGS, EndpointConfigName)
        return {}

    def list_endpoint_configs(self, SortBy: str = "CreationTime", SortOrder: str = "Descending",
                              NextToken: str | None = None, MaxResults: int | None = None, NameContains: str | None = None,
                              CreationTimeBefore: Any = None, CreationTimeAfter: Any = None) -> dict:
        rows = [{"EndpointConfigName": r["EndpointConfigName"], "EndpointConfigArn": r["EndpointConfigArn"],
                 "CreationTime": r["CreationTime"]} for r in self.records.all(CONFIGS)]
        return _listed(rows, "EndpointConfigName", SortBy, SortOrder, NameContains, CreationTimeAfter,
                       CreationTimeBefore, NextToken, MaxResults, "EndpointConfigs")

    # -- endpoints ------------------------------------------------------------------------------

    def _read_endpoint(self, name: str) -> Endpoint | None:
        record = self.records.read(ENDPOINTS, name)
        return Endpoint.from_record(record) if record is not None else None

    def _write_endpoint(self, endpoint: Endpoint, *, owned: bool = False) -> None:
        self.records.write(ENDPOINTS, endpoint.name, endpoint.to_record(), owned=owned)

    def endpoint(self, name: str) -> Endpoint:
        endpoint = self._read_endpoint(name)
        if endpoint is None:
            raise EndpointNotFound(self.context.arn("endpoint", name))
        return endpoint

    def create_endpoint(self, EndpointName: str, EndpointConfigName: str, DeploymentConfig: dict | None = None,
                        Tags: list | None = None, **_: Any) -> dict:
        arn = self.context.arn("endpoint", EndpointName)
        config = self.endpoint_config(EndpointConfigName)
        for variant in config.variants:
            self.model(variant["ModelName"])
        with self.records.lock(ENDPOINTS, EndpointName):
            if self.records.exists(ENDPOINTS, EndpointName):
                raise AlreadyExisting("endpoint", arn)
            now = time.time()
            capture = config.spec.get("DataCaptureConfig")
            endpoint = Endpoint(EndpointName, arn, EndpointConfigName, "Creating", moment(now), moment(now),
                                data_capture=capture_summary(capture) if capture else None,
                                pending=self._pending(config, None, now), deployment_config=DeploymentConfig)
            self._write_endpoint(endpoint, owned=True)
        log.debug("endpoint %s creating with config %s", EndpointName, EndpointConfigName)
        self._start_worker(EndpointName)
        return {"EndpointArn": arn}

    def update_endpoint(self, EndpointName: str, EndpointConfigName: str, DeploymentConfig: dict | None = None,
                        RetainAllVariantProperties: bool = False, **_: Any) -> dict:
        arn = self.context.arn("endpoint", EndpointName)
        config = self.endpoint_config(EndpointConfigName)
        with self.records.lock(ENDPOINTS, EndpointName):
            endpoint = self.endpoint(EndpointName)
            endpoint.advance(time.time())
            if endpoint.status in ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"):
                raise ValidationException(f'Cannot update in-progress endpoint "{arn}".')
            if endpoint.status == "Failed":
                raise ValidationException(
                    f'Cannot update endpoint "{arn}" because it is in Failed state; delete it and create it again.'
                )
            now = time.time()
            endpoint.status = "Updating"
            endpoint.last_modified_time = moment(now)
            endpoint.failure_reason = None
            endpoint.pending = self._pending(config, DeploymentConfig, now)
            if DeploymentConfig:
                endpoint.last_deployment_config = recorded_deployment(DeploymentConfig)
            self._write_endpoint(endpoint, owned=True)
        log.debug("endpoint %s updating to config %s", EndpointName, EndpointConfigName)
        self._start_worker(EndpointName)
        return {"EndpointArn": arn}

    def describe_endpoint(self, EndpointName: str) -> dict:
        endpoint = self.endpoint(EndpointName)
        if endpoint.status in IN_PROGRESS:
            if owner_dead(self.records.read(ENDPOINTS, EndpointName)):
                # The process changing it exited (killed, crashed) before it was InService: roll back.
                self.revert_change(EndpointName, None, "the emulator process that requested it exited before "
                                                       "the endpoint was InService")
                endpoint = self._read_endpoint(EndpointName)
                if endpoint is None:
                    raise EndpointNotFound(self.context.arn("endpoint", EndpointName))
                return endpoint.describe()
            endpoint = self._progress(EndpointName) or endpoint
        return endpoint.describe()

    def _progress(self, name: str) -> Endpoint | None:
        """Move an update on: its rollback alarms first (evaluated now), then the traffic schedule."""
        with self.records.lock(ENDPOINTS, name):
            endpoint = self._read_endpoint(name)
            if endpoint is None:
                return None
            now = time.time()
            alarms = endpoint.rollback_alarms()
            firing = self.context.alarms_in_alarm(alarms) if alarms and self.context.alarms_in_alarm else []
            if firing:
                endpoint.roll_back(firing, now)
                self._write_endpoint(endpoint)
            elif endpoint.advance(now):
                self._write_endpoint(endpoint)
            return endpoint

    def _watch(self, name: str) -> None:
        """While an update shifts traffic or bakes, evaluate its alarms even when nobody describes
        the endpoint (an update from the CLI rolls back as promptly as one a state machine polls)."""
        while not self._closing.wait(WATCH_INTERVAL):
            record = self.records.read(ENDPOINTS, name)
            if record is None or record.get("EndpointStatus") not in IN_PROGRESS or owner_dead(record):
                return  # ended, or its owner died (the next reader rolls it back)
            endpoint = self._progress(name)
            if endpoint is None or endpoint.status not in IN_PROGRESS:
                return

    def revert_change(self, name: str, config_name: str | None, why: str) -> str | None:
        """Undo the endpoint's change to ``config_name`` (any in-progress change when None), made by
        a process or execution that died: an update in progress or done goes back to the configuration
        served before it, a creation is removed. What was done ("rolled back", "removed"), or None
        when the endpoint is not in that change (another change superseded it, or it is gone)."""
        with self.records.lock(ENDPOINTS, name):
            endpoint = self._read_endpoint(name)
            if endpoint is None:
                return None
            pending = endpoint.pending
            target = pending["EndpointConfigName"] if pending else endpoint.config_name
            if config_name is not None and target != config_name or config_name is None and pending is None:
                return None
            now = dt.datetime.now(dt.UTC)
            if pending is not None and endpoint.live:  # an update in progress: the old fleet never stopped
                endpoint.pending = None
            elif pending is None and endpoint.previous:  # an update done: the previous fleet comes back
                previous = endpoint.previous
                endpoint.live, endpoint.config_name = previous["Variants"], previous["EndpointConfigName"]
                endpoint.production_variants = previous.get("ProductionVariants") or []
                endpoint.previous = None
            else:  # a creation, in progress or done: it served nothing before
                self.records.delete(ENDPOINTS, name)
                log.warning("endpoint %s removed: its creation with config %s is undone (%s)", name, target, why)
                return "removed"
            endpoint.status, endpoint.last_modified_time = "InService", now
            endpoint.failure_reason = f"Update to endpoint config {target!r} rolled back: {why}"
            self._write_endpoint(endpoint)
        log.warning("endpoint %s rolled back to config %s: the change to %s is undone (%s)",
                    name, endpoint.config_name, target, why)
        return "rolled back"

    def recover(self) -> list[str]:
        """Roll back every endpoint change whose owner process died (the names of those endpoints)."""
        reverted = []
        for name in self.records.names(ENDPOINTS):
            record = self.records.read(ENDPOINTS, name)
            if (record and record.get("EndpointStatus") in IN_PROGRESS and owner_dead(record)
                    and self.revert_change(record["EndpointName"], None, "the emulator process that requested it "
                                                                         "exited before the endpoint was InService")):
                reverted.append(record["EndpointName"])
        return reverted

    def delete_endpoint(self, EndpointName: str) -> dict:
        with self.records.lock(ENDPOINTS, EndpointName):
            self.endpoint(EndpointName)
            self.records.delete(ENDPOINTS, EndpointName)
        log.info("endpoint %s deleted", EndpointName)
        return {}

    def list_endpoints(self, SortBy: str = "CreationTime", SortOrder: str = "Descending", NextToken: str | None = None,
                       MaxResults: int | None = None, NameContains: str | None = None, StatusEquals: str | None = None,
                       CreationTimeBefore: Any = None, CreationTimeAfter: Any = None,
                       LastModifiedTimeBefore: Any = None, LastModifiedTimeAfter: Any = None) -> dict:
        rows = []
        for name in self.records.names(ENDPOINTS):
            try:
                endpoint = self.endpoint(name)
                if endpoint.status in IN_PROGRESS:  # the status a Describe would give now
                    self.describe_endpoint(EndpointName=name)
                    endpoint = self.endpoint(name)
            except EndpointNotFound:  # deleted meanwhile
                continue
            if NameContains and NameContains.lower() not in endpoint.name.lower():
                continue
            if StatusEquals and endpoint.status != StatusEquals:
                continue
            if not in_window(endpoint.creation_time, CreationTimeAfter, CreationTimeBefore):
                continue
            if not in_window(endpoint.last_modified_time, LastModifiedTimeAfter, LastModifiedTimeBefore):
                continue
            rows.append(endpoint.summary())
        key = {"Name": "EndpointName", "Status": "EndpointStatus"}.get(SortBy, "CreationTime")
        rows.sort(key=lambda r: r[key], reverse=SortOrder == "Descending")
        return page(rows, NextToken, MaxResults, "Endpoints")

    def endpoint_url(self, EndpointName: str) -> str:
        """The InvokeEndpoint URL of an endpoint on the local invoke server (started if needed)."""
        return f"{self.context.invoke_server_url()}/endpoints/{EndpointName}/invocations"

    def serving_records(self) -> list[dict]:
        """Every endpoint record as the invoke server reads it (for releasing retired models)."""
        return self.records.all(ENDPOINTS)

    # endpoint lifecycle: prepare (extract + load) the pending variants, then shift traffic on the
    # schedule, then retire the old variants.

    def _pending(self, config: EndpointConfig, deployment: dict | None, now: float) -> dict:
        count = sum(int(v.get("InitialInstanceCount", 1)) for v in config.variants)
        schedule, end = serving.shift_schedule(deployment, count, self.time_scale)
        return {"EndpointConfigName": config.name, "Requested": now, "Schedule": schedule,
                "End": end, "ShiftStart": None, "Variants": [], "DeploymentConfig": deployment}

    def _start_worker(self, name: str) -> None:
        try:
            self.context.invoke_server_url()  # the endpoint must be reachable once InService
        except Exception as error:  # noqa: BLE001 - serving is best effort; Describe still works
            log.warning("endpoint %s: the invoke server did not start: %s", name, error)
        worker = threading.Thread(target=self._prepare_and_watch, args=(name,), name=f"endpoint-{name}", daemon=True)
        with self._workers_lock:
            self._workers[name.lower()] = worker
        worker.start()

    def join_workers(self, timeout: float = 30.0) -> None:
        """Wait for every endpoint preparation started here (tests, shutdown)."""
        with self._workers_lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.join(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop watching updates and wait for the preparations started here (shutdown)."""
        self._closing.set()
        self.join_workers(timeout)

    def _prepare_and_watch(self, name: str) -> None:
        self._prepare(name)
        endpoint = self._read_endpoint(name)
        if endpoint is not None and endpoint.rollback_alarms() and self.context.alarms_in_alarm:
            threading.Thread(target=self._watch, args=(name,), name=f"endpoint-{name}-alarms", daemon=True).start()

    def _prepare(self, name: str) -> None:
        """Extract and load the pending variants' models; failures fail the create / roll back the
        update, as SageMaker does when a container will not start."""
        endpoint = self._read_endpoint(name)
        if endpoint is None or not endpoint.unprepared:
            return
        requested = endpoint.pending["Requested"]
        try:
            config = self.endpoint_config(endpoint.pending["EndpointConfigName"])
            # each variant carries its config's DataCaptureConfig: the invoke path captures by it
            capture = {"DataCapture": config.spec["DataCaptureConfig"]} if config.spec.get("DataCaptureConfig") else {}
            variants = [self._prepare_variant(v) | capture for v in config.variants]
            error = None
        except Exception as exc:  # noqa: BLE001 - any failure to load a model is the endpoint's failure
            log.warning("endpoint %s: %s", name, exc)
            variants, error = [], str(getattr(exc, "message", None) or exc)
        with self.records.lock(ENDPOINTS, name):
            endpoint = self._read_endpoint(name)
            if endpoint is None or not endpoint.unprepared or endpoint.pending["Requested"] != requested:
                return  # deleted, superseded or prepared by another process meanwhile
            if error is not None:
                endpoint.fail(error)
            else:
                endpoint.pending["Variants"] = variants
                endpoint.pending["ShiftStart"] = time.time()
                endpoint.advance(time.time())
            # still shifting: this process stays the owner (a change whose owner died is rolled back)
            self._write_endpoint(endpoint, owned=endpoint.pending is not None)

    def _prepare_variant(self, variant: dict) -> dict:
        model = self.model(variant["ModelName"])
        served = serving.prepare_model(model.spec, self.context.s3, self.artifacts_root)
        serving.model_predictor(served)  # load now: a container that cannot start fails the deployment
        first = model.containers[0]
        record = {
            "VariantName": variant["VariantName"], "ModelName": variant["ModelName"], "Kind": served[0].kind,
            "ModelDir": str(served[0].model_dir), "Image": first.get("Image"),
            "Weight": float(variant.get("InitialVariantWeight", 1.0)),
            "InstanceCount": int(variant.get("InitialInstanceCount", 1)),
        }
        if len(served) > 1 or served[0].environment:  # a pipeline, or a container configured by Environment
            record["Containers"] = [s.to_record() | {"Image": c.get("Image")} for s, c in zip(served, model.containers)]
        return record


def _listed(rows: list[dict], name_key: str, sort_by: str, sort_order: str, name_contains: str | None,
            after: Any, before: Any, next_token: str | None, max_results: int | None, list_key: str) -> dict:
    """ListModels / ListEndpointConfigs: name and time filters, sort, one page."""
    rows = [r for r in rows if (not name_contains or name_contains.lower() in r[name_key].lower())
            and in_window(r["CreationTime"], after, before)]
    rows.sort(key=lambda r: r[name_key] if sort_by == "Name" else r["CreationTime"], reverse=sort_order == "Descending")
    return page(rows, next_token, max_results, list_key)


