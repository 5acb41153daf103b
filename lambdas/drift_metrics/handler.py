"""Read a monitoring run's drift_summary.json and turn it into CloudWatch metric data.

Event: {"summary_key", "endpoint"}; environment: DATA_BUCKET. Returns {"summary", "drifted_features",
"metric_data"}: ``metric_data`` is PutMetricData's MetricData, which the state machine publishes with
``aws-sdk:cloudwatch:putMetricData`` (a list the template cannot build: the features are the
champion's, known only at run time). Metrics, each with the EndpointName dimension:
DriftedFeatureShare, MaxPSI, CapturedRecords, FeatureDrift (0/1, plus a Feature dimension),
FeaturePSI (per feature), LiveQuality and QualityDegraded (0/1) when labels were joined.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import boto3

NAMESPACE = "MlPipeline/ModelMonitor"
MAX_FEATURE_METRICS = 400  # PutMetricData takes 1,000 datums per call; two per feature plus the totals


class DriftSummaryError(Exception):
    """drift_summary.json is missing or not in the drift job's format."""


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DriftSummaryError(f"{where} is {value!r}, not a finite number: the drift job wrote an unreadable summary")
    return float(value)


def metric_data(summary: dict[str, Any], endpoint: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The pure core: (MetricData, the drifted features' names, sorted)."""
    if not isinstance(summary, dict) or not isinstance(summary.get("features"), dict):
        raise DriftSummaryError("drift_summary.json has no \"features\" object: was it written by processing_scripts/drift.py?")
    dims = [{"Name": "EndpointName", "Value": endpoint}]
    data = [
        {"MetricName": "DriftedFeatureShare", "Dimensions": dims, "Unit": "None",
         "Value": _number(summary.get("drifted_feature_share"), "drifted_feature_share")},
        {"MetricName": "MaxPSI", "Dimensions": dims, "Unit": "None", "Value": _number(summary.get("max_psi"), "max_psi")},
        {"MetricName": "CapturedRecords", "Dimensions": dims, "Unit": "Count",
         "Value": _number(summary.get("record_count"), "record_count")},
    ]
    drifted = sorted(name for name, f in summary["features"].items() if isinstance(f, dict) and f.get("drifted"))
    if len(summary["features"]) > MAX_FEATURE_METRICS:
        raise DriftSummaryError(f"{len(summary['features'])} features: more than the {MAX_FEATURE_METRICS} whose metrics one "
                                "PutMetricData call can carry")
    for name, feature in sorted(summary["features"].items()):
        feature_dims = [*dims, {"Name": "Feature", "Value": str(name)[:255]}]
        data.append({"MetricName": "FeatureDrift", "Dimensions": feature_dims, "Unit": "None",
                     "Value": 1.0 if feature.get("drifted") else 0.0})
        psi = feature.get("psi")
        if isinstance(psi, (int, float)) and not isinstance(psi, bool) and math.isfinite(psi):
            data.append({"MetricName": "FeaturePSI", "Dimensions": feature_dims, "Unit": "None", "Value": float(psi)})
    quality = summary.get("live_quality")
    if isinstance(quality, dict) and quality.get("value") is not None:
        data.append({"MetricName": "LiveQuality", "Dimensions": [*dims, {"Name": "Metric", "Value": str(quality.get("metric"))}],
                     "Unit": "None", "Value": _number(quality["value"], "live_quality.value")})
        data.append({"MetricName": "QualityDegraded", "Dimensions": dims, "Unit": "None",
                     "Value": 1.0 if summary.get("quality_degraded") else 0.0})
    return data, drifted


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = os.environ["DATA_BUCKET"]
    client = boto3.client("s3")
    try:
        body = client.get_object(Bucket=bucket, Key=event["summary_key"])["Body"].read()
    except client.exceptions.NoSuchKey:
        raise DriftSummaryError(f"s3://{bucket}/{event['summary_key']} does not exist: the drift job wrote no summary; "
                                "read its logs") from None
    summary = json.loads(body)
    data, drifted = metric_data(summary, event["endpoint"])
    summary.setdefault("live_quality", None)
    summary["quality_degraded"] = bool(summary.get("quality_degraded"))
    return {"summary": summary, "drifted_features": drifted, "metric_data": data}
