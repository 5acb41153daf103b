"""`python -m emulator report`: the capture report of a locally deployed endpoint, drawn by the same code
the inference state machine's processing job runs (processing_scripts/capture_report.py), from the
local bucket's capture files and the deployed run's schema, into s3://<bucket>/reports/capture/<run>/."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.cloud.deployment import Deployment
from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.serving import model_containers
from emulator.storage.layout import Layout
from emulator.storage.records import RecordStore
from processing_scripts import capture_report

READ_FUNCTION = "InferencePipelineReadRecords"  # its environment names the data bucket and the endpoint
FEATURIZER_SUFFIX = "processed/featurizer/model.tar.gz"  # the read Lambda's rule for the model's run


class ReportUnavailable(Exception):
    """Nothing to draw the report from; the message says what is missing and what to do."""


@dataclass(frozen=True)
class Drawn:
    uri: str  # s3://<bucket>/reports/capture/<run>/
    html: Path  # the local file of report.html
    report: dict[str, Any]


def draw_capture_report(state_dir: Path, stack: str | None = None, run: str | None = None,
                        threshold: float | None = None) -> Drawn:
    layout = Layout.at(state_dir)
    deployment = Deployment.load(layout.root)
    function = next((f for f in deployment.functions if f.logical_id.startswith(READ_FUNCTION)
                     and (stack is None or f.stack == stack)), None)
    if function is None:
        raise ReportUnavailable(f"no inference pipeline is deployed in {layout.root}{f' for stack {stack}' if stack else ''}: "
                                "run `python -m emulator deploy` with this project first")
    bucket, endpoint = function.environment["DATA_BUCKET"], function.environment["ENDPOINT_NAME"]
    records = RecordStore(layout.sagemaker_records, casefold=True)
    served = records.read("endpoints", endpoint)
    if served is None:
        raise ReportUnavailable(f"endpoint {endpoint} does not exist: train and deploy a model first (`python -m "
                                "emulator run --sample`)")
    config = records.read("endpoint-configs", served["EndpointConfigName"]) or {}
    model = records.read("models", config.get("ProductionVariants", [{}])[0].get("ModelName", "")) or {}
    url = (model_containers(model) or [{}])[0].get("ModelDataUrl", "")
    if not url.endswith(FEATURIZER_SUFFIX):
        raise ReportUnavailable(f"endpoint {endpoint}'s model was not deployed by the training pipeline ({url!r}); "
                                "its schema and baseline are unknown")
    s3 = LocalS3(layout.s3_root, deployment.region)
    schema_dir = s3.path(url[: -len(FEATURIZER_SUFFIX)] + "processed/schema/")
    capture_dir = s3.path(f"s3://{bucket}/capture/{endpoint}/")
    run = run or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    destination = f"s3://{bucket}/reports/capture/{run}/"
    with tempfile.TemporaryDirectory(prefix="capture-report-") as folder:
        try:
            report = capture_report.build_report(
                capture_dir, schema_dir, Path(folder), run,
                threshold if threshold is not None else capture_report.confidence.DEFAULT_THRESHOLD)
        except capture_report.ReportError as error:
            raise ReportUnavailable(str(error)) from None
        s3.upload_dir(Path(folder), destination)
    return Drawn(destination, s3.path(destination + "report.html"), report)
