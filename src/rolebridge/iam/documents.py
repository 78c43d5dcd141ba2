"""Policy documents as IAM stores and returns them: validated on write, URL-encoded on read."""

from __future__ import annotations

import json
from typing import Any

from rolebridge import errors
from rolebridge.policy import compile_policy

TRUST_POLICY_QUOTA = 2048  # ACLSizePerRole default; whitespace is not counted
INLINE_ROLE_POLICY_QUOTA = 10240  # RolePolicySizeQuota: all inline policies of a role together
MANAGED_POLICY_QUOTA = 6144


def packed_size(document: str) -> int:
    """Length without insignificant whitespace, as IAM counts quotas."""
    try:
        return len(json.dumps(json.loads(document), separators=(",", ":"), ensure_ascii=False))
    except ValueError:
        return len(document)


def check_trust_policy(document: str) -> None:
    compile_policy(document, kind="trust")
    size = packed_size(document)
    if size > TRUST_POLICY_QUOTA:
        raise errors.LimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_QUOTA}")


def check_identity_policy(document: str, *, kind: str = "identity", inline: bool = False) -> None:
    """``inline``: a role's inline policy, limited only together with the role's others
    (``INLINE_ROLE_POLICY_QUOTA``, checked by the caller), not by the managed-policy size."""
    compile_policy(document, kind=kind, inline=inline)


def as_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)
