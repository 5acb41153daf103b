"""The SageMaker control-plane API on localhost, through an unchanged boto3 client (and the AWS CLI,
and the SageMaker SDK's resource classes): every served operation, with its error cases, over real
jobs, models and an endpoint made once for the module."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sm_testkit import (
    PROJECT_ROOT,
    ROLE,
    SKLEARN_IMAGE,
    XGBOOST_IMAGE,
    abalone_channels,
    channel,
    training_request,
)

from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.services.sagemaker.images import resolve_image
from emulator.services.sagemaker.invoke_server import ensure_invoke_server, stop_in_process_servers
from emulator.services.sagemaker.server import SERVED, SageMakerServer
from emulator.storage.layout import Layout

SCRIPT = """
import argparse, pathlib, time
parser = argparse.ArgumentParser(); parser.add_argument("--sleep", type=float, default=0); args = parser.parse_args()
time.sleep(args.sleep)
out = pathlib.Path("/opt/ml/processing/output"); out.mkdir(parents=True, exist_ok=True); (out / "done.txt").write_text("ok")
"""


def processing(name: str, sleep: float = 0) -> dict:
    return {
        "ProcessingJobName": name, "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"],
                             "ContainerArguments": ["--sleep", str(sleep)]},
        "ProcessingInputs": [{"InputName": "code", "S3Input": {"S3Uri": "s3://bucket/code/job.py", "LocalPath": "/opt/ml/processing/input/code",
                                                               "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {"S3Uri": f"s3://bucket/out/{name}",
                                                                                  "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


def tuning(name: str, channels: dict) -> dict:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random", "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:rmse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "4"}]},
            "RandomSeed": 3,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"objective": "reg:squarederror", "num_round": "10"},
            "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"}, "RoleArn": ROLE,
            "InputDataConfig": [channel(n, u) for n, u in channels.items()],
            "OutputDataConfig": {"S3OutputPath": f"s3://bucket/tuning/{name}"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
    }


def endpoint_config(backend: SageMakerBackend, name: str, model: str) -> None:
    backend.call("CreateEndpointConfig", {"EndpointConfigName": name, "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]})


def wait_for(describe, key: str, wanted: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (answer := describe())[key] != wanted:
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)
    return answer


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Real resources of every kind, made through the backend as a state machine would make them."""
    root = tmp_path_factory.mktemp("control-plane")
    s3 = LocalS3(root / "s3")
    s3.create_bucket("bucket")
    layout = Layout.at(root / "state")
    events: list[dict] = []
    context = SageMakerContext(layout=layout, s3=s3, project_root=PROJECT_ROOT,
                               resolve_image=functools.partial(resolve_image, project_root=PROJECT_ROOT),
                               invoke_server_url=functools.partial(ensure_invoke_server, layout),
                               emit_event=events.append)
    backend = SageMakerBackend(context)
    server = SageMakerServer(backend).start()
    s3.put_bytes("s3://bucket/code/job.py", SCRIPT.encode())
    channels = abalone_channels(s3, rows=600)
    backend.call("CreateProcessingJob", processing("prep-1"))
    backend.call("CreateTrainingJob", training_request("train-1", channels))
    backend.call("CreateHyperParameterTuningJob", tuning("tune-1", channels))
    assert backend.wait("training", "train-1", timeout=120)["TrainingJobStatus"] == "Completed"
    artifact = backend.call("DescribeTrainingJob", {"TrainingJobName": "train-1"})["ModelArtifacts"]["S3ModelArtifacts"]
    for model in ("model-1", "model-2"):
        backend.call("CreateModel", {"ModelName": model, "ExecutionRoleArn": ROLE,
                                     "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": artifact}})
        endpoint_config(backend, f"{model}-config", model)
    backend.call("CreateEndpoint", {"EndpointName": "ep-1", "EndpointConfigName": "model-1-config"})
    rows = [line.split(",", 1)[1] for line in s3.get_bytes(channels["validation"] + "validation.csv").decode().splitlines()[:20]]
    s3.put_bytes("s3://bucket/batch/in.csv", ("\n".join(rows) + "\n").encode())
    backend.call("CreateTransformJob", {
        "TransformJobName": "xform-1", "ModelName": "model-1",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/batch/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://bucket/batch-out/", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    backend.call("CreateModelPackageGroup", {"ModelPackageGroupName": "models"})
    package = backend.call("CreateModelPackage", {
        "ModelPackageGroupName": "models", "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {"Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": artifact}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}})
    for kind, name in (("processing", "prep-1"), ("tuning", "tune-1"), ("transform", "xform-1")):
        backend.wait(kind, name, timeout=120)
    client = boto3.client("sagemaker", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="local",
                          aws_secret_access_key="local", config=Config(retries={"max_attempts": 1}))
    wait_for(lambda: client.describe_endpoint(EndpointName="ep-1"), "EndpointStatus", "InService")
    yield {"client": client, "backend": backend, "url": server.url, "events": events,
           "package": package["ModelPackageArn"], "s3": s3}
    server.stop()
    backend.close()
    stop_in_process_servers()


def error_of(call, **request) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**request)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


# -- jobs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, describe, key, name, listing, summaries, status_key", [
    ("processing", "describe_processing_job", "ProcessingJobName", "prep-1", "list_processing_jobs",
     "ProcessingJobSummaries", "ProcessingJobStatus"),
    ("training", "describe_training_job", "TrainingJobName", "train-1", "list_training_jobs",
     "TrainingJobSummaries", "TrainingJobStatus"),
    ("tuning", "describe_hyper_parameter_tuning_job", "HyperParameterTuningJobName", "tune-1",
     "list_hyper_parameter_tuning_jobs", "HyperParameterTuningJobSummaries", "HyperParameterTuningJobStatus"),
    ("transform", "describe_transform_job", "TransformJobName", "xform-1", "list_transform_jobs",
     "TransformJobSummaries", "TransformJobStatus"),
])
def test_describe_and_list_every_kind_of_job(world, kind, describe, key, name, listing, summaries, status_key):
    client = world["client"]
    described = getattr(client, describe)(**{key: name})
    assert described[key] == name and described[status_key] == "Completed"
    assert isinstance(described["CreationTime"], dt.datetime)  # timestamps cross the wire as timestamps
    listed = getattr(client, listing)(StatusEquals="Completed")[summaries]
    assert name in [row[key] for row in listed]
    assert getattr(client, listing)(NameContains="no-such-job")[summaries] == []
    after = getattr(client, listing)(CreationTimeAfter=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))[summaries]
    assert after == []
    code, message = error_of(getattr(client, describe), **{key: "missing-job"})
    assert code in ("ResourceNotFound", "ValidationException") and "missing-job" in message


