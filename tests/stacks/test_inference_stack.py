"""The inference side of the synthesized template: the endpoint's data capture (the training state
machine's endpoint config), the inference state machine, its trigger and its IAM."""

from __future__ import annotations

import pytest
from definitions import all_states, machine_definition, render


@pytest.fixture(scope="module")
def template_json(synthesized) -> dict:
    stack, assembly = synthesized
    return assembly.get_stack_by_name(stack.stack_name).template


def data_bucket(template_json: dict) -> str:
    (bucket,) = [lid for lid, r in template_json["Resources"].items()
                 if r["Type"] == "AWS::S3::Bucket" and lid.startswith("StorageDataBucket")]
    return bucket


def test_the_endpoint_config_captures_input_and_output_to_the_capture_prefix(template_json):
    states = all_states(machine_definition(template_json, "TrainingPipeline"))
    config = states["Create endpoint config"]
    assert config["Resource"] == "arn:aws:states:::sagemaker:createEndpointConfig"
    assert config["Retry"] and config["Catch"]
    capture = config["Parameters"]["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://REF_{data_bucket(template_json)}/capture/"
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert sorted(o["CaptureMode"] for o in capture["CaptureOptions"]) == ["Input", "Output"]
    assert capture["CaptureContentTypeHeader"] == {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}
    assert capture["KmsKeyId"].startswith("ATT_StorageDataKey")


@pytest.fixture(scope="module")
def inference(template_json) -> dict[str, dict]:
    return all_states(machine_definition(template_json, "InferencePipeline"))


def test_records_dropped_under_inference_start_the_inference_machine(template_json):
    rules = {lid: r for lid, r in template_json["Resources"].items() if r["Type"] == "AWS::Events::Rule"}
    (rule,) = [r for lid, r in rules.items() if lid.startswith("InferenceTrigger")]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"]["key"] == [{"wildcard": "inference/*.csv"}, {"wildcard": "inference/*.jsonl"}]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": data_bucket(template_json)}]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Ref"].startswith("InferencePipelineStateMachine")
    assert "input_s3_uri" in target["InputTransformer"]["InputTemplate"]
    assert target["DeadLetterConfig"] and target["RetryPolicy"]["MaximumRetryAttempts"] == 4
    # the training trigger still takes only CSVs under raw/
    (training,) = [r for lid, r in rules.items() if lid.startswith("TriggerRawCsvUploaded")]
    assert training["Properties"]["EventPattern"]["detail"]["object"]["key"] == [{"wildcard": "raw/*.csv"}]


def test_the_steps_run_in_order_validate_score_flag_report_decide(template_json):
    definition = machine_definition(template_json, "InferencePipeline")
    states = definition["States"]
    order, name = [], definition["StartAt"]
    while name and name in states:
        order.append(name)
        state = states[name]
        name = state.get("Next") or state.get("Default")
    assert order[:order.index("Read and validate") + 1][-3:] == ["Collect input", "Apply defaults", "Read and validate"]
    assert order[order.index("Read and validate"):][:6] == ["Read and validate", "Score batches", "Flag low confidence",
                                                            "Publish low-confidence rate", "Rate noted",
                                                            "Anything captured?"]
    assert states["Score batches"]["Type"] == "Map" and states["Score batches"]["MaxConcurrency"] == 4
    assert states["Score batches"]["ItemsPath"] == "$.plan.batches"


def test_the_report_draws_only_the_capture_window_read_records_lists(inference):
    inputs = {i["InputName"]: i["S3Input"] for i in inference["Draw capture report"]["Parameters"]["ProcessingInputs"]}
    assert inputs["capture"]["S3DataType"] == "ManifestFile" and inputs["capture"]["S3Uri.$"] == "$.plan.capture"
    assert inputs["schema"]["S3DataType"] == "S3Prefix"
    assert inference["Anything captured?"]["Default"] == "Nothing captured in the window"
    assert "$.plan.capture_window_hours" in inference["Nothing captured in the window"]["Parameters"]["why.$"]


def test_every_task_has_retry_and_a_catch_that_notifies(inference):
    tasks = {name: s for name, s in inference.items() if s["Type"] == "Task"}
    assert {"Read and validate", "Read batch", "Invoke endpoint", "Write scores", "Flag low confidence",
            "Publish low-confidence rate", "Draw capture report", "Notify success", "Notify failure"} <= set(tasks)
    for name, state in tasks.items():
        assert state.get("Retry"), name
        assert state.get("Catch"), name
        assert any("States.ALL" in c["ErrorEquals"] for c in state["Catch"]), name
    map_state = inference["Score batches"]
    assert map_state["Catch"][0]["Next"] == "Notify failure"
    assert inference["Invoke endpoint"]["Catch"][0]["Next"] == "Batch failed"  # re-raised to the Map's Catch
    assert inference["Notify failure"]["Next"] == "Inference failed"


def test_the_endpoint_is_called_through_the_sdk_integration_with_transient_retries(inference):
    invoke = inference["Invoke endpoint"]
    assert invoke["Resource"] == "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint"
    assert invoke["Parameters"]["EndpointName"] == "ml-pipeline-endpoint"
    assert invoke["Parameters"]["ContentType"] == "text/csv" and invoke["Parameters"]["Body.$"] == "$.input.body"
    retried = {e for r in invoke["Retry"] for e in r["ErrorEquals"]}
    assert {"SageMakerRuntime.ServiceUnavailableException", "SageMakerRuntime.SageMakerRuntimeException",
            "SageMakerRuntime.ModelErrorException"} <= retried
    assert "States.ALL" not in retried


def test_low_confidence_fails_by_name_after_the_predictions_are_written(inference):
    refused = inference["Too many low-confidence"]
    assert refused["Parameters"] == {"Error": "LowConfidencePrediction", "Cause.$": "$.filter.reason"}
    assert refused["Next"] == "Notify failure"
    assert inference["Inference failed"] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    report = inference["Draw capture report"]
    assert report["Resource"] == "arn:aws:states:::sagemaker:createProcessingJob.sync"
    assert report["Parameters"]["AppSpecification"]["ContainerEntrypoint"][-1].endswith("/capture_report.py")
    assert [c["Next"] for c in report["Catch"]] == ["Report not drawn"], "a report that fails is noted, not fatal"


def _statements(template_json: dict, role_prefix: str) -> list[dict]:
    resources = template_json["Resources"]
    return [st for r in resources.values() if r["Type"] == "AWS::IAM::Policy"
            and any(ref["Ref"].startswith(role_prefix) for ref in r["Properties"]["Roles"])
            for st in r["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_the_low_confidence_rate_is_published_for_the_dashboard_and_never_fails_the_inference(inference, template_json):
    publish = inference["Publish low-confidence rate"]
    assert publish["Resource"] == "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
    assert publish["Parameters"]["Namespace"] == "MlPipeline/ModelMonitor"
    datum = publish["Parameters"]["MetricData"][0]
    assert datum["MetricName"] == "LowConfidenceRate" and datum["Value.$"] == "$.filter.share"
    assert datum["Dimensions"] == [{"Name": "EndpointName", "Value": "ml-pipeline-endpoint"}]
    assert publish["Catch"][0]["Next"] == "Rate not published" and inference["Rate not published"]["Next"] == "Rate noted"
    machine = _statements(template_json, "InferencePipelineStateMachineRole")
    put = [st for st in machine if "cloudwatch:PutMetricData" in _actions(st)]
    assert len(put) == 1 and put[0]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MlPipeline/ModelMonitor"}}


def test_iam_is_scoped_to_the_endpoint_and_the_prefixes_used(template_json):
    machine = _statements(template_json, "InferencePipelineStateMachineRole")
    invoke = [st for st in machine if "sagemaker:InvokeEndpoint" in _actions(st)]
    assert len(invoke) == 1
    assert render(invoke[0]["Resource"]).endswith(":endpoint/ml-pipeline-endpoint")
    s3 = [st for st in machine if any(a.startswith("s3:") for a in _actions(st))]
    assert s3 and all(render(st["Resource"]).endswith("/predictions/*") for st in s3)
    jobs = [st for st in machine if "sagemaker:CreateProcessingJob" in _actions(st)]
    assert render(jobs[0]["Resource"]).endswith(":processing-job/capture-report-*")
    everything = {a for st in machine for a in _actions(st)}
    assert not [a for a in everything if a.endswith(":*") or a == "*"]

    reader = _statements(template_json, "InferencePipelineReadRecords")
    resources = " ".join(render(st["Resource"]) if not isinstance(st["Resource"], list)
                         else " ".join(render(r) for r in st["Resource"]) for st in reader)
    assert "/inference/*" in resources and "/runs/*/processed/schema/*" in resources and "/predictions/*" in resources
    assert ":endpoint/ml-pipeline-endpoint" in resources
    assert "/raw/*" not in resources and "/champion/*" not in resources
    describe = [st for st in reader if "sagemaker:DescribeEndpoint" in _actions(st)]
    assert describe and not any(a.startswith("sagemaker:Create") for st in reader for a in _actions(st))
