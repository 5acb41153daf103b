"""Hosting: models, endpoint configs, endpoints (create, update, blue/green) and the model registry,
with real xgboost models served through the real runtime server and boto3's sagemaker-runtime."""

from __future__ import annotations

import threading
import time

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from botocore.config import Config
from sm_testkit import DATA, ROLE, XGBOOST_IMAGE

from containers.xgboost.artifacts import model_archive
from emulator.services.sagemaker import serving
from emulator.services.sagemaker.exceptions import ENDPOINT_NOT_FOUND_TEXT, EndpointNotFound, ValidationException
from emulator.services.sagemaker.hosting import HostingBackend

FEATURES = ["length", "diameter", "height", "whole weight", "shucked weight", "viscera weight", "shell weight"]


def abalone() -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(DATA / "abalone.csv")
    return frame[FEATURES].to_numpy(np.float32), frame["rings"].to_numpy(np.float32)


def train_booster(rounds: int, depth: int = 3) -> xgb.Booster:
    x, y = abalone()
    return xgb.train({"objective": "reg:squarederror", "max_depth": depth, "nthread": 1}, xgb.DMatrix(x, label=y), rounds)


def put_model(s3, booster: xgb.Booster, uri: str) -> str:
    """The built-in algorithm's artifact: model.tar.gz holding one file named xgboost-model."""
    s3.put_bytes(uri, model_archive(booster))
    return uri


def runtime_client(base_url: str):
    return boto3.client("sagemaker-runtime", endpoint_url=base_url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=Config(retries={"max_attempts": 1}, max_pool_connections=16))


def wait_status(hosting: HostingBackend, name: str, wanted: str, timeout: float = 20) -> dict:
    deadline = time.time() + timeout
    while True:
        described = hosting.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] == wanted or time.time() > deadline:
            return described
        time.sleep(0.02)


def csv_row(row: np.ndarray) -> str:
    return ",".join(repr(float(v)) for v in row)


@pytest.fixture(scope="module")
def boosters() -> dict[str, xgb.Booster]:
    return {"v1": train_booster(5), "v2": train_booster(30, depth=4)}


@pytest.fixture
def hosting(backend):
    return backend.hosting


def deploy_model(hosting: HostingBackend, booster: xgb.Booster, name: str) -> str:
    put_model(hosting.context.s3, booster, f"s3://bucket/models/{name}/model.tar.gz")
    hosting.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                         PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": f"s3://bucket/models/{name}/model.tar.gz"})
    hosting.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    return f"{name}-config"


# -- models and configs -----------------------------------------------------------------------


