"""The composition root: the one place that assembles the emulator from a deployment.

``Runtime.open`` loads what `deploy` recorded, starts the local S3, Step Functions and SageMaker
API servers that handlers reach through ``AWS_ENDPOINT_URL_S3/_SFN/_SAGEMAKER``, builds every
service backend with exactly what it needs, registers the Step Functions integrations over them,
and injects the calls that go upward: the one execution launcher (used by the CLI, `serve`'s Step
Functions API, EventBridge targets, tests and benchmarks) and its resumption after a restart, the
SageMaker invoke server an endpoint needs once it is InService, EventBridge's delivery of SageMaker
events and of Lambda targets, and CloudWatch's alarm evaluation for endpoint rollbacks.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from emulator.asl import ExecutionResult, run_definition, teststate
from emulator.asl import validate as asl_validate
from emulator.asl.ports import Integrations
from emulator.asl.run import Resume
from emulator.asl.teststate import run_test_state
from emulator.asl.validate import validate_definition
from emulator.cloud.deployment import Deployment
from emulator.integrations import callback, lambda_, s3_sdk, sns
from emulator.integrations.lambda_ import log_file
from emulator.services.cloudwatch import Alarm, CloudWatchBackend, UnsupportedAlarm
from emulator.services.eventbridge import EventBus, EventsError, RuleSpec, RuleTargetSpec
from emulator.services.lambda_.functions import Functions, ResourceNotFoundException
from emulator.services.lambda_.invoke import LambdaRunner
from emulator.services.s3.server import S3Server
from emulator.services.s3.store import LocalS3
from emulator.services.sns import SnsBackend
from emulator.services.stepfunctions import exceptions as sfn_errors
from emulator.services.stepfunctions.backend import StepFunctionsBackend
from emulator.services.stepfunctions.exceptions import StepFunctionsError
from emulator.services.stepfunctions.machines import StateMachines, StateMachineSpec
from emulator.services.stepfunctions.server import StepFunctionsServer
from emulator.services.stepfunctions.tokens import TaskTokens
from emulator.storage.executions import read_execution, write_checkpoint, write_history
from emulator.storage.layout import Layout

if TYPE_CHECKING:
    from emulator.services.sagemaker.context import SageMakerContext
    from emulator.services.sagemaker.facade import SageMakerBackend
    from emulator.services.sagemaker.server import SageMakerServer

log = logging.getLogger(__name__)

# Resource types CloudFormation would have created that live in a service backend's records.
PROVISIONED_IN_BACKENDS = {"AWS::SageMaker::ModelPackageGroup"}

_API_ERRORS = ((teststate.InvalidDefinition, sfn_errors.InvalidDefinition),
               (teststate.InvalidExecutionInput, sfn_errors.InvalidExecutionInput),
               (asl_validate.ValidationException, sfn_errors.ValidationException))


def _api_errors(function: Callable[..., dict]) -> Callable[..., dict]:
    """The interpreter's request errors raised as the Step Functions API's error classes."""
    def call(*args: Any, **kwargs: Any) -> dict:
        try:
            return function(*args, **kwargs)
        except tuple(theirs for theirs, _ in _API_ERRORS) as error:
            ours = next(ours for theirs, ours in _API_ERRORS if isinstance(error, theirs))
            raise ours(str(error)) from None
    return call


Observer = Callable[[StateMachineSpec, str], Callable[[dict], None] | None]


@dataclass
class Runtime:
    layout: Layout
    project_root: Path
    deployment: Deployment
    s3: LocalS3
    time_scale: float = 1.0
    # local endpoints handlers and jobs may call, by botocore's AWS_ENDPOINT_URL_<SERVICE> suffix
    service_endpoints: dict[str, str] = field(default_factory=dict)
    # who watches each execution's history events (the CLI's progress printer); None: nobody
    observer: Observer | None = None
    _s3_server: S3Server | None = field(default=None, repr=False)
    _sfn_server: StepFunctionsServer | None = field(default=None, repr=False)
    _sagemaker_server: SageMakerServer | None = field(default=None, repr=False)

    @classmethod
    def open(cls, state_dir: Path, project_root: Path, *, time_scale: float = 1.0,
             deployment: Deployment | None = None, serve_s3: bool = True, uploads_trigger: bool = False,
             s3_port: int = 0, stepfunctions_port: int = 0, sagemaker_port: int = 0,
             host: str = "127.0.0.1") -> Runtime:
        """``serve_s3``: serve the local S3, Step Functions and SageMaker APIs (Lambda handlers and
        jobs reach them through AWS_ENDPOINT_URL_*). ``uploads_trigger``: an object written through
        the S3 API sends its Object Created event to EventBridge, whose state machine targets start in
        the background (what `serve` plays)."""
        layout = Layout.at(state_dir)
        layout.check()
        deployment = deployment or Deployment.load(layout.root)
        s3 = LocalS3(layout.s3_root, deployment.region)
        runtime = cls(layout, Path(project_root).resolve(), deployment, s3, time_scale)
        runtime._assemble()
        if uploads_trigger:
            runtime.events.start_execution = runtime._start_in_background
        if serve_s3:
            from emulator.services.sagemaker.server import SageMakerServer

            runtime._s3_server = S3Server(s3, host=host, port=s3_port, on_object_created=(
                runtime._uploaded if uploads_trigger else None)).start()
            runtime._sfn_server = StepFunctionsServer(runtime.stepfunctions, host, stepfunctions_port).start()
            runtime._sagemaker_server = SageMakerServer(runtime.sagemaker, host, sagemaker_port).start()
            runtime.service_endpoints.update({"S3": runtime._s3_server.url, "SFN": runtime._sfn_server.url,
                                              "SAGEMAKER": runtime._sagemaker_server.url})
        return runtime

    # -- assembly ------------------------------------------------------------------------------
    def _assemble(self) -> None:
        deployment = self.deployment
        self.functions: Functions = deployment.function_registry()
        self.machines: StateMachines = deployment.machine_registry()
        self.lambda_runner = LambdaRunner(self.layout, region=self.region, service_endpoints=self.service_endpoints)
        self.sns = SnsBackend(self.layout, deployment.topics)
        self.events = EventBus(deployment.rules, deployment.buckets, region=self.region, account=self.account,
                               dead_letters_dir=self.layout.dead_letters_dir, start_execution=self._start_from_rule,
                               deliver=self._deliver_to_function)
        self.cloudwatch = CloudWatchBackend(self.layout.cloudwatch_dir, self._alarms(), time_scale=self.time_scale,
                                            notify=self._alarm_action, region=self.region, account=self.account)
        self.tokens = TaskTokens(self.layout.stepfunctions_records)
        self.stepfunctions = StepFunctionsBackend(
            self.machines, self.layout, self._launch_for_api, created=deployment.deployed_at_epoch(),
            validate=_api_errors(validate_definition),
            test_state=_api_errors(lambda definition, **request: run_test_state(
                definition, integrations=self.integrations, **request)),
            tokens=self.tokens, resume=self._resume_for_api)
        self.integrations = Integrations()
        lambda_.register(self.integrations, self.functions, self.lambda_runner)
        sns.register(self.integrations, self.sns)
        callback.register(self.integrations, self.tokens)
        s3_sdk.register(self.integrations, self.s3)
        # Imported here, not at the top: SageMaker's backend loads botocore's service model, numpy and
        # optuna (~0.35 s), which commands that open no runtime (`asl`, `deploy`, `--help`) never need.
        from emulator.integrations import sagemaker as sagemaker_integration
        from emulator.services.sagemaker.facade import SageMakerBackend

        self.sagemaker: SageMakerBackend = SageMakerBackend(self.sagemaker_context())
        sagemaker_integration.register(self.integrations, self.sagemaker)
        self._provision()

    def sagemaker_context(self) -> SageMakerContext:
        """What the SageMaker backends are given: images resolve against the deployment's cloud
        assembly (CDK image assets); the invoke server is started on first use, per state folder."""
        from emulator.services.sagemaker.context import SageMakerContext
        from emulator.services.sagemaker.images import resolve_image

        assemblies = [Path(folder) for folder in self.deployment.assembly_dirs or [self.deployment.assembly_dir] if folder]
        return SageMakerContext(
            layout=self.layout, s3=self.s3, project_root=self.project_root,
            resolve_image=functools.partial(resolve_image, project_root=self.project_root,
                                            assembly_dirs=assemblies or None),
            invoke_server_url=self.invoke_server_url, region=self.region, account=self.account,
            # the runtime's own dict: the S3 server's URL is added to it once the server is up
            time_scale=self.time_scale, service_endpoints=self.service_endpoints,
            emit_event=self.events.put_event, alarms_in_alarm=self.cloudwatch.alarms_in_alarm,
        )

    def _provision(self) -> None:
        """Create the SageMaker resources the template declares (model package groups) in the
        local backend, once: CloudFormation would have created them at deploy time."""
        from emulator.services.sagemaker.exceptions import ModelPackageGroupExists

        for record in self.deployment.resources:
            if record.type not in PROVISIONED_IN_BACKENDS:
                continue
            request = {key: record.properties[key] for key in ("ModelPackageGroupName", "ModelPackageGroupDescription")
                       if key in record.properties}
            request.setdefault("ModelPackageGroupName", record.arn.rsplit("/", 1)[-1])
            try:
                self.sagemaker.call("CreateModelPackageGroup", request)
                log.info("created model package group %s", request["ModelPackageGroupName"])
            except ModelPackageGroupExists:
                pass  # this state folder was provisioned by an earlier run

    def _alarms(self) -> list[Alarm]:
        """The template's metric alarms CloudWatch evaluates locally (the deploy lists the others)."""
        alarms = []
        for record in self.deployment.resources:
            if record.type != "AWS::CloudWatch::Alarm":
                continue
            try:
                alarms.append(Alarm.from_properties(record.properties, name=record.physical_id))
            except (UnsupportedAlarm, KeyError, TypeError, ValueError) as error:
                log.debug("alarm %s is not evaluated: %s", record.logical_id, error)
        return alarms

    def _alarm_action(self, topic_arn: str, subject: str, message: str) -> None:
        self.sns.publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)

    def _deliver_to_function(self, target: RuleTargetSpec, text: str) -> str | None:
        """EventBridge's Lambda target: an asynchronous invocation (EventBridge does not wait for it)."""
        if ":lambda:" not in target.arn:
            log.warning("EventBridge target %s is not emulated; event not delivered", target.arn)
            return None
        try:
            function = self.functions.get(target.arn)
        except ResourceNotFoundException as error:
            raise EventsError(f"target {target.arn}: {error}") from error
        invocation = self.lambda_runner.start(function, json.loads(text), log_file(self.layout, "", function))
        threading.Thread(target=invocation.wait, name=f"lambda-{invocation.request_id}", daemon=True).start()
        return invocation.request_id

    # -- what several layers read --------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.layout.root

    @property
    def region(self) -> str:
        return self.deployment.region

    @property
    def account(self) -> str:
        return self.deployment.account

    @property
    def s3_endpoint_url(self) -> str | None:
        return self.service_endpoints.get("S3")

    def execution_dir(self, state_machine_name: str, execution_name: str) -> Path:
        return self.layout.execution_dir(state_machine_name, execution_name)

    def invoke_server_url(self) -> str:
        """The SageMaker runtime URL that serves this state folder's endpoints (a live `serve`, or a
        server thread started once in this process)."""
        from emulator.services.sagemaker.invoke_server import ensure_invoke_server

        return ensure_invoke_server(self.layout, self.account)

    # -- executions ----------------------------------------------------------------------------
    def launch(self, machine: StateMachineSpec, input_value: Any, name: str | None = None, *,
               on_event: Callable[[dict], None] | None = None, abort: threading.Event | None = None) -> ExecutionResult:
        """Run one execution of a deployed state machine to its end, recorded under the layout."""
        name = name or str(uuid.uuid4())
        if on_event is None and self.observer is not None:
            on_event = self.observer(machine, name)
        return self._run(machine, input_value, name, on_event, abort)

    def _run(self, machine: StateMachineSpec, input_value: Any, name: str, on_event: Callable[[dict], None] | None,
             abort: threading.Event | None, resume: Resume | None = None) -> ExecutionResult:
        folder = self.layout.execution_dir(machine.name, name)
        return run_definition(
            machine.definition, input_value, integrations=self.integrations, execution_name=name,
            state_machine_name=machine.name, role_arn=machine.role_arn, time_scale=self.time_scale,
            history_dir=folder, on_event=_checkpointing(folder, on_event, resume.events if resume else []),
            state_machine_arn=machine.arn, abort=abort, virtual_clock=False, resume=resume)

    def resume(self, machine: StateMachineSpec, name: str, waiting: dict, *,
               on_event: Callable[[dict], None] | None = None, abort: threading.Event | None = None) -> ExecutionResult:
        """Continue an execution whose process ended while it waited on the task token ``waiting``
        (a token record): from its checkpointed history, at the waiting state, on the same token. An
        execution that cannot be resumed (its wait is inside a Parallel or Map, its history was not
        checkpointed) ends FAILED with the reason, and its token is closed."""
        folder = self.layout.execution_dir(machine.name, name)
        record = read_execution(folder)
        status = record["status"]
        try:
            start = datetime.fromisoformat(status["startDate"])
            point = Resume.from_history(record["history"], waiting["stateName"], waiting["token"], start)
            return self._run(machine, json.loads(status.get("input") or "{}"), name, on_event, abort, point)
        except ValueError as error:
            self.tokens.close(waiting["token"])
            cause = f"The emulator could not resume this execution after its process ended: {error}"
            failed = {**status, "status": "FAILED", "error": "States.Runtime", "cause": cause,
                      "stopDate": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
            write_history(folder, record["history"], failed, None)
            log.warning("execution %s: %s", name, cause)
            return ExecutionResult("FAILED", None, "States.Runtime", cause, record["history"], status["executionArn"])

    def resume_waiting(self) -> list[str]:
        """Resume, in this process, every execution left waiting on a task token by a process that
        is gone (what `serve` does when it starts); returns their ARNs."""
        return self.stepfunctions.resume_waiting()

    def _launch_for_api(self, machine: StateMachineSpec, input_value: Any, name: str,
                        on_event: Callable[[dict], None], abort: threading.Event) -> ExecutionResult:
        return self.launch(machine, input_value, name, on_event=on_event, abort=abort)

    def _resume_for_api(self, machine: StateMachineSpec, name: str, waiting: dict,
                        on_event: Callable[[dict], None], abort: threading.Event) -> ExecutionResult:
        return self.resume(machine, name, waiting, on_event=on_event, abort=abort)

    def _start_from_rule(self, state_machine_arn: str, input_text: str, rule: RuleSpec) -> ExecutionResult:
        """EventBridge's state machine target: the rule's input must be JSON, as Step Functions requires."""
        machine = self.machines.get(state_machine_arn)
        try:
            value = json.loads(input_text)
        except json.JSONDecodeError as exc:
            raise EventsError(f"rule {rule.name}: the target input is not JSON ({exc}); Step Functions "
                              f"rejects it") from exc
        return self.launch(machine, value)

    def _uploaded(self, uri: str) -> None:
        self.events.object_created(self.s3, uri)

    def _start_in_background(self, state_machine_arn: str, input_text: str, rule: RuleSpec) -> dict:
        """EventBridge's target under `serve`: StartExecution, which runs it on a thread."""
        try:
            return self.stepfunctions.start_execution(stateMachineArn=state_machine_arn, input=input_text)
        except StepFunctionsError as exc:
            raise EventsError(f"rule {rule.name}: StartExecution refused the event: {exc}") from exc

    # -- life ----------------------------------------------------------------------------------
    def close(self) -> None:
        self.stepfunctions.stop_all()
        self.sagemaker.close()  # stops its jobs and joins its worker threads
        for attribute in ("_sagemaker_server", "_sfn_server", "_s3_server"):
            server = getattr(self, attribute)
            if server is not None:
                server.stop()
                setattr(self, attribute, None)

    @property
    def stepfunctions_url(self) -> str | None:
        return self.service_endpoints.get("SFN")

    @property
    def sagemaker_url(self) -> str | None:
        return self.service_endpoints.get("SAGEMAKER")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checkpointing(folder: Path, on_event: Callable[[dict], None] | None,
                   earlier: list[dict]) -> Callable[[dict], None]:
    """``on_event`` that also writes the history so far when a Task starts waiting on a task token,
    so an execution whose process ends while it waits can be resumed from its record on disk."""
    events = list(earlier)

    def record(event: dict) -> None:
        events.append(event)
        details = event.get("taskStartedEventDetails") or {}
        if event["type"] == "TaskStarted" and str(details.get("resource", "")).endswith(callback.SUFFIX):
            write_checkpoint(folder, events)
        if on_event is not None:
            on_event(event)

    return record
