"""The commands: asl, synth, deploy, run, infer, watch (serve is in serve.py)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from emulator.app.datasets import DATASETS, sample_file
from emulator.app.own_data import OwnDataError, choose_target, pipeline_context
from emulator.app.summary import disk_line, print_pipeline_summary
from emulator.asl import DefinitionError, run_definition
from emulator.asl.ports import Integrations
from emulator.asl.validate import ValidationException, format_diagnostics, validate_definition
from emulator.aws.arns import execution_arn
from emulator.cli import endpoints
from emulator.cli.errors import CliError
from emulator.cli.progress import Progress, summarize
from emulator.cli.settings import parse_settings
from emulator.cli.signals import stop_on_signals
from emulator.cli.synth import DEFAULT_STACK, parse_context, prepare, synth
from emulator.cli.watch import watch
from emulator.runtime import Runtime
from emulator.services.stepfunctions.exceptions import ExecutionAlreadyExists
from emulator.services.stepfunctions.machines import StateMachineSpec
from emulator.storage.layout import Layout
from emulator.storage.retention import disk_bytes


class _Watcher:
    """The runtime's observer: a Progress printer per execution, kept to report how each ended."""

    def __init__(self) -> None:
        self.started: list[tuple[StateMachineSpec, str, Progress]] = []

    def __call__(self, machine: StateMachineSpec, name: str) -> Progress:
        print(f"execution {name} of {machine.name}")
        progress = Progress()
        self.started.append((machine, name, progress))
        return progress


def cmd_asl(args: argparse.Namespace) -> int:
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
    if Layout.at(args.state_dir).deployment_file.is_file():
        runtime = Runtime.open(args.state_dir, args.project, time_scale=args.time_scale)
        integrations = runtime.integrations
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
    return 0 if result.status == "SUCCEEDED" else 1


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
    for item in deployment.not_emulated:
        print(f"not emulated: {item}  ({item.reason})")
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


def choose_state_machine(runtime: Runtime, name: str | None, stack: str | None) -> StateMachineSpec:
    if name:
        return runtime.machines.get(name)
    machines = [m for m in runtime.deployment.state_machines if not stack or m.stack == stack]
    if len(machines) == 1:
        return machines[0]
    for rule in runtime.deployment.rules:
        if rule.schedule_expression:  # a schedule starts the monitoring machine; an upload, the pipeline
            continue
        for target in rule.targets:
            if ":stateMachine:" in target.arn and (not stack or rule.stack == stack):
                return runtime.machines.get(target.arn)
    names = ", ".join(m.name for m in machines) or "none"
    raise CliError(f"the deployment has several state machines ({names}): choose one with --state-machine")


def _run_context(args: argparse.Namespace, input_value: Any) -> tuple[dict[str, str], Path | None]:
    """The synth context of this run and the file to upload (None when an input JSON is given)."""
    chosen = [name for name, given in (("--sample", args.sample), ("--data", args.data),
                                       ("--input/--input-file", input_value is not None)) if given]
    if not chosen:
        raise CliError("nothing to run: give --data YOUR.csv (your own table), --sample, or --input JSON")
    if len(chosen) > 1:
        raise CliError(f"give {' or '.join(chosen)}, not both: --data and --sample upload a file and let the S3 "
                       "trigger start the execution, whose input is the object's URI; --input starts it directly")
    if args.target and not args.data:
        raise CliError("--target names a column of the file given with --data")
    context = parse_context(args.context)
    if args.stack:
        context["stack_name"] = args.stack
    try:
        if args.data:
            source = Path(args.data).expanduser().resolve()
            target, why = choose_target(source, args.target)
            print(f"data: {source}\ntarget: {target} ({why})")
            return {**pipeline_context(target, args.set), **context}, source
        settings = pipeline_context("", args.set)
        settings.pop("pipeline.target_column")
        if args.sample:
            return {**DATASETS[args.dataset], **settings, **context}, sample_file(args.project, args.dataset)
        return {**settings, **context}, None
    except OwnDataError as exc:
        raise CliError(str(exc)) from exc


