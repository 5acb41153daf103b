"""Multi-instance jobs: one process per host with its own resourceconfig.json, inputs spread by
S3DataDistributionType, and the XGBoost twin training across hosts as the built-in container does."""

from __future__ import annotations

import io
import json
import re
import tarfile

import numpy as np
import xgboost as xgb
from sm_testkit import DATA, SKLEARN_IMAGE, XGBOOST_IMAGE, training_request

from emulator.services.sagemaker import cluster

ROWS = 3000
HPS = {"objective": "binary:logistic", "num_round": "30", "max_depth": "4", "eta": "0.3", "eval_metric": "auc",
       "tree_method": "hist"}


def _bank_rows() -> tuple[list[str], list[str], np.ndarray]:
    """Label-first numeric CSV lines of the bank sample (numeric columns only): train, validation and a
    test matrix (label first)."""
    import pandas as pd

    frame = pd.read_csv(DATA / "bank-marketing.csv").sample(ROWS + 1000, random_state=7)  # the file is sorted by label
    numeric = frame.select_dtypes("number")
    table = np.column_stack([(frame["deposit"] == "yes").astype(int), numeric.to_numpy()])
    lines = [",".join(str(v) for v in row) for row in table.tolist()]
    return lines[:ROWS], lines[ROWS:ROWS + 500], table[ROWS + 500:]


