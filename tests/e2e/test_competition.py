"""Models compete, end to end offline: the real template, XGBoost (built-in twin) and the Random Forest
(scikit-learn twin, script mode) trained side by side on abalone, the leaderboard with paired intervals,
the winner by the stated rule deployed as the serial pipeline's middle container — endpoint and batch
transform — every candidate in the registry, and SHAP explanations on the table's own columns.

Budgets are tiny (40 rounds, 30 trees, no tuning: the forest's search runs in test_offline_pipeline).
"""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import joblib
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from processing_scripts import preprocess

from .test_offline_pipeline import ABALONE, Pipeline, entered

XGBOOST = {"name": "xgboost", "family": "xgboost",
           "hyperparameters": {"num_round": "40", "max_depth": "4", "eta": "0.2", "early_stopping_rounds": "10"}}
FOREST = {"name": "random_forest", "family": "random_forest", "hyperparameters": {"n_estimators": "30", "max_depth": "10"}}
BASE = {"tuning_enabled": False, "no_worse_than_champion": False}
WEIGHTS = {"whole weight", "shucked weight", "viscera weight", "shell weight"}


@pytest.fixture(scope="module")
def pipeline(assembly, tmp_path_factory):
    pipe = Pipeline(assembly, tmp_path_factory.mktemp("compete"))
    yield pipe
    pipe.runtime.close()


def run(pipeline: Pipeline, name: str, candidates: list[dict]):
    uri = pipeline.upload(f"{name}.csv", ABALONE.read_bytes())
    result = pipeline.run(name, {"input_s3_uri": uri, **BASE, "candidates": candidates})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return result


@pytest.fixture(scope="module")
def compete(pipeline):
    return run(pipeline, "compete", [XGBOOST, FOREST])


# a classifier's criterion for this regression: validation knows the word, the script refuses it
BROKEN = {"name": "forest_gini", "family": "random_forest", "hyperparameters": {**FOREST["hyperparameters"], "criterion": "gini"}}


@pytest.fixture(scope="module")
def forest_wins(pipeline, compete):
    """XGBoost held to one round, the forest as before, and a forest whose script raises: one run."""
    weak = {**XGBOOST, "hyperparameters": {"num_round": "1", "max_depth": "2", "eta": "0.05"}}
    return run(pipeline, "forest-wins", [weak, FOREST, BROKEN])


class Served:
    """What the endpoint serves now, read back from SageMaker and S3, and the same model in-process."""

    def __init__(self, pipeline: Pipeline, output: dict):
        s3, sagemaker = pipeline.runtime.s3, pipeline.sagemaker()
        self.s3 = s3
        run_prefix = output["batch_predictions"].removesuffix("batch-predictions/")
        self.schema = json.loads(s3.get_bytes(run_prefix + "processed/schema/schema.json"))
        self.batch_lines = s3.get_bytes(run_prefix + "processed/batch/batch.csv").decode().splitlines()
        self.batch_answers = b"".join(s3.get_bytes(p) for p in s3.list(output["batch_predictions"])).decode().splitlines()
        config = sagemaker.call("DescribeEndpointConfig", {"EndpointConfigName": pipeline.endpoint()["EndpointConfigName"]})
        self.model = sagemaker.call("DescribeModel", {"ModelName": config["ProductionVariants"][0]["ModelName"]})
        self.middle = self.model["Containers"][1]
        with tarfile.open(fileobj=io.BytesIO(s3.get_bytes(self.middle["ModelDataUrl"]))) as tar:
            names = tar.getnames()
            if "xgboost-model" in names:
                self.family, self.model_object = "xgboost", xgb.Booster()
                self.model_object.load_model(bytearray(tar.extractfile("xgboost-model").read()))
            else:
                self.family = "random_forest"
                self.model_object = joblib.load(io.BytesIO(tar.extractfile("model.joblib").read()))

    def predict(self, lines: list[str]) -> np.ndarray:
        """The in-process pipeline on raw CSV lines: featurize with the run's schema, then model.predict."""
        frame = pd.read_csv(io.StringIO("\n".join(lines)), header=None, names=self.schema["input_columns"],
                            skipinitialspace=True)
        features = preprocess.transform_with_schema(self.schema, frame)
        if self.family == "xgboost":
            return self.model_object.predict(xgb.DMatrix(features))
        return self.model_object.predict(features)


