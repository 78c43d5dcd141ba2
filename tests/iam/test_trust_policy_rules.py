"""What IAM checks in a trust policy when it is saved (CreateRole, UpdateAssumeRolePolicy), beyond the
policy grammar: the shared-provider guardrail (aws-semantics.md §1.5)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "350000000001"
GITHUB = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
AUD = {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


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
    assert error(exc)[0] == "MalformedPolicyDocument"


def test_statements_that_do_not_let_the_provider_assume_are_not_held_to_it(iam: Any) -> None:
    deny = trust(None, effect="Deny")
    assert iam.create_role(RoleName="gh-deny", AssumeRolePolicyDocument=deny)["Role"]
    tag_only = trust(None, action="sts:TagSession")
    assert iam.create_role(RoleName="gh-tag", AssumeRolePolicyDocument=tag_only)["Role"]
    own = trust(AUD, principal=f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.example.com/id/X")
    assert iam.create_role(RoleName="gh-own", AssumeRolePolicyDocument=own)["Role"]
