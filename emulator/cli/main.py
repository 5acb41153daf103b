"""`python -m emulator <command>`: asl, synth, deploy, run, watch, serve.

  asl DEFINITION.json [--input INPUT.json]   run a bare definition, print one JSON result
  synth [-c key=value ...]                   npx cdk synth --quiet with the venv on PATH
  deploy                                     synth if stale, deploy cdk.out into .emulator/
  run [--input JSON | --input-file F | --sample [--dataset D]]
                                             synth if stale, deploy, run the training state machine
  watch DIR                                  files dropped in DIR go to s3://<bucket>/raw/ and play
                                             the EventBridge rule
  serve [--time-scale S] [--stepfunctions-port P] ...
                                             the SageMaker runtime and Step Functions APIs on localhost
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.app.summary import print_pipeline_summary
from emulator.cloud.assembly import DEFAULT_REGION, AssemblyError
from emulator.cloud.deploy import Deployment, StateMachineSpec, deploy
from emulator.runtime import LocalRuntime, build_integrations
from emulator.services.eventbridge import EventBus, EventsError, trigger_location, watch

log = logging.getLogger("emulator.cli.main")

# Files and folders whose changes make cdk.out stale.
SYNTH_SOURCES = ("app.py", "cdk.json", "stacks", "lambdas", "processing_scripts", "containers")
SYNTH_STAMP = ".emulator-synth.json"
# Sample datasets (data/) and the synth context each needs beyond the defaults in cdk.json.
DATASETS = {
    "abalone": {},
    "bank-marketing": {
        "pipeline.target_column": "deposit",
        "pipeline.quality_metric": "auc",
        "pipeline.quality_threshold": "0.85",
    },
}


class CliError(Exception):
    """A problem the user fixes (exit status 2); the message says how."""


# -- logging --------------------------------------------------------------------------------
class _ShortFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        name = record.name.removeprefix("emulator.").removeprefix("services.")
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"  [{name}] {level}{record.getMessage()}"


def configure_logging(verbose: bool = False) -> None:
    """INFO lines from loggers under "emulator", one concise line each, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ShortFormatter())
    logger = logging.getLogger("emulator")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


# -- synth ----------------------------------------------------------------------------------
def parse_context(pairs: list[str] | None) -> dict[str, str]:
    context = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"-c {pair!r}: expected key=value (e.g. -c pipeline.target_column=rings)")
        context[key] = value
    return context


def _newest_source(project: Path) -> float:
    newest = 0.0
    for name in SYNTH_SOURCES:
        path = project / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for file in path.rglob("*"):
                if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                    newest = max(newest, file.stat().st_mtime)
    return newest


def is_stale(project: Path, context: dict[str, str], outdir: str = "cdk.out") -> bool:
    """cdk.out is stale when missing, synthesized with other -c context, or older than a source."""
    manifest = project / outdir / "manifest.json"
    if not manifest.is_file():
        return True
    stamp = project / outdir / SYNTH_STAMP
    recorded = json.loads(stamp.read_text()).get("context") if stamp.is_file() else {}
    if recorded != context:
        return True
    return manifest.stat().st_mtime < _newest_source(project)


