"""The S3 REST server: plain boto3 clients (in-process and in a subprocess configured only by
AWS_ENDPOINT_URL_S3) against LocalS3."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator.services.s3.server import S3Server, decode_aws_chunked
from emulator.services.s3.store import LocalS3


@pytest.fixture
def store(tmp_path):
    s3 = LocalS3(tmp_path / "s3")
    s3.create_bucket("data")
    s3.put_bytes("s3://data/raw/a b.csv", b"x,y\n1,2\n")
    return s3


@pytest.fixture
def client(store):
    with S3Server(store) as server:
        yield boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="y", config=Config(retries={"max_attempts": 1}))


def test_get_head_put_copy_delete(client, store):
    assert client.get_object(Bucket="data", Key="raw/a b.csv")["Body"].read() == b"x,y\n1,2\n"
    assert client.head_object(Bucket="data", Key="raw/a b.csv")["ContentLength"] == 8
    client.put_object(Bucket="data", Key="out/x.json", Body=b'{"a": 1}')
    assert store.get_bytes("s3://data/out/x.json") == b'{"a": 1}'
    client.upload_fileobj(io.BytesIO(b"z" * 100), "data", "out/stream.bin")  # a streamed (chunked) body
    assert store.get_bytes("s3://data/out/stream.bin") == b"z" * 100
    copied = client.copy_object(Bucket="data", Key="out/y.json", CopySource={"Bucket": "data", "Key": "out/x.json"})
    assert copied["CopyObjectResult"]["ETag"] == store.head("s3://data/out/x.json")["ETag"]
    client.delete_object(Bucket="data", Key="out/y.json")
    assert not store.exists("s3://data/out/y.json")
    ranged = client.get_object(Bucket="data", Key="raw/a b.csv", Range="bytes=2-4")
    assert ranged["Body"].read() == b"y\n1"


def test_list_objects_v2_prefix_delimiter_and_pages(client, store):
    for i in range(5):
        store.put_bytes(f"s3://data/runs/r{i}.txt", b"1")
    listed = client.list_objects_v2(Bucket="data", Prefix="runs/")
    assert [o["Key"] for o in listed["Contents"]] == [f"runs/r{i}.txt" for i in range(5)]
    top = client.list_objects_v2(Bucket="data", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["raw/", "runs/"]
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="data", Prefix="runs/", PaginationConfig={
        "PageSize": 2})
    assert [len(page["Contents"]) for page in pages] == [2, 2, 1]
    assert client.list_objects_v2(Bucket="data", Prefix="raw/a ")["Contents"][0]["Key"] == "raw/a b.csv"


def test_errors_have_s3_codes(client):
    with pytest.raises(client.exceptions.NoSuchKey) as missing:
        client.get_object(Bucket="data", Key="nope")
    assert missing.value.response["Error"]["Key"] == "nope"
    with pytest.raises(client.exceptions.NoSuchBucket):
        client.list_objects_v2(Bucket="other")
    with pytest.raises(ClientError) as head:
        client.head_object(Bucket="data", Key="nope")
    assert head.value.response["Error"]["Code"] == "404"


def test_multipart_upload_and_ranged_download(client, store):
    data = bytes(range(256)) * (9 * 4096)  # 9 MiB: multipart both ways with a 5 MiB threshold
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    client.upload_fileobj(io.BytesIO(data), "data", "big.bin", Config=config)
    assert store.get_bytes("s3://data/big.bin") == data
    out = io.BytesIO()
    client.download_fileobj("data", "big.bin", out, Config=config)
    assert out.getvalue() == data
    assert not list((store.root / ".uploads").iterdir())


def test_unchanged_handler_reaches_it_through_the_environment(store):
    """botocore honours AWS_ENDPOINT_URL_S3 and uses path style for an IP host: no code change."""
    code = (
        "import boto3\n"
        "c = boto3.client('s3')\n"
        "c.put_object(Bucket='data', Key='from/child.txt', Body=b'hi')\n"
        "print(c.get_object(Bucket='data', Key='raw/a b.csv')['Body'].read().decode().splitlines()[0])\n"
    )
    with S3Server(store) as server:
        env = {"PATH": os.environ.get("PATH", ""), "AWS_ENDPOINT_URL_S3": server.url, "AWS_ACCESS_KEY_ID": "x",
               "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
               "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                              check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x,y"
    assert store.get_bytes("s3://data/from/child.txt") == b"hi"


def test_decode_aws_chunked():
    body = b"5;chunk-signature=abc\r\nhello\r\n3\r\n!!!\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n"
    assert decode_aws_chunked(body) == b"hello!!!"
