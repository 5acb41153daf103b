"""EventBridge, locally: S3 "Object Created" events, rule pattern matching, input transformers.

``object_created_event`` builds the event EventBridge receives from S3; ``matches`` implements the
event pattern language (exact values, prefix, suffix, wildcard, anything-but, numeric, exists,
equals-ignore-case, cidr, $or); ``target_input`` applies a target's Input / InputPath /
InputTransformer; ``EventBus.put_event`` routes an event to every enabled rule's targets;
``SchedulePlayer`` fires the rules with a ScheduleExpression (services.schedules) when they are due.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jsonpath_ng import parse as jsonpath_parse

from emulator.services.s3.store import BucketSpec, LocalS3
from emulator.services.schedules import Clock, Schedule, ScheduleExpressionError, scheduled_event

log = logging.getLogger(__name__)

_MISSING = object()
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


@dataclass
class RuleTargetSpec:
    id: str
    arn: str
    role_arn: str | None = None
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict | None = None
    retry_policy: dict | None = None
    dead_letter_arn: str | None = None


@dataclass
class RuleSpec:
    stack: str
    logical_id: str
    name: str
    arn: str
    event_pattern: dict | None
    state: str = "ENABLED"
    event_bus_name: str = "default"
    schedule_expression: str | None = None
    targets: list[RuleTargetSpec] = field(default_factory=list)

    @classmethod
    def from_json(cls, raw: dict) -> RuleSpec:
        return cls(**{**raw, "targets": [RuleTargetSpec(**t) for t in raw.get("targets", [])]})


class EventsError(Exception):
    """A rule or target the local EventBridge cannot apply."""


class InputTransformerError(EventsError):
    def __init__(self, rule: str, target: str, why: str):
        super().__init__(f"rule {rule} target {target}: {why}; fix the target's InputTransformer in the stack")


# -- events ---------------------------------------------------------------------------------
def object_created_event(bucket: str, key: str, size: int, etag: str, *, region: str, account: str,
                         reason: str = "PutObject", when: datetime | None = None) -> dict:
    """The event EventBridge receives when S3 (with EventBridge notifications on) stores an object."""
    when = when or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag.strip('"'), "sequencer": f"{time.time_ns():018X}"},
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


# -- pattern matching -----------------------------------------------------------------------
def matches(pattern: dict | None, event: Any) -> bool:
    """True when ``event`` matches the EventBridge ``pattern`` (None matches nothing)."""
    if not isinstance(pattern, dict):
        return False
    return _match_object(pattern, event)


def _match_object(pattern: dict, value: Any) -> bool:
    for key, expected in pattern.items():
        if key == "$or":
            if not any(_match_object(alternative, value) for alternative in expected):
                return False
            continue
        field = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if isinstance(expected, dict):
            if not isinstance(field, dict) or not _match_object(expected, field):
                return False
        elif isinstance(expected, list):
            if not _match_leaf(expected, field):
                return False
        else:
            raise EventsError(f"event pattern field {key!r} must be an object or an array, got {expected!r}")
    return True


def _match_leaf(matchers: list, field: Any) -> bool:
    values = field if isinstance(field, list) else [field]
    for matcher in matchers:
        if isinstance(matcher, dict) and "exists" in matcher:
            exists = field is not _MISSING and not isinstance(field, dict)
            if exists == bool(matcher["exists"]):
                return True
            continue
        if field is _MISSING:
            continue
        if any(_match_value(matcher, v) for v in values):
            return True
    return False


def _match_value(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        if isinstance(matcher, bool) or isinstance(value, bool):
            return type(matcher) is type(value) and matcher == value
        if isinstance(matcher, (int, float)) and isinstance(value, (int, float)):
            return float(matcher) == float(value)
        return matcher == value
    (kind, arg), = matcher.items()
    if kind == "prefix":
        if isinstance(arg, dict):  # {"prefix": {"equals-ignore-case": "raw/"}}
            return isinstance(value, str) and value.lower().startswith(str(arg["equals-ignore-case"]).lower())
        return isinstance(value, str) and value.startswith(arg)
    if kind == "suffix":
        if isinstance(arg, dict):
            return isinstance(value, str) and value.lower().endswith(str(arg["equals-ignore-case"]).lower())
        return isinstance(value, str) and value.endswith(arg)
    if kind == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(arg).lower()
    if kind == "wildcard":
        return isinstance(value, str) and _wildcard(arg).fullmatch(value) is not None
    if kind == "anything-but":
        return _anything_but(arg, value)
    if kind == "numeric":
        return _numeric(arg, value)
    if kind == "cidr":
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
        except (TypeError, ValueError):
            return False
    raise EventsError(f"event pattern matcher {kind!r} is not supported by the local EventBridge")


def _wildcard(pattern: str) -> re.Pattern:
    # '*' matches any run of characters; '\\*' is a literal star.
    parts = re.split(r"(\\\*|\*)", pattern)
    regex = "".join(".*" if p == "*" else re.escape("*") if p == "\\*" else re.escape(p) for p in parts)
    return re.compile(regex, re.DOTALL)


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict):
        (kind, inner), = arg.items()
        inner_values = inner if isinstance(inner, list) else [inner]
        return not any(_match_value({kind: v}, value) for v in inner_values)
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_match_value(e, value) for e in excluded)


def _numeric(arg: list, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    checks = {"<": float.__lt__, "<=": float.__le__, "=": float.__eq__, ">": float.__gt__, ">=": float.__ge__}
    for i in range(0, len(arg), 2):
        op, bound = arg[i], arg[i + 1]
        if op not in checks:
            raise EventsError(f"numeric operator {op!r} is not one of {sorted(checks)}")
        if not checks[op](float(value), float(bound)):
            return False
    return True


# -- target input ---------------------------------------------------------------------------
def _select(path: str, event: Any) -> Any:
    found = jsonpath_parse(path).find(event)
    if not found:
        return _MISSING
    return found[0].value


def target_input(rule: RuleSpec, target: RuleTargetSpec, event: dict) -> str:
    """The text the target receives: Input, the InputPath selection, the transformed template, or
    the whole event."""
    if target.input is not None:
        return target.input
    if target.input_path:
        selected = _select(target.input_path, event)
        return json.dumps(None if selected is _MISSING else selected)
    if target.input_transformer:
        return apply_input_transformer(target.input_transformer, event, rule, target)
    return json.dumps(event)


def apply_input_transformer(transformer: dict, event: dict, rule: RuleSpec | None = None,
                            target: RuleTargetSpec | None = None) -> str:
    """InputPathsMap + InputTemplate: inside a JSON string a placeholder becomes the raw text of its
    value; outside one, the value's JSON (strings quoted); a plain-text template gets raw text."""
    rule_name = rule.name if rule else "rule"
    target_id = target.id if target else "target"
    values: dict[str, Any] = {}
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        if name.startswith("aws.events."):
            raise InputTransformerError(rule_name, target_id, f"{name!r} is a reserved variable name")
        values[name] = _select(path, event)
    values["aws.events.event"] = event
    values["aws.events.event.json"] = event
    if rule is not None:
        values["aws.events.rule-arn"] = rule.arn
        values["aws.events.rule-name"] = rule.name
    values["aws.events.event.ingestion-time"] = event.get("time", "")
    template = transformer.get("InputTemplate")
    if template is None:
        raise InputTransformerError(rule_name, target_id, "InputTemplate is missing")
    json_template = template.lstrip()[:1] in ("{", "[", '"')
    out: list[str] = []
    in_string = escaped = False
    i = 0
    while i < len(template):
        char = template[i]
        match = _PLACEHOLDER.match(template, i) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            out.append(_render(value, json_template, in_string))
            i = match.end()
            continue
        if json_template:
            if escaped:
                escaped = False
            elif char == "\\" and in_string:
                escaped = True
            elif char == '"':
                in_string = not in_string
        out.append(char)
        i += 1
    text = "".join(out)
    if json_template:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputTransformerError(rule_name, target_id, f"the transformed input is not valid JSON ({exc}): "
                                                              f"{text[:200]}") from exc
    return text


