"""Every registered IAM and STS operation, called through boto3 against a live server, and the REAL
response checked against botocore's output shape for that operation.

The list of operations comes from the registry (``iam/registry.py``), so an operation registered
without a scenario here fails ``test_live_response_matches_the_model``. For each response:

- boto3 made the call and returned (its parser and handlers accepted the document);
- the raw XML is AWS's Query envelope: ``<ActionResponse xmlns=ns>``, the result wrapper (when the
  operation has an output), ``ResponseMetadata/RequestId``, and nothing else;
- inside the result, every element is a member of the shape at that place (a misspelt or extra
  element fails, even though botocore would silently drop it), no non-list member repeats, every
  required member is there, lists hold ``member`` elements and maps ``entry/key/value``;
- every scalar's text is of its type as AWS writes it (``true``/``false``; integers; ISO-8601 UTC
  timestamps) and within the model's constraints (enum, length, pattern, range), policy documents
  checked after URL-decoding;
- botocore's ``QueryParser`` reading the same bytes gives values of the right Python types, with
  every required member present.
Error documents met along the way are checked for the ``ErrorResponse`` envelope.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.model
import botocore.parsers
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from rolebridge.http import app as _app  # noqa: F401 - registers every operation
from rolebridge.http.models import namespace, operation_model
from rolebridge.http.query import _string_failures
from rolebridge.iam.registry import OPERATIONS

ACCOUNT = "360000000001"
REGISTERED = sorted(OPERATIONS)
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_INTEGER = re.compile(r"-?[0-9]+")


# -- checks ---------------------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _check_scalar(elem: ET.Element, shape: botocore.model.Shape, path: str, problems: list[str]) -> None:
    if len(elem):
        problems.append(f"{path}: a {shape.type_name} has child elements")
        return
    text = elem.text or ""
    kind = shape.type_name
    if kind == "string":
        value = urllib.parse.unquote(text) if shape.name == "policyDocumentType" else text
        problems.extend(f"{path}: {value[:60]!r}: {failure}" for failure in _string_failures(shape, value))
    elif kind in ("integer", "long"):
        if not _INTEGER.fullmatch(text):
            problems.append(f"{path}: {text!r} is not an integer")
            return
        meta = shape.metadata
        if ("min" in meta and int(text) < meta["min"]) or ("max" in meta and int(text) > meta["max"]):
            problems.append(f"{path}: {text} outside [{meta.get('min')}, {meta.get('max')}]")
    elif kind == "boolean":
        if text not in ("true", "false"):
            problems.append(f"{path}: {text!r} is not true/false")
    elif kind == "timestamp":
        if not _TIMESTAMP.fullmatch(text):
            problems.append(f"{path}: {text!r} is not an ISO-8601 UTC timestamp")
    elif kind == "blob":
        try:
            base64.b64decode(text, validate=True)
        except ValueError:
            problems.append(f"{path}: {text!r} is not base64")
    else:
        problems.append(f"{path}: unexpected scalar type {kind}")


def check_element(elem: ET.Element, shape: botocore.model.Shape, path: str, problems: list[str]) -> None:
    """``elem`` against ``shape``: nothing the shape lacks, nothing it requires missing, types right."""
    if elem.attrib:
        problems.append(f"{path}: unexpected attributes {elem.attrib}")
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, botocore.model.StructureShape)
        if (elem.text or "").strip():
            problems.append(f"{path}: text inside a structure")
        by_wire = {m.serialization.get("name", name): (name, m) for name, m in shape.members.items()}
        seen: set[str] = set()
        for child in elem:
            tag = _local(child.tag)
            if tag not in by_wire:
                problems.append(f"{path}.{tag}: not a member of {shape.name}")
                continue
            name, member = by_wire[tag]
            if name in seen:
                problems.append(f"{path}.{tag}: given more than once")
            seen.add(name)
            check_element(child, member, f"{path}.{tag}", problems)
        problems.extend(f"{path}.{name}: required member missing" for name in shape.required_members
                        if name not in seen)
    elif kind == "list":
        assert isinstance(shape, botocore.model.ListShape)
        item = shape.member.serialization.get("name", "member")
        for i, child in enumerate(elem, start=1):
            if _local(child.tag) != item:
                problems.append(f"{path}.{_local(child.tag)}: list items are <{item}>")
                continue
            check_element(child, shape.member, f"{path}.{i}", problems)
    elif kind == "map":
        assert isinstance(shape, botocore.model.MapShape)
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        for i, entry in enumerate(elem, start=1):
            parts = [_local(c.tag) for c in entry]
            if _local(entry.tag) != "entry" or parts != [key_name, value_name]:
                problems.append(f"{path}.{i}: map entries are <entry><{key_name}/><{value_name}/></entry>, got {parts}")
                continue
            check_element(entry[0], shape.key, f"{path}.{i}.key", problems)
            check_element(entry[1], shape.value, f"{path}.{i}.value", problems)
    else:
        _check_scalar(elem, shape, path, problems)


_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "integer": int, "long": int, "boolean": bool, "timestamp": dt.datetime, "blob": bytes,
    "double": float, "float": float,
}


def check_parsed(value: Any, shape: botocore.model.Shape, path: str, problems: list[str]) -> None:
    """What botocore's parser made of the document: right Python types, required members present."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, botocore.model.StructureShape)
        if not isinstance(value, dict):
            problems.append(f"{path}: parsed as {type(value).__name__}, not a structure")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                problems.append(f"{path}.{name}: required member missing after parsing")
        for name, item in value.items():
            if name not in shape.members:
                problems.append(f"{path}.{name}: not a member of {shape.name}")
            else:
                check_parsed(item, shape.members[name], f"{path}.{name}", problems)
    elif kind == "list":
        assert isinstance(shape, botocore.model.ListShape)
        if not isinstance(value, list):
            problems.append(f"{path}: parsed as {type(value).__name__}, not a list")
            return
        for i, item in enumerate(value, start=1):
            check_parsed(item, shape.member, f"{path}.{i}", problems)
    elif kind == "map":
        assert isinstance(shape, botocore.model.MapShape)
        if not isinstance(value, dict):
            problems.append(f"{path}: parsed as {type(value).__name__}, not a map")
            return
        for k, item in value.items():
            check_parsed(k, shape.key, f"{path}[{k!r}]", problems)
            check_parsed(item, shape.value, f"{path}[{k!r}]", problems)
    else:
        expected = _PY_TYPES[kind]
        if (isinstance(value, bool) and kind != "boolean") or not isinstance(value, expected):
            problems.append(f"{path}: parsed as {type(value).__name__}, expected {kind}")