def invoke(pipeline: Pipeline, lines: list[str]) -> list[float]:
    client = boto3.client("sagemaker-runtime", endpoint_url=pipeline.runtime.invoke_server_url(), region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    response = client.invoke_endpoint(EndpointName="ml-pipeline-endpoint", ContentType="text/csv", Accept="text/csv",
                                      Body="\n".join(lines))
    return [float(v) for v in response["Body"].read().decode().split()]


def by_rule(board: list[dict], direction: str = "lower") -> str:
    """README's rule, from the leaderboard's own figures: the best metric leads; those whose paired
    interval of the difference holds 0 tie with it; the smallest model of the tied wins."""
    trained = [row for row in board if row["status"] == "Succeeded"]
    sign = 1 if direction == "lower" else -1
    leader = min(trained, key=lambda row: sign * row["value"])
    tied = [leader] + [row for row in trained if row is not leader and row["difference_ci95"][0] <= 0 <= row["difference_ci95"][1]]
    return min(tied, key=lambda row: (row["size_bytes"], sign * row["value"]))["name"]


def test_both_candidates_train_side_by_side_and_the_leaderboard_has_intervals(pipeline, compete):
    out = compete.output
    board = out["leaderboard"]
    assert {row["name"] for row in board} == {"xgboost", "random_forest"}
    for row in board:
        assert row["status"] == "Succeeded" and row["metric"] == "rmse"
        low, high = row["ci95"]
        assert low < row["value"] < high and high - low < 1.0  # 627 test rows: a tight interval
        assert row["training_seconds"] >= 1 and row["size_bytes"] > 0 and row["latency_ms"] > 0
    assert out["winner"] == by_rule(board)
    assert len(out["leaderboard_table"]) == 3 and all(len(line) < 200 for line in out["leaderboard_table"])
    # MaxConcurrency 2: the candidates' work (training to evaluation) overlaps in time
    sagemaker = pipeline.sagemaker()
    spans = []
    for candidate in compete.output["leaderboard"]:
        name = next(n for n in _job_names(compete, "TrainingJobName") if f"-{candidate['name'].replace('_', '-')}-" in n)
        job = sagemaker.call("DescribeTrainingJob", {"TrainingJobName": name})
        evaluation = sagemaker.call("DescribeProcessingJob", {"ProcessingJobName": name.replace("-train", "-eval")})
        spans.append((job["TrainingStartTime"], evaluation["ProcessingEndTime"]))
    (a_start, a_end), (b_start, b_end) = spans
    assert a_start < b_end and b_start < a_end, spans


def _job_names(result, key: str) -> list[str]:
    names = []
    for event in result.history:
        details = event.get("taskSucceededEventDetails")
        if details and key in details.get("output", ""):
            names.append(json.loads(details["output"])[key])
    return names


def test_the_winner_serves_raw_rows_through_the_featurizer_and_batch_transform_uses_it(pipeline, compete):
    served = Served(pipeline, compete.output)
    family = next(row["family"] for row in compete.output["leaderboard"] if row["winner"])
    assert served.family == family
    rows = served.batch_lines[:25]
    answers = invoke(pipeline, rows)
    assert answers == pytest.approx(served.predict(rows).tolist(), rel=1e-5)
    assert [float(a) for a in served.batch_answers] == pytest.approx(served.predict(served.batch_lines).tolist(), rel=1e-5)


def test_every_candidate_is_registered_the_loser_rejected_with_its_reason(pipeline, compete):
    sagemaker = pipeline.sagemaker()
    packages = sagemaker.call("ListModelPackages", {"ModelPackageGroupName": "ml-pipeline-models", "MaxResults": 100})
    mine = []
    for summary in packages["ModelPackageSummaryList"]:
        package = sagemaker.call("DescribeModelPackage", {"ModelPackageName": summary["ModelPackageArn"]})
        metadata = package.get("CustomerMetadataProperties", {})
        if compete.execution_arn in metadata.values():
            mine.append(package)
    assert len(mine) == 2
    status = {p["CustomerMetadataProperties"]["candidate"]: p for p in mine}
    winner, loser = status[compete.output["winner"]], status[({"xgboost", "random_forest"} - {compete.output["winner"]}).pop()]
    assert winner["ModelApprovalStatus"] == "Approved"
    assert winner["ModelMetrics"]["Explainability"]["Report"]["S3Uri"] == compete.output["explainability"]
    assert loser["ModelApprovalStatus"] == "Rejected" and "Not selected" in loser["ModelPackageDescription"]
    assert "Register other candidates" in entered(compete)


def test_explanations_name_the_real_top_features_on_the_original_columns(pipeline, compete):
    s3 = pipeline.runtime.s3
    for row in compete.output["leaderboard"]:
        explanation = json.loads(s3.get_bytes(row["explainability"]))
        columns = [entry["column"] for entry in explanation["feature_importance"]]
        # the one-hot columns of sex summed back to "sex": the table's own eight columns
        assert sorted(columns) == sorted(json.loads(s3.get_bytes(row["evaluation_report"]))["input_columns"])
        assert explanation["top_feature"] in WEIGHTS and explanation["top_feature"] != "sex", explanation
        assert row["top_feature"] == explanation["top_feature"]
        chart = row["explainability"].replace("explainability.json", "explainability.png")
        assert s3.get_bytes(chart)[:8] == b"\x89PNG\r\n\x1a\n"
        if row["winner"]:
            assert compete.output["explainability"] == row["explainability"]


def test_a_forest_configured_to_win_is_deployed_and_answers_as_in_process(pipeline, forest_wins):
    out = forest_wins.output
    assert out["winner"] == "random_forest" == by_rule(out["leaderboard"])
    served = Served(pipeline, out)
    assert served.family == "random_forest"
    assert "/sagemaker-scikit-learn:" in served.middle["Image"]
    assert served.middle["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    rows = served.batch_lines[:40]
    assert invoke(pipeline, rows) == pytest.approx(served.predict(rows).tolist(), rel=1e-6)
    assert [float(a) for a in served.batch_answers] == pytest.approx(served.predict(served.batch_lines).tolist(), rel=1e-6)


def test_a_candidate_whose_script_raises_fails_alone_and_the_other_deploys(pipeline, forest_wins):
    board = forest_wins.output["leaderboard"]
    failed = next(row for row in board if row["name"] == "forest_gini")
    assert failed["status"] == "Failed" and failed["error"] == "States.TaskFailed"
    assert "HyperparameterError: criterion='gini' does not fit a regression forest" in failed["cause"], failed["cause"]
    assert any("forest_gini" in line and "failed" in line for line in forest_wins.output["leaderboard_table"])
    assert [row["status"] for row in board].count("Succeeded") == 2
    assert forest_wins.output["winner"] == "random_forest"
    assert Served(pipeline, forest_wins.output).family == "random_forest"
    assert pipeline.endpoint()["EndpointStatus"] == "InService"


@pytest.fixture(scope="module")
def bank(pipeline, forest_wins):
    """The binary sample: AUC (higher is better), the forest a classifier, labels yes/no at the endpoint."""
    from .test_offline_pipeline import PROJECT_ROOT

    champion = f"s3://{pipeline.bucket}/champion/ml-pipeline-endpoint/evaluation.json"
    pipeline.runtime.s3.delete(champion)  # another use case on this one endpoint, on purpose (ChampionMismatch)
    uri = pipeline.upload("bank.csv", (PROJECT_ROOT / "data" / "bank-marketing.csv").read_bytes())
    result = pipeline.run("bank", {"input_s3_uri": uri, **BASE, "target_column": "deposit", "candidates": [XGBOOST, FOREST]})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return result


def test_bank_marketing_competes_on_auc_and_the_winner_answers_in_the_tables_labels(pipeline, bank):
    board = bank.output["leaderboard"]
    assert {row["metric"] for row in board} == {"auc"} and all(row["status"] == "Succeeded" for row in board)
    assert all(0.8 < row["ci95"][0] <= row["value"] <= row["ci95"][1] <= 1 for row in board)
    assert bank.output["winner"] == by_rule(board, direction="higher")
    served = Served(pipeline, bank.output)
    rows = served.batch_lines[:30]
    client = boto3.client("sagemaker-runtime", endpoint_url=pipeline.runtime.invoke_server_url(), region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    answer = client.invoke_endpoint(EndpointName="ml-pipeline-endpoint", ContentType="text/csv", Accept="text/csv",
                                    Body="\n".join(rows))["Body"].read().decode().split()
    scores = served.predict(rows) if served.family == "xgboost" else _positive(served, rows)
    expected = [("yes", p) if p > 0.5 else ("no", 1 - p) for p in scores]
    assert [line.split(",")[0] for line in answer] == [label for label, _ in expected]
    assert [float(line.split(",")[1]) for line in answer] == pytest.approx([p for _, p in expected], rel=1e-5)
    for row in board:
        top = json.loads(pipeline.runtime.s3.get_bytes(row["explainability"]))["top_feature"]
        assert top in json.loads(pipeline.runtime.s3.get_bytes(row["evaluation_report"]))["input_columns"]


def _positive(served: Served, rows: list[str]) -> np.ndarray:
    """The forest's probability of the positive class (index 1), as its serving code answers."""
    frame = pd.read_csv(io.StringIO("\n".join(rows)), header=None, names=served.schema["input_columns"], skipinitialspace=True)
    return served.model_object.predict_proba(preprocess.transform_with_schema(served.schema, frame))[:, 1]
