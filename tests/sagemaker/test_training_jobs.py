"""Training jobs run the XGBoost twin in an /opt/ml-shaped folder and publish model.tar.gz."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import xgboost as xgb
from sm_testkit import abalone_channels, training_request

from emulator.services.sagemaker import exceptions as exc


@pytest.fixture
def channels(context):
    return abalone_channels(context.s3)


def test_training_job_writes_the_opt_ml_layout_and_uploads_a_loadable_model(backend, context, channels):
    arn = backend.call("CreateTrainingJob", training_request("abalone-1", channels))["TrainingJobArn"]
    assert arn.endswith(":training-job/abalone-1")
    done = backend.wait("training", "abalone-1", timeout=120)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    assert done["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]

    uri = "s3://bucket/models/abalone-1/output/model.tar.gz"
    assert done["ModelArtifacts"]["S3ModelArtifacts"] == uri
    with tarfile.open(fileobj=io.BytesIO(context.s3.get_bytes(uri))) as archive:
        assert archive.getnames() == ["xgboost-model"]
        booster = xgb.Booster()
        booster.load_model(bytearray(archive.extractfile("xgboost-model").read()))
    assert booster.num_boosted_rounds() == 20

    ml = context.layout.sagemaker_work_dir("training-jobs", "abalone-1") / "ml"
    assert json.loads((ml / "input/config/hyperparameters.json").read_text())["num_round"] == "20"
    assert set(json.loads((ml / "input/config/inputdataconfig.json").read_text())) == {"train", "validation"}
    assert (ml / "input/data/train/train.csv").is_file()

    metrics = {m["MetricName"]: m["Value"] for m in done["FinalMetricDataList"]}
    assert 0.5 < metrics["validation:rmse"] < 5 and 0 < metrics["train:rmse"] < metrics["validation:rmse"] * 2
    assert any(d["Name"] == "validation:rmse" for d in done["AlgorithmSpecification"]["MetricDefinitions"])
    assert done["TrainingTimeInSeconds"] >= 1


def test_algorithm_error_fails_the_job_with_the_containers_failure_file(backend, channels):
    bad = training_request("abalone-bad", channels, {"objective": "reg:squarederror", "num_round": "5", "not_a_param": "1"})
    backend.call("CreateTrainingJob", bad)
    done = backend.wait("training", "abalone-bad", timeout=60)
    assert done["TrainingJobStatus"] == "Failed"
    assert done["FailureReason"].startswith("AlgorithmError: ")
    assert "not_a_param" in done["FailureReason"]
    assert "ModelArtifacts" in done and not done["ModelArtifacts"]["S3ModelArtifacts"]


def test_stop_training_job_ends_it_stopped(backend, channels):
    backend.call("CreateTrainingJob", training_request("abalone-stop", channels, {"objective": "reg:squarederror", "num_round": "100000", "eta": "0.01"}))
    job = backend.jobs.training_job("abalone-stop")
    import time

    deadline = time.monotonic() + 30
    while job.process is None and time.monotonic() < deadline:
        time.sleep(0.05)
    backend.call("StopTrainingJob", {"TrainingJobName": "abalone-stop"})
    done = backend.wait("training", "abalone-stop", timeout=30)
    assert done["TrainingJobStatus"] == "Stopped"
    with pytest.raises(exc.ValidationException, match="terminal"):
        backend.call("StopTrainingJob", {"TrainingJobName": "abalone-stop"})


def test_injected_throttling_fails_only_the_first_call(backend, channels):
    backend.inject_fault("createTrainingJob", "ThrottlingException")
    with pytest.raises(exc.ThrottlingException):
        backend.call("CreateTrainingJob", training_request("abalone-throttle", channels))
    assert backend.call("CreateTrainingJob", training_request("abalone-throttle", channels))["TrainingJobArn"]
    assert backend.wait("training", "abalone-throttle", timeout=120)["TrainingJobStatus"] == "Completed"


def test_describe_unknown_training_job_is_resource_not_found(backend):
    with pytest.raises(exc.ResourceNotFound):
        backend.call("DescribeTrainingJob", {"TrainingJobName": "never-created"})



def wait_for_process(job, seconds: float = 30):
    import time

    deadline = time.monotonic() + seconds
    while job.process is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return job.process


def test_a_training_process_killed_from_outside_says_so_in_its_failure_reason(backend, channels):
    import os
    import signal

    backend.call("CreateTrainingJob", training_request("abalone-killed", channels, {"objective": "reg:squarederror", "num_round": "100000", "eta": "0.01"}))
    process = wait_for_process(backend.jobs.training_job("abalone-killed"))
    os.kill(process.popen.pid, signal.SIGKILL)  # as the OOM killer (or a person) would
    done = backend.wait("training", "abalone-killed", timeout=30)
    assert done["TrainingJobStatus"] == "Failed"
    reason = done["FailureReason"]
    assert reason.startswith("AlgorithmError: ") and "killed by signal 9 (SIGKILL)" in reason, reason
