"""The monitoring loop in the synthesized template: its schedule, the state machine (collect ->
drift job -> metrics -> decide -> retrain), Retry/Catch, alarms, the dashboard and IAM."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template
from definitions import parse_definition, render

from stacks.config import ConfigError, PipelineConfig
from stacks.model_monitoring import METRICS_NAMESPACE


@pytest.fixture(scope="module")
def template(synthesized) -> Template:
    return Template.from_stack(synthesized[0])


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template.to_json()["Resources"]


def _machine(resources, prefix):
    return next((logical_id, r) for logical_id, r in resources.items()
                if r["Type"] == "AWS::StepFunctions::StateMachine" and logical_id.startswith(prefix))


@pytest.fixture(scope="module")
def states(resources) -> dict:
    _, machine = _machine(resources, "ModelMonitoring")
    return parse_definition(machine)["States"]


def test_the_schedule_starts_the_monitoring_machine_with_the_window_end(resources):
    machine_id, _ = _machine(resources, "ModelMonitoring")
    rule = next(r for r in resources.values() if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"])
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    target = rule["Properties"]["Targets"][0]
    assert target["Arn"] == {"Ref": machine_id}
    assert target["InputTransformer"]["InputPathsMap"] == {"time": "$.time"}
    # outside quotes, EventBridge puts the value as JSON (a quoted string)
    assert json.loads(target["InputTransformer"]["InputTemplate"].replace("<time>", '"2026-01-31T10:00:00Z"')) == {
        "trigger": "schedule", "window_end": "2026-01-31T10:00:00Z"}


def test_the_loop_runs_in_order(states):
    assert states["Collect capture"]["Next"] == "Traffic in the window?"
    traffic = states["Traffic in the window?"]
    assert traffic["Choices"][0]["Next"] == "Ground truth?" and traffic["Default"] == "Nothing to analyse"
    assert states["Nothing to analyse"]["Next"] == "No traffic" and states["No traffic"]["Type"] == "Succeed"
    for job in ("Analyse drift", "Analyse drift and quality"):
        assert states[job]["Resource"] == "arn:aws:states:::sagemaker:createProcessingJob.sync"
        assert states[job]["Next"] == "Read drift summary"
    assert states["Read drift summary"]["Next"] == "Publish metrics"
    assert states["Publish metrics"]["Resource"] == "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
    assert states["Publish metrics"]["Parameters"] == {"Namespace": METRICS_NAMESPACE, "MetricData.$": "$.drift.metric_data"}
    assert states["Publish metrics"]["Next"] == "Drift or degraded quality?"
    assert states["Start retraining"]["Resource"] == "arn:aws:states:::states:startExecution"
    assert states["Retraining input"]["Parameters"] == {
        "value.$": "States.JsonMerge($.config.retraining_settings, $.retraining.start, false)"}
    assert states["Retraining input"]["Next"] == "Start retraining"
    assert states["Start retraining"]["Parameters"]["Input.$"] == "$.retraining_input.value"


def test_the_drift_job_runs_drift_py_on_capture_baseline_and_optional_ground_truth(states):
    with_labels = states["Analyse drift and quality"]["Parameters"]
    without = states["Analyse drift"]["Parameters"]
    assert with_labels["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/drift.py"]
    assert "sagemaker-scikit-learn" in with_labels["AppSpecification"]["ImageUri"]
    local = {i["InputName"]: i["S3Input"]["LocalPath"] for i in with_labels["ProcessingInputs"]}
    assert local == {"code": "/opt/ml/processing/input/code", "capture": "/opt/ml/processing/capture",
                     "baseline": "/opt/ml/processing/baseline", "ground_truth": "/opt/ml/processing/ground_truth"}
    assert "ground_truth" not in {i["InputName"] for i in without["ProcessingInputs"]}
    assert with_labels["ProcessingOutputConfig"]["Outputs"][0]["S3Output"] == {
        "S3Uri.$": "$.collect.paths.analysis", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}
    assert states["Ground truth?"]["Choices"][0] == {
        "Variable": "$.collect.ground_truth_files", "NumericGreaterThan": 0, "Next": "Analyse drift and quality"}


def test_the_decision_compares_drift_share_and_quality_with_the_settings(states):
    decide = states["Drift or degraded quality?"]
    first = decide["Choices"][0]
    assert first["Next"] == "Build retraining set"
    degraded, enabled = first["And"]
    assert degraded["Or"] == [
        {"Variable": "$.drift.summary.drifted_feature_share", "NumericGreaterThanPath": "$.config.max_drifted_feature_share"},
        {"Variable": "$.drift.summary.quality_degraded", "BooleanEquals": True}]
    assert enabled == {"Variable": "$.config.retrain", "BooleanEquals": True}
    assert decide["Choices"][1]["Next"] == "Notify degradation" and decide["Default"] == "Healthy report"
    labelled = states["Labelled records?"]
    assert labelled["Choices"][0]["Next"] == "Retraining input" and labelled["Default"] == "Notify degradation"
    defaults = states["Collect input"]["Parameters"]["defaults"]
    assert defaults == {"window_minutes": 60, "max_drifted_feature_share": 0.2, "retrain": True, "retraining_settings": {}}


def test_every_task_has_retry_and_a_catch_to_the_notifying_failure_handler(states):
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert len(tasks) >= 9
    for name, state in tasks.items():
        if name == "Notify failure":
            assert state["Catch"][0]["Next"] == "Monitoring failed"
            continue
        assert state.get("Retry"), f"{name} has no Retry"
        for retrier in state["Retry"]:
            assert "States.ALL" not in retrier["ErrorEquals"] and retrier.get("JitterStrategy") == "FULL", name
        assert any(c["ErrorEquals"] == ["States.ALL"] and c["Next"] == "Notify failure" and c["ResultPath"] == "$.error"
                   for c in state["Catch"]), name
    assert states["Monitoring failed"] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}


def test_alarms_on_drift_share_and_quality_notify_the_topic(template):
    for metric, threshold, comparison in (("DriftedFeatureShare", 0.2, "GreaterThanThreshold"),
                                          ("QualityDegraded", 1, "GreaterThanOrEqualToThreshold")):
        template.has_resource_properties("AWS::CloudWatch::Alarm", {
            "Namespace": METRICS_NAMESPACE, "MetricName": metric, "Threshold": threshold,
            "ComparisonOperator": comparison, "TreatMissingData": "notBreaching", "Statistic": "Maximum",
            "Period": 3600, "Dimensions": [{"Name": "EndpointName", "Value": "ml-pipeline-endpoint"}],
            "AlarmActions": [{"Ref": Match.string_like_regexp("NotificationsTopic")}],
        })


def test_the_dashboard_shows_endpoint_drift_quality_executions_and_low_confidence(resources):
    dashboard = next(r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard")
    body = render(dashboard["Properties"]["DashboardBody"])
    for words in ("Invocations", "ModelLatency", "Invocation4XXErrors", "Invocation5XXErrors", "AllTraffic",
                  "DriftedFeatureShare", "LiveQuality", "LowConfidenceRate", "ExecutionsSucceeded", "ExecutionsFailed",
                  "Training executions", "Monitoring executions"):
        assert words in body, words


def _statements(resources, role_prefix):
    return [s for r in resources.values() if r["Type"] == "AWS::IAM::Policy"
            and any(role["Ref"].startswith(role_prefix) for role in r["Properties"]["Roles"])
            for s in r["Properties"]["PolicyDocument"]["Statement"]]


def test_the_monitoring_role_is_scoped(resources):
    statements = _statements(resources, "ModelMonitoringStateMachineRole")
    start = [s for s in statements if s["Action"] == "states:StartExecution"]
    assert len(start) == 1 and start[0]["Resource"] == {"Ref": _machine(resources, "TrainingPipeline")[0]}
    metrics = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics == [{"Action": "cloudwatch:PutMetricData", "Effect": "Allow", "Resource": "*", "Sid": "PublishMonitoringMetrics",
                        "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}}]
    sagemaker = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
                 if a.startswith("sagemaker:")}
    assert sagemaker == {"sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                         "sagemaker:AddTags"}


def test_the_retraining_function_writes_only_under_retraining(resources):
    statements = _statements(resources, "ModelMonitoringRetrainingSetServiceRole")
    puts = [s for s in statements if "s3:PutObject" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert puts and all(json.dumps(s["Resource"]).endswith('/retraining/*"]]}') for s in puts)


@pytest.mark.parametrize("context, words", [
    ({"monitoring_schedule": "every hour"}, "must be an EventBridge schedule expression"),
    ({"max_drifted_feature_share": 1.5}, "max_drifted_feature_share"),
    ({"monitoring_window_minutes": 1}, "monitoring_window_minutes"),
])
def test_bad_monitoring_settings_are_named(context, words):
    with pytest.raises(ConfigError, match=words):
        PipelineConfig.from_context(context)


def test_monitoring_settings_are_not_training_execution_settings():
    defaults = PipelineConfig().execution_defaults()
    assert not {"monitoring_schedule", "max_drifted_feature_share", "retrain_on_drift"} & set(defaults)


def test_the_training_pipeline_records_the_champions_run(resources):
    _, machine = _machine(resources, "TrainingPipeline")
    states = parse_definition(machine)
    deploy = next(s for s in states["States"].values() if s["Type"] == "Parallel")["Branches"][1]["States"]
    assert deploy["Record champion"]["Next"] == deploy["Record first champion"]["Next"] == "Describe champion run"
    assert deploy["Describe champion run"]["Parameters"]["input.$"] == "$.plan.paths.input"
    assert deploy["Record champion run"]["Parameters"]["Key"] == "champion/ml-pipeline-endpoint/run.json"
    assert deploy["Record champion run"]["Next"] == "Release deploy lock"


def test_a_retrain_meets_the_champion_scored_on_its_own_test_split(resources):
    _, machine = _machine(resources, "TrainingPipeline")
    states = parse_definition(machine)["States"]
    assert states["Find champion run"]["Parameters"]["Key.$"] == "$.plan.paths.champion_run_key"
    assert states["Find champion run"]["Catch"][0] == {"ErrorEquals": ["S3.NoSuchKeyException"], "ResultPath": None,
                                                       "Next": "Champion not rescored"}
    choice = states["Score the champion here?"]
    conditions = choice["Choices"][0]["And"]
    assert {"Variable": "$.champion_run.record.columns", "StringEqualsPath": "$.this_run.columns"} in conditions
    assert {"Variable": "$.plan.config.no_worse_than_champion", "BooleanEquals": True} in conditions
    assert choice["Choices"][0]["Next"] == "Score champion" and choice["Default"] == "Champion not rescored"
    transform = states["Score champion"]["Parameters"]
    assert transform["ModelName.$"] == "$.champion_run.record.model"  # the champion's own serving pipeline
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri.$"] == "$.plan.paths.batch"  # this run's rows
    evaluate = states["Evaluate champion"]["Parameters"]
    assert evaluate["AppSpecification"]["ContainerEntrypoint"][-1].endswith("champion_metrics.py")
    assert {i["InputName"]: i["S3Input"]["S3Uri.$"] for i in evaluate["ProcessingInputs"] if i["InputName"] != "code"} == {
        "predictions": "$.plan.paths.champion_predictions", "test": "$.plan.paths.test", "schema": "$.plan.paths.schema"}
    assert states["Quality gate"]["Parameters"]["champion_rescored_s3_uri.$"] == "$.champion_score.report"
