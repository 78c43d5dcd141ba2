"""STS AssumeRole, GetSessionToken, GetCallerIdentity and DecodeAuthorizationMessage through boto3
against a live server: trust + identity policy on both sides, role chaining, tags, source identity,
session policies, and AWS's messages."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

A = "320000000001"  # the roles' account
B = "320000000002"  # another account


def trust(*principals: str, extra: dict[str, Any] | None = None,
          actions: tuple[str, ...] = ("sts:AssumeRole",)) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": list(actions)}
    statement.update(extra or {})
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def allow(action: str | list[str], resource: str = "*") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action,
                                                               "Resource": resource}]})


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def session_client(server: Any, service: str, creds: dict[str, Any]) -> Any:
    return server.client(service, aws_access_key_id=creds["AccessKeyId"],
                         aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


@pytest.fixture(scope="module")
def world(server: Any) -> dict[str, Any]:
    iam_a, iam_b = server.client("iam", A), server.client("iam", B)
    sts_a, sts_b = server.client("sts", A), server.client("sts", B)
    root_a, root_b = f"arn:aws:iam::{A}:root", f"arn:aws:iam::{B}:root"
    # hub: assumable by A's root; may assume anything
    iam_a.create_role(RoleName="hub", AssumeRolePolicyDocument=trust(root_a), MaxSessionDuration=43200)
    iam_a.put_role_policy(RoleName="hub", PolicyName="assume", PolicyDocument=allow(
        ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]))
    # plain: trusts A's account (delegates to identity policies) and B's account
    iam_a.create_role(RoleName="plain", AssumeRolePolicyDocument=trust(root_a, root_b), MaxSessionDuration=43200)
    # named: trusts the hub role by ARN (same-account shortcut)
    iam_a.create_role(RoleName="named", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{A}:role/hub"))
    # lonely: trusts A's account but hub-less callers have no identity allow
    iam_a.create_role(RoleName="noperm", AssumeRolePolicyDocument=trust(root_a))
    # in B: a role that may assume A/plain, and one that may not
    iam_b.create_role(RoleName="b-caller", AssumeRolePolicyDocument=trust(root_b))
    iam_b.put_role_policy(RoleName="b-caller", PolicyName="x", PolicyDocument=allow(
        "sts:AssumeRole", f"arn:aws:iam::{A}:role/plain"))
    iam_b.create_role(RoleName="b-nothing", AssumeRolePolicyDocument=trust(root_b))
    # external id and tags
    iam_a.create_role(RoleName="extid", AssumeRolePolicyDocument=trust(
        root_b, extra={"Condition": {"StringEquals": {"sts:ExternalId": "s3cret-id"}}}))
    iam_a.create_role(RoleName="tagged", AssumeRolePolicyDocument=trust(
        root_a, f"arn:aws:iam::{A}:role/hub", actions=("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity")))
    return {"iam_a": iam_a, "iam_b": iam_b, "sts_a": sts_a, "sts_b": sts_b}


def assume(sts: Any, role: str, session: str = "s1", **kw: Any) -> dict[str, Any]:
    return sts.assume_role(RoleArn=f"arn:aws:iam::{A}:role/{role}", RoleSessionName=session, **kw)


def test_root_assumes_same_account_role(server: Any, world: dict[str, Any]) -> None:
    out = assume(world["sts_a"], "hub", "job-1")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{A}:assumed-role/hub/job-1"
    assert out["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":job-1")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert "PackedPolicySize" not in out and "SourceIdentity" not in out
    me = session_client(server, "sts", out["Credentials"]).get_caller_identity()
    assert (me["Arn"], me["Account"], me["UserId"]) == (
        out["AssumedRoleUser"]["Arn"], A, out["AssumedRoleUser"]["AssumedRoleId"])


def test_cross_account_needs_trust_and_identity_policy(server: Any, world: dict[str, Any]) -> None:
    b_caller = session_client(server, "sts", world["sts_b"].assume_role(
        RoleArn=f"arn:aws:iam::{B}:role/b-caller", RoleSessionName="xx")["Credentials"])
    out = b_caller.assume_role(RoleArn=f"arn:aws:iam::{A}:role/plain", RoleSessionName="from-b")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{A}:assumed-role/plain/from-b"

    nothing = session_client(server, "sts", world["sts_b"].assume_role(
        RoleArn=f"arn:aws:iam::{B}:role/b-nothing", RoleSessionName="yy")["Credentials"])
    with pytest.raises(ClientError) as exc:
        nothing.assume_role(RoleArn=f"arn:aws:iam::{A}:role/plain", RoleSessionName="from-b")
    assert error(exc) == ("AccessDenied", f"User: arn:aws:sts::{B}:assumed-role/b-nothing/yy is not authorized "
                                          f"to perform: sts:AssumeRole on resource: arn:aws:iam::{A}:role/plain")
    # identity allows but the trust policy does not name B
    with pytest.raises(ClientError) as exc:
        b_caller.assume_role(RoleArn=f"arn:aws:iam::{A}:role/hub", RoleSessionName="from-b")
    assert error(exc)[0] == "AccessDenied"
    # B's root: trust names B's account, root's own side always allows
    assert assume(world["sts_b"], "plain", "b-root")["AssumedRoleUser"]["Arn"].endswith("plain/b-root")


def test_same_account_identity_policy_or_trust_naming_the_role(server: Any, world: dict[str, Any]) -> None:
    hub = session_client(server, "sts", assume(world["sts_a"], "hub")["Credentials"])
    assert assume(hub, "plain", "via-identity")["AssumedRoleUser"]["Arn"].endswith("plain/via-identity")
    assert assume(hub, "named", "via-trust")["AssumedRoleUser"]["Arn"].endswith("named/via-trust")
    noperm_creds = assume(world["sts_a"], "noperm")["Credentials"]
    noperm = session_client(server, "sts", noperm_creds)
    with pytest.raises(ClientError) as exc:
        assume(noperm, "plain")
    assert error(exc) == ("AccessDenied", f"User: arn:aws:sts::{A}:assumed-role/noperm/s1 is not authorized to "
                                          f"perform: sts:AssumeRole on resource: arn:aws:iam::{A}:role/plain")
    with pytest.raises(ClientError) as exc:
        assume(world["sts_a"], "does-not-exist")
    assert error(exc) == ("AccessDenied", f"User: arn:aws:iam::{A}:root is not authorized to perform: "
                                          f"sts:AssumeRole on resource: arn:aws:iam::{A}:role/does-not-exist")


def test_role_chaining_is_capped_at_one_hour(server: Any, world: dict[str, Any]) -> None:
    assert assume(world["sts_a"], "plain", DurationSeconds=7200)["Credentials"]  # not chained: fine
    hub = session_client(server, "sts", assume(world["sts_a"], "hub", DurationSeconds=7200)["Credentials"])
    with pytest.raises(ClientError) as exc:
        assume(hub, "plain", DurationSeconds=3601)
    assert error(exc) == ("ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for "
                                             "roles assumed by role chaining.")
    out = assume(hub, "plain", DurationSeconds=3600)
    lifetime = out["Credentials"]["Expiration"].timestamp() - time.time()
    assert 3500 < lifetime <= 3601
    with pytest.raises(ClientError) as exc:  # not chained, but over the role's MaxSessionDuration (3600)
        assume(world["sts_a"], "noperm", DurationSeconds=7200)
    assert error(exc) == ("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for "
                                             "this role.")
    with pytest.raises(ClientError) as exc:  # the API model's own bound
        assume(world["sts_a"], "hub", DurationSeconds=43201)
    assert error(exc)[0] == "ValidationError"


def test_external_id(world: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as exc:
        assume(world["sts_b"], "extid")
    assert error(exc)[0] == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        assume(world["sts_b"], "extid", ExternalId="wrong-id")
    assert error(exc)[0] == "AccessDenied"
    assert assume(world["sts_b"], "extid", ExternalId="s3cret-id")["AssumedRoleUser"]["Arn"].endswith("extid/s1")


def test_tags_transitive_keys_and_source_identity(server: Any, world: dict[str, Any]) -> None:
    sts = world["sts_a"]
    with pytest.raises(ClientError) as exc:  # plain's trust policy does not allow sts:TagSession
        assume(sts, "plain", Tags=[{"Key": "team", "Value": "data"}])
    assert error(exc) == ("AccessDenied", f"User: arn:aws:iam::{A}:root is not authorized to perform: "
                                          f"sts:TagSession on resource: arn:aws:iam::{A}:role/plain")
    with pytest.raises(ClientError) as exc:
        assume(sts, "tagged", Tags=[{"Key": "a", "Value": "1"}], TransitiveTagKeys=["b"])
    assert error(exc) == ("InvalidParameterValue", "The specified transitive tag key must be included in the "
                                                   "requested tags.")
    with pytest.raises(ClientError) as exc:
        assume(sts, "tagged", Tags=[{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}])
    assert error(exc) == ("InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are case "
                                                   "insensitive.")

    # hub session with transitive tag + source identity, chained into "tagged"
    hub_out = assume(sts, "tagged", "first", Tags=[{"Key": "team", "Value": "data"}, {"Key": "tmp", "Value": "x"}],
                     TransitiveTagKeys=["team"], SourceIdentity="alice")
    assert hub_out["SourceIdentity"] == "alice" and 1 <= hub_out["PackedPolicySize"] <= 100
    # "tagged" may not assume itself (no identity policy); give hub-like rights through an inline policy
    world["iam_a"].put_role_policy(RoleName="tagged", PolicyName="chain", PolicyDocument=allow(
        ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]))
    first = session_client(server, "sts", hub_out["Credentials"])
    with pytest.raises(ClientError) as exc:
        assume(first, "tagged", "second", Tags=[{"Key": "TEAM", "Value": "other"}])
    assert error(exc) == ("InvalidParameterValue", "One of the specified transitive tag keys can't be set because "
                                                   "it conflicts with a transitive tag key from the calling session.")
    second = assume(first, "tagged", "second")
    assert second["SourceIdentity"] == "alice"  # source identity persists through chaining
    # the chained session still carries team=data: an IAM call conditioned on it is allowed
    world["iam_a"].put_role_policy(RoleName="tagged", PolicyName="tag-gated", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*",
                                                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "data",
                                                                               "aws:SourceIdentity": "alice"}}}]}))
    iam2 = session_client(server, "iam", second["Credentials"])
    assert iam2.get_role(RoleName="hub")["Role"]["RoleName"] == "hub"
    untagged = session_client(server, "iam", assume(sts, "tagged", "plain-session")["Credentials"])
    with pytest.raises(ClientError) as exc:
        untagged.get_role(RoleName="hub")
    assert error(exc)[0] == "AccessDenied"


def test_session_policies_limit_the_session(server: Any, world: dict[str, Any]) -> None:
    iam = world["iam_a"]
    iam.create_role(RoleName="admin-ish", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{A}:root"))
    iam.attach_role_policy(RoleName="admin-ish", PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
    full = session_client(server, "iam", assume(world["sts_a"], "admin-ish")["Credentials"])
    assert full.get_role(RoleName="hub")["Role"]["RoleName"] == "hub"
    limited_out = assume(world["sts_a"], "admin-ish", "limited", Policy=allow("iam:ListRoles"))
    assert 1 <= limited_out["PackedPolicySize"] <= 100
    limited = session_client(server, "iam", limited_out["Credentials"])
    assert limited.list_roles()["Roles"]
    with pytest.raises(ClientError) as exc:
        limited.get_role(RoleName="hub")
    code, message = error(exc)
    assert code == "AccessDenied"
    assert message.startswith(f"User: arn:aws:sts::{A}:assumed-role/admin-ish/limited is not authorized to "
                              f"perform: iam:GetRole on resource: arn:aws:iam::{A}:role/hub because no session "
                              f"policy allows the iam:GetRole action")
    by_arn = session_client(server, "iam", assume(
        world["sts_a"], "admin-ish", "by-arn",
        PolicyArns=[{"arn": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"}])["Credentials"])
    assert by_arn.get_role(RoleName="hub")["Role"]["RoleName"] == "hub"
    with pytest.raises(ClientError) as exc:
        by_arn.tag_role(RoleName="hub", Tags=[{"Key": "k", "Value": "v"}])
    assert error(exc)[0] == "AccessDenied"
    assert "Tags" not in iam.get_role(RoleName="hub")["Role"]


def test_get_session_token(server: Any, world: dict[str, Any]) -> None:
    out = world["sts_a"].get_session_token(DurationSeconds=7200)["Credentials"]
    lifetime = out["Expiration"].timestamp() - time.time()
    assert 3000 < lifetime <= 3601  # the account root gets at most one hour
    sts = session_client(server, "sts", out)
    me = sts.get_caller_identity()
    assert (me["Arn"], me["UserId"], me["Account"]) == (f"arn:aws:iam::{A}:root", A, A)
    with pytest.raises(ClientError) as exc:
        sts.get_session_token()
    assert error(exc) == ("AccessDenied", "Cannot call GetSessionToken with session credentials")
    with pytest.raises(ClientError) as exc:
        session_client(server, "iam", out).list_roles()
    assert error(exc)[0] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=f"arn:aws:iam::{A}:role/hub", RoleSessionName="xx", DurationSeconds=7200)
    assert error(exc)[1].startswith("The requested DurationSeconds exceeds the 1 hour session limit")
    assert sts.assume_role(RoleArn=f"arn:aws:iam::{A}:role/hub", RoleSessionName="xx")["AssumedRoleUser"]
    role_creds = assume(world["sts_a"], "hub")["Credentials"]
    with pytest.raises(ClientError) as exc:
        session_client(server, "sts", role_creds).get_session_token()
    assert error(exc) == ("AccessDenied", "Cannot call GetSessionToken with session credentials")


def test_caller_identity_for_every_kind(server: Any, world: dict[str, Any]) -> None:
    root = world["sts_a"].get_caller_identity()
    assert (root["Arn"], root["UserId"], root["Account"]) == (f"arn:aws:iam::{A}:root", A, A)
    chained = session_client(server, "sts", assume(
        session_client(server, "sts", assume(world["sts_a"], "hub", "one")["Credentials"]), "plain", "two"
    )["Credentials"]).get_caller_identity()
    assert chained["Arn"] == f"arn:aws:sts::{A}:assumed-role/plain/two" and chained["UserId"].endswith(":two")
    role_id = world["iam_a"].get_role(RoleName="plain")["Role"]["RoleId"]
    assert chained["UserId"] == f"{role_id}:two"


def test_decode_authorization_message(server: Any, world: dict[str, Any]) -> None:
    iam = world["iam_a"]
    iam.create_role(RoleName="decoder", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{A}:root"))
    iam.put_role_policy(RoleName="decoder", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "ReadOne", "Effect": "Allow", "Action": "iam:GetRole", "Resource": f"arn:aws:iam::{A}:role/hub"},
            {"Sid": "Decode", "Effect": "Allow", "Action": "sts:DecodeAuthorizationMessage", "Resource": "*"},
            {"Sid": "NoDelete", "Effect": "Deny", "Action": "iam:DeleteRole", "Resource": "*"}]}))
    creds = assume(world["sts_a"], "decoder")["Credentials"]
    role_iam, role_sts = session_client(server, "iam", creds), session_client(server, "sts", creds)
    with pytest.raises(ClientError) as exc:
        role_iam.get_role(RoleName="plain")
    message = error(exc)[1]
    assert "because no identity-based policy allows the iam:GetRole action. Encoded authorization failure " \
           "message: " in message
    blob = message.split("Encoded authorization failure message: ", 1)[1]
    decoded = json.loads(role_sts.decode_authorization_message(EncodedMessage=blob)["DecodedMessage"])
    assert decoded["allowed"] is False and decoded["explicitDeny"] is False
    assert decoded["context"]["action"] == "iam:GetRole"
    assert decoded["context"]["resource"] == f"arn:aws:iam::{A}:role/plain"
    assert decoded["context"]["principal"]["arn"] == f"arn:aws:sts::{A}:assumed-role/decoder/s1"
    misses = [f["nearestMiss"] for f in decoded["failures"]["items"] if "nearestMiss" in f]
    assert misses[0]["statement"] == "ReadOne" and misses[0]["element"] == "Resource"

    with pytest.raises(ClientError) as exc:
        role_iam.delete_role(RoleName="plain")
    assert "with an explicit deny in an identity-based policy" in error(exc)[1]
    explicit = json.loads(world["sts_a"].decode_authorization_message(
        EncodedMessage=error(exc)[1].split("message: ", 1)[1])["DecodedMessage"])  # the root may decode too
    assert explicit["explicitDeny"] is True
    assert explicit["matchedStatements"]["items"][0]["statementId"] == "NoDelete"

    with pytest.raises(ClientError) as exc:  # another account cannot read it
        world["sts_b"].decode_authorization_message(EncodedMessage=blob)
    assert error(exc)[0] == "InvalidAuthorizationMessageException"
    with pytest.raises(ClientError) as exc:  # nor can anyone forge one
        world["sts_a"].decode_authorization_message(EncodedMessage=blob[:-4] + "AAAA")
    assert error(exc)[0] == "InvalidAuthorizationMessageException"
    hub_sts = session_client(server, "sts", assume(world["sts_a"], "hub")["Credentials"])
    with pytest.raises(ClientError) as exc:  # a session not allowed sts:DecodeAuthorizationMessage
        hub_sts.decode_authorization_message(EncodedMessage=blob)
    assert error(exc)[0] == "AccessDenied"
    assert error(exc)[1].startswith(f"User: arn:aws:sts::{A}:assumed-role/hub/s1 is not authorized to perform: "
                                    "sts:DecodeAuthorizationMessage on resource: *")


def test_deleted_and_recreated_role_invalidates_sessions(server: Any, world: dict[str, Any]) -> None:
    iam = world["iam_a"]
    iam.create_role(RoleName="ephemeral", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{A}:root"))
    iam.put_role_policy(RoleName="ephemeral", PolicyName="p", PolicyDocument=allow("iam:ListRoles"))
    old = session_client(server, "iam", assume(world["sts_a"], "ephemeral")["Credentials"])
    assert old.list_roles()["Roles"]
    iam.delete_role_policy(RoleName="ephemeral", PolicyName="p")
    iam.delete_role(RoleName="ephemeral")
    iam.create_role(RoleName="ephemeral", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{A}:root"))
    iam.put_role_policy(RoleName="ephemeral", PolicyName="p", PolicyDocument=allow("iam:ListRoles"))
    with pytest.raises(ClientError) as exc:
        old.list_roles()
    assert error(exc)[0] == "AccessDenied"


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov", "foo"])
def test_role_arn_in_another_partition_names_no_role(server: Any, world: dict[str, Any], partition: str) -> None:
    """This server is the `aws` partition: a well-formed role ARN of another partition names a role that
    does not exist here, so AccessDenied as for any missing role (aws-semantics.md §1.2: such an ARN passes
    AWS's format check; §1.8: the denial's wording), never the `aws` role of the same account and name."""
    arn = f"arn:{partition}:iam::{A}:role/hub"
    with pytest.raises(ClientError) as exc:
        world["sts_a"].assume_role(RoleArn=arn, RoleSessionName="s1")
    assert error(exc) == ("AccessDenied", f"User: arn:aws:iam::{A}:root is not authorized to perform: "
                                          f"sts:AssumeRole on resource: {arn}")


def test_malformed_role_arns(world: dict[str, Any]) -> None:
    """aws-semantics.md §1.2: to AssumeRole, an ARN AWS cannot parse is `<value> is invalid`; a
    well-formed ARN that is not a role's is `Request ARN is invalid` (both ValidationError)."""
    for bad in ("nothing-valid-in-here", "arn:a:::something/test-role", f"arn:aws:iam::{A}:"):
        with pytest.raises(ClientError) as exc:
            world["sts_a"].assume_role(RoleArn=bad, RoleSessionName="s1")
        assert error(exc) == ("ValidationError", f"{bad} is invalid")
    for not_a_role in (f"arn:aws:iam::{A}:policy/hub", f"arn:aws:s3:::{A}-bucket/role/x", "arn:aws:iam::12:role/x"):
        with pytest.raises(ClientError) as exc:
            world["sts_a"].assume_role(RoleArn=not_a_role, RoleSessionName="s1")
        assert error(exc) == ("ValidationError", "Request ARN is invalid")


