"""`python -m emulator monitor | metrics | alarms`: run the monitoring state machine now and wait for
it (and for the retraining it starts), print the local CloudWatch metrics, print (and evaluate) the
template's alarms."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import uuid
from typing import Any

from emulator.cli.errors import CliError
from emulator.cli.progress import Progress, summarize
from emulator.cli.settings import parse_settings
from emulator.cli.signals import stop_on_signals
from emulator.cloud.deployment import Deployment
from emulator.runtime import Runtime
from emulator.services.cloudwatch import CloudWatchBackend, alarms_from_resources, dimensions_key
from emulator.services.stepfunctions.machines import StateMachineSpec
from emulator.storage.layout import Layout

RETRAINING_POLL_SECONDS = 2.0


def monitoring_machine(runtime: Runtime, name: str | None) -> StateMachineSpec:
    """``name`` (a name or ARN), else the machine a scheduled rule starts (the monitoring loop)."""
    if name:
        return runtime.machines.get(name)
    scheduled = {target.arn for rule in runtime.deployment.rules if rule.schedule_expression
                 for target in rule.targets if ":stateMachine:" in target.arn}
    if len(scheduled) == 1:
        return runtime.machines.get(scheduled.pop())
    names = ", ".join(m.name for m in runtime.deployment.state_machines) or "none"
    raise CliError(f"{'several' if scheduled else 'no'} state machines are started by a schedule in this deployment "
                   f"(machines: {names}): choose the monitoring one with --state-machine")


def monitoring_input(args: argparse.Namespace) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key in ("window_start", "window_end"):
        if getattr(args, key):
            value[key] = getattr(args, key)
    if args.window_minutes is not None:
        value["window_minutes"] = args.window_minutes
    return {**value, **parse_settings(args.set, "max_drifted_feature_share=0.3")}


def cmd_monitor(args: argparse.Namespace) -> int:
    if not Layout.at(args.state_dir).deployment_file.is_file():
        raise CliError(f"nothing is deployed in {args.state_dir}: run the pipeline first (`python -m emulator run`)")
    started = time.monotonic()
    with stop_on_signals(), Runtime.open(args.state_dir, args.project, time_scale=args.time_scale) as runtime:
        machine = monitoring_machine(runtime, args.state_machine)
        name = args.name or f"monitor-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
        progress = Progress()
        print(f"execution {name} of {machine.name}")
        result = runtime.launch(machine, monitoring_input(args), name, on_event=progress)
        status = summarize(runtime, machine, name, result, progress, time.monotonic() - started)
        if result.status != "SUCCEEDED":
            return status
        print_outcome(runtime, result.output or {})
        retraining = (result.output or {}).get("retraining_execution")
        if retraining:
            status = max(status, wait_for(runtime, retraining))
        return status


def print_outcome(runtime: Runtime, output: dict[str, Any]) -> None:
    state = output.get("status", "?")
    window = output.get("window") or {}
    print(f"monitoring: {state}  window {window.get('text', '?')}")
    if state == "NO_TRAFFIC":
        print(f"  {output.get('message')}")
        return
    share = output.get("drifted_feature_share")
    print(f"  drifted features: {', '.join(output.get('drifted_features') or []) or 'none'} "
          f"(share {share:.3g}, max PSI {output.get('max_psi', 0):.3g})" if isinstance(share, (int, float)) else "")
    quality = output.get("live_quality")
    if quality:
        print(f"  live {quality.get('metric')}: {quality.get('value')} on {quality.get('records')} labelled records "
              f"(champion's test {quality.get('champion_value')}){'  DEGRADED' if output.get('quality_degraded') else ''}")
    for key in ("report", "violations"):
        if output.get(key):
            print(f"  {key}: {output[key]}\n    local: {runtime.s3.path(output[key])}")
    if output.get("retraining_execution"):
        print(f"  retraining: {output['retraining_execution']} on {output['retraining']['input_s3_uri']} "
              f"({output['retraining']['labelled_records']} newly labelled records)")


def wait_for(runtime: Runtime, execution_arn: str) -> int:
    """Wait for an execution this process started (it runs on one of its threads) and say how it ended."""
    print(f"waiting for the retraining {execution_arn} (Ctrl-C stops it)", flush=True)
    while True:
        described = runtime.stepfunctions.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(RETRAINING_POLL_SECONDS)
    print(f"retraining: {described['status']}")
    if described["status"] != "SUCCEEDED":
        print(f"  error: {described.get('error')}\n  cause: {described.get('cause')}")
        return 1
    output = json.loads(described.get("output") or "{}")
    gate = output.get("gate") or {}
    print(f"  deployed: {output.get('model_name')} on {output.get('endpoint', {}).get('EndpointName', '?')}; "
          f"{gate.get('reason', '')}")
    return 0


def _backend(args: argparse.Namespace) -> CloudWatchBackend:
    layout = Layout.at(args.state_dir)
    if not layout.deployment_file.is_file():
        raise CliError(f"nothing is deployed in {args.state_dir}: run the pipeline first (`python -m emulator run`)")
    deployment = Deployment.load(layout.root)
    return CloudWatchBackend(layout.cloudwatch_dir, alarms_from_resources(deployment.resources),
                             time_scale=args.time_scale, region=deployment.region, account=deployment.account)


def cmd_metrics(args: argparse.Namespace) -> int:
    backend = _backend(args)
    end = time.time()
    start = end - args.minutes * 60
    rows = backend.list_metrics(Namespace=args.namespace)["Metrics"]
    if not rows:
        print(f"no metrics{' in ' + args.namespace if args.namespace else ''} yet")
        return 0
    table = []
    for row in rows:
        dims = {d["Name"]: d["Value"] for d in row["Dimensions"]}
        count = backend.metrics.statistic(row["Namespace"], row["MetricName"], dims, start, end, "SampleCount")
        if not count:
            continue
        total = backend.metrics.statistic(row["Namespace"], row["MetricName"], dims, start, end, "Sum")
        top = backend.metrics.statistic(row["Namespace"], row["MetricName"], dims, start, end, "Maximum")
        last = backend.metrics.latest(row["Namespace"], row["MetricName"], dimensions_key(dims))
        table.append((row["Namespace"], row["MetricName"], ",".join(f"{k}={v}" for k, v in dims.items()), count, total,
                      top, last[1] if last and last[1] is not None else float("nan")))
    width = max([len("dimensions")] + [len(r[2]) for r in table])
    print(f"{'namespace':<26} {'metric':<22} {'dimensions':<{width}} {'n':>6} {'sum':>10} {'max':>10} {'last':>10}")
    for namespace, name, shown, count, total, top, last_value in table:
        print(f"{namespace:<26} {name:<22} {shown:<{width}} {count:>6g} {total:>10.4g} {top:>10.4g} {last_value:>10.4g}")
    print(f"(datapoints of the last {args.minutes:g} minutes)")
    return 0


def cmd_alarms(args: argparse.Namespace) -> int:
    backend = _backend(args)
    if not backend.alarms:
        print("no single-metric alarm is deployed")
        return 0
    if not args.no_evaluate:
        backend.evaluate_alarms()  # what CloudWatch would show now; changes are recorded (without SNS here)
    for alarm in backend.describe_alarms()["MetricAlarms"]:
        print(f"{alarm['StateValue']:<18} {alarm['AlarmName']}  ({alarm['Namespace']} {alarm['MetricName']})")
        print(f"{'':<18} {alarm['StateReason']}")
        if args.history:
            for item in backend.describe_alarm_history(AlarmName=alarm["AlarmName"])["AlarmHistoryItems"]:
                print(f"{'':<20} {item['Timestamp']:%Y-%m-%d %H:%M:%S}  {item['HistorySummary']}: {item['Reason']}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    mon = sub.add_parser("monitor", help="run the monitoring state machine now and wait for it (and its retraining)")
    mon.add_argument("--window-start", help="ISO 8601 start of the traffic analysed (default: --window-minutes before the end)")
    mon.add_argument("--window-end", help="ISO 8601 end of the traffic analysed (default: now)")
    mon.add_argument("--window-minutes", type=float, help="the window's length (default: monitoring_window_minutes)")
    mon.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="a monitoring setting for this run: max_drifted_feature_share, retrain")
    mon.add_argument("--state-machine", help="name or ARN (default: the one the schedule starts)")
    mon.add_argument("--name", help="execution name (default: monitor-<time>-<random>)")
    mon.add_argument("--time-scale", type=float, default=0.01, help="multiplies Wait/Retry intervals (default 0.01)")
    mon.set_defaults(func=cmd_monitor)

    met = sub.add_parser("metrics", help="the local CloudWatch metrics: datapoints, sum, max and last value")
    met.add_argument("--namespace", help="only this namespace (e.g. AWS/SageMaker, MlPipeline/ModelMonitor)")
    met.add_argument("--minutes", type=float, default=24 * 60, help="how far back (default: a day)")
    met.add_argument("--time-scale", type=float, default=0.01)
    met.set_defaults(func=cmd_metrics)

    ala = sub.add_parser("alarms", help="the template's alarms: state and reason, evaluated now")
    ala.add_argument("--no-evaluate", action="store_true", help="show the recorded states without evaluating")
    ala.add_argument("--history", action="store_true", help="every recorded state change")
    ala.add_argument("--time-scale", type=float, default=0.01, help="the scale alarm periods run at (default 0.01)")
    ala.set_defaults(func=cmd_alarms)
