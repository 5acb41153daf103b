"""ScriptModeCode: the Random Forest folder as a reproducible sourcedir.tar.gz file asset with the SDK's script-mode
hyperparameters; deployed by the emulator where the template points, and a real training job runs from it."""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import random
import tarfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from emulator.asl.intrinsics import IntrinsicEnv, evaluate, parse_intrinsic
from emulator.cloud.deploy import deploy
from emulator.services.s3.server import S3Server
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.facade import SageMakerBackend
from emulator.services.sagemaker.images import resolve_image
from emulator.storage.layout import Layout
from stacks.images import PipelineImages
from stacks.training_code import (
    SOURCEDIR,
    ScriptModeCode,
    job_name_hyperparameter,
    json_encode_hyperparameters,
    sourcedir_archive,
)
from training_scripts.random_forest import contract

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE_DIR = PROJECT_ROOT / "training_scripts" / "random_forest"


def synth(outdir: Path) -> tuple[cdk.Stack, ScriptModeCode, cdk.cx_api.CloudAssembly]:
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "CodeStack", env=cdk.Environment(region="us-east-1"))
    code = ScriptModeCode(stack, "RandomForestCode", source_dir=CODE_DIR, entry_point=contract.PROGRAM,
                          build_dir=outdir.parent / "build")
    role = iam.Role(stack, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    code.grant_read(role)
    cdk.CfnOutput(stack, "Hyperparameters", value=stack.to_json_string(code.hyperparameters()))
    return stack, code, app.synth()


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("code-app") / "cdk.out"
    stack, code, assembly = synth(outdir)
    return outdir, Template.from_stack(stack), code, assembly


def test_the_folder_is_a_file_asset_of_reproducible_bytes(synthesized, tmp_path):
    outdir, _, code, _ = synthesized
    files = json.loads((outdir / "CodeStack.assets.json").read_text())["files"]
    [(digest, asset)] = [(h, a) for h, a in files.items() if a["displayName"] == "RandomForestCode/SourceDir"]
    assert asset["source"]["packaging"] == "file"
    staged = outdir / asset["source"]["path"]
    assert staged.read_bytes() == sourcedir_archive(CODE_DIR) == code.archive_path.read_bytes()
    assert code.archive_path.name == SOURCEDIR
    assert sourcedir_archive(CODE_DIR) == sourcedir_archive(CODE_DIR)  # no time, owner or order in the bytes

    with tarfile.open(fileobj=io.BytesIO(staged.read_bytes())) as archive:
        members = archive.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and {"train.py", "inference.py", "contract.py"} <= set(names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "root")}

    # a second synth elsewhere names the same asset: the hash depends on the code alone
    _, _, again = synth(tmp_path / "cdk.out")
    second = json.loads((Path(again.directory) / "CodeStack.assets.json").read_text())["files"]
    assert digest in second


def test_hyperparameters_are_json_encoded_as_the_sdk_does(synthesized):
    _, template, _, _ = synthesized
    value = template.to_json()["Outputs"]["Hyperparameters"]["Value"]["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else "<URL>" for part in value)
    hyperparameters = json.loads(text)
    assert hyperparameters == {"sagemaker_submit_directory": '"<URL>"', "sagemaker_program": '"train.py"',
                               "sagemaker_container_log_level": "20", "sagemaker_region": '"us-east-1"'}
    url = next(part for part in value if not isinstance(part, str))
    assert url["Fn::Sub"].startswith("s3://cdk-hnb659fds-assets-${AWS::AccountId}-us-east-1/")
    assert json_encode_hyperparameters({"n_estimators": 200, "max_features": "sqrt", "bootstrap": True}) == {
        "n_estimators": "200", "max_features": '"sqrt"', "bootstrap": "true"}
    # sagemaker_job_name, known at run time: the intrinsic quotes the name as json.dumps would
    [(key, expression)] = job_name_hyperparameter("$.names.train").items()
    env = IntrinsicEnv({"names": {"train": "run-1a2b-rf"}}, {}, random.Random(0))
    assert key == "sagemaker_job_name.$" and evaluate(parse_intrinsic(expression), env) == json.dumps("run-1a2b-rf")


def test_the_job_role_may_read_the_code(synthesized):
    _, template, _, _ = synthesized
    template.has_resource_properties("AWS::IAM::Policy", {
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Action": Match.array_with(["s3:GetObject*"]),
            "Resource": Match.array_with([Match.object_like({"Fn::Join": Match.any_value()})]),
        })])},
    })


def test_a_missing_entry_point_is_refused_at_synth(tmp_path):
    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Bad", env=cdk.Environment(region="us-east-1"))
    with pytest.raises(ValueError, match="entry point 'trian.py' is not a file"):
        ScriptModeCode(stack, "Code", source_dir=CODE_DIR, entry_point="trian.py")


def test_deployed_locally_a_training_job_runs_from_the_templates_hyperparameters(synthesized, tmp_path):
    outdir, _, _, _ = synthesized
    deployment = deploy(outdir, tmp_path / "state")
    hyperparameters = json.loads(deployment.outputs["CodeStack"]["Hyperparameters"])
    submit = json.loads(hyperparameters["sagemaker_submit_directory"])
    layout = Layout.at(tmp_path / "state")
    s3 = LocalS3(layout.s3_root)
    assert s3.get_bytes(submit) == sourcedir_archive(CODE_DIR)  # published where the template points

    s3.create_bucket("bucket")
    lines = (PROJECT_ROOT / "data" / "abalone.csv").read_text().splitlines()[1:401]
    rows = [",".join([cells[-1], *(str(int(cells[0] == s)) for s in "MFI"), *cells[1:-1]])
            for cells in (line.split(",") for line in lines)]
    s3.put_bytes("s3://bucket/abalone/train/train.csv", ("\n".join(rows[:300]) + "\n").encode())
    s3.put_bytes("s3://bucket/abalone/validation/validation.csv", ("\n".join(rows[300:]) + "\n").encode())
    context = SageMakerContext(layout=layout, s3=s3, project_root=PROJECT_ROOT,
                               resolve_image=functools.partial(resolve_image, project_root=PROJECT_ROOT),
                               invoke_server_url=lambda: "")
    with S3Server(s3) as server:
        backend = SageMakerBackend(dataclasses.replace(context, service_endpoints={"S3": server.url}))
        try:
            backend.call("CreateTrainingJob", {
                "TrainingJobName": "rf-from-asset",
                "AlgorithmSpecification": {"TrainingImage": PipelineImages.for_region("us-east-1").sklearn_training,
                                           "TrainingInputMode": "File",
                                           "MetricDefinitions": contract.METRIC_DEFINITIONS},
                "RoleArn": "arn:aws:iam::000000000000:role/JobRole",
                "HyperParameters": {**hyperparameters, **json_encode_hyperparameters(
                    {"problem_type": "regression", "n_estimators": 10})},
                "InputDataConfig": [{"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": f"s3://bucket/abalone/{name}/"}}} for name in ("train", "validation")],
                "OutputDataConfig": {"S3OutputPath": "s3://bucket/models"},
                "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
                "StoppingCondition": {"MaxRuntimeInSeconds": 300},
            })
            done = backend.wait("training", "rf-from-asset", timeout=120)
        finally:
            backend.close()
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    assert {m["MetricName"] for m in done["FinalMetricDataList"]} >= {"validation:rmse", "train:rmse"}
    assert s3.exists(done["ModelArtifacts"]["S3ModelArtifacts"])
