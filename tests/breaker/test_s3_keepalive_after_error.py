"""An S3 request refused before its body is read must not poison the keep-alive connection."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def test_next_request_on_the_same_connection_works(server) -> None:
    keys = server.account("963000000001")
    s3 = boto3.client("s3", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                      aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"],
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="keepalive-after-error")
    try:
        s3.put_object(Bucket="keepalive-after-error", Key="x" * 1025, Body=b"y" * 4096)
    except ClientError as exc:
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    s3.put_object(Bucket="keepalive-after-error", Key="ok", Body=b"fine")
    assert s3.get_object(Bucket="keepalive-after-error", Key="ok")["Body"].read() == b"fine"
