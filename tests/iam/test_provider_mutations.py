"""OIDC provider changes that succeed, and what they do to STS: a client ID added is an audience a
job's token may carry, one removed no longer is; thumbprints are replaced, not merged; tags with
AWS's limits (50 per provider, key 1-128 and value 0-256 characters, keys case-insensitive, the
``aws:`` prefix reserved) and error codes. Through boto3 against a live server, a few through the
AWS CLI.

Sources (reference/aws-semantics.md §2.2-2.3 unless noted): the 50-tag LimitExceeded on a 51st tag,
the 5-thumbprint InvalidInput, the 100-client-ID LimitExceeded and the thumbprint replacement are
AWS-validated snapshots; the duplicate-key InvalidInput text is real IAM output quoted in Terraform
issues (terraform-aws-modules/terraform-aws-rds-aurora#189); length and count violations in one
request are the model's constraints, reported as the service's ValidationError. Where AWS's exact
message is not known (the ``aws:`` prefix; Add/Remove on a missing provider) only the code is checked.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import AWS_CLI, aws_error

ACCOUNT = "370000000001"


error = aws_error


@pytest.fixture(scope="module")
def iam(server: Any) -> Any:
    return server.client("iam", ACCOUNT)


@pytest.fixture(scope="module")
def unchecked(server: Any) -> Any:
    """An IAM client that sends what botocore would refuse before sending (below a model minimum)."""
    keys = server.account(ACCOUNT)
    return boto3.client("iam", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                        aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"],
                        config=Config(retries={"max_attempts": 1}, parameter_validation=False))


def new_provider(iam: Any, name: str, **kw: Any) -> str:
    kw.setdefault("ThumbprintList", ["a" * 40])
    return str(iam.create_open_id_connect_provider(Url=f"https://{name}.pm.example.com", **kw)
               ["OpenIDConnectProviderArn"])


@pytest.fixture(scope="module")
def job(server: Any, iam: Any) -> dict[str, Any]:
    """A cluster (its issuer registered in ACCOUNT with client ID sts.amazonaws.com) and a role its
    job `pm/app` may assume whatever the token's audience: the provider's client IDs decide."""
    cluster = server.cluster("pm-c", ACCOUNT)
    host = cluster["oidc_url"].removeprefix("https://")
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    try:
        iam.create_open_id_connect_provider(Url=cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"],
                                            ThumbprintList=[cluster["thumbprint"]])
    except ClientError as exc:  # `cluster create` registers its issuer in its own account
        assert exc.response["Error"]["Code"] == "EntityAlreadyExists"
    iam.create_role(RoleName="pm-job", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": arn}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{host}:sub": "system:serviceaccount:pm:app"}}}]}))
    sts = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                       config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))

    def assume(audience: str) -> dict[str, Any]:
        token = server.token("pm-c", "pm", "app", "--audience", audience)
        return sts.assume_role_with_web_identity(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pm-job",
                                                 RoleSessionName="run", WebIdentityToken=token)

    return {"arn": arn, "assume": assume}


def test_added_client_id_is_an_accepted_audience_and_a_removed_one_is_not(iam: Any, job: dict[str, Any]) -> None:
    arn, assume = job["arn"], job["assume"]
    with pytest.raises(ClientError) as exc:
        assume("analytics-app")
    assert error(exc) == ("InvalidIdentityToken", "Incorrect token audience", 400)

    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="analytics-app")
    out = assume("analytics-app")
    assert out["Audience"] == "analytics-app" and out["Provider"] == arn
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/pm-job/run"
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="analytics-app")  # idempotent
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"] == [
        "sts.amazonaws.com", "analytics-app"]

    iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="analytics-app")
    with pytest.raises(ClientError) as exc:
        assume("analytics-app")
    assert error(exc) == ("InvalidIdentityToken", "Incorrect token audience", 400)
    assert assume("sts.amazonaws.com")["Audience"] == "sts.amazonaws.com"  # the other client ID still works
    # removing a client ID the provider does not have is documented as no error
    iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="analytics-app")
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"] == ["sts.amazonaws.com"]


def test_client_id_limits_and_missing_provider(iam: Any) -> None:
    arn = new_provider(iam, "clients", ClientIDList=[f"c{i}" for i in range(100)])
    with pytest.raises(ClientError) as exc:
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="one-too-many")
    assert error(exc) == ("LimitExceeded", "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100", 409)
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="c7")  # present: no-op
    assert len(iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"]) == 100
    with pytest.raises(ClientError) as exc:
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="x" * 256)
    assert error(exc)[0] == "ValidationError"
    assert "at 'clientID' failed to satisfy constraint: Member must have length less than or equal to 255" in \
        error(exc)[1]
    missing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/nowhere.pm.example.com"
    for call in (iam.add_client_id_to_open_id_connect_provider, iam.remove_client_id_from_open_id_connect_provider):
        with pytest.raises(ClientError) as exc:
            call(OpenIDConnectProviderArn=missing, ClientID="x")
        assert error(exc)[0::2] == ("NoSuchEntity", 404)


def test_update_thumbprint_replaces_the_list(iam: Any, unchecked: Any) -> None:
    arn = new_provider(iam, "thumbs", ThumbprintList=["a" * 40, "b" * 40])
    iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["c" * 40, "d" * 40])
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ThumbprintList"] == ["c" * 40, "d" * 40]
    iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["e" * 40])
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ThumbprintList"] == ["e" * 40]

    with pytest.raises(ClientError) as exc:
        iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn,
                                                       ThumbprintList=[c * 40 for c in "0123456"[:6]])
    assert error(exc) == ("InvalidInput", "Thumbprint list must contain fewer than 5 entries.", 400)
    with pytest.raises(ClientError) as exc:
        iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=[])
    assert error(exc) == ("InvalidInput", "Thumbprint list must contain at least one entry.", 400)
    with pytest.raises(ClientError) as exc:
        unchecked.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["f" * 39])
    assert error(exc) == ("ValidationError", "1 validation error detected: Value at 'thumbprintList' failed to "
                          "satisfy constraint: Member must satisfy constraint: [Member must have length less than "
                          "or equal to 40, Member must have length greater than or equal to 40]", 400)
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ThumbprintList"] == ["e" * 40]
    missing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/nowhere.pm.example.com"
    with pytest.raises(ClientError) as exc:
        iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=missing, ThumbprintList=["e" * 40])
    assert error(exc) == ("NoSuchEntity", f"OpenIDConnect Provider not found for arn {missing}", 404)


def test_tag_untag_and_list_tags(iam: Any) -> None:
    arn = new_provider(iam, "tags", Tags=[{"Key": "team", "Value": "data"}])
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[
        {"Key": "TEAM", "Value": "platform"}, {"Key": "env", "Value": ""}])  # keys are case-insensitive: replaced
    tags = iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn)
    assert tags["Tags"] == [{"Key": "TEAM", "Value": "platform"}, {"Key": "env", "Value": ""}]
    assert tags["IsTruncated"] is False and "Marker" not in tags
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["Tags"] == tags["Tags"]
    iam.untag_open_id_connect_provider(OpenIDConnectProviderArn=arn, TagKeys=["env", "not-there"])
    assert iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn)["Tags"] == [
        {"Key": "TEAM", "Value": "platform"}]

    # ten tags, pages of four: 4, 4, then the last 2 with no Marker
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[
        {"Key": f"k{i:02d}", "Value": f"v{i}"} for i in range(9)])
    sizes, marker = [], None
    while True:
        page = iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn, MaxItems=4,
                                                      **({"Marker": marker} if marker else {}))
        sizes.append(len(page["Tags"]))
        if not page["IsTruncated"]:
            assert "Marker" not in page
            break
        marker = page["Marker"]
    assert sizes == [4, 4, 2]
    every = iam.get_paginator("list_open_id_connect_provider_tags").paginate(
        OpenIDConnectProviderArn=arn, PaginationConfig={"PageSize": 3}).build_full_result()["Tags"]
    assert len(every) == 10 and every[0] == {"Key": "TEAM", "Value": "platform"}


def test_tag_limits(iam: Any, unchecked: Any) -> None:
    arn = new_provider(iam, "limits", Tags=[{"Key": f"k{i:02d}", "Value": f"v{i}"} for i in range(49)])
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[{"Key": "K00", "Value": "replacing"}])
    before = iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn)["Tags"]
    assert len(before) == 50

    def refused(tags: list[dict[str, str]]) -> tuple[str, str, int]:
        with pytest.raises(ClientError) as exc:
            unchecked.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=tags)
        return error(exc)

    assert refused([{"Key": "one-more", "Value": "x"}]) == (
        "LimitExceeded", "The number of tags has reached the maximum limit.", 409)
    code, message, status = refused([{"Key": f"n{i}", "Value": "x"} for i in range(51)])
    assert (code, status) == ("ValidationError", 400)
    assert message == ("1 validation error detected: Value at 'tags' failed to satisfy constraint: "
                       "Member must have length less than or equal to 50")
    assert refused([{"Key": "k" * 129, "Value": "x"}]) == (
        "ValidationError", f"1 validation error detected: Value '{'k' * 129}' at 'tags.1.member.key' failed to "
                           "satisfy constraint: Member must have length less than or equal to 128", 400)
    assert refused([{"Key": "ok", "Value": "v" * 257}])[0::2] == ("ValidationError", 400)
    assert "at 'tags.1.member.value' failed to satisfy constraint: Member must have length less than or equal " \
           "to 256" in refused([{"Key": "ok", "Value": "v" * 257}])[1]
    assert refused([{"Key": "", "Value": "x"}])[0] == "ValidationError"
    assert refused([{"Key": "Env", "Value": "a"}, {"Key": "ENV", "Value": "b"}]) == (
        "InvalidInput", "Duplicate tag keys found. Please note that Tag keys are case insensitive.", 400)
    for reserved in ("aws:team", "AWS:team", "Aws:x"):
        assert refused([{"Key": reserved, "Value": "x"}])[0::2] == ("InvalidInput", 400)
    with pytest.raises(ClientError) as exc:
        iam.untag_open_id_connect_provider(OpenIDConnectProviderArn=arn, TagKeys=[f"k{i}" for i in range(51)])
    assert error(exc)[0] == "ValidationError"
    # nothing refused changed anything, and a whole request is refused when one tag in it is
    assert iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn)["Tags"] == before
    missing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/nowhere.pm.example.com"
    for call, kw in ((iam.tag_open_id_connect_provider, {"Tags": [{"Key": "a", "Value": "b"}]}),
                     (iam.untag_open_id_connect_provider, {"TagKeys": ["a"]}),
                     (iam.list_open_id_connect_provider_tags, {})):
        with pytest.raises(ClientError) as exc:
            call(OpenIDConnectProviderArn=missing, **kw)
        assert error(exc) == ("NoSuchEntity", f"OpenIDConnect Provider not found for arn {missing}", 404)


def test_aws_cli(server: Any, iam: Any, job: dict[str, Any], tmp_path: Path) -> None:
    keys = server.account(ACCOUNT)
    arn = new_provider(iam, "cli")
    env = server.env(AWS_ACCESS_KEY_ID=keys["access_key_id"], AWS_SECRET_ACCESS_KEY=keys["secret_access_key"],
                     HOME=str(tmp_path))

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AWS_CLI, "iam", *args, "--output", "json"], env=env, capture_output=True, text=True,
                              timeout=120)

    def ok(*args: str) -> Any:
        proc = aws(*args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    ok("add-client-id-to-open-id-connect-provider", "--open-id-connect-provider-arn", arn, "--client-id", "cli-app")
    ok("update-open-id-connect-provider-thumbprint", "--open-id-connect-provider-arn", arn,
       "--thumbprint-list", "c" * 40, "d" * 40)
    ok("tag-open-id-connect-provider", "--open-id-connect-provider-arn", arn,
       "--tags", "Key=team,Value=data", "Key=env,Value=dev")
    ok("untag-open-id-connect-provider", "--open-id-connect-provider-arn", arn, "--tag-keys", "env")
    got = ok("get-open-id-connect-provider", "--open-id-connect-provider-arn", arn)
    assert (got["ClientIDList"], got["ThumbprintList"]) == (["cli-app"], ["c" * 40, "d" * 40])
    assert ok("list-open-id-connect-provider-tags", "--open-id-connect-provider-arn", arn)["Tags"] == [
        {"Key": "team", "Value": "data"}]
    ok("remove-client-id-from-open-id-connect-provider", "--open-id-connect-provider-arn", arn,
       "--client-id", "cli-app")
    assert ok("get-open-id-connect-provider", "--open-id-connect-provider-arn", arn)["ClientIDList"] == []
    proc = aws("tag-open-id-connect-provider", "--open-id-connect-provider-arn", arn,
               "--tags", "Key=A,Value=1", "Key=a,Value=2")
    assert proc.returncode != 0
    assert "An error occurred (InvalidInput) when calling the TagOpenIDConnectProvider operation: Duplicate tag " \
           "keys found. Please note that Tag keys are case insensitive." in proc.stderr
    # the cluster's provider through the CLI: the audience added there is accepted by STS
    ok("add-client-id-to-open-id-connect-provider", "--open-id-connect-provider-arn", job["arn"],
       "--client-id", "cli-audience")
    assert job["assume"]("cli-audience")["Audience"] == "cli-audience"
