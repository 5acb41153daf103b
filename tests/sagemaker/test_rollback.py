"""Rollouts decided by alarms, offline as on AWS: real XGBoost models behind the real invoke server,
a bounded client loop of real requests through boto3, the template's rollback alarms (from the
EndpointAlarms construct) evaluated by the local CloudWatch on the endpoint's own metrics, and the
pipeline's DeploymentConfig (validate_input.deployment_config).

The faulty model is a real booster whose serving fails on a segment of the data (long shells): the
fault travels inside its model.tar.gz (a `fault` file read by the loader below), so only the fleet
serving that artifact answers 5XX."""

from __future__ import annotations

import functools
import io
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from aws_cdk.assertions import Template
from botocore.exceptions import ClientError
from sm_testkit import DATA, PROJECT_ROOT, ROLE, XGBOOST_IMAGE
from test_hosting import runtime_client

from containers.xgboost import serving as twin
from containers.xgboost.artifacts import MODEL_FILE
from emulator.services.cloudwatch import ALARM, Alarm, CloudWatchBackend
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker import serving
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.services.sagemaker.images import resolve_image
from emulator.services.sagemaker.invoke_server import ensure_invoke_server, stop_in_process_servers
from emulator.storage.layout import Layout
from lambdas.validate_input.handler import deployment_config
from stacks.monitoring import EndpointAlarms, endpoint_alarm_names

TIME_SCALE = 0.01  # a 60 s alarm period lasts 0.6 s; the 300 s bake 3 s
FEATURES = ["length", "diameter", "height", "whole weight", "shucked weight", "viscera weight", "shell weight"]
FAULTY_LENGTH = 0.6  # the faulty model fails on shells longer than this (about a quarter of the data)


def faulty_or_real(model_dir: Path, batch: bool = False):
    """The XGBoost twin, failing on the segment its artifact's `fault` file names (a model bug)."""
    predictor = twin.load_predictor(model_dir, batch=batch)
    fault = Path(model_dir) / "fault"
    if not fault.is_file():
        return predictor
    threshold = float(fault.read_text())

    class Faulty:
        def invoke(self, body: bytes, content_type: str, accept: str | None):
            if float(body.split(b",", 1)[0]) > threshold:
                raise FloatingPointError("tree 17 produced a NaN leaf for this segment")
            return predictor.invoke(body, content_type, accept)

    return Faulty()


def archive(booster: xgb.Booster, fault: float | None = None) -> bytes:
    files = {MODEL_FILE: bytes(booster.save_raw("ubj"))}
    if fault is not None:
        files["fault"] = str(fault).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as out:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return pd.read_csv(DATA / "abalone.csv")[FEATURES].to_numpy(np.float32)


@pytest.fixture(scope="module")
def boosters(rows) -> dict[str, xgb.Booster]:
    labels = pd.read_csv(DATA / "abalone.csv")["rings"].to_numpy(np.float32)
    train = functools.partial(xgb.train, {"objective": "reg:squarederror", "max_depth": 3, "nthread": 1}, xgb.DMatrix(rows, label=labels))
    return {"old": train(num_boost_round=5), "new": train(num_boost_round=25)}


@pytest.fixture(scope="module")
def template_alarms() -> list[Alarm]:
    """The rollback alarms exactly as the stack declares them."""
    stack = cdk.Stack(cdk.App(), "Alarms")
    EndpointAlarms(stack, "EndpointAlarms", endpoint_name="ep", name_prefix="MlPipeline")
    alarms = Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm")
    return [Alarm.from_properties(resource["Properties"]) for resource in alarms.values()]


@pytest.fixture
def world(tmp_path, monkeypatch, template_alarms):
    monkeypatch.setitem(serving.PREDICTOR_LOADERS, "xgboost", faulty_or_real)
    layout = Layout.at(tmp_path / "state")
    s3 = LocalS3(tmp_path / "s3")
    s3.create_bucket("bucket")
    cloudwatch = CloudWatchBackend(layout.cloudwatch_dir, template_alarms, time_scale=TIME_SCALE)
    context = SageMakerContext(layout=layout, s3=s3, project_root=PROJECT_ROOT,
                               resolve_image=functools.partial(resolve_image, project_root=PROJECT_ROOT),
                               invoke_server_url=functools.partial(ensure_invoke_server, layout),
                               time_scale=TIME_SCALE, alarms_in_alarm=cloudwatch.alarms_in_alarm)
    backend = SageMakerBackend(context)
    yield backend, cloudwatch
    backend.close()
    stop_in_process_servers()
    serving.forget_predictors()


def model(backend: SageMakerBackend, name: str, booster: xgb.Booster, instances: int = 1, fault: float | None = None) -> str:
    uri = f"s3://bucket/models/{name}/model.tar.gz"
    backend.context.s3.put_bytes(uri, archive(booster, fault))
    backend.call("CreateModel", {"ModelName": name, "ExecutionRoleArn": ROLE,
                                 "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": uri}})
    backend.call("CreateEndpointConfig", {"EndpointConfigName": f"{name}-config", "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": instances, "InstanceType": "ml.m5.large"}]})
    return f"{name}-config"


