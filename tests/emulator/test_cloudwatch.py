"""The local CloudWatch: the shared metric store, statistics, and metric alarms evaluated as
CloudWatch evaluates them (periods scaled by the time scale, missing data, state changes, SNS)."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing

import pytest

from emulator.services.cloudwatch import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    Alarm,
    CloudWatchBackend,
    InvalidParameterValue,
    MetricStore,
    UnsupportedAlarm,
)

DIMS = {"EndpointName": "ep", "VariantName": "AllTraffic"}
NOW = 1_000_000.0


def alarm(**overrides) -> Alarm:
    props = {"AlarmName": "ep-5xx", "Namespace": "AWS/SageMaker", "MetricName": "Invocation5XXErrors",
             "Dimensions": [{"Name": k, "Value": v} for k, v in DIMS.items()], "Statistic": "Sum", "Period": 60,
             "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
             "TreatMissingData": "notBreaching", "AlarmActions": ["arn:aws:sns:us-east-1:000000000000:alerts"]}
    props.update(overrides)
    return Alarm.from_properties({k: v for k, v in props.items() if v is not None})


@pytest.fixture
def clock():
    return {"now": NOW}


@pytest.fixture
def cloudwatch(tmp_path, clock):
    published = []
    backend = CloudWatchBackend(tmp_path / "cw", [alarm(), alarm(AlarmName="ep-latency", MetricName="ModelLatency",
                                                               Statistic=None, ExtendedStatistic="p99", EvaluationPeriods=3,
                                                               Threshold=1_000_000, ComparisonOperator="GreaterThanThreshold",
                                                               TreatMissingData="missing")],
                                time_scale=0.01, notify=lambda *args: published.append(args), clock=lambda: clock["now"])
    backend.published = published
    return backend


def test_statistics_over_samples_and_statistic_sets(tmp_path):
    store = MetricStore(tmp_path / "m.sqlite")
    store.put_many(("NS", "Latency", DIMS, value, NOW + i * 0.01, None) for i, value in enumerate(range(1, 101)))
    store.put_statistics("NS", "Latency", DIMS, {"SampleCount": 2, "Sum": 1000, "Minimum": 400, "Maximum": 600}, timestamp=NOW)
    window = (NOW, NOW + 10)
    assert store.statistic("NS", "Latency", DIMS, *window, "SampleCount") == 102
    assert store.statistic("NS", "Latency", DIMS, *window, "Sum") == 5050 + 1000
    assert store.statistic("NS", "Latency", DIMS, *window, "Maximum") == 600
    assert store.statistic("NS", "Latency", DIMS, *window, "p99") == 99  # over the samples (nearest rank)
    assert store.statistic("NS", "Latency", {"EndpointName": "ep"}, *window, "Sum") is None  # another dimension set
    assert store.statistic("NS", "Latency", dict(reversed(list(DIMS.items()))), *window, "Sum") == 6050  # order-free


def _writer(path: str) -> None:
    MetricStore(path).put_many(("NS", "Count", DIMS, 1.0, NOW, None) for _ in range(200))


def test_processes_share_the_store(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    MetricStore(path)
    workers = [multiprocessing.get_context("spawn").Process(target=_writer, args=(path,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert MetricStore(path).statistic("NS", "Count", DIMS, NOW - 1, NOW + 1, "Sum") == 600


def test_an_alarm_over_scaled_periods_changes_state_records_why_and_notifies(cloudwatch, clock):
    assert cloudwatch.evaluate_alarms(["ep-5xx"]) == {"ep-5xx": OK}  # notBreaching: no data is fine
    # a 60 s period lasts 0.6 s at time scale 0.01: an error 0.5 s ago counts, one 0.7 s ago does not
    cloudwatch.metrics.put("AWS/SageMaker", "Invocation5XXErrors", DIMS, 1, timestamp=NOW - 0.7)
    assert cloudwatch.evaluate_alarms(["ep-5xx"]) == {"ep-5xx": OK}
    cloudwatch.metrics.put("AWS/SageMaker", "Invocation5XXErrors", DIMS, 1, timestamp=NOW - 0.5)
    assert cloudwatch.alarms_in_alarm(["ep-5xx", "not-deployed"]) == ["ep-5xx"]
    described = cloudwatch.describe_alarms(AlarmNames=["ep-5xx"])["MetricAlarms"][0]
    assert described["StateValue"] == ALARM and "Threshold Crossed: 1 of the datapoints [1]" in described["StateReason"]
    topic, subject, message = cloudwatch.published[-1]
    assert topic.endswith(":alerts") and subject.startswith('ALARM: "ep-5xx"')
    assert json.loads(message)["NewStateValue"] == ALARM
    clock["now"] += 1.0  # the error leaves the period
    assert cloudwatch.evaluate_alarms(["ep-5xx"]) == {"ep-5xx": OK}
    history = cloudwatch.describe_alarm_history(AlarmName="ep-5xx")["AlarmHistoryItems"]
    assert [(h["OldState"], h["NewState"]) for h in history] == [(ALARM, OK), (OK, ALARM), (INSUFFICIENT_DATA, OK)]


def test_percentile_alarm_over_three_periods_with_missing_data(cloudwatch, clock):
    assert cloudwatch.evaluate_alarms(["ep-latency"]) == {"ep-latency": INSUFFICIENT_DATA}  # missing: no data, no verdict
    for k in range(3):  # one slow request per period, each over 1 s (microseconds)
        cloudwatch.metrics.put("AWS/SageMaker", "ModelLatency", DIMS, 2_000_000, timestamp=NOW - 0.3 - k * 0.6)
    assert cloudwatch.evaluate_alarms(["ep-latency"]) == {"ep-latency": ALARM}
    clock["now"] += 0.6  # the oldest period is now empty: 2 of 3 breaching is not enough
    assert cloudwatch.evaluate_alarms(["ep-latency"]) == {"ep-latency": OK}


@pytest.mark.parametrize("treatment, expected", [("missing", INSUFFICIENT_DATA), ("notBreaching", OK),
                                                 ("breaching", ALARM), ("ignore", INSUFFICIENT_DATA)])
def test_missing_data_treatments(tmp_path, treatment, expected):
    backend = CloudWatchBackend(tmp_path, [alarm(TreatMissingData=treatment)], time_scale=1.0, clock=lambda: NOW)
    assert backend.evaluate_alarms() == {"ep-5xx": expected}  # ignore keeps the initial INSUFFICIENT_DATA


def test_datapoints_to_alarm_m_out_of_n(tmp_path):
    backend = CloudWatchBackend(tmp_path, [alarm(EvaluationPeriods=3, DatapointsToAlarm=2)], time_scale=1.0, clock=lambda: NOW)
    backend.metrics.put("AWS/SageMaker", "Invocation5XXErrors", DIMS, 3, timestamp=NOW - 30)
    assert backend.evaluate_alarms() == {"ep-5xx": OK}
    backend.metrics.put("AWS/SageMaker", "Invocation5XXErrors", DIMS, 1, timestamp=NOW - 150)
    assert backend.evaluate_alarms() == {"ep-5xx": ALARM}


def test_put_metric_data_and_get_metric_statistics(cloudwatch):
    stamp = dt.datetime.fromtimestamp(NOW, dt.UTC)
    cloudwatch.put_metric_data(Namespace="Pipeline/Drift", MetricData=[
        {"MetricName": "psi", "Dimensions": [{"Name": "Feature", "Value": "length"}], "Value": 0.3, "Timestamp": stamp},
        {"MetricName": "psi", "Dimensions": [{"Name": "Feature", "Value": "length"}], "Values": [0.1, 0.2], "Counts": [1, 2],
         "Timestamp": stamp}])
    answer = cloudwatch.get_metric_statistics(Namespace="Pipeline/Drift", MetricName="psi", StartTime=NOW - 30,
                                              EndTime=NOW + 30, Period=60, Statistics=["SampleCount", "Maximum"],
                                              Dimensions=[{"Name": "Feature", "Value": "length"}])
    assert answer["Datapoints"][0]["SampleCount"] == 4 and answer["Datapoints"][0]["Maximum"] == 0.3
    with pytest.raises(InvalidParameterValue, match="reserved"):
        cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "x", "Value": 1}])


def test_alarms_the_evaluator_cannot_evaluate_are_named():
    with pytest.raises(UnsupportedAlarm, match="metric math"):
        Alarm.from_properties({"AlarmName": "math", "Metrics": [{"Id": "e", "Expression": "a+b"}],
                               "ComparisonOperator": "GreaterThanThreshold"})
    with pytest.raises(UnsupportedAlarm, match="ComparisonOperator"):
        alarm(ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold")
    with pytest.raises(InvalidParameterValue, match="TreatMissingData"):
        alarm(TreatMissingData="sometimes")