def _render(value: Any, json_template: bool, in_string: bool) -> str:
    if value is _MISSING:
        return "" if (in_string or not json_template) else "null"
    if not json_template:
        return value if isinstance(value, str) else json.dumps(value)
    if in_string:
        raw = value if isinstance(value, str) else json.dumps(value)
        return json.dumps(raw)[1:-1]
    return json.dumps(value)


# -- routing --------------------------------------------------------------------------------
@dataclass
class Delivery:
    rule: RuleSpec
    target: RuleTargetSpec
    input: str  # the target's input text
    result: Any = None  # what the target handler returned (e.g. an execution ARN)


StartExecution = Callable[[str, str, RuleSpec], Any]  # (state machine ARN, input text, rule) -> any


class EventBus:
    """The default event bus: ``rules`` from the deployment; ``start_execution`` receives each state
    machine target (the runtime injects it: starting an execution is above this layer)."""

    def __init__(self, rules: list[RuleSpec], buckets: list[BucketSpec], *, region: str, account: str,
                 dead_letters_dir: Path | None = None, start_execution: StartExecution | None = None,
                 deliver: Callable[[RuleTargetSpec, str], Any] | None = None):
        self.rules = rules
        self.buckets = {bucket.name: bucket for bucket in buckets}
        self.region, self.account = region, account
        self.dead_letter_dir = dead_letters_dir
        self.start_execution = start_execution
        self.deliver = deliver  # any other target type (Lambda, SNS...), when the caller supports it

    def _dead_letter(self, rule: RuleSpec, target: RuleTargetSpec, event: dict, why: str) -> None:
        """An undeliverable event goes to the target's dead-letter queue (a JSON-lines file), with the
        error attributes EventBridge sets on DLQ messages."""
        queue = target.dead_letter_arn.rsplit(":", 1)[-1]
        path = self.dead_letter_dir / f"{queue}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"Body": json.dumps(event), "MessageAttributes": {
            "RULE_ARN": rule.arn, "TARGET_ARN": target.arn, "ERROR_CODE": "InvalidParameter", "ERROR_MESSAGE": why}}
        with path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        log.warning("rule %s: event not delivered to %s (%s); sent to dead-letter queue %s",
                    rule.name, target.arn.rsplit(":", 1)[-1], why, queue)

    def rules_for(self, event: dict, bus: str = "default") -> list[RuleSpec]:
        return [
            rule for rule in self.rules
            if rule.state == "ENABLED" and rule.event_bus_name == bus and matches(rule.event_pattern, event)
        ]

    def put_event(self, event: dict, bus: str = "default") -> list[Delivery]:
        deliveries = []
        for rule in self.rules_for(event, bus):
            deliveries += self._deliver(rule, event)
        return deliveries

    def fire(self, rule: RuleSpec, when: datetime) -> list[Delivery]:
        """A scheduled rule's firing: its "Scheduled Event" to each of its targets."""
        log.info("schedule %s (%s) fired", rule.name, rule.schedule_expression)
        return self._deliver(rule, scheduled_event(rule.arn, when, region=self.region, account=self.account))

    def _deliver(self, rule: RuleSpec, event: dict) -> list[Delivery]:
        deliveries = []
        for target in rule.targets:
            text = target_input(rule, target, event)
            delivery = Delivery(rule, target, text)
            log.info("rule %s matched %s/%s -> %s", rule.name, event.get("source"),
                     event.get("detail-type"), target.arn.rsplit(":", 1)[-1])
            if ":states:" in target.arn and ":stateMachine:" in target.arn:
                if self.start_execution is None:
                    raise EventsError(f"rule {rule.name} targets {target.arn} but no executor is attached")
                try:
                    delivery.result = self.start_execution(target.arn, text, rule)
                except EventsError as exc:
                    if not target.dead_letter_arn or self.dead_letter_dir is None:
                        raise
                    self._dead_letter(rule, target, event, str(exc))
                    continue
            elif self.deliver is not None:
                delivery.result = self.deliver(target, text)
            else:
                log.warning("rule %s: target %s is not emulated; event not delivered", rule.name, target.arn)
                continue
            deliveries.append(delivery)
        return deliveries

    def object_created(self, s3: LocalS3, uri: str) -> list[Delivery]:
        """Emit the S3 Object Created event for an object already in local S3 (if its bucket sends
        events to EventBridge, as S3 does only when EventBridge notifications are on)."""
        bucket, key = uri[len("s3://"):].split("/", 1)
        spec = self.buckets.get(bucket)
        if spec is None:  # a bucket outside the deployment sends no events
            return []
        if not spec.eventbridge_enabled:
            log.warning("bucket %s does not send events to EventBridge (EventBridgeEnabled is off); "
                        "no rule runs for %s", bucket, uri)
            return []
        head = s3.head(uri)
        event = object_created_event(bucket, key, head["ContentLength"], head["ETag"],
                                     region=self.region, account=self.account)
        return self.put_event(event)

    def upload_trigger(self, stack: str | None = None) -> tuple[str, str]:
        """(bucket, key prefix) where an upload starts a state machine: read from the first enabled
        rule (of ``stack``, when given) whose pattern names a bucket and targets a state machine."""
        triggers = self.upload_triggers(stack)
        if triggers:
            return triggers[0]
        where = f"stack {stack}" if stack else "this deployment"
        raise EventsError(f"no enabled EventBridge rule starts a state machine on an S3 upload in {where}; "
                          "upload and start the execution yourself (`run --input`)")

    def upload_triggers(self, stack: str | None = None, target: str | None = None) -> list[tuple[str, str]]:
        """(bucket, key prefix) of every enabled rule (of ``stack``; starting the state machine ``target``,
        an ARN) that starts a state machine on an upload, in the deployment's order (the training upload
        first, then e.g. inference/)."""
        found: list[tuple[str, str]] = []
        for rule in self.rules:
            if stack and rule.stack != stack or target and not any(t.arn == target for t in rule.targets):
                continue
            pattern = rule.event_pattern or {}
            detail = pattern.get("detail") or {}
            names = (detail.get("bucket") or {}).get("name") or []
            if rule.state != "ENABLED" or not names or not any(":stateMachine:" in t.arn for t in rule.targets):
                continue
            keys = (detail.get("object") or {}).get("key") or []
            prefix = ""
            for matcher in keys:
                if isinstance(matcher, dict) and isinstance(matcher.get("prefix"), str):
                    prefix = matcher["prefix"]
                elif isinstance(matcher, dict) and isinstance(matcher.get("wildcard"), str):
                    prefix = matcher["wildcard"].split("*", 1)[0]
            if isinstance(names[0], str) and (names[0], prefix) not in found:
                found.append((names[0], prefix))
        return found


