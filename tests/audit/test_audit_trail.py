"""The audit trail over the wire: boto3 calls against a live server, read back with `rolebridge audit`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import Server, rb
from cross_account import cross_account
from rolebridge.audit.events import HIDDEN

CLUSTER_ACCOUNT, ROLE_ACCOUNT, OTHER = "515151515101", "515151515102", "515151515103"


def events(server: Server, *args: str) -> list[dict[str, Any]]:
    return json.loads(rb("audit", "--json", "--limit", "100000", *args, data_dir=server.data_dir).stdout)


def one(found: list[dict[str, Any]], name: str, *, error: str | None = None) -> dict[str, Any]:
    matching = [e for e in found if e["eventName"] == name and e.get("errorCode") == error]
    assert len(matching) == 1, f"{name}/{error}: {[(e['eventName'], e.get('errorCode')) for e in found]}"
    return matching[0]


@pytest.fixture(scope="module")
def trail(server: Server) -> dict[str, Any]:
    """One scripted session of calls, allowed and refused; returns what it minted."""
    setup = cross_account(server, cluster="audit-c", cluster_account=CLUSTER_ACCOUNT,
                          role_account=ROLE_ACCOUNT, role_name="audited")
    iam = server.client("iam", ROLE_ACCOUNT)
    with pytest.raises(ClientError) as missing:
        iam.get_role(RoleName="no-such-role")
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"
    token = server.token(setup.cluster, setup.namespace, setup.service_account)
    sts = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="eu-west-1",
                       config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    assumed = sts.assume_role_with_web_identity(RoleArn=setup.role_arn, RoleSessionName="audit-session",
                                                WebIdentityToken=token)
    creds = assumed["Credentials"]
    wrong = server.token(setup.cluster, setup.namespace, "someone-else")
    with pytest.raises(ClientError) as refused:
        sts.assume_role_with_web_identity(RoleArn=setup.role_arn, RoleSessionName="audit-refused",
                                          WebIdentityToken=wrong)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    as_role = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="eu-west-2",
                           aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                           aws_session_token=creds["SessionToken"], config=Config(retries={"max_attempts": 1}))
    identity = as_role.get_caller_identity()
    bad = server.client("sts", aws_access_key_id="AKIAAAAAAAAAAAAAAAAA", aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError) as unknown:
        bad.get_caller_identity()
    assert unknown.value.response["Error"]["Code"] == "InvalidClientTokenId"
    return {"setup": setup, "token": token, "wrong": wrong, "creds": creds, "identity": identity,
            "admin": server.account(ROLE_ACCOUNT), "not_found_request": missing.value.response["ResponseMetadata"]}


def test_iam_calls_are_recorded_with_the_root_identity(server: Server, trail: dict[str, Any]) -> None:
    found = events(server, "--account", ROLE_ACCOUNT)
    admin = trail["admin"]
    create = one(found, "CreateRole")
    assert create["eventVersion"] == "1.08"
    assert create["eventSource"] == "iam.amazonaws.com" and create["awsRegion"] == "us-east-1"
    assert create["userIdentity"] == {"type": "Root", "principalId": ROLE_ACCOUNT,
                                      "arn": f"arn:aws:iam::{ROLE_ACCOUNT}:root", "accountId": ROLE_ACCOUNT,
                                      "accessKeyId": admin["access_key_id"]}
    assert create["requestParameters"]["roleName"] == "audited"
    assert json.loads(create["requestParameters"]["assumeRolePolicyDocument"])["Statement"][0]["Action"] == \
        "sts:AssumeRoleWithWebIdentity"
    assert create["responseElements"]["role"]["arn"] == trail["setup"].role_arn
    assert create["recipientAccountId"] == ROLE_ACCOUNT
    assert create["sourceIPAddress"] == "127.0.0.1" and "Boto3" in create["userAgent"]
    assert create["readOnly"] is False and create["eventType"] == "AwsApiCall"
    assert "errorCode" not in create


def test_refused_iam_call_has_aws_error_code_and_message(server: Server, trail: dict[str, Any]) -> None:
    failed = one(events(server, "--account", ROLE_ACCOUNT), "GetRole", error="NoSuchEntity")
    assert failed["errorMessage"] == "The role with name no-such-role cannot be found."
    assert failed["responseElements"] is None
    assert failed["requestID"] == trail["not_found_request"]["RequestId"]
    assert failed["readOnly"] is True


def test_web_identity_assume_is_a_web_identity_user_event_in_the_roles_account(
        server: Server, trail: dict[str, Any]) -> None:
    setup = trail["setup"]
    found = events(server, "--event-name", "AssumeRoleWithWebIdentity", "--account", ROLE_ACCOUNT)
    ok = one(found, "AssumeRoleWithWebIdentity")
    assert ok["eventSource"] == "sts.amazonaws.com"
    assert ok["awsRegion"] == "us-east-1"  # unsigned: no region in the request, the global endpoint's
    assert ok["userIdentity"] == {"type": "WebIdentityUser", "principalId":
                                  f"{setup.provider_url}:sts.amazonaws.com:{setup.sub}",
                                  "userName": setup.sub, "identityProvider": setup.provider_url}
    assert ok["recipientAccountId"] == ROLE_ACCOUNT  # the role's account, not the cluster's
    assert ok["requestParameters"] == {"roleArn": setup.role_arn, "roleSessionName": "audit-session",
                                       "webIdentityToken": HIDDEN}
    creds = ok["responseElements"]["credentials"]
    assert creds["accessKeyId"] == trail["creds"]["AccessKeyId"]
    assert creds["secretAccessKey"] == HIDDEN and creds["sessionToken"] == HIDDEN
    assert ok["responseElements"]["subjectFromWebIdentityToken"] == setup.sub
    assert ok["responseElements"]["provider"] == setup.provider_arn
    refused = one(found, "AssumeRoleWithWebIdentity", error="AccessDenied")
    assert refused["errorMessage"] == "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    assert refused["userIdentity"]["userName"] == f"system:serviceaccount:{setup.namespace}:someone-else"
    assert refused["requestParameters"]["webIdentityToken"] == HIDDEN
    assert refused["recipientAccountId"] == ROLE_ACCOUNT


def test_assumed_role_caller_has_session_context(server: Server, trail: dict[str, Any]) -> None:
    setup = trail["setup"]
    found = [e for e in events(server, "--event-name", "GetCallerIdentity", "--account", ROLE_ACCOUNT)
             if (e["userIdentity"].get("accessKeyId") == trail["creds"]["AccessKeyId"])]
    assert len(found) == 1
    ident = found[0]["userIdentity"]
    assert found[0]["awsRegion"] == "eu-west-2"  # the region the request was signed for
    assert ident["type"] == "AssumedRole"
    assert ident["arn"] == trail["identity"]["Arn"] == f"arn:aws:sts::{ROLE_ACCOUNT}:assumed-role/audited/audit-session"
    assert ident["principalId"] == trail["identity"]["UserId"]
    issuer = ident["sessionContext"]["sessionIssuer"]
    assert issuer == {"type": "Role", "principalId": trail["identity"]["UserId"].split(":")[0],
                      "arn": setup.role_arn, "accountId": ROLE_ACCOUNT, "userName": "audited"}
    assert ident["sessionContext"]["webIdFederationData"]["federatedProvider"] == setup.provider_arn
    assert found[0]["responseElements"] is None  # read-only, as CloudTrail


def test_unauthenticated_call_is_recorded_with_the_key_it_tried(server: Server, trail: dict[str, Any]) -> None:
    bad = [e for e in events(server, "--event-name", "GetCallerIdentity")
           if e.get("errorCode") == "InvalidClientTokenId"
           and e["userIdentity"].get("accessKeyId") == "AKIAAAAAAAAAAAAAAAAA"]
    assert len(bad) == 1
    assert bad[0]["userIdentity"]["type"] == "Unknown"
    assert bad[0]["errorMessage"] == "The security token included in the request is invalid."


def test_filters_and_jsonl_export(server: Server, trail: dict[str, Any], tmp_path: Path) -> None:
    everything = events(server, "--account", ROLE_ACCOUNT)
    out = tmp_path / "trail.jsonl"
    rb("audit", "export", "--jsonl", str(out), "--account", ROLE_ACCOUNT, data_dir=server.data_dir)
    lines = out.read_text().splitlines()
    assert [json.loads(line)["eventID"] for line in lines] == [e["eventID"] for e in everything]
    assert len({e["eventID"] for e in everything}) == len(everything)
    assert events(server, "--account", ROLE_ACCOUNT, "--since", "2999-01-01T00:00:00Z") == []
    assert len(events(server, "--account", ROLE_ACCOUNT, "--since", "1h")) == len(everything)
    assert {e["eventName"] for e in events(server, "--account", OTHER)} == set()
    errors_only = events(server, "--account", ROLE_ACCOUNT, "--errors")
    assert errors_only and all(e.get("errorCode") for e in errors_only)
    text = rb("audit", "--account", ROLE_ACCOUNT, "--event-name", "CreateRole", data_dir=server.data_dir).stdout
    assert "CreateRole" in text and f"arn:aws:iam::{ROLE_ACCOUNT}:root" in text


def test_no_token_or_secret_anywhere_in_the_trail_or_database(server: Server, trail: dict[str, Any]) -> None:
    secrets = [trail["token"], trail["wrong"], trail["creds"]["SecretAccessKey"], trail["creds"]["SessionToken"],
               trail["admin"]["secret_access_key"]]
    exported = rb("audit", "export", "--jsonl", "-", data_dir=server.data_dir).stdout
    assert exported.count("\n") >= 7
    db = server.data_dir / "rolebridge.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    raw = b"".join(p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
    for secret in secrets:
        assert secret not in exported
        # the JWT's signature part alone would be enough to replay it: look for that too
        for needle in {secret, secret.split(".")[-1]}:
            assert needle.encode() not in raw, f"{needle[:12]}... found in the data dir"


def test_a_refused_token_whose_claims_orjson_cannot_encode_still_reaches_the_trail(server: Server) -> None:
    """A token refused before its claims are checked (a lone surrogate in `sub`) is named in its
    event from the unverified claims; orjson refuses that string, the writer's standard-library
    fallback escapes it, and the follower and readers must read that line back (it was dropped)."""
    import base64

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = b'{"iss":"https://surrogate.example","aud":"sts.amazonaws.com","sub":"x\\ud800y"}'
    header = b64(b'{"alg":"RS256"}')
    token = f"{header}.{b64(payload)}.{b64(b'sig' * 86)}"
    sts = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                       config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError) as refused:
        sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::515151515104:role/surrogate",
                                          RoleSessionName="surrogate", WebIdentityToken=token)
    assert refused.value.response["Error"]["Code"] == "InvalidIdentityToken"
    request_id = refused.value.response["ResponseMetadata"]["RequestId"]
    found = [e for e in events(server, "--account", "515151515104") if e.get("requestID") == request_id]
    assert len(found) == 1, found
    assert found[0]["errorCode"] == "InvalidIdentityToken"
    assert found[0]["userIdentity"]["userName"] == "x\ud800y"
