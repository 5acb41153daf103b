"""boto3 clients on the local API URLs `serve` injects: the console's only way to the emulator."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

# the URL names `serve` prints and records (emulator/cli/endpoints.py), and each one's boto3 service
SERVICES = {"S3": "s3", "Step Functions": "stepfunctions", "SageMaker": "sagemaker", "CloudWatch": "cloudwatch",
            "CloudWatch Logs": "logs"}


class MissingApi(Exception):
    """The console was asked for an API `serve` does not serve (nothing deployed yet)."""


@dataclass
class Clients:
    urls: dict[str, str]
    region: str

    def __post_init__(self) -> None:
        self._clients: dict[str, Any] = {}
        # one short attempt: the API is local, and a page waiting on retries looks hung
        self._config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                              s3={"addressing_style": "path"})
        self._session = boto3.session.Session()
        self._lock = threading.Lock()  # a Session is not thread-safe; the clients it makes are

    def get(self, api: str) -> Any:
        with self._lock:
            return self._client(api)

    def _client(self, api: str) -> Any:
        if api not in self._clients:
            url = self.urls.get(api)
            if not url:
                raise MissingApi(f"the {api} API is not served: nothing is deployed in this state folder yet "
                                 "(`python -m emulator deploy`, then restart `serve`)")
            # any keys: nothing checks them, and the console never reads the user's real credentials
            self._clients[api] = self._session.client(
                SERVICES[api], endpoint_url=url, region_name=self.region, aws_access_key_id="local",
                aws_secret_access_key="local", config=self._config)
        return self._clients[api]

    @property
    def sfn(self) -> Any:
        return self.get("Step Functions")

    @property
    def sagemaker(self) -> Any:
        return self.get("SageMaker")

    @property
    def s3(self) -> Any:
        return self.get("S3")

    @property
    def cloudwatch(self) -> Any:
        return self.get("CloudWatch")

    @property
    def logs(self) -> Any:
        return self.get("CloudWatch Logs")
