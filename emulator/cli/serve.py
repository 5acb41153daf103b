"""`python -m emulator serve`: the SageMaker runtime API and, once something is deployed, the S3,
Step Functions, SageMaker, CloudWatch and CloudWatch Logs APIs beside it, and the web console that reads
them, on localhost until Ctrl-C or SIGTERM. Executions left waiting on a task token by an earlier `serve`
(killed or stopped) are resumed at start. While it runs, the template's scheduled EventBridge rules fire
(their periods scaled by --time-scale) and the CloudWatch alarms are evaluated every few seconds, their
state changes recorded and notified."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path

from emulator.aws.arns import ACCOUNT, DEFAULT_REGION
from emulator.cli import endpoints
from emulator.console.server import ConsoleServer
from emulator.runtime import Runtime
from emulator.services.eventbridge import EventsError, SchedulePlayer
from emulator.services.sagemaker.invoke_server import RuntimeServer, advertise, live_serve_url, warm, withdraw
from emulator.storage.layout import Layout

log = logging.getLogger("emulator.serve")
ALARM_EVALUATION_SECONDS = 5.0  # CloudWatch evaluates each minute; locally, often enough for a scaled period


def parse_serve_args(argv: list[str], default_state_dir: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator serve",
                                     description="Serve the local SageMaker runtime and Step Functions APIs on localhost.")
    parser.add_argument("--state-dir", type=Path, default=default_state_dir, help="the emulator's state folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="the SageMaker runtime port (0 picks a free port)")
    parser.add_argument("--stepfunctions-port", type=int, default=0)
    parser.add_argument("--sagemaker-port", type=int, default=0, help="the SageMaker control-plane API port")
    parser.add_argument("--s3-port", type=int, default=0)
    parser.add_argument("--cloudwatch-port", type=int, default=0, help="the CloudWatch metrics API port")
    parser.add_argument("--logs-port", type=int, default=0, help="the CloudWatch Logs API port (the jobs' logs)")
    parser.add_argument("--console-port", type=int, default=0, help="the web console's port (always on 127.0.0.1)")
    parser.add_argument("--time-scale", type=float, default=0.01)
    return parser.parse_args(argv)


def serve(argv: list[str], project: Path, default_state_dir: Path) -> int:
    args = parse_serve_args(argv, default_state_dir)
    state_dir = args.state_dir.resolve()
    if not state_dir.is_dir():
        log.error("no emulator state at %s: run `python -m emulator run` first, or pass the state folder it used "
                  "with `serve --state-dir DIR`", state_dir)
        return 2
    layout = Layout(state_dir)
    layout.check()
    existing = live_serve_url(layout)
    if existing:
        log.error("a serve process already serves %s at %s; stop it first or use another --state-dir", state_dir, existing)
        return 1
    runtime = (Runtime.open(state_dir, project, time_scale=args.time_scale, uploads_trigger=True, s3_port=args.s3_port,
                            stepfunctions_port=args.stepfunctions_port, sagemaker_port=args.sagemaker_port,
                            cloudwatch_port=args.cloudwatch_port, logs_port=args.logs_port, host=args.host)
               if layout.deployment_file.is_file() else None)
    # Serve first, then advertise, then warm: a `run` that finds the record can use the server at once.
    server = RuntimeServer(layout, args.host, args.port, runtime.account if runtime else ACCOUNT).start()
    advertise(layout, server)
    urls = {"SageMaker runtime": server.base_url}
    if runtime is None:
        log.info("nothing deployed in %s yet: serving the SageMaker runtime API only "
                 "(`python -m emulator deploy` adds S3, Step Functions and SageMaker)", state_dir)
    else:
        urls = {"S3": runtime.s3_endpoint_url, "Step Functions": runtime.stepfunctions_url,
                "SageMaker": runtime.sagemaker_url, "CloudWatch": runtime.cloudwatch_url,
                "CloudWatch Logs": runtime.logs_url, **urls}
    # the console is a client of the APIs above: it gets their URLs and nothing else
    console = ConsoleServer(urls, runtime.region if runtime else DEFAULT_REGION, args.console_port).start()
    urls["Console"] = console.url
    endpoints.advertise(layout, urls, runtime.region if runtime else DEFAULT_REGION)
    print(f"serve: the local AWS APIs of {state_dir} (Ctrl-C to stop)")
    for name, url in urls.items():
        print(f"  {name:<18} {url}")
    print("for the AWS CLI, boto3 and the SageMaker SDK, unchanged (also: `python -m emulator env`):")
    for line in endpoints.env_lines(urls, runtime.region if runtime else DEFAULT_REGION):
        print(f"  {line}")
    for stack in runtime.deployment.stacks if runtime else []:
        try:
            bucket, prefix = runtime.events.upload_trigger(stack)
        except EventsError:
            continue
        print(f"an upload to s3://{bucket}/{prefix} through the S3 API starts {stack}'s pipeline, as on AWS", flush=True)
    for arn in runtime.resume_waiting() if runtime else []:
        print(f"resumed {arn} at the task it waited on (answered meanwhile, or still waiting for "
              f"SendTaskSuccess/Failure or the model registry)", flush=True)
    if not warm(layout, server):
        log.info("no endpoint is InService yet; endpoints created later are served as they appear")
    player = SchedulePlayer(runtime.events, time_scale=args.time_scale) if runtime else None
    for name, when in (player.next_firings() if player else {}).items():
        print(f"schedule {name} fires {'next at ' + when.strftime('%H:%M:%S') if when else 'never'} "
              f"(its period scaled by --time-scale {args.time_scale:g})", flush=True)
    stop = threading.Event()
    why = ["Ctrl-C"]

    def on_sigterm(*_: object) -> None:
        why[0] = "SIGTERM"
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    evaluated = 0.0
    try:
        while not stop.wait(0.5):
            if runtime is not None:
                evaluated = _keep_time(runtime, player, evaluated, time.monotonic())
    except KeyboardInterrupt:
        pass
    finally:
        if runtime is not None:
            # each running execution ends ABORTED on disk, saying why, not RUNNING forever
            runtime.stepfunctions.stop_all(error="Emulator.Stopped",
                                           cause=f"the emulator's serve process was stopped by {why[0]}")
            runtime.close()
        console.stop()
        server.stop()
        withdraw(layout)
        endpoints.withdraw(layout)
        log.info("stopped")
    return 0


def _keep_time(runtime: Runtime, player: SchedulePlayer | None, evaluated: float, now: float) -> float:
    """Fire the schedules that are due and, every few seconds, evaluate the alarms; returns when the
    alarms were last evaluated (monotonic seconds). A failure is logged: it must not stop the servers."""
    try:
        if player is not None:
            player.tick()
        if now - evaluated >= ALARM_EVALUATION_SECONDS:
            runtime.cloudwatch.evaluate_alarms()
            return now
    except Exception:  # serve keeps serving; the log says what went wrong
        log.exception("schedules or alarms could not be played")
        return now
    return evaluated
