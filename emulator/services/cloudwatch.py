"""CloudWatch, locally: a metric store every process of a state folder shares, and metric alarms
evaluated over it the way CloudWatch evaluates them.

Datapoints live in one SQLite file (``cloudwatch/metrics.sqlite``, WAL mode: the `serve` process's
invoke server writes endpoint metrics while a `run` process's endpoint update reads them). A sample
is a row with its value; a statistic set (PutMetricData's StatisticValues) a row with count, sum,
minimum and maximum, so Sum/Average/SampleCount/Minimum/Maximum cover both and percentiles (p99)
cover samples.

An alarm (the template's AWS::CloudWatch::Alarm on one metric) is evaluated over its last
EvaluationPeriods periods ending now, DatapointsToAlarm of them breaching, missing periods treated
per TreatMissingData (missing, notBreaching, breaching, ignore), a Period of p seconds lasting
p x time scale on the wall clock (as Wait states do). Every state change is recorded with its
reason (DescribeAlarmHistory) and runs the alarm's SNS actions. Metric math alarms are not
evaluated (the deploy lists them as not emulated).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.services.errors import ServiceError
from emulator.storage.records import RecordStore

log = logging.getLogger(__name__)

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
MISSING_TREATMENTS = ("missing", "notBreaching", "breaching", "ignore")
HISTORY_LIMIT = 100  # state changes kept per alarm
LIST_METRICS_PAGE = 500  # ListMetrics returns up to 500 metrics a page


class CloudWatchError(ServiceError):
    code = "InvalidParameterValue"


class InvalidParameterValue(CloudWatchError):
    code = "InvalidParameterValue"


class UnknownOperation(CloudWatchError):
    code = "UnknownOperationException"


class ResourceNotFound(CloudWatchError):
    code = "ResourceNotFound"

    def __init__(self, name: str):
        super().__init__(f"No alarm named {name!r} is deployed locally")


class UnsupportedAlarm(CloudWatchError):
    """An alarm shape the local evaluator does not evaluate (metric math, anomaly detection)."""


def dimensions_key(dimensions: dict[str, str] | Iterable[dict]) -> str:
    """One text per dimension set, whatever the order ({"Name", "Value"} lists or a plain dict)."""
    if not isinstance(dimensions, dict):
        dimensions = {d["Name"]: d["Value"] for d in dimensions}
    return json.dumps(sorted((str(k), str(v)) for k, v in dimensions.items()))


# -- the metric store -----------------------------------------------------------------------------


class MetricStore:
    """Datapoints of one state folder; any thread of any process may write and read."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._connect()  # creates the file and the table once, up front

    def _connect(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # metrics, not money: a crash may lose the last ones
            connection.execute(
                "CREATE TABLE IF NOT EXISTS datapoints (namespace TEXT, name TEXT, dims TEXT, ts REAL, unit TEXT, "
                "value REAL, count REAL, sum REAL, min REAL, max REAL)")
            connection.execute("CREATE INDEX IF NOT EXISTS by_metric ON datapoints (namespace, name, dims, ts)")
            self._local.connection = connection
        return connection

    def put(self, namespace: str, name: str, dimensions: dict[str, str], value: float, *,
            timestamp: float | None = None, unit: str | None = None) -> None:
        self.put_many([(namespace, name, dimensions, value, timestamp, unit)])

    def put_many(self, rows: Iterable[tuple[str, str, dict, float, float | None, str | None]]) -> None:
        """Samples: (namespace, name, dimensions, value, epoch seconds or None for now, unit)."""
        now = time.time()
        values = [(ns, name, dimensions_key(dims), ts if ts is not None else now, unit, float(value),
                   1.0, float(value), float(value), float(value)) for ns, name, dims, value, ts, unit in rows]
        connection = self._connect()
        connection.execute("BEGIN")  # one transaction for the batch (autocommit would make one per row)
        try:
            connection.executemany("INSERT INTO datapoints VALUES (?,?,?,?,?,?,?,?,?,?)", values)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def put_statistics(self, namespace: str, name: str, dimensions: dict[str, str], stats: dict, *,
                       timestamp: float | None = None, unit: str | None = None) -> None:
        self._connect().execute(
            "INSERT INTO datapoints VALUES (?,?,?,?,?,?,?,?,?,?)",
            (namespace, name, dimensions_key(dimensions), timestamp if timestamp is not None else time.time(), unit,
             None, float(stats["SampleCount"]), float(stats["Sum"]), float(stats["Minimum"]), float(stats["Maximum"])))

    def latest(self, namespace: str, name: str, dims_key: str) -> tuple[float, float | None] | None:
        """(timestamp, value) of a metric's newest datapoint (value None for a statistic set)."""
        row = self._connect().execute(
            "SELECT ts, value FROM datapoints WHERE namespace=? AND name=? AND dims=? ORDER BY ts DESC LIMIT 1",
            (namespace, name, dims_key)).fetchone()
        return (row[0], row[1]) if row else None

    def statistic(self, namespace: str, name: str, dimensions: dict[str, str], start: float, end: float,
                  statistic: str) -> float | None:
        """One statistic over [start, end) (epoch seconds), or None when no datapoint falls there."""
        rows = self._connect().execute(
            "SELECT value, count, sum, min, max FROM datapoints WHERE namespace=? AND name=? AND dims=? AND ts>=? AND ts<?",
            (namespace, name, dimensions_key(dimensions), start, end)).fetchall()
        return _aggregate(rows, statistic)

    def series(self, namespace: str, name: str, dimensions: dict[str, str], start: float, end: float,
               period: float, statistic: str) -> list[tuple[float, float]]:
        """(period start, statistic) for each period of [start, end) holding a datapoint, periods
        aligned on multiples of ``period`` (as CloudWatch aligns them); one query for the whole range."""
        rows = self._connect().execute(
            "SELECT ts, value, count, sum, min, max FROM datapoints WHERE namespace=? AND name=? AND dims=? "
            "AND ts>=? AND ts<?", (namespace, name, dimensions_key(dimensions), start, end)).fetchall()
        buckets: dict[float, list[tuple]] = {}
        for ts, *row in rows:
            buckets.setdefault(math.floor(ts / period) * period, []).append(tuple(row))
        points = [(moment, _aggregate(bucket, statistic)) for moment, bucket in sorted(buckets.items())]
        return [(moment, value) for moment, value in points if value is not None]

    def metrics(self) -> list[tuple[str, str, dict[str, str], float]]:
        """Every metric with a datapoint: (namespace, name, dimensions, newest datapoint's epoch)."""
        rows = self._connect().execute(
            "SELECT namespace, name, dims, MAX(ts) FROM datapoints GROUP BY namespace, name, dims "
            "ORDER BY namespace, name, dims").fetchall()
        return [(namespace, name, dict(json.loads(dims)), newest) for namespace, name, dims, newest in rows]


def _aggregate(rows: list[tuple], statistic: str) -> float | None:
    """One statistic over rows of (value, count, sum, min, max); None when there are none."""
    if not rows:
        return None
    if statistic.startswith("p"):
        samples = sorted(row[0] for row in rows if row[0] is not None)
        return _percentile(samples, float(statistic[1:])) if samples else None
    count = sum(row[1] for row in rows)
    total = sum(row[2] for row in rows)
    return {"SampleCount": count, "Sum": total, "Average": total / count if count else None,
            "Minimum": min(row[3] for row in rows), "Maximum": max(row[4] for row in rows)}[statistic]


def _percentile(samples: list[float], percent: float) -> float:
    """The nearest-rank percentile (CloudWatch's pNN over raw samples)."""
    rank = max(1, math.ceil(percent / 100.0 * len(samples)))
    return samples[min(rank, len(samples)) - 1]


# -- alarms -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alarm:
    """A metric alarm as the template declares it (AWS::CloudWatch::Alarm's properties)."""

    name: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    statistic: str  # Sum, Average, ... or an extended statistic such as p99
    period: float  # seconds
    evaluation_periods: int
    threshold: float
    comparison: str
    datapoints_to_alarm: int | None = None
    treat_missing_data: str = "missing"
    description: str = ""
    alarm_actions: tuple[str, ...] = ()
    ok_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    actions_enabled: bool = True

    @classmethod
    def from_properties(cls, properties: dict, name: str | None = None) -> Alarm:
        props = properties
        alarm_name = props.get("AlarmName") or name
        if "Metrics" in props or "ThresholdMetricId" in props:
            raise UnsupportedAlarm(f"alarm {alarm_name}: metric math and anomaly detection alarms are not evaluated locally")
        comparison = props.get("ComparisonOperator", "")
        if comparison not in _COMPARE:
            raise UnsupportedAlarm(f"alarm {alarm_name}: ComparisonOperator {comparison!r} is not one of {sorted(_COMPARE)}")
        statistic = props.get("Statistic") or props.get("ExtendedStatistic") or ""
        if statistic not in _STATISTICS and not _is_percentile(statistic):
            raise UnsupportedAlarm(f"alarm {alarm_name}: statistic {statistic!r} is not evaluated locally "
                                   f"(use one of {list(_STATISTICS)} or pNN)")
        missing = props.get("TreatMissingData", "missing")
        if missing not in MISSING_TREATMENTS:
            raise InvalidParameterValue(f"alarm {alarm_name}: TreatMissingData {missing!r} is not one of {MISSING_TREATMENTS}")
        return cls(
            name=alarm_name, namespace=props["Namespace"], metric_name=props["MetricName"],
            dimensions={d["Name"]: str(d["Value"]) for d in props.get("Dimensions") or []},
            statistic=statistic, period=float(props["Period"]), evaluation_periods=int(props["EvaluationPeriods"]),
            threshold=float(props["Threshold"]), comparison=comparison,
            datapoints_to_alarm=int(props["DatapointsToAlarm"]) if props.get("DatapointsToAlarm") else None,
            treat_missing_data=missing, description=props.get("AlarmDescription", ""),
            alarm_actions=tuple(str(a) for a in props.get("AlarmActions") or []),
            ok_actions=tuple(str(a) for a in props.get("OKActions") or []),
            insufficient_data_actions=tuple(str(a) for a in props.get("InsufficientDataActions") or []),
            actions_enabled=bool(props.get("ActionsEnabled", True)),
        )

    def breaching(self, value: float) -> bool:
        return _COMPARE[self.comparison](value, self.threshold)

    def actions(self, state: str) -> tuple[str, ...]:
        if not self.actions_enabled:
            return ()
        return {ALARM: self.alarm_actions, OK: self.ok_actions, INSUFFICIENT_DATA: self.insufficient_data_actions}[state]

    def describe(self) -> dict:
        out: dict[str, Any] = {
            "AlarmName": self.name, "AlarmDescription": self.description, "Namespace": self.namespace,
            "MetricName": self.metric_name, "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
            "Period": int(self.period), "EvaluationPeriods": self.evaluation_periods, "Threshold": self.threshold,
            "ComparisonOperator": self.comparison, "TreatMissingData": self.treat_missing_data,
            "ActionsEnabled": self.actions_enabled, "AlarmActions": list(self.alarm_actions),
            "OKActions": list(self.ok_actions), "InsufficientDataActions": list(self.insufficient_data_actions),
        }
        out["ExtendedStatistic" if _is_percentile(self.statistic) else "Statistic"] = self.statistic
        if self.datapoints_to_alarm:
            out["DatapointsToAlarm"] = self.datapoints_to_alarm
        return out


def _is_percentile(statistic: str) -> bool:
    try:
        return statistic.startswith("p") and 0 < float(statistic[1:]) <= 100
    except ValueError:
        return False


@dataclass
class Evaluation:
    """One evaluation: the state it decides and why (CloudWatch's StateReason)."""

    state: str
    reason: str
    datapoints: list[float | None] = field(default_factory=list)


def evaluate(alarm: Alarm, store: MetricStore, now: float, time_scale: float, previous: str) -> Evaluation:
    """The alarm's state at ``now`` over its last EvaluationPeriods periods (newest first)."""
    period = alarm.period * time_scale if time_scale > 0 else alarm.period
    values = [store.statistic(alarm.namespace, alarm.metric_name, alarm.dimensions,
                              now - (k + 1) * period, now - k * period, alarm.statistic)
              for k in range(alarm.evaluation_periods)]
    needed = alarm.datapoints_to_alarm or alarm.evaluation_periods
    present = [v for v in values if v is not None]
    breaching = sum(1 for v in present if alarm.breaching(v))
    missing = len(values) - len(present)
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in values)
    what = f"[{shown}] over {alarm.evaluation_periods} period(s) of {alarm.period:g} s"
    treatment = alarm.treat_missing_data
    if treatment == "breaching":
        breaching += missing
    if not present and treatment in ("missing", "ignore"):
        if treatment == "ignore":
            return Evaluation(previous, f"no datapoints {what}: state kept (missing data ignored)", values)
        return Evaluation(INSUFFICIENT_DATA, f"Insufficient data: no datapoints {what}", values)
    if breaching >= needed:
        return Evaluation(ALARM, f"Threshold Crossed: {breaching} of the datapoints {what} were "
                                 f"{_wording(alarm.comparison)} the threshold ({alarm.threshold:g})", values)
    return Evaluation(OK, f"Threshold not crossed: {breaching} of the datapoints {what} were "
                          f"{_wording(alarm.comparison)} the threshold ({alarm.threshold:g}); {needed} needed", values)


