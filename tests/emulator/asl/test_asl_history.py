"""Execution history: AWS event types, order, details keys, id chains, disk records, on_event."""

import json

from asl_testkit import Scripted, chain, registry, run, types

from emulator.asl.history import details_key, read_execution


def test_details_keys_follow_get_execution_history():
    assert details_key("PassStateEntered") == "stateEnteredEventDetails"
    assert details_key("FailStateEntered") == "stateEnteredEventDetails"
    assert details_key("MapStateExited") == "stateExitedEventDetails"
    assert details_key("TaskScheduled") == "taskScheduledEventDetails"
    assert details_key("MapIterationStarted") == "mapIterationStartedEventDetails"
    assert details_key("MapStateStarted") == "mapStateStartedEventDetails"
    assert details_key("ExecutionTimedOut") == "executionTimedOutEventDetails"
    assert details_key("ParallelStateStarted") is None


def test_full_event_sequence_for_map_and_parallel():
    definition = chain(
        ("Prep", {"Type": "Pass"}),
        (
            "Fan",
            {
                "Type": "Map",
                "ItemProcessor": chain(("Item", {"Type": "Pass"})),
            },
        ),
        ("Both", {"Type": "Parallel", "Branches": [chain(("L", {"Type": "Pass"})), chain(("R", {"Type": "Succeed"}))]}),
    )
    result = run(definition, [1, 2])
    assert types(result) == [
        "ExecutionStarted",
        "PassStateEntered", "PassStateExited",
        "MapStateEntered", "MapStateStarted",
        "MapIterationStarted", "PassStateEntered", "PassStateExited", "MapIterationSucceeded",
        "MapIterationStarted", "PassStateEntered", "PassStateExited", "MapIterationSucceeded",
        "MapStateSucceeded", "MapStateExited",
        "ParallelStateEntered", "ParallelStateStarted",
        "PassStateEntered", "PassStateExited",
        "SucceedStateEntered", "SucceedStateExited",
        "ParallelStateSucceeded", "ParallelStateExited",
        "ExecutionSucceeded",
    ]
    events = result.history
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    by_id = {e["id"]: e for e in events}
    # each iteration chains back to MapStateStarted, as concurrent branches do in AWS
    iterations = [e for e in events if e["type"] == "MapIterationStarted"]
    assert all(by_id[e["previousEventId"]]["type"] == "MapStateStarted" for e in iterations)
    assert [e["mapIterationStartedEventDetails"] for e in iterations] == [{"name": "Fan", "index": 0}, {"name": "Fan", "index": 1}]
    assert events[4]["mapStateStartedEventDetails"] == {"length": 2}
    entered = events[1]
    assert entered == {
        "id": 2,
        "previousEventId": 1,
        "timestamp": "2024-01-02T03:04:05.678Z",
        "type": "PassStateEntered",
        "stateEnteredEventDetails": {"name": "Prep", "input": "[1,2]", "inputDetails": {"truncated": False}},
    }
    assert events[0]["executionStartedEventDetails"]["input"] == "[1,2]"
    assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == [[1, 2], [1, 2]]


def test_histories_are_deterministic_with_an_injected_clock_and_ids():
    fake = Scripted(lambda request: {"token": request.task_token})
    definition = chain(("Ask", {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}), ("W", {"Type": "Wait", "Seconds": 5}))
    first = run(definition, {"a": 1}, integrations=registry({"sqs:sendMessage.waitForTaskToken": fake}))
    second = run(definition, {"a": 1}, integrations=registry({"sqs:sendMessage.waitForTaskToken": fake}))
    assert first.history == second.history


def test_on_event_sees_every_event_as_it_is_appended():
    seen = []
    result = run(chain(("A", {"Type": "Pass"}), ("B", {"Type": "Pass"})), on_event=lambda e: seen.append(e["type"]))
    assert seen == types(result)


def test_a_broken_on_event_callback_does_not_break_the_run():
    def explode(event):
        raise RuntimeError("printer on fire")

    assert run(chain(("A", {"Type": "Pass"})), on_event=explode).status == "SUCCEEDED"


def test_history_written_to_disk(tmp_path):
    folder = tmp_path / "executions" / "e1"
    result = run(chain(("F", {"Type": "Fail", "Error": "Nope", "Cause": "why"})), {"k": 1}, history_dir=folder, execution_name="e1")
    assert json.loads((folder / "history.json").read_text()) == result.history
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "FAILED" and status["error"] == "Nope" and status["cause"] == "why"
    assert status["executionArn"] == result.execution_arn
    assert json.loads((folder / "output.json").read_text()) is None
    ok = run(chain(("P", {"Type": "Pass", "Result": {"r": 1}})), history_dir=tmp_path / "e2")
    assert json.loads((tmp_path / "e2" / "output.json").read_text()) == ok.output == {"r": 1}
    assert json.loads((tmp_path / "e2" / "status.json").read_text())["status"] == "SUCCEEDED"
    record = read_execution(tmp_path / "e2")
    assert record["status"]["status"] == "SUCCEEDED"
    assert record["history"] == ok.history and record["output"] == {"r": 1}


def test_definition_as_json_text_and_default_input():
    result = run(json.dumps(chain(("P", {"Type": "Pass"}))))
    assert (result.status, result.output) == ("SUCCEEDED", {})


def test_ctrl_c_stops_the_task_and_leaves_an_aborted_record(tmp_path):
    import pytest

    class Interrupted(Scripted):
        def poll(self, handle):
            raise KeyboardInterrupt

    fake = Interrupted({})
    definition = chain(("T", {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"}))
    with pytest.raises(KeyboardInterrupt):
        run(definition, integrations=registry({"lambda:invoke": fake}), history_dir=tmp_path)
    assert len(fake.stopped) == 1
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "ABORTED"
    assert json.loads((tmp_path / "history.json").read_text())[-1]["type"] == "ExecutionAborted"
