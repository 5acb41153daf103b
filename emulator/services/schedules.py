"""EventBridge schedule expressions, locally: when a ``rate(...)`` or ``cron(...)`` rule fires next,
and the "Scheduled Event" it sends.

AWS cron has six fields (minutes hours day-of-month month day-of-week year), ``?`` for "any" in one of
the two day fields, and numbers its weekdays 1-7 from Sunday; croniter (the maintained library used
here) takes five fields numbered 0-6 from Sunday, so the weekdays are shifted and the year is
checked apart. Times are UTC, as EventBridge's are. A ``time_scale`` below 1 shortens the wait
between firings on the wall clock (rate(1 hour) at 0.01 fires every 36 s), as Wait states are
shortened; a cron schedule is then played on a virtual clock running 1/time_scale times faster.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from croniter import croniter

RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
CRON = re.compile(r"cron\(\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*\)")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
YEARS_AHEAD = 200  # a cron whose year never comes fires never: give up looking after this many years


class ScheduleExpressionError(ValueError):
    """A ScheduleExpression EventBridge would refuse."""

    def __init__(self, expression: str, why: str):
        super().__init__(f"schedule expression {expression!r}: {why}. Use rate(5 minutes), rate(1 hour) or "
                         "cron(0 12 * * ? *) (EventBridge's six-field cron)")


def _shift_weekdays(field: str) -> str:
    """AWS weekday numbers (1=SUN..7=SAT) as croniter's (0=SUN..6=SAT); names stay as they are."""
    def shift(text: str) -> str:
        return re.sub(r"\d+", lambda m: str(int(m.group()) - 1), text)

    parts = []
    for part in field.split(","):
        if "#" in part:
            day, nth = part.split("#", 1)
            parts.append(f"{shift(day)}#{nth}")
        elif "/" in part:
            base, step = part.split("/", 1)
            parts.append(f"{shift(base)}/{step}")
        else:
            parts.append(shift(part))
    return ",".join(parts)


def _years(field: str, expression: str) -> set[int] | None:
    """The years a cron's sixth field allows (None: any)."""
    if field in ("*", "?"):
        return None
    years: set[int] = set()
    for part in field.split(","):
        match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?(?:/(\d+))?", part)
        if not match:
            raise ScheduleExpressionError(expression, f"year field {field!r} is not a year, range or list")
        first, last, step = int(match[1]), int(match[2] or match[1]), int(match[3] or 1)
        if match[3] and not match[2]:
            last = 2199
        years.update(range(first, last + 1, step))
    return years


@dataclass(frozen=True)
class Schedule:
    """One parsed ScheduleExpression: a fixed ``interval`` (rate) or a cron."""

    expression: str
    interval: float | None = None  # seconds, for rate()
    cron: str | None = None  # five croniter fields, for cron()
    years: frozenset[int] | None = None

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        text = (expression or "").strip()
        rate = RATE.fullmatch(text)
        if rate:
            value, unit = int(rate[1]), rate[2]
            if value < 1:
                raise ScheduleExpressionError(expression, "the rate must be a positive whole number")
            if (value == 1) != (not unit.endswith("s")):
                raise ScheduleExpressionError(expression, f"EventBridge wants 'rate(1 {unit.rstrip('s')})' for one and "
                                                          f"'rate({value} {unit.rstrip('s')}s)' for more")
            return cls(text, interval=float(value * UNIT_SECONDS[unit.rstrip("s")]))
        cron = CRON.fullmatch(text)
        if not cron:
            raise ScheduleExpressionError(expression, "it is neither rate(...) nor cron(...) with six fields")
        minutes, hours, dom, month, dow, year = cron.groups()
        if (dom == "?") == (dow == "?"):
            raise ScheduleExpressionError(expression, "exactly one of day-of-month and day-of-week must be '?'")
        fields = f"{minutes} {hours} {'*' if dom == '?' else dom} {month} {'*' if dow == '?' else _shift_weekdays(dow)}"
        if not croniter.is_valid(fields):
            raise ScheduleExpressionError(expression, "croniter cannot read its fields")
        years = _years(year, expression)
        return cls(text, cron=fields, years=frozenset(years) if years is not None else None)

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first firing strictly after ``moment`` (UTC), or None when there is none."""
        if self.interval is not None:
            return moment + dt.timedelta(seconds=self.interval)
        iterator = croniter(self.cron, moment.astimezone(dt.UTC))
        limit = moment.year + YEARS_AHEAD
        while True:
            candidate = iterator.get_next(dt.datetime)
            if candidate.year > limit or (self.years is not None and candidate.year > max(self.years)):
                return None
            if self.years is None or candidate.year in self.years:
                return candidate


def scheduled_event(rule_arn: str, when: dt.datetime, *, region: str, account: str) -> dict:
    """The event a schedule sends its targets ("Scheduled Event" from aws.events)."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": account, "time": when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": [rule_arn], "detail": {},
    }


class Clock:
    """Virtual time for schedules: starts at ``origin`` (wall clock) and runs 1/time_scale as fast."""

    def __init__(self, origin: dt.datetime, time_scale: float = 1.0):
        self.origin = origin
        self.speed = 1.0 / time_scale if time_scale > 0 else 1.0

    def virtual(self, wall: dt.datetime) -> dt.datetime:
        return self.origin + (wall - self.origin) * self.speed

    def wall(self, virtual: dt.datetime) -> dt.datetime:
        return self.origin + (virtual - self.origin) / self.speed
