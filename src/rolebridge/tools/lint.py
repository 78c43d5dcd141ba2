"""`rolebridge lint`: what a web-identity trust policy lets in that it probably should not.

Each rule looks at the Allow statements for ``sts:AssumeRoleWithWebIdentity`` (the only ones a
job's token can use) and reports a finding with a severity (``error`` fails CI, ``warning`` does
not) and a one-sentence fix. The rules read the policy as IAM does: condition keys are
case-insensitive, the claim is what follows the last colon, and the platform's service accounts
are ``system:serviceaccount:<environment>:<project with _ as .>-<uuid>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rolebridge.platform.roles import UUID_PATTERN

WEB_IDENTITY = "sts:assumerolewithwebidentity"
_PROVIDER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):oidc-provider/(.+)$")
_SA = re.compile(r"^system:serviceaccount:([^:]*):([^:]*)$")
_POSITIVE_STRING = {"StringEquals", "StringLike", "StringEqualsIgnoreCase"}
_LITERAL_OPS = {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "error" | "warning"
    where: str  # "<source> statement <sid|index>"
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "where": self.where, "message": self.message,
                "fix": self.fix}


@dataclass(frozen=True)
class ProviderFacts:
    arn: str
    url: str  # without scheme
    client_ids: tuple[str, ...]


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _operator_parts(op: str) -> tuple[str | None, str]:
    set_op = None
    for prefix in ("ForAllValues:", "ForAnyValue:"):
        if op.startswith(prefix):
            set_op, op = prefix[:-1], op[len(prefix):]
    return set_op, op.removesuffix("IfExists")


def _web_identity_statements(doc: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    for i, st in enumerate(_list(doc.get("Statement"))):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _list(st.get("Action"))]
        if not any(a == WEB_IDENTITY or a in ("sts:*", "*") or (a.endswith("*") and WEB_IDENTITY.startswith(a[:-1]))
                   for a in actions):
            continue
        yield str(st.get("Sid") or i), st


def _sa_pattern_findings(value: str, key: str, *, like: bool = True) -> list[tuple[str, str, str, str]]:
    """(code, severity, message, fix) for one :sub value (``like``: compared as a StringLike pattern)."""
    out: list[tuple[str, str, str, str]] = []
    if not like:
        value = value.replace("*", "").replace("?", "")
    m = _SA.match(value)
    if m is None:
        if "*" in value or "?" in value:
            out.append(("sub-wildcard-crosses-namespaces", "error",
                        f"{key} pattern {value!r} matches service accounts in any namespace and of any project",
                        "pin the namespace and project: system:serviceaccount:<environment>:<project with _ as .>-"
                        f"{UUID_PATTERN}."))
        return out
    ns, sa = m.groups()
    if "*" in ns or "?" in ns:
        out.append(("sub-wildcard-crosses-namespaces", "warning",
                    f"{key} pattern {value!r} lets the project's jobs in every environment (namespace) assume it",
                    "list the environments explicitly (one pattern per environment) unless every environment, "
                    "including personal dev ones, should have this role."))
    if "*" in sa:
        prefix = sa.split("*", 1)[0]
        example = (prefix.rstrip("-") + "-other") if prefix else "any-project"
        out.append(("sub-wildcard-crosses-projects", "error",
                    f"{key} pattern {value!r}: '*' in the service-account part also matches other projects' "
                    f"jobs (e.g. project {example!r})",
                    "end the pattern with the strict uuid pattern: "
                    f"{prefix.rstrip('-') or '<project>'}-{UUID_PATTERN}."))
    if "_" in sa:
        out.append(("project-name-underscore", "error",
                    f"{key} pattern {value!r} has '_' in the service-account name; the platform writes '_' as '.' "
                    "so no job matches",
                    f"use {'system:serviceaccount:' + ns + ':' + sa.replace('_', '.')}."))
    return out


def lint_trust_policy(document: str | Mapping[str, Any], *, source: str = "policy", role_account: str | None = None,
                      providers: Sequence[ProviderFacts] | None = None) -> list[Finding]:
    """Findings for one trust policy. ``providers``: the role account's providers, when known."""
    doc = json.loads(document) if isinstance(document, str) else dict(document)
    findings: list[Finding] = []
    known = {p.arn: p for p in providers or []}

    for label, st in _web_identity_statements(doc):
        where = f"{source} statement {label}"

        def add(code: str, severity: str, message: str, fix: str, where: str = where) -> None:
            findings.append(Finding(code, severity, where, message, fix))

        principal = st.get("Principal")
        federated = _list(principal.get("Federated")) if isinstance(principal, dict) else []
        if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
            add("principal-anyone", "error", "the statement trusts every principal",
                "name the cluster's OIDC provider as the Federated principal.")
        urls: list[str] = []
        for fed in federated:
            m = _PROVIDER_ARN.match(str(fed))
            if m is None:
                continue
            urls.append(m.group(2))
            if m.group(2).lower().startswith(("https://", "http://")):
                add("principal-has-scheme", "error", f"Federated principal {fed!r} has a URL scheme in it",
                    "the provider ARN is oidc-provider/<host/path> without https://.")
            if role_account and m.group(1) != role_account:
                add("federated-other-account", "error",
                    f"Federated principal {fed!r} is a provider of account {m.group(1)}, but STS only uses "
                    f"providers in the role's account {role_account}",
                    f"register the issuer in {role_account} and trust arn:aws:iam::{role_account}:oidc-provider/"
                    f"{m.group(2)}.")
            elif fed in known and not known[fed].client_ids:
                add("provider-without-client-ids", "error", f"provider {fed} has no client IDs, so every token "
                    "is refused with 'Incorrect token audience'",
                    "add the token audience (sts.amazonaws.com) with AddClientIDToOpenIDConnectProvider.")
        conditions = st.get("Condition") if isinstance(st.get("Condition"), dict) else {}
        sub_values: list[tuple[str, str, str]] = []  # (operator, key, value)
        has_aud = False
        for op, block in conditions.items():
            if not isinstance(block, dict):
                continue
            set_op, base = _operator_parts(op)
            for key, raw in block.items():
                prefix, _, claim = key.rpartition(":")
                claim_l = claim.lower()
                values = [str(v) for v in _list(raw)]
                if re.match(r"^https?://", prefix, re.I):
                    add("condition-key-has-scheme", "error",
                        f"condition key {key!r} has a URL scheme, so it is never in the request and "
                        f"{op} never matches", f"write it as {prefix.split('://', 1)[1]}:{claim}.")
                elif urls and claim_l in ("sub", "aud") and prefix.lower() not in [u.lower() for u in urls] \
                        and not prefix.lower().startswith(("aws", "sts")):
                    add("condition-key-wrong-provider", "error",
                        f"condition key {key!r} names a provider other than the trusted one {urls}",
                        f"use {urls[0]}:{claim}.")
                if claim_l not in ("sub", "aud"):
                    continue
                if set_op == "ForAllValues":
                    add("forallvalues-single-valued", "error",
                        f"{op} on {key!r}: the claim is single-valued and ForAllValues is true when the key is "
                        "absent", f"use plain {base} (no ForAllValues:).")
                if base in _LITERAL_OPS and any("*" in v or "?" in v for v in values):
                    add("stringequals-with-wildcard", "error",
                        f"{op} on {key!r} compares {values} literally; the wildcards never match",
                        "use StringLike for patterns.")
                if claim_l == "aud" and base in _POSITIVE_STRING:
                    has_aud = True
                if claim_l == "sub" and base in _POSITIVE_STRING | {"StringLikeIgnoreCase"} and not base.startswith(
                        "StringNot"):
                    sub_values += [(op, key, v) for v in values]
        if federated and not sub_values:
            add("no-sub-condition", "error",
                "no :sub condition: every workload of the cluster (any namespace, any project) can assume this role",
                "add StringLike <provider>:sub = system:serviceaccount:<environment>:<project with _ as .>-"
                f"{UUID_PATTERN} (rolebridge grant writes it).")
        for op, key, value in sub_values:
            like = "Like" in op
            for code, severity, message, fix in _sa_pattern_findings(value, key, like=like):
                add(code, severity, message, fix)
        if federated and not has_aud:
            add("missing-aud", "warning", "no :aud condition: tokens minted for any client ID of the provider "
                "are accepted", "add StringEquals <provider>:aud = sts.amazonaws.com.")
    return findings


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
