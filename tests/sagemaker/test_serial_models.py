"""Multi-container models (CreateModel Containers, InferenceExecutionConfig Serial): the endpoint and
batch transform chain the containers as SageMaker does, the scikit-learn image is served by its twin,
and an error names the container that raised. Real featurizer, XGBoost model and label decoder (iris
with species names), compared with the same three containers chained in process."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from sm_testkit import PROJECT_ROOT, ROLE
from test_hosting import runtime_client, wait_status

sys.path.insert(0, str(PROJECT_ROOT / "tests" / "containers"))
import pipeline_helpers

from containers.pipeline import load_model
from containers.xgboost.artifacts import model_archive
from emulator.services.sagemaker.exceptions import ValidationException


def _tar(folder: Path) -> bytes:
    import io

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(folder)))
    return raw.getvalue()


@pytest.fixture(scope="module")
def iris(tmp_path_factory) -> pipeline_helpers.PipelineModel:
    return pipeline_helpers.build("iris.csv", tmp_path_factory.mktemp("iris"), rounds=5)


def containers_in_s3(s3, model: pipeline_helpers.PipelineModel) -> list[dict]:
    """The three containers as CreateModel takes them, their model.tar.gz files in the local S3."""
    out = []
    for spec in model.containers:
        data = model_archive(model.booster) if spec.name == "model" else _tar(spec.model_dir)
        s3.put_bytes(f"s3://bucket/serial/{spec.name}.tar.gz", data)
        out.append({"ContainerHostname": spec.name, "Image": spec.image,
                    "ModelDataUrl": f"s3://bucket/serial/{spec.name}.tar.gz", "Environment": dict(spec.environment)})
    return out


def rows(model: pipeline_helpers.PipelineModel, n: int) -> str:
    return "\n".join(pipeline_helpers.csv_lines(model.feature_rows().head(n)))


def test_a_serial_endpoint_answers_what_the_chained_containers_answer(backend, iris):
    hosting = backend.hosting
    containers = containers_in_s3(backend.context.s3, iris)
    hosting.create_model(ModelName="iris", Containers=containers, InferenceExecutionConfig={"Mode": "Serial"},
                         ExecutionRoleArn=ROLE)
    assert [c["ContainerHostname"] for c in hosting.describe_model(ModelName="iris")["Containers"]] == \
        ["featurizer", "model", "decoder"]
    hosting.create_endpoint_config(EndpointConfigName="iris", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "iris", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    hosting.create_endpoint(EndpointName="iris", EndpointConfigName="iris")
    assert wait_status(hosting, "iris", "InService")["EndpointStatus"] == "InService"
    client = runtime_client(backend.context.invoke_server_url())
    body = rows(iris, 20)
    expected = load_model(iris.containers).invoke(body.encode(), "text/csv", "text/csv").body.decode()
    answer = client.invoke_endpoint(EndpointName="iris", ContentType="text/csv", Accept="text/csv", Body=body)
    assert answer["Body"].read().decode() == expected
    assert {line.split(",")[0] for line in expected.splitlines()} <= {"setosa", "versicolor", "virginica"}

    with pytest.raises(ClientError) as caught:  # a wrong column count: the featurizer's 400, named
        client.invoke_endpoint(EndpointName="iris", ContentType="text/csv", Body="1.0,2.0")
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError" and error["OriginalStatusCode"] == 400
    assert "from featurizer" in error["Error"]["Message"] and "Row 1 has 2 columns" in error["OriginalMessage"]
    # and the endpoint keeps serving
    answer = client.invoke_endpoint(EndpointName="iris", ContentType="text/csv", Accept="text/csv", Body=body)
    assert answer["Body"].read().decode() == expected


def test_batch_transform_runs_the_same_chain_and_names_the_container_that_refused(backend, iris):
    s3 = backend.context.s3
    backend.hosting.create_model(ModelName="iris-batch", Containers=containers_in_s3(s3, iris), ExecutionRoleArn=ROLE)
    body = rows(iris, 150)
    s3.put_bytes("s3://bucket/raw-rows/part.csv", (body + "\n").encode())
    request = {
        "TransformJobName": "iris-batch", "ModelName": "iris-batch", "BatchStrategy": "MultiRecord",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/raw-rows/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://bucket/scored", "AssembleWith": "Line", "Accept": "text/csv"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    backend.transform.create_transform_job(**request)
    assert backend.transform.wait("iris-batch", timeout=60)["TransformJobStatus"] == "Completed"
    expected = load_model(iris.containers, batch=True).invoke(body.encode(), "text/csv", "text/csv").body.decode()
    assert s3.get_bytes("s3://bucket/scored/part.csv.out").decode().splitlines() == expected.splitlines()

    s3.put_bytes("s3://bucket/bad-rows/part.csv", b"1.0,abc,3.0,4.0\n")
    backend.transform.create_transform_job(**{**request, "TransformJobName": "iris-bad", "TransformInput": {
        **request["TransformInput"], "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                     "S3Uri": "s3://bucket/bad-rows/"}}}})
    failed = backend.transform.wait("iris-bad", timeout=60)
    assert failed["TransformJobStatus"] == "Failed"
    assert "status 400 (container featurizer)" in failed["FailureReason"] and "is not a number" in failed["FailureReason"]


def test_what_the_emulator_cannot_serve_is_refused_at_create_model(backend, iris):
    hosting = backend.hosting
    containers = containers_in_s3(backend.context.s3, iris)
    with pytest.raises(ValidationException, match="Serial mode"):
        hosting.create_model(ModelName="direct", Containers=containers, InferenceExecutionConfig={"Mode": "Direct"},
                             ExecutionRoleArn=ROLE)
    with pytest.raises(ValidationException, match="not both"):
        hosting.create_model(ModelName="both", PrimaryContainer=containers[1], Containers=containers,
                             ExecutionRoleArn=ROLE)
    with pytest.raises(ValidationException, match="sagemaker-pytorch"):
        hosting.create_model(ModelName="torch", ExecutionRoleArn=ROLE, Containers=[
            containers[0], {**containers[1], "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-pytorch:2"}])
