"""Processing jobs run the request's entry point in a folder laid out like /opt/ml/processing."""

from __future__ import annotations

import pytest
from sm_testkit import DATA, ROLE, SKLEARN_IMAGE

from emulator.services.sagemaker import exceptions as exc

SCRIPT = """
import argparse, os, pathlib, sys
parser = argparse.ArgumentParser()
parser.add_argument("--input-dir"); parser.add_argument("--output-dir"); parser.add_argument("--fail", action="store_true")
parser.add_argument("--sleep", type=float, default=0)
args = parser.parse_args()
if args.fail:
    print("something broke: bad column 'x'", file=sys.stderr); sys.exit(3)
import time; time.sleep(args.sleep)
rows = pathlib.Path(args.input_dir, "abalone.csv").read_text().splitlines()
out = pathlib.Path(args.output_dir); out.mkdir(parents=True, exist_ok=True)
(out / "head.csv").write_text("\\n".join(rows[:11]) + "\\n")
(out / "env.txt").write_text(os.environ.get("GREETING", "") + " " + sys.executable)
"""


def request(name: str, *args: str, max_runtime: int = 600) -> dict:
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"],
            "ContainerArguments": ["--input-dir", "/opt/ml/processing/input/data", "--output-dir=/opt/ml/processing/output", *args],
        },
        "ProcessingInputs": [
            {"InputName": "code", "S3Input": {"S3Uri": "s3://bucket/code/job.py", "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "data", "S3Input": {"S3Uri": "s3://bucket/raw/", "LocalPath": "/opt/ml/processing/input/data", "S3DataType": "S3Prefix", "S3InputMode": "File"}},
        ],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {"S3Uri": f"s3://bucket/out/{name}", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        "Environment": {"GREETING": "hello"},
    }


@pytest.fixture
def staged(context):
    context.s3.put_bytes("s3://bucket/code/job.py", SCRIPT.encode())
    context.s3.put_file("s3://bucket/raw/abalone.csv", DATA / "abalone.csv")
    return context


def test_processing_job_stages_inputs_runs_entrypoint_and_uploads_outputs(backend, staged):
    arn = backend.call("CreateProcessingJob", request("prep-1"))["ProcessingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:processing-job/prep-1"
    done = backend.wait("processing", "prep-1", timeout=60)
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    head = staged.s3.get_bytes("s3://bucket/out/prep-1/head.csv").decode().splitlines()
    assert head[0].startswith("sex,length") and len(head) == 11
    env = staged.s3.get_bytes("s3://bucket/out/prep-1/env.txt").decode()
    import sys

    assert env == f"hello {sys.executable}"
    for key in ("ProcessingJobName", "ProcessingJobArn", "CreationTime", "ProcessingStartTime", "ProcessingEndTime", "AppSpecification", "ProcessingInputs"):
        assert key in done
    assert done["ProcessingEndTime"] >= done["ProcessingStartTime"] >= done["CreationTime"]


def test_failed_script_fails_the_job_with_its_stderr_as_reason(backend, staged):
    backend.call("CreateProcessingJob", request("prep-fail", "--fail"))
    done = backend.wait("processing", "prep-fail", timeout=60)
    assert done["ProcessingJobStatus"] == "Failed"
    assert done["FailureReason"].startswith("AlgorithmError:")
    assert "bad column 'x'" in done["FailureReason"]
    assert not staged.s3.exists("s3://bucket/out/prep-fail/head.csv")


def test_stopping_condition_stops_a_job_that_runs_too_long(backend, staged):
    backend.call("CreateProcessingJob", request("prep-slow", "--sleep", "30", max_runtime=1))
    done = backend.wait("processing", "prep-slow", timeout=30)
    assert done["ProcessingJobStatus"] == "Stopped"
    assert "MaxRuntimeInSeconds" in done["FailureReason"]


def test_missing_input_fails_with_a_client_error(backend, staged):
    req = request("prep-noinput")
    req["ProcessingInputs"][1]["S3Input"]["S3Uri"] = "s3://bucket/nothing-here/"
    backend.call("CreateProcessingJob", req)
    done = backend.wait("processing", "prep-noinput", timeout=30)
    assert done["ProcessingJobStatus"] == "Failed"
    assert "No S3 objects found" in done["FailureReason"]


def test_duplicate_name_is_resource_in_use_and_unknown_image_is_rejected(backend, staged):
    backend.call("CreateProcessingJob", request("prep-dup"))
    with pytest.raises(exc.ResourceInUse):
        backend.call("CreateProcessingJob", request("prep-dup"))
    backend.wait("processing", "prep-dup", timeout=60)
    bad = request("prep-img")
    bad["AppSpecification"]["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:latest"
    with pytest.raises(exc.ValidationException, match="my-own"):
        backend.call("CreateProcessingJob", bad)


def test_a_second_backend_reads_the_finished_job_from_disk(backend, staged):
    from emulator.services.sagemaker.jobs import JobsBackend

    backend.call("CreateProcessingJob", request("prep-disk"))
    first = backend.wait("processing", "prep-disk", timeout=60)
    again = JobsBackend(staged).describe_processing_job(ProcessingJobName="prep-disk")
    assert again == first
    with pytest.raises(exc.ResourceNotFound):
        JobsBackend(staged).describe_processing_job(ProcessingJobName="nope")


def test_images_resolve_to_their_local_twins(tmp_path):
    from sm_testkit import PROJECT_ROOT, XGBOOST_IMAGE

    from emulator.services.sagemaker.images import resolve_image

    assert resolve_image(XGBOOST_IMAGE, PROJECT_ROOT).training_command()[1:] == ["-m", "containers.xgboost.train"]
    sklearn = resolve_image("246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-scikit-learn:1.2-1", PROJECT_ROOT)
    import sys

    assert sklearn.processing_command(["python3", "/opt/ml/processing/input/code/x.py"], ["--a", "1"]) == [sys.executable, "/opt/ml/processing/input/code/x.py", "--a", "1"]
    with pytest.raises(exc.ValidationException, match="1.7-1"):
        resolve_image("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", PROJECT_ROOT)
    with pytest.raises(exc.ValidationException, match="has no local twin"):
        resolve_image("public.ecr.aws/lambda/python:3.11", PROJECT_ROOT)

    asset = tmp_path / "cdk.out" / "asset.abc123"
    (asset / "src").mkdir(parents=True)
    (asset / "src" / "run.py").write_text("print('hi')\n")
    (asset / "Dockerfile").write_text('FROM python:3.11\nCOPY src/ /opt/program/\nENTRYPOINT ["python3", "/opt/program/run.py"]\n')
    launcher = resolve_image("000000000000.dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-assets-000000000000-us-east-1:abc123", PROJECT_ROOT, [tmp_path / "cdk.out"])
    assert launcher.kind == "asset" and launcher.workdir == asset
    assert launcher.training_command() == [sys.executable, str(asset / "src" / "run.py"), "train"]


def test_a_job_left_in_progress_by_a_dead_process_reads_as_failed(backend, staged):
    from emulator.services.sagemaker.jobs import JobsBackend
    from emulator.storage.records import OWNER_KEY, write_json_atomic

    backend.call("CreateProcessingJob", request("prep-orphan"))
    backend.wait("processing", "prep-orphan", timeout=60)
    records = staged.records()
    doc = records.read("processing-jobs", "prep-orphan")
    doc["ProcessingJobStatus"] = "InProgress"
    doc[OWNER_KEY] = 2**22 + 12345  # above the default pid_max: no such process
    write_json_atomic(records.path("processing-jobs", "prep-orphan"), doc)
    orphan = JobsBackend(staged).describe_processing_job(ProcessingJobName="prep-orphan")
    assert orphan["ProcessingJobStatus"] == "Failed"
    assert "exited before the job finished" in orphan["FailureReason"]
    assert OWNER_KEY not in orphan


def test_a_processing_process_killed_from_outside_says_so_in_its_failure_reason(backend, staged):
    import os
    import signal

    from test_training_jobs import wait_for_process

    backend.call("CreateProcessingJob", request("prep-killed", "--sleep", "60"))
    process = wait_for_process(backend.jobs._processing_job("prep-killed"))
    os.kill(process.popen.pid, signal.SIGKILL)
    done = backend.wait("processing", "prep-killed", timeout=30)
    assert done["ProcessingJobStatus"] == "Failed"
    assert "killed by signal 9 (SIGKILL)" in done["FailureReason"], done["FailureReason"]



LISTING_SCRIPT = """
import pathlib, sys
data, out = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3].split("=", 1)[1])
out.mkdir(parents=True, exist_ok=True)
(out / "listing.txt").write_text("\\n".join(sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())))
"""


def manifest_request(name: str, manifest_uri: str) -> dict:
    job = request(name)
    job["ProcessingInputs"][0]["S3Input"]["S3Uri"] = "s3://bucket/code/listing.py"
    job["ProcessingInputs"][1]["S3Input"].update(S3Uri=manifest_uri, S3DataType="ManifestFile")
    job["AppSpecification"]["ContainerEntrypoint"] = ["python3", "/opt/ml/processing/input/code/listing.py"]
    return job


def test_a_manifest_input_places_only_the_objects_it_lists_at_their_relative_keys(backend, staged):
    staged.s3.put_bytes("s3://bucket/code/listing.py", LISTING_SCRIPT.encode())
    for day in ("day-1", "day-2", "day-3"):
        staged.s3.put_file(f"s3://bucket/capture/{day}/abalone.csv", DATA / "abalone.csv")
    staged.s3.put_bytes("s3://bucket/manifests/m.json",
                        b'[{"prefix": "s3://bucket/capture/"}, "day-2/abalone.csv", "day-3/abalone.csv"]')
    backend.call("CreateProcessingJob", manifest_request("prep-manifest", "s3://bucket/manifests/m.json"))
    done = backend.wait("processing", "prep-manifest", timeout=60)
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    listing = staged.s3.get_bytes("s3://bucket/out/prep-manifest/listing.txt").decode().splitlines()
    assert listing == ["day-2/abalone.csv", "day-3/abalone.csv"]


@pytest.mark.parametrize("body, why", [
    (None, "does not exist"),
    (b"not json", "is not JSON"),
    (b'["day-2/abalone.csv"]', 'first element must be {"prefix"'),
    (b'[{"prefix": "s3://bucket/capture/"}, "day-9/abalone.csv"]', "which does not exist"),
    (b'[{"prefix": "s3://bucket/capture/"}, "../raw/abalone.csv"]', "is not a relative key"),
])
def test_a_bad_manifest_fails_the_job_with_a_client_error_naming_it(backend, staged, body, why):
    staged.s3.put_bytes("s3://bucket/code/listing.py", LISTING_SCRIPT.encode())
    staged.s3.put_file("s3://bucket/capture/day-2/abalone.csv", DATA / "abalone.csv")
    if body is not None:
        staged.s3.put_bytes("s3://bucket/manifests/bad.json", body)
    name = f"prep-bad-{abs(hash(why)) % 10_000}"
    backend.call("CreateProcessingJob", manifest_request(name, "s3://bucket/manifests/bad.json"))
    done = backend.wait("processing", name, timeout=60)
    assert done["ProcessingJobStatus"] == "Failed"
    assert done["FailureReason"].startswith("ClientError: ProcessingInput 'data': The manifest s3://bucket/manifests/bad.json")
    assert why in done["FailureReason"]
