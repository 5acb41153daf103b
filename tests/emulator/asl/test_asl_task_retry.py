"""Task states against fake integrations, Retry backoff math and Catch."""

import random
import time

import pytest
from asl_testkit import Scripted, chain, registry, run, types

from emulator.asl.errors import StatesError
from emulator.asl.parse import Retrier
from emulator.asl.retry import backoff_seconds, error_matches, find_handler

INVOKE = "arn:aws:states:::lambda:invoke"


def task(**extra) -> dict:
    return {"Type": "Task", "Resource": INVOKE, **extra}


def test_task_request_carries_effective_parameters_and_context():
    fake = Scripted({"Payload": {"score": 0.9}})
    definition = chain(
        (
            "Score",
            task(
                InputPath="$.job",
                Parameters={"FunctionName": "scorer", "Payload": {"id.$": "$.id", "exec.$": "$$.Execution.Name"}},
                ResultSelector={"score.$": "$.Payload.score"},
                ResultPath="$.result",
                TimeoutSeconds=30,
            ),
        )
    )
    result = run(definition, {"job": {"id": 7}}, integrations=registry({"lambda:invoke": fake}), execution_name="e9")
    assert result.status == "SUCCEEDED"
    assert result.output == {"job": {"id": 7}, "result": {"score": 0.9}}
    request = fake.requests[0]
    assert request.parameters == {"FunctionName": "scorer", "Payload": {"id": 7, "exec": "e9"}}
    assert (request.key, request.state_name, request.timeout_seconds) == ("lambda:invoke", "Score", 30)
    assert request.execution_arn.endswith(":execution:local:e9")
    assert request.context["State"]["Name"] == "Score"


def test_task_events_for_request_response():
    result = run(chain(("T", task())), {}, integrations=registry({"lambda:invoke": Scripted({"ok": 1})}))
    assert types(result) == [
        "ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited", "ExecutionSucceeded",
    ]
    scheduled = result.history[2]["taskScheduledEventDetails"]
    assert scheduled == {"resourceType": "lambda", "resource": "invoke", "region": "us-east-1", "parameters": "{}"}
    assert result.history[4]["taskSucceededEventDetails"]["output"] == '{"ok":1}'


def test_sync_task_records_task_submitted():
    fake = Scripted({"TrainingJobStatus": "Completed"})
    resource = "arn:aws:states:::sagemaker:createTrainingJob.sync"
    result = run(
        chain(("Train", {"Type": "Task", "Resource": resource, "Parameters": {"TrainingJobName": "j"}})),
        integrations=registry({"sagemaker:createTrainingJob.sync": fake}),
    )
    assert types(result)[2:6] == ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"]
    assert result.history[3]["taskStartedEventDetails"] == {"resourceType": "sagemaker", "resource": "createTrainingJob.sync"}


def test_bare_lambda_arn_records_lambda_function_events():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:Validate"
    result = run(chain(("V", {"Type": "Task", "Resource": arn})), {"a": 1}, integrations=registry({"lambda:function": Scripted({"ok": True})}))
    assert types(result)[2:5] == ["LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionSucceeded"]
    assert result.history[2]["lambdaFunctionScheduledEventDetails"]["resource"] == arn


def test_wait_for_task_token_gets_a_token_in_the_context():
    fake = Scripted(lambda request: {"token": request.task_token})
    definition = chain(("Ask", {"Type": "Task", "Resource": "arn:aws:sns:::x", "End": True}))
    definition["States"]["Ask"] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
        "Parameters": {"Message.$": "$$.Task.Token"},
        "End": True,
    }
    result = run(definition, integrations=registry({"sns:publish.waitForTaskToken": fake}))
    assert result.output == {"token": "token-1"}
    assert fake.requests[0].parameters == {"Message": "token-1"}


def test_task_failure_without_handlers_fails_the_execution():
    fake = Scripted(StatesError("Lambda.Unknown", "boom"))
    result = run(chain(("T", task())), integrations=registry({"lambda:invoke": fake}))
    assert (result.status, result.error, result.cause) == ("FAILED", "Lambda.Unknown", "boom")
    assert types(result)[-2:] == ["TaskFailed", "ExecutionFailed"]
    assert result.history[-2]["taskFailedEventDetails"]["error"] == "Lambda.Unknown"


def test_integration_exception_becomes_states_task_failed():
    class Broken(Scripted):
        def start(self, request):
            raise KeyError("nope")

    result = run(chain(("T", task())), integrations=registry({"lambda:invoke": Broken()}))
    assert (result.status, result.error) == ("FAILED", "States.TaskFailed")
    assert "KeyError" in result.cause


