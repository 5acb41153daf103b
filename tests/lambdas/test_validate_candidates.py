"""The competing candidates in the plan: defaults, a dropped or added configuration, named refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.validate_input import handler as validate
from processing_scripts import candidate_rules
from stacks.config import ConfigError, PipelineConfig
from training_scripts.random_forest import contract

DATA = Path(__file__).resolve().parents[2] / "data"
BUCKET = "pipeline-data"
EXECUTION_ARN = "arn:aws:states:us-east-1:000000000000:execution:Pipeline:compete-run"


@pytest.fixture
def abalone(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/abalone.csv", Body=(DATA / "abalone.csv").read_bytes())
    return "raw/abalone.csv"


def invoke(key: str, **overrides):
    defaults = PipelineConfig().execution_defaults()
    config = {**defaults, "input_s3_uri": f"s3://{BUCKET}/{key}", **overrides}
    return validate.handler({"defaults": defaults, "config": config, "execution_name": "compete-run",
                             "execution_arn": EXECUTION_ARN}, None)


def test_the_defaults_are_the_tuned_xgboost_and_a_random_forest(abalone):
    plan = invoke(abalone)
    xgb, rf = plan["candidates"]
    assert (xgb["name"], xgb["family"], rf["name"], rf["family"]) == ("xgboost", "xgboost", "random_forest", "random_forest")
    # XGBoost tuned as before: the pipeline's ranges and objective
    assert xgb["tuning_enabled"] is True
    assert xgb["tuning_config"]["ParameterRanges"] == PipelineConfig().tuning_ranges
    assert xgb["hyperparameters"]["objective"] == "reg:squarederror"
    # the forest: its own ranges, tuned on the metric its script prints
    assert rf["tuning_config"]["HyperParameterTuningJobObjective"] == {"MetricName": "validation:rmse", "Type": "Minimize"}
    assert {r["Name"] for r in rf["tuning_config"]["ParameterRanges"]["IntegerParameterRanges"]} == {"max_depth", "min_samples_leaf"}
    assert "max_depth" not in rf["static_hyperparameters"] and rf["static_hyperparameters"]["n_estimators"] == "200"
    # every job of every candidate its own, under the run's prefix
    names = [n for c in plan["candidates"] for n in c["job_names"].values()]
    assert len(set(names)) == len(names) == 6
    assert rf["paths"]["evaluation_report"].startswith(plan["paths"]["run"])
    assert rf["paths"]["evaluation_report"] != xgb["paths"]["evaluation_report"]
    assert rf["paths"]["evaluation_copy_source"] == rf["paths"]["evaluation_report"].removeprefix("s3://")


def test_one_candidate_may_be_dropped_and_a_second_xgboost_added(abalone):
    plan = invoke(abalone, candidates=[{"name": "xgboost", "family": "xgboost"},
                                       {"name": "xgb_shallow", "family": "xgboost", "tuning_enabled": False,
                                        "hyperparameters": {"max_depth": "2", "num_round": "20"}}])
    assert [c["name"] for c in plan["candidates"]] == ["xgboost", "xgb_shallow"]
    shallow = plan["candidates"][1]
    assert shallow["tuning_enabled"] is False
    # the candidate's values over the pipeline's, the rest kept
    assert shallow["hyperparameters"]["max_depth"] == "2" and shallow["hyperparameters"]["eta"] == "0.05"
    assert "xgb-shallow" in shallow["job_names"]["training"]


@pytest.mark.parametrize("candidates, error, words", [
    ([], "NoCandidates", "non-empty list"),
    ([{"name": "a", "family": "lightgbm"}], "UnknownCandidateFamily", "'lightgbm'"),
    ([{"name": "m", "family": "xgboost"}, {"name": "M", "family": "random_forest"}], "DuplicateCandidateName", "both named"),
    ([{"name": "rf", "family": "random_forest", "hyperparameters": {"n_trees": "5"}}], "InvalidCandidate", "no settable hyperparameter 'n_trees'"),
    ([{"name": "rf", "family": "random_forest", "hyperparameters": {"max_features": "1.5"}}], "InvalidCandidate", "a fraction in (0, 1] or a whole number"),
    ([{"name": "rf", "family": "random_forest", "hyperparameters": {"problem_type": "binary"}}], "InvalidCandidate",
     "the pipeline sets it"),
    ([{"name": "rf", "family": "random_forest", "tuning_ranges": {"IntegerParameterRanges": [
        {"Name": "max_depth", "MinValue": "0", "MaxValue": "5"}]}}], "InvalidCandidate", "max_depth='0' (tuning_ranges"),
    ([{"name": "x", "family": "xgboost", "hyperparameters": {"max_depth": 3}}], "InvalidCandidate", "string values"),
    ([{"name": "x y", "family": "xgboost"}], "InvalidCandidate", "letters, digits"),
])
def test_a_bad_candidate_list_is_refused_by_name_before_any_job(abalone, candidates, error, words):
    with pytest.raises(validate.candidate_rules.CandidateError) as caught:
        invoke(abalone, candidates=candidates)
    assert type(caught.value).__name__ == error and words in str(caught.value)


def test_an_xgboost_candidate_is_checked_by_the_algorithms_own_table(abalone):
    with pytest.raises(validate.InvalidHyperparameter, match="max_dept"):
        invoke(abalone, candidates=[{"name": "x", "family": "xgboost", "hyperparameters": {"max_dept": "3"}}])


def test_cdk_json_candidates_are_checked_at_synth():
    with pytest.raises(ConfigError, match="DuplicateCandidateName"):
        PipelineConfig.from_context({"candidates": [{"name": "a", "family": "xgboost"}, {"name": "a", "family": "xgboost"}]})
    config = PipelineConfig.from_context({"candidates": '[{"name": "rf", "family": "random_forest"}]'})  # a -c string
    assert config.candidates == [{"name": "rf", "family": "random_forest"}]
    assert "max_concurrent_candidates" not in config.execution_defaults()  # shapes the Map: per deploy


def test_the_forest_rules_follow_the_scripts_contract():
    """The Lambda cannot import the training script; its table must not drift from the script's."""
    assert set(candidate_rules.RANDOM_FOREST_SPECS) | set(candidate_rules.PIPELINE_SET) <= set(contract.HYPERPARAMETERS)
    assert {p: tuple(v) for p, v in validate.RANDOM_FOREST_OBJECTIVE.items()} == contract.OBJECTIVES
    candidate_rules.check_random_forest(candidate_rules.random_forest_hyperparameters(),
                                        candidate_rules.random_forest_ranges(), "defaults")


def test_the_forest_is_told_the_problem_type(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/bank.csv", Body=(DATA / "bank-marketing.csv").read_bytes())
    rf = invoke("raw/bank.csv", target_column="deposit")["candidates"][1]
    assert rf["hyperparameters"]["problem_type"] == "binary" and rf["hyperparameters"]["num_class"] == "0"
    assert rf["tuning_config"]["HyperParameterTuningJobObjective"] == {"MetricName": "validation:auc", "Type": "Maximize"}
