"""Script-mode training jobs on the scikit-learn image: the sourcedir.tar.gz in (local) S3 fetched through the S3
API, the Random Forest trained, its metrics scraped by MetricDefinitions, in a job and in a tuning job."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile

import joblib
import numpy as np
import pytest
from sm_testkit import PROJECT_ROOT, ROLE, abalone_channels, channel
from test_hosting import runtime_client, wait_status

from emulator.services.s3.server import S3Server
from emulator.services.sagemaker.facade import SageMakerBackend
from stacks.images import PipelineImages
from stacks.training_code import json_encode_hyperparameters, script_mode_hyperparameters, sourcedir_archive
from training_scripts.random_forest import contract

SKLEARN_TRAINING_IMAGE = PipelineImages.for_region("us-east-1").sklearn_training
SOURCEDIR = "s3://bucket/code/random-forest/sourcedir.tar.gz"


@pytest.fixture
def s3_backend(context):
    """The backend with the S3 API served, as in a run: jobs reach it through AWS_ENDPOINT_URL_S3."""
    context.s3.put_bytes(SOURCEDIR, sourcedir_archive(PROJECT_ROOT / "training_scripts" / "random_forest"))
    with S3Server(context.s3) as server:
        backend = SageMakerBackend(dataclasses.replace(context, service_endpoints={"S3": server.url}))
        yield backend
        backend.close()


def script_mode(hyperparameters: dict, submit: str = SOURCEDIR, program: str = contract.PROGRAM) -> dict[str, str]:
    return {**script_mode_hyperparameters(program, submit, "us-east-1"), **json_encode_hyperparameters(hyperparameters)}


def rf_request(name: str, channels: dict, hyperparameters: dict[str, str]) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": SKLEARN_TRAINING_IMAGE, "TrainingInputMode": "File",
                                   "MetricDefinitions": contract.METRIC_DEFINITIONS},
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [channel(n, u) for n, u in channels.items()],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


def test_a_random_forest_trains_from_the_sourcedir_and_reports_its_metrics(s3_backend, context):
    channels = abalone_channels(context.s3, rows=800)
    request = rf_request("rf-1", channels, script_mode({"problem_type": "regression", "n_estimators": 20, "max_depth": 6}))
    s3_backend.call("CreateTrainingJob", request)
    done = s3_backend.wait("training", "rf-1", timeout=120)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")

    with tarfile.open(fileobj=io.BytesIO(context.s3.get_bytes(done["ModelArtifacts"]["S3ModelArtifacts"]))) as archive:
        names = archive.getnames()
        info = json.loads(archive.extractfile(contract.INFO_FILE).read())
        forest = joblib.load(io.BytesIO(archive.extractfile(contract.MODEL_FILE).read()))
    assert {"model.joblib", "model.json", "code/inference.py", "code/contract.py", "code/train.py"} <= set(names)
    assert type(forest).__name__ == "RandomForestRegressor" and forest.n_estimators == 20 and forest.max_depth == 6
    assert forest.n_jobs == 1  # predictions sum the trees in order: the same bits on every load
    assert info["problem_type"] == "regression" and info["n_features"] == 10

    scraped = {m["MetricName"]: m["Value"] for m in done["FinalMetricDataList"]}
    assert set(scraped) == {f"{c}:{m}" for c in ("train", "validation") for m in ("rmse", "mae", "mse", "r2")}
    for name, value in scraped.items():  # the printed line (10 significant digits) is the script's number
        assert value == pytest.approx(info["metrics"][name], rel=1e-9)
    assert 1.0 < scraped["validation:rmse"] < 4.0

    ml = context.layout.sagemaker_work_dir("training-jobs", "rf-1") / "ml"
    assert (ml / "code" / "train.py").is_file()  # the submit directory, downloaded through the S3 API
    assert (ml / "output" / "success").is_file()

    # the artifact serves on its own behind an endpoint (the scikit-learn image, its code/ folder)
    hosting = s3_backend.hosting
    hosting.create_model(ModelName="rf", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": PipelineImages.for_region("us-east-1").sklearn, "ModelDataUrl": done["ModelArtifacts"]["S3ModelArtifacts"],
        "Environment": contract.SERVING_ENVIRONMENT})
    hosting.create_endpoint_config(EndpointConfigName="rf", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "rf", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    hosting.create_endpoint(EndpointName="rf", EndpointConfigName="rf")
    assert wait_status(hosting, "rf", "InService")["EndpointStatus"] == "InService"
    rows = np.loadtxt(io.StringIO(context.s3.get_bytes(channels["validation"] + "validation.csv").decode()),
                      delimiter=",")[:25, 1:]
    answer = runtime_client(s3_backend.context.invoke_server_url()).invoke_endpoint(
        EndpointName="rf", ContentType="text/csv", Body="".join(",".join(map(repr, r)) + "\n" for r in rows.tolist()))
    assert json.loads(answer["Body"].read()) == {"predictions": [{"score": v} for v in forest.predict(rows).tolist()]}


def test_a_bad_hyperparameter_fails_the_job_with_the_scripts_named_error(s3_backend, context):
    channels = abalone_channels(context.s3, rows=200)
    s3_backend.call("CreateTrainingJob", rf_request("rf-bad", channels, script_mode(
        {"problem_type": "regression", "max_features": "most"})))
    done = s3_backend.wait("training", "rf-bad", timeout=120)
    assert done["TrainingJobStatus"] == "Failed"
    # the script wrote the failure file first; the toolkit keeps it
    assert done["FailureReason"].startswith("AlgorithmError: HyperparameterError: max_features='most' must be sqrt, log2")
    assert "FinalMetricDataList" not in done


def test_a_missing_sourcedir_fails_the_job_saying_so(s3_backend, context):
    channels = abalone_channels(context.s3, rows=200)
    missing = "s3://bucket/code/nothing/sourcedir.tar.gz"
    s3_backend.call("CreateTrainingJob", rf_request("rf-nocode", channels, script_mode({}, submit=missing)))
    done = s3_backend.wait("training", "rf-nocode", timeout=120)
    assert done["TrainingJobStatus"] == "Failed"
    assert f"Could not download sagemaker_submit_directory {missing}" in done["FailureReason"]


def test_tuning_a_random_forest_scrapes_the_objective_from_its_log(s3_backend, context):
    channels = abalone_channels(context.s3, rows=600)
    metric, direction = contract.OBJECTIVES[contract.REGRESSION]
    request = {
        "HyperParameterTuningJobName": "rf-tune",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": direction, "MetricName": metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "8"},
                                           {"Name": "min_samples_leaf", "MinValue": "1", "MaxValue": "10"}],
                # the SDK JSON-encodes categorical values for framework estimators
                "CategoricalParameterRanges": [{"Name": "max_features", "Values": ['"sqrt"', "0.5", "1.0"]}],
            },
            "RandomSeed": 3,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": script_mode({"problem_type": "regression", "n_estimators": 10}),
            "AlgorithmSpecification": {"TrainingImage": SKLEARN_TRAINING_IMAGE, "TrainingInputMode": "File",
                                       "MetricDefinitions": contract.metric_definitions(contract.REGRESSION)},
            "RoleArn": ROLE,
            "InputDataConfig": [channel(n, u) for n, u in channels.items()],
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/tuning/rf-tune"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
    }
    s3_backend.call("CreateHyperParameterTuningJob", request)
    done = s3_backend.wait("tuning", "rf-tune", timeout=180)
    assert done["HyperParameterTuningJobStatus"] == "Completed", done.get("FailureReason")
    assert done["ObjectiveStatusCounters"]["Succeeded"] == 3
    trials = s3_backend.call("ListTrainingJobsForHyperParameterTuningJob", {"HyperParameterTuningJobName": "rf-tune"})
    values = sorted(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials["TrainingJobSummaries"])
    best = done["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {"Type": "Minimize", "MetricName": metric,
                                                                    "Value": values[0]}
    trial = s3_backend.call("DescribeTrainingJob", {"TrainingJobName": best["TrainingJobName"]})
    assert trial["HyperParameters"]["_tuning_objective_metric"] == metric
    scraped = {m["MetricName"]: m["Value"] for m in trial["FinalMetricDataList"]}
    assert scraped[metric] == values[0]
    with tarfile.open(fileobj=io.BytesIO(context.s3.get_bytes(trial["ModelArtifacts"]["S3ModelArtifacts"]))) as archive:
        params = json.loads(archive.extractfile(contract.INFO_FILE).read())["params"]
    tuned = best["TunedHyperParameters"]
    assert params["max_depth"] == int(tuned["max_depth"]) and params["min_samples_leaf"] == int(tuned["min_samples_leaf"])
    assert params["max_features"] == json.loads(tuned["max_features"])