def test_integration_returning_something_else_than_a_task_outcome_is_a_task_failure():
    class Sloppy(Scripted):
        def poll(self, handle):
            return {"not": "an outcome"}

    result = run(chain(("T", task())), integrations=registry({"lambda:invoke": Sloppy({})}))
    assert (result.status, result.error) == ("FAILED", "States.TaskFailed")
    assert "TaskOutcome" in result.cause


def test_unknown_resource_fails_with_states_runtime_naming_the_resource():
    result = run(chain(("T", task())), integrations=registry({}))
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "lambda:invoke" in result.cause


def test_timeout_stops_the_task_and_raises_states_timeout():
    fake = Scripted(("slow", 5.0, {"late": True}))
    definition = chain(("T", task(TimeoutSeconds=1, Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}])), ("Caught", {"Type": "Pass"}))
    begin = time.monotonic()
    result = run(definition, integrations=registry({"lambda:invoke": fake}), time_scale=0.002)
    assert time.monotonic() - begin < 4
    assert result.status == "SUCCEEDED"
    assert result.output == {"Error": "States.Timeout", "Cause": "Task state 'T' exceeded its TimeoutSeconds of 1"}
    assert "TaskTimedOut" in types(result)
    assert len(fake.stopped) == 1


def test_timeout_seconds_path():
    fake = Scripted(("slow", 5.0, {}))
    result = run(chain(("T", task(TimeoutSecondsPath="$.limit"))), {"limit": 1}, integrations=registry({"lambda:invoke": fake}), time_scale=0.01)
    assert (result.status, result.error) == ("FAILED", "States.Timeout")


def test_heartbeat_timeout_for_a_task_token_nobody_answers():
    fake = Scripted(("slow", 5.0, {}))
    definition = chain(("T", {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "HeartbeatSeconds": 1}))
    result = run(definition, integrations=registry({"sqs:sendMessage.waitForTaskToken": fake}), time_scale=0.002)
    assert (result.status, result.error) == ("FAILED", "States.HeartbeatTimeout")


# -- retry -------------------------------------------------------------------------------------------


def test_backoff_math():
    retrier = Retrier(error_equals=("X",), interval_seconds=3, backoff_rate=2.0)
    assert [backoff_seconds(retrier, n, random.Random(0)) for n in range(4)] == [3, 6, 12, 24]
    capped = Retrier(error_equals=("X",), interval_seconds=3, backoff_rate=2.0, max_delay_seconds=10)
    assert [backoff_seconds(capped, n, random.Random(0)) for n in range(4)] == [3, 6, 10, 10]
    jitter = Retrier(error_equals=("X",), interval_seconds=4, backoff_rate=1.0, jitter_strategy="FULL")
    rng = random.Random(3)
    expected = random.Random(3)
    for _ in range(5):
        assert backoff_seconds(jitter, 0, rng) == pytest.approx(expected.uniform(0, 4))


def test_error_matching_rules():
    assert error_matches(["States.ALL"], "Anything")
    assert not error_matches(["States.ALL"], "States.Runtime")
    assert not error_matches(["States.Runtime"], "States.Runtime")
    assert not error_matches(["States.ALL"], "States.DataLimitExceeded")
    assert error_matches(["States.TaskFailed"], "Lambda.ServiceException")
    assert not error_matches(["States.TaskFailed"], "States.Timeout")
    assert not error_matches(["States.TaskFailed"], "States.HeartbeatTimeout")
    assert error_matches(["States.TaskFailed"], "States.TaskFailed")
    assert error_matches(["States.TaskFailed"], "ModelQualityBelowThreshold")
    assert find_handler([Retrier(("A",)), Retrier(("B", "C"))], "C") == 1


