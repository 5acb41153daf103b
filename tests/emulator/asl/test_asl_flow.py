"""Wait, Succeed, Fail, Parallel, Map, execution timeouts and the context object's Map fields."""

import threading
import time

from asl_testkit import Scripted, chain, registry, run, types

from emulator.asl.errors import StatesError

INVOKE = "arn:aws:states:::lambda:invoke"


def block(*states) -> dict:
    return chain(*states)


# -- Wait ------------------------------------------------------------------------------------------


def test_wait_does_not_sleep_at_time_scale_zero_but_moves_the_virtual_clock():
    definition = chain(("W", {"Type": "Wait", "Seconds": 3600}), ("P", {"Type": "Pass", "Parameters": {"t.$": "$$.State.EnteredTime"}}))
    begin = time.monotonic()
    result = run(definition)
    assert time.monotonic() - begin < 3
    assert result.output == {"t": "2024-01-02T04:04:05.678Z"}


def test_wait_variants():
    for state, data in [
        ({"Type": "Wait", "SecondsPath": "$.s"}, {"s": 60}),
        ({"Type": "Wait", "Timestamp": "2024-01-02T03:05:05.678Z"}, {}),
        ({"Type": "Wait", "TimestampPath": "$.t"}, {"t": "2024-01-02T03:05:05.678Z"}),
    ]:
        result = run(chain(("W", state)), data)
        assert result.status == "SUCCEEDED"
        exited = next(e for e in result.history if e["type"] == "WaitStateExited")
        assert exited["timestamp"] == "2024-01-02T03:05:05.678Z", state


def test_wait_seconds_path_must_be_a_non_negative_integer():
    result = run(chain(("W", {"Type": "Wait", "SecondsPath": "$.s"})), {"s": "soon"})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def test_wait_sleeps_scaled_real_time():
    begin = time.monotonic()
    run(chain(("W", {"Type": "Wait", "Seconds": 10})), time_scale=0.01)
    assert 0.09 <= time.monotonic() - begin < 5


# -- Succeed / Fail --------------------------------------------------------------------------------