def _wording(comparison: str) -> str:
    return {"GreaterThanOrEqualToThreshold": "greater than or equal to", "GreaterThanThreshold": "greater than",
            "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to"}[comparison]


# -- the service ------------------------------------------------------------------------------------

Notify = Callable[[str, str, str], object]  # (topic ARN, subject, message) -> anything


class CloudWatchBackend:
    """The metric store and the deployed alarms of one state folder. ``notify`` publishes an alarm
    action to an SNS topic (injected: the SNS backend)."""

    def __init__(self, root: Path, alarms: Iterable[Alarm] = (), *, time_scale: float = 1.0,
                 notify: Notify | None = None, clock: Callable[[], float] = time.time,
                 region: str = "us-east-1", account: str = "000000000000"):
        self.metrics = MetricStore(Path(root) / "metrics.sqlite")
        self.records = RecordStore(Path(root))
        self.alarms = {alarm.name: alarm for alarm in alarms}
        self.time_scale = time_scale
        self.notify = notify
        self.clock = clock
        self.region, self.account = region, account

    # -- PutMetricData / GetMetricStatistics ---------------------------------------------------
    def put_metric_data(self, Namespace: str, MetricData: list[dict], **_: Any) -> dict:
        if not Namespace or Namespace.startswith("AWS/"):
            raise InvalidParameterValue(f"The value {Namespace!r} for parameter Namespace is invalid: "
                                        "AWS/ namespaces are reserved for AWS services")
        for datum in MetricData:
            stamp = datum.get("Timestamp")
            epoch = stamp.timestamp() if isinstance(stamp, dt.datetime) else stamp
            dims = {d["Name"]: d["Value"] for d in datum.get("Dimensions") or []}
            if "StatisticValues" in datum:
                self.metrics.put_statistics(Namespace, datum["MetricName"], dims, datum["StatisticValues"],
                                            timestamp=epoch, unit=datum.get("Unit"))
                continue
            values = datum.get("Values") or ([datum["Value"]] if "Value" in datum else None)
            if values is None:
                raise InvalidParameterValue(f"metric {datum['MetricName']}: one of Value, Values or StatisticValues is required")
            counts = datum.get("Counts") or [1] * len(values)
            self.metrics.put_many((Namespace, datum["MetricName"], dims, value, epoch, datum.get("Unit"))
                                  for value, count in zip(values, counts, strict=False) for _ in range(int(count)))
        return {}

    def get_metric_statistics(self, Namespace: str, MetricName: str, StartTime: Any, EndTime: Any, Period: int,
                              Statistics: list[str] | None = None, ExtendedStatistics: list[str] | None = None,
                              Dimensions: list[dict] | None = None, **_: Any) -> dict:
        start, end = _epoch(StartTime), _epoch(EndTime)
        dims = {d["Name"]: d["Value"] for d in Dimensions or []}
        points = []
        moment = start
        while moment < end:
            point: dict[str, Any] = {"Timestamp": dt.datetime.fromtimestamp(moment, dt.UTC)}
            for statistic in Statistics or []:
                value = self.metrics.statistic(Namespace, MetricName, dims, moment, moment + Period, statistic)
                if value is not None:
                    point[statistic] = value
            for statistic in ExtendedStatistics or []:
                value = self.metrics.statistic(Namespace, MetricName, dims, moment, moment + Period, statistic)
                if value is not None:
                    point.setdefault("ExtendedStatistics", {})[statistic] = value
            if len(point) > 1:
                points.append(point)
            moment += Period
        return {"Label": MetricName, "Datapoints": points}

    # -- ListMetrics / GetMetricData -----------------------------------------------------------
    def list_metrics(self, Namespace: str | None = None, MetricName: str | None = None,
                     Dimensions: list[dict] | None = None, RecentlyActive: str | None = None,
                     NextToken: str | None = None, **_: Any) -> dict:
        """The metrics that have datapoints, filtered as ListMetrics filters (a dimension filter
        without a Value matches any value of that dimension)."""
        since = self.clock() - 3 * 3600 if RecentlyActive == "PT3H" else None
        found = []
        for namespace, name, dims, newest in self.metrics.metrics():
            if (Namespace and namespace != Namespace) or (MetricName and name != MetricName):
                continue
            if any(f["Name"] not in dims or ("Value" in f and dims[f["Name"]] != f["Value"]) for f in Dimensions or []):
                continue
            if since is not None and newest < since:
                continue
            found.append({"Namespace": namespace, "MetricName": name,
                          "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]})
        start = int(NextToken) if NextToken and str(NextToken).isdigit() else 0
        page = found[start:start + LIST_METRICS_PAGE]
        more = start + LIST_METRICS_PAGE < len(found)
        return {"Metrics": page, **({"NextToken": str(start + LIST_METRICS_PAGE)} if more else {})}

    def get_metric_data(self, MetricDataQueries: list[dict], StartTime: Any, EndTime: Any,
                        ScanBy: str = "TimestampDescending", MaxDatapoints: int | None = None, **_: Any) -> dict:
        """Each MetricStat query's datapoints over [StartTime, EndTime), one per period that has
        data; metric math (Expression) is not evaluated locally and is refused by name."""
        start, end = _epoch(StartTime), _epoch(EndTime)
        if end <= start:
            raise InvalidParameterValue(f"EndTime {EndTime} must be after StartTime {StartTime}")
        results = []
        for query in MetricDataQueries:
            if "MetricStat" not in query:
                raise InvalidParameterValue(f"query {query.get('Id')!r}: metric math (Expression) is not evaluated "
                                            "locally; query a metric with MetricStat")
            stat = query["MetricStat"]
            metric = stat["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions") or []}
            if stat["Stat"] not in _STATISTICS and not _is_percentile(stat["Stat"]):
                raise InvalidParameterValue(f"query {query['Id']!r}: Stat {stat['Stat']!r} is not one of "
                                            f"{list(_STATISTICS)} or pNN")
            if int(stat["Period"]) < 1:
                raise InvalidParameterValue(f"query {query['Id']!r}: Period must be at least 1 second")
            points = self.metrics.series(metric["Namespace"], metric["MetricName"], dims, start, end,
                                         int(stat["Period"]), stat["Stat"])
            if ScanBy != "TimestampAscending":
                points.reverse()
            if MaxDatapoints:
                points = points[:int(MaxDatapoints)]
            if query.get("ReturnData", True) is False:
                continue
            results.append({"Id": query["Id"], "Label": query.get("Label") or metric["MetricName"],
                            "Timestamps": [dt.datetime.fromtimestamp(moment, dt.UTC) for moment, _ in points],
                            "Values": [value for _, value in points], "StatusCode": "Complete"})
        return {"MetricDataResults": results, "Messages": []}

    OPERATIONS = ("PutMetricData", "GetMetricStatistics", "GetMetricData", "ListMetrics", "DescribeAlarms",
                  "DescribeAlarmHistory")

    def call(self, operation: str, request: dict) -> dict:
        """One API operation by its name, as the served API dispatches it."""
        if operation not in self.OPERATIONS:
            raise UnknownOperation(f"The local CloudWatch API does not serve {operation}; it serves: "
                                   f"{', '.join(sorted(self.OPERATIONS))}")
        method = "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
        try:
            return getattr(self, method)(**request)
        except (KeyError, TypeError) as error:  # a required field missing or of the wrong kind
            raise InvalidParameterValue(f"{operation}: the request is missing or mistypes {error}") from None

    # -- alarms ---------------------------------------------------------------------------------
    def alarm(self, name: str) -> Alarm:
        if name not in self.alarms:
            raise ResourceNotFound(name)
        return self.alarms[name]

    def _state(self, name: str) -> dict:
        return self.records.read("alarms", name) or {"StateValue": INSUFFICIENT_DATA, "StateReason": "Unchecked: Initial alarm creation",
                                                     "StateUpdatedTimestamp": None, "History": []}

    def evaluate_alarms(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """Evaluate alarms now (all, or those named): their states, each change recorded and its
        actions run."""
        states = {}
        for name in names if names is not None else list(self.alarms):
            alarm = self.alarm(name)
            now = self.clock()
            with self.records.lock("alarms", name):
                record = self._state(name)
                result = evaluate(alarm, self.metrics, now, self.time_scale, record["StateValue"])
                changed = result.state != record["StateValue"]
                if changed:
                    moment = dt.datetime.fromtimestamp(now, dt.UTC)
                    history = record["History"][-(HISTORY_LIMIT - 1):] + [{
                        "AlarmName": name, "Timestamp": moment, "HistoryItemType": "StateUpdate",
                        "HistorySummary": f"Alarm updated from {record['StateValue']} to {result.state}",
                        "OldState": record["StateValue"], "NewState": result.state, "Reason": result.reason,
                    }]
                    record = {"StateValue": result.state, "StateReason": result.reason,
                              "StateUpdatedTimestamp": moment, "History": history}
                    self.records.write("alarms", name, record)
            if changed:
                log.info("alarm %s: %s (%s)", name, result.state, result.reason)
                self._act(alarm, record)
            states[name] = result.state
        return states

    def alarms_watching(self, namespace: str) -> list[str]:
        """The deployed alarms on a metric of ``namespace``."""
        return sorted(name for name, alarm in self.alarms.items() if alarm.namespace == namespace)

    def alarms_in_alarm(self, names: Iterable[str]) -> list[str]:
        """Which of these alarms are in ALARM now (evaluated now; unknown names are reported, not raised:
        a rollout must not fail because an alarm it names is not deployed here)."""
        known = [n for n in names if n in self.alarms]
        for name in set(names) - set(known):
            log.warning("rollback alarm %s is not deployed locally: it is not evaluated", name)
        return [name for name, state in self.evaluate_alarms(known).items() if state == ALARM]

    def _act(self, alarm: Alarm, record: dict) -> None:
        for action in alarm.actions(record["StateValue"]):
            if ":sns:" not in action or self.notify is None:
                log.warning("alarm %s: action %s is not run locally (only SNS topics are)", alarm.name, action)
                continue
            message = {"AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": self.account,
                       "NewStateValue": record["StateValue"], "NewStateReason": record["StateReason"],
                       "StateChangeTime": record["StateUpdatedTimestamp"].isoformat(), "Region": self.region,
                       "Trigger": {k: v for k, v in alarm.describe().items() if k not in ("AlarmName", "AlarmDescription")}}
            try:
                self.notify(action, f'{record["StateValue"]}: "{alarm.name}" in {self.region}', json.dumps(message))
            except Exception:
                log.exception("alarm %s: action %s failed", alarm.name, action)

    def describe_alarms(self, AlarmNames: list[str] | None = None, StateValue: str | None = None, **_: Any) -> dict:
        rows = []
        for name in AlarmNames or sorted(self.alarms):
            if name not in self.alarms:
                continue
            record = self._state(name)
            if StateValue and record["StateValue"] != StateValue:
                continue
            rows.append({**self.alarms[name].describe(), **{k: v for k, v in record.items() if k != "History"}})
        return {"MetricAlarms": rows, "CompositeAlarms": []}

    def describe_alarm_history(self, AlarmName: str | None = None, **_: Any) -> dict:
        names = [AlarmName] if AlarmName else sorted(self.alarms)
        items = [item for name in names for item in self._state(name)["History"]]
        items.sort(key=lambda item: item["Timestamp"])  # stable: changes at one moment keep their order
        return {"AlarmHistoryItems": items[::-1]}  # newest first, as CloudWatch lists them


def alarms_from_resources(resources: Iterable[Any]) -> list[Alarm]:
    """The template's single-metric alarms (records with ``type``, ``properties`` and ``physical_id``);
    the others (metric math, anomaly detection) are left out, as the deploy lists them."""
    alarms = []
    for record in resources:
        if record.type != "AWS::CloudWatch::Alarm":
            continue
        try:
            alarms.append(Alarm.from_properties(record.properties, name=record.physical_id))
        except (UnsupportedAlarm, KeyError, TypeError, ValueError) as error:
            log.debug("alarm %s is not evaluated: %s", getattr(record, "logical_id", "?"), error)
    return alarms


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value)
