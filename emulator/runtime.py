"""LocalRuntime: what every integration receives — folders, local S3, the deployment, the clock scale.

``LocalRuntime.open`` loads a deployment from a state folder and starts the S3 REST server that
Lambda handlers reach through ``AWS_ENDPOINT_URL_S3``; ``build_integrations`` registers every
service integration the emulator has.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

from emulator.asl.ports import Integrations
from emulator.cloud.assembly import ACCOUNT, DEFAULT_REGION
from emulator.cloud.deploy import PROVISIONED_BY_INTEGRATIONS, Deployment
from emulator.services.s3.server import S3Server
from emulator.services.s3.store import LocalS3
from emulator.storage.layout import Layout

if TYPE_CHECKING:
    from emulator.services.sagemaker.context import SageMakerContext
    from emulator.services.sagemaker.facade import SageMakerBackend

log = logging.getLogger(__name__)


@dataclass
class LocalRuntime:
    state_dir: Path
    project_root: Path
    s3: LocalS3
    s3_endpoint_url: str | None
    deployment: Deployment | None
    region: str = DEFAULT_REGION
    account: str = ACCOUNT
    time_scale: float = 1.0
    # Other local service endpoints handlers may call, by botocore's AWS_ENDPOINT_URL_<SERVICE> suffix
    # (e.g. {"SAGEMAKER": "http://127.0.0.1:8123"}); everything else fails fast, never reaching AWS.
    service_endpoints: dict[str, str] = field(default_factory=dict)
    _s3_server: S3Server | None = field(default=None, repr=False)

    @classmethod
    def open(cls, state_dir: Path, project_root: Path, *, time_scale: float = 1.0,
             deployment: Deployment | None = None, serve_s3: bool = True) -> LocalRuntime:
        """A runtime over ``state_dir``'s deployment (loaded unless given), S3 server started."""
        state_dir = Path(state_dir).resolve()
        if deployment is None:
            deployment = Deployment.load(state_dir)
        s3 = LocalS3(state_dir / "s3", deployment.region)
        server = S3Server(s3).start() if serve_s3 else None
        return cls(state_dir, Path(project_root).resolve(), s3, server.url if server else None, deployment,
                   region=deployment.region, account=deployment.account, time_scale=time_scale,
                   _s3_server=server)

    def close(self) -> None:
        if self._s3_server is not None:
            self._s3_server.stop()
            self._s3_server = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execution_dir(self, state_machine_name: str, execution_name: str) -> Path:
        """Where an execution's history and logs live."""
        return self.state_dir / "executions" / state_machine_name / execution_name


def execution_names(execution_arn: str) -> tuple[str, str] | None:
    """(state machine name, execution name) of an execution ARN, or None for anything else."""
    parts = execution_arn.split(":")
    if len(parts) >= 8 and parts[5] == "execution":
        return parts[6], parts[7]
    return None


def build_integrations(runtime: LocalRuntime) -> Integrations:
    """Every integration the emulator has, registered under its resource keys."""
    from emulator.integrations import lambda_, s3_sdk, sns  # they import this module

    integrations = Integrations()
    lambda_.register(integrations, runtime)
    sns.register(integrations, runtime)
    s3_sdk.register(integrations, runtime)
    # Imported here, not at the top: SageMaker's backend loads botocore's service model, numpy and
    # optuna (~0.35 s), which commands that run no deployment (`asl`, `deploy`, `--help`) never need.
    from emulator.integrations import sagemaker as sagemaker_integrations
    from emulator.services.sagemaker.facade import SageMakerBackend

    backend = SageMakerBackend(sagemaker_context(runtime))
    sagemaker_integrations.register(integrations, backend)
    sagemaker_integrations.attach(runtime, backend)
    provision_resources(runtime, backend)
    return integrations


def sagemaker_context(runtime: LocalRuntime) -> SageMakerContext:
    """What the SageMaker backends are given: the image resolver reads the deployment's cloud
    assembly (CDK image assets), the invoke server is started on first use, per state folder."""
    from emulator.services.sagemaker.context import SageMakerContext
    from emulator.services.sagemaker.images import resolve_image
    from emulator.services.sagemaker.invoke_server import ensure_invoke_server

    layout = Layout.at(runtime.state_dir)
    assembly = runtime.deployment.assembly_dir if runtime.deployment is not None else None
    endpoints = {**({"S3": runtime.s3_endpoint_url} if runtime.s3_endpoint_url else {}), **runtime.service_endpoints}
    return SageMakerContext(
        layout=layout, s3=runtime.s3, project_root=runtime.project_root,
        resolve_image=functools.partial(resolve_image, project_root=runtime.project_root,
                                        assembly_dirs=[Path(assembly)] if assembly else None),
        invoke_server_url=functools.partial(ensure_invoke_server, layout, runtime.account),
        region=runtime.region, account=runtime.account, time_scale=runtime.time_scale,
        service_endpoints=endpoints,
    )


def provision_resources(runtime: LocalRuntime, backend: SageMakerBackend) -> None:
    """Create the SageMaker resources the template declares (model package groups) in the local
    SageMaker backend, once: CloudFormation would have created them at deploy time."""
    from emulator.services.sagemaker.exceptions import ModelPackageGroupExists

    if runtime.deployment is None:
        return
    for record in runtime.deployment.resources:
        if record.type not in PROVISIONED_BY_INTEGRATIONS:
            continue
        request = {key: record.properties[key] for key in ("ModelPackageGroupName", "ModelPackageGroupDescription")
                   if key in record.properties}
        request.setdefault("ModelPackageGroupName", record.arn.rsplit("/", 1)[-1])
        try:
            backend.call("CreateModelPackageGroup", request)
            log.info("created model package group %s", request["ModelPackageGroupName"])
        except ModelPackageGroupExists:
            pass
