"""What each page shows, read through the local APIs with boto3 and shaped as JSON for the page.

Everything is discovered, never configured: the state machines ListStateMachines returns, the
endpoints ListEndpoints returns, the registry's groups, and the reports as objects under known
prefixes of every bucket. A pipeline, report or model package that lands later shows up without a
change here.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from typing import Any

from botocore.exceptions import ClientError

from emulator.console.clients import Clients

# where the pipelines write the reports a person reads (DESIGN.md's S3 layout)
REPORT_PREFIXES = {"capture": "reports/capture/", "drift": "monitoring/"}
# the files of a training run that explain its models (beside evaluation.json, under runs/<execution>/)
RUN_FILES = ("evaluation", "leaderboard", "explain", "shap")
JOB_DESCRIBE = {"processing": ("describe_processing_job", "ProcessingJobName"),
                "training": ("describe_training_job", "TrainingJobName"),
                "tuning": ("describe_hyper_parameter_tuning_job", "HyperParameterTuningJobName"),
                "transform": ("describe_transform_job", "TransformJobName")}
ENDPOINT_METRICS = (("invocations", "Invocations", "Sum"), ("errors4xx", "Invocation4XXErrors", "Sum"),
                    ("errors5xx", "Invocation5XXErrors", "Sum"), ("latency", "ModelLatency", "Average"))
MAX_ROWS = 500  # executions and history events a page reads at most


def _pages(method: Any, key: str, limit: int = MAX_ROWS, **request: Any) -> list:
    rows: list = []
    while True:
        answer = method(**request)
        rows += answer.get(key, [])
        token = answer.get("nextToken") or answer.get("NextToken")
        if not token or len(rows) >= limit:
            return rows[:limit]
        request["nextToken" if "nextToken" in answer else "NextToken"] = token


# -- Step Functions -------------------------------------------------------------------------------
def state_machines(c: Clients) -> list[dict]:
    rows = []
    for machine in _pages(c.sfn.list_state_machines, "stateMachines"):
        described = c.sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
        definition = json.loads(described["definition"])
        latest = c.sfn.list_executions(stateMachineArn=machine["stateMachineArn"], maxResults=1)["executions"]
        rows.append({"arn": machine["stateMachineArn"], "name": machine["name"], "type": machine["type"],
                     "states": _count_states(definition.get("States", {})), "comment": definition.get("Comment", ""),
                     "latest": latest[0] if latest else None})
    return rows


def _count_states(states: dict) -> int:
    total = 0
    for state in states.values():
        total += 1
        for branch in state.get("Branches", []):
            total += _count_states(branch.get("States", {}))
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            total += _count_states(inner.get("States", {}))
    return total


def state_machine(c: Clients, arn: str) -> dict:
    described = c.sfn.describe_state_machine(stateMachineArn=arn)
    definition = json.loads(described["definition"])
    return {"arn": arn, "name": described["name"], "type": described["type"], "roleArn": described.get("roleArn"),
            "definition": definition, "sampleInput": sample_input(c, arn, definition)}


def sample_input(c: Clients, arn: str, definition: dict) -> dict:
    """What "Start execution" prefills: the newest execution's input, else the configured defaults a
    Pass state of the definition carries (``Parameters.defaults``) with the newest upload under raw/."""
    newest = c.sfn.list_executions(stateMachineArn=arn, maxResults=1)["executions"]
    if newest:
        text = c.sfn.describe_execution(executionArn=newest[0]["executionArn"]).get("input") or "{}"
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    defaults = next((state["Parameters"]["defaults"] for state in definition.get("States", {}).values()
                     if isinstance(state.get("Parameters"), dict) and isinstance(state["Parameters"].get("defaults"), dict)),
                    None)
    if defaults is None:
        return {}
    upload = _newest_object(c, "raw/")
    return {"input_s3_uri": upload or "s3://<bucket>/raw/<your table>.csv", **defaults}


def _newest_object(c: Clients, prefix: str) -> str | None:
    newest = None
    for bucket in c.s3.list_buckets().get("Buckets", []):
        for obj in _pages(c.s3.list_objects_v2, "Contents", Bucket=bucket["Name"], Prefix=prefix):
            if not obj["Key"].endswith("/") and (newest is None or obj["LastModified"] > newest[0]):
                newest = (obj["LastModified"], f"s3://{bucket['Name']}/{obj['Key']}")
    return newest[1] if newest else None


def executions(c: Clients, arn: str, status: str | None = None) -> list[dict]:
    request: dict[str, Any] = {"stateMachineArn": arn}
    if status:
        request["statusFilter"] = status
    return _pages(c.sfn.list_executions, "executions", **request)


def execution(c: Clients, arn: str) -> dict:
    described = c.sfn.describe_execution(executionArn=arn)
    machine = c.sfn.describe_state_machine(stateMachineArn=described["stateMachineArn"])
    history = _pages(c.sfn.get_execution_history, "events", limit=10_000, executionArn=arn)
    return {"execution": described, "definition": json.loads(machine["definition"]), "machineName": machine["name"],
            "events": history}


# -- SageMaker ---------------------------------------------------------------------------------------
def job(c: Clients, kind: str, name: str) -> dict:
    if kind not in JOB_DESCRIBE:
        raise ValueError(f"job kind {kind!r} is not one of {sorted(JOB_DESCRIBE)}")
    method, field = JOB_DESCRIBE[kind]
    return getattr(c.sagemaker, method)(**{field: name})


LOG_GROUPS = {"processing": "/aws/sagemaker/ProcessingJobs", "training": "/aws/sagemaker/TrainingJobs",
              "transform": "/aws/sagemaker/TransformJobs"}
LOG_TAIL = 60  # lines


def job_log(c: Clients, kind: str, name: str) -> dict:
    """The tail of the job's log stream(s), as `aws logs get-log-events` reads them."""
    group = LOG_GROUPS.get(kind)
    if group is None:
        return {"group": None, "streams": []}  # a tuning job logs through its training jobs
    streams = c.logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{name}/")["logStreams"]
    return {"group": group, "streams": [
        {"name": s["logStreamName"], "events": [e["message"] for e in c.logs.get_log_events(
            logGroupName=group, logStreamName=s["logStreamName"], startFromHead=False, limit=LOG_TAIL)["events"]]}
        for s in streams]}


