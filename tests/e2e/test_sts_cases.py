"""Every failure case of reference/sts-cases.json, replayed against the live server.

Each case runs against a local issuer of the test's own (HTTPS with its own CA, pinned by
thumbprint), with `oidc.example.test/id/ABC` rewritten to it and the case's account IDs made
unique so cases cannot see each other. Over the wire, token times are shifted to now (the server
runs on the real clock); in-process, the same case is replayed at its recorded `EvaluatedAt` so
messages that carry timestamps are compared exactly.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from local_issuer import LocalIssuer

from rolebridge.bootstrap import open_services
from rolebridge.http.query import decode_params
from rolebridge.sts.diagnose import diagnose_web_identity

CASES_FILE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "sts-cases.json"
if not CASES_FILE.exists():  # CI lays shared/ beside the clone
    CASES_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "sts-cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text())


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory):
    iss = LocalIssuer(tmp_path_factory.mktemp("issuer"))
    yield iss
    iss.close()


def localize(case: dict[str, Any], index: int, issuer: LocalIssuer) -> dict[str, Any]:
    text = json.dumps(case)
    text = text.replace("https://oidc.example.test/id/ABC", issuer.url)
    text = text.replace("oidc.example.test/id/ABC", issuer.host_path)
    text = text.replace("111111111111", f"{40 + index:02d}1111111111").replace("222222222222", f"{40 + index:02d}2222222222")
    return json.loads(text)


def setup_case(server, case: dict[str, Any], issuer: LocalIssuer) -> None:
    for provider in case["provider"]:
        iam = server.client("iam", provider["account"])
        try:
            iam.create_open_id_connect_provider(Url=provider["url"], ClientIDList=provider["client_ids"],
                                                ThumbprintList=[issuer.thumbprint])
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "EntityAlreadyExists"
    role = case["role"]
    if role["exists"]:
        account = role["arn"].split(":")[4]
        name = role["arn"].rsplit("/", 1)[1]
        iam = server.client("iam", account)
        try:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(case["trust_policy"]),
                            MaxSessionDuration=role["max_session_duration"])
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "EntityAlreadyExists"


def token_for(case: dict[str, Any], issuer: LocalIssuer, *, shift: int) -> str:
    claims = dict(case["token_claims"])
    for k in ("iat", "nbf", "exp"):
        if isinstance(claims.get(k), int):
            claims[k] += shift
    forged = case.get("issuer", {}).get("note", "").startswith("token's kid/signature do not correspond")
    return issuer.sign(claims, forged=forged)


def params(case: dict[str, Any], token: str) -> dict[str, Any]:
    req = case["request"]
    out: dict[str, Any] = {"RoleArn": req["RoleArn"], "RoleSessionName": req["RoleSessionName"],
                           "WebIdentityToken": token}
    if "DurationSeconds" in req:
        out["DurationSeconds"] = req["DurationSeconds"]
    return out


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c['id']}-{c['kind']}" for c in CASES])
def test_case_over_the_wire(server, issuer, index: int) -> None:
    case = localize(CASES[index], index, issuer)
    setup_case(server, case, issuer)
    shift = int(time.time()) - case["request"]["EvaluatedAt"]
    sts = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                       config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    expected = case["expected"]
    call = params(case, token_for(case, issuer, shift=shift))
    if expected["outcome"] == "success":
        out = sts.assume_role_with_web_identity(**call)
        assert out["AssumedRoleUser"]["Arn"] == expected["assumed_role_arn"]
        assert out["SubjectFromWebIdentityToken"] == case["token_claims"]["sub"]
        assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
        return
    with pytest.raises(ClientError) as info:
        sts.assume_role_with_web_identity(**call)
    err = info.value.response
    assert err["Error"]["Code"] == expected["error_code"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == expected["http_status"]
    if expected["error_message"] is None:
        return
    if expected["error_code"] == "ExpiredTokenException":  # carries the (shifted) clock: compare its shape
        exp = case["token_claims"]["exp"] + shift
        assert re.fullmatch(rf"Token expired: current date/time \d+ must be before the expiration date/time{exp}",
                            err["Error"]["Message"])
    else:
        assert err["Error"]["Message"] == expected["error_message"]


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c['id']}-{c['kind']}" for c in CASES])
def test_case_at_recorded_time(server, issuer, index: int) -> None:
    """The same case in-process at its EvaluatedAt: exact messages, and the trace names a failed check."""
    case = localize(CASES[index], index, issuer)
    setup_case(server, case, issuer)
    services = open_services(str(server.data_dir))
    req = case["request"]
    diagnosis = diagnose_web_identity(services, role_arn=req["RoleArn"], token=token_for(case, issuer, shift=0),
                                      session_name=req["RoleSessionName"], duration=req.get("DurationSeconds"),
                                      now=req["EvaluatedAt"],
                                      validate=lambda flat: decode_params("sts", "AssumeRoleWithWebIdentity", flat))
    expected = case["expected"]
    assert diagnosis.outcome == expected["outcome"]
    if expected["outcome"] == "success":
        assert diagnosis.result is not None
        assert diagnosis.result["AssumedRoleUser"]["Arn"] == expected["assumed_role_arn"]
        return
    assert diagnosis.error_code == expected["error_code"]
    assert diagnosis.error is not None and diagnosis.error.status == expected["http_status"]
    if expected["error_message"] is not None:
        assert diagnosis.error.message == expected["error_message"]
    assert diagnosis.trace.failed is not None and diagnosis.trace.failed.detail
