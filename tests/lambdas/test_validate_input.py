"""validate_input on real CSV objects in moto S3: the plan for good input, a named error otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import user_tables

from lambdas.validate_input import handler as validate
from processing_scripts import preprocess
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


def xgb(plan: dict) -> dict:
    """The built-in XGBoost candidate's part of the plan (the first of the default candidates)."""
    return next(c for c in plan["candidates"] if c["family"] == "xgboost")


def test_good_regression_file_yields_a_complete_plan(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/abalone.csv", Body=(DATA / "abalone.csv").read_bytes())
    plan = invoke("raw/abalone.csv")
    assert plan["problem_type"] == "regression"
    assert plan["dataset"]["rows_checked"] == 4177
    assert xgb(plan)["hyperparameters"]["objective"] == "reg:squarederror"
    assert xgb(plan)["tuning_config"]["HyperParameterTuningJobObjective"] == {"MetricName": "validation:rmse", "Type": "Minimize"}
    assert set(xgb(plan)["static_hyperparameters"]).isdisjoint({"max_depth", "eta", "min_child_weight", "subsample"})
    assert plan["quality"] == {"metric": "rmse", "threshold": "auto", "direction": "lower",
                               "rule": "auto: rmse at least 10% lower than the naive baseline's"}
    assert plan["target"] == {"column": "rings", "problem_type": "regression", "classes": None}
    assert plan["notes"] == []
    assert xgb(plan)["tuning_config"]["RandomSeed"] == 42
    assert plan["paths"]["train"].startswith(f"s3://{BUCKET}/runs/") and plan["paths"]["train"].endswith("/processed/train/")
    assert plan["deployment_config"]["AutoRollbackConfiguration"]["Alarms"][0]["AlarmName"] == "MlPipeline-endpoint-5xx"
    for step, name in plan["job_names"].items():
        assert len(name) <= (32 if step == "tuning" else 63), step
        assert name[0].isalnum() and all(c.isalnum() or c == "-" for c in name)


def test_good_binary_file_with_overrides(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/bank.csv", Body=(DATA / "bank-marketing.csv").read_bytes())
    plan = invoke("raw/bank.csv", target_column="deposit", quality_metric="auc", quality_threshold=0.9)
    assert plan["problem_type"] == "binary"
    assert xgb(plan)["hyperparameters"]["eval_metric"] == "auc"
    assert plan["quality"] == {"metric": "auc", "threshold": 0.9, "direction": "higher", "rule": "at least 0.9"}
    assert plan["target"]["classes"] == ["no", "yes"]


def test_a_prefix_is_accepted_and_counts_its_csv_objects(s3):
    body = (DATA / "abalone.csv").read_bytes()
    s3.put_object(Bucket=BUCKET, Key="raw/batch/a.csv", Body=body)
    s3.put_object(Bucket=BUCKET, Key="raw/batch/b.csv", Body=body)
    assert invoke("raw/batch/")["dataset"]["objects"] == 2


def test_job_names_are_unique_per_execution_and_within_limits():
    long_name = "x" * 80
    a = validate.job_names(long_name, EXECUTION_ARN)
    b = validate.job_names(long_name, EXECUTION_ARN + "-2")
    assert a["model"] != b["model"] and all(len(n) <= 63 for n in a.values())
    # each candidate's own jobs: apart per execution and per candidate, even with one slug for two names
    names = [validate.candidate_job_names(long_name, arn, index, name)
             for arn in (EXECUTION_ARN, EXECUTION_ARN + "-2")
             for index, name in enumerate(["random_forest", "random-forest", "y" * 40])]
    for step in ("tuning", "training", "evaluate"):
        assert len({n[step] for n in names}) == len(names), step
    for n in names:
        assert len(n["tuning"]) <= 32 and all(len(v) <= 63 for v in n.values()), n
        assert all(v[0].isalnum() and all(c.isalnum() or c == "-" for c in v) for v in n.values()), n


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
        ("raw/abalone.csv", "abalone", {"quality_metric": "auc"}, validate.UnknownQualityMetric, "\"auto\" (rmse for regression)"),
        ("raw/abalone.csv", "abalone", {"quality_threshold": -1}, validate.InvalidQualityThreshold,
         "quality_threshold -1 is outside rmse's range [0, inf)"),
        ("raw/abalone.csv", "abalone", {"quality_threshold": "high"}, validate.InvalidPipelineSetting,
         "must be a number or \"auto\""),
        ("raw/abalone.csv", "abalone", {"quality_metric": "r2", "quality_threshold": 1.5}, validate.InvalidQualityThreshold,
         "outside r2's range (-inf, 1]"),
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
    assert xgb(plan)["hyperparameters"]["max_depth"] == "4"
    assert xgb(plan)["hyperparameters"]["num_round"] == "300"


def test_numeric_labels_are_counted_by_value_and_missing_markers_are_not_a_class():
    info = validate.inspect_csv(b"x,y\n1,1\n2,1.0\n3,NA\n4,0\n", "y", "s3://b/k")
    decision = validate.infer_problem_type("auto", info["target"], "y", "s3://b/k")
    assert (decision.problem_type, decision.labels) == ("binary", ("0", "1"))
    assert info["target"].missing == 1


def test_tuning_may_run_for_every_wave_of_trials(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/abalone.csv", Body=(DATA / "abalone.csv").read_bytes())
    plan = invoke("raw/abalone.csv", tuning_max_jobs=8, tuning_max_parallel_jobs=2)
    assert xgb(plan)["tuning_config"]["ResourceLimits"]["MaxRuntimeInSeconds"] == 4 * 3600
    assert xgb(plan)["tuning_timeout_seconds"] == 4 * 3600 + 900


# --- the user tables (tests/user_tables.py): one rule, the same answer as preprocess.py ----------

TABLES = user_tables.TABLES


@pytest.mark.parametrize("name", list(TABLES))
def test_each_user_table_gets_its_problem_type_metric_and_auto_threshold(s3, tmp_path, name):
    table = TABLES[name]
    path = table.write(tmp_path)
    s3.put_object(Bucket=BUCKET, Key=f"raw/{path.name}", Body=path.read_bytes())
    plan = invoke(f"raw/{path.name}", target_column=table.target)
    assert plan["problem_type"] == table.problem_type
    assert plan["quality"]["metric"] == {"regression": "rmse", "binary": "auc", "multiclass": "f1_weighted"}[table.problem_type]
    assert plan["quality"]["threshold"] == "auto"
    # the same decision preprocess.py makes from the same cells
    frame = pd.read_csv(path, dtype={table.target: object}, skipinitialspace=True)
    assert preprocess.decide_target(frame[table.target], "auto", table.target).problem_type == plan["problem_type"]
    if table.problem_type == "multiclass":
        assert xgb(plan)["hyperparameters"]["num_class"] == "3"


def test_integer_labels_are_classification_and_the_plan_says_so(s3, tmp_path):
    path = user_tables.iris(tmp_path)
    s3.put_object(Bucket=BUCKET, Key="raw/iris.csv", Body=path.read_bytes())
    plan = invoke("raw/iris.csv", target_column="target")
    assert plan["problem_type"] == "multiclass" and plan["target"]["classes"] == ["0", "1", "2"]
    assert any("3 integer values (0, 1, 2): read as multiclass" in n and "problem_type regression" in n
               for n in plan["notes"])
    # asked for explicitly, the same integers are a regression target
    assert invoke("raw/iris.csv", target_column="target", problem_type="regression")["problem_type"] == "regression"


def test_an_integer_rating_is_multiclass_in_the_lambda_and_in_preprocess(s3, tmp_path):
    # The case the two old rules disagreed on: an integer target 1-5.
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=200).round(3), "stars": rng.integers(1, 6, 200)})
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    s3.put_object(Bucket=BUCKET, Key="raw/ratings.csv", Body=(tmp_path / "ratings.csv").read_bytes())
    plan = invoke("raw/ratings.csv", target_column="stars")
    schema = preprocess.run(preprocess.Options(tmp_path / "ratings.csv", tmp_path / "out", "stars"))
    assert plan["problem_type"] == schema["problem_type"] == "multiclass"
    assert schema["labels"] == plan["target"]["classes"] == ["1", "2", "3", "4", "5"]


