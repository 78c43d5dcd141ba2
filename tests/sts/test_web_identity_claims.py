"""Session tags and source identity carried by a web-identity token need their own trust-policy actions.

AWS: a token with `https://aws.amazon.com/tags` needs `sts:TagSession`, one with
`https://aws.amazon.com/source_identity` needs `sts:SetSourceIdentity`, each allowed by the trust policy.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from local_issuer import LocalIssuer

ACCOUNT = "571000000001"


@pytest.fixture(scope="module")
def setup(server, tmp_path_factory):
    issuer = LocalIssuer(tmp_path_factory.mktemp("claims-issuer"), path="/id/CLAIMS")
    iam = server.client("iam", ACCOUNT)
    provider = iam.create_open_id_connect_provider(Url=issuer.url, ClientIDList=["sts.amazonaws.com"],
                                                   ThumbprintList=[issuer.thumbprint])["OpenIDConnectProviderArn"]

    def role(name: str, actions: list[str]) -> str:
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": provider}, "Action": actions,
            "Condition": {"StringEquals": {f"{issuer.host_path}:aud": "sts.amazonaws.com"}}}]}
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    roles = {
        "plain": role("claims-plain", ["sts:AssumeRoleWithWebIdentity"]),
        "tags": role("claims-tags", ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]),
        "source": role("claims-source", ["sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity"]),
    }
    yield issuer, roles
    issuer.close()


def assume(server, role_arn: str, token: str) -> dict:
    sts = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                       config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    return sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="claims", WebIdentityToken=token)


def token(issuer: LocalIssuer, **extra) -> str:
    now = int(time.time())
    return issuer.sign({"iss": issuer.url, "sub": "system:serviceaccount:dev:app", "aud": ["sts.amazonaws.com"],
                        "iat": now, "nbf": now, "exp": now + 600, **extra})


TAGS = {"https://aws.amazon.com/tags": {"principal_tags": {"team": ["data"]}, "transitive_tag_keys": ["team"]}}
SOURCE = {"https://aws.amazon.com/source_identity": "alice"}


def test_plain_token_needs_only_the_assume_action(server, setup) -> None:
    issuer, roles = setup
    assert assume(server, roles["plain"], token(issuer))["AssumedRoleUser"]["Arn"].endswith("claims-plain/claims")


def test_tags_need_tag_session(server, setup) -> None:
    issuer, roles = setup
    with pytest.raises(ClientError) as info:
        assume(server, roles["plain"], token(issuer, **TAGS))
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    out = assume(server, roles["tags"], token(issuer, **TAGS))
    assert "PackedPolicySize" in out  # session tags count against the packed size, as AWS reports


def test_source_identity_needs_set_source_identity(server, setup) -> None:
    issuer, roles = setup
    with pytest.raises(ClientError) as info:
        assume(server, roles["plain"], token(issuer, **SOURCE))
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    out = assume(server, roles["source"], token(issuer, **SOURCE))
    assert out["SourceIdentity"] == "alice"


def test_multi_valued_session_tag_is_refused(server, setup) -> None:
    issuer, roles = setup
    bad = {"https://aws.amazon.com/tags": {"principal_tags": {"team": ["a", "b"]}}}
    with pytest.raises(ClientError) as info:
        assume(server, roles["tags"], token(issuer, **bad))
    assert info.value.response["Error"]["Code"] == "InvalidIdentityToken"


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov", "foo"])
def test_role_arn_in_another_partition_is_refused(server, setup, partition: str) -> None:
    """A role ARN of another partition names no role of this (`aws`) server: AccessDenied, as for a
    missing role (aws-semantics.md §1.2, §1.4), even though `arn:aws:…` of that name exists."""
    issuer, roles = setup
    other = roles["plain"].replace("arn:aws:", f"arn:{partition}:", 1)
    with pytest.raises(ClientError) as info:
        assume(server, other, token(issuer))
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert info.value.response["Error"]["Message"] == "Not authorized to perform sts:AssumeRoleWithWebIdentity"


def test_malformed_role_arn_is_request_arn_is_invalid(server, setup) -> None:
    """AssumeRoleWithWebIdentity answers every RoleArn that is not a role ARN with `Request ARN is
    invalid` (sts-cases.json C24), a pasted annotation or an ARN with extra colons alike."""
    issuer, _ = setup
    for bad in ("eks.amazonaws.com/role-arn=arn:aws:iam::571000000001:role/claims-plain",
                "arn:aws:iam::::571000000001:role/claims-plain", "arn:aws:iam::571000000001:policy/x"):
        with pytest.raises(ClientError) as info:
            assume(server, bad, token(issuer))
        assert info.value.response["Error"]["Code"] == "ValidationError"
        assert info.value.response["Error"]["Message"] == "Request ARN is invalid"