def test_retry_then_succeed_records_every_attempt_and_advances_the_virtual_clock():
    fake = Scripted(StatesError("Flaky"), StatesError("Flaky"), {"done": 1})
    definition = chain(
        ("T", task(Retry=[{"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 5}], ResultSelector={"n.$": "$$.State.RetryCount"}))
    )
    result = run(definition, integrations=registry({"lambda:invoke": fake}))
    assert result.output == {"n": 2}
    assert types(result).count("TaskScheduled") == 3 and types(result).count("TaskFailed") == 2
    times = [e["timestamp"] for e in result.history if e["type"] == "TaskScheduled"]
    assert times == ["2024-01-02T03:04:05.678Z", "2024-01-02T03:04:07.678Z", "2024-01-02T03:04:13.678Z"]  # +2 s, +6 s


def test_retriers_count_separately_and_max_attempts_zero_never_retries():
    fake = Scripted(StatesError("A"), StatesError("B"), StatesError("A"), StatesError("B"), {"ok": 1})
    definition = chain(
        ("T", task(Retry=[{"ErrorEquals": ["A"], "MaxAttempts": 2}, {"ErrorEquals": ["B"], "MaxAttempts": 2}]))
    )
    assert run(definition, integrations=registry({"lambda:invoke": fake})).output == {"ok": 1}
    never = Scripted(StatesError("A"), {"ok": 1})
    definition = chain(("T", task(Retry=[{"ErrorEquals": ["A"], "MaxAttempts": 0}])))
    result = run(definition, integrations=registry({"lambda:invoke": never}))
    assert (result.status, len(never.requests)) == ("FAILED", 1)


def test_retry_exhausted_then_catch_with_result_path():
    fake = Scripted(StatesError("Boom", "details"))
    definition = chain(
        ("T", task(Retry=[{"ErrorEquals": ["Boom"], "MaxAttempts": 1}], Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handle"}])),
        ("Handle", {"Type": "Pass"}),
    )
    result = run(definition, {"in": 1}, integrations=registry({"lambda:invoke": fake}))
    assert result.output == {"in": 1, "error": {"Error": "Boom", "Cause": "details"}}
    assert len(fake.requests) == 2
    assert types(result)[-4:] == ["TaskStateExited", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"]


def test_catch_without_cause_binds_an_empty_string_and_first_matching_catcher_wins():
    fake = Scripted(StatesError("Specific"))
    definition = chain(
        ("T", task(Catch=[{"ErrorEquals": ["Other"], "Next": "A"}, {"ErrorEquals": ["Specific"], "Next": "B"}, {"ErrorEquals": ["States.ALL"], "Next": "A"}])),
        ("A", {"Type": "Fail", "Error": "WrongCatcher"}),
        ("B", {"Type": "Succeed"}),
    )
    result = run(definition, integrations=registry({"lambda:invoke": fake}))
    assert result.output == {"Error": "Specific", "Cause": ""}


def test_states_runtime_is_never_retried_or_caught():
    definition = chain(
        ("T", task(Parameters={"x.$": "$.missing"}, Retry=[{"ErrorEquals": ["States.ALL"]}], Catch=[{"ErrorEquals": ["States.ALL"], "Next": "C"}])),
        ("C", {"Type": "Succeed"}),
    )
    fake = Scripted({})
    result = run(definition, {}, integrations=registry({"lambda:invoke": fake}))
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert fake.requests == []


def test_result_path_conflict_can_be_caught():
    definition = chain(
        ("T", task(ResultPath="$.s.x", Catch=[{"ErrorEquals": ["States.ReferencePathConflict"], "Next": "C"}])),
        ("C", {"Type": "Succeed"}),
    )
    result = run(definition, {"s": "text"}, integrations=registry({"lambda:invoke": Scripted(1)}))
    assert result.status == "SUCCEEDED"
    assert result.output["Error"] == "States.ReferencePathConflict"


def test_real_sleep_is_scaled():
    fake = Scripted(StatesError("Flaky"), {"ok": 1})
    definition = chain(("T", task(Retry=[{"ErrorEquals": ["Flaky"], "IntervalSeconds": 10}])))
    begin = time.monotonic()
    result = run(definition, integrations=registry({"lambda:invoke": fake}), time_scale=0.01)
    elapsed = time.monotonic() - begin
    assert result.status == "SUCCEEDED"
    assert 0.09 <= elapsed < 5


def test_payload_over_256_kib_is_data_limit_exceeded_and_never_caught():
    big = "x" * 300_000
    definition = chain(
        ("T", task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "C"}], Retry=[{"ErrorEquals": ["States.ALL"]}])),
        ("C", {"Type": "Succeed"}),
    )
    fake = Scripted({"blob": big})
    result = run(definition, integrations=registry({"lambda:invoke": fake}))
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert len(fake.requests) == 1
    assert "262144" in result.cause


def test_at_time_scale_zero_task_timeouts_count_in_real_seconds():
    fake = Scripted(("slow", 0.2, {"done": True}))
    result = run(chain(("T", task(TimeoutSeconds=2))), integrations=registry({"lambda:invoke": fake}), time_scale=0.0)
    assert (result.status, result.output) == ("SUCCEEDED", {"done": True})


def test_a_time_scale_below_one_does_not_shorten_task_timeouts():
    """Tasks do real work that a time scale cannot speed up: 1 s stays 1 s at time_scale 0.01."""
    fake = Scripted(("slow", 0.3, {"done": True}))
    result = run(chain(("T", task(TimeoutSeconds=1))), integrations=registry({"lambda:invoke": fake}), time_scale=0.01)
    assert result.status == "SUCCEEDED", result.cause
