"""The walkthrough's cross-account setup through boto3, shared by the store and audit tests.

A cluster in account A issues job tokens; account B registers the cluster's issuer as an OIDC
provider and has a role that trusts one service account of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setup:
    cluster: str
    cluster_account: str
    role_account: str
    role_arn: str
    provider_arn: str
    provider_url: str
    namespace: str
    service_account: str

    @property
    def sub(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def trust_policy(provider_arn: str, provider_url: str, sub: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{provider_url}:sub": sub, f"{provider_url}:aud": "sts.amazonaws.com"}},
    }]})


def cross_account(server: Any, *, cluster: str, cluster_account: str, role_account: str, role_name: str,
                  namespace: str = "dev", service_account: str = "job", iam: Any = None,
                  cluster_info: dict[str, Any] | None = None) -> Setup:
    """Create the cluster (CLI) and, through IAM (boto3, ``iam`` or the server's), provider and role."""
    info = cluster_info or server.cluster(cluster, cluster_account)
    iam = iam or server.client("iam", role_account)
    provider_url = info["oidc_url"].removeprefix("https://")
    provider_arn = iam.create_open_id_connect_provider(
        Url=info["oidc_url"], ClientIDList=["sts.amazonaws.com"], ThumbprintList=[info["thumbprint"]],
    )["OpenIDConnectProviderArn"]
    sub = f"system:serviceaccount:{namespace}:{service_account}"
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust_policy(
        provider_arn, provider_url, sub))["Role"]["Arn"]
    return Setup(cluster, cluster_account, role_account, role_arn, provider_arn, provider_url, namespace,
                 service_account)