def endpoints(c: Clients, minutes: int = 60, period: int = 60) -> list[dict]:
    rows = []
    for summary in _pages(c.sagemaker.list_endpoints, "Endpoints"):
        endpoint = c.sagemaker.describe_endpoint(EndpointName=summary["EndpointName"])
        try:
            config = c.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        except ClientError:
            config = {"ProductionVariants": []}
        models = {v["VariantName"]: v.get("ModelName") for v in config.get("ProductionVariants", [])}
        variants = [{"name": v["VariantName"], "weight": v.get("CurrentWeight"), "desiredWeight": v.get("DesiredWeight"),
                     "instances": v.get("CurrentInstanceCount"), "model": models.get(v["VariantName"]),
                     "status": [s.get("Status") for s in v.get("VariantStatus", [])]}
                    for v in endpoint.get("ProductionVariants", [])]
        rows.append({"name": endpoint["EndpointName"], "status": endpoint["EndpointStatus"],
                     "config": endpoint.get("EndpointConfigName"), "failureReason": endpoint.get("FailureReason"),
                     "created": endpoint.get("CreationTime"), "modified": endpoint.get("LastModifiedTime"),
                     "variants": variants, "metrics": endpoint_metrics(c, endpoint["EndpointName"],
                                                                       [v["name"] for v in variants], minutes, period)})
    return rows


def endpoint_metrics(c: Clients, endpoint: str, variants: list[str], minutes: int, period: int) -> dict:
    """Each variant's invocations, errors and latency per period over the last ``minutes``
    (GetMetricData on the AWS/SageMaker metrics the invoke server records)."""
    if "CloudWatch" not in c.urls:
        return {}
    end = dt.datetime.now(dt.UTC)
    queries = [{"Id": f"m{i}_{j}", "Label": f"{variant}|{key}",
                "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric,
                                          "Dimensions": [{"Name": "EndpointName", "Value": endpoint},
                                                         {"Name": "VariantName", "Value": variant}]},
                               "Period": period, "Stat": stat}}
               for i, variant in enumerate(variants) for j, (key, metric, stat) in enumerate(ENDPOINT_METRICS)]
    if not queries:
        return {}
    answer = c.cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=end - dt.timedelta(minutes=minutes),
                                          EndTime=end, ScanBy="TimestampAscending")
    found: dict[str, dict] = {}
    for result in answer["MetricDataResults"]:
        variant, key = result["Label"].split("|", 1)
        found.setdefault(variant, {})[key] = [[t.isoformat(), v] for t, v in zip(result["Timestamps"], result["Values"], strict=True)]
    return {"period": period, "minutes": minutes, "variants": found}


