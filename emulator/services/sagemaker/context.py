"""SageMakerContext: everything the SageMaker backends are given, typed and built in one place
(emulator/runtime.py in a run, one fixture in the tests); nothing here reads the deployment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emulator.aws.arns import ACCOUNT, DEFAULT_REGION, sagemaker_arn
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.images import Launcher
from emulator.storage.layout import Layout
from emulator.storage.records import RecordStore


@dataclass(frozen=True)
class SageMakerContext:
    layout: Layout
    s3: LocalS3
    project_root: Path
    # image URI -> how to launch it locally; the runtime builds it over the deployment's cloud
    # assembly (CDK image assets), so no backend reads CloudFormation.
    resolve_image: Callable[[str], Launcher]
    # the base URL that answers InvokeEndpoint for this layout, started on first call; injected
    # because starting a server is the runtime's decision, not hosting's.
    invoke_server_url: Callable[[], str]
    region: str = DEFAULT_REGION
    account: str = ACCOUNT
    time_scale: float = 1.0  # simulated waits (traffic-shift intervals) are multiplied by this
    # local service endpoints by botocore's AWS_ENDPOINT_URL_<SERVICE> suffix: a job process gets
    # them as environment variables, so an SDK call inside a job never reaches AWS.
    service_endpoints: Mapping[str, str] = field(default_factory=dict)
    # the default event bus's PutEvents (EventBridge rules on SageMaker's events: a model package
    # state change); injected, because routing an event to its targets is above this layer.
    emit_event: Callable[[dict], object] | None = None
    # what the hosting backend asks during a blue/green update's baking period: the alarm names in
    # ALARM now (CloudWatch evaluates them over the endpoint's metrics); None: no alarm is evaluated.
    alarms_in_alarm: Callable[[list[str]], list[str]] | None = None

    def arn(self, kind: str, name: str) -> str:
        return sagemaker_arn(kind, name, region=self.region, account=self.account)

    def records(self) -> RecordStore:
        """The store every SageMaker record lives in (names are case-insensitive in SageMaker)."""
        return RecordStore(self.layout.sagemaker_records, casefold=True)

    def work_dir(self, kind: str, name: str) -> Path:
        """A job's folder (its /opt/ml and logs); names are case-insensitive, so is the folder."""
        return self.layout.sagemaker_work_dir(kind, name.lower())

    def endpoint_env(self) -> dict[str, str]:
        """A job's AWS settings: the local services' URLs and, with them, credentials the local services
        accept (on AWS the job's role provides them), so boto3 in a job signs its calls."""
        env = {f"AWS_ENDPOINT_URL_{service.upper()}": url for service, url in self.service_endpoints.items()}
        if env:
            env.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": self.region})
        return env
