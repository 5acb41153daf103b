"""EventBridge schedules, locally: rate() and AWS's six-field cron() read and played on a scaled
clock by the SchedulePlayer `serve` ticks, each firing a "Scheduled Event" through the rule's target."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from emulator.services.eventbridge import EventBus, RuleSpec, RuleTargetSpec, SchedulePlayer
from emulator.services.schedules import Schedule, ScheduleExpressionError

T0 = dt.datetime(2026, 1, 30, 10, 7, 30, tzinfo=dt.UTC)  # a Friday


@pytest.mark.parametrize("expression, after, expected", [
    ("rate(1 hour)", T0, T0 + dt.timedelta(hours=1)),
    ("rate(5 minutes)", T0, T0 + dt.timedelta(minutes=5)),
    ("rate(2 days)", T0, T0 + dt.timedelta(days=2)),
    ("cron(0/15 * * * ? *)", T0, T0.replace(minute=15, second=0)),
    ("cron(0 12 * * ? *)", T0, T0.replace(hour=12, minute=0, second=0)),
    # AWS numbers weekdays from Sunday = 1: 2 is Monday
    ("cron(0 8 ? * 2 *)", T0, dt.datetime(2026, 2, 2, 8, 0, tzinfo=dt.UTC)),
    ("cron(0 8 ? * MON-FRI *)", T0, dt.datetime(2026, 2, 2, 8, 0, tzinfo=dt.UTC)),
    ("cron(0 8 ? * 6#1 *)", T0, dt.datetime(2026, 2, 6, 8, 0, tzinfo=dt.UTC)),  # the first Friday of February
    ("cron(30 9 1 * ? 2027)", T0, dt.datetime(2027, 1, 1, 9, 30, tzinfo=dt.UTC)),
    ("cron(0 0 1 1 ? 2025)", T0, None),  # a year gone by: never again
])
def test_next_firing(expression, after, expected):
    assert Schedule.parse(expression).next_after(after) == expected


@pytest.mark.parametrize("expression, words", [
    ("rate(1 hours)", "rate\\(1 hour\\)"),
    ("rate(0 minutes)", "positive"),
    ("every hour", "neither rate"),
    ("cron(0 12 * * *)", "neither rate"),  # five fields: a Unix cron, not EventBridge's
    ("cron(0 12 * * MON *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 99 * * ? *)", "croniter cannot read"),
])
def test_bad_expressions_are_named(expression, words):
    with pytest.raises(ScheduleExpressionError, match=words):
        Schedule.parse(expression)


class FakeClock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _bus(expression: str, started: list) -> EventBus:
    target = RuleTargetSpec(id="monitor", arn="arn:aws:states:us-east-1:000000000000:stateMachine:monitor",
                            input_transformer={"InputPathsMap": {"time": "$.time"},
                                               "InputTemplate": '{"trigger":"schedule","window_end":<time>}'})
    rule = RuleSpec("Stack", "Schedule", "stack-schedule", "arn:aws:events:us-east-1:000000000000:rule/stack-schedule",
                    None, schedule_expression=expression, targets=[target])
    return EventBus([rule], [], region="us-east-1", account="000000000000",
                    start_execution=lambda arn, text, rule: started.append((arn, json.loads(text))) or "started")


def test_a_rate_schedule_fires_on_the_scaled_clock_with_the_wall_time_as_the_event_time():
    started: list = []
    clock = FakeClock(T0)
    player = SchedulePlayer(_bus("rate(1 hour)", started), time_scale=0.01, now=clock)
    assert player.next_firings() == {"stack-schedule": T0 + dt.timedelta(seconds=36)}  # an hour at 0.01
    clock.now = T0 + dt.timedelta(seconds=35)
    assert player.tick() == [] and started == []
    clock.now = T0 + dt.timedelta(seconds=36.5)
    deliveries = player.tick()
    assert [d.result for d in deliveries] == ["started"]
    assert started == [("arn:aws:states:us-east-1:000000000000:stateMachine:monitor",
                        {"trigger": "schedule", "window_end": "2026-01-30T10:08:06Z"})]
    assert player.tick() == []  # fired once for that period
    clock.now = T0 + dt.timedelta(seconds=80)  # two periods later, missed ones are not replayed
    assert len(player.tick()) == 1 and len(started) == 2


def test_a_cron_schedule_fires_at_its_virtual_times():
    started: list = []
    clock = FakeClock(T0)
    player = SchedulePlayer(_bus("cron(0 * * * ? *)", started), time_scale=0.01, now=clock)
    # 10:07:30 -> 11:00:00 is 52.5 virtual minutes, 31.5 s of wall time at 0.01
    assert player.next_firings()["stack-schedule"] == T0 + dt.timedelta(seconds=31.5)
    clock.now = T0 + dt.timedelta(seconds=31)
    assert player.tick() == []
    clock.now = T0 + dt.timedelta(seconds=32)
    assert len(player.tick()) == 1
    assert player.next_firings()["stack-schedule"] == T0 + dt.timedelta(seconds=31.5 + 36)


def test_disabled_and_unreadable_schedules_do_not_fire():
    started: list = []
    bus = _bus("rate(1 minute)", started)
    bus.rules[0].state = "DISABLED"
    assert SchedulePlayer(bus, now=FakeClock(T0)).next_firings() == {}
    bus = _bus("every minute", started)
    assert SchedulePlayer(bus, now=FakeClock(T0)).next_firings() == {}


def test_serve_keeps_time_fires_due_schedules_and_evaluates_alarms_every_few_seconds():
    from types import SimpleNamespace

    from emulator.cli import serve

    evaluations: list = []
    runtime = SimpleNamespace(cloudwatch=SimpleNamespace(evaluate_alarms=lambda: evaluations.append(1)))
    started: list = []
    clock = FakeClock(T0)
    player = SchedulePlayer(_bus("rate(1 minute)", started), time_scale=0.01, now=clock)
    clock.now = T0 + dt.timedelta(seconds=1)  # a minute at 0.01 is 0.6 s
    evaluated = serve._keep_time(runtime, player, 0.0, 100.0)
    assert (len(started), len(evaluations), evaluated) == (1, 1, 100.0)
    assert serve._keep_time(runtime, player, evaluated, 101.0) == 100.0  # 1 s later: not evaluated again
    assert serve._keep_time(runtime, player, evaluated, 106.0) == 106.0 and len(evaluations) == 2