def test_yes_no_in_six_spellings_is_binary_with_a_warning_naming_them(s3, tmp_path):
    path = user_tables.churn(tmp_path)
    s3.put_object(Bucket=BUCKET, Key="raw/churn.csv", Body=path.read_bytes())
    plan = invoke("raw/churn.csv", target_column="churn", problem_type="binary")  # forcing binary works too
    assert plan["problem_type"] == "binary"
    assert plan["target"]["classes"] == ["no", "Yes"]
    merged = next(n for n in plan["notes"] if "merged" in n)
    assert "['NO', 'No', 'no'] -> 'no'" in merged and "['YES', 'Yes', 'yes'] -> 'Yes'" in merged
    assert any(n.startswith("60 of 1500 rows") and "no value in target 'churn'" in n for n in plan["notes"])


def test_too_few_labelled_rows_is_insufficient_data_before_any_job(s3, tmp_path):
    frame = user_tables.churn_frame(rows=300, unlabelled=260)
    frame.to_csv(tmp_path / "sparse.csv", index=False)
    s3.put_object(Bucket=BUCKET, Key="raw/sparse.csv", Body=(tmp_path / "sparse.csv").read_bytes())
    with pytest.raises(validate.InsufficientData, match=r"has 40 usable row\(s\) with a value in target 'churn' "
                                                        r"\(260 row\(s\) have none\); .* at least 50 labelled rows"):
        invoke("raw/sparse.csv", target_column="churn")


def test_a_class_too_small_to_stratify_is_insufficient_data(s3, tmp_path):
    rows = [f"{i},{'a' if i % 2 else 'b'}" for i in range(80)] + ["80,c", "81,c"]
    s3.put_object(Bucket=BUCKET, Key="raw/rare.csv", Body=("x,y\n" + "\n".join(rows) + "\n").encode())
    with pytest.raises(validate.InsufficientData, match=r"\('c': 2\).*at least 3 rows of every class"):
        invoke("raw/rare.csv", target_column="y")


@pytest.mark.parametrize("metric, threshold, words", [
    ("auc", 2.6, "quality_threshold 2.6 is outside auc's range [0, 1] (higher is better)"),
    ("auto", 2.6, "quality_threshold 2.6 is outside auc's range [0, 1]"),
    ("logloss", -0.5, "outside logloss's range [0, inf)"),
    ("rmse", 0.5, "quality_metric 'rmse' does not apply to a binary problem; use one of"),
])
def test_a_threshold_or_metric_that_cannot_fit_is_refused_with_what_to_set(s3, metric, threshold, words):
    s3.put_object(Bucket=BUCKET, Key="raw/bank.csv", Body=(DATA / "bank-marketing.csv").read_bytes())
    with pytest.raises((validate.InvalidQualityThreshold, validate.UnknownQualityMetric)) as raised:
        invoke("raw/bank.csv", target_column="deposit", quality_metric=metric, quality_threshold=threshold)
    assert words in str(raised.value)
    assert "auto" in str(raised.value)  # and what to set instead
