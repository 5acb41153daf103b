"""Raw rows in, the user's labels out, through the real synthesized template run in the emulator.

For a regression table (abalone), a yes/no table (churn: dates, an ID column, messy spellings) and a
multiclass one (iris with species names), the pipeline trains and deploys the serial inference
pipeline; then the test split's raw rows (the batch file the pipeline wrote) go through the endpoint
(boto3 sagemaker-runtime against the local invoke server) and through the run's batch transform,
and every answer equals the in-process pipeline: featurize (transform_with_schema), predict (the
trained booster), decode (the schema's labels). Bad requests answer 400 naming the column, and the
endpoint keeps serving. Small budgets: tuning off, 20 rounds.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tarfile
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from botocore.exceptions import ClientError
from sklearn.datasets import load_iris

from emulator.cloud.deploy import deploy
from emulator.runtime import Runtime
from processing_scripts import preprocess

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT / "tests"))
import user_tables

ENDPOINT = "ml-pipeline-endpoint"
SMALL = {"hyperparameters": {"num_round": "20", "max_depth": "4", "eta": "0.3"}, "tuning_enabled": False,
         "candidates": [{"name": "xgboost", "family": "xgboost"}],  # the XGBoost serving path (the forest's: test_competition)
         # each table replaces the previous use case on the one endpoint (its champion record is removed)
         "no_worse_than_champion": False}


def iris_species(folder: Path) -> Path:
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns={"target": "species"})
    frame["species"] = [data.target_names[i] for i in data.target]
    path = folder / "iris.csv"
    frame.to_csv(path, index=False)
    return path


TABLES = {  # name -> (writer, target, problem type)
    "abalone": (lambda folder: PROJECT_ROOT / "data" / "abalone.csv", "rings", "regression"),
    "churn": (user_tables.churn, "churn", "binary"),
    "iris": (iris_species, "species", "multiclass"),
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    import aws_cdk

    sys.path.insert(0, str(PROJECT_ROOT))
    import app as pipeline_app

    outdir = tmp_path_factory.mktemp("serving") / "cdk.out"
    pipeline_app.build_app(aws_cdk.App(outdir=str(outdir), context=pipeline_app.cdk_json_context())).synth()
    state = tmp_path_factory.mktemp("state")
    runtime = Runtime.open(state, PROJECT_ROOT, deployment=deploy(outdir, state), time_scale=0.01)
    yield runtime
    runtime.close()


class Deployed:
    """One table trained and deployed; what the in-process pipeline needs, read from what the run wrote."""

    def __init__(self, runtime: Runtime, name: str, output: dict):
        self.runtime, self.name, self.output = runtime, name, output
        s3 = runtime.s3
        run = output["batch_predictions"].removesuffix("batch-predictions/")
        self.schema = json.loads(s3.get_bytes(run + "processed/schema/schema.json"))
        self.batch_lines = s3.get_bytes(run + "processed/batch/batch.csv").decode().splitlines()
        config = runtime.sagemaker.call("DescribeEndpointConfig", {
            "EndpointConfigName": runtime.sagemaker.call("DescribeEndpoint", {"EndpointName": ENDPOINT})["EndpointConfigName"]})
        self.model = runtime.sagemaker.call("DescribeModel", {"ModelName": config["ProductionVariants"][0]["ModelName"]})
        with tarfile.open(fileobj=io.BytesIO(s3.get_bytes(self.model["Containers"][1]["ModelDataUrl"]))) as tar:
            self.booster = xgb.Booster()
            self.booster.load_model(bytearray(tar.extractfile("xgboost-model").read()))
        predictions = s3.list(output["batch_predictions"])
        self.batch_answers = b"".join(s3.get_bytes(p) for p in predictions).decode().splitlines()

    def expected(self, lines: list[str]) -> list[str]:
        """The in-process pipeline on raw CSV lines: featurize, predict, decode, as CSV answer lines."""
        frame = pd.read_csv(io.StringIO("\n".join(lines)), header=None, names=self.schema["input_columns"],
                            skipinitialspace=True)
        scores = self.booster.predict(xgb.DMatrix(preprocess.transform_with_schema(self.schema, frame)))
        return [",".join(map(_cell, row)) for row in self.decoded(scores)]

    def decoded(self, scores: np.ndarray) -> list[tuple]:
        labels = self.schema["labels"]
        if self.schema["problem_type"] == "regression":
            return [(float(s),) for s in scores]
        if self.schema["problem_type"] == "binary":
            return [(labels[1], float(p)) if float(p) > 0.5 else (labels[0], 1.0 - float(p)) for p in scores]
        return [(labels[int(np.argmax(row))], float(row[int(np.argmax(row))])) for row in scores]


def _cell(value) -> str:
    if isinstance(value, float):
        return repr(value)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([value])
    return buffer.getvalue()


def train(pipeline: Runtime, name: str, folder: Path) -> Deployed:
    writer, target, _ = TABLES[name]
    bucket, prefix = pipeline.events.upload_trigger()
    uri = f"s3://{bucket}/{prefix}{name}.csv"
    pipeline.s3.put_bytes(uri, writer(folder).read_bytes())
    champion = f"s3://{bucket}/champion/{ENDPOINT}/evaluation.json"
    if pipeline.s3.exists(champion):
        pipeline.s3.delete(champion)  # replacing the use case on purpose, as ChampionMismatch says to
    result = pipeline.launch(pipeline.deployment.state_machines[0],
                             {"input_s3_uri": uri, "target_column": target, **SMALL}, f"serve-{name}")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return Deployed(pipeline, name, result.output)


@pytest.fixture(scope="module")
def runtime_client(pipeline):
    return boto3.client("sagemaker-runtime", endpoint_url=pipeline.invoke_server_url(), region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def invoke(client, body: str, content_type: str = "text/csv", accept: str = "text/csv") -> str:
    response = client.invoke_endpoint(EndpointName=ENDPOINT, ContentType=content_type, Accept=accept, Body=body)
    return response["Body"].read().decode()


def refused(client, body: str, content_type: str = "text/csv") -> dict:
    with pytest.raises(ClientError) as caught:
        invoke(client, body, content_type)
    return caught.value.response


@pytest.mark.parametrize("name", list(TABLES))
def test_raw_rows_through_the_endpoint_and_batch_transform_equal_the_in_process_pipeline(
        pipeline, runtime_client, name, tmp_path):
    table = train(pipeline, name, tmp_path)
    schema = table.schema
    assert schema["problem_type"] == TABLES[name][2]
    assert [c["ContainerHostname"] for c in table.model["Containers"]] == ["featurizer", "model", "decoder"]
    assert table.model["InferenceExecutionConfig"] == {"Mode": "Serial"}
    lines = table.batch_lines
    header = ",".join(schema["input_columns"])
    assert lines and lines[0] != header and len(lines[0].split(",")) == len(schema["input_columns"])
    expected = table.expected(lines)

    # the whole raw test split in one request, and one row per request
    assert invoke(runtime_client, "\n".join(lines)).splitlines() == expected
    assert [invoke(runtime_client, line).strip() for line in lines[:8]] == expected[:8]
    # a header line matching the request format is skipped
    assert invoke(runtime_client, header + "\n" + "\n".join(lines[:3])).splitlines() == expected[:3]
    # batch transform of the raw batch file the pipeline wrote: the same answers
    assert table.batch_answers == expected

    # JSON by column name, answered in JSON: the label, its probability and every class's
    frame = pd.read_csv(io.StringIO("\n".join(lines[:5])), header=None, names=schema["input_columns"], dtype=str,
                        keep_default_na=False)
    instances = [{k: (v if v != "" else None) for k, v in row.items()} for row in frame.to_dict(orient="records")]
    answer = json.loads(invoke(runtime_client, json.dumps({"instances": instances}), "application/json",
                               "application/json"))["predictions"]
    if schema["problem_type"] == "regression":
        assert [repr(p["score"]) for p in answer] == expected[:5]
    else:
        assert [f"{_cell(p['label'])},{p['probability']!r}" for p in answer] == expected[:5]
        assert all(set(p["probabilities"]) == set(schema["labels"]) for p in answer)
        assert {p["label"] for p in answer} <= set(schema["labels"])
        # the labels as the uploaded file spelt them, never an encoded index
        assert not {line.rsplit(",", 1)[0] for line in expected} & {"0", "1", "2", "0.0", "1.0"}
    if name == "churn":
        assert {line.rsplit(",", 1)[0] for line in expected} <= {"Yes", "No", "yes", "no", "YES", "NO"}
    if name == "iris":
        assert {line.rsplit(",", 1)[0] for line in expected} <= {"setosa", "versicolor", "virginica"}

    if name == "abalone":  # `make run`'s summary asks the endpoint about the sample's first raw row
        from emulator.app.summary import print_pipeline_summary

        printed: list[str] = []
        print_pipeline_summary(pipeline, table.output, write=printed.append, source=PROJECT_ROOT / "data" / "abalone.csv")
        with open(PROJECT_ROOT / "data" / "abalone.csv") as handle:
            reader = csv.reader(handle)
            next(reader)  # the header
            first = next(reader)
        raw_row = ",".join(first[:-1])  # rings is the last column
        at = printed.index("  invoke_endpoint   boto3 sagemaker-runtime, the first data row of abalone.csv without 'rings':")
        assert printed[at + 1].strip() == raw_row
        assert printed[at + 2].strip() == "-> " + table.expected([raw_row])[0]

    # bad requests: 400 from the featurizer naming the column (and row); the endpoint keeps serving
    numeric = next(c["name"] for c in schema["source_columns"] if c["kind"] == "numeric")
    at = schema["input_columns"].index(numeric)
    cells = next(csv.reader([lines[0]]))
    wrong_count = ",".join(cells[:-1])
    not_a_number = ",".join("abc" if i == at else c for i, c in enumerate(cells))
    missing = json.dumps({"instances": [{k: v for k, v in instances[0].items() if k != numeric}]})
    for body, content_type, named in ((wrong_count, "text/csv", schema["input_columns"][-1]),
                                      (not_a_number, "text/csv", numeric),
                                      (missing, "application/json", numeric)):
        error = refused(runtime_client, body, content_type)
        assert error["Error"]["Code"] == "ModelError"
        assert error["OriginalStatusCode"] == 400, error
        assert "from featurizer" in error["Error"]["Message"]
        assert named in error["OriginalMessage"] and "Row 1" in error["OriginalMessage"], error["OriginalMessage"]
        assert invoke(runtime_client, lines[0]).strip() == expected[0]
