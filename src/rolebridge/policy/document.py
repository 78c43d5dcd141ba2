"""Parsing and validation of policy documents, in the order and words IAM uses.

IAM reports only the first problem of a document; ``validate`` collects all of them in the order
IAM checks them (syntax, version, legacy parsing, Sid, principal, actions, resources, resource
formats, action prefixes), so the first one is what AWS would say. Messages are AWS's verbatim
where known (aws-semantics 2.4, LocalStack snapshots recorded against AWS); ``detail`` is ours and
names the statement and element.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from rolebridge.policy.conditions import BadConditionValue, compile_condition, parse_date, parse_operator
from rolebridge.policy.conditions import TypeMismatch as _TypeMismatch
from rolebridge.policy.model import PolicyKind, PolicyProblem
from rolebridge.policy.principals import PRINCIPAL_TYPES, as_list, principal_problem

SYNTAX = "Syntax errors in policy."
VERSION = "Policy document must be version 2012-10-17 or greater."
LEGACY = "The policy failed legacy parsing"
SID_UNIQUE = "Statement IDs (SID) in a single policy must be unique."
SID_ALNUM = (
    "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
)
NO_ACTIONS = "Policy statement must contain actions."
NO_RESOURCES = "Policy statement must contain resources."
NO_PRINCIPAL_ALLOWED = "Policy document should not specify a principal."
PRINCIPAL_REQUIRED = "Missing required field Principal"  # S3 PutBucketPolicy wording
TRUST_PRINCIPAL_REQUIRED = (  # CreateRole, observed in terraform-aws-modules/terraform-aws-iam#47
    "Invalid principal in policy: com.amazon.balsa.error.InvalidPolicyException: "
    "The passed in policy has a statement with no principals!"
)
NOT_PRINCIPAL_TRUST = "AssumeRole policy contains an unsupported NotPrincipal element."
TRUST_ACTIONS = "AssumeRole policy may only specify STS AssumeRole actions."
TRUST_RESOURCE = "Has prohibited field Resource."
VENDOR = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
ONE_COLON = "Actions/Condition can contain only one colon."
RESOURCE_VENDOR = "Resource vendor must be fully qualified and cannot contain regexes."

VERSIONS = ("2012-10-17", "2008-10-17")
TOP_ELEMENTS = ("Version", "Id", "Statement")
STATEMENT_ELEMENTS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc")
IAM_PATHS = (
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
)
TRUST_ACTION_NAMES = frozenset(
    a.lower()
    for a in (
        "sts:AssumeRole",
        "sts:AssumeRoleWithWebIdentity",
        "sts:AssumeRoleWithSAML",
        "sts:TagSession",
        "sts:SetSourceIdentity",
        "sts:SetContext",
        "sts:AssumeRoot",
    )
)
# Non-whitespace characters, as IAM counts them (aws-semantics 2.4 / IAM quotas): the limit of one managed
# policy (identity, boundary). An inline policy embedded in a role has no limit of its own: IAM limits a
# role's inline policies only together (RolePolicySizeQuota, 10,240), which the caller checks. For an SCP
# every character counts, whitespace included (AWS Organizations, "SCP syntax": "All characters in your
# SCP count against its maximum size").
SIZE_LIMITS = {PolicyKind.IDENTITY: 6144, PolicyKind.BOUNDARY: 6144, PolicyKind.SCP: 5120}
# Kinds whose Version must be 2012-10-17: IAM's managed/inline policies, and SCPs ("Every SCP must
# include a Version element with the value 2012-10-17", AWS Organizations, "SCP syntax").
_CURRENT_VERSION_KINDS = (PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.SCP)
_VENDOR = re.compile(r"[^a-zA-Z0-9\-.]")
_SID = re.compile(r"^[0-9A-Za-z]*$")
_IAM_KINDS = (PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.TRUST, PolicyKind.SESSION)
_NO_PRINCIPAL_KINDS = (PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.SESSION, PolicyKind.SCP)


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKey(k)
        out[k] = v
    return out


def load(document: str | bytes | Mapping[str, Any]) -> tuple[Any, PolicyProblem | None]:
    """JSON text (duplicate keys rejected) or an already-parsed mapping."""
    if isinstance(document, Mapping):
        try:
            json.dumps(document, default=str)
        except (TypeError, ValueError, RecursionError) as exc:  # keys that are not strings, cycles
            return None, PolicyProblem("MalformedPolicyDocument", SYNTAX, detail=f"not JSON: {exc}")
        return document, None
    if isinstance(document, bytes):
        try:
            document = document.decode("utf-8")
        except UnicodeDecodeError:
            return None, PolicyProblem("MalformedPolicyDocument", SYNTAX, detail="document is not UTF-8")
    try:
        return json.loads(document, object_pairs_hook=_no_duplicates), None
    except DuplicateKey as exc:
        return None, PolicyProblem("MalformedPolicyDocument", SYNTAX, element=str(exc), detail=f"duplicate key {exc}")
    except (ValueError, RecursionError) as exc:
        return None, PolicyProblem("MalformedPolicyDocument", SYNTAX, detail=f"invalid JSON: {exc}")


def statements_of(doc: Mapping[str, Any]) -> list[Any]:
    st = doc.get("Statement")
    return [st] if isinstance(st, dict) else list(st or [])


def _strings(v: Any) -> bool:
    if isinstance(v, str):
        return True
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _cond_value_ok(v: Any) -> bool:
    scalar = (str, bool, int, float)
    if isinstance(v, list):
        return bool(v) and all(isinstance(x, scalar) for x in v)
    return isinstance(v, scalar)


class _Collector:
    def __init__(self) -> None:
        self.problems: list[PolicyProblem] = []

    def add(
        self,
        message: str,
        statement: int | None = None,
        element: str | None = None,
        detail: str | None = None,
        code: str = "MalformedPolicyDocument",
    ) -> None:
        self.problems.append(PolicyProblem(code, message, statement, element, detail))


def _syntax(doc: Any, out: _Collector) -> bool:
    """Shape checks; on failure IAM says only "Syntax errors in policy."."""
    if not isinstance(doc, Mapping):
        out.add(SYNTAX, detail="the document is not a JSON object")
        return False
    ok = True
    for k in doc:
        if k not in TOP_ELEMENTS:
            out.add(SYNTAX, element=k, detail=f"unknown top-level element {k!r}")
            ok = False
    if "Version" in doc and doc["Version"] not in VERSIONS:
        out.add(SYNTAX, element="Version", detail=f"unknown Version {doc['Version']!r}")
        ok = False
    if "Id" in doc and not isinstance(doc["Id"], str):
        out.add(SYNTAX, element="Id", detail="Id must be a string")
        ok = False
    st = doc.get("Statement")
    if not isinstance(st, (dict, list)) or (isinstance(st, list) and not st):
        out.add(SYNTAX, element="Statement", detail="Statement must be an object or a non-empty array")
        return False
    for i, s in enumerate(statements_of(doc)):
        ok = _statement_syntax(i, s, out) and ok
    return ok


def _statement_syntax(i: int, s: Any, out: _Collector) -> bool:
    if not isinstance(s, Mapping):
        out.add(SYNTAX, i, detail=f"statement {i} is not an object")
        return False
    n0 = len(out.problems)
    for k in s:
        if k not in STATEMENT_ELEMENTS:
            out.add(SYNTAX, i, k, f"statement {i}: unknown element {k!r}")
    for a, b in (("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")):
        if a in s and b in s:
            out.add(SYNTAX, i, b, f"statement {i}: {a} and {b} together")
    eff = s.get("Effect")
    if not isinstance(eff, str) or eff.lower() not in ("allow", "deny"):
        out.add(SYNTAX, i, "Effect", f"statement {i}: Effect must be Allow or Deny, got {eff!r}")
    for k in ("Action", "NotAction", "Resource", "NotResource"):
        if k in s and not _strings(s[k]):
            out.add(SYNTAX, i, k, f"statement {i}: {k} must be a string or an array of strings")
    if "Sid" in s and not isinstance(s["Sid"], str):
        out.add(SYNTAX, i, "Sid", f"statement {i}: Sid must be a string")
    for k in ("Principal", "NotPrincipal"):
        if k not in s:
            continue
        p = s[k]
        if p == "*":
            continue
        if not isinstance(p, Mapping) or not p:
            out.add(SYNTAX, i, k, f'statement {i}: {k} must be "*" or an object')
            continue
        for ptype, val in p.items():
            if ptype not in PRINCIPAL_TYPES:
                out.add(SYNTAX, i, k, f"statement {i}: unknown principal type {ptype!r}")
            elif not _strings(val) or val == []:
                out.add(SYNTAX, i, k, f"statement {i}: {k}.{ptype} must be a string or non-empty array")
    if "Condition" in s:
        cond = s["Condition"]
        if not isinstance(cond, Mapping):
            out.add(SYNTAX, i, "Condition", f"statement {i}: Condition must be an object")
        else:
            for op, block in cond.items():
                if not isinstance(block, Mapping):
                    out.add(SYNTAX, i, "Condition", f"statement {i}: Condition.{op} must be an object")
                    continue
                spec = parse_operator(op)
                if spec is None and block:
                    out.add(SYNTAX, i, "Condition", f"statement {i}: unknown condition operator {op!r}")
                    continue
                for key, v in block.items():
                    if not _cond_value_ok(v):
                        out.add(
                            SYNTAX,
                            i,
                            "Condition",
                            f"statement {i}: {op}.{key}: values must be strings, numbers or booleans",
                        )
                    elif spec is not None and spec.family != "null" and not spec.family.startswith("date"):
                        try:
                            compile_condition(spec, key, as_list(v), variables=False)
                        except BadConditionValue as exc:
                            out.add(SYNTAX, i, "Condition", f"statement {i}: {op}.{key}: {exc}")
    return len(out.problems) == n0


def _legacy(stmts: list[Any], out: _Collector) -> None:
    for i, s in enumerate(stmts):
        if s.get("Effect") not in ("Allow", "Deny"):
            out.add(LEGACY, i, "Effect", f"statement {i}: Effect is case-sensitive, got {s.get('Effect')!r}")
        for op, block in (s.get("Condition") or {}).items():
            spec = parse_operator(op)
            if spec is None or not spec.family.startswith("date"):
                continue
            for key, v in block.items():
                for d in as_list(v):
                    if not _is_date(d):
                        out.add(LEGACY, i, "Condition", f"statement {i}: {op}.{key}: {d!r} is not a date")


def _is_date(d: Any) -> bool:
    if isinstance(d, bool):
        return False
    try:
        parse_date(str(d))
    except _TypeMismatch:
        return False
    return True


def _resource_problem(r: str) -> str | None:
    if r == "*":
        return None
    if ":" not in r:
        return f'Resource {r} must be in ARN format or "*".'
    parts = r.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        if parts[0] != "arn":
            return f'Resource {r} must be in ARN format or "*".'
        return RESOURCE_VENDOR if len(parts) < 3 or not parts[2] else f'Resource {r} must be in ARN format or "*".'
    partition, vendor, region = parts[1], parts[2], parts[3]
    if partition not in PARTITIONS and partition != "*":
        rest = parts[2:] + ["*"] * (4 - len(parts[2:]))
        return f'Partition "{partition}" is not valid for resource "arn:{partition}:{":".join(rest[:4])}".'
    if not vendor or "*" in vendor or "?" in vendor:
        return RESOURCE_VENDOR
    if vendor == "iam":
        if region:
            return f"IAM resource {r} cannot contain region information."
        if parts[5] != "*" and not parts[5].startswith(IAM_PATHS):
            return 'IAM resource path must either be "*" or start with ' + ", ".join(IAM_PATHS) + "."
    if vendor == "s3" and region:
        return f"Resource {r} can not contain region information."
    return None


def _action_problem(a: str) -> str | None:
    if a == "*":
        return None
    parts = a.split(":")
    if len(parts) == 1:
        return VENDOR
    if len(parts) > 2:
        return ONE_COLON
    if not parts[0] or _VENDOR.search(parts[0]):
        return f"Vendor {parts[0]} is not valid"
    return None


def non_whitespace_length(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def validate(document: Any, kind: PolicyKind, raw_text: str | None = None, *,
             inline: bool = False) -> list[PolicyProblem]:
    """All problems of an already-loaded document, first = what IAM would report.

    ``inline``: the document is embedded in a role, so no per-document size limit applies.
    """
    out = _Collector()
    limit = None if inline else SIZE_LIMITS.get(kind)
    if limit is not None:
        text = raw_text if raw_text is not None else json.dumps(document, default=str, separators=(",", ":"))
        size = len(text) if kind is PolicyKind.SCP else non_whitespace_length(text)
        if size > limit:
            quota = "PolicySize" if kind is not PolicyKind.SCP else "PolicySizeSCP"
            out.add(
                f"Cannot exceed quota for {quota}: {limit}",
                code="LimitExceeded",
                detail=f"{size} characters" if kind is PolicyKind.SCP else f"{size} non-whitespace characters",
            )
            return out.problems
    if not _syntax(document, out):
        return out.problems
    stmts = statements_of(document)
    version = document.get("Version")
    if version != "2012-10-17" and kind in _CURRENT_VERSION_KINDS:
        out.add(VERSION, element="Version", detail=f"Version is {version!r}")
    _legacy(stmts, out)
    sids: set[str] = set()
    for i, s in enumerate(stmts):
        sid = s.get("Sid")
        if sid:
            if sid in sids:
                out.add(SID_UNIQUE, i, "Sid", f"statement {i}: Sid {sid!r} repeats")
            sids.add(sid)
        if sid is not None and kind in _IAM_KINDS and not _SID.match(sid):
            out.add(SID_ALNUM, i, "Sid", f"statement {i}: Sid {sid!r} is not alphanumeric")
    for i, s in enumerate(stmts):
        if kind in _NO_PRINCIPAL_KINDS and ("Principal" in s or "NotPrincipal" in s):
            out.add(
                NO_PRINCIPAL_ALLOWED,
                i,
                "Principal" if "Principal" in s else "NotPrincipal",
                f"statement {i}: a {kind.value} policy names no principal",
            )
        if kind is PolicyKind.TRUST and "NotPrincipal" in s:
            out.add(NOT_PRINCIPAL_TRUST, i, "NotPrincipal", f"statement {i}: NotPrincipal in a trust policy")
        elif kind in (PolicyKind.TRUST, PolicyKind.RESOURCE) and "Principal" not in s and "NotPrincipal" not in s:
            msg = TRUST_PRINCIPAL_REQUIRED if kind is PolicyKind.TRUST else PRINCIPAL_REQUIRED
            out.add(msg, i, "Principal", f"statement {i}: a {kind.value} policy needs a Principal")
        for el in ("Principal", "NotPrincipal"):
            p = s.get(el)
            if isinstance(p, Mapping):
                for ptype, vals in p.items():
                    for v in as_list(vals):
                        msg = principal_problem(ptype, v)
                        if msg:
                            out.add(msg, i, el, f"statement {i}: {el}.{ptype} {v!r} is not a valid principal")
    for i, s in enumerate(stmts):
        key = "Action" if "Action" in s else "NotAction" if "NotAction" in s else None
        if key is None or s[key] == []:
            out.add(NO_ACTIONS, i, key or "Action", f"statement {i}: no Action or NotAction")
    for i, s in enumerate(stmts):
        key = "Resource" if "Resource" in s else "NotResource" if "NotResource" in s else None
        if kind is PolicyKind.TRUST:
            if key is not None:
                out.add(TRUST_RESOURCE, i, key, f"statement {i}: trust policies have no {key}")
        elif key is None or s[key] == []:
            out.add(NO_RESOURCES, i, key or "Resource", f"statement {i}: no Resource or NotResource")
    for i, s in enumerate(stmts):
        for key in ("Resource", "NotResource"):
            if key in s and kind is not PolicyKind.TRUST:
                for r in as_list(s[key]):
                    msg = _resource_problem(r)
                    if msg:
                        out.add(msg, i, key, f"statement {i}: {key} {r!r}")
    for i, s in enumerate(stmts):
        for key in ("Action", "NotAction"):
            for a in as_list(s.get(key, [])):
                msg = _action_problem(a)
                if msg:
                    out.add(msg, i, key, f"statement {i}: {key} {a!r}")
                elif kind is PolicyKind.TRUST and (key == "NotAction" or not _trust_action(a)):
                    out.add(TRUST_ACTIONS, i, key, f"statement {i}: {key} {a!r} is not an STS assume action")
    return out.problems


def _trust_action(a: str) -> bool:
    al = a.lower()
    if al in TRUST_ACTION_NAMES or al in ("*", "sts:*"):
        return True
    if "*" in al or "?" in al:
        from rolebridge.policy.patterns import glob

        return any(glob(al, name) for name in TRUST_ACTION_NAMES)
    return False
