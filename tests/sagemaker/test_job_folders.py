"""Job folders cost no copies: inputs are read-only hard links to the bucket's objects, outputs are
renamed into the bucket when a job completes — and a job can neither change a bucket object through
its input nor promote an output when it fails."""

from __future__ import annotations

import os

from sm_testkit import ROLE, SKLEARN_IMAGE, abalone_channels, training_request

from emulator.services.s3.store import LocalS3

# A job that tries every way of writing through its input file, then writes its own output.
VANDAL = """
import os, pathlib, sys
data = pathlib.Path(sys.argv[1], "table.csv")
out = pathlib.Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
refused = []
for mode in ("r+b", "ab", "wb"):
    try:
        with open(data, mode) as handle:
            handle.write(b"tampered")
    except PermissionError:
        refused.append(mode)
try:
    os.truncate(data, 0)
except PermissionError:
    refused.append("truncate")
(out / "refused.txt").write_text(",".join(refused))
(out / "result.csv").write_text("done\\n")
sys.exit(int(sys.argv[3]))
"""
TABLE = b"a,b\n1,2\n3,4\n"


def request(name: str, exit_code: int) -> dict:
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/vandal.py"],
            "ContainerArguments": ["/opt/ml/processing/input/data", "/opt/ml/processing/output", str(exit_code)],
        },
        "ProcessingInputs": [
            {"InputName": "code", "S3Input": {"S3Uri": "s3://bucket/code/vandal.py", "LocalPath": "/opt/ml/processing/input/code",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "data", "S3Input": {"S3Uri": "s3://bucket/raw/", "LocalPath": "/opt/ml/processing/input/data",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}},
        ],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": f"s3://bucket/out/{name}", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }


def stage(s3: LocalS3) -> None:
    s3.put_bytes("s3://bucket/code/vandal.py", VANDAL.encode())
    s3.put_bytes("s3://bucket/raw/table.csv", TABLE)


def test_a_job_cannot_change_a_bucket_object_through_its_input(backend, context):
    stage(context.s3)
    etag = context.s3.head("s3://bucket/raw/table.csv")["ETag"]
    backend.call("CreateProcessingJob", request("vandal-ok", 0))
    done = backend.wait("processing", "vandal-ok", timeout=60)
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    # every write was refused, and the object is byte for byte what was uploaded
    assert context.s3.get_bytes("s3://bucket/out/vandal-ok/refused.txt").decode() == "r+b,ab,wb,truncate"
    assert context.s3.get_bytes("s3://bucket/raw/table.csv") == TABLE
    assert context.s3.head("s3://bucket/raw/table.csv")["ETag"] == etag
    # the input was a link to the object's file, not a copy of it
    folder = context.work_dir("processing-jobs", "vandal-ok")
    linked = folder / "ml" / "processing" / "input" / "data" / "table.csv"
    assert os.path.samefile(linked, context.s3.path("s3://bucket/raw/table.csv"))
    assert "hard-linked read-only" in (folder / "logs" / "emulator.log").read_text()


def test_outputs_are_moved_into_the_bucket_not_copied(backend, context):
    stage(context.s3)
    backend.call("CreateProcessingJob", request("mover", 0))
    assert backend.wait("processing", "mover", timeout=60)["ProcessingJobStatus"] == "Completed"
    output = context.work_dir("processing-jobs", "mover") / "ml" / "processing" / "output"
    assert list(output.iterdir()) == []  # renamed away: the bucket holds the only copy
    assert context.s3.get_bytes("s3://bucket/out/mover/result.csv") == b"done\n"
    assert "moved" in (output.parents[2] / "logs" / "emulator.log").read_text()


def test_a_failed_job_promotes_no_output(backend, context):
    stage(context.s3)
    backend.call("CreateProcessingJob", request("vandal-fails", 3))
    done = backend.wait("processing", "vandal-fails", timeout=60)
    assert done["ProcessingJobStatus"] == "Failed"
    assert context.s3.list("s3://bucket/out/vandal-fails/") == []
    # what it wrote stays in its folder, for whoever investigates
    output = context.work_dir("processing-jobs", "vandal-fails") / "ml" / "processing" / "output"
    assert (output / "result.csv").read_text() == "done\n"
    assert context.s3.get_bytes("s3://bucket/raw/table.csv") == TABLE


def test_a_failed_training_job_promotes_no_model(backend, context):
    channels = abalone_channels(context.s3, rows=200)
    broken = training_request("train-broken", channels, {"objective": "no:such-objective", "num_round": "5"})
    backend.call("CreateTrainingJob", broken)
    assert backend.wait("training", "train-broken", timeout=120)["TrainingJobStatus"] == "Failed"
    assert context.s3.list("s3://bucket/models/train-broken/") == []


def test_training_channels_are_links_and_the_model_is_moved(backend, context):
    channels = abalone_channels(context.s3, rows=300)
    backend.call("CreateTrainingJob", training_request("train-links", channels))
    done = backend.wait("training", "train-links", timeout=120)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    folder = context.work_dir("training-jobs", "train-links")
    train = folder / "ml" / "input" / "data" / "train" / "train.csv"
    assert os.path.samefile(train, context.s3.path("s3://bucket/abalone/train/train.csv"))
    assert not os.access(train, os.W_OK) or os.geteuid() == 0  # read-only (root's access() says yes)
    assert train.stat().st_mode & 0o222 == 0
    assert context.s3.exists(done["ModelArtifacts"]["S3ModelArtifacts"])
    assert not list(folder.glob("*.tar.gz"))  # the archive was renamed into the bucket