def _auc(booster: xgb.Booster, test: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(test[:, 0], booster.predict(xgb.DMatrix(test[:, 1:])))


def _model(context, name: str) -> xgb.Booster:
    with tarfile.open(fileobj=io.BytesIO(context.s3.get_bytes(f"s3://bucket/models/{name}/output/model.tar.gz"))) as tar:
        assert tar.getnames() == ["xgboost-model"]
        booster = xgb.Booster()
        booster.load_model(bytearray(tar.extractfile("xgboost-model").read()))
    return booster


def _sharded(request: dict, count: int) -> dict:
    request["ResourceConfig"]["InstanceCount"] = count
    for channel in request["InputDataConfig"]:
        if channel["ChannelName"] == "train":
            channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
    return request


def test_two_hosts_train_one_model_with_the_tracker_on_the_master(backend, context):
    train, validation, test = _bank_rows()
    # two objects under the train prefix: ShardedByS3Key gives each host one
    context.s3.put_bytes("s3://bucket/bank/train/part-0.csv", ("\n".join(train[0::2]) + "\n").encode())
    context.s3.put_bytes("s3://bucket/bank/train/part-1.csv", ("\n".join(train[1::2]) + "\n").encode())
    context.s3.put_bytes("s3://bucket/bank/validation/validation.csv", ("\n".join(validation) + "\n").encode())
    channels = {"train": "s3://bucket/bank/train/", "validation": "s3://bucket/bank/validation/"}
    backend.call("CreateTrainingJob", _sharded(training_request("bank-2", channels, HPS), 2))
    backend.call("CreateTrainingJob", training_request("bank-1", channels, HPS))
    job = backend.jobs.training_job("bank-2")
    done = backend.wait("training", "bank-2", timeout=180)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    assert backend.wait("training", "bank-1", timeout=180)["TrainingJobStatus"] == "Completed"

    folder = context.layout.sagemaker_work_dir("training-jobs", "bank-2")
    for rank, host in enumerate(["algo-1", "algo-2"]):
        ml = folder / "ml" if rank == 0 else folder / "hosts" / host / "ml"
        config = json.loads((ml / "input/config/resourceconfig.json").read_text())
        assert config["current_host"] == host and config["hosts"] == ["algo-1", "algo-2"]
        assert [p.name for p in (ml / "input/data/train").iterdir()] == [f"part-{rank}.csv"]
        assert (ml / "input/data/validation/validation.csv").is_file()
    # two twin processes, both alive while the collective ran: each joined with its own rank
    pids = {p.popen.pid for p in job.processes}
    assert len(job.processes) == 2 and len(pids) == 2
    log = job.processes[0].log_text()
    worker_log = job.processes[1].log_text()
    assert "RabitTracker started, worker_args:" in log
    assert re.search(r"algo-1 joined the collective as rank 0 of 2", log)
    assert re.search(r"^\[29\]\ttrain-auc:[0-9.]+\tvalidation-auc:[0-9.]+$", job.processes[0].stdout_path.read_text(), re.MULTILINE)
    assert re.search(r"algo-2 joined the collective as rank 1 of 2", worker_log)
    assert "Not the master host" in worker_log and not list((folder / "hosts/algo-2/ml/model").iterdir())
    peaks = cluster.read_resources(folder / "logs")
    assert set(peaks) == {"algo-1", "algo-2"} and all(v > 10 * 2**20 for v in peaks.values())

    # the same data on one host: the same quality on rows neither saw
    one, two = _model(context, "bank-1"), _model(context, "bank-2")
    assert two.num_boosted_rounds() == 30
    assert abs(_auc(one, test) - _auc(two, test)) < 0.01


def test_a_host_without_training_data_is_dropped_as_the_built_in_does(backend, context):
    train, validation, _ = _bank_rows()
    # one object, two hosts: algo-2's share of the sharded channel is empty
    context.s3.put_bytes("s3://bucket/one/train/train.csv", ("\n".join(train) + "\n").encode())
    context.s3.put_bytes("s3://bucket/one/validation/validation.csv", ("\n".join(validation) + "\n").encode())
    channels = {"train": "s3://bucket/one/train/", "validation": "s3://bucket/one/validation/"}
    backend.call("CreateTrainingJob", _sharded(training_request("bank-gap", channels, HPS), 2))
    job = backend.jobs.training_job("bank-gap")
    done = backend.wait("training", "bank-gap", timeout=180)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    worker_log = job.processes[1].log_text()
    assert "Host algo-2 does not have training data. Will broadcast to cluster" in worker_log
    assert "Host algo-2 not being used for distributed training." in worker_log
    assert "Only 1 host with training data, starting single node training." in job.processes[0].log_text()
    assert _model(context, "bank-gap").num_boosted_rounds() == 30


def test_processing_hosts_get_their_share_of_a_sharded_input(backend, context):
    for i in range(3):
        context.s3.put_bytes(f"s3://bucket/in/part-{i}.csv", f"{i}\n".encode())
    context.s3.put_bytes("s3://bucket/code/list.py", (
        b"import json, os, pathlib\n"
        b"ml = pathlib.Path(os.environ['SM_ML_ROOT'])\n"
        b"host = json.loads((ml / 'config/resourceconfig.json').read_text())['current_host']\n"
        b"names = sorted(p.name for p in (ml / 'processing/input/data').iterdir())\n"
        b"(ml / f'processing/output/{host}.json').write_text(json.dumps(names))\n"))
    request = {
        "ProcessingJobName": "shares", "RoleArn": "arn:aws:iam::000000000000:role/R",
        "AppSpecification": {"ImageUri": SKLEARN_IMAGE,
                             "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/list.py"]},
        "ProcessingInputs": [
            {"InputName": "code", "S3Input": {"S3Uri": "s3://bucket/code/", "LocalPath": "/opt/ml/processing/input/code",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File",
                                              "S3DataDistributionType": "FullyReplicated"}},
            {"InputName": "data", "S3Input": {"S3Uri": "s3://bucket/in/", "LocalPath": "/opt/ml/processing/input/data",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File",
                                              "S3DataDistributionType": "ShardedByS3Key"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": "s3://bucket/out/", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }
    backend.call("CreateProcessingJob", request)
    done = backend.wait("processing", "shares", timeout=120)
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    assert json.loads(context.s3.get_bytes("s3://bucket/out/algo-1.json")) == ["part-0.csv", "part-2.csv"]
    assert json.loads(context.s3.get_bytes("s3://bucket/out/algo-2.json")) == ["part-1.csv"]


def test_transform_on_two_instances_writes_what_one_instance_writes(backend, context):
    import pandas as pd

    from containers.xgboost.artifacts import model_archive

    frame = pd.read_csv(DATA / "abalone.csv")
    features = frame.drop(columns=["sex", "rings"]).to_numpy(np.float32)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "nthread": 1},
                        xgb.DMatrix(features, label=frame["rings"].to_numpy(np.float32)), 10)
    context.s3.put_bytes("s3://bucket/model/model.tar.gz", model_archive(booster))
    backend.hosting.create_model(ModelName="rings", ExecutionRoleArn="arn:aws:iam::000000000000:role/R",
                                 PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/model/model.tar.gz"})
    for i, rows in enumerate(np.array_split(features, 3)):
        context.s3.put_bytes(f"s3://bucket/batch/part-{i}.csv",
                             "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode())
    outputs = {}
    for count in (1, 2):
        name = f"score-{count}"
        backend.transform.create_transform_job(
            TransformJobName=name, ModelName="rings",
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/batch/"}},
                            "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": f"s3://bucket/{name}", "AssembleWith": "Line", "Accept": "text/csv"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": count}, BatchStrategy="MultiRecord")
        done = backend.transform.wait(name, timeout=120)
        assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
        outputs[count] = {uri.rsplit("/", 1)[1]: context.s3.get_bytes(uri) for uri in context.s3.list(f"s3://bucket/{name}/")}
    assert outputs[1] == outputs[2] and len(outputs[2]) == 3
    folder = context.layout.sagemaker_work_dir("transform-jobs", "score-2")
    peaks = cluster.read_resources(folder / "logs")
    assert set(peaks) == {"algo-1", "algo-2"} and all(v > 10 * 2**20 for v in peaks.values())
    # the objects were spread: algo-1 scored part-0 and part-2, algo-2 part-1
    assert "instance 2: 1 object(s)" in (folder / "logs/algo-2/stdout.log").read_text()
