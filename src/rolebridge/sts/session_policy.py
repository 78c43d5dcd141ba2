"""Session policies, the inline ``Policy`` and managed ``PolicyArns`` an assume passes: one
implementation for AssumeRole and AssumeRoleWithWebIdentity (aws-semantics.md §1.2, §1.4, §4.8).

A session's permissions are its role's identity policies intersected with these
(``iam/authorize.session_policies`` reads them back from the session for IAM and S3 alike).

In the order the checks run:
1. ``requested``, with the other parameters: the inline policy must be a valid session policy
   (``MalformedPolicyDocument``); at most 10 policy ARNs (documented limit), each a policy ARN.
2. ``check_packed``: the packed size of the policies and session tags must be within 100%
   (``PackedPolicyTooLarge``); it is what ``PackedPolicySize`` reports.
3. ``resolve``, only once the caller is authorized (so nobody learns from a refusal which policies
   an account holds): each ARN must name a managed policy the role's account can attach, its own
   or AWS's (documented: "The policies must exist in the same account as the role").
4. ``session_context``: what the session record keeps (``pol``, ``parns``).

AWS's exact answers for 1's count and 3 are not captured (aws-semantics.md gives the limits only);
inferred: the count in the API's constraint wording (ValidationError), and a policy the role's
account cannot attach as the modeled session-policy error (MalformedPolicyDocument) in IAM's
sentence for an unattachable policy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rolebridge import errors
from rolebridge.iam.policy_store import parse_policy_arn
from rolebridge.iam.policy_store import resolve as resolve_policy
from rolebridge.policy import compile_policy

MAX_POLICY_ARNS = 10
PACKED_LIMIT = 2048


@dataclass(frozen=True)
class SessionPolicies:
    policy: str | None = None  # the inline policy, compact JSON
    arns: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.policy or self.arns)


def requested(p: Mapping[str, Any]) -> SessionPolicies:
    """The session policies of the request's ``Policy`` and ``PolicyArns``, checked as parameters."""
    policy = p.get("Policy")
    if policy:
        # the compiled policy (cached by text) holds the parsed document: no second parse
        policy = json.dumps(compile_policy(policy, kind="session").document, separators=(",", ":"))
    arns = [d["arn"] for d in p.get("PolicyArns") or [] if d.get("arn")]
    if len(arns) > MAX_POLICY_ARNS:
        raise errors.validation_error([(None, "policyArns", "Member must have length less than or equal to "
                                              f"{MAX_POLICY_ARNS}")])
    for arn in arns:
        if parse_policy_arn(arn) is None:
            raise _unattachable(arn)
    return SessionPolicies(policy or None, tuple(arns))


def packed_percent(policies: SessionPolicies, tags: Sequence[tuple[str, str]]) -> int:
    """How full the packed session policies and tags are, in percent, as PackedPolicySize reports."""
    size = len(policies.policy or "") + sum(len(a) for a in policies.arns) + sum(len(k) + len(v) for k, v in tags)
    return max(1, -(-size * 100 // PACKED_LIMIT))


def check_packed(policies: SessionPolicies, tags: Sequence[tuple[str, str]]) -> int | None:
    """PackedPolicySize, or None when no session policy or tag was passed (AWS then omits it)."""
    if not policies and not tags:
        return None
    packed = packed_percent(policies, tags)
    if packed > 100:
        raise errors.PackedPolicyTooLarge(f"Packed size of the session policy and tags is {packed}% of the "
                                          "allowed size.")
    return packed


def resolve(session: Any, role_account: str, policies: SessionPolicies) -> None:
    """Each ARN names a managed policy the role's account can attach (its own, or AWS's); the store
    ``session`` is a read transaction."""
    for arn in policies.arns:
        if resolve_policy(session, role_account, arn) is None:
            raise _unattachable(arn)


def session_context(policies: SessionPolicies) -> dict[str, Any]:
    """The session record's entries for ``iam/authorize.session_policies``."""
    out: dict[str, Any] = {}
    if policies.policy:
        out["pol"] = policies.policy
    if policies.arns:
        out["parns"] = list(policies.arns)
    return out


def _unattachable(arn: str) -> errors.MalformedPolicyDocument:
    return errors.MalformedPolicyDocument(f"Policy {arn} does not exist or is not attachable.")