def check_response(service: str, action: str, body: bytes) -> list[str]:
    """Every problem of one successful response document (empty: it is what the model says)."""
    problems: list[str] = []
    ns = namespace(service)
    root = ET.fromstring(body)
    if root.tag != f"{{{ns}}}{action}Response":
        return [f"root element {root.tag}, expected {{{ns}}}{action}Response"]
    shape = operation_model(service, action).output_shape
    wrapper = shape.serialization.get("resultWrapper", f"{action}Result") if shape is not None else None
    expected = [wrapper, "ResponseMetadata"] if wrapper else ["ResponseMetadata"]
    got = [_local(c.tag) for c in root]
    if got != expected:
        return [f"top-level elements {got}, expected {expected}"]
    if any(not c.tag.startswith(f"{{{ns}}}") for c in root.iter()):
        problems.append("an element outside the service's namespace")
    metadata = root[-1]
    if [_local(c.tag) for c in metadata] != ["RequestId"] or not (metadata[0].text or "").strip():
        problems.append("ResponseMetadata must hold one non-empty RequestId")
    if shape is None:
        return problems
    check_element(root[0], shape, wrapper or action, problems)
    try:
        parsed = botocore.parsers.QueryParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)
    except Exception as exc:  # e.g. an integer or timestamp botocore cannot read
        problems.append(f"botocore's QueryParser failed: {exc}")
        return problems
    parsed.pop("ResponseMetadata", None)
    check_parsed(parsed, shape, action, problems)
    return problems


def check_error(service: str, body: bytes) -> list[str]:
    ns = namespace(service)
    root = ET.fromstring(body)
    shape = [(_local(c.tag), [_local(g.tag) for g in c]) for c in root]
    if root.tag != f"{{{ns}}}ErrorResponse" or shape != [("Error", ["Type", "Code", "Message"]), ("RequestId", [])]:
        return [f"error document {root.tag} {shape}"]
    return [] if root[0][0].text in ("Sender", "Receiver") else [f"error Type {root[0][0].text!r}"]


