"""Helpers for the S3 tests: clients for account roots and for web-identity role sessions."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config


def s3_client(server: Any, *, account: str | None = None, creds: dict[str, str] | None = None,
              addressing: str = "path", **config: Any) -> Any:
    if account is not None:
        keys = server.account(account)
        creds = {"aws_access_key_id": keys["access_key_id"], "aws_secret_access_key": keys["secret_access_key"]}
    return boto3.client("s3", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": addressing}, **config),
                        **(creds or {}))


def trust_policy(provider_arn: str, issuer_host: str, namespace: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider_arn}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringLike": {f"{issuer_host}:sub": f"system:serviceaccount:{namespace}:*"}}}]})


def role_session(server: Any, *, cluster: dict[str, Any], account: str, role_name: str, namespace: str,
                 service_account: str) -> tuple[str, dict[str, str]]:
    """Create (idempotently) provider + role in ``account``; return (role ARN, session credentials)."""
    iam = server.client("iam", account)
    host = cluster["oidc_url"].removeprefix("https://")
    provider_arn = f"arn:aws:iam::{account}:oidc-provider/{host}"
    existing = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    if provider_arn not in existing:
        iam.create_open_id_connect_provider(Url=cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"],
                                            ThumbprintList=[cluster["thumbprint"]])
    try:
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust_policy(
            provider_arn, host, namespace))["Role"]["Arn"]
    token = server.token(cluster["name"], namespace, service_account)
    sts = server.client("sts", aws_access_key_id="x", aws_secret_access_key="x")
    out = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName=service_account,
                                            WebIdentityToken=token)["Credentials"]
    return role_arn, {"aws_access_key_id": out["AccessKeyId"], "aws_secret_access_key": out["SecretAccessKey"],
                      "aws_session_token": out["SessionToken"]}


def error_code(exc: Any) -> str:
    return exc.response["Error"]["Code"]
