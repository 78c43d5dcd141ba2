"""Policy documents as IAM stores and returns them: validated on write, URL-encoded on read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rolebridge import errors
from rolebridge.policy import compile_policy
from rolebridge.policy.conditions import parse_operator
from rolebridge.policy.document import statements_of
from rolebridge.policy.patterns import glob
from rolebridge.policy.principals import as_list

TRUST_POLICY_QUOTA = 2048  # ACLSizePerRole default; whitespace is not counted
INLINE_ROLE_POLICY_QUOTA = 10240  # RolePolicySizeQuota: all inline policies of a role together
MANAGED_POLICY_QUOTA = 6144


def packed_size(document: str) -> int:
    """Length without insignificant whitespace, as IAM counts quotas."""
    try:
        return len(json.dumps(json.loads(document), separators=(",", ":"), ensure_ascii=False))
    except ValueError:
        return len(document)


# The shared-provider guardrail (aws-semantics.md §1.5): IAM refuses to save a trust policy that lets the
# tokens of an identity provider many customers share assume the role without scoping their subject.
# The providers: the one §1.5 names; AWS's full list was not retrieved (§6, open question 5).
SHARED_PROVIDERS = frozenset({"token.actions.githubusercontent.com"})
_SCOPING_OPERATORS = frozenset({"StringEquals", "StringLike", "StringEqualsIgnoreCase"})
_WEB_IDENTITY = "sts:assumerolewithwebidentity"


def check_trust_policy(document: str) -> Mapping[str, Any]:
    """The trust policy, parsed, if IAM would save it; else AWS's error."""
    compiled = compile_policy(document, kind="trust")
    size = packed_size(document)
    if size > TRUST_POLICY_QUOTA:
        raise errors.LimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_QUOTA}")
    problem = shared_provider_problem(compiled.document)
    if problem is not None:
        raise errors.MalformedPolicyDocument(problem)
    return compiled.document


def shared_provider_problem(document: Mapping[str, Any]) -> str | None:
    """IAM's refusal of a (valid) trust policy whose Allow lets a shared provider's tokens assume the
    role (``sts:AssumeRoleWithWebIdentity``) with no condition scoping ``<provider>:sub``: one of
    StringEquals, StringLike or StringEqualsIgnoreCase (not negated, no IfExists or set prefix) on
    that key, none of whose values is only ``*``. Checked on save only: a stored policy is never
    re-judged."""
    for st in statements_of(document):
        if st.get("Effect") != "Allow" or not _allows_web_identity(st):
            continue
        principal = st.get("Principal")
        federated = principal.get("Federated", []) if isinstance(principal, Mapping) else []
        for value in federated if isinstance(federated, list) else [federated]:
            provider = value.split(":oidc-provider/", 1)[1] if ":oidc-provider/" in value else value
            if provider.split("/", 1)[0] not in SHARED_PROVIDERS:
                continue
            key = f"{provider}:sub"
            if not _scopes(st.get("Condition") or {}, key):
                return (f"Trust policy with trusted principal {value} must evaluate, using StringEquals, "
                        f"StringLike or StringEqualsIgnoreCase, {key} which is not scoped to all.")
    return None


def _allows_web_identity(statement: Mapping[str, Any]) -> bool:
    if "NotAction" in statement:
        return not any(glob(a.lower(), _WEB_IDENTITY) for a in as_list(statement["NotAction"]))
    return any(glob(a.lower(), _WEB_IDENTITY) for a in as_list(statement.get("Action", [])))


def _scopes(condition: Mapping[str, Any], key: str) -> bool:
    for operator, block in condition.items():
        spec = parse_operator(operator)
        if spec is None or spec.base not in _SCOPING_OPERATORS or spec.set_op or spec.if_exists:
            continue
        for k, values in block.items():
            listed = as_list(values)
            if k.lower() == key.lower() and listed and not any(set(str(v)) <= {"*"} for v in listed):
                return True
    return False


def check_identity_policy(document: str, *, kind: str = "identity", inline: bool = False) -> None:
    """``inline``: a role's inline policy, limited only together with the role's others
    (``INLINE_ROLE_POLICY_QUOTA``, checked by the caller), not by the managed-policy size."""
    compile_policy(document, kind=kind, inline=inline)


def as_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)