def synth(project: Path, context: dict[str, str], *, outdir: str = "cdk.out") -> Path:
    """Run `npx cdk synth --quiet` in ``project`` with this interpreter's bin folder first on PATH."""
    npx = shutil.which("npx")
    if npx is None:
        raise CliError("npx not found: install Node.js (18+) and run `make setup` to get the pinned CDK CLI")
    # the app's jsii runtime otherwise prints a Node-version banner on every synth
    env = dict(os.environ, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
               JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=os.environ.get("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [npx, "cdk", "synth", "--quiet", "--output", outdir]
    for key, value in context.items():
        command += ["-c", f"{key}={value}"]
    print(f"synth: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    completed = subprocess.run(command, cwd=project, env=env, check=False)
    if completed.returncode != 0:
        raise CliError(f"`cdk synth` failed (exit {completed.returncode}); its output is above")
    (project / outdir / SYNTH_STAMP).write_text(json.dumps({"context": context}))
    print(f"synth: done in {time.monotonic() - started:.1f}s", flush=True)
    return project / outdir


def _region(project: Path, context: dict[str, str]) -> str:
    if "region" in context:
        return context["region"]
    cdk_json = project / "cdk.json"
    if cdk_json.is_file():
        region = (json.loads(cdk_json.read_text()).get("context") or {}).get("region")
        if isinstance(region, str):
            return region
    return os.environ.get("CDK_DEFAULT_REGION", DEFAULT_REGION)


def prepare(args: argparse.Namespace, context: dict[str, str]) -> Deployment:
    """Synth when stale (unless --assembly names a ready cloud assembly), then deploy locally."""
    project = args.project
    if args.assembly:
        assembly = Path(args.assembly).resolve()
    else:
        assembly = project / "cdk.out"
        if is_stale(project, context):
            synth(project, context)
    region = _region(project, context)
    deployment = deploy(assembly, args.state_dir, region=region)
    print(f"deploy: {len(deployment.buckets)} bucket(s), {len(deployment.functions)} function(s), "
          f"{len(deployment.state_machines)} state machine(s), {len(deployment.rules)} rule(s), "
          f"{len(deployment.topics)} topic(s) -> {deployment.state_dir}", flush=True)
    print(f"deploy: {deployment.not_emulated_line()}", flush=True)
    local = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for fn in deployment.functions:
        if fn.runtime != local:
            log.warning("function %s declares %s; it runs locally on %s", fn.name, fn.runtime, local)
    return deployment


# -- progress -------------------------------------------------------------------------------
@dataclass
class Progress:
    """Turns history events into one line per state: start, done (with seconds), retry, failure."""

    write: Callable[[str], None] = print
    started: float = field(default_factory=time.monotonic)
    entered: dict[str, float] = field(default_factory=dict)
    state_of: dict[int, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    last_failure: tuple[str, str, str] | None = None  # (state, error, cause) of the last task failure
    last_entered: str = ""  # "<name> (<type>)" of the last state entered

    def _line(self, verb: str, text: str) -> None:
        self.write(f"{time.monotonic() - self.started:8.1f}s  {verb:<7} {text}")

    def __call__(self, event: dict) -> None:
        kind = event.get("type", "")
        state = self.state_of.get(event.get("previousEventId") or 0, "")
        if kind.endswith("StateEntered"):
            state = event["stateEnteredEventDetails"]["name"]
            self.last_entered = f"{state} ({kind.removesuffix('StateEntered')})"
            self.entered[state] = time.monotonic()
            self.attempts[state] = 0
            self._line("start", state)
        elif kind.endswith("StateExited"):
            state = event["stateExitedEventDetails"]["name"]
            elapsed = time.monotonic() - self.entered.pop(state, time.monotonic())
            self._line("done", f"{state}  {elapsed:.2f}s")
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            self.attempts[state] = self.attempts.get(state, 0) + 1
            if self.attempts[state] > 1:
                self._line("retry", f"{state}  attempt {self.attempts[state]}")
        elif kind in ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut",
                      "LambdaFunctionStartFailed", "TaskStartFailed", "TaskSubmitFailed"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            error, cause = details.get("error", ""), details.get("cause", "")
            if not kind.startswith("Lambda") or not self.last_failure or self.last_failure[0] != state:
                self._line("failed", f"{state}  {error}: {_short(cause)}")
            self.last_failure = (state, error, cause)
        elif kind in ("TaskSucceeded", "LambdaFunctionSucceeded"):
            if self.last_failure and self.last_failure[0] == state:
                self.last_failure = None  # a retry succeeded: that failure did not end anything
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted", "ExecutionSucceeded"):
            self._line(kind.removeprefix("Execution").lower(), "execution")
        if event.get("id") is not None:
            self.state_of[event["id"]] = state


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- executions -----------------------------------------------------------------------------
class Executor:
    """Runs executions of deployed state machines with the runtime's integrations."""

    def __init__(self, runtime: LocalRuntime, *, write: Callable[[str], None] = print):
        self.runtime = runtime
        self.integrations = build_integrations(runtime)
        self.write = write
        self.results: list[tuple[StateMachineSpec, str, Any, Progress]] = []

    def run(self, machine: StateMachineSpec, input_value: Any, name: str | None = None) -> Any:
        from emulator.asl import run_definition

        name = name or str(uuid.uuid4())
        history_dir = self.runtime.execution_dir(machine.name, name)
        self.write(f"execution {name} of {machine.name}")
        progress = Progress(write=self.write)
        result = run_definition(
            machine.definition, input_value, integrations=self.integrations, execution_name=name,
            state_machine_name=machine.name, role_arn=machine.role_arn, time_scale=self.runtime.time_scale,
            history_dir=history_dir, on_event=progress, state_machine_arn=machine.arn,
        )
        self.results.append((machine, name, result, progress))
        return result

    def start_from_rule(self, state_machine_arn: str, input_text: str, rule: Any) -> Any:
        machine = self.runtime.deployment.state_machine(state_machine_arn)
        try:
            value = json.loads(input_text)
        except json.JSONDecodeError as exc:
            raise EventsError(f"rule {rule.name}: the target input is not JSON ({exc}); Step Functions "
                              f"rejects it") from exc
        return self.run(machine, value)


def choose_state_machine(deployment: Deployment, name: str | None) -> StateMachineSpec:
    if name:
        return deployment.state_machine(name)
    if len(deployment.state_machines) == 1:
        return deployment.state_machines[0]
    for rule in deployment.rules:
        for target in rule.targets:
            if ":stateMachine:" in target.arn:
                return deployment.state_machine(target.arn)
    names = ", ".join(m.name for m in deployment.state_machines) or "none"
    raise CliError(f"the deployment has several state machines ({names}): choose one with --state-machine")


def summarize(runtime: LocalRuntime, machine: StateMachineSpec, name: str, result: Any, progress: Progress,
              elapsed: float) -> int:
    folder = runtime.execution_dir(machine.name, name)
    print("output:")
    print(json.dumps(result.output, indent=2, default=str) if result.status == "SUCCEEDED" else "  (none)")
    print(f"status: {result.status} in {elapsed:.1f}s  ({machine.name}/{name})")
    print(f"history: {folder}")
    logs = folder / "logs"
    if logs.is_dir():
        print(f"lambda logs: {logs}")
    outbox = runtime.state_dir / "outbox"
    if outbox.is_dir():
        for file in sorted(outbox.glob("*.jsonl")):
            count = sum(1 for line in file.read_text().splitlines() if line.strip())
            print(f"outbox: {file} ({count} message(s))")
    if result.status == "SUCCEEDED":
        return 0
    if progress.last_failure:
        state, error, cause = progress.last_failure
        print(f"failed state: {state}\n  error: {error}\n  cause: {cause}")
    elif progress.last_entered:  # failed by a Fail state (e.g. after a Choice), not by a task
        print(f"failed state: {progress.last_entered}\n  error: {result.error}\n  cause: {result.cause}")
    print(f"execution {result.status}: {result.error}: {result.cause}")
    return 1


# -- commands -------------------------------------------------------------------------------
def cmd_asl(args: argparse.Namespace) -> int:
    from emulator.asl import DefinitionError, run_definition
    from emulator.asl.ports import Integrations

    try:
        definition = json.loads(Path(args.definition).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"{args.definition}: not a readable JSON definition ({exc})") from exc
    input_value: Any = {}
    if args.input:
        try:
            input_value = json.loads(Path(args.input).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CliError(f"{args.input}: not a readable JSON input ({exc})") from exc
    runtime = None
    integrations = Integrations()
    if (Path(args.state_dir) / "deployment.json").is_file():
        runtime = LocalRuntime.open(args.state_dir, args.project, time_scale=args.time_scale)
        integrations = build_integrations(runtime)
    try:
        result = run_definition(
            definition, input_value, integrations=integrations, execution_name=args.name,
            state_machine_name=args.state_machine_name, time_scale=args.time_scale,
        )
    except DefinitionError as exc:
        raise CliError(f"{args.definition}: invalid definition at {exc}") from exc
    finally:
        if runtime:
            runtime.close()
    out: dict[str, Any] = {"status": result.status, "output": result.output, "error": result.error,
                           "cause": result.cause}
    if args.history:
        out["history"] = [event["type"] for event in result.history]
    print(json.dumps(out, default=str))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    synth(args.project, parse_context(args.context))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    deployment = prepare(args, parse_context(args.context))
    for machine in deployment.state_machines:
        print(f"state machine: {machine.name}  {machine.definition_file}")
    for fn in deployment.functions:
        print(f"function: {fn.name}  {fn.handler}  ({fn.runtime}, {fn.timeout}s)")
    for rule in deployment.rules:
        print(f"rule: {rule.name} -> {', '.join(t.arn.rsplit(':', 1)[-1] for t in rule.targets)}")
    return 0


def _execution_input(args: argparse.Namespace) -> Any:
    if args.input is not None and args.input_file is not None:
        raise CliError("give --input or --input-file, not both")
    try:
        if args.input is not None:
            return json.loads(args.input)
        if args.input_file is not None:
            return json.loads(Path(args.input_file).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"the execution input is not readable JSON ({exc})") from exc
    return None


def cmd_run(args: argparse.Namespace) -> int:
    input_value = _execution_input(args)
    if input_value is None and not args.sample:
        raise CliError("nothing to run: give --input JSON, --input-file FILE or --sample")
    if input_value is not None and args.sample:
        raise CliError("--sample starts the execution through the S3 trigger, whose input is the uploaded "
                       "object's URI: give either --sample or --input/--input-file, not both")
    context = {**DATASETS[args.dataset], **parse_context(args.context)} if args.sample else parse_context(args.context)
    deployment = prepare(args, context)
    started = time.monotonic()
    with LocalRuntime.open(args.state_dir, args.project, time_scale=args.time_scale, deployment=deployment) as runtime:
        executor = Executor(runtime)
        if args.sample:
            bucket, prefix = trigger_location(deployment)
            source = args.project / "data" / f"{args.dataset}.csv"
            if not source.is_file():
                raise CliError(f"sample data {source} is missing: restore data/ from git")
            uri = f"s3://{bucket}/{prefix}{source.name}"
            runtime.s3.put_file(uri, source)
            print(f"sample: uploaded {source.name} to {uri}; EventBridge delivers the Object Created event")
            deliveries = EventBus(deployment, start_execution=executor.start_from_rule).object_created(runtime.s3, uri)
            if not deliveries:
                raise CliError(f"no enabled rule matched the upload of {uri}: check the rule's EventPattern")
        else:
            executor.run(choose_state_machine(deployment, args.state_machine), input_value, args.name)
        status = 0
        for machine, name, result, progress in executor.results:
            status = max(status, summarize(runtime, machine, name, result, progress, time.monotonic() - started))
            if result.status == "SUCCEEDED":
                print_pipeline_summary(runtime, result.output)
        return status


def cmd_watch(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    deployment = prepare(args, parse_context(args.context))
    bucket, prefix = trigger_location(deployment)
    with LocalRuntime.open(args.state_dir, args.project, time_scale=args.time_scale, deployment=deployment) as runtime:
        executor = Executor(runtime)
        bus = EventBus(deployment, start_execution=executor.start_from_rule)

        def report(path: Path, deliveries: list) -> None:
            while executor.results:
                machine, name, result, progress = executor.results.pop(0)
                summarize(runtime, machine, name, result, progress, time.monotonic() - progress.started)
            if not deliveries:
                print(f"{path.name}: no rule matched s3://{bucket}/{prefix}{path.name}")

        print(f"watching {folder}: files dropped here go to s3://{bucket}/{prefix} (Ctrl-C to stop)", flush=True)
        try:
            watch(folder, runtime.s3, bus, bucket=bucket, prefix=prefix, on_delivery=report)
        except KeyboardInterrupt:
            print("stopped")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The SageMaker runtime API (emulator.services.sagemaker.serve) and, once something is deployed, the
    Step Functions API beside it (emulator.services.stepfunctions.api), until Ctrl-C."""
    from emulator.services.sagemaker import serve as server

    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--time-scale", type=float, default=0.01)
    own.add_argument("--stepfunctions-port", type=int, default=0)
    own.add_argument("--host", default="127.0.0.1")
    own.add_argument("--state-dir", type=Path, default=args.state_dir)
    options, rest = own.parse_known_args(args.serve_args)
    state_dir = options.state_dir.resolve()
    rest = ["--state-dir", str(state_dir), "--host", options.host, *rest]
    if not (state_dir / "deployment.json").is_file():
        log.info("nothing deployed in %s yet: serving the SageMaker runtime API only "
                 "(`python -m emulator deploy` adds the Step Functions API)", state_dir)
        return int(server.main(rest) or 0)
    from emulator.services.stepfunctions.api import StepFunctionsApi, StepFunctionsServer

    with LocalRuntime.open(state_dir, args.project, time_scale=options.time_scale) as runtime:
        executions = StepFunctionsApi(runtime)
        api = StepFunctionsServer(executions, options.host, options.stepfunctions_port).start()
        log.info("Step Functions API on %s: boto3.client('stepfunctions', endpoint_url='%s') or "
                 "`aws stepfunctions --endpoint-url %s ...`", api.url, api.url, api.url)
        try:
            return int(server.main(rest) or 0)
        finally:
            api.stop()
            executions.stop_all()  # each running execution ends ABORTED on disk, not RUNNING forever


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
    run.add_argument("--sample", action="store_true", help="upload data/<dataset>.csv under raw/ and start "
                                                           "through the EventBridge rule")
    run.add_argument("--dataset", choices=sorted(DATASETS), default="abalone")
    run.add_argument("--state-machine", help="name or ARN (default: the one the S3 trigger starts)")
    run.add_argument("--name", help="execution name (default: a UUID)")
    run.add_argument("--time-scale", type=float, default=0.01,
                     help="multiplies Wait/Retry intervals and simulated service delays (default 0.01)")
    run.set_defaults(func=cmd_run)

    wat = sub.add_parser("watch", help="a drop folder that plays the S3 -> EventBridge trigger")
    assembly_options(wat)
    wat.add_argument("dir")
    wat.add_argument("--time-scale", type=float, default=0.01)
    wat.set_defaults(func=cmd_watch)

    srv = sub.add_parser("serve", help="the SageMaker runtime and Step Functions APIs on localhost")
    srv.add_argument("serve_args", nargs=argparse.REMAINDER)
    srv.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "serve":  # everything after `serve` belongs to the SageMaker server
        args.serve_args = extra + args.serve_args
        if args.state_dir and "--state-dir" not in args.serve_args:  # `--state-dir D serve` means D too
            args.serve_args = ["--state-dir", str(args.state_dir), *args.serve_args]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.project = Path(args.project).resolve()
    args.state_dir = Path(args.state_dir).resolve() if args.state_dir else args.project / ".emulator"
    configure_logging(args.verbose)
    try:
        return args.func(args)
    except (CliError, AssemblyError, EventsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
