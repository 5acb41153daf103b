"""Disk over real runs of the synthesized template: after each execution its job folders keep logs and
configuration only; `clean` prunes an old execution with its jobs and run data, and everything still
in use — the model the endpoint serves, what a registered model package names, the champion record —
survives, so the endpoint keeps answering."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest

from emulator.app.prune import prune
from emulator.cloud.deploy import deploy
from emulator.runtime import Runtime
from emulator.storage.retention import disk_bytes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ABALONE = PROJECT_ROOT / "data" / "abalone.csv"
SMALL = {
    "candidates": [{"name": "xgboost", "family": "xgboost"}],  # one candidate: this test is about something else
    "hyperparameters": {"num_round": "30", "max_depth": "4", "eta": "0.2", "subsample": "0.8",
                        "colsample_bytree": "0.8", "min_child_weight": "1", "early_stopping_rounds": "5"},
    "tuning_max_jobs": 2,
    "tuning_max_parallel_jobs": 2,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import aws_cdk

    sys.path.insert(0, str(PROJECT_ROOT))
    import app as pipeline_app

    outdir = tmp_path_factory.mktemp("retention") / "cdk.out"
    pipeline_app.build_app(aws_cdk.App(outdir=str(outdir), context=pipeline_app.cdk_json_context())).synth()
    state = tmp_path_factory.mktemp("retention-state")
    deployment = deploy(outdir, state)
    runtime = Runtime.open(state, PROJECT_ROOT, deployment=deployment, time_scale=0.01)
    machine = deployment.state_machines[0]
    bucket, prefix = runtime.events.upload_trigger()
    raw = f"s3://{bucket}/{prefix}abalone.csv"
    runtime.s3.put_file(raw, ABALONE)
    old = runtime.launch(machine, {"input_s3_uri": raw, **SMALL}, "old-run")
    new = runtime.launch(machine, {"input_s3_uri": raw, **SMALL, "tuning_enabled": False,
                                   "no_worse_than_champion": False}, "new-run")
    assert old.status == new.status == "SUCCEEDED", (old.cause, new.cause)
    yield runtime, bucket, raw
    runtime.close()


def work(runtime: Runtime, kind: str) -> list[Path]:
    return sorted((runtime.layout.sagemaker_work_root / kind).glob("*"))


def test_finished_job_folders_keep_logs_and_config_only(runs):
    runtime, _, raw = runs
    trainings = work(runtime, "training-jobs")
    assert len(trainings) >= 4  # two tuning trials and the final training of each run
    for folder in trainings:
        assert (folder / "logs" / "stdout.log").is_file() and (folder / "logs" / "emulator.log").is_file()
        assert (folder / "ml" / "input" / "config" / "hyperparameters.json").is_file()
        assert not (folder / "ml" / "input" / "data").exists() and not (folder / "ml" / "model").exists()
    for folder in work(runtime, "processing-jobs"):
        assert (folder / "logs" / "stdout.log").is_file()
        assert not (folder / "ml" / "processing").exists()  # inputs were links, outputs were moved out
    assert runtime.s3.get_bytes(raw) == ABALONE.read_bytes()  # the job folders linked it; it is unchanged


def test_clean_prunes_the_old_run_and_keeps_what_is_in_use(runs):
    runtime, bucket, raw = runs
    layout = runtime.layout
    old_objects = runtime.s3.list(f"s3://{bucket}/runs/old-run-")
    assert any(uri.endswith("train.csv") for uri in old_objects)
    package = runtime.sagemaker.call("ListModelPackages", {"ModelPackageGroupName": "ml-pipeline-models",
                                                           "SortOrder": "Ascending"})["ModelPackageSummaryList"][0]
    described = runtime.sagemaker.call("DescribeModelPackage", {"ModelPackageName": package["ModelPackageArn"]})
    old_model = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert "/runs/old-run-" in old_model
    champion = runtime.s3.list(f"s3://{bucket}/champion/")
    before = disk_bytes([layout.root])

    dry = prune(layout, keep=1, dry_run=True)
    assert [e.name for e in dry.executions] == ["old-run"] and runtime.s3.list(f"s3://{bucket}/runs/old-run-") == old_objects
    assert sorted(dry.objects + dry.objects_in_use) == old_objects

    report = prune(layout, keep=1)
    assert [e.name for e in report.executions] == ["old-run"]
    assert not layout.execution_dir(runtime.deployment.state_machines[0].name, "old-run").exists()
    assert layout.execution_dir(runtime.deployment.state_machines[0].name, "new-run").is_dir()
    left = runtime.s3.list(f"s3://{bucket}/runs/old-run-")
    assert old_model in left  # a registered model package names it
    assert not any(uri.endswith("train.csv") for uri in left)
    assert any(uri.endswith("train.csv") for uri in runtime.s3.list(f"s3://{bucket}/runs/new-run-"))  # kept whole
    assert runtime.s3.list(f"s3://{bucket}/champion/") == champion
    assert runtime.s3.get_bytes(raw) == ABALONE.read_bytes()  # uploads are the user's
    assert report.freed > 0 and disk_bytes([layout.root]) < before
    assert any("tuning" in job for job in report.jobs)
    # the tuning trials made nothing in use: gone; the final training and the preprocess (its featurizer
    # is the serial pipeline's first container) made what the registered package names: kept
    old_trainings = [f.name for f in work(runtime, "training-jobs") if f.name.startswith("old-run")]
    assert len(old_trainings) == 1 and old_trainings[0].endswith("-xgboost-train")  # the one candidate's
    assert any(job.endswith("-train") for job in report.jobs_in_use)
    assert any(job.endswith("-prep") for job in report.jobs_in_use)
    # the old run's trials (named after its tuning job, which has no room for the execution's name)
    assert sum(job.startswith("training-jobs/") for job in report.jobs) == SMALL["tuning_max_jobs"]

    client = boto3.client("sagemaker-runtime", endpoint_url=runtime.invoke_server_url(), region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    batch = [uri for uri in runtime.s3.list(f"s3://{bucket}/runs/new-run-") if "/processed/batch/" in uri]
    row = runtime.s3.get_bytes(batch[0]).decode().splitlines()[0]
    response = client.invoke_endpoint(EndpointName="ml-pipeline-endpoint", ContentType="text/csv", Body=row)
    assert 1 <= float(response["Body"].read().decode()) <= 30
    assert old_model in report.objects_in_use  # reported, so `clean` can say what it kept