class SchedulePlayer:
    """Fires the bus's enabled scheduled rules when they are due; ``tick`` is called by whoever keeps
    time (`serve`'s loop). A rule fires at most once per tick: firings missed while nothing ticked are
    not replayed (EventBridge does not catch up on a schedule either). The event's time is the wall
    clock's, so a target reading it (a monitoring window's end) sees real times."""

    def __init__(self, bus: EventBus, *, time_scale: float = 1.0, now: Callable[[], datetime] | None = None):
        self.bus = bus
        self.now = now or (lambda: datetime.now(UTC))
        self.clock = Clock(self.now(), time_scale)
        self.schedules: dict[str, tuple[RuleSpec, Schedule]] = {}
        self.due: dict[str, datetime | None] = {}
        start = self.clock.virtual(self.clock.origin)
        for rule in bus.rules:
            if rule.state != "ENABLED" or not rule.schedule_expression:
                continue
            try:
                schedule = Schedule.parse(rule.schedule_expression)
            except ScheduleExpressionError as error:
                log.warning("rule %s does not fire locally: %s", rule.name, error)
                continue
            self.schedules[rule.arn] = (rule, schedule)
            self.due[rule.arn] = schedule.next_after(start)

    def next_firings(self) -> dict[str, datetime | None]:
        """Rule name -> when it fires next on the wall clock (None: never)."""
        return {rule.name: (self.clock.wall(self.due[arn]) if self.due[arn] else None)
                for arn, (rule, _) in self.schedules.items()}

    def tick(self) -> list[Delivery]:
        wall = self.now()
        virtual = self.clock.virtual(wall)
        deliveries = []
        for arn, (rule, schedule) in self.schedules.items():
            due = self.due[arn]
            if due is None or due > virtual:
                continue
            self.due[arn] = schedule.next_after(virtual)
            try:
                deliveries += self.bus.fire(rule, wall)
            except EventsError as error:
                log.error("schedule %s: %s", rule.name, error)
        return deliveries
