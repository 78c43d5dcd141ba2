"""Hostile input at the HTTP edge of a live server: every answer is an AWS error document.

Methods the Query endpoint does not serve get an AWS ``MethodNotAllowed`` error document rather
than Starlette's plain-text body; malformed SigV4, security tokens and policy documents are AWS
errors with their real codes, and a refused write leaves no state behind.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import Server

ACCOUNT = "686868686868"


def error_code(response: httpx.Response) -> str:
    root = ET.fromstring(response.content)
    assert root.tag.endswith("ErrorResponse"), response.text
    code = root.find("./{*}Error/{*}Code")
    assert code is not None and code.text, response.text
    return code.text


def signed(server: Server, params: dict[str, str] | None = None, *, body: bytes | str | None = None,
           service: str = "iam", method: str = "POST", headers: dict[str, str] | None = None) -> httpx.Response:
    keys = server.account(ACCOUNT)
    data = body if body is not None else urlencode(params or {}, quote_via=quote)
    req = AWSRequest(method=method, url=server.url + "/", data=data,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **(headers or {})})
    SigV4Auth(Credentials(keys["access_key_id"], keys["secret_access_key"]), service, "us-east-1").add_auth(req)
    return httpx.request(method, server.url + "/", content=data, headers=dict(req.headers), verify=server.ca_bundle,
                         timeout=60)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_unserved_methods_on_the_query_endpoint_are_aws_errors(server: Server, method: str) -> None:
    plain = httpx.request(method, server.url + "/", content=b"x", verify=server.ca_bundle, timeout=30)
    assert plain.status_code == 405
    assert error_code(plain) == "MethodNotAllowed"
    assert signed(server, {"Action": "ListRoles", "Version": "2010-05-08"}, method=method).status_code == 405


def test_post_to_an_issuer_route_is_an_aws_error(server: Server) -> None:
    r = httpx.post(server.url + "/oidc/anything/.well-known/openid-configuration", verify=server.ca_bundle, timeout=30)
    assert r.status_code == 405 and error_code(r) == "MethodNotAllowed"


@pytest.mark.parametrize(("authorization", "code"), [
    ("", "IncompleteSignature"),
    ("garbage", "IncompleteSignature"),
    ("AWS4-HMAC-SHA256", "IncompleteSignature"),
    ("AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=00", "IncompleteSignature"),
    ("AWS4-HMAC-SHA256 Credential=" + "A" * 60000, "IncompleteSignature"),
    ("AWS4-HMAC-SHA256 Credential=AKIAXXXXXXXXXXXXXXXX/20260101/us-east-1/iam/aws4_request, "
     "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64, "InvalidClientTokenId"),
])
def test_malformed_sigv4_headers(server: Server, authorization: str, code: str) -> None:
    r = httpx.post(server.url + "/", content="Action=ListRoles&Version=2010-05-08", verify=server.ca_bundle,
                   headers={"Content-Type": "application/x-www-form-urlencoded", "X-Amz-Date": "20260101T000000Z",
                            "Authorization": authorization}, timeout=30)
    assert 400 <= r.status_code < 500
    assert error_code(r) == code


@pytest.mark.parametrize("token", ["x" * 400, "A" * 200_000, "SGVsbG8=" * 50])
def test_bogus_security_tokens_are_invalid_client_token_id(server: Server, token: str) -> None:
    r = signed(server, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, service="sts",
               headers={"X-Amz-Security-Token": token})
    assert r.status_code == 403 and error_code(r) == "InvalidClientTokenId"


@pytest.mark.parametrize(("document", "code"), [
    ('{"Version":"2012-10-17","Statement":' + "[" * 5000 + "]" * 5000 + "}", "MalformedPolicyDocument"),
    ('{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}', "MalformedPolicyDocument"),
    ("[]", "MalformedPolicyDocument"),
    ('{"Version":"2012-10-17","Statement":[{"Sid":"' + "a" * 1_000_000 + '"}]}', "ValidationError"),
])
def test_hostile_trust_documents_are_refused_and_leave_no_role(server: Server, document: str, code: str) -> None:
    name = f"hostile-{abs(hash(document)) % 10**8}"
    r = signed(server, {"Action": "CreateRole", "Version": "2010-05-08", "RoleName": name,
                        "AssumeRolePolicyDocument": document})
    assert error_code(r) == code
    gone = signed(server, {"Action": "GetRole", "Version": "2010-05-08", "RoleName": name})
    assert gone.status_code == 404 and error_code(gone) == "NoSuchEntity"


def test_invalid_utf8_form_is_malformed_query_string(server: Server) -> None:
    r = signed(server, body=b"Action=CreateRole&Version=2010-05-08&RoleName=utf8&AssumeRolePolicyDocument=%ff")
    assert r.status_code == 400 and error_code(r) == "MalformedQueryString"


@pytest.mark.parametrize(("length", "code"), [(3, "ValidationError"), (4, "InvalidIdentityToken"),
                                              (20_000, "InvalidIdentityToken"), (20_001, "ValidationError")])
def test_web_identity_token_length_bounds(server: Server, length: int, code: str) -> None:
    body = urlencode({"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                      "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/none", "RoleSessionName": "sess",
                      "WebIdentityToken": "a" * length})
    r = httpx.post(server.url + "/", content=body, verify=server.ca_bundle, timeout=30,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and error_code(r) == code


def test_role_name_length_limits(server: Server) -> None:
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}]})
    ok = signed(server, {"Action": "CreateRole", "Version": "2010-05-08", "RoleName": "r" * 64,
                         "AssumeRolePolicyDocument": trust})
    assert ok.status_code == 200, ok.text
    long = signed(server, {"Action": "CreateRole", "Version": "2010-05-08", "RoleName": "r" * 65,
                           "AssumeRolePolicyDocument": trust})
    assert long.status_code == 400 and error_code(long) == "ValidationError"