def test_succeed_ends_with_its_filtered_input():
    result = run(chain(("S", {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"})), {"a": {"b": 2}})
    assert (result.status, result.output) == ("SUCCEEDED", 2)
    assert types(result) == ["ExecutionStarted", "SucceedStateEntered", "SucceedStateExited", "ExecutionSucceeded"]


def test_fail_with_static_and_dynamic_error_and_cause():
    static = run(chain(("F", {"Type": "Fail", "Error": "ModelQualityBelowThreshold", "Cause": "auc 0.5 < 0.8"})))
    assert (static.status, static.error, static.cause) == ("FAILED", "ModelQualityBelowThreshold", "auc 0.5 < 0.8")
    assert types(static) == ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]
    assert static.history[-1]["executionFailedEventDetails"] == {"error": "ModelQualityBelowThreshold", "cause": "auc 0.5 < 0.8"}
    dynamic = run(
        chain(("F", {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('bad {}', $.n)"})), {"e": "Custom", "n": 3}
    )
    assert (dynamic.error, dynamic.cause) == ("Custom", "bad 3")
    bare = run(chain(("F", {"Type": "Fail"})))
    assert (bare.status, bare.error, bare.cause) == ("FAILED", None, None)


# -- Parallel --------------------------------------------------------------------------------------


def test_parallel_outputs_in_branch_order_with_result_selector():
    definition = chain(
        (
            "Par",
            {
                "Type": "Parallel",
                "Parameters": {"v.$": "$.v"},
                "Branches": [
                    block(("A", {"Type": "Pass", "Parameters": {"a.$": "$.v"}})),
                    block(("B", {"Type": "Wait", "Seconds": 1}), ("B2", {"Type": "Pass", "Result": "b"})),
                ],
                "ResultSelector": {"first.$": "$[0].a", "second.$": "$[1]"},
                "ResultPath": "$.par",
            },
        )
    )
    result = run(definition, {"v": 1})
    assert result.output == {"v": 1, "par": {"first": 1, "second": "b"}}


def test_parallel_branches_with_tasks_run_concurrently():
    barrier = threading.Barrier(3, timeout=5)

    def meet(request):
        barrier.wait()  # deadlocks (and times out) unless all three branches run at once
        return request.parameters

    fake = Scripted(meet)
    branches = [block((f"T{i}", {"Type": "Task", "Resource": INVOKE, "Parameters": {"i": i}})) for i in range(3)]
    result = run(chain(("Par", {"Type": "Parallel", "Branches": branches})), integrations=registry({"lambda:invoke": fake}))
    assert result.output == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_parallel_branch_failure_propagates_its_error_and_can_be_caught():
    definition = chain(
        (
            "Par",
            {
                "Type": "Parallel",
                "Branches": [block(("Ok", {"Type": "Pass"})), block(("Bad", {"Type": "Fail", "Error": "BranchBroke", "Cause": "c"}))],
                "Catch": [{"ErrorEquals": ["BranchBroke"], "ResultPath": "$.err", "Next": "Handled"}],
            },
        ),
        ("Handled", {"Type": "Pass"}),
    )
    result = run(definition, {"x": 1})
    assert result.output == {"x": 1, "err": {"Error": "BranchBroke", "Cause": "c"}}
    assert "ParallelStateFailed" in types(result)


def test_failed_branch_aborts_a_slow_sibling():
    slow = Scripted(("slow", 10.0, {}))
    definition = chain(
        (
            "Par",
            {
                "Type": "Parallel",
                "Branches": [
                    block(("Slow", {"Type": "Task", "Resource": INVOKE})),
                    block(("Wait", {"Type": "Wait", "Seconds": 0}), ("Die", {"Type": "Fail", "Error": "Dead"})),
                ],
            },
        )
    )
    begin = time.monotonic()
    result = run(definition, integrations=registry({"lambda:invoke": slow}))
    assert time.monotonic() - begin < 5
    assert (result.status, result.error) == ("FAILED", "Dead")
    assert len(slow.stopped) == 1


# -- Map -------------------------------------------------------------------------------------------


def test_map_with_item_selector_and_context():
    definition = chain(
        (
            "M",
            {
                "Type": "Map",
                "ItemsPath": "$.rows",
                "ItemSelector": {"index.$": "$$.Map.Item.Index", "row.$": "$$.Map.Item.Value", "scale.$": "$.scale"},
                "ItemProcessor": block(("Mul", {"Type": "Pass", "Parameters": {"i.$": "$.index", "r.$": "$.row", "s.$": "$.scale"}})),
                "ResultPath": "$.out",
            },
        )
    )
    result = run(definition, {"rows": ["a", "b"], "scale": 2})
    assert result.output["out"] == [{"i": 0, "r": "a", "s": 2}, {"i": 1, "r": "b", "s": 2}]


def test_legacy_iterator_and_parameters():
    definition = chain(
        ("M", {"Type": "Map", "Parameters": {"v.$": "$$.Map.Item.Value"}, "Iterator": block(("P", {"Type": "Pass", "OutputPath": "$.v"}))})
    )
    assert run(definition, [3, 4]).output == [3, 4]


def test_map_items_must_be_an_array():
    definition = chain(("M", {"Type": "Map", "ItemsPath": "$.x", "ItemProcessor": block(("P", {"Type": "Pass"}))}))
    result = run(definition, {"x": {"not": "array"}})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def test_map_concurrency_is_bounded_and_output_order_is_stable():
    lock = threading.Lock()
    active = {"now": 0, "peak": 0}

    def work(request):
        with lock:
            active["now"] += 1
            active["peak"] = max(active["peak"], active["now"])
        time.sleep(0.02 * (5 - request.parameters["v"] % 5))  # later items finish first
        with lock:
            active["now"] -= 1
        return request.parameters["v"] * 10

    definition = chain(
        (
            "M",
            {
                "Type": "Map",
                "MaxConcurrency": 3,
                "ItemSelector": {"v.$": "$$.Map.Item.Value"},
                "ItemProcessor": block(("T", {"Type": "Task", "Resource": INVOKE})),
            },
        )
    )
    result = run(definition, list(range(9)), integrations=registry({"lambda:invoke": Scripted(work)}))
    assert result.output == [v * 10 for v in range(9)]
    assert active["peak"] == 3


def test_max_concurrency_path():
    seen = []
    definition = chain(
        ("M", {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.limit", "ItemProcessor": block(("T", {"Type": "Task", "Resource": INVOKE}))})
    )
    fake = Scripted(lambda request: seen.append(threading.current_thread().name) or 1)
    result = run(definition, {"items": [1, 2, 3], "limit": 1}, integrations=registry({"lambda:invoke": fake}))
    assert result.output == [1, 1, 1]
    assert len(set(seen)) == 1  # MaxConcurrency 1 runs in order on one thread


def test_map_iteration_failure_fails_the_map_with_its_error():
    definition = chain(
        (
            "M",
            {
                "Type": "Map",
                "ItemProcessor": block(
                    ("C", {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "Bad"}], "Default": "Good"}),
                    ("Bad", {"Type": "Fail", "Error": "ItemTwo"}),
                    ("Good", {"Type": "Succeed"}),
                ),
            },
        )
    )
    result = run(definition, [1, 2, 3])
    assert (result.status, result.error) == ("FAILED", "ItemTwo")
    assert types(result).count("MapIterationSucceeded") == 1
    assert types(result)[-3:] == ["MapIterationFailed", "MapStateFailed", "ExecutionFailed"]


def _flaky_map(**tolerance) -> dict:
    return chain(
        (
            "M",
            {
                "Type": "Map",
                **tolerance,
                "ItemProcessor": block(
                    ("C", {"Type": "Choice", "Choices": [{"Variable": "$", "NumericLessThan": 0, "Next": "Bad"}], "Default": "Good"}),
                    ("Bad", {"Type": "Fail", "Error": "Negative"}),
                    ("Good", {"Type": "Succeed"}),
                ),
            },
        )
    )


def test_tolerated_failures_within_the_threshold():
    result = run(_flaky_map(ToleratedFailureCount=1), [1, -1, 2])
    assert result.status == "SUCCEEDED"
    assert result.output == [1, {"Error": "Negative", "Cause": ""}, 2]
    result = run(_flaky_map(ToleratedFailurePercentage=50), [1, -1, 2, -2])
    assert result.status == "SUCCEEDED"


def test_exceeding_the_tolerated_failures():
    for tolerance in ({"ToleratedFailureCount": 1}, {"ToleratedFailurePercentage": 40}, {"ToleratedFailurePercentage": 0}):
        result = run(_flaky_map(**tolerance), [1, -1, -2, 2] if "ToleratedFailureCount" in tolerance or tolerance["ToleratedFailurePercentage"] else [1, -1])
        assert (result.status, result.error) == ("FAILED", "States.ExceedToleratedFailureThreshold"), tolerance


def test_map_retry_reruns_every_iteration():
    fake = Scripted(StatesError("Flaky"), {"ok": 1})
    definition = chain(
        ("M", {"Type": "Map", "MaxConcurrency": 1, "Retry": [{"ErrorEquals": ["Flaky"]}], "ItemProcessor": block(("T", {"Type": "Task", "Resource": INVOKE}))})
    )
    result = run(definition, [1, 2], integrations=registry({"lambda:invoke": fake}))
    assert result.output == [{"ok": 1}, {"ok": 1}]
    assert types(result).count("MapStateStarted") == 2


# -- execution timeout -----------------------------------------------------------------------------


def test_execution_timeout_from_the_definition():
    definition = chain(("W", {"Type": "Wait", "Seconds": 100}), ("P", {"Type": "Pass"}))
    definition["TimeoutSeconds"] = 50
    result = run(definition)
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert types(result)[-1] == "ExecutionTimedOut"
    assert result.history[-1]["executionTimedOutEventDetails"]["error"] == "States.Timeout"


def test_execution_timeout_argument_bounds_a_slow_task():
    fake = Scripted(("slow", 10.0, {}))
    begin = time.monotonic()
    result = run(chain(("T", {"Type": "Task", "Resource": INVOKE})), integrations=registry({"lambda:invoke": fake}),
                 execution_timeout_seconds=5, time_scale=0.01)
    assert time.monotonic() - begin < 8
    assert result.status == "TIMED_OUT"
    assert len(fake.stopped) == 1


def test_execution_timeout_is_not_caught_by_states_all():
    definition = chain(
        ("Par", {"Type": "Parallel", "Branches": [block(("W", {"Type": "Wait", "Seconds": 100}))], "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}]}),
        ("C", {"Type": "Succeed"}),
    )
    result = run(definition, execution_timeout_seconds=10)
    assert result.status == "TIMED_OUT"


def test_abort_from_another_thread_stops_tasks_and_ends_aborted():
    slow = Scripted(("slow", 10.0, {}))
    abort = threading.Event()
    threading.Timer(0.1, abort.set).start()
    begin = time.monotonic()
    result = run(chain(("T", {"Type": "Task", "Resource": INVOKE})), integrations=registry({"lambda:invoke": slow}), abort=abort)
    assert time.monotonic() - begin < 5
    assert result.status == "ABORTED"
    assert types(result)[-1] == "ExecutionAborted"
    assert len(slow.stopped) == 1