def cmd_run(args: argparse.Namespace) -> int:
    input_value = _execution_input(args)
    context, source = _run_context(args, input_value)
    disk_before = disk_bytes([args.state_dir])  # the run's own bytes: deploy, upload, jobs, records
    deployment = prepare(args, context)
    stack = context.get("stack_name") or DEFAULT_STACK
    started = time.monotonic()
    # SIGTERM as Ctrl-C: the execution is recorded ABORTED and its jobs stopped before the process ends
    with stop_on_signals(), Runtime.open(args.state_dir, args.project, time_scale=args.time_scale,
                                         deployment=deployment) as runtime:
        watcher = _Watcher()
        runtime.observer = watcher
        if source is not None:
            if not source.is_file():
                raise CliError(f"{source} is missing" + (": restore data/ from git" if args.sample else ""))
            bucket, prefix = runtime.events.upload_trigger(stack if stack in deployment.stacks else None)
            uri = f"s3://{bucket}/{prefix}{source.name}"
            runtime.s3.put_file(uri, source)
            print(f"upload: {source.name} -> {uri}; EventBridge delivers the Object Created event")
            deliveries = runtime.events.object_created(runtime.s3, uri)
            if not deliveries:
                raise CliError(f"no enabled rule matched the upload of {uri}: check the rule's EventPattern")
            results = [d.result for d in deliveries]
        else:
            machine = choose_state_machine(runtime, args.state_machine, stack if stack in deployment.stacks else None)
            try:
                results = [runtime.launch(machine, input_value, args.name)]
            except ExecutionAlreadyExists:
                folder = runtime.execution_dir(machine.name, args.name)
                raise CliError(f"an execution named {args.name!r} of {machine.name} already exists "
                               f"({folder}): a run never overwrites an execution's record; choose another "
                               f"--name, or leave --name out for a new one") from None
        status = 0
        for (machine, name, progress), result in zip(watcher.started, results, strict=True):
            status = max(status, summarize(runtime, machine, name, result, progress, time.monotonic() - started))
            held = disk_bytes([args.state_dir])
            if result.status == "SUCCEEDED":
                print_pipeline_summary(runtime, result.output, source=source, disk=(held - disk_before, held))
            else:
                print(disk_line(held - disk_before, held).strip())
        return status


def cmd_infer(args: argparse.Namespace) -> int:
    """Upload a file of records under the inference prefix of the deployed stack and let its rule start the
    inference state machine (with --set: start it directly, the settings in its input), as on AWS."""
    source = Path(args.file).expanduser().resolve()
    if not source.is_file():
        raise CliError(f"{source} is not a file: give a .csv or .jsonl file of records")
    settings = parse_settings(args.set, "confidence_threshold=0.6")
    started = time.monotonic()
    with stop_on_signals(), Runtime.open(args.state_dir, args.project, time_scale=args.time_scale) as runtime:
        machine = next((m for m in runtime.deployment.state_machines if "InferencePipeline" in m.logical_id
                        and (not args.stack or m.stack == args.stack)), None)
        if machine is None:
            raise CliError("no inference state machine is deployed here: run the training pipeline first "
                           "(`python -m emulator run --sample`), which deploys the stack")
        trigger = next(iter(runtime.events.upload_triggers(machine.stack, target=machine.arn)), None)
        if trigger is None:
            raise CliError(f"no rule of stack {machine.stack} starts {machine.name} on an upload")
        watcher = _Watcher()
        runtime.observer = watcher
        uri = f"s3://{trigger[0]}/{trigger[1]}{source.name}"
        runtime.s3.put_file(uri, source)
        if settings:
            print(f"upload: {source.name} -> {uri}; starting {machine.name} with {json.dumps(settings)}")
            results = [runtime.launch(machine, {"input_s3_uri": uri, **settings})]
        else:
            print(f"upload: {source.name} -> {uri}; EventBridge delivers the Object Created event")
            results = [d.result for d in runtime.events.object_created(runtime.s3, uri)]
        status = 0
        for (machine, name, progress), result in zip(watcher.started, results, strict=True):
            status = max(status, summarize(runtime, machine, name, result, progress, time.monotonic() - started))
            output = result.output if result.status == "SUCCEEDED" and isinstance(result.output, dict) else {}
            if output:
                print(f"  records           {output['records']} scored, {output['low_confidence']} low-confidence")
                print(f"  predictions       {output['predictions']}")
                print(f"  capture report    {output['report']}")
            for note in output.get("notes") or []:
                print(f"  note              {note}")
        return status


