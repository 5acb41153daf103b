"""The served CloudWatch Logs API over the jobs' log files, through boto3: the SageMaker log groups,
one stream per job, GetLogEvents' tail, head and tokens, and errors in the API's shape."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.services.logs import LogsBackend
from emulator.services.logs_server import LogsServer
from emulator.storage.layout import Layout

GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def logs(tmp_path):
    layout = Layout.at(tmp_path)
    for job, lines in (("run-1-training", [f"[{i}]#011validation-rmse:{2.5 - i / 100:.3f}" for i in range(25)]),
                       ("run-2-training", ["starting"])):
        folder = layout.sagemaker_work_dir("training-jobs", job) / "logs"
        folder.mkdir(parents=True)
        (folder / "stdout.log").write_text("\n".join(lines) + "\n")
        (folder / "stderr.log").write_text("WARNING: a warning\n" if job == "run-1-training" else "")
    server = LogsServer(LogsBackend(layout)).start()
    yield boto3.client("logs", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    server.stop()


def test_each_job_is_a_stream_of_its_group(logs):
    groups = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/")["logGroups"]]
    assert GROUP in groups
    streams = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["run-1-training/algo-1", "run-2-training/algo-1"]
    only = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="run-2")["logStreams"]
    assert [s["logStreamName"] for s in only] == ["run-2-training/algo-1"]


def test_get_log_events_reads_the_tail_the_head_and_pages(logs):
    stream = "run-1-training/algo-1"
    tail = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, limit=3)
    assert [e["message"] for e in tail["events"]] == ["[23]#011validation-rmse:2.270", "[24]#011validation-rmse:2.260",
                                                      "WARNING: a warning"]
    head = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True, limit=2)
    assert [e["message"] for e in head["events"]] == ["[0]#011validation-rmse:2.500", "[1]#011validation-rmse:2.490"]
    following = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, limit=2, nextToken=head["nextForwardToken"])
    assert [e["message"] for e in following["events"]] == ["[2]#011validation-rmse:2.480", "[3]#011validation-rmse:2.470"]
    everything = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)["events"]
    assert len(everything) == 26 and all(e["timestamp"] > 0 for e in everything)


def test_unknown_groups_and_streams_are_named(logs):
    with pytest.raises(ClientError) as caught:
        logs.get_log_events(logGroupName="/aws/lambda/nope", logStreamName="x/algo-1")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        logs.get_log_events(logGroupName=GROUP, logStreamName="no-such-job/algo-1")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        logs.get_log_events(logGroupName=GROUP, logStreamName="run-1-training/algo-1", nextToken="garbage")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"


def test_a_request_without_a_required_field_is_an_invalid_parameter(tmp_path):
    """botocore checks required fields before sending; a raw client that does not gets the API's
    InvalidParameterException naming the field, never a 500."""
    server = LogsServer(LogsBackend(Layout.at(tmp_path))).start()
    try:
        request = urllib.request.Request(server.url, data=json.dumps({"logGroupName": GROUP}).encode(), method="POST",
                                         headers={"X-Amz-Target": "Logs_20140328.GetLogEvents",
                                                  "Content-Type": "application/x-amz-json-1.1"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        document = json.loads(caught.value.read())
    finally:
        server.stop()
    assert caught.value.code == 400 and document["__type"] == "InvalidParameterException"
    assert "logStreamName" in document["message"]
