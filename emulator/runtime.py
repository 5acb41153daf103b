"""The composition root: the one place that assembles the emulator from a deployment.

``Runtime.open`` loads what `deploy` recorded, starts the local S3, Step Functions and SageMaker
API servers that handlers reach through ``AWS_ENDPOINT_URL_S3/_SFN/_SAGEMAKER``, builds every
service backend with exactly what it needs, registers the Step Functions integrations over them,
and injects the calls that go upward: the one execution launcher (used by the CLI, `serve`'s Step
Functions API, EventBridge targets, tests and benchmarks) and its continuation after a restart, the
SageMaker invoke server an endpoint needs once it is InService, EventBridge's delivery of SageMaker
events and of Lambda targets, and CloudWatch's alarm evaluation for endpoint rollbacks.

Opening a runtime first settles what emulator processes that died (SIGKILL, a crash) left behind
(``recover``): their job, Lambda and trial process groups are ended, their RUNNING executions are
recorded FAILED with the history they journaled, and the endpoint changes those executions (or any
dead process) made are rolled back, so the endpoint serves what it served before the killed run.
An execution that was waiting on a task token (an approval) is not settled: `serve` resumes it.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from emulator.asl import ExecutionResult, run_definition, teststate
from emulator.asl import validate as asl_validate
from emulator.asl.parse import parse_definition
from emulator.asl.ports import Integrations
from emulator.asl.redrive import Redrive
from emulator.asl.teststate import run_test_state
from emulator.asl.validate import validate_definition
from emulator.aws.arns import execution_arn
from emulator.cloud.deployment import Deployment
from emulator.integrations import callback, cloudwatch_sdk, lambda_, s3_sdk, sagemaker_runtime, sfn_sdk, sns
from emulator.integrations.lambda_ import log_file
from emulator.services.cloudwatch import Alarm, CloudWatchBackend, alarms_from_resources
from emulator.services.cloudwatch_server import CloudWatchServer
from emulator.services.eventbridge import EventBus, EventsError, RuleSpec, RuleTargetSpec
from emulator.services.lambda_.functions import Functions, ResourceNotFoundException
from emulator.services.lambda_.invoke import LambdaRunner
from emulator.services.logs import LogsBackend
from emulator.services.logs_server import LogsServer
from emulator.services.s3.server import S3Server
from emulator.services.s3.store import LocalS3
from emulator.services.sns import SnsBackend
from emulator.services.stepfunctions import exceptions as sfn_errors
from emulator.services.stepfunctions.backend import StepFunctionsBackend
from emulator.services.stepfunctions.exceptions import StepFunctionsError
from emulator.services.stepfunctions.machines import StateMachines, StateMachineSpec
from emulator.services.stepfunctions.server import StepFunctionsServer
from emulator.services.stepfunctions.tokens import TaskTokens
from emulator.storage import executions as execution_records
from emulator.storage.layout import Layout
from emulator.storage.processes import ProcessGroups

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
    _cloudwatch_server: CloudWatchServer | None = field(default=None, repr=False)
    _logs_server: LogsServer | None = field(default=None, repr=False)

    @classmethod
    def open(cls, state_dir: Path, project_root: Path, *, time_scale: float = 1.0,
             deployment: Deployment | None = None, serve_s3: bool = True, uploads_trigger: bool = False,
             s3_port: int = 0, stepfunctions_port: int = 0, sagemaker_port: int = 0, cloudwatch_port: int = 0,
             logs_port: int = 0, host: str = "127.0.0.1") -> Runtime:
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
            runtime._cloudwatch_server = CloudWatchServer(runtime.cloudwatch, host, cloudwatch_port).start()
            runtime._logs_server = LogsServer(LogsBackend(layout, runtime.region, runtime.account), host, logs_port).start()
            runtime.service_endpoints.update({"S3": runtime._s3_server.url, "SFN": runtime._sfn_server.url,
                                              "SAGEMAKER": runtime._sagemaker_server.url,
                                              "CLOUDWATCH": runtime._cloudwatch_server.url,
                                              "CLOUDWATCH_LOGS": runtime._logs_server.url})
        runtime.recover()
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
            redrive=self._redrive_for_api, tokens=self.tokens, resume=self._resume_for_api)
        self.stepfunctions.settle = self.settle_execution
        self.integrations = Integrations()
        lambda_.register(self.integrations, self.functions, self.lambda_runner)
        sns.register(self.integrations, self.sns)
        callback.register(self.integrations, self.tokens)
        s3_sdk.register(self.integrations, self.s3)
        s3_sdk.register_map_run(self.integrations, self.s3)  # Distributed Map: ItemReader, ResultWriter
        sfn_sdk.register(self.integrations, self.stepfunctions)
        cloudwatch_sdk.register(self.integrations, self.cloudwatch)
        # Imported here, not at the top: SageMaker's backend loads botocore's service model, numpy and
        # optuna (~0.35 s), which commands that open no runtime (`asl`, `deploy`, `--help`) never need.
        from emulator.integrations import sagemaker as sagemaker_integration
        from emulator.services.sagemaker.facade import SageMakerBackend

        self.sagemaker: SageMakerBackend = SageMakerBackend(self.sagemaker_context())
        sagemaker_integration.register(self.integrations, self.sagemaker)
        # InvokeEndpoint over HTTP, to the runtime API that serves this state folder's endpoints
        sagemaker_runtime.register(self.integrations, self.invoke_server_url)
        self._provision()

    def sagemaker_context(self) -> SageMakerContext:
        """What the SageMaker backends are given: images resolve against every cloud assembly deployed
        here (CDK image assets); the invoke server is started on first use, per state folder."""
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
        return alarms_from_resources(self.deployment.resources)

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

    # -- what dead emulator processes left ---------------------------------------------------------
    def recover(self) -> list[dict]:
        """Settle what emulator processes that died left behind; the executions recorded FAILED."""
        ProcessGroups(self.layout.process_groups_dir).reap()
        settled = [record for folder in execution_records.orphans(self.layout.executions_root)
                   if (record := self.settle_execution(folder)) is not None]
        for name in self.sagemaker.hosting.recover():
            log.warning("endpoint %s: a change left in progress by a process that died was rolled back", name)
        return settled

    def settle_execution(self, folder: Path) -> dict | None:
        """An execution whose owner process died: its process groups ended, its record FAILED with its
        journaled history, the endpoint changes it made rolled back. The settled status, or None."""
        ProcessGroups(self.layout.process_groups_dir).reap()
        if self._waiting_on_token(folder) is not None:
            return None  # it waits for an answer, not for its process: `serve` resumes it
        settled = execution_records.settle_orphan(
            folder, "it was killed (SIGKILL) or crashed; the job, Lambda and trial processes it had started were "
                    "ended, and the endpoint changes it made rolled back")
        if settled is None:
            return None
        log.warning("execution %s: its emulator process (pid %s) died while it ran; recorded FAILED",
                    settled["name"], (settled.get("owner") or {}).get("pid", "?"))
        for endpoint, config in _endpoint_changes(execution_records.read_journal(folder)):
            done = self.sagemaker.hosting.revert_change(endpoint, config, f"the execution {settled['name']} that "
                                                                          f"requested it died before it ended")
            if done:
                log.warning("endpoint %s: the change to %s by the dead execution %s %s", endpoint, config,
                            settled["name"], done)
        return settled

    def _waiting_on_token(self, folder: Path) -> dict | None:
        """The orphaned task token an execution was waiting on when its process ended (its journal
        still in that state), or None."""
        for record in self.tokens.orphans():
            if (record["stateMachineName"], record["executionName"]) != (folder.parent.name, folder.name):
                continue
            entered = [e for e in execution_records.read_journal(folder) if "stateEnteredEventDetails" in e]
            if entered and entered[-1]["type"] == "TaskStateEntered" and \
                    entered[-1]["stateEnteredEventDetails"]["name"] == record["stateName"]:
                return record
        return None

    # -- executions ----------------------------------------------------------------------------
    def launch(self, machine: StateMachineSpec, input_value: Any, name: str | None = None, *,
               on_event: Callable[[dict], None] | None = None, abort: threading.Event | None = None,
               redrive: bool = False) -> ExecutionResult:
        """Run one execution of a deployed state machine to its end, recorded under the layout.
        ``redrive``: continue the failed execution ``name`` from its record instead (same ARN, the
        definition and input it ran with; ``input_value`` is ignored)."""
        name = name or str(uuid.uuid4())
        folder = self.layout.execution_dir(machine.name, name)
        if not redrive and (folder / execution_records.STATUS).is_file():
            raise sfn_errors.ExecutionAlreadyExists(execution_arn(machine.arn, name))
        if on_event is None and self.observer is not None:
            on_event = self.observer(machine, name)
        try:
            result = run_definition(
                machine.definition, input_value, integrations=self.integrations, execution_name=name,
                state_machine_name=machine.name, role_arn=machine.role_arn, time_scale=self.time_scale,
                history_dir=folder, on_event=on_event, state_machine_arn=machine.arn, abort=abort, virtual_clock=False,
                redrive=Redrive.load(folder) if redrive else None)
        except execution_records.ExecutionExists:  # claimed by another process between the check and the run
            raise sfn_errors.ExecutionAlreadyExists(execution_arn(machine.arn, name)) from None
        self._release_job_data(result)
        return result

    def _release_job_data(self, result: ExecutionResult) -> None:
        """The default retention policy, once an execution has ended: its jobs' folders keep their logs
        and configuration, their data copies go (README, "Disk use")."""
        from emulator.services.sagemaker import retention

        try:
            freed = retention.release_job_data(self.layout, retention.jobs_in_history(result.history))
        except OSError:
            log.exception("could not release the job folders of %s", result.execution_arn)
            return
        if freed:
            log.debug("released %d bytes of job data of %s", freed, result.execution_arn)

    def resume(self, machine: StateMachineSpec, name: str, waiting: dict, *,
               on_event: Callable[[dict], None] | None = None, abort: threading.Event | None = None) -> ExecutionResult:
        """Continue an execution whose process ended while it waited on the task token ``waiting`` (its
        token record): at that state, on the same token, from its journal. One that cannot go on (its
        wait is inside a Parallel or Map, its journal does not show the wait) is settled FAILED."""
        folder = self.layout.execution_dir(machine.name, name)
        try:
            if waiting["stateName"] not in parse_definition(machine.definition).states:
                raise ValueError(f"state {waiting['stateName']!r} is not at the top level of {machine.name}: only a "
                                 f"top-level wait can be resumed")
            point = Redrive.continuing(folder, waiting["stateName"], waiting["token"], machine.definition)
        except ValueError as error:
            self.tokens.close(waiting["token"])
            settled = execution_records.settle_orphan(folder, f"it could not be resumed after its process ended: {error}")
            log.warning("execution %s: %s", name, error)
            return ExecutionResult("FAILED", None, execution_records.ORPHANED, (settled or {}).get("cause"), [],
                                   execution_arn(machine.arn, name))
        if on_event is None and self.observer is not None:
            on_event = self.observer(machine, name)
        return run_definition(
            point.definition, None, integrations=self.integrations, execution_name=name,
            state_machine_name=machine.name, role_arn=machine.role_arn, time_scale=self.time_scale,
            history_dir=folder, on_event=on_event, state_machine_arn=machine.arn, abort=abort, virtual_clock=False,
            redrive=point)

    def resume_waiting(self) -> list[str]:
        """Resume, in this process, every execution left waiting on a task token by a process that
        is gone (what `serve` does when it starts); returns their ARNs."""
        return self.stepfunctions.resume_waiting()

    def _resume_for_api(self, machine: StateMachineSpec, name: str, waiting: dict,
                        on_event: Callable[[dict], None], abort: threading.Event) -> ExecutionResult:
        return self.resume(machine, name, waiting, on_event=on_event, abort=abort)

    def _launch_for_api(self, machine: StateMachineSpec, input_value: Any, name: str,
                        on_event: Callable[[dict], None], abort: threading.Event) -> ExecutionResult:
        return self.launch(machine, input_value, name, on_event=on_event, abort=abort)

    def _redrive_for_api(self, machine: StateMachineSpec, name: str, on_event: Callable[[dict], None],
                         abort: threading.Event) -> ExecutionResult:
        return self.launch(machine, None, name, on_event=on_event, abort=abort, redrive=True)

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
        for attribute in ("_logs_server", "_cloudwatch_server", "_sagemaker_server", "_sfn_server", "_s3_server"):
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

    @property
    def cloudwatch_url(self) -> str | None:
        return self.service_endpoints.get("CLOUDWATCH")

    @property
    def logs_url(self) -> str | None:
        return self.service_endpoints.get("CLOUDWATCH_LOGS")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ENDPOINT_CHANGES = ("createEndpoint", "updateEndpoint")


def _endpoint_changes(history: list[dict]) -> list[tuple[str, str]]:
    """(endpoint, endpoint config) of every CreateEndpoint/UpdateEndpoint task the history scheduled
    (optimized or AWS SDK integration), newest first: what to roll back when its execution died."""
    changes = []
    for event in reversed(history):
        details = event.get("taskScheduledEventDetails") or {}
        if "sagemaker" not in str(details.get("resourceType")) or details.get("resource") not in _ENDPOINT_CHANGES:
            continue
        try:
            parameters = json.loads(details.get("parameters") or "{}")
        except json.JSONDecodeError:
            continue
        if isinstance(parameters.get("EndpointName"), str) and isinstance(parameters.get("EndpointConfigName"), str):
            changes.append((parameters["EndpointName"], parameters["EndpointConfigName"]))
    return changes
