"""A web-identity session is a role session: GetCallerIdentity shows it, and AssumeRole from it is
role chaining (one-hour cap), authorized by its role's identity policy and the next role's trust."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "320000000003"


def test_web_identity_session_chains_into_assume_role(server: Any) -> None:
    cluster = server.cluster("chain-c", ACCOUNT)
    iam = server.client("iam", ACCOUNT)
    url = cluster["oidc_url"]
    host = url.removeprefix("https://")
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    try:
        iam.create_open_id_connect_provider(Url=url, ClientIDList=["sts.amazonaws.com"],
                                            ThumbprintList=[cluster["thumbprint"]])
    except ClientError as exc:  # `cluster create` registers its issuer in its own account already
        assert exc.response["Error"]["Code"] == "EntityAlreadyExists"
    iam.create_role(RoleName="wi-job", MaxSessionDuration=7200, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{host}:sub": "system:serviceaccount:dev:job"}}}]}))
    iam.put_role_policy(RoleName="wi-job", PolicyName="chain", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Resource": f"arn:aws:iam::{ACCOUNT}:role/wi-next"}]}))
    iam.create_role(RoleName="wi-next", MaxSessionDuration=7200, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                "Action": "sts:AssumeRole"}]}))

    token = server.token("chain-c", "dev", "job")
    anonymous = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                             config=Config(signature_version=UNSIGNED))
    out = anonymous.assume_role_with_web_identity(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/wi-job",
                                                  RoleSessionName="run-1", WebIdentityToken=token,
                                                  DurationSeconds=7200)
    creds = out["Credentials"]
    sts = server.client("sts", aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])
    me = sts.get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/wi-job/run-1"
    assert me["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]

    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/wi-next", RoleSessionName="hop", DurationSeconds=7200)
    assert exc.value.response["Error"]["Message"] == (
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
    hop = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/wi-next", RoleSessionName="hop")
    assert hop["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/wi-next/hop"
    with pytest.raises(ClientError) as exc:  # its identity policy names wi-next only
        sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/wi-job", RoleSessionName="hop")
    assert exc.value.response["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/wi-job/run-1 is not authorized to perform: sts:AssumeRole on "
        f"resource: arn:aws:iam::{ACCOUNT}:role/wi-job")