def test_session_tag_and_source_identity_rules(world: dict[str, Any]) -> None:
    """The session rules AssumeRole's parameters share with a web identity token's claims
    (sts/session_rules.py): the model's constraints as ValidationError, the others as STS's
    InvalidParameterValue (aws-semantics.md §1.2, §1.6, §1.8)."""
    sts = world["sts_a"]
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"Tags": [{"Key": "aws:x", "Value": "v"}]},
         ("InvalidParameterValue", 'User-defined tag keys can\'t start with "aws:".')),
        ({"Tags": [{"Key": "AWS:x", "Value": "v"}]},
         ("InvalidParameterValue", 'User-defined tag keys can\'t start with "aws:".')),
        ({"Tags": [{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}]},
         ("InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are case insensitive.")),
        ({"Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]},
         ("ValidationError", "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member "
                             "must have length less than or equal to 50")),
        ({"Tags": [{"Key": "a*b", "Value": "v"}]},
         ("ValidationError", "1 validation error detected: Value 'a*b' at 'tags.1.member.key' failed to satisfy "
                             "constraint: Member must satisfy regular expression pattern: "
                             "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+")),
        ({"SourceIdentity": "a" * 65},
         ("ValidationError", f"1 validation error detected: Value '{'a' * 65}' at 'sourceIdentity' failed to "
                             "satisfy constraint: Member must have length less than or equal to 64")),
        ({"SourceIdentity": "aws:x"},  # ':' is outside the alphabet, so the prefix rule is never reached
         ("ValidationError", "1 validation error detected: Value 'aws:x' at 'sourceIdentity' failed to satisfy "
                             "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")),
        ({"SourceIdentity": "a b/c"},
         ("ValidationError", "1 validation error detected: Value 'a b/c' at 'sourceIdentity' failed to satisfy "
                             "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")),
    ]
    for params, expected in cases:
        with pytest.raises(ClientError) as exc:
            assume(sts, "tagged", **params)
        assert error(exc) == expected, params
    ok = assume(sts, "tagged", Tags=[{"Key": "K" * 128, "Value": "v" * 256}], SourceIdentity="a" * 64)
    assert ok["SourceIdentity"] == "a" * 64
