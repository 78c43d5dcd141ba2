"""An AssumeRole session policy limits what the session may do in S3, as in AWS (identity ∩ session)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "961000000001"


def test_session_policy_narrows_s3_access(server) -> None:
    iam = server.client("iam", ACCOUNT)
    keys = server.account(ACCOUNT)
    s3_root = boto3.client("s3", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                           aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"],
                           config=Config(s3={"addressing_style": "path"}))
    s3_root.create_bucket(Bucket="sess-policy-bucket")
    s3_root.put_object(Bucket="sess-policy-bucket", Key="a.txt", Body=b"hello")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT},
                                                     "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="s3-all", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="s3-all", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    sts = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                       aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"])
    read_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                         "Resource": "arn:aws:s3:::sess-policy-bucket/*"}]}
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/s3-all", RoleSessionName="narrow",
                            Policy=json.dumps(read_only))["Credentials"]
    s3 = boto3.client("s3", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                      aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"], config=Config(s3={"addressing_style": "path"}))
    assert s3.get_object(Bucket="sess-policy-bucket", Key="a.txt")["Body"].read() == b"hello"
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="sess-policy-bucket", Key="b.txt", Body=b"x")
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        s3_root.head_object(Bucket="sess-policy-bucket", Key="b.txt")
