"""The composition root: one launcher for every execution, records on the wall clock."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

from emulator.storage.executions import read_execution


def test_a_launched_execution_records_wall_clock_times(mini_runtime):
    """A Wait of an hour, played at time scale 0, must not put the stop time an hour in the future."""
    mini_runtime.time_scale = 0.0
    machine = dataclasses.replace(mini_runtime.deployment.state_machines[0], definition=json.dumps(
        {"StartAt": "Hour", "States": {"Hour": {"Type": "Wait", "Seconds": 3600, "End": True}}}))
    before = datetime.now().astimezone() - timedelta(milliseconds=1)  # records keep milliseconds
    result = mini_runtime.launch(machine, {}, "an-hour")
    after = datetime.now().astimezone()
    assert result.status == "SUCCEEDED"
    status = read_execution(mini_runtime.execution_dir(machine.name, "an-hour"))["status"]
    start, stop = (datetime.fromisoformat(status[key]) for key in ("startDate", "stopDate"))
    assert before <= start <= stop <= after
    assert all(before <= datetime.fromisoformat(e["timestamp"]) <= after for e in result.history)


def test_the_observer_sees_every_event_of_a_launched_execution(mini_runtime):
    mini_runtime.time_scale = 0.0
    seen: dict[str, list[str]] = {}
    mini_runtime.observer = lambda machine, name: (lambda event: seen.setdefault(name, []).append(event["type"]))
    machine = dataclasses.replace(mini_runtime.deployment.state_machines[0], definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    mini_runtime.launch(machine, {}, "observed")
    assert seen["observed"][0] == "ExecutionStarted" and seen["observed"][-1] == "ExecutionSucceeded"
