"""Every registered operation's response shape, filled with synthetic values in every member, serialized
by us and parsed back by botocore's own QueryParser (real handler responses: test_live_shapes.py)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Any

import botocore.model
import botocore.parsers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolebridge import errors
from rolebridge.http import app as _app  # noqa: F401 - registers every operation
from rolebridge.http.models import SERVICES, operation_model, service_model
from rolebridge.http.xml import serialize_error, serialize_result
from rolebridge.iam.registry import OPERATIONS as REGISTERED

# Every registered operation (registering one adds it here); live responses: test_live_shapes.py
OPERATIONS = sorted(REGISTERED)
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def sample(shape: botocore.model.Shape, name: str, depth: int = 0) -> Any:
    """A value for every member of ``shape``, with characters XML must escape in every string."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, botocore.model.StructureShape)
        if depth > 6:
            return {}
        return {m: sample(s, m, depth + 1) for m, s in shape.members.items()}
    if kind == "list":
        assert isinstance(shape, botocore.model.ListShape)
        return [sample(shape.member, name, depth + 1) for _ in range(2)]
    if kind == "map":
        assert isinstance(shape, botocore.model.MapShape)
        keys = shape.key.enum[:2] if shape.key.enum else ["k1", "k2 <&>"]
        return {k: sample(shape.value, name, depth + 1) for k in keys}
    if kind in ("integer", "long"):
        return 42
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return WHEN
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        if shape.name == "policyDocumentType":
            return POLICY
        return f"{name}-value <&> \"'é"
    raise AssertionError(f"unhandled {kind}")


def parse(body: bytes, shape: botocore.model.Shape | None, status: int = 200) -> dict[str, Any]:
    parsed = botocore.parsers.QueryParser().parse({"body": body, "headers": {}, "status_code": status}, shape)
    parsed.pop("ResponseMetadata")
    return parsed


def url_decode_policies(value: Any, shape: botocore.model.Shape) -> Any:
    """What botocore's ``json_decode_policies`` handler does on the client (for the comparison)."""
    if shape.type_name == "structure":
        return {k: url_decode_policies(v, shape.members[k]) for k, v in value.items()}
    if shape.type_name == "list":
        return [url_decode_policies(v, shape.member) for v in value]
    if shape.type_name == "map":
        return {k: url_decode_policies(v, shape.value) for k, v in value.items()}
    if shape.name == "policyDocumentType":
        return urllib.parse.unquote(value)
    return value


@pytest.mark.parametrize(("service", "action"), OPERATIONS, ids=[f"{s}:{a}" for s, a in OPERATIONS])
def test_result_round_trips_through_botocore(service: str, action: str) -> None:
    op = operation_model(service, action)
    shape = op.output_shape
    result = sample(shape, action) if shape is not None else None
    body = serialize_result(service, action, result, "req-1")
    parsed = botocore.parsers.QueryParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"
    parsed.pop("ResponseMetadata")
    if shape is None:
        assert parsed == {}
        assert body.count(b"<ResponseMetadata>") == 1
        assert f"<{action}Response xmlns=\"{SERVICES[service][1]}\">".encode() in body
        return
    assert url_decode_policies(parsed, shape) == result


