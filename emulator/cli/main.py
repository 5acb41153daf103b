"""`python -m emulator <command>`: asl, synth, deploy, run, watch, serve, env, validate, clean, report,
monitor, metrics, alarms.

  asl DEFINITION.json [--input INPUT.json]   run a bare definition, print one JSON result
  synth [-c key=value ...]                   npx cdk synth --quiet with the venv on PATH
  deploy                                     synth if stale, deploy cdk.out into .emulator/
  run --data FILE.csv [--target COL] [--set K=V] [--stack NAME] | --sample [--dataset D] | --input JSON
                                             synth if stale, deploy, run the training state machine
  infer FILE [--set K=V] [--stack NAME]      upload records under inference/: the inference state machine
                                             scores them through the endpoint
  watch DIR                                  files dropped in DIR go to s3://<bucket>/raw/ (those in
                                             DIR/inference/ to inference/) and play the EventBridge rules
  serve [--time-scale S] [--stepfunctions-port P] ...
                                             S3, Step Functions, SageMaker (and its runtime), CloudWatch
                                             and the web console on localhost
  env                                        the AWS_ENDPOINT_URL_* lines for the running serve
  console [--print]                          open the running serve's web console (or print its URL)
  validate DEFINITION.json                   AWS's definition diagnostics; exit 1 on FAIL
  clean [--keep N] [--older-than DAYS]       prune old executions, their job folders and run data
  approve|reject [EXECUTION] [--reason R]    answer the approval an execution waits on
  report [--stack NAME] [--run NAME]         the endpoint's capture report into s3://<bucket>/reports/capture/
  monitor [--window-start T] [--window-end T] run the monitoring state machine now, wait, print the report
  metrics [--namespace NS] | alarms [--history]
                                             the local CloudWatch metrics; the alarms, evaluated now
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from emulator.app.datasets import DATASETS
from emulator.cli import approvals, clean, monitor, open_console, report
from emulator.cli.commands import (
    cmd_asl,
    cmd_deploy,
    cmd_env,
    cmd_infer,
    cmd_redrive,
    cmd_run,
    cmd_synth,
    cmd_validate,
    cmd_watch,
)
from emulator.cli.errors import CliError
from emulator.cli.serve import serve
from emulator.cli.signals import Stopped
from emulator.cloud.assembly import AssemblyError
from emulator.cloud.deployment import DeploymentNotFound
from emulator.services.eventbridge import EventsError
from emulator.services.stepfunctions.exceptions import StepFunctionsError
from emulator.storage.layout import OldStateFolder


# -- logging --------------------------------------------------------------------------------
class _ShortFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        name = record.name.removeprefix("emulator.").removeprefix("services.")
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"  [{name}] {level}{record.getMessage()}"


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted: a worker thread logging after a
    caller replaced or closed the stream it started with (tests capture it) still finds one."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(verbose: bool = False) -> None:
    """INFO lines from loggers under "emulator", one concise line each, on stderr."""
    handler = _CurrentStderr()
    handler.setFormatter(_ShortFormatter())
    logger = logging.getLogger("emulator")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


# -- synth ----------------------------------------------------------------------------------
# -- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the CDK project (default: .)")
    parser.add_argument("--state-dir", type=Path, default=None, help="local state (default: <project>/.emulator)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    asl = sub.add_parser("asl", help="run a bare state machine definition")
    asl.add_argument("definition")
    asl.add_argument("--input", help="a JSON file with the execution input (default {})")
    asl.add_argument("--name", default="local", help="execution name")
    asl.add_argument("--state-machine-name", default="local")
    asl.add_argument("--history", action="store_true", help="include the history event types")
    asl.add_argument("--time-scale", type=float, default=0.0, help="multiplies Wait/Retry intervals (0: no sleep)")
    asl.set_defaults(func=cmd_asl)

    def assembly_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--context", action="append", metavar="KEY=VALUE", help="CDK context for synth")
        p.add_argument("--assembly", help="use this cloud assembly folder as is (no synth)")

    syn = sub.add_parser("synth", help="npx cdk synth --quiet")
    syn.add_argument("-c", "--context", action="append", metavar="KEY=VALUE")
    syn.set_defaults(func=cmd_synth)

    dep = sub.add_parser("deploy", help="deploy cdk.out locally (synth when stale)")
    assembly_options(dep)
    dep.set_defaults(func=cmd_deploy)

    run = sub.add_parser("run", help="synth if stale, deploy, run the training state machine")
    assembly_options(run)
    run.add_argument("--input", help="execution input as JSON text")
    run.add_argument("--input-file", help="execution input from a JSON file")
    run.add_argument("--data", metavar="FILE.csv", help="your own table: synth with its target, upload it under "
                                                         "raw/ and let the S3 trigger start the pipeline")
    run.add_argument("--target", metavar="COLUMN", help="the column to predict (default: a column named target, "
                                                        "label, y or class, else the last column)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="a pipeline setting for this use case (cdk.json's pipeline.<KEY>), e.g. --set quality_metric=auc")
    run.add_argument("--stack", metavar="NAME", help="a use case of its own: its stack, cloud assembly (cdk.out.NAME), "
                                                      "bucket, endpoint and model registry group")
    run.add_argument("--sample", action="store_true", help="upload data/<dataset>.csv under raw/ and start "
                                                           "through the EventBridge rule")
    run.add_argument("--dataset", choices=sorted(DATASETS), default="abalone")
    run.add_argument("--state-machine", help="name or ARN (default: the one the S3 trigger starts)")
    run.add_argument("--name", help="execution name (default: a UUID)")
    run.add_argument("--time-scale", type=float, default=0.01,
                     help="multiplies Wait/Retry intervals and simulated service delays (default 0.01)")
    run.set_defaults(func=cmd_run)

    inf = sub.add_parser("infer", help="upload a file of records under inference/ and run the inference state machine")
    inf.add_argument("file", metavar="FILE", help="a .csv (header optional) or .jsonl file of raw records")
    inf.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="an inference setting for this execution, e.g. --set max_low_confidence_share=0.05")
    inf.add_argument("--stack", metavar="NAME", help="the use case's stack (default: the first deployed)")
    inf.add_argument("--time-scale", type=float, default=0.01)
    inf.set_defaults(func=cmd_infer)

    wat = sub.add_parser("watch", help="a drop folder that plays the S3 -> EventBridge trigger")
    assembly_options(wat)
    wat.add_argument("dir")
    wat.add_argument("--time-scale", type=float, default=0.01)
    wat.set_defaults(func=cmd_watch)

    val = sub.add_parser("validate", help="check a definition as ValidateStateMachineDefinition does")
    val.add_argument("definition")
    val.add_argument("--type", choices=("STANDARD", "EXPRESS"), default="STANDARD")
    val.add_argument("--severity", choices=("ERROR", "WARNING"), default="ERROR")
    val.set_defaults(func=cmd_validate)

    red = sub.add_parser("redrive", help="continue a failed execution from the state that failed (RedriveExecution)")
    red.add_argument("execution", metavar="EXECUTION_ARN_OR_NAME")
    red.add_argument("--state-machine", help="the machine (name or ARN) when several have an execution of that name")
    red.add_argument("--time-scale", type=float, default=0.01, help="multiplies Wait/Retry intervals (default 0.01)")
    red.set_defaults(func=cmd_redrive)

    clean.add_parser(sub)
    report.add_parser(sub)

    env = sub.add_parser("env", help="the AWS_ENDPOINT_URL_* lines of the running `serve`")
    env.set_defaults(func=cmd_env)

    approvals.add_parsers(sub)
    open_console.add_parser(sub)
    monitor.add_parsers(sub)

    srv = sub.add_parser("serve", help="the S3, Step Functions, SageMaker and SageMaker runtime APIs on localhost")
    srv.add_argument("serve_args", nargs=argparse.REMAINDER)
    srv.set_defaults(func=lambda args: serve(args.serve_args, args.project, args.state_dir))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "serve":  # everything after `serve` is serve's own options
        args.serve_args = extra + args.serve_args
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.project = Path(args.project).resolve()
    args.state_dir = Path(args.state_dir).resolve() if args.state_dir else args.project / ".emulator"
    configure_logging(args.verbose)
    try:
        return args.func(args)
    except Stopped as stopped:
        print(f"stopped: {stopped}; the running execution is recorded ABORTED and its jobs were stopped",
              file=sys.stderr)
        return stopped.exit_status
    except (CliError, AssemblyError, EventsError, OldStateFolder, StepFunctionsError, DeploymentNotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