def cmd_watch(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    deployment = prepare(args, parse_context(args.context))
    with Runtime.open(args.state_dir, args.project, time_scale=args.time_scale, deployment=deployment) as runtime:
        watcher = _Watcher()
        runtime.observer = watcher
        bucket, prefix = runtime.events.upload_trigger()
        # DIR/inference/x.csv -> s3://<bucket>/inference/x.csv: the other triggers' prefixes, by folder
        routes = tuple(p for b, p in runtime.events.upload_triggers() if b == bucket and p and p != prefix)

        def report(path: Path, deliveries: list) -> None:
            for delivery, (machine, name, progress) in zip(deliveries, watcher.started, strict=False):
                summarize(runtime, machine, name, delivery.result, progress, time.monotonic() - progress.started)
            watcher.started.clear()
            if not deliveries:
                print(f"{path.name}: no rule matched s3://{bucket}/{prefix}{path.name}")

        others = "".join(f"; {folder / p} to s3://{bucket}/{p}" for p in routes)
        print(f"watching {folder}: files dropped here go to s3://{bucket}/{prefix}{others} (Ctrl-C to stop)", flush=True)
        try:
            watch(folder, runtime.s3, runtime.events, bucket=bucket, prefix=prefix, on_delivery=report, routes=routes)
        except KeyboardInterrupt:
            print("stopped")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """The AWS_ENDPOINT_URL_* lines of the live `serve` process, for `eval "$(python -m emulator env)"`."""
    live = endpoints.live_endpoints(Layout.at(args.state_dir))
    if live is None:
        raise CliError(f"no `serve` process answers for {args.state_dir}: start `python -m emulator serve` "
                       f"(it prints these lines too), then run `python -m emulator env` again")
    urls, region = live
    for name, url in urls.items():
        print(f"# {name:<18} {url}")
    for line in endpoints.env_lines(urls, region):
        print(line)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """ValidateStateMachineDefinition on a file: AWS's diagnostics, exit 1 when the result is FAIL."""
    try:
        text = Path(args.definition).read_text()
    except OSError as exc:
        raise CliError(f"{args.definition}: not readable ({exc})") from exc
    try:
        response = validate_definition(text, type=args.type, severity=args.severity)
    except ValidationException as exc:
        raise CliError(str(exc)) from exc
    print(format_diagnostics(response))
    return 1 if response["result"] == "FAIL" else 0


def _find_execution(runtime: Runtime, target: str, machine_name: str | None) -> str:
    """The ARN of an execution given by ARN, or by name (searched in every deployed machine's records)."""
    if target.startswith("arn:"):
        return target
    machines = [runtime.machines.get(machine_name)] if machine_name else list(runtime.machines)
    found = [execution_arn(m.arn, target) for m in machines if runtime.layout.execution_dir(m.name, target).is_dir()]
    if not found:
        raise CliError(f"no execution named {target!r} is recorded in {runtime.layout.executions_root} "
                       f"(machines: {', '.join(m.name for m in machines) or 'none'}); give its ARN")
    if len(found) > 1:
        raise CliError(f"several machines have an execution named {target!r}: choose one with --state-machine "
                       f"({', '.join(found)})")
    return found[0]


def cmd_redrive(args: argparse.Namespace) -> int:
    """RedriveExecution from the command line: the failed execution continues from the state that
    failed (same ARN), with the progress printer; exit 0 when it then succeeds."""
    started = time.monotonic()
    with Runtime.open(args.state_dir, args.project, time_scale=args.time_scale) as runtime:
        arn = _find_execution(runtime, args.execution, args.state_machine)
        described = runtime.stepfunctions.describe_execution(executionArn=arn)
        if described["redriveStatus"] != "REDRIVABLE":
            raise CliError(f"{arn} cannot be redriven: {described.get('redriveStatusReason')}")
        machine = runtime.machines.get(described["stateMachineArn"])
        watcher = _Watcher()
        runtime.observer = watcher
        print(f"redrive {described['name']} (redrive {described.get('redriveCount', 0) + 1}): it failed with "
              f"{described.get('error') or described['status']}")
        result = runtime.launch(machine, None, described["name"], redrive=True)
        (_, name, progress), = watcher.started
        return summarize(runtime, machine, name, result, progress, time.monotonic() - started)
