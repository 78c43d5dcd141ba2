"""Bad requests get AWS-shaped errors: never a 500, never a traceback, nothing written."""

from __future__ import annotations

import httpx
import pytest


def post(server, data: dict[str, str] | bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(verify=server.ca_bundle, timeout=10) as client:
        return client.post(server.url + "/", data=data if isinstance(data, dict) else None,
                           content=data if isinstance(data, bytes) else None, headers=headers)


def code_of(response: httpx.Response) -> str:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(response.content)
    assert root.tag.endswith("ErrorResponse"), response.text
    return next(el.text for el in root.iter() if el.tag.endswith("Code")) or ""


JWT_ISH = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL3gifQ.c2ln"
ARWWI = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
         "RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "s1"}


@pytest.mark.parametrize(("data", "status", "code"), [
    ({"Version": "2011-06-15"}, 400, "MissingAction"),
    ({"Action": "NoSuchThing", "Version": "2011-06-15"}, 400, "InvalidAction"),
    ({**ARWWI}, 400, "ValidationError"),  # no token
    ({**ARWWI, "WebIdentityToken": "x" * 20001}, 400, "ValidationError"),
    ({**ARWWI, "WebIdentityToken": "abc"}, 400, "ValidationError"),  # shorter than 4
    ({**ARWWI, "WebIdentityToken": "not-a-jwt-at-all"}, 400, "InvalidIdentityToken"),
    ({**ARWWI, "WebIdentityToken": JWT_ISH, "DurationSeconds": "abc"}, 400, "ValidationError"),
    ({**ARWWI, "WebIdentityToken": JWT_ISH, "DurationSeconds": "600"}, 400, "ValidationError"),
    ({**ARWWI, "WebIdentityToken": JWT_ISH, "RoleSessionName": "a/b"}, 400, "ValidationError"),
    ({**ARWWI, "WebIdentityToken": JWT_ISH, "RoleArn": "not-an-arn-but-long-enough"}, 400, "ValidationError"),
    ({**ARWWI, "WebIdentityToken": JWT_ISH}, 400, "InvalidIdentityToken"),  # no provider for iss
    ({"Action": "GetCallerIdentity", "Version": "2011-06-15"}, 403, "MissingAuthenticationToken"),
    ({"Action": "CreateRole", "Version": "2010-05-08", "RoleName": "x", "AssumeRolePolicyDocument": "{}"},
     403, "MissingAuthenticationToken"),
])
def test_malformed_requests(server, data, status, code) -> None:
    response = post(server, data)
    assert response.status_code == status, response.text
    assert code_of(response) == code
    assert "Traceback" not in response.text


def test_broken_form_encoding(server) -> None:
    response = post(server, b"Action=GetCallerIdentity&Version=2011-06-15&%ZZ=\xff\xfe",
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert "Traceback" not in response.text


def test_oversized_body_is_refused(server) -> None:
    response = post(server, b"Action=GetCallerIdentity&x=" + b"a" * (3 * 1024 * 1024),
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert "Traceback" not in response.text


def test_unknown_access_key_and_bad_signature(server) -> None:
    from botocore.exceptions import ClientError

    keys = server.account("530000000003")
    bad_key = server.client("iam", aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError) as info:
        bad_key.list_roles() if hasattr(bad_key, "list_roles") else None
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    bad_secret = server.client("iam", aws_access_key_id=keys["access_key_id"], aws_secret_access_key="y" * 40)
    with pytest.raises(ClientError) as info:
        bad_secret.list_open_id_connect_providers()
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_iam_acts_only_in_the_callers_account(server) -> None:
    from botocore.exceptions import ClientError

    a, b = server.client("iam", "530000000004"), server.client("iam", "530000000005")
    arn = a.create_open_id_connect_provider(Url="https://issuer.example.com/a", ClientIDList=["x"],
                                            ThumbprintList=["a" * 40])["OpenIDConnectProviderArn"]
    with pytest.raises(ClientError) as info:
        b.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    # IAM resources have no resource policies: another account's root is simply not authorized
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert "arn:aws:iam::530000000005:root is not authorized" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        b.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert a.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["Url"] == "issuer.example.com/a"
    assert arn not in [p["Arn"] for p in b.list_open_id_connect_providers()["OpenIDConnectProviderList"]]


def test_iam_errors_as_aws_gives_them(server) -> None:
    from botocore.exceptions import ClientError

    iam = server.client("iam", "530000000006")
    with pytest.raises(ClientError) as info:
        iam.create_open_id_connect_provider(Url="http://insecure.example.com", ClientIDList=["x"],
                                            ThumbprintList=["a" * 40])
    assert info.value.response["Error"] == {**info.value.response["Error"], "Code": "ValidationError",
                                            "Message": "Invalid Open ID Connect Provider URL"}
    iam.create_open_id_connect_provider(Url="https://dup.example.com", ClientIDList=["x"], ThumbprintList=["a" * 40])
    with pytest.raises(ClientError) as info:
        iam.create_open_id_connect_provider(Url="https://dup.example.com", ClientIDList=["x"],
                                            ThumbprintList=["a" * 40])
    assert info.value.response["Error"]["Code"] == "EntityAlreadyExists"
    assert info.value.response["Error"]["Message"] == "Provider with url https://dup.example.com already exists."
    with pytest.raises(ClientError) as info:
        iam.create_open_id_connect_provider(Url="https://many.example.com", ThumbprintList=["a" * 40] * 6)
    assert info.value.response["Error"]["Code"] == "InvalidInput"
    missing = "arn:aws:iam::530000000006:oidc-provider/nope.example.com"
    with pytest.raises(ClientError) as info:
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=missing)
    assert info.value.response["Error"]["Message"] == f"OpenIDConnect Provider not found for arn {missing}"
    with pytest.raises(ClientError) as info:
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=missing)
    assert info.value.response["Error"]["Message"] == f"OpenId connect Provider {missing} cannot be found."
    with pytest.raises(ClientError) as info:
        iam.create_role(RoleName="bad", AssumeRolePolicyDocument="{not json")
    assert info.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    with pytest.raises(ClientError) as info:
        iam.get_role(RoleName="nope")
    assert info.value.response["Error"]["Code"] == "NoSuchEntity"
    assert iam.list_roles()["Roles"] == [] or all(r["RoleName"] != "bad" for r in iam.list_roles()["Roles"])


def test_role_and_inline_policies_round_trip(server) -> None:
    import json

    iam = server.client("iam", "530000000007")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "530000000007"},
                                                     "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="r1", Path="/team/", AssumeRolePolicyDocument=json.dumps(trust),
                           MaxSessionDuration=7200)["Role"]
    assert role["Arn"] == "arn:aws:iam::530000000007:role/team/r1"
    assert role["RoleId"].startswith("AROA") and len(role["RoleId"]) == 21
    got = iam.get_role(RoleName="r1")["Role"]
    assert got["AssumeRolePolicyDocument"] == trust  # botocore decodes the URL-encoded JSON
    assert got["MaxSessionDuration"] == 7200
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    iam.put_role_policy(RoleName="r1", PolicyName="read", PolicyDocument=json.dumps(doc))
    assert iam.list_role_policies(RoleName="r1")["PolicyNames"] == ["read"]
    assert iam.get_role_policy(RoleName="r1", PolicyName="read")["PolicyDocument"] == doc
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        iam.delete_role(RoleName="r1")
    assert info.value.response["Error"]["Code"] == "DeleteConflict"
    iam.delete_role_policy(RoleName="r1", PolicyName="read")
    iam.delete_role(RoleName="r1")