def registry(c: Clients) -> list[dict]:
    groups = []
    for group in _pages(c.sagemaker.list_model_package_groups, "ModelPackageGroupSummaryList"):
        name = group["ModelPackageGroupName"]
        packages = []
        for summary in _pages(c.sagemaker.list_model_packages, "ModelPackageSummaryList", ModelPackageGroupName=name):
            described = c.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            packages.append({"arn": summary["ModelPackageArn"], "version": described.get("ModelPackageVersion"),
                             "status": described.get("ModelApprovalStatus"), "created": described.get("CreationTime"),
                             "description": described.get("ModelPackageDescription", ""),
                             "approvalDescription": described.get("ApprovalDescription", ""),
                             "metadata": described.get("CustomerMetadataProperties", {}),
                             "files": run_files(c, described)})
        packages.sort(key=lambda p: p["version"] or 0, reverse=True)
        groups.append({"name": name, "description": group.get("ModelPackageGroupDescription", ""), "packages": packages})
    return groups


def run_files(c: Clients, package: dict) -> list[dict]:
    """The evaluation, leaderboard and explanation files of the run that registered ``package``:
    its ModelQuality report's folder and the run folder above it (runs/<execution>/)."""
    uri = (((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
    if not uri or not uri.startswith("s3://"):
        return []
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    parts = key.split("/")
    run = "/".join(parts[:2]) + "/" if len(parts) > 2 and parts[0] == "runs" else posixpath.dirname(key) + "/"
    files = []
    for obj in _pages(c.s3.list_objects_v2, "Contents", limit=2000, Bucket=bucket, Prefix=run):
        name = posixpath.basename(obj["Key"]).lower()
        if name.endswith((".json", ".png", ".html")) and any(word in name for word in RUN_FILES):
            entry = {"bucket": bucket, "key": obj["Key"], "size": obj["Size"]}
            if name.endswith(".json") and obj["Size"] <= 256 * 1024:
                entry["json"] = _json_object(c, bucket, obj["Key"])
            files.append(entry)
    return files


def _json_object(c: Clients, bucket: str, key: str) -> Any:
    try:
        return json.loads(c.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, json.JSONDecodeError, UnicodeDecodeError) as error:
        return {"unreadable": str(error)}


# -- S3 ----------------------------------------------------------------------------------------------
def reports(c: Clients) -> list[dict]:
    """The capture and drift reports as they exist: one row per run folder under each prefix."""
    runs: dict[tuple, dict] = {}
    for bucket in c.s3.list_buckets().get("Buckets", []):
        for kind, prefix in REPORT_PREFIXES.items():
            for obj in _pages(c.s3.list_objects_v2, "Contents", limit=5000, Bucket=bucket["Name"], Prefix=prefix):
                rest = obj["Key"][len(prefix):]
                if "/" not in rest:
                    continue
                run = rest.split("/", 1)[0]
                row = runs.setdefault((kind, bucket["Name"], run), {"kind": kind, "bucket": bucket["Name"], "run": run,
                                                                    "prefix": f"{prefix}{run}/", "files": [],
                                                                    "modified": obj["LastModified"]})
                row["files"].append({"key": obj["Key"], "size": obj["Size"]})
                row["modified"] = max(row["modified"], obj["LastModified"])
    for row in runs.values():
        summary = next((f["key"] for f in row["files"] if f["key"].endswith(("drift_summary.json", "summary.json"))), None)
        if summary:
            row["summary"] = _json_object(c, row["bucket"], summary)
    return sorted(runs.values(), key=lambda r: r["modified"], reverse=True)


def s3_object(c: Clients, bucket: str, key: str) -> tuple[bytes, str]:
    answer = c.s3.get_object(Bucket=bucket, Key=key)
    return answer["Body"].read(), answer.get("ContentType") or "application/octet-stream"
