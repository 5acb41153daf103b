"""The local S3 server refuses malformed requests as S3 does: bucket names, key lengths, bodies."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from rawhttp import raw_request

from emulator.services.s3.server import S3Server
from emulator.services.s3.store import LocalS3


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "state" / "s3"
    (tmp_path / "state" / "executions" / "secret").mkdir(parents=True)
    (tmp_path / "state" / "deployment.json").write_text("{}")
    s3 = LocalS3(root)
    s3.create_bucket("data-bucket")
    with S3Server(s3) as srv:
        yield srv


@pytest.fixture
def client(server):
    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="y", config=Config(retries={"max_attempts": 1}))


@pytest.mark.parametrize("path", ["/..?list-type=2", "/%2e%2e?list-type=2", "/.?list-type=2", "/%2E%2E/deployment.json",
                                  "/.uploads?list-type=2", "/Data-Bucket?list-type=2", "/a..b?list-type=2",
                                  "/ab?list-type=2", "/192.168.0.1?list-type=2"])
def test_a_bucket_name_s3_refuses_is_400_invalid_bucket_name(server, path):
    status, answer = raw_request(server.url, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 400, answer
    assert b"<Code>InvalidBucketName</Code>" in answer
    assert b"deployment.json" not in answer.split(b"\r\n\r\n", 1)[1].replace(b"/%2E%2E/deployment.json", b"")
    assert b"executions" not in answer


def test_keys_up_to_1024_bytes_work_and_longer_ones_are_key_too_long(client):
    for key in ("k" * 300, "dir/" + "é" * 200 + "/x.csv", "a/" + "z" * 1020):
        client.put_object(Bucket="data-bucket", Key=key, Body=b"v")
        assert client.get_object(Bucket="data-bucket", Key=key)["Body"].read() == b"v"
    listed = [o["Key"] for o in client.list_objects_v2(Bucket="data-bucket")["Contents"]]
    assert sorted(listed) == sorted(["k" * 300, "dir/" + "é" * 200 + "/x.csv", "a/" + "z" * 1020])
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket="data-bucket", Key="k" * 1025, Body=b"v")
    assert caught.value.response["Error"]["Code"] == "KeyTooLongError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("length", [b"abc", b"-1"])
def test_a_bad_content_length_is_400(server, length):
    status, answer = raw_request(server.url, b"PUT /data-bucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: " + length
                                 + b"\r\n\r\nbody")
    assert status == 400, answer


def test_conditional_put_object(client):
    first = client.put_object(Bucket="data-bucket", Key="champion/e.json", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket="data-bucket", Key="champion/e.json", Body=b"2", IfNoneMatch="*")
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket="data-bucket", Key="champion/e.json", Body=b"2", IfMatch='"0000"')
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    second = client.put_object(Bucket="data-bucket", Key="champion/e.json", Body=b"2", IfMatch=first["ETag"])
    assert client.get_object(Bucket="data-bucket", Key="champion/e.json")["Body"].read() == b"2"
    with pytest.raises(ClientError) as caught:  # the ETag the writer read is stale now
        client.put_object(Bucket="data-bucket", Key="champion/e.json", Body=b"3", IfMatch=first["ETag"])
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError) as caught:  # If-Match on a missing key: 404, as S3
        client.put_object(Bucket="data-bucket", Key="champion/none.json", Body=b"3", IfMatch=second["ETag"])
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
    client.copy_object(Bucket="data-bucket", Key="champion/copy.json", CopySource="data-bucket/champion/e.json",
                       IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        client.copy_object(Bucket="data-bucket", Key="champion/copy.json", CopySource="data-bucket/champion/e.json",
                           IfNoneMatch="*")
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"


def test_a_concurrent_conditional_write_is_409_conditional_request_conflict(server, client):
    s3 = server.s3
    with s3.write_condition("s3://data-bucket/champion/e.json", if_none_match="*"), pytest.raises(ClientError) as caught:
        client.put_object(Bucket="data-bucket", Key="champion/e.json", Body=b"2", IfNoneMatch="*")
    assert caught.value.response["Error"]["Code"] == "ConditionalRequestConflict"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_the_aws_sdk_s3_integration_honours_write_conditions(tmp_path):
    from emulator.asl import run_definition
    from emulator.asl.ports import Integrations
    from emulator.integrations import s3_sdk

    s3 = LocalS3(tmp_path / "s3")
    s3.create_bucket("data-bucket")
    s3.put_bytes("s3://data-bucket/runs/a/evaluation.json", b'{"rmse": 2.1}')
    integrations = Integrations()
    s3_sdk.register(integrations, s3)

    def put(parameters: dict, action: str = "putObject"):
        definition = {"StartAt": "W", "States": {"W": {"Type": "Task", "End": True, "Parameters": parameters,
                                                       "Resource": f"arn:aws:states:::aws-sdk:s3:{action}"}}}
        return run_definition(definition, {}, integrations=integrations)

    created = put({"Bucket": "data-bucket", "Key": "champion/e.json", "Body": "1", "IfNoneMatch": "*"})
    assert created.status == "SUCCEEDED", created.cause
    again = put({"Bucket": "data-bucket", "Key": "champion/e.json", "Body": "2", "IfNoneMatch": "*"})
    assert (again.status, again.error) == ("FAILED", "S3.PreconditionFailedException")
    assert "Status Code: 412" in again.cause
    swapped = put({"Bucket": "data-bucket", "Key": "champion/e.json", "Body": "2", "IfMatch": created.output["ETag"]})
    assert swapped.status == "SUCCEEDED" and s3.get_bytes("s3://data-bucket/champion/e.json") == b"2"
    stale = put({"Bucket": "data-bucket", "Key": "champion/e.json", "CopySource": "data-bucket/runs/a/evaluation.json",
                 "IfMatch": created.output["ETag"]}, "copyObject")
    assert stale.error == "S3.PreconditionFailedException"
    fresh = put({"Bucket": "data-bucket", "Key": "champion/e.json", "CopySource": "data-bucket/runs/a/evaluation.json",
                 "IfMatch": swapped.output["ETag"]}, "copyObject")
    assert fresh.status == "SUCCEEDED" and s3.get_bytes("s3://data-bucket/champion/e.json") == b'{"rmse": 2.1}'
