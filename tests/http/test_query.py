"""Query decoding: botocore's own QuerySerializer output decodes back; AWS's validation texts."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import botocore.serialize
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rolebridge import errors
from rolebridge.http import app as _app  # noqa: F401 - registers every operation's handler
from rolebridge.http.models import operation_model, service_for
from rolebridge.http.query import MAX_FIELDS, MAX_QUERY_BYTES, decode_params, form_pairs, parse_query
from rolebridge.iam.registry import OPERATIONS

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("sts", "AssumeRoleWithWebIdentity", {
        "RoleArn": "arn:aws:iam::222222222222:role/cross-account-sample-dev",
        "RoleSessionName": "botocore-session-1",
        "WebIdentityToken": "eyJhbGciOiJSUzI1NiJ9.e30.sig",
        "DurationSeconds": 3600,
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
    }),
    ("sts", "AssumeRole", {
        "RoleArn": "arn:aws:iam::222222222222:role/r",
        "RoleSessionName": "s1",
        "Tags": [{"Key": "team", "Value": "data"}, {"Key": "env", "Value": "dev"}],
        "TransitiveTagKeys": ["team"],
        "Policy": '{"Version": "2012-10-17", "Statement": []}',
        "ExternalId": "ext-id",
    }),
    ("sts", "GetCallerIdentity", {}),
    ("sts", "GetSessionToken", {"DurationSeconds": 900}),
    ("iam", "CreateOpenIDConnectProvider", {
        "Url": "https://127.0.0.1:8443/oidc/c1",
        "ClientIDList": ["sts.amazonaws.com", "other"],
        "ThumbprintList": ["a" * 40],
        "Tags": [{"Key": "k", "Value": "v with spaces =+:/@-_."}],
    }),
    ("iam", "UpdateOpenIDConnectProviderThumbprint", {
        "OpenIDConnectProviderArn": "arn:aws:iam::1:oidc-provider/x", "ThumbprintList": []}),
    ("iam", "CreateRole", {
        "RoleName": "cross-account-sample-dev",
        "Path": "/jobs/",
        "AssumeRolePolicyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}',
        "Description": "a role",
        "MaxSessionDuration": 43200,
        "PermissionsBoundary": "arn:aws:iam::1:policy/boundary",
        "Tags": [{"Key": "a", "Value": ""}],
    }),
    ("iam", "ListRoles", {"PathPrefix": "/jobs/", "Marker": "abc", "MaxItems": 10}),
    ("iam", "UntagRole", {"RoleName": "r", "TagKeys": ["a", "b", "c"]}),
    ("iam", "UpdateRole", {"RoleName": "r", "Description": "", "MaxSessionDuration": 3600}),
    ("iam", "ListPolicies", {"Scope": "Local", "OnlyAttached": True, "PathPrefix": "/", "MaxItems": 100}),
    ("iam", "CreatePolicyVersion", {"PolicyArn": "arn:aws:iam::1:policy/p", "PolicyDocument": "{}",
                                    "SetAsDefault": False}),
    ("iam", "GetAccountSummary", {}),
]


def serialize(service: str, action: str, params: dict[str, Any]) -> dict[str, str]:
    request = botocore.serialize.create_serializer("query").serialize_to_request(
        params, operation_model(service, action)
    )
    return {k: str(v) for k, v in request["body"].items()}


@pytest.mark.parametrize(("service", "action", "params"), CASES, ids=[c[1] for c in CASES])
def test_botocore_serialized_request_decodes_back(service: str, action: str, params: dict[str, Any]) -> None:
    flat = serialize(service, action, params)
    assert flat["Action"] == action
    assert service_for(flat["Action"], flat["Version"]) == service
    # Over the wire: form-encoded, then parsed back.
    body = urllib.parse.urlencode(flat).encode()
    assert decode_params(service, action, parse_query(body)) == params


def test_timestamps_and_booleans_are_converted() -> None:
    # No implemented operation takes a timestamp input; a map/timestamp-free check of types:
    got = decode_params("iam", "ListPolicies", {"OnlyAttached": "TRUE", "MaxItems": "5"})
    assert got == {"OnlyAttached": True, "MaxItems": 5}


def test_unknown_params_are_ignored() -> None:
    got = decode_params("iam", "GetRole", {"Action": "GetRole", "Version": "2010-05-08", "RoleName": "r",
                                           "X-Amz-Date": "x", "Bogus": "1"})
    assert got == {"RoleName": "r"}


def _message(service: str, action: str, flat: dict[str, str]) -> str:
    with pytest.raises(errors.ValidationError) as info:
        decode_params(service, action, flat)
    assert info.value.code == "ValidationError" and info.value.status == 400
    return info.value.message


def test_aws_observed_messages() -> None:
    base = {"RoleArn": "arn:aws:iam::1:role/role-name", "WebIdentityToken": "abcd"}
    assert _message("sts", "AssumeRoleWithWebIdentity", {**base, "RoleSessionName": "Session1:2"}) == (
        "1 validation error detected: Value 'Session1:2' at 'roleSessionName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\w+=,.@-]*"
    )
    long_name = "s" * 65
    assert _message("sts", "AssumeRoleWithWebIdentity", {**base, "RoleSessionName": long_name}) == (
        f"1 validation error detected: Value '{long_name}' at 'roleSessionName' failed to satisfy constraint: "
        "Member must have length less than or equal to 64"
    )
    assert _message("sts", "AssumeRoleWithWebIdentity",
                    {**base, "RoleSessionName": "ok", "DurationSeconds": "600"}) == (
        "1 validation error detected: Value '600' at 'durationSeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 900"
    )


def test_batched_list_member_constraints_as_aws_reports_them() -> None:
    flat = {"Url": "https://" + "a" * 300, "ClientIDList.member.1": "", "ThumbprintList.member.1": "abc"}
    assert _message("iam", "CreateOpenIDConnectProvider", flat) == (
        "3 validation errors detected: Value at 'clientIDList' failed to satisfy constraint: Member must "
        "satisfy constraint: [Member must have length less than or equal to 255, Member must have length "
        "greater than or equal to 1]; Value at 'thumbprintList' failed to satisfy constraint: Member must "
        "satisfy constraint: [Member must have length less than or equal to 40, Member must have length "
        "greater than or equal to 40]; Value at 'url' failed to satisfy constraint: Member must have length "
        "less than or equal to 255"
    )


def test_missing_required_members_and_nested_paths() -> None:
    msg = _message("iam", "CreateRole", {"RoleName": "bad/name", "Tags.member.1.Key": "k"})
    assert msg == (
        "3 validation errors detected: Value null at 'assumeRolePolicyDocument' failed to satisfy constraint: "
        "Member must not be null; Value 'bad/name' at 'roleName' failed to satisfy constraint: Member must "
        "satisfy regular expression pattern: [\\w+=,.@-]+; Value null at 'tags.1.member.value' failed to "
        "satisfy constraint: Member must not be null"
    )


def test_list_length_and_tag_patterns() -> None:
    flat = {"RoleName": "r"} | {f"TagKeys.member.{i}": f"k{i}" for i in range(1, 52)}
    assert _message("iam", "UntagRole", flat) == (
        "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: "
        "Member must have length less than or equal to 50"
    )
    # Tag keys allow Unicode letters (\p{L}) but not control characters; \w is ASCII as in Java.
    assert decode_params("iam", "TagRole", {"RoleName": "r", "Tags.member.1.Key": "équipe",
                                            "Tags.member.1.Value": "données"})["Tags"][0]["Key"] == "équipe"
    assert "at 'tags.1.member.key'" in _message(
        "iam", "TagRole", {"RoleName": "r", "Tags.member.1.Key": "a\x01", "Tags.member.1.Value": "v"})
    assert "Value 'rôle' at 'roleName'" in _message("iam", "GetRole", {"RoleName": "rôle"})


def test_bad_scalar_types_are_validation_errors() -> None:
    msg = _message("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::1:role/role-name", "RoleSessionName": "s1",
                                         "DurationSeconds": "abc"})
    assert msg == (
        "1 validation error detected: Value 'abc' at 'durationSeconds' failed to satisfy constraint: "
        "Member must be of type integer"
    )
    assert "Member must be of type integer" in _message("iam", "ListRoles", {"MaxItems": "99999999999"})
    assert "Member must be of type boolean" in _message("iam", "ListPolicies", {"OnlyAttached": "yes"})
    assert "Member must satisfy enum value set: [All, AWS, Local]" in _message(
        "iam", "ListPolicies", {"Scope": "Mine"})


def test_sensitive_values_are_not_echoed() -> None:
    msg = _message("sts", "AssumeRoleWithWebIdentity",
                   {"RoleArn": "arn:aws:iam::1:role/role-name", "RoleSessionName": "ok", "WebIdentityToken": "ab"})
    assert msg == (
        "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: "
        "Member must have length greater than or equal to 4"
    )


def test_routing_and_unknown_actions() -> None:
    assert service_for("GetCallerIdentity", "2011-06-15") == "sts"
    assert service_for("CreateRole", "2010-05-08") == "iam"
    assert service_for("CreateRole", None) == "iam"
    assert service_for("AssumeRoleWithWebIdentity", None) == "sts"
    with pytest.raises(errors.MissingAction):
        service_for("", "2010-05-08")
    with pytest.raises(errors.InvalidAction) as info:
        service_for("ReplaceIamInstanceProfileAssociation", "2010-05-08")
    assert info.value.message == "Could not find operation ReplaceIamInstanceProfileAssociation for version 2010-05-08"
    with pytest.raises(errors.InvalidAction) as info:
        service_for("CreateRole", "2011-06-15")  # an IAM action at the STS version
    assert info.value.message == "Could not find operation CreateRole for version 2011-06-15"
    with pytest.raises(errors.InvalidAction):
        decode_params("sts", "CreateRole", {})


def test_parse_query_decodes_form_and_query_string() -> None:
    assert parse_query(b"A=1&B=x+y%26z&C=", b"D=%C3%A9") == {"A": "1", "B": "x y&z", "C": "", "D": "é"}
    assert parse_query("Name=é".encode()) == {"Name": "é"}  # raw UTF-8 in a body is accepted
    assert parse_query(b"") == {}


@pytest.mark.parametrize(
    ("body", "query"),
    [
        (b"A=1&A=2", b""),  # repeated name
        (b"A=1", b"A=1"),  # repeated across query string and body
        (b"A=%FF", b""),  # percent-encoded bytes that are not UTF-8
        (b"A=\xff", b""),  # raw bytes that are not UTF-8
        (b"A=" + b"x" * MAX_QUERY_BYTES, b""),
        ("&".join(f"P{i}=1" for i in range(MAX_FIELDS + 1)).encode(), b""),
    ],
    ids=["repeated", "repeated-across", "pct-not-utf8", "raw-not-utf8", "too-large", "too-many"],
)
def test_parse_query_refuses_malformed_input(body: bytes, query: bytes) -> None:
    with pytest.raises(errors.MalformedQueryString) as info:
        parse_query(body, query)
    assert info.value.code == "MalformedQueryString" and info.value.status == 400


def test_timestamp_input_conversion() -> None:
    # IAM has no timestamp input among the implemented operations; decode one through a model that does.
    from rolebridge.http.query import _Decoder  # the scalar converter every operation uses

    shape = operation_model("iam", "GetRole").output_shape.members["Role"].members["CreateDate"]
    decoder = _Decoder()
    assert decoder.scalar(shape, "2026-01-02T03:04:05Z", "createDate") == dt.datetime(2026, 1, 2, 3, 4, 5,
                                                                                         tzinfo=dt.UTC)
    decoder.scalar(shape, "yesterday", "createDate")
    assert decoder.problems == [("yesterday", "createDate", "Member must be of type timestamp")]


def _generic(service: str, action: str, flat: dict[str, str]) -> tuple[str, object]:
    """decode_params by the tree walk alone (what the flat fast path must agree with)."""
    from rolebridge.http import query as q

    shape = q.operation_model(service, action).input_shape
    decoder = q._Decoder()
    result = decoder.structure(shape, q._tree(flat), "")
    if decoder.problems:
        return "error", str(errors.validation_error(sorted(decoder.problems, key=lambda p: p[1])).message)
    return "ok", result


def _fast(service: str, action: str, flat: dict[str, str]) -> tuple[str, object]:
    try:
        return "ok", decode_params(service, action, flat)
    except errors.ValidationError as exc:
        return "error", exc.message


@pytest.mark.parametrize(("service", "action"), sorted(OPERATIONS))
def test_flat_fast_path_agrees_with_the_tree_walk(service: str, action: str) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from rolebridge.http import query as q

    plan = q._flat_plan(service, action)
    if plan is None:
        return
    _shape, scalars, _nested, _required = plan
    wires = [wire for _, wire, _, _, _ in scalars] + ["Action", "Version", "Unknown"]
    values = st.one_of(st.sampled_from(["", "0", "1", "-5", "99999999999", "true", "False", "x", "a" * 300,
                                        "2024-01-01T00:00:00Z", "not a date", "aGVsbG8=", "arn:aws:iam::1:role/r"]),
                       st.text(max_size=30))

    @settings(max_examples=40, deadline=None)
    @given(st.dictionaries(st.sampled_from(wires), values, max_size=len(wires)))
    def agree(flat: dict[str, str]) -> None:
        assert _fast(service, action, flat) == _generic(service, action, flat)

    agree()


@settings(max_examples=400, deadline=None)
@example("RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&N=%C3%A9%c3%a9&X=%FF&Y=%zz%4&Z=a+b%2B%")
@given(st.text(alphabet=st.sampled_from(list("ab=&+%.~-_ 2F8é\x00cC39Af")), max_size=60)
       | st.text(max_size=40))
def test_form_pairs_answers_exactly_as_parse_qsl(text: str) -> None:
    def outcome(parse: Any) -> Any:
        try:
            return parse(text)
        except (UnicodeDecodeError, ValueError) as exc:
            return type(exc)

    assert outcome(form_pairs) == outcome(lambda t: urllib.parse.parse_qsl(
        t, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=MAX_FIELDS))


@pytest.mark.parametrize("fields", [MAX_FIELDS, MAX_FIELDS + 1])
def test_form_pairs_field_limit_is_parse_qsl_s(fields: int) -> None:
    text = "&".join(f"a{i}=1" for i in range(fields))

    def outcome(parse: Any) -> Any:
        try:
            return len(parse(text))
        except ValueError:
            return ValueError

    assert outcome(form_pairs) == outcome(lambda t: urllib.parse.parse_qsl(
        t, keep_blank_values=True, max_num_fields=MAX_FIELDS)) == (MAX_FIELDS if fields == MAX_FIELDS else ValueError)
