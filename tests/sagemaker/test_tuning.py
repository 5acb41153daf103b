"""Hyperparameter tuning jobs: optuna picks the values, every trial is a real local training job."""

from __future__ import annotations

import re

import optuna
import pytest
from sm_testkit import ROLE, XGBOOST_IMAGE, abalone_channels, channel

from emulator.services.sagemaker import exceptions as exc
from emulator.services.sagemaker.search import (
    MedianRule,
    ParameterRange,
    make_pruner,
    make_sampler,
    parse_ranges,
)


def tuning_request(name: str, channels: dict, *, strategy: str = "Bayesian", jobs: int = 4, parallel: int = 2, ranges: dict | None = None, **config) -> dict:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:rmse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": ranges or {
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "6", "ScalingType": "Linear"}],
                "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5", "ScalingType": "Logarithmic"}],
            },
            "RandomSeed": 7,
            **config,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"objective": "reg:squarederror", "num_round": "15"},
            "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "InputDataConfig": [channel(n, u) for n, u in channels.items()],
            "OutputDataConfig": {"S3OutputPath": f"s3://bucket/tuning/{name}"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
    }


@pytest.fixture
def channels(context):
    return abalone_channels(context.s3, rows=800)


def test_bayesian_tuning_runs_every_trial_and_reports_the_best(backend, channels):
    arn = backend.call("CreateHyperParameterTuningJob", tuning_request("tune-bayes", channels))["HyperParameterTuningJobArn"]
    assert arn.endswith(":hyper-parameter-tuning-job/tune-bayes")
    done = backend.wait("tuning", "tune-bayes", timeout=120)
    assert done["HyperParameterTuningJobStatus"] == "Completed", done.get("FailureReason")
    assert done["TrainingJobStatusCounters"] == {"Completed": 4, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    assert done["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}

    listed = backend.call("ListTrainingJobsForHyperParameterTuningJob", {"HyperParameterTuningJobName": "tune-bayes", "SortBy": "FinalObjectiveMetricValue", "SortOrder": "Ascending"})
    summaries = listed["TrainingJobSummaries"]
    assert len(summaries) == 4
    assert all(re.fullmatch(r"tune-bayes-00[1-4]-[0-9a-f]{8}", s["TrainingJobName"]) for s in summaries)
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    assert values == sorted(values)

    best = done["BestTrainingJob"]
    assert best["TrainingJobName"] == summaries[0]["TrainingJobName"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {"Type": "Minimize", "MetricName": "validation:rmse", "Value": values[0]}
    assert set(best["TunedHyperParameters"]) == {"max_depth", "eta"}
    assert 2 <= int(best["TunedHyperParameters"]["max_depth"]) <= 6 and 0.05 <= float(best["TunedHyperParameters"]["eta"]) <= 0.5

    trial = backend.call("DescribeTrainingJob", {"TrainingJobName": best["TrainingJobName"]})
    assert trial["TuningJobArn"] == arn
    assert trial["HyperParameters"]["_tuning_objective_metric"] == "validation:rmse"
    assert trial["HyperParameters"]["num_round"] == "15"
    assert trial["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://bucket/tuning/tune-bayes/{best['TrainingJobName']}/output/model.tar.gz"


def test_grid_search_covers_the_grid_exactly_once(backend, channels):
    ranges = {
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "3"}],
        "CategoricalParameterRanges": [{"Name": "eta", "Values": ["0.1", "0.3"]}],
    }
    backend.call("CreateHyperParameterTuningJob", tuning_request("tune-grid", channels, strategy="Grid", jobs=10, ranges=ranges))
    done = backend.wait("tuning", "tune-grid", timeout=120)
    assert done["HyperParameterTuningJobStatus"] == "Completed"
    combos = {(s["TunedHyperParameters"]["max_depth"], s["TunedHyperParameters"]["eta"]) for s in backend.call(
        "ListTrainingJobsForHyperParameterTuningJob", {"HyperParameterTuningJobName": "tune-grid"})["TrainingJobSummaries"]}
    assert combos == {("2", "0.1"), ("2", "0.3"), ("3", "0.1"), ("3", "0.3")}


def test_grid_with_a_continuous_range_and_an_unknown_objective_are_rejected(backend, channels):
    with pytest.raises(exc.ValidationException, match="continuous"):
        backend.call("CreateHyperParameterTuningJob", tuning_request("tune-bad-grid", channels, strategy="Grid"))
    request = tuning_request("tune-bad-metric", channels)
    request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"] = "validation:bogus"
    with pytest.raises(exc.ValidationException, match="validation:bogus"):
        backend.call("CreateHyperParameterTuningJob", request)
    with pytest.raises(exc.ValidationException, match="enum value set"):
        backend.call("CreateHyperParameterTuningJob", tuning_request("tune-bad-strategy", channels, strategy="Genetic"))


def test_strategies_map_onto_optuna_samplers_and_pruners():
    ranges = parse_ranges({"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "3"}]})
    assert isinstance(make_sampler("Bayesian", 1, ranges), optuna.samplers.TPESampler)
    assert isinstance(make_sampler("Random", 1, ranges), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("Grid", 1, ranges), optuna.samplers.GridSampler)
    assert isinstance(make_pruner({"Strategy": "Hyperband", "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 9}}}), optuna.pruners.HyperbandPruner)
    median = make_pruner({"Strategy": "Bayesian", "TrainingJobEarlyStoppingType": "Auto"}, rounds=200)
    assert median == MedianRule(n_startup_trials=3, n_warmup_steps=20)
    assert make_pruner({"Strategy": "Bayesian"}) is None


def test_scaling_types_stay_in_range_and_reverse_log_crowds_the_top():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    reverse = ParameterRange("momentum", "Continuous", 0.5, 0.999, "ReverseLogarithmic")
    log_scale = ParameterRange("alpha", "Continuous", 1e-4, 1.0, "Logarithmic")
    samples_rev, samples_log = [], []
    for _ in range(200):
        trial = study.ask()
        samples_rev.append(float(reverse.suggest(trial)))
        samples_log.append(float(log_scale.suggest(trial)))
        study.tell(trial, 0.0)
    assert all(0.5 <= v <= 0.999 for v in samples_rev) and all(1e-4 <= v <= 1.0 for v in samples_log)
    assert sum(v > 0.9 for v in samples_rev) > 100  # log spacing of (1 - x): most mass near 1
    assert sum(v < 0.01 for v in samples_log) > 80  # log spacing: half the decades below 0.01
    with pytest.raises(exc.ValidationException, match="Logarithmic"):
        parse_ranges({"ContinuousParameterRanges": [{"Name": "a", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}]})


def test_hyperband_prunes_with_per_round_values_and_still_completes(backend, channels):
    config = {"StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 15}}}
    backend.call("CreateHyperParameterTuningJob", tuning_request("tune-hb", channels, strategy="Hyperband", jobs=4, **config))
    done = backend.wait("tuning", "tune-hb", timeout=120)
    assert done["HyperParameterTuningJobStatus"] == "Completed", done.get("FailureReason")
    counters = done["TrainingJobStatusCounters"]
    assert counters["Completed"] + counters["Stopped"] == 4
    assert done["BestTrainingJob"]["TrainingJobStatus"] == "Completed"


def test_the_same_seed_proposes_the_same_trials_with_parallel_trials_and_early_stopping(backend, channels):
    """Issue 11: two runs on identical data and seed diverged from trial 5 on, because parallel
    trials were told to optuna (and compared for early stopping) in the order they happened to end."""
    proposals = []
    for name in ("tune-again-1", "tune-again-2"):
        request = tuning_request(name, channels, jobs=6, parallel=2, TrainingJobEarlyStoppingType="Auto")
        backend.call("CreateHyperParameterTuningJob", request)
        done = backend.wait("tuning", name, timeout=180)
        assert done["HyperParameterTuningJobStatus"] == "Completed", done.get("FailureReason")
        listed = backend.call("ListTrainingJobsForHyperParameterTuningJob", {"HyperParameterTuningJobName": name})
        trials = sorted(listed["TrainingJobSummaries"], key=lambda s: s["TrainingJobName"])
        # a job stopped early ends a round or two after the decision, as the kill lands: only the
        # completed trials' objective is part of what must repeat (and only they can be the best)
        proposals.append([(s["TunedHyperParameters"], s["TrainingJobStatus"],
                           s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
                           if s["TrainingJobStatus"] == "Completed" else None) for s in trials])
    assert len(proposals[0]) == 6
    assert proposals[0] == proposals[1]