def wait_until(predicate, timeout: float = 30, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(interval)
    return value


@dataclass
class Traffic:
    """A bounded client loop: real requests from several threads, each answer kept with its time."""

    client: object
    rows: np.ndarray
    answers: list[tuple[float, int, str, float | None]] = field(default_factory=list)  # (time, row, kind, value)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, seed: int, limit: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(limit):
            if self.stop.is_set():
                return
            index = int(rng.integers(len(self.rows)))
            body = ",".join(repr(float(v)) for v in self.rows[index])
            try:
                answer = self.client.invoke_endpoint(EndpointName="ep", ContentType="text/csv", Body=body)
                self.answers.append((time.time(), index, "ok", float(answer["Body"].read())))
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ModelError", error
                self.answers.append((time.time(), index, "error", None))
            time.sleep(0.004)

    def start(self, threads: int = 3, limit: int = 3000) -> list[threading.Thread]:
        workers = [threading.Thread(target=self.run, args=(seed, limit)) for seed in range(threads)]
        for worker in workers:
            worker.start()
        return workers


def fleet(value: float | None, row: np.ndarray, boosters: dict) -> str:
    if value is None:
        return "error"
    for name, booster in boosters.items():
        if value == pytest.approx(float(booster.predict(xgb.DMatrix(row[None, :]))[0]), rel=1e-5):
            return name
    return "?"


def deploy_then_update(backend, boosters, rows, instances: int, faulty: bool):
    """Create the endpoint on the old model, start traffic, update to the new one with the pipeline's
    DeploymentConfig; returns (traffic, workers, update start time)."""
    backend.call("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": model(backend, "old", boosters["old"], instances)})
    wait_until(lambda: backend.call("DescribeEndpoint", {"EndpointName": "ep"})["EndpointStatus"] == "InService")
    new_config = model(backend, "new", boosters["new"], instances, fault=FAULTY_LENGTH if faulty else None)
    traffic = Traffic(runtime_client(backend.hosting.endpoint_url("ep").split("/endpoints/")[0]), rows)
    workers = traffic.start()
    wait_until(lambda: len(traffic.answers) > 30)
    began = time.time()
    backend.call("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": new_config,
                                    "DeploymentConfig": deployment_config(instances, endpoint_alarm_names("MlPipeline"))})
    return traffic, workers, began


def finish(traffic: Traffic, workers: list[threading.Thread], after: float) -> None:
    """Let the loop run ``after`` more seconds, then stop it."""
    time.sleep(after)
    traffic.stop.set()
    for worker in workers:
        worker.join(30)


@pytest.mark.parametrize("instances, share", [(1, 1.0), (2, 0.5)], ids=["all-at-once", "canary"])
def test_a_model_failing_on_a_segment_is_rolled_back_by_its_alarm_during_the_bake(world, boosters, rows, instances, share):
    backend, cloudwatch = world
    traffic, workers, began = deploy_then_update(backend, boosters, rows, instances, faulty=True)
    described = wait_until(lambda: (d := backend.call("DescribeEndpoint", {"EndpointName": "ep"}))["EndpointStatus"] == "InService" and d)
    rolled_back = time.time()
    finish(traffic, workers, after=1.0)

    # the alarm fired within the baking period (3 s) and SageMaker's rollback is what Describe shows
    assert rolled_back - began < 300 * TIME_SCALE
    assert described["EndpointConfigName"] == "old-config" and "PendingDeploymentSummary" not in described
    assert "Automatic rollback" in described["FailureReason"] and "MlPipeline-endpoint-5xx" in described["FailureReason"]
    assert cloudwatch.describe_alarms(AlarmNames=["MlPipeline-endpoint-5xx"])["MetricAlarms"][0]["StateValue"] == ALARM
    before = [a for a in traffic.answers if a[0] < began]
    during = [a for a in traffic.answers if began <= a[0] <= rolled_back + 0.2]
    after = [a for a in traffic.answers if a[0] > rolled_back + 0.2]
    assert before and during and len(after) > 20
    # errors came only from the new fleet's share, on the segment its model fails, only during the bake
    errors = [a for a in traffic.answers if a[2] == "error"]
    assert errors and all(began <= a[0] <= rolled_back + 0.2 for a in errors)
    assert all(float(rows[a[1]][0]) > FAULTY_LENGTH for a in errors)  # as the request carried it (float32 -> text)
    fleets = [fleet(a[3], rows[a[1]], boosters) for a in during]
    assert "?" not in fleets
    new_share = sum(f != "old" for f in fleets) / len(fleets)
    assert new_share <= share + 0.2  # the canary stopped at its share: the rest never moved
    if share < 1.0:
        assert "old" in fleets  # during the canary the old fleet kept serving its half
    # afterwards the old model answers everything
    assert {fleet(a[3], rows[a[1]], boosters) for a in after} == {"old"}


def test_a_healthy_update_under_the_same_traffic_completes_with_zero_failed_requests(world, boosters, rows):
    backend, cloudwatch = world
    traffic, workers, began = deploy_then_update(backend, boosters, rows, 1, faulty=False)
    described = wait_until(lambda: (d := backend.call("DescribeEndpoint", {"EndpointName": "ep"}))["EndpointConfigName"] == "new-config" and d)
    finish(traffic, workers, after=0.5)
    assert described["EndpointStatus"] == "InService" and "FailureReason" not in described
    assert time.time() - began >= 300 * TIME_SCALE  # it baked the whole period under the alarms' watch
    assert [a for a in traffic.answers if a[2] == "error"] == []
    assert {fleet(a[3], rows[a[1]], boosters) for a in traffic.answers if a[0] < began} == {"old"}
    assert fleet(traffic.answers[-1][3], rows[traffic.answers[-1][1]], boosters) == "new"
    assert cloudwatch.describe_alarms(AlarmNames=["MlPipeline-endpoint-5xx"])["MetricAlarms"][0]["StateValue"] != ALARM