def test_listing_pages_with_next_token(world):
    client = world["client"]
    first = client.list_training_jobs(MaxResults=1, SortBy="Name", SortOrder="Ascending")
    assert len(first["TrainingJobSummaries"]) == 1 and first["NextToken"]
    rest = client.list_training_jobs(MaxResults=100, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"])
    names = [r["TrainingJobName"] for r in first["TrainingJobSummaries"] + rest["TrainingJobSummaries"]]
    assert len(names) == 3 and "train-1" in names  # train-1 and the two tuning trials
    assert error_of(client.list_training_jobs, NextToken="garbage")[0] == "ValidationException"
    trials = client.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-1")
    assert len(trials["TrainingJobSummaries"]) == 2
    assert error_of(client.list_training_jobs_for_hyper_parameter_tuning_job,
                    HyperParameterTuningJobName="nope")[0] == "ResourceNotFound"


@pytest.mark.parametrize("stop, key, create, kind", [
    ("stop_processing_job", "ProcessingJobName", "processing", "processing"),
    ("stop_training_job", "TrainingJobName", "training", "training"),
    ("stop_transform_job", "TransformJobName", "transform", "transform"),
    ("stop_hyper_parameter_tuning_job", "HyperParameterTuningJobName", "tuning", "tuning"),
])
def test_stop_a_running_job_and_the_errors_of_stop(world, stop, key, create, kind):
    client, backend = world["client"], world["backend"]
    name = f"stop-{kind}"
    if kind == "processing":
        backend.call("CreateProcessingJob", processing(name, sleep=60))
    elif kind == "training":
        channels = {"train": "s3://bucket/abalone/train/", "validation": "s3://bucket/abalone/validation/"}
        backend.call("CreateTrainingJob", training_request(name, channels, {"objective": "reg:squarederror", "num_round": "100000"}))
    elif kind == "tuning":
        backend.call("CreateHyperParameterTuningJob", tuning(name, {"train": "s3://bucket/abalone/train/",
                                                                     "validation": "s3://bucket/abalone/validation/"}))
    else:
        world["s3"].put_bytes(f"s3://bucket/{name}/in.csv", b"".join(b"0.5,0.4,0.1,0.5,0.2,0.1,0.1,1,0,0\n" for _ in range(20000)))
        backend.call("CreateTransformJob", {
            "TransformJobName": name, "ModelName": "model-1", "BatchStrategy": "SingleRecord",
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://bucket/{name}/"}},
                               "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": f"s3://bucket/{name}-out/"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    getattr(client, stop)(**{key: name})
    ended = backend.wait(kind, name, timeout=60)
    status = next(v for k, v in ended.items() if k.endswith("JobStatus") and k != "SecondaryStatus")
    assert status == "Stopped", ended
    code, message = error_of(getattr(client, stop), **{key: name})  # already ended
    assert code == "ValidationException" and name in message
    assert error_of(getattr(client, stop), **{key: "never-ran"})[0] in ("ResourceNotFound", "ValidationException")


# -- models, endpoint configs, endpoints ------------------------------------------------------------

def test_models_and_endpoint_configs(world):
    client = world["client"]
    model = client.describe_model(ModelName="model-1")
    assert model["PrimaryContainer"]["Image"] == XGBOOST_IMAGE
    assert [m["ModelName"] for m in client.list_models(SortBy="Name", SortOrder="Ascending")["Models"]] == ["model-1", "model-2"]
    assert [m["ModelName"] for m in client.list_models(NameContains="-2")["Models"]] == ["model-2"]
    assert error_of(client.describe_model, ModelName="nope")[1].startswith('Could not find model "arn:aws:sagemaker')
    config = client.describe_endpoint_config(EndpointConfigName="model-1-config")
    assert config["ProductionVariants"][0]["ModelName"] == "model-1"
    names = [c["EndpointConfigName"] for c in client.list_endpoint_configs(SortBy="Name", SortOrder="Descending")["EndpointConfigs"]]
    assert names == ["model-2-config", "model-1-config"]
    assert "Could not find endpoint configuration" in error_of(client.describe_endpoint_config, EndpointConfigName="nope")[1]
    assert error_of(client.list_models, SortBy="Size")[0] == "ValidationException"  # not in the enum: botocore's model


def test_update_describe_list_and_delete_an_endpoint(world):
    client = world["client"]
    assert [e["EndpointName"] for e in client.list_endpoints(StatusEquals="InService")["Endpoints"]] == ["ep-1"]
    client.update_endpoint(EndpointName="ep-1", EndpointConfigName="model-2-config")
    updated = wait_for(lambda: client.describe_endpoint(EndpointName="ep-1"), "EndpointConfigName", "model-2-config")
    assert updated["EndpointStatus"] == "InService"
    code, message = error_of(client.update_endpoint, EndpointName="ep-1", EndpointConfigName="nope")
    assert code == "ValidationException" and "Could not find endpoint configuration" in message
    assert "Could not find endpoint" in error_of(client.update_endpoint, EndpointName="ghost", EndpointConfigName="model-1-config")[1]
    client.delete_endpoint(EndpointName="ep-1")
    assert "Could not find endpoint" in error_of(client.describe_endpoint, EndpointName="ep-1")[1]
    assert error_of(client.delete_endpoint, EndpointName="ep-1")[0] == "ValidationException"
    assert client.list_endpoints()["Endpoints"] == []


# -- the model registry -----------------------------------------------------------------------------

def test_model_package_groups_and_packages(world):
    client = world["client"]
    group = client.describe_model_package_group(ModelPackageGroupName="models")
    assert group["ModelPackageGroupStatus"] == "Completed"
    assert [g["ModelPackageGroupName"] for g in client.list_model_package_groups()["ModelPackageGroupSummaryList"]] == ["models"]
    assert client.list_model_package_groups(NameContains="zzz")["ModelPackageGroupSummaryList"] == []
    assert "does not exist" in error_of(client.describe_model_package_group, ModelPackageGroupName="nope")[1]
    package = client.describe_model_package(ModelPackageName=world["package"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval" and package["ModelPackageVersion"] == 1
    pending = client.list_model_packages(ModelPackageGroupName="models", ModelApprovalStatus="PendingManualApproval")
    assert [p["ModelPackageArn"] for p in pending["ModelPackageSummaryList"]] == [world["package"]]
    assert "does not exist" in error_of(client.list_model_packages, ModelPackageGroupName="nope")[1]
    assert "does not exist" in error_of(client.describe_model_package, ModelPackageName=world["package"][:-1] + "9")[1]


def test_update_model_package_changes_the_status_and_emits_the_registry_event(world):
    client, events = world["client"], world["events"]
    before = len(events)
    client.update_model_package(ModelPackageArn=world["package"], ModelApprovalStatus="Approved",
                                ApprovalDescription="looks good", CustomerMetadataProperties={"reviewer": "ana"})
    package = client.describe_model_package(ModelPackageName=world["package"])
    assert (package["ModelApprovalStatus"], package["ApprovalDescription"]) == ("Approved", "looks good")
    assert package["CustomerMetadataProperties"] == {"reviewer": "ana"}
    event = events[before]
    assert (event["source"], event["detail-type"]) == ("aws.sagemaker", "SageMaker Model Package State Change")
    assert event["resources"] == [world["package"]] and event["detail"]["ModelApprovalStatus"] == "Approved"
    assert isinstance(event["detail"]["CreationTime"], int)  # epoch milliseconds, as the event carries it
    client.update_model_package(ModelPackageArn=world["package"], ApprovalDescription="still good")
    assert len(events) == before + 1  # no status change, no event
    code, message = error_of(client.update_model_package, ModelPackageArn=world["package"], ModelApprovalStatus="Maybe")
    assert code == "ValidationException" and "Maybe" in message  # the enum from botocore's model
    assert "does not exist" in error_of(client.update_model_package, ModelPackageArn=world["package"][:-1] + "7",
                                        ModelApprovalStatus="Rejected")[1]


# -- the protocol ---------------------------------------------------------------------------------

def test_an_operation_not_served_names_itself_in_sagemakers_error_shape(world):
    code, message = error_of(world["client"].create_pipeline, PipelineName="p", RoleArn=ROLE, PipelineDefinition="{}",
                             ClientRequestToken="t" * 32)
    assert code == "UnknownOperationException" and "does not serve CreatePipeline" in message
    assert "DescribeEndpoint" in message  # it says what is served
    assert len(SERVED) == 26


def test_the_aws_cli_and_the_sagemaker_sdk_work_unchanged(world):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    aws = Path(sys.executable).parent / "aws"
    listed = subprocess.run([str(aws), "sagemaker", "list-models", "--endpoint-url", world["url"]],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert sorted(m["ModelName"] for m in json.loads(listed.stdout)["Models"]) == ["model-1", "model-2"]
    missing = subprocess.run([str(aws), "sagemaker", "describe-training-job", "--training-job-name", "nope",
                              "--endpoint-url", world["url"]], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode != 0 and "ResourceNotFound" in missing.stderr
    code = ("import boto3\nfrom sagemaker.core.resources import TrainingJob\n"
            "job = TrainingJob.get('train-1', session=boto3.Session(region_name='us-east-1'))\n"
            "print(job.training_job_status)\n")
    sdk = subprocess.run([sys.executable, "-c", code], env={**env, "AWS_ENDPOINT_URL_SAGEMAKER": world["url"]},
                         capture_output=True, text=True, timeout=120, check=False)
    assert sdk.returncode == 0 and sdk.stdout.strip().endswith("Completed"), sdk.stderr[-2000:]