# -- the live world -------------------------------------------------------------------------------
@dataclass
class Captured:
    service: str
    action: str
    status: int
    body: bytes


@dataclass
class World:
    server: Any
    captured: list[Captured] = field(default_factory=list)
    runs: dict[Any, list[Captured]] = field(default_factory=dict)  # scenario -> what it captured (run once)
    clients: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    provider_arn: str = ""
    policy_arn: str = ""

    def _hook(self, client: Any) -> Any:
        def record(http_response: Any, model: botocore.model.OperationModel, **_: Any) -> None:
            self.captured.append(Captured(model.service_model.service_name, model.name,
                                          http_response.status_code, http_response.content))
        client.meta.events.register("after-call", record)
        return client

    @property
    def iam(self) -> Any:
        if "iam" not in self.clients:
            self.clients["iam"] = self._hook(self.server.client("iam", ACCOUNT))
        return self.clients["iam"]

    @property
    def sts(self) -> Any:
        if "sts" not in self.clients:
            self.clients["sts"] = self._hook(self.server.client("sts", ACCOUNT))
        return self.clients["sts"]

    def anonymous_sts(self) -> Any:
        return self._hook(boto3.client("sts", endpoint_url=self.server.url, verify=self.server.ca_bundle,
                                       region_name="us-east-1",
                                       config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1})))

    def session(self, service: str, creds: dict[str, Any]) -> Any:
        return self._hook(self.server.client(service, aws_access_key_id=creds["AccessKeyId"],
                                             aws_secret_access_key=creds["SecretAccessKey"],
                                             aws_session_token=creds["SessionToken"]))

    def role(self, name: str, **kw: Any) -> str:
        return str(self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, **kw)["Role"]["Arn"])

    def provider(self, name: str, **kw: Any) -> str:
        return str(self.iam.create_open_id_connect_provider(
            Url=f"https://{name}.shapes.example.com", ThumbprintList=["a" * 40], **kw)["OpenIDConnectProviderArn"])

    def policy(self, name: str, **kw: Any) -> str:
        return str(self.iam.create_policy(PolicyName=name, PolicyDocument=doc("s3:GetObject"), **kw)["Policy"]["Arn"])


TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}]})
TAGS = [{"Key": "team", "Value": "shapes"}, {"Key": "cost-center", "Value": "42"}]


def doc(*actions: str, effect: str = "Allow") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": list(actions),
                                                               "Resource": "*"}]})


@pytest.fixture(scope="module")
def world(server: Any) -> World:
    w = World(server)
    w.cluster = server.cluster("shape-c", ACCOUNT)
    host = w.cluster["oidc_url"].removeprefix("https://")
    w.provider_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    try:
        w.iam.create_open_id_connect_provider(Url=w.cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"],
                                              ThumbprintList=[w.cluster["thumbprint"]])
    except ClientError as exc:  # `cluster create` registers its issuer in its own account
        assert exc.response["Error"]["Code"] == "EntityAlreadyExists"
    w.iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=w.provider_arn, Tags=TAGS)
    w.policy_arn = w.policy("shape-pol", Description="the shapes policy", Path="/shapes/", Tags=TAGS)
    w.iam.create_policy_version(PolicyArn=w.policy_arn, PolicyDocument=doc("s3:List*"), SetAsDefault=True)
    w.iam.create_role(RoleName="shape-base", Path="/shapes/", Description="every optional member set",
                      MaxSessionDuration=7200, PermissionsBoundary="arn:aws:iam::aws:policy/ReadOnlyAccess",
                      Tags=TAGS, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                          json.loads(TRUST)["Statement"][0],
                          {"Effect": "Allow", "Principal": {"Federated": w.provider_arn},
                           "Action": "sts:AssumeRoleWithWebIdentity",
                           "Condition": {"StringEquals": {f"{host}:aud": "sts.amazonaws.com"}}}]}))
    for name in ("inline-a", "inline-b"):
        w.iam.put_role_policy(RoleName="shape-base", PolicyName=name, PolicyDocument=doc("iam:Get*"))
    for arn in (w.policy_arn, "arn:aws:iam::aws:policy/ReadOnlyAccess"):
        w.iam.attach_role_policy(RoleName="shape-base", PolicyArn=arn)
    w.captured.clear()
    return w


