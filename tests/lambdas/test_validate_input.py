"""validate_input on real CSV objects in moto S3: the plan for good input, a named error otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.validate_input import handler as validate
from stacks.config import PipelineConfig

DATA = Path(__file__).resolve().parents[2] / "data"
BUCKET = "pipeline-data"  # the bucket conftest.py creates
EXECUTION_ARN = "arn:aws:states:us-east-1:000000000000:execution:Pipeline:console-run-2026-11-23T10-00-00"



def invoke(key: str, **overrides):
    defaults = PipelineConfig().execution_defaults()
    config = {**defaults, "input_s3_uri": f"s3://{BUCKET}/{key}", **overrides}
    event = {"defaults": defaults, "config": config, "execution_name": "console-run-2026-11-23T10-00-00",
             "execution_arn": EXECUTION_ARN}
    return validate.handler(event, None)


def test_good_regression_file_yields_a_complete_plan(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/abalone.csv", Body=(DATA / "abalone.csv").read_bytes())
    plan = invoke("raw/abalone.csv")
    assert plan["problem_type"] == "regression"
    assert plan["dataset"]["rows_checked"] == 4177
    assert plan["hyperparameters"]["objective"] == "reg:squarederror"
    assert plan["tuning_config"]["HyperParameterTuningJobObjective"] == {"MetricName": "validation:rmse", "Type": "Minimize"}
    assert set(plan["static_hyperparameters"]).isdisjoint({"max_depth", "eta", "min_child_weight", "subsample"})
    assert plan["quality"] == {"metric": "rmse", "threshold": 2.6, "direction": "lower"}
    assert plan["tuning_config"]["RandomSeed"] == 42
    assert plan["paths"]["train"].startswith(f"s3://{BUCKET}/runs/") and plan["paths"]["train"].endswith("/processed/train/")
    assert plan["deployment_config"]["AutoRollbackConfiguration"]["Alarms"][0]["AlarmName"] == "MlPipeline-endpoint-5xx"
    for step, name in plan["job_names"].items():
        assert len(name) <= (32 if step == "tuning" else 63), step
        assert name[0].isalnum() and all(c.isalnum() or c == "-" for c in name)


def test_good_binary_file_with_overrides(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/bank.csv", Body=(DATA / "bank-marketing.csv").read_bytes())
    plan = invoke("raw/bank.csv", target_column="deposit", quality_metric="auc", quality_threshold=0.9)
    assert plan["problem_type"] == "binary"
    assert plan["hyperparameters"]["eval_metric"] == "auc"
    assert plan["quality"]["direction"] == "higher"


def test_a_prefix_is_accepted_and_counts_its_csv_objects(s3):
    body = (DATA / "abalone.csv").read_bytes()
    s3.put_object(Bucket=BUCKET, Key="raw/batch/a.csv", Body=body)
    s3.put_object(Bucket=BUCKET, Key="raw/batch/b.csv", Body=body)
    assert invoke("raw/batch/")["dataset"]["objects"] == 2


def test_job_names_are_unique_per_execution_and_within_limits():
    long_name = "x" * 80
    a = validate.job_names(long_name, EXECUTION_ARN)
    b = validate.job_names(long_name, EXECUTION_ARN + "-2")
    assert a["tuning"] != b["tuning"] and len(a["tuning"]) <= 32
    assert all(len(n) <= 63 for n in a.values())


def test_canary_shifting_only_on_a_fleet_of_two_or_more():
    assert validate.deployment_config(1, [])["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert validate.deployment_config(2, ["a"])["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"


@pytest.mark.parametrize(
    "key, body, overrides, error, words",
    [
        ("raw/missing.csv", None, {}, validate.InputObjectNotFound, "does not exist"),
        ("raw/empty.csv", b"", {}, validate.EmptyInputObject, "is empty"),
        ("raw/header.csv", b"sex,length,rings\n", {}, validate.HeaderOnlyInput, "no data rows"),
        ("raw/binary.csv", bytes(range(256)) * 4, {}, validate.NotCsvInput, "not CSV"),
        ("raw/report.csv", b"This is a report.\nIt has sentences only.\n", {}, validate.NotCsvInput, "does not parse as CSV"),
        ("raw/abalone.csv", "abalone", {"target_column": "age"}, validate.TargetColumnMissing, "'age' is not in"),
        ("raw/abalone.csv", "abalone", {"quality_metric": "auc"}, validate.UnknownQualityMetric, "does not apply to a regression"),
        ("raw/abalone.csv", "abalone", {"quality_metric": "bleu"}, validate.UnknownQualityMetric, "use one of"),
        ("raw/abalone.csv", "abalone", {"tuning_max_jobs": "8"}, validate.InvalidPipelineSetting, "must be a number"),
        ("raw/abalone.csv", "abalone", {"target_colum": "rings"}, validate.InvalidPipelineSetting, "Unknown setting"),
        ("raw/abalone.csv", "abalone", {"problem_type": "binary"}, validate.UnusableTarget, "exactly 2 classes"),
        ("raw/abalone.csv", "abalone", {"problem_type": "regresion"}, validate.InvalidPipelineSetting, "must be one of"),
        ("raw/abalone.csv", "abalone", {"tuning_ranges": {"IntegerParameterRanges": [{"MinValue": "1", "MaxValue": "3"}]}},
         validate.InvalidPipelineSetting, "needs ['MaxValue', 'MinValue', 'Name']"),
        ("raw/commas.csv", b",,,\n,,,\n", {}, validate.NotCsvInput, "only separators"),
    ],
)
def test_bad_input_raises_a_named_error_that_says_what_to_do(s3, key, body, overrides, error, words):
    if body == "abalone":
        body = (DATA / "abalone.csv").read_bytes()
    if body is not None:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    with pytest.raises(error) as raised:
        invoke(key, **overrides)
    assert words in str(raised.value)
    assert isinstance(raised.value, validate.PipelineInputError)


def test_missing_input_uri_says_how_to_start_an_execution(s3):
    defaults = PipelineConfig().execution_defaults()
    event = {"defaults": defaults, "config": defaults, "execution_name": "n", "execution_arn": EXECUTION_ARN}
    with pytest.raises(validate.InvalidInputUri, match="input_s3_uri"):
        validate.handler(event, None)


def test_a_partial_hyperparameter_override_keeps_the_other_defaults(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/abalone.csv", Body=(DATA / "abalone.csv").read_bytes())
    plan = invoke("raw/abalone.csv", hyperparameters={"max_depth": "4"})
    assert plan["hyperparameters"]["max_depth"] == "4"
    assert plan["hyperparameters"]["num_round"] == "300"


def test_numeric_labels_are_counted_by_value_and_missing_markers_are_not_a_class():
    info = validate.inspect_csv(b"x,y\n1,1\n2,1.0\n3,NA\n4,0\n", "y", "s3://b/k")
    assert validate.infer_problem_type("auto", info["target_values"], "s3://b/k") == ("binary", None)


def test_tuning_may_run_for_every_wave_of_trials(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/abalone.csv", Body=(DATA / "abalone.csv").read_bytes())
    plan = invoke("raw/abalone.csv", tuning_max_jobs=8, tuning_max_parallel_jobs=2)
    assert plan["tuning_config"]["ResourceLimits"]["MaxRuntimeInSeconds"] == 4 * 3600
    assert plan["tuning_timeout_seconds"] == 4 * 3600 + 900
