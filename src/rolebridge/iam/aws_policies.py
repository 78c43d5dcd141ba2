"""AWS managed policies: a small, read-only catalog under ``arn:aws:iam::aws:policy/...``.

Real AWS ships about 1,300 of these; tools mostly attach a handful. We carry the ones data jobs
and their setup scripts commonly name, with their real paths and (abridged where AWS's are long)
documents. They are not database rows: every account sees the same ones, nobody can change them,
and attaching one records only its ARN.

The policy IDs are not AWS's real ones: they are derived from the name (stable across servers and
restarts, in AWS's ``ANPA`` + 17 base32 shape).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy/"
# 2015-02-06, the date AWS shows for its oldest managed policies.
CREATED = 1423180800.0
UPDATED = 1700000000.0


@dataclass(frozen=True)
class AwsManagedPolicy:
    name: str
    path: str
    description: str
    document: dict[str, Any]
    version: str = "v1"

    @property
    def arn(self) -> str:
        return f"{AWS_POLICY_PREFIX}{self.path.lstrip('/')}{self.name}"

    @property
    def policy_id(self) -> str:
        digest = hashlib.sha256(b"aws-managed-policy:" + self.name.encode()).digest()
        return "ANPA" + base64.b32encode(digest).decode()[:17]

    @property
    def document_text(self) -> str:
        return json.dumps(self.document, indent=4)


def _allow(*actions: str, resource: str = "*") -> dict[str, Any]:
    action: str | list[str] = list(actions) if len(actions) > 1 else actions[0]
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


_CATALOG = (
    AwsManagedPolicy("AdministratorAccess", "/", "Provides full access to AWS services and resources.",
                     _doc(_allow("*"))),
    AwsManagedPolicy("PowerUserAccess", "/",
                     "Provides full access to AWS services and resources, but does not allow management of "
                     "Users and groups.",
                     _doc({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"],
                           "Resource": "*"},
                          _allow("iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole",
                                 "iam:ListRoles", "organizations:DescribeOrganization", "account:ListRegions",
                                 "account:GetAccountInformation")),
                     version="v5"),
    AwsManagedPolicy("ReadOnlyAccess", "/",
                     "Provides read-only access to AWS services and resources (abridged: IAM, STS, S3, "
                     "CloudWatch, logs, EC2 describe).",
                     _doc(_allow("iam:Get*", "iam:List*", "iam:GenerateCredentialReport",
                                 "iam:GenerateServiceLastAccessedDetails", "iam:SimulateCustomPolicy",
                                 "iam:SimulatePrincipalPolicy", "sts:GetCallerIdentity", "s3:Get*",
                                 "s3:List*", "s3:Describe*", "cloudwatch:Describe*", "cloudwatch:Get*",
                                 "cloudwatch:List*",
                                 "logs:Describe*", "logs:Get*", "logs:FilterLogEvents", "ec2:Describe*",
                                 "ec2:Get*")),
                     version="v110"),
    AwsManagedPolicy("IAMReadOnlyAccess", "/",
                     "Provides read only access to IAM via the AWS Management Console.",
                     _doc(_allow("iam:GenerateCredentialReport", "iam:GenerateServiceLastAccessedDetails",
                                 "iam:Get*", "iam:List*", "iam:SimulateCustomPolicy",
                                 "iam:SimulatePrincipalPolicy")),
                     version="v4"),
    AwsManagedPolicy("IAMFullAccess", "/", "Provides full access to IAM via the AWS Management Console.",
                     _doc(_allow("iam:*", "organizations:DescribeAccount",
                                 "organizations:DescribeOrganization",
                                 "organizations:DescribeOrganizationalUnit", "organizations:DescribePolicy",
                                 "organizations:ListChildren", "organizations:ListParents",
                                 "organizations:ListPoliciesForTarget", "organizations:ListRoots",
                                 "organizations:ListPolicies", "organizations:ListTargetsForPolicy")),
                     version="v2"),
    AwsManagedPolicy("AmazonS3ReadOnlyAccess", "/", "Provides read only access to all buckets via the AWS "
                     "Management Console.",
                     _doc(_allow("s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*",
                                 "s3-object-lambda:List*")),
                     version="v3"),
    AwsManagedPolicy("AmazonS3FullAccess", "/", "Provides full access to all buckets via the AWS Management "
                     "Console.",
                     _doc(_allow("s3:*", "s3-object-lambda:*")),
                     version="v2"),
    AwsManagedPolicy("ViewOnlyAccess", "/job-function/",
                     "This policy grants permissions to view resources and basic metadata across all AWS "
                     "services (abridged).",
                     _doc(_allow("iam:List*", "iam:GetAccountSummary", "iam:GetLoginProfile",
                                 "s3:ListAllMyBuckets",
                                 "s3:ListBucket", "s3:GetBucketLocation", "ec2:Describe*", "cloudwatch:List*",
                                 "logs:Describe*")),
                     version="v18"),
)

AWS_MANAGED: dict[str, AwsManagedPolicy] = {p.arn: p for p in _CATALOG}


def is_aws_managed_arn(arn: str) -> bool:
    return arn.startswith(AWS_POLICY_PREFIX)


def aws_managed(arn: str) -> AwsManagedPolicy | None:
    return AWS_MANAGED.get(arn)


def catalog() -> tuple[AwsManagedPolicy, ...]:
    return _CATALOG
