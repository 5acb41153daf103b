"""moto S3 for the Lambda handlers' tests: one bucket, dummy credentials, the handlers' environment."""

import boto3
import pytest
from moto import mock_aws

BUCKET = "pipeline-data"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    monkeypatch.setenv("ROLLBACK_ALARMS", "MlPipeline-endpoint-5xx,MlPipeline-endpoint-latency")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
