"""The integrations the monitoring loop uses, in an interpreted state machine: putMetricData into the
local CloudWatch (alarms on its namespace evaluated at once, their SNS actions run) and
states:startExecution of another deployed machine."""

from __future__ import annotations

import json

import pytest

from emulator.asl import run_definition
from emulator.asl.errors import StatesError
from emulator.asl.ports import Integrations
from emulator.integrations import cloudwatch_sdk
from emulator.services.cloudwatch import ALARM, OK, Alarm, CloudWatchBackend

NAMESPACE = "MlPipeline/ModelMonitor"
TOPIC = "arn:aws:sns:us-east-1:000000000000:alerts"


def drift_alarm() -> Alarm:
    return Alarm.from_properties({
        "AlarmName": "stack-data-drift", "Namespace": NAMESPACE, "MetricName": "DriftedFeatureShare",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep"}], "Statistic": "Maximum", "Period": 3600,
        "EvaluationPeriods": 1, "Threshold": 0.2, "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching", "AlarmActions": [TOPIC], "OKActions": [TOPIC]})


def publish(share: float) -> dict:
    return {"StartAt": "Publish metrics", "States": {"Publish metrics": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:cloudwatch:putMetricData", "End": True, "ResultPath": None,
        "Parameters": {"Namespace": NAMESPACE, "MetricData.$": "$.data"}}}}, {"data": [
            {"MetricName": "DriftedFeatureShare", "Dimensions": [{"Name": "EndpointName", "Value": "ep"}], "Value": share},
            {"MetricName": "FeatureDrift", "Unit": "None", "Value": 1.0, "Timestamp": "2026-01-30T10:00:00+00:00",
             "Dimensions": [{"Name": "EndpointName", "Value": "ep"}, {"Name": "Feature", "Value": "length"}]}]}


@pytest.fixture
def cloudwatch(tmp_path):
    sent = []
    backend = CloudWatchBackend(tmp_path / "cw", [drift_alarm()], time_scale=0.01,
                                notify=lambda topic, subject, message: sent.append((topic, subject, json.loads(message))))
    backend.sent = sent
    integrations = Integrations()
    cloudwatch_sdk.register(integrations, backend)
    backend.integrations = integrations
    return backend


def test_a_breaching_value_puts_the_alarm_in_alarm_and_notifies(cloudwatch):
    definition, value = publish(0.25)
    result = run_definition(definition, value, integrations=cloudwatch.integrations)
    assert result.status == "SUCCEEDED"
    assert cloudwatch.describe_alarms()["MetricAlarms"][0]["StateValue"] == ALARM
    (topic, subject, message), = cloudwatch.sent
    assert topic == TOPIC and subject.startswith("ALARM") and "Threshold Crossed" in message["NewStateReason"]
    metrics = {(m["MetricName"], json.dumps(m["Dimensions"])) for m in cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]}
    assert ("FeatureDrift", json.dumps([{"Name": "EndpointName", "Value": "ep"}, {"Name": "Feature", "Value": "length"}])) in metrics
    stamp = 1_769_767_200.0  # 2026-01-30T10:00:00Z, the datum's own Timestamp
    assert cloudwatch.metrics.statistic(NAMESPACE, "FeatureDrift", {"EndpointName": "ep", "Feature": "length"},
                                        stamp, stamp + 1, "Maximum") == 1.0


def test_a_healthy_value_keeps_it_ok(cloudwatch):
    definition, value = publish(0.1)
    assert run_definition(definition, value, integrations=cloudwatch.integrations).status == "SUCCEEDED"
    history = cloudwatch.describe_alarm_history(AlarmName="stack-data-drift")["AlarmHistoryItems"]
    assert [item["NewState"] for item in history] == [OK]


def test_bad_metric_data_is_a_named_error(cloudwatch):
    definition, _ = publish(0.1)
    result = run_definition(definition, {"data": [{"MetricName": "X"}]}, integrations=cloudwatch.integrations)
    assert result.status == "FAILED" and result.error == "CloudWatch.InvalidParameterValueException"
    definition["States"]["Publish metrics"]["Parameters"]["Namespace"] = "AWS/SageMaker"
    result = run_definition(definition, {"data": []}, integrations=cloudwatch.integrations)
    assert result.error == "CloudWatch.InvalidParameterValueException" and "reserved" in result.cause


def test_start_execution_starts_another_deployed_machine(run_task, mini_runtime):
    machine = mini_runtime.deployment.state_machines[0]
    started = run_task(mini_runtime, "arn:aws:states:::states:startExecution",
                       {"StateMachineArn": machine.arn, "Name": "child-1", "Input": {"tuning_enabled": False}})
    assert started["ExecutionArn"] == f"{machine.arn.replace(':stateMachine:', ':execution:')}:child-1"
    assert started["StartDate"].endswith("Z")
    described = mini_runtime.stepfunctions.describe_execution(executionArn=started["ExecutionArn"])
    assert json.loads(described["input"]) == {"tuning_enabled": False}
    with pytest.raises(StatesError) as refused:
        run_task(mini_runtime, "arn:aws:states:::states:startExecution",
                 {"StateMachineArn": machine.arn, "Name": "child-1", "Input": {"other": 1}})
    assert refused.value.name == "StepFunctions.ExecutionAlreadyExistsException"