# -- one scenario per operation ---------------------------------------------------------------------
Scenario = Callable[[World], None]
SCENARIOS: dict[tuple[str, str], Scenario] = {}


def scenario(service: str, *actions: str) -> Callable[[Scenario], Scenario]:
    def deco(fn: Scenario) -> Scenario:
        for action in actions:
            SCENARIOS[(service, action)] = fn
        return fn
    return deco


@scenario("iam", "CreateOpenIDConnectProvider", "DeleteOpenIDConnectProvider")
def _provider_create_delete(w: World) -> None:
    w.iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=w.provider(
        "created", ClientIDList=["a", "b"], Tags=TAGS))
    w.iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=w.provider("untagged"))


@scenario("iam", "GetOpenIDConnectProvider", "ListOpenIDConnectProviders", "ListOpenIDConnectProviderTags")
def _provider_reads(w: World) -> None:
    w.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=w.provider_arn)
    w.iam.list_open_id_connect_providers()
    first = w.iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=w.provider_arn, MaxItems=1)
    assert first["IsTruncated"] and first["Marker"]
    w.iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=w.provider_arn, Marker=first["Marker"])


@scenario("iam", "AddClientIDToOpenIDConnectProvider", "RemoveClientIDFromOpenIDConnectProvider",
          "UpdateOpenIDConnectProviderThumbprint", "TagOpenIDConnectProvider", "UntagOpenIDConnectProvider")
def _provider_updates(w: World) -> None:
    arn = w.provider("updated")
    w.iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="x")
    w.iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="x")
    w.iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["b" * 40])
    w.iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=TAGS)
    w.iam.untag_open_id_connect_provider(OpenIDConnectProviderArn=arn, TagKeys=["team"])


@scenario("iam", "CreateRole", "DeleteRole")
def _role_create_delete(w: World) -> None:
    w.role("shape-full", Path="/shapes/", Description="d", MaxSessionDuration=43200, Tags=TAGS,
           PermissionsBoundary=w.policy_arn)
    w.role("shape-bare")
    w.iam.delete_role(RoleName="shape-bare")


@scenario("iam", "GetRole", "ListRoles", "ListRoleTags", "ListRolePolicies", "GetRolePolicy",
          "ListAttachedRolePolicies", "ListInstanceProfilesForRole")
def _role_reads(w: World) -> None:
    w.iam.get_role(RoleName="shape-base")
    page = w.iam.list_roles(PathPrefix="/shapes/", MaxItems=1)
    assert page["IsTruncated"]
    w.iam.list_roles(PathPrefix="/shapes/", Marker=page["Marker"])
    for call in (w.iam.list_role_tags, w.iam.list_role_policies, w.iam.list_attached_role_policies):
        page = call(RoleName="shape-base", MaxItems=1)
        assert page["IsTruncated"]
        call(RoleName="shape-base", Marker=page["Marker"])
    w.iam.get_role_policy(RoleName="shape-base", PolicyName="inline-a")
    w.iam.list_instance_profiles_for_role(RoleName="shape-base")


@scenario("iam", "UpdateRole", "UpdateRoleDescription", "TagRole", "UntagRole", "UpdateAssumeRolePolicy",
          "PutRolePolicy", "DeleteRolePolicy", "PutRolePermissionsBoundary", "DeleteRolePermissionsBoundary",
          "AttachRolePolicy", "DetachRolePolicy")
def _role_updates(w: World) -> None:
    w.role("shape-upd")
    w.iam.update_role(RoleName="shape-upd", Description="x", MaxSessionDuration=7200)
    w.iam.update_role_description(RoleName="shape-upd", Description="with a description")
    w.iam.tag_role(RoleName="shape-upd", Tags=TAGS)
    w.iam.untag_role(RoleName="shape-upd", TagKeys=["team"])
    w.iam.update_assume_role_policy(RoleName="shape-upd", PolicyDocument=TRUST)
    w.iam.put_role_policy(RoleName="shape-upd", PolicyName="p", PolicyDocument=doc("s3:*"))
    w.iam.delete_role_policy(RoleName="shape-upd", PolicyName="p")
    w.iam.put_role_permissions_boundary(RoleName="shape-upd", PermissionsBoundary=w.policy_arn)
    w.iam.delete_role_permissions_boundary(RoleName="shape-upd")
    w.iam.attach_role_policy(RoleName="shape-upd", PolicyArn=w.policy_arn)
    w.iam.detach_role_policy(RoleName="shape-upd", PolicyArn=w.policy_arn)


