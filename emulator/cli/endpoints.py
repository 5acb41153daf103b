"""The local AWS endpoints a `serve` process answers, recorded for `python -m emulator env`, and
printed as the AWS_ENDPOINT_URL_* lines that make the AWS CLI, boto3 and the SageMaker SDK use them."""

from __future__ import annotations

import os
from pathlib import Path

from emulator.aws.arns import DEFAULT_REGION
from emulator.storage.layout import Layout
from emulator.storage.records import pid_alive, read_json, write_json_atomic

# botocore's service id of each API, upper-cased with "_" for spaces: AWS_ENDPOINT_URL_<ID>
ENV_NAMES = {"S3": "S3", "Step Functions": "SFN", "SageMaker": "SAGEMAKER", "SageMaker runtime": "SAGEMAKER_RUNTIME",
             "CloudWatch": "CLOUDWATCH", "CloudWatch Logs": "CLOUDWATCH_LOGS"}


def _record(layout: Layout) -> Path:
    return layout.root / "serve.json"


def advertise(layout: Layout, urls: dict[str, str], region: str) -> None:
    write_json_atomic(_record(layout), {"pid": os.getpid(), "urls": urls, "region": region})


def withdraw(layout: Layout) -> None:
    record = read_json(_record(layout))
    if record and record.get("pid") == os.getpid():
        _record(layout).unlink(missing_ok=True)


def live_endpoints(layout: Layout) -> tuple[dict[str, str], str] | None:
    """(urls by API, region) of the live `serve` process of this state folder, if there is one."""
    record = read_json(_record(layout))
    if not record or not pid_alive(record.get("pid")):
        return None
    return record["urls"], record.get("region", DEFAULT_REGION)


def env_lines(urls: dict[str, str], region: str) -> list[str]:
    lines = [f"export AWS_ENDPOINT_URL_{ENV_NAMES[api]}={url}" for api, url in urls.items() if api in ENV_NAMES]
    lines.append(f"export AWS_DEFAULT_REGION={region} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
                 "  # any keys: nothing checks them")
    return lines