@pytest.mark.parametrize("data", [
    {"Action": "GetCallerIdentity", "Version": "2011-06-15"},
    {**ARWWI, "WebIdentityToken": JWT_ISH},
    {"Version": "2011-06-15"},
])
def test_fast_path_and_route_answer_alike(server, data) -> None:
    # Plain `POST /` is answered in front of Starlette (http/query_api.QueryEndpoint); a POST with a query
    # string goes through the Starlette route. Both must give the same status, headers and document.
    import re
    import urllib.parse

    fast = post(server, data)
    with httpx.Client(verify=server.ca_bundle, timeout=10) as client:
        routed = client.post(server.url + "/?" + urllib.parse.urlencode({"x": "1"}), data=data)
    strip = lambda r: re.sub(rb"<RequestId>[^<]+</RequestId>", b"", r.content)  # noqa: E731
    assert (fast.status_code, strip(fast)) == (routed.status_code, strip(routed))
    for name in ("content-type", "content-length"):
        assert fast.headers[name] == routed.headers[name]
    assert fast.headers["x-amzn-requestid"] and fast.headers["x-amzn-requestid"] != routed.headers["x-amzn-requestid"]
    assert fast.headers["x-amzn-requestid"].encode() in fast.content


def test_fast_path_refuses_oversized_body(server) -> None:
    response = post(server, b"Action=GetCallerIdentity&Version=2011-06-15&Pad=" + b"x" * (2 * 1024 * 1024 + 1),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and code_of(response) == "ValidationError"


@pytest.mark.parametrize("path", ["/", "/?x=1"])
def test_refused_before_reading_the_body_closes_the_connection(server, path) -> None:
    # a 400 for an oversized Content-Length left the connection open with the body unread: the client's
    # next request on it was taken as body and hung
    import socket
    import ssl

    host, port = server.url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cafile=server.ca_bundle)
    with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     "Content-Length: 3145728\r\n\r\nAction=GetCallerIdentity".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 400") and b"connection: close" in head
    assert b"<Code>ValidationError</Code>" in data