@scenario("iam", "CreatePolicy", "DeletePolicy")
def _policy_create_delete(w: World) -> None:
    w.policy("shape-full-pol", Path="/shapes/", Description="d", Tags=TAGS)
    w.iam.delete_policy(PolicyArn=w.policy("shape-bare-pol"))


@scenario("iam", "GetPolicy", "GetPolicyVersion", "ListPolicyVersions", "ListPolicies", "ListPolicyTags",
          "ListEntitiesForPolicy")
def _policy_reads(w: World) -> None:
    w.iam.get_policy(PolicyArn=w.policy_arn)
    w.iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    w.iam.get_policy_version(PolicyArn=w.policy_arn, VersionId="v2")
    aws_managed = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    w.iam.get_policy_version(PolicyArn=aws_managed,
                             VersionId=w.iam.get_policy(PolicyArn=aws_managed)["Policy"]["DefaultVersionId"])
    w.role("shape-bounded", PermissionsBoundary=w.policy_arn)
    for call, kw in ((w.iam.list_policy_versions, {"PolicyArn": w.policy_arn}),
                     (w.iam.list_policies, {"Scope": "Local"}),
                     (w.iam.list_policy_tags, {"PolicyArn": w.policy_arn}),
                     (w.iam.list_entities_for_policy, {"PolicyArn": w.policy_arn})):
        page = call(MaxItems=1, **kw)
        assert page["IsTruncated"], call
        call(Marker=page["Marker"], **kw)
    w.iam.list_policies(Scope="AWS", MaxItems=3)


@scenario("iam", "CreatePolicyVersion", "DeletePolicyVersion", "SetDefaultPolicyVersion", "TagPolicy", "UntagPolicy")
def _policy_updates(w: World) -> None:
    arn = w.policy("shape-upd-pol")
    w.iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc("s3:Put*"), SetAsDefault=True)
    w.iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc("s3:Get*"))
    w.iam.set_default_policy_version(PolicyArn=arn, VersionId="v3")
    w.iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    w.iam.tag_policy(PolicyArn=arn, Tags=TAGS)
    w.iam.untag_policy(PolicyArn=arn, TagKeys=["team"])


@scenario("iam", "GetAccountSummary")
def _account_summary(w: World) -> None:
    w.iam.get_account_summary()


@scenario("sts", "AssumeRoleWithWebIdentity")
def _web_identity(w: World) -> None:
    token = w.server.token("shape-c", "shapes", "job")
    w.anonymous_sts().assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/shapes/shape-base", RoleSessionName="web", WebIdentityToken=token,
        Policy=doc("s3:GetObject"), DurationSeconds=900)


@scenario("sts", "AssumeRole", "GetCallerIdentity")
def _assume_role(w: World) -> None:
    w.sts.get_caller_identity()
    out = w.sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/shapes/shape-base", RoleSessionName="full",
                            Policy=doc("s3:GetObject"), Tags=[{"Key": "k", "Value": "v"}], SourceIdentity="alice",
                            DurationSeconds=900)
    w.session("sts", out["Credentials"]).get_caller_identity()
    w.sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/shapes/shape-base", RoleSessionName="bare")


@scenario("sts", "GetSessionToken")
def _session_token(w: World) -> None:
    w.sts.get_session_token(DurationSeconds=900)


@scenario("sts", "DecodeAuthorizationMessage")
def _decode(w: World) -> None:
    w.role("shape-decoder")
    w.iam.put_role_policy(RoleName="shape-decoder", PolicyName="decode",
                          PolicyDocument=doc("sts:DecodeAuthorizationMessage"))
    creds = w.sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/shape-decoder",
                              RoleSessionName="decoder")["Credentials"]
    with pytest.raises(ClientError) as exc:
        w.session("iam", creds).get_role(RoleName="shape-base")
    blob = exc.value.response["Error"]["Message"].split("Encoded authorization failure message: ", 1)[1]
    w.session("sts", creds).decode_authorization_message(EncodedMessage=blob)


