"""The served CloudWatch metrics API, through boto3 (Smithy RPC v2 CBOR, what botocore sends) and the
awsJson1_0 protocol: PutMetricData, ListMetrics with its filters, GetMetricData per period and
statistic, and errors in the shape botocore raises."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.services.cloudwatch import CloudWatchBackend
from emulator.services.cloudwatch_server import SERVICE, CloudWatchServer

NOW = dt.datetime(2026, 1, 1, 12, 0, 30, tzinfo=dt.UTC)
DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]


@pytest.fixture
def api(tmp_path):
    backend = CloudWatchBackend(tmp_path, clock=NOW.timestamp)
    server = CloudWatchServer(backend).start()
    client = boto3.client("cloudwatch", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    yield backend, server, client
    server.stop()


def test_datapoints_put_through_the_api_come_back_per_period(api):
    _, _, cw = api
    base = NOW - dt.timedelta(minutes=3)
    cw.put_metric_data(Namespace="Pipeline", MetricData=[
        {"MetricName": "Latency", "Dimensions": DIMS, "Timestamp": base + dt.timedelta(seconds=s), "Value": v}
        for s, v in ((0, 10.0), (10, 30.0), (70, 5.0), (130, 7.0), (135, 9.0))])
    query = {"Id": "lat", "MetricStat": {"Metric": {"Namespace": "Pipeline", "MetricName": "Latency", "Dimensions": DIMS},
                                         "Period": 60, "Stat": "Average"}}
    answer = cw.get_metric_data(MetricDataQueries=[query], StartTime=NOW - dt.timedelta(hours=1), EndTime=NOW,
                                ScanBy="TimestampAscending")
    [result] = answer["MetricDataResults"]
    assert (result["Id"], result["StatusCode"]) == ("lat", "Complete")
    assert result["Values"] == [20.0, 5.0, 8.0]
    assert [t.astimezone(dt.UTC) for t in result["Timestamps"]] == [
        dt.datetime(2026, 1, 1, 11, 57, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 11, 58, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, 11, 59, tzinfo=dt.UTC)]  # periods aligned on the minute, as CloudWatch aligns them
    newest_first = cw.get_metric_data(MetricDataQueries=[{**query, "MetricStat": {**query["MetricStat"], "Stat": "Maximum"}}],
                                      StartTime=NOW - dt.timedelta(hours=1), EndTime=NOW)["MetricDataResults"][0]
    assert newest_first["Values"] == [9.0, 5.0, 30.0]


def test_list_metrics_filters_by_namespace_name_and_dimension(api):
    backend, _, cw = api
    backend.metrics.put("AWS/SageMaker", "Invocations", {"EndpointName": "ep", "VariantName": "AllTraffic"}, 1.0)
    backend.metrics.put("AWS/SageMaker", "Invocations", {"EndpointName": "other", "VariantName": "AllTraffic"}, 1.0)
    backend.metrics.put("AWS/SageMaker", "ModelLatency", {"EndpointName": "ep", "VariantName": "AllTraffic"}, 900.0)
    backend.metrics.put("Pipeline", "Rows", {}, 3.0)
    names = lambda **kw: sorted((m["Namespace"], m["MetricName"], tuple(d["Value"] for d in m["Dimensions"]))
                                for m in cw.list_metrics(**kw)["Metrics"])
    assert len(names()) == 4
    assert names(Namespace="AWS/SageMaker", MetricName="Invocations") == [
        ("AWS/SageMaker", "Invocations", ("ep", "AllTraffic")), ("AWS/SageMaker", "Invocations", ("other", "AllTraffic"))]
    assert names(Dimensions=[{"Name": "EndpointName", "Value": "ep"}]) == [
        ("AWS/SageMaker", "Invocations", ("ep", "AllTraffic")), ("AWS/SageMaker", "ModelLatency", ("ep", "AllTraffic"))]
    assert len(names(Dimensions=[{"Name": "EndpointName"}])) == 3  # any value of that dimension


def test_metric_math_and_bad_requests_are_refused_in_the_api_error_shape(api):
    *_, cw = api
    with pytest.raises(ClientError) as caught:
        cw.get_metric_data(MetricDataQueries=[{"Id": "m", "Expression": "SUM(METRICS())"}],
                           StartTime=NOW - dt.timedelta(minutes=5), EndTime=NOW)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "Expression" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        cw.get_metric_data(MetricDataQueries=[{"Id": "m", "MetricStat": {
            "Metric": {"Namespace": "N", "MetricName": "M"}, "Period": 60, "Stat": "Median"}}],
            StartTime=NOW - dt.timedelta(minutes=5), EndTime=NOW)
    assert "Median" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "x", "Value": 1.0}])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_the_json_protocol_answers_the_same_operations(api):
    backend, server, _ = api
    backend.metrics.put("Pipeline", "Rows", {}, 3.0, timestamp=NOW.timestamp() - 30)

    def call(operation: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(server.url + "/", data=json.dumps(body).encode(), method="POST", headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"{SERVICE}.{operation}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, listed = call("ListMetrics", {"Namespace": "Pipeline"})
    assert (status, listed["Metrics"]) == (200, [{"Namespace": "Pipeline", "MetricName": "Rows", "Dimensions": []}])
    status, data = call("GetMetricData", {"StartTime": NOW.timestamp() - 600, "EndTime": NOW.timestamp(), "MetricDataQueries": [
        {"Id": "r", "MetricStat": {"Metric": {"Namespace": "Pipeline", "MetricName": "Rows"}, "Period": 300, "Stat": "Sum"}}]})
    assert status == 200 and data["MetricDataResults"][0]["Values"] == [3.0]
    status, error = call("DeleteDashboards", {})
    assert (status, error["__type"]) == (400, "UnknownOperationException")
