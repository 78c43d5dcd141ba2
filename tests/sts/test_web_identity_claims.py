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


TAGS_CLAIM = "https://aws.amazon.com/tags"
SOURCE_CLAIM = "https://aws.amazon.com/source_identity"
UNABLE = ("ValidationError", "Unable to validate tags", 400)


def outcome(server, role_arn: str, tok: str) -> tuple[str, str, int] | str:
    try:
        assume(server, role_arn, tok)
    except ClientError as exc:
        e = exc.response
        return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]
    return "OK"


# AWS answers IdP-passed session tags it cannot accept with ValidationError "Unable to validate tags"
# (tokens/claims.py cites the observations); the token's tags obey AssumeRole's session-tag rules.
MALFORMED_TAG_CLAIMS = {
    "claim is a string": "team=data",
    "claim is a number": 5,
    "claim is a list": [{"principal_tags": {"team": ["data"]}}],
    "principal_tags is a list": {"principal_tags": ["x"]},
    "principal_tags is a string": {"principal_tags": "x"},
    "principal_tags is a number": {"principal_tags": 5},
    "a tag value is a string": {"principal_tags": {"team": "data"}},
    "a tag value is a number": {"principal_tags": {"team": [5]}},
    "a tag has two values": {"principal_tags": {"team": ["a", "b"]}},
    "a tag has no value": {"principal_tags": {"team": []}},
    "transitive_tag_keys is a number": {"principal_tags": {"a": ["v"]}, "transitive_tag_keys": 5},
    "transitive_tag_keys is a string": {"principal_tags": {"a": ["v"]}, "transitive_tag_keys": "a"},
    "transitive_tag_keys holds a number": {"principal_tags": {"a": ["v"]}, "transitive_tag_keys": [5]},
    "an unknown member": {"principal_tags": {"a": ["v"]}, "session_tags": {}},
}
TAGS_OVER_LIMITS = {
    "51 tags": {"principal_tags": {f"k{i}": ["v"] for i in range(51)}},
    "a 129-character key": {"principal_tags": {"k" * 129: ["v"]}},
    "a 257-character value": {"principal_tags": {"k": ["v" * 257]}},
    "keys a and A": {"principal_tags": {"a": ["v"], "A": ["w"]}},
    "a key starting aws:": {"principal_tags": {"aws:x": ["v"]}},
    "a key starting AWS:": {"principal_tags": {"AWS:x": ["v"]}},
    "a key with *": {"principal_tags": {"a*b": ["v"]}},
    "an empty key": {"principal_tags": {"": ["v"]}},
    "a value with *": {"principal_tags": {"k": ["a*b"]}},
    "a transitive key that is no tag": {"principal_tags": {"a": ["v"]}, "transitive_tag_keys": ["b"]},
}


@pytest.mark.parametrize("claim", list(MALFORMED_TAG_CLAIMS.values()), ids=list(MALFORMED_TAG_CLAIMS))
def test_malformed_tags_claim_is_refused_not_a_server_error(server, setup, claim) -> None:
    issuer, roles = setup
    assert outcome(server, roles["tags"], token(issuer, **{TAGS_CLAIM: claim})) == UNABLE


@pytest.mark.parametrize("claim", list(TAGS_OVER_LIMITS.values()), ids=list(TAGS_OVER_LIMITS))
def test_token_tags_obey_the_session_tag_rules(server, setup, claim) -> None:
    issuer, roles = setup
    assert outcome(server, roles["tags"], token(issuer, **{TAGS_CLAIM: claim})) == UNABLE


def test_token_tags_at_the_limits_are_accepted(server, setup) -> None:
    issuer, roles = setup
    fifty = {f"k{i}": ["v"] for i in range(49)} | {"K" * 128: ["é v:/=+-@_." + "v" * 245]}
    out = assume(server, roles["tags"], token(issuer, **{TAGS_CLAIM: {"principal_tags": fifty,
                                                                      "transitive_tag_keys": ["k0"]}}))
    assert out["AssumedRoleUser"]["Arn"].endswith("claims-tags/claims")
    empty = assume(server, roles["plain"], token(issuer, **{TAGS_CLAIM: {"principal_tags": {}}}))
    assert "PackedPolicySize" not in empty  # no tags: no sts:TagSession needed


@pytest.mark.parametrize("value", ["aws:x", "AWS:x", "a" * 65, "a", "a b/c", 5, ["alice"], None],
                         ids=["aws-prefix", "AWS-prefix", "65-chars", "1-char", "space-slash", "number", "list",
                              "null"])
def test_source_identity_claim_obeys_the_source_identity_rules(server, setup, value) -> None:
    """2-64 characters of [\\w+=,.@-], not starting with aws: (aws-semantics.md §1.2), as AssumeRole's
    SourceIdentity; refused as a token STS cannot validate (§1.4)."""
    issuer, roles = setup
    assert outcome(server, roles["source"], token(issuer, **{SOURCE_CLAIM: value})) == (
        "InvalidIdentityToken", "The source identity in the web identity token is not valid", 400)


def test_source_identity_at_the_limits_is_accepted(server, setup) -> None:
    issuer, roles = setup
    for value in ("ab", "a" * 64, "alice+x=y,z.w@example-1_2"):
        assert assume(server, roles["source"], token(issuer, **{SOURCE_CLAIM: value}))["SourceIdentity"] == value


def test_explain_reports_a_malformed_tags_claim(server, setup, tmp_path) -> None:
    """`rolebridge explain --json` replays the same checks: a JSON answer naming AWS's error, no traceback."""
    from conftest import rb

    issuer, roles = setup
    path = tmp_path / "token"
    path.write_text(token(issuer, **{TAGS_CLAIM: {"principal_tags": ["x"]}}))
    proc = rb("explain", roles["tags"], "--token", str(path), "--json", data_dir=server.data_dir, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert (out["outcome"], out["error_code"]) == ("error", "ValidationError")
    failed = [c for c in out["checks"] if not c["ok"]]
    assert failed[0]["name"] == "claims" and "principal_tags" in failed[0]["detail"]


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