def test_envelope_and_wire_formats() -> None:
    body = serialize_result(
        "sts",
        "AssumeRoleWithWebIdentity",
        {
            "Credentials": {"AccessKeyId": "ASIA1", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": WHEN},
            "PackedPolicySize": 0,
        },
        "rid",
    ).decode()
    assert '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">' in body
    assert "<AssumeRoleWithWebIdentityResult><Credentials>" in body
    assert "<Expiration>2026-01-02T03:04:05Z</Expiration>" in body
    assert "<PackedPolicySize>0</PackedPolicySize>" in body  # zero is a value, not an absence
    assert "<Provider>" not in body  # None/absent members are left out
    assert body.endswith("<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>")


def test_list_map_boolean_and_policy_document_encoding() -> None:
    body = serialize_result(
        "iam",
        "ListRoles",
        {"Roles": [{"Path": "/", "RoleName": "r", "RoleId": "AROA1", "Arn": "arn:aws:iam::1:role/r",
                    "CreateDate": dt.datetime(2026, 1, 2, 3, 4, 5), "AssumeRolePolicyDocument": '{"a": 1}'}],
         "IsTruncated": False},
        "rid",
    ).decode()
    assert "<Roles><member><Path>/</Path>" in body
    assert "<CreateDate>2026-01-02T03:04:05Z</CreateDate>" in body  # naive datetimes are UTC
    assert "<AssumeRolePolicyDocument>%7B%22a%22%3A%201%7D</AssumeRolePolicyDocument>" in body
    assert "<IsTruncated>false</IsTruncated>" in body
    summary = serialize_result("iam", "GetAccountSummary", {"SummaryMap": {"Roles": 3}}, "r").decode()
    assert "<SummaryMap><entry><key>Roles</key><value>3</value></entry></SummaryMap>" in summary


def test_unknown_result_member_is_refused() -> None:
    with pytest.raises(KeyError, match="Rolle"):
        serialize_result("iam", "GetRole", {"Rolle": {}}, "r")
    with pytest.raises(KeyError):
        serialize_result("iam", "DeleteRole", {"Anything": 1}, "r")


def test_characters_xml_cannot_carry_are_replaced() -> None:
    body = serialize_result("sts", "GetCallerIdentity", {"UserId": "a\x00b\x1fc", "Account": "1", "Arn": "x"}, "r")
    assert parse(body, operation_model("sts", "GetCallerIdentity").output_shape)["UserId"] == "a\ufffdb\ufffdc"
    # a lone surrogate is no character: written as "&#55296;" it made a document no parser accepts
    body = serialize_result("sts", "GetCallerIdentity", {"UserId": "u", "Account": "1", "Arn": "x\ud800y"}, "r")
    assert parse(body, operation_model("sts", "GetCallerIdentity").output_shape)["Arn"] == "x\ufffdy"
    error = serialize_error("sts", errors.AccessDenied("no \udfff"), "r")
    assert b"&#" not in error and "no \ufffd".encode() in error


@pytest.mark.parametrize(
    ("service", "error"),
    [
        ("sts", errors.AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity")),
        ("sts", errors.InvalidIdentityToken("No OpenIDConnect provider found in your account for https://x/<&>")),
        ("sts", errors.ExpiredTokenException("Token expired: current date/time 2 must be before 1")),
        ("iam", errors.NoSuchEntity("The role with name r cannot be found.")),
        ("iam", errors.EntityAlreadyExists("Provider with url https://a already exists.")),
        ("iam", errors.InternalFailure()),
        ("sts", errors.SignatureDoesNotMatch()),
    ],
    ids=lambda v: v if isinstance(v, str) else v.code,
)
def test_error_parses_in_botocore(service: str, error: errors.AWSError) -> None:
    body = serialize_error(service, error, "req-9")
    parsed = botocore.parsers.QueryParser().parse({"body": body, "headers": {}, "status_code": error.status}, None)
    assert parsed["Error"] == {"Type": error.fault_type, "Code": error.code, "Message": error.message}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"
    assert body.decode().startswith("<?xml")
    assert f'<ErrorResponse xmlns="{SERVICES[service][1]}"><Error><Type>'.encode() in body


def test_error_type_is_sender_or_receiver() -> None:
    assert b"<Type>Sender</Type>" in serialize_error("iam", errors.NoSuchEntity("x"), "r")
    assert b"<Type>Receiver</Type>" in serialize_error("iam", errors.ServiceFailure(), "r")


def test_services_table_matches_botocore_models() -> None:
    for service, (version, ns) in SERVICES.items():
        model = service_model(service)
        assert model.api_version == version
        assert model.metadata["xmlNamespace"] == ns
        assert model.protocol == "query"


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_element_text_fast_path_matches_the_full_escape(value: str) -> None:
    """_text skips the substitution when nothing needs it; the answer is the full escape's."""
    from xml.sax.saxutils import escape

    from rolebridge.http import xml as xml_mod

    assert xml_mod._text(value) == escape(xml_mod._NOT_XML.sub("\ufffd", value))
