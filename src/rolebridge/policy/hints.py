"""Classified causes for a failed condition, as data for `rolebridge explain` and STS logs.

Each hint is a short code plus the evidence behind it; none of this changes a decision. The codes
cover the mistakes seen in real trust policies (reference/sts-cases.json): a condition key written
with ``https://`` (C06), wildcards under ``StringEquals`` (use ``StringLike``), a ``sub`` whose
namespace or service-account part differs (C01), a case difference (C03), ``_`` written for ``.``
(C05), and a key the request does not carry at all while a similar one is present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rolebridge.policy.patterns import glob

_SA_PREFIX = "system:serviceaccount:"


def _similar_keys(key_l: str, ctx: Mapping[str, Sequence[str]]) -> list[str]:
    """Request keys with the same claim (after the last colon) or the same prefix."""
    prefix, _, claim = key_l.rpartition(":")
    bare = prefix.split("://", 1)[-1]
    out = []
    for k in ctx:
        kp, _, kc = k.rpartition(":")
        if k != key_l and ((kc == claim and claim) or kp == bare or kp == prefix):
            out.append(k)
    return sorted(out)


def _sa_parts(value: str) -> tuple[str, str] | None:
    if not value.startswith(_SA_PREFIX):
        return None
    rest = value[len(_SA_PREFIX) :]
    ns, sep, sa = rest.partition(":")
    return (ns, sa) if sep else None


def _same(base: str, pattern: str, value: str) -> bool:
    if base in ("StringLike", "ArnLike", "ArnEquals"):
        return glob(pattern, value)
    return pattern == value


def condition_hints(info: Mapping[str, Any], ctx: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Hints for one failed condition described by ``CompiledCondition.explain`` output."""
    if info.get("result"):
        return []
    hints: list[dict[str, Any]] = []
    key: str = info["key"]
    base: str = info["base_operator"]
    expected: list[str] = list(info.get("resolved_expected") or info["expected"])
    expected = [e for e in expected if e is not None]
    seen: list[str] | None = info["seen"]
    if key.lower().startswith(("https://", "http://")):
        hints.append({"code": "scheme_in_key", "fix": key.split("://", 1)[1]})
    if info["key_absent"]:
        similar = _similar_keys(key.lower(), ctx)
        hints.append({"code": "key_absent", "similar_keys": similar})
    if info.get("wildcards_in_values") and base.startswith("String"):
        hints.append({"code": "wildcard_needs_like", "fix": base.replace("Equals", "Like").replace("IgnoreCase", "")})
    if info.get("type_mismatch"):
        hints.append({"code": "type_mismatch", "operator": base})
    if not seen or info["negated"]:
        return hints
    for want in expected:
        for got in seen:
            if want.lower() == got.lower() and want != got:
                hints.append({"code": "case_differs", "expected": want, "seen": got})
            if "_" in want and _same(base, want.replace("_", "."), got) and not _same(base, want, got):
                hints.append({"code": "underscore_vs_dot", "expected": want, "seen": got})
            w, g = _sa_parts(want), _sa_parts(got)
            if w and g:
                if w[0] != g[0] and "*" not in w[0] and "?" not in w[0]:
                    hints.append({"code": "namespace_differs", "expected": w[0], "seen": g[0]})
                if w[1] != g[1] and "*" not in w[1] and "?" not in w[1]:
                    hints.append({"code": "service_account_differs", "expected": w[1], "seen": g[1]})
    return hints
