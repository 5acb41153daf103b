"""sns:publish into the outbox, and the aws-sdk:s3 integration, on the deployed mini app."""

from __future__ import annotations

import json

import pytest

from emulator.asl.errors import StatesError

PUBLISH = "arn:aws:states:::sns:publish"
TOPIC = "arn:aws:sns:us-east-1:000000000000:mini-alerts"


def test_publish_appends_one_json_line(run_task, mini_runtime):
    first = run_task(mini_runtime, PUBLISH, {"TopicArn": TOPIC, "Subject": "done", "Message": "trained",
                                             "MessageAttributes": {"kind": {"DataType": "String",
                                                                            "StringValue": "ok"}}})
    second = run_task(mini_runtime, PUBLISH, {"TopicArn": TOPIC, "Message": {"rmse": 2.1}})
    messages = mini_runtime.sns.read_outbox("mini-alerts")
    assert [m["MessageId"] for m in messages] == [first["MessageId"], second["MessageId"]]
    assert messages[0]["Subject"] == "done" and messages[0]["Message"] == "trained"
    assert messages[0]["MessageAttributes"]["kind"]["StringValue"] == "ok"
    assert json.loads(messages[1]["Message"]) == {"rmse": 2.1}  # JSON messages are sent as text
    assert messages[1]["TopicArn"] == TOPIC and messages[1]["Timestamp"].endswith("Z")
    assert first["SdkHttpMetadata"]["HttpStatusCode"] == 200
    assert first["SdkResponseMetadata"]["RequestId"]


def test_unknown_topic_is_a_named_error(run_task, mini_runtime):
    with pytest.raises(StatesError) as failure:
        run_task(mini_runtime, PUBLISH, {"TopicArn": "arn:aws:sns:us-east-1:000000000000:nope", "Message": "x"})
    assert failure.value.name == "SNS.NotFoundException"
    assert "nope" in failure.value.cause
    with pytest.raises(StatesError, match="Message"):
        run_task(mini_runtime, PUBLISH, {"TopicArn": TOPIC})


def test_s3_sdk_integration(run_task, mini_runtime):
    bucket = mini_runtime.deployment.bucket("DataBucketE3889A50").name
    sdk = "arn:aws:states:::aws-sdk:s3:"
    put = run_task(mini_runtime, sdk + "putObject", {"Bucket": bucket, "Key": "a/x.json", "Body": {"k": 1}})
    got = run_task(mini_runtime, sdk + "getObject", {"Bucket": bucket, "Key": "a/x.json"})
    assert json.loads(got["Body"]) == {"k": 1} and got["ETag"] == put["ETag"]
    copied = run_task(mini_runtime, sdk + "copyObject", {"Bucket": bucket, "Key": "b/y.json",
                                                         "CopySource": f"{bucket}/a/x.json"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    head = run_task(mini_runtime, sdk + "headObject", {"Bucket": bucket, "Key": "b/y.json"})
    assert head["ContentLength"] == len('{"k":1}')
    with pytest.raises(StatesError) as missing:
        run_task(mini_runtime, sdk + "getObject", {"Bucket": bucket, "Key": "nope"})
    assert missing.value.name == "S3.NoSuchKeyException"
    assert "Status Code: 404" in missing.value.cause
    with pytest.raises(StatesError) as no_bucket:
        run_task(mini_runtime, sdk + "headObject", {"Bucket": "no-such-bucket", "Key": "k"})
    assert no_bucket.value.name == "S3.NoSuchBucketException"