def test_create_and_describe_model_round_trips_the_request(hosting, boosters):
    put_model(hosting.context.s3, boosters["v1"], "s3://bucket/m/model.tar.gz")
    arn = hosting.create_model(ModelName="Abalone-Model", ExecutionRoleArn=ROLE,
                               PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/m/model.tar.gz"})["ModelArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:model/abalone-model"
    described = hosting.describe_model(ModelName="Abalone-Model")
    assert described["ModelName"] == "Abalone-Model"
    assert described["PrimaryContainer"]["ModelDataUrl"] == "s3://bucket/m/model.tar.gz"
    assert described["CreationTime"].tzinfo is not None
    with pytest.raises(ValidationException, match=r'^Cannot create already existing model "arn:aws:sagemaker:us-east-1:000000000000:model/abalone-model"\.$'):
        hosting.create_model(ModelName="Abalone-Model", ExecutionRoleArn=ROLE,
                             PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/m/model.tar.gz"})


def test_model_errors_name_what_is_wrong(hosting):
    with pytest.raises(ValidationException, match=r'Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/nope"\.'):
        hosting.describe_model(ModelName="nope")
    with pytest.raises(ValidationException, match=r"Could not find model data at s3://bucket/missing/model.tar.gz"):
        hosting.create_model(ModelName="m", ExecutionRoleArn=ROLE,
                             PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/missing/model.tar.gz"})
    with pytest.raises(ValidationException, match=r"my-own-image"):
        hosting.create_model(ModelName="m", ExecutionRoleArn=ROLE,
                             PrimaryContainer={"Image": "1.dkr.ecr.us-east-1.amazonaws.com/my-own-image:1"})


def test_endpoint_config_needs_existing_models(hosting, boosters):
    with pytest.raises(ValidationException, match=r'Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/ghost"'):
        hosting.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "ghost", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    config = deploy_model(hosting, boosters["v1"], "cfgmodel")
    described = hosting.describe_endpoint_config(EndpointConfigName=config)
    assert described["ProductionVariants"][0]["ModelName"] == "cfgmodel"
    with pytest.raises(ValidationException, match="Cannot create already existing endpoint configuration"):
        hosting.create_endpoint_config(EndpointConfigName=config, ProductionVariants=described["ProductionVariants"])
    with pytest.raises(ValidationException, match=r'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/none"'):
        hosting.describe_endpoint_config(EndpointConfigName="none")


# -- endpoints ----------------------------------------------------------------------------------


def test_endpoint_goes_creating_to_in_service_and_serves_the_model(hosting, boosters):
    config = deploy_model(hosting, boosters["v1"], "abalone-v1")
    arn = hosting.create_endpoint(EndpointName="abalone", EndpointConfigName=config)["EndpointArn"]
    assert arn.endswith(":endpoint/abalone")
    first = hosting.describe_endpoint(EndpointName="abalone")
    assert first["EndpointStatus"] in ("Creating", "InService")
    described = wait_status(hosting, "abalone", "InService")
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert described["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == XGBOOST_IMAGE

    url = hosting.endpoint_url("abalone")
    assert url.startswith("http://127.0.0.1:") and url.endswith("/endpoints/abalone/invocations")
    x, _ = abalone()
    client = runtime_client(url.split("/endpoints/")[0])
    response = client.invoke_endpoint(EndpointName="abalone", ContentType="text/csv", Body=csv_row(x[0]))
    assert response["InvokedProductionVariant"] == "AllTraffic"
    expected = boosters["v1"].predict(xgb.DMatrix(x[:1]))[0]
    assert float(response["Body"].read()) == pytest.approx(expected, rel=1e-6)

    with pytest.raises(ValidationException, match=r'^Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/abalone"\.$'):
        hosting.create_endpoint(EndpointName="abalone", EndpointConfigName=config)
    listed = hosting.list_endpoints()["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [("abalone", "InService")]


def test_describe_missing_endpoint_is_a_validation_error(hosting):
    with pytest.raises(ValidationException) as raised:
        hosting.describe_endpoint(EndpointName="missing")
    assert raised.value.message == 'Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/missing".'
    assert raised.value.message.startswith(ENDPOINT_NOT_FOUND_TEXT) and raised.value.code == "ValidationException"
    with pytest.raises(ValidationException, match="Could not find endpoint"):
        hosting.update_endpoint(EndpointName="missing", EndpointConfigName="whatever")
    with pytest.raises(EndpointNotFound, match=ENDPOINT_NOT_FOUND_TEXT):
        hosting.delete_endpoint(EndpointName="missing")


def test_broken_model_artifact_fails_the_endpoint_with_a_reason(hosting):
    hosting.context.s3.put_bytes("s3://bucket/bad/model.tar.gz", b"this is not a tarball")
    hosting.create_model(ModelName="bad", ExecutionRoleArn=ROLE,
                         PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/bad/model.tar.gz"})
    hosting.create_endpoint_config(EndpointConfigName="bad-config", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "bad", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    hosting.create_endpoint(EndpointName="bad-endpoint", EndpointConfigName="bad-config")
    described = wait_status(hosting, "bad-endpoint", "Failed")
    assert described["EndpointStatus"] == "Failed"
    assert "not a valid model.tar.gz" in described["FailureReason"]


def test_update_swaps_the_model_with_no_failed_request_in_flight(hosting, boosters):
    deploy_model(hosting, boosters["v1"], "swap-v1")
    hosting.create_endpoint(EndpointName="swap", EndpointConfigName="swap-v1-config")
    wait_status(hosting, "swap", "InService")
    base = hosting.endpoint_url("swap").split("/endpoints/")[0]
    x, _ = abalone()
    rows = x[:50]
    old = boosters["v1"].predict(xgb.DMatrix(rows))
    new = boosters["v2"].predict(xgb.DMatrix(rows))

    failures: list[Exception] = []
    seen = {"old": 0, "new": 0}
    stop = threading.Event()

    def hammer() -> None:
        client = runtime_client(base)
        i = 0
        while not stop.is_set():
            row = i % len(rows)
            try:
                body = client.invoke_endpoint(EndpointName="swap", ContentType="text/csv", Body=csv_row(rows[row]))["Body"].read()
                value = float(body)
                if value == pytest.approx(old[row], rel=1e-6):
                    seen["old"] += 1
                elif value == pytest.approx(new[row], rel=1e-6):
                    seen["new"] += 1
                else:
                    failures.append(AssertionError(f"row {row}: {value} is neither model's prediction"))
            except Exception as exc:  # noqa: BLE001 - every failure counts
                failures.append(exc)
            i += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    old_dir = hosting.records.read("endpoints", "swap")["_hosting"]["Variants"][0]["ModelDir"]
    deploy_model(hosting, boosters["v2"], "swap-v2")
    hosting.update_endpoint(EndpointName="swap", EndpointConfigName="swap-v2-config")
    assert hosting.describe_endpoint(EndpointName="swap")["EndpointStatus"] in ("Updating", "InService")
    described = wait_status(hosting, "swap", "InService")
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert seen["old"] > 0 and seen["new"] > 0
    assert described["EndpointConfigName"] == "swap-v2-config"
    client = runtime_client(base)
    body = client.invoke_endpoint(EndpointName="swap", ContentType="text/csv", Body=csv_row(rows[3]))["Body"].read()
    assert float(body) == pytest.approx(new[3], rel=1e-6)
    assert not serving.predictor_cached("xgboost", old_dir)  # the retired model is released


def test_blue_green_canary_shifts_traffic_over_scaled_time_and_records_alarms(hosting, boosters):
    hosting.time_scale = 0.01  # 100 s of AWS time = 1 s here
    deploy_model(hosting, boosters["v1"], "bg-v1")
    hosting.create_endpoint(EndpointName="bg", EndpointConfigName="bg-v1-config")
    wait_status(hosting, "bg", "InService")
    deploy_model(hosting, boosters["v2"], "bg-v2")
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 100,
                                            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}},
            "TerminationWaitInSeconds": 0,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "endpoint-5xx"}]},
    }
    hosting.update_endpoint(EndpointName="bg", EndpointConfigName="bg-v2-config", DeploymentConfig=deployment)
    x, _ = abalone()
    old = boosters["v1"].predict(xgb.DMatrix(x[:1]))[0]
    new = boosters["v2"].predict(xgb.DMatrix(x[:1]))[0]
    # during the canary (1 s of wall time) both fleets answer and the endpoint stays Updating
    def pending_status() -> str | None:
        variants = hosting.describe_endpoint(EndpointName="bg").get("PendingDeploymentSummary", {}).get("ProductionVariants")
        return variants[0]["VariantStatus"][0]["Status"] if variants else None

    deadline = time.time() + 5
    while pending_status() != "Baking" and time.time() < deadline:
        time.sleep(0.01)
    during = hosting.describe_endpoint(EndpointName="bg")
    assert during["EndpointStatus"] == "Updating"
    assert during["PendingDeploymentSummary"]["EndpointConfigName"] == "bg-v2-config"
    assert during["LastDeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [{"AlarmName": "endpoint-5xx"}]
    client = runtime_client(hosting.endpoint_url("bg").split("/endpoints/")[0])
    answers = set()
    for _ in range(40):
        value = float(client.invoke_endpoint(EndpointName="bg", ContentType="text/csv", Body=csv_row(x[0]))["Body"].read())
        answers.add("new" if value == pytest.approx(new, rel=1e-6) else "old" if value == pytest.approx(old, rel=1e-6) else "?")
    assert answers == {"old", "new"}
    described = wait_status(hosting, "bg", "InService", timeout=5)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == "bg-v2-config"


def test_a_creation_whose_owner_process_died_is_undone_by_the_next_describe(context, hosting, boosters):
    """The one dead-owner rule: a change left in progress by a process that exited is rolled back; a
    creation served nothing before, so the endpoint is gone (a killed run's model never goes live)."""
    from emulator.storage.records import OWNER_KEY, write_json_atomic

    config = deploy_model(hosting, boosters["v1"], "orphan")
    hosting.create_endpoint(EndpointName="orphan", EndpointConfigName=config)
    hosting.join_workers()
    record = hosting.records.read("endpoints", "orphan")
    # as the creating process left it: Creating, nothing prepared, then it exited
    record["EndpointStatus"] = "Creating"
    record["_hosting"] = {"Variants": [], "DeploymentConfig": None, "Pending": {
        "EndpointConfigName": config, "Requested": time.time(), "Schedule": [[0.0, 1.0]], "End": 0.0,
        "ShiftStart": None, "Variants": [], "DeploymentConfig": None}}
    record[OWNER_KEY] = 2**22 + 12345  # above the default pid_max: no such process
    write_json_atomic(hosting.records.path("endpoints", "orphan"), record)
    with pytest.raises(ValidationException, match="Could not find endpoint"):
        hosting.describe_endpoint(EndpointName="orphan")
    assert hosting.records.read("endpoints", "orphan") is None


def test_an_update_whose_owner_died_rolls_back_to_what_the_endpoint_served(context, hosting, boosters):
    from emulator.storage.records import OWNER_KEY, write_json_atomic

    first = deploy_model(hosting, boosters["v1"], "keep")
    hosting.create_endpoint(EndpointName="keep", EndpointConfigName=first)
    wait_status(hosting, "keep", "InService")
    second = deploy_model(hosting, boosters["v2"], "keep-v2")
    hosting.update_endpoint(EndpointName="keep", EndpointConfigName=second,
                            DeploymentConfig={"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                                "Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600}}})
    hosting.join_workers()
    record = hosting.records.read("endpoints", "keep")
    assert record["EndpointStatus"] == "Updating" and OWNER_KEY in record  # owned until InService
    record[OWNER_KEY] = 2**22 + 12345  # the updating process died
    write_json_atomic(hosting.records.path("endpoints", "keep"), record)
    described = hosting.describe_endpoint(EndpointName="keep")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", first)
    assert "rolled back" in described["FailureReason"]
    # a change that completed is undone on request too (a run killed after its deploy)
    hosting.update_endpoint(EndpointName="keep", EndpointConfigName=second)
    wait_status(hosting, "keep", "InService")
    assert hosting.describe_endpoint(EndpointName="keep")["EndpointConfigName"] == second
    assert hosting.revert_change("keep", second, "its run was killed") == "rolled back"
    assert hosting.describe_endpoint(EndpointName="keep")["EndpointConfigName"] == first
    assert hosting.revert_change("keep", second, "again") is None  # no longer that change


