"""What IAM checks in a trust policy when it is saved (CreateRole, UpdateAssumeRolePolicy), beyond the
policy grammar: the shared-provider guardrail (aws-semantics.md §1.5)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import aws_error

ACCOUNT = "350000000001"
GITHUB = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
AUD = {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return aws_error(exc)[:2]  # code and message


@pytest.fixture(scope="module")
def iam(server: Any) -> Any:
    return server.client("iam", ACCOUNT)


def trust(condition: dict[str, Any] | None, principal: str = GITHUB,
          action: str | list[str] = "sts:AssumeRoleWithWebIdentity", effect: str = "Allow") -> str:
    statement: dict[str, Any] = {"Effect": effect, "Principal": {"Federated": principal}, "Action": action}
    if condition is not None:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def guardrail(principal: str, key: str) -> tuple[str, str]:
    return ("MalformedPolicyDocument", f"Trust policy with trusted principal {principal} must evaluate, using "
            f"StringEquals, StringLike or StringEqualsIgnoreCase, {key} which is not scoped to all.")


UNSCOPED = {
    "no condition": None,
    "aud only": AUD,
    "sub is *": {"StringLike": {"token.actions.githubusercontent.com:sub": "*"}, **AUD},
    "sub among * and a repo": {"StringLike": {"token.actions.githubusercontent.com:sub": ["repo:o/r:*", "*"]}},
    "sub with a negated operator": {"StringNotEquals": {"token.actions.githubusercontent.com:sub": "repo:o/r:x"}},
    "sub with IfExists": {"StringLikeIfExists": {"token.actions.githubusercontent.com:sub": "repo:o/r:*"}},
    "sub under ForAnyValue": {"ForAnyValue:StringLike": {"token.actions.githubusercontent.com:sub": "repo:o/r:*"}},
    "another claim only": {"StringEquals": {"token.actions.githubusercontent.com:repository": "o/r"}},
    "another provider's sub": {"StringEquals": {"example.com:sub": "repo:o/r:x"}},
}
SCOPED = {
    "StringEquals": {"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:o/r:ref:refs/heads/main",
                                      "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}},
    "StringLike": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:o/*"}},
    "StringEqualsIgnoreCase": {"StringEqualsIgnoreCase": {"token.actions.githubusercontent.com:sub": "repo:o/r:x"}},
    "key in another case": {"StringLike": {"Token.Actions.GithubUserContent.com:SUB": "repo:o/*"}},
}


@pytest.mark.parametrize("condition", list(UNSCOPED.values()), ids=list(UNSCOPED))
def test_shared_provider_trust_must_scope_the_subject(iam: Any, condition: Any) -> None:
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName="gh-unscoped", AssumeRolePolicyDocument=trust(condition))
    assert error(exc) == guardrail(GITHUB, "token.actions.githubusercontent.com:sub")


@pytest.mark.parametrize("condition", list(SCOPED.values()), ids=list(SCOPED))
def test_shared_provider_trust_scoped_by_subject_is_accepted(iam: Any, condition: Any) -> None:
    name = "gh-" + str(abs(hash(json.dumps(condition))))[:12]
    assert iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(condition))["Role"]["RoleName"] == name


def test_update_assume_role_policy_is_held_to_the_guardrail(iam: Any) -> None:
    iam.create_role(RoleName="gh-update", AssumeRolePolicyDocument=trust(SCOPED["StringLike"]))
    with pytest.raises(ClientError) as exc:
        iam.update_assume_role_policy(RoleName="gh-update", PolicyDocument=trust(AUD))
    assert error(exc) == guardrail(GITHUB, "token.actions.githubusercontent.com:sub")
    assert "repo:o/*" in json.dumps(iam.get_role(RoleName="gh-update")["Role"]["AssumeRolePolicyDocument"])


def test_the_guardrail_names_the_provider_as_given(iam: Any) -> None:
    with_path = GITHUB + "/enterprise"
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName="gh-path", AssumeRolePolicyDocument=trust(AUD, principal=with_path))
    assert error(exc) == guardrail(with_path, "token.actions.githubusercontent.com/enterprise:sub")
    with pytest.raises(ClientError) as exc:  # any action pattern that covers the web identity assume
        iam.create_role(RoleName="gh-star", AssumeRolePolicyDocument=trust(AUD, action=["sts:*"]))
    assert error(exc) == guardrail(GITHUB, "token.actions.githubusercontent.com:sub")


def test_statements_that_do_not_let_the_provider_assume_are_not_held_to_it(iam: Any) -> None:
    deny = trust(None, effect="Deny")
    assert iam.create_role(RoleName="gh-deny", AssumeRolePolicyDocument=deny)["Role"]["RoleName"] == "gh-deny"
    tag_only = trust(None, action="sts:TagSession")
    assert iam.create_role(RoleName="gh-tag", AssumeRolePolicyDocument=tag_only)["Role"]["RoleName"] == "gh-tag"
    own = trust(AUD, principal=f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.example.com/id/X")
    assert iam.create_role(RoleName="gh-own", AssumeRolePolicyDocument=own)["Role"]["RoleName"] == "gh-own"


# -- AWS principals: named by ARN, kept by unique ID (aws-semantics.md §2.4, §4.1) ----------------------
OTHER = "350000000002"  # an account this server knows
UNKNOWN = "350000000099"  # one it does not


def assume_trust(*principals: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "sts:AssumeRole"}]})


def invalid_principal(arn: str) -> tuple[str, str]:
    return ("MalformedPolicyDocument", f'Invalid principal in policy: "AWS":"{arn}"')


def session(server: Any, account: str, role: str) -> Any:
    creds = server.client("sts", account).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="ss")["Credentials"]
    return server.client("sts", aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"])


def make_caller(iam: Any, account: str, name: str) -> str:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=assume_trust(f"arn:aws:iam::{account}:root"))
    iam.put_role_policy(RoleName=name, PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    return iam.get_role(RoleName=name)["Role"]["RoleId"]


def test_a_principal_that_does_not_exist_is_refused_on_save(server: Any, iam: Any) -> None:
    server.account(OTHER)
    iam.create_role(RoleName="pr-target", AssumeRolePolicyDocument=assume_trust(f"arn:aws:iam::{ACCOUNT}:root"))
    make_caller(iam, ACCOUNT, "pr-real")
    for missing in (f"arn:aws:iam::{ACCOUNT}:role/pr-ghost", f"arn:aws:iam::{ACCOUNT}:user/pr-ghost",
                    f"arn:aws:iam::{ACCOUNT}:role/wrong-path/pr-real", f"arn:aws:iam::{OTHER}:role/pr-ghost"):
        with pytest.raises(ClientError) as exc:
            iam.create_role(RoleName="pr-victim", AssumeRolePolicyDocument=assume_trust(missing))
        assert error(exc) == invalid_principal(missing)
        with pytest.raises(ClientError) as exc:
            iam.update_assume_role_policy(RoleName="pr-target", PolicyDocument=assume_trust(
                f"arn:aws:iam::{ACCOUNT}:role/pr-real", missing))
        assert error(exc) == invalid_principal(missing)
    with pytest.raises(ClientError) as exc:  # nor can a role trust itself before it exists
        iam.create_role(RoleName="pr-self", AssumeRolePolicyDocument=assume_trust(
            f"arn:aws:iam::{ACCOUNT}:role/pr-self"))
    assert error(exc) == invalid_principal(f"arn:aws:iam::{ACCOUNT}:role/pr-self")
    # an account this server does not hold cannot be checked: its principals are kept as written
    unknown = f"arn:aws:iam::{UNKNOWN}:role/anyone"
    iam.create_role(RoleName="pr-unknown", AssumeRolePolicyDocument=assume_trust(unknown))
    assert iam.get_role(RoleName="pr-unknown")["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "AWS": [unknown]}


def test_a_recreated_role_does_not_inherit_trust(server: Any, iam: Any) -> None:
    ghost = f"arn:aws:iam::{ACCOUNT}:role/pr-ghost"
    old_id = make_caller(iam, ACCOUNT, "pr-ghost")
    iam.create_role(RoleName="pr-victim", AssumeRolePolicyDocument=assume_trust(ghost))
    shown = iam.get_role(RoleName="pr-victim")["Role"]["AssumeRolePolicyDocument"]
    assert shown["Statement"][0]["Principal"] == {"AWS": [ghost]}  # the ARN while the role exists
    victim = f"arn:aws:iam::{ACCOUNT}:role/pr-victim"
    assert session(server, ACCOUNT, "pr-ghost").assume_role(RoleArn=victim, RoleSessionName="vv")["Credentials"]

    iam.delete_role_policy(RoleName="pr-ghost", PolicyName="assume")
    iam.delete_role(RoleName="pr-ghost")
    shown = iam.get_role(RoleName="pr-victim")["Role"]["AssumeRolePolicyDocument"]
    assert shown["Statement"][0]["Principal"] == {"AWS": [old_id]}  # the unique ID once it is gone
    listed = next(r for r in iam.list_roles()["Roles"] if r["RoleName"] == "pr-victim")
    assert listed["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"AWS": [old_id]}

    new_id = make_caller(iam, ACCOUNT, "pr-ghost")
    assert new_id != old_id
    with pytest.raises(ClientError) as exc:
        session(server, ACCOUNT, "pr-ghost").assume_role(RoleArn=victim, RoleSessionName="vv")
    assert error(exc) == ("AccessDenied", f"User: arn:aws:sts::{ACCOUNT}:assumed-role/pr-ghost/ss is not "
                                          f"authorized to perform: sts:AssumeRole on resource: {victim}")
    assert iam.get_role(RoleName="pr-victim")["Role"]["AssumeRolePolicyDocument"]["Statement"][0][
        "Principal"] == {"AWS": [old_id]}
    # naming the new role again trusts the new role
    iam.update_assume_role_policy(RoleName="pr-victim", PolicyDocument=assume_trust(ghost))
    assert session(server, ACCOUNT, "pr-ghost").assume_role(RoleArn=victim, RoleSessionName="vv")["Credentials"]


def test_a_recreated_role_of_another_account_does_not_inherit_trust(server: Any, iam: Any) -> None:
    other_iam = server.client("iam", OTHER)
    caller = f"arn:aws:iam::{OTHER}:role/pr-remote"
    make_caller(other_iam, OTHER, "pr-remote")
    iam.create_role(RoleName="pr-cross", AssumeRolePolicyDocument=assume_trust(caller))
    cross = f"arn:aws:iam::{ACCOUNT}:role/pr-cross"
    assert session(server, OTHER, "pr-remote").assume_role(RoleArn=cross, RoleSessionName="xx")["Credentials"]
    other_iam.delete_role_policy(RoleName="pr-remote", PolicyName="assume")
    other_iam.delete_role(RoleName="pr-remote")
    make_caller(other_iam, OTHER, "pr-remote")
    with pytest.raises(ClientError) as exc:
        session(server, OTHER, "pr-remote").assume_role(RoleArn=cross, RoleSessionName="xx")
    assert error(exc)[0] == "AccessDenied"
