"""The commands: asl, synth, deploy, run, watch (serve is in serve.py)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from emulator.app.datasets import DATASETS, sample_file
from emulator.app.summary import print_pipeline_summary
from emulator.asl import DefinitionError, run_definition
from emulator.asl.ports import Integrations
from emulator.cli.errors import CliError
from emulator.cli.progress import Progress, summarize
from emulator.cli.synth import parse_context, prepare, synth
from emulator.cli.watch import watch
from emulator.cloud.deployment import Deployment
from emulator.runtime import Runtime
from emulator.services.stepfunctions.machines import StateMachineSpec
from emulator.storage.layout import Layout


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


def choose_state_machine(deployment: Deployment, runtime: Runtime, name: str | None) -> StateMachineSpec:
    if name:
        return runtime.machines.get(name)
    if len(deployment.state_machines) == 1:
        return deployment.state_machines[0]
    for rule in deployment.rules:
        for target in rule.targets:
            if ":stateMachine:" in target.arn:
                return runtime.machines.get(target.arn)
    names = ", ".join(m.name for m in deployment.state_machines) or "none"
    raise CliError(f"the deployment has several state machines ({names}): choose one with --state-machine")


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
    with Runtime.open(args.state_dir, args.project, time_scale=args.time_scale, deployment=deployment) as runtime:
        watcher = _Watcher()
        runtime.observer = watcher
        results = []
        if args.sample:
            bucket, prefix = runtime.events.upload_trigger()
            source = sample_file(args.project, args.dataset)
            if not source.is_file():
                raise CliError(f"sample data {source} is missing: restore data/ from git")
            uri = f"s3://{bucket}/{prefix}{source.name}"
            runtime.s3.put_file(uri, source)
            print(f"sample: uploaded {source.name} to {uri}; EventBridge delivers the Object Created event")
            deliveries = runtime.events.object_created(runtime.s3, uri)
            if not deliveries:
                raise CliError(f"no enabled rule matched the upload of {uri}: check the rule's EventPattern")
            results = [d.result for d in deliveries]
        else:
            machine = choose_state_machine(deployment, runtime, args.state_machine)
            results = [runtime.launch(machine, input_value, args.name)]
        status = 0
        for (machine, name, progress), result in zip(watcher.started, results, strict=True):
            status = max(status, summarize(runtime, machine, name, result, progress, time.monotonic() - started))
            if result.status == "SUCCEEDED":
                print_pipeline_summary(runtime, result.output)
        return status


def cmd_watch(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    deployment = prepare(args, parse_context(args.context))
    with Runtime.open(args.state_dir, args.project, time_scale=args.time_scale, deployment=deployment) as runtime:
        watcher = _Watcher()
        runtime.observer = watcher
        bucket, prefix = runtime.events.upload_trigger()

        def report(path: Path, deliveries: list) -> None:
            for delivery, (machine, name, progress) in zip(deliveries, watcher.started, strict=False):
                summarize(runtime, machine, name, delivery.result, progress, time.monotonic() - progress.started)
            watcher.started.clear()
            if not deliveries:
                print(f"{path.name}: no rule matched s3://{bucket}/{prefix}{path.name}")

        print(f"watching {folder}: files dropped here go to s3://{bucket}/{prefix} (Ctrl-C to stop)", flush=True)
        try:
            watch(folder, runtime.s3, runtime.events, bucket=bucket, prefix=prefix, on_delivery=report)
        except KeyboardInterrupt:
            print("stopped")
    return 0