def test_another_process_view_finishes_a_creation_from_disk(context, boosters):
    """A backend that did not create the endpoint (e.g. a second run) reads it from disk."""
    creator = HostingBackend(context)
    deploy_model(creator, boosters["v1"], "other")
    creator.create_endpoint(EndpointName="shared", EndpointConfigName="other-config")
    creator.join_workers()
    reader = HostingBackend(context)
    assert wait_status(reader, "shared", "InService")["EndpointStatus"] == "InService"
    with pytest.raises(ValidationException, match="Cannot create already existing endpoint"):
        reader.create_endpoint(EndpointName="shared", EndpointConfigName="other-config")
    reader.delete_endpoint(EndpointName="shared")
    assert reader.list_endpoints()["Endpoints"] == []


def test_state_is_on_disk_for_other_processes(context, hosting, boosters):
    deploy_model(hosting, boosters["v1"], "ondisk")
    root = context.layout.root
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.json"))
    assert "sagemaker/models/ondisk.json" in files and "sagemaker/endpoint-configs/ondisk-config.json" in files


def test_variant_weights_and_target_variant(hosting, boosters):
    s3 = hosting.context.s3
    for version in ("v1", "v2"):
        put_model(s3, boosters[version], f"s3://bucket/ab/{version}/model.tar.gz")
        hosting.create_model(ModelName=f"ab-{version}", ExecutionRoleArn=ROLE,
                             PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": f"s3://bucket/ab/{version}/model.tar.gz"})
    hosting.create_endpoint_config(EndpointConfigName="ab", ProductionVariants=[
        {"VariantName": "champion", "ModelName": "ab-v1", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large",
         "InitialVariantWeight": 1.0},
        {"VariantName": "challenger", "ModelName": "ab-v2", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large",
         "InitialVariantWeight": 0.0}])
    hosting.create_endpoint(EndpointName="ab", EndpointConfigName="ab")
    described = wait_status(hosting, "ab", "InService")
    assert [(v["VariantName"], v["CurrentWeight"]) for v in described["ProductionVariants"]] == [("champion", 1.0), ("challenger", 0.0)]
    client = runtime_client(hosting.endpoint_url("ab").split("/endpoints/")[0])
    x, _ = abalone()
    routed = {client.invoke_endpoint(EndpointName="ab", ContentType="text/csv", Body=csv_row(x[0]))["InvokedProductionVariant"]
              for _ in range(20)}
    assert routed == {"champion"}
    targeted = client.invoke_endpoint(EndpointName="ab", ContentType="text/csv", Body=csv_row(x[0]), TargetVariant="challenger")
    assert targeted["InvokedProductionVariant"] == "challenger"
    assert float(targeted["Body"].read()) == pytest.approx(boosters["v2"].predict(xgb.DMatrix(x[:1]))[0], rel=1e-6)


@pytest.mark.parametrize("deployment,expected", [
    (None, ([[0.0, 1.0]], 0.0)),
    ({"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60},
                                "TerminationWaitInSeconds": 120}}, ([[0.0, 1.0]], 180.0)),
    ({"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}}},
     ([[0.0, 0.25], [300.0, 1.0]], 300.0)),
    ({"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "LINEAR", "WaitIntervalInSeconds": 10, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 40}}}},
     ([[0.0, 0.4], [10.0, 0.8], [20.0, 1.0]], 20.0)),
    ({"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2}, "WaitIntervalInSeconds": 30}},
     ([[0.0, 0.5], [30.0, 1.0]], 30.0)),
])
def test_deployment_configs_become_traffic_schedules(deployment, expected):
    from emulator.services.sagemaker.serving import shift_schedule

    steps, end = shift_schedule(deployment, instance_count=4, time_scale=1.0)
    assert (steps, end) == expected
    assert shift_schedule(deployment, instance_count=4, time_scale=0.0)[1] == 0.0  # no waiting at time scale 0