# -- the tests ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("service", "action"), REGISTERED, ids=[f"{s}:{a}" for s, a in REGISTERED])
def test_live_response_matches_the_model(world: World, service: str, action: str) -> None:
    run = SCENARIOS.get((service, action))
    assert run is not None, f"{service}:{action} is registered but has no live scenario in {__name__}: add one"
    if run not in world.runs:  # one scenario serves several operations: it runs once
        world.captured.clear()
        run(world)
        world.runs[run] = list(world.captured)
    captured = world.runs[run]
    ours = [c for c in captured if (c.service, c.action) == (service, action) and c.status == 200]
    assert ours, f"the scenario made no successful {action} call"
    problems = [f"{action} #{i}: {p}" for i, c in enumerate(ours, start=1)
                for p in check_response(service, action, c.body)]
    problems += [f"{c.action} error: {p}" for c in captured if c.status != 200
                 for p in check_error(c.service, c.body)]
    assert not problems, "\n".join(problems)


def test_scenarios_name_only_registered_operations() -> None:
    assert set(SCENARIOS) <= set(OPERATIONS), set(SCENARIOS) - set(OPERATIONS)


# -- the checker itself catches what it is for ----------------------------------------------------------
GOOD = (b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        b"<Arn>arn:aws:iam::123456789012:root</Arn><UserId>123456789012</UserId><Account>123456789012</Account>"
        b"</GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
        b"</GetCallerIdentityResponse>")


@pytest.mark.parametrize(("mutate", "expect"), [
    (lambda b: b, None),
    (lambda b: b.replace(b"<Account>", b"<Acount>").replace(b"</Account>", b"</Acount>"), "not a member"),
    (lambda b: b.replace(b"</GetCallerIdentityResult>", b"<Account>1</Account></GetCallerIdentityResult>"),
     "more than once"),
    (lambda b: b.replace(b"<RequestId>r</RequestId>", b"<RequestId/>"), "RequestId"),
    (lambda b: b.replace(b"</ResponseMetadata>", b"</ResponseMetadata><Extra/>"), "top-level"),
])
def test_checker_catches_stray_and_missing_elements(mutate: Callable[[bytes], bytes], expect: str | None) -> None:
    problems = check_response("sts", "GetCallerIdentity", mutate(GOOD))
    if expect is None:
        assert problems == []
    else:
        assert any(expect in p for p in problems), problems


def test_checker_catches_wrong_types_and_missing_required_members() -> None:
    body = (b'<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult><Roles><member>'
            b"<Path>/</Path><RoleName>r</RoleName><RoleId>AROAAAAAAAAAAAAAAAAAA</RoleId>"
            b"<Arn>arn:aws:iam::123456789012:role/r</Arn><CreateDate>yesterday</CreateDate>"
            b"<MaxSessionDuration>many</MaxSessionDuration></member></Roles><IsTruncated>True</IsTruncated>"
            b"</ListRolesResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListRolesResponse>")
    text = "\n".join(check_response("iam", "ListRoles", body))
    assert "MaxSessionDuration: 'many' is not an integer" in text
    assert "CreateDate: 'yesterday' is not an ISO-8601 UTC timestamp" in text
    assert "IsTruncated: 'True' is not true/false" in text  # botocore would quietly read False
    assert "botocore's QueryParser failed" in text
    assert "AssumeRolePolicyDocument" not in text  # optional in ListRoles' Role
    fixed = body.replace(b"many", b"3600").replace(b"yesterday", b"2026-01-02T03:04:05Z")
    assert check_response("iam", "ListRoles", fixed.replace(b"True", b"true")) == []
    problems = check_response("iam", "ListRoles", fixed.replace(b"<Path>/</Path>", b""))
    assert any("Roles.1.Path: required member missing" in p for p in problems), problems
    problems = check_response("iam", "ListRoles", fixed.replace(b"3600", b"60"))
    assert any("MaxSessionDuration: 60 outside [3600, 43200]" in p for p in problems), problems
