"""Why an AssumeRoleWithWebIdentity succeeds or fails: every STS check, a cause code and a fix.

Evaluate, then explain: the checks are the ones ``sts/web_identity.py`` makes (replayed through
``sts/diagnose.py`` with a recording ``Trace``), preceded by the wire layer's parameter validation
(``http/query.decode_params``, the same code the server runs). This module only *classifies* the
first failed check into one of the issue's fixed cause codes and writes the one-sentence fix.

Offline (files instead of a server's state) builds a throw-away store holding the given provider
and role with the IAM handlers themselves, then replays the same checks against it. What offline
cannot know is reported as not checked (``"status": "skipped"``, ``"ok": null``), never as
passed: the signature without keys, and whether the role exists.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.config import Paths
from rolebridge.context import CallContext
from rolebridge.iam.accounts import ensure_account
from rolebridge.iam.arns import parse_role_arn, root_arn
from rolebridge.policy import Principal, Request, compile_policy, evaluate_trust
from rolebridge.policy.patterns import glob
from rolebridge.services import ProviderView, Services
from rolebridge.store import open_store
from rolebridge.store.schema import OIDCProvider
from rolebridge.sts.diagnose import diagnose_web_identity
from rolebridge.sts.trace import Check
from rolebridge.sts.web_identity import SIGNATURE_NOT_CHECKED
from rolebridge.tools.grant import _code, _doc

CAUSES = (
    "role-arn-invalid",
    "session-name-invalid",
    "duration-too-long",
    "role-missing",
    "provider-missing",
    "provider-in-other-account",
    "issuer-mismatch",
    "audience-missing",
    "audience-not-allowed",
    "jwks-unreachable",
    "tls-untrusted",
    "signature-invalid",
    "token-expired",
    "principal-mismatch",
    "condition-key-has-scheme",
    "condition-key-wrong-provider",
    "condition-wrong-claim",
    "unsupported-condition-key",
    "sub-namespace-mismatch",
    "sub-service-account-mismatch",
    "sub-case-mismatch",
    "wildcard-needs-stringlike",
    "project-name-underscore",
    "conditions-all-required",
    "explicit-deny",
    "other",
)
#: Claims STS puts in the request context for an OIDC provider (aws-semantics.md §4.7).
SUPPORTED_CLAIMS = frozenset({"sub", "aud", "amr", "azp"})
_GLOBAL_PREFIXES = ("aws:", "sts:")
_SA_RE = re.compile(r"^system:serviceaccount:([^:]*):(.*)$")
_LIKE = ("string_like",)


@dataclass
class Explanation:
    outcome: str  # "success" | "error"
    error_code: str | None
    error_message: str | None
    cause: str | None
    checks: list[dict[str, Any]]
    fix: str
    detail: str = ""
    assumed_role_arn: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The shape ``rolebridge explain --json`` prints (exactly these keys)."""
        return {
            "outcome": self.outcome,
            "error_code": self.error_code,
            "cause": self.cause,
            "checks": self.checks,
            "fix": self.fix,
        }

    def one_line(self) -> str:
        return f"{self.cause}: {self.detail}" if self.detail else str(self.cause)


# -- classification of a trust-policy denial -------------------------------------------------
@dataclass
class TrustFinding:
    cause: str
    detail: str
    expected: Any = None
    seen: Any = None
    facts: dict[str, Any] = field(default_factory=dict)


def _like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        return glob(pattern.lower(), value.lower())
    return glob(pattern, value)


def _split_sa(value: str) -> tuple[str, str] | None:
    m = _SA_RE.match(value)
    return (m.group(1), m.group(2)) if m else None


def _dotted(value: str) -> str | None:
    """The subject pattern with the service-account part written as the platform names it."""
    parts = _split_sa(value)
    if parts is None or "_" not in parts[1]:
        return None
    return f"system:serviceaccount:{parts[0]}:{parts[1].replace('_', '.')}"


def _sub_finding(cond: dict[str, Any], seen: str) -> TrustFinding:
    """Why a subject condition fails: case, `_` vs `.`, namespace or service account."""
    like = cond["base_operator"] in ("StringLike", "StringNotLike")
    values: list[str] = cond["expected"]

    def matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
        if like:
            return _like(pattern, value, ignore_case=ignore_case)
        return pattern.lower() == value.lower() if ignore_case else pattern == value

    for v in values:
        if matches(v, seen, ignore_case=True):
            return TrustFinding(
                "sub-case-mismatch",
                f"{cond['key']} value {v!r} differs from the token's sub "
                f"{seen!r} only in letter case (values compare case-sensitively)",
                v,
                seen,
                {"value": v, "suggested": seen if not like else None},
            )
    for v in values:
        dotted = _dotted(v)
        if dotted and matches(dotted, seen):
            return TrustFinding(
                "project-name-underscore",
                f"{cond['key']} pattern {v!r} has '_' in the service-account name, but the "
                f"platform names service accounts with '.' ({seen!r})",
                v,
                seen,
                {"value": v, "suggested": dotted},
            )
    want = _split_sa(seen)
    for v in values:
        have = _split_sa(v)
        if have and want and not matches(have[0], want[0]):
            return TrustFinding(
                "sub-namespace-mismatch",
                f"{cond['key']} allows namespace {have[0]!r} but the job runs in namespace "
                f"{want[0]!r} ({seen!r})",
                v,
                seen,
                {"value": v, "suggested": f"system:serviceaccount:{want[0]}:{have[1]}", "namespace": want[0]},
            )
    return TrustFinding(
        "sub-service-account-mismatch",
        f"{cond['key']} allows {values} but the token's service account is {seen!r}",
        values,
        seen,
        {"value": values[0] if values else None},
    )


def classify_trust(
    trust_policy: str | dict[str, Any],
    *,
    context: dict[str, Any],
    provider_url: str,
    provider_arn: str,
    action: str,
    resource: str = "*",
) -> TrustFinding:
    """The cause of a trust-policy denial, from the policy engine's own evaluation and nearest miss."""
    compiled = compile_policy(trust_policy, kind="trust")
    account = provider_arn.split(":")[4] if provider_arn.count(":") >= 5 else None
    request = Request(
        principal=Principal(kind="Federated", arn=provider_arn, account=account),
        action=action,
        resource=resource,
        context=context,
    )
    result = evaluate_trust(compiled, request)
    if result.decision.value == "ExplicitDeny":
        which = ", ".join(r.statement or "?" for r in result.reasons)
        return TrustFinding(
            "explicit-deny", f"Deny statement {which} of the trust policy applies to this job"
        )
    if result.allowed:
        return TrustFinding("other", "the trust policy allows this request")
    miss = result.nearest_miss
    if miss is None:
        return TrustFinding("other", f"the trust policy has no Allow statement for {action}")
    failures = list(miss.failures)
    st = compiled.statements[miss.statement_index]
    ctx = request.normalized_context()
    conds = [c.explain(ctx) for c in st.conditions]
    failing = [f for f in failures if f["element"] == "Condition"]
    provider_l = provider_url.lower()

    for f in failing:
        prefix = f.get("key_prefix") or ""
        if f["key_absent"] and re.match(r"^https?://", prefix, re.I):
            fixed = prefix.split("://", 1)[1] + ":" + (f.get("claim") or "")
            return TrustFinding(
                "condition-key-has-scheme",
                f"condition key {f['key']!r} starts with a URL scheme; keys are the provider URL "
                f"without https:// ({fixed!r}), so this key is never in the request",
                f["key"],
                fixed,
                {"key": f["key"], "suggested": fixed},
            )
    for f in failures:
        if f["element"] == "Principal":
            return TrustFinding(
                "principal-mismatch",
                f"statement {miss.statement} trusts {f['expected']} but the token's provider is "
                f"{provider_arn}",
                f["expected"],
                provider_arn,
                {"suggested": provider_arn},
            )
    for f in failures:
        if f["element"] in ("Action", "NotAction"):
            return TrustFinding(
                "other",
                f"statement {miss.statement} does not cover the action {action} (it lists {f['expected']})",
                f["expected"],
                action,
            )
    for f in failing:
        prefix, claim = f.get("key_prefix") or "", (f.get("claim") or "").lower()
        if (
            not f["key_absent"]
            or prefix.lower().startswith(_GLOBAL_PREFIXES)
            or f["key"].lower().startswith(_GLOBAL_PREFIXES)
        ):
            continue
        if prefix.lower() != provider_l:
            fixed = f"{provider_url}:{f.get('claim')}"
            return TrustFinding(
                "condition-key-wrong-provider",
                f"condition key {f['key']!r} names provider {prefix!r}, but the token comes "
                f"from {provider_url!r}; the key is never in the request",
                f["key"],
                fixed,
                {"key": f["key"], "suggested": fixed},
            )
        if claim not in SUPPORTED_CLAIMS:
            return TrustFinding(
                "unsupported-condition-key",
                f"condition key {f['key']!r}: STS only puts the claims "
                f"{', '.join(sorted(SUPPORTED_CLAIMS))} in the request, not {claim!r}",
                f["key"],
                None,
                {"key": f["key"]},
            )
    for f in failing:
        claim = (f.get("claim") or "").lower()
        values = f["expected"]
        if claim == "aud" and any(_split_sa(v) for v in values):
            return TrustFinding(
                "condition-wrong-claim",
                f"condition on {f['key']!r} expects a service-account "
                f"subject {values}; that belongs on the :sub key",
                values,
                f["seen"],
                {"key": f["key"], "suggested": f["key"][: -len("aud")] + "sub"},
            )
        if (
            claim == "sub"
            and values
            and not any(_split_sa(v) or "*" in v for v in values)
            and any(v in (f["seen"] or []) for v in (ctx.get(f["key"].lower()[:-3] + "aud") or ()))
        ):
            return TrustFinding(
                "condition-wrong-claim",
                f"condition on {f['key']!r} expects the audience {values}; that belongs on the :aud key",
                values,
                f["seen"],
                {"key": f["key"], "suggested": f["key"][: -len("sub")] + "aud"},
            )
    for f in failing:
        others = [c for c in conds if c["key"].lower() == f["key"].lower() and c["operator"] != f["operator"]]
        if others and any(c["result"] for c in others):
            passing = [c for c in others if c["result"]]
            return TrustFinding(
                "conditions-all-required",
                f"{f['key']} is tested by {f['operator']} {f['expected']} and by "
                f"{passing[0]['operator']} {passing[0]['expected']}; conditions in one statement "
                "must all hold (AND), so no token satisfies both",
                f["expected"],
                f["seen"],
                {"key": f["key"]},
            )
    for f in failing:
        seen = f["seen"] or []
        if f["wildcards_in_values"] and f["base_operator"] in ("StringEquals", "StringEqualsIgnoreCase"):
            if any(_like(v, s) for v in f["expected"] for s in seen) or not seen:
                return TrustFinding(
                    "wildcard-needs-stringlike",
                    f"{f['operator']} compares {f['expected']} literally; '*' and '?' are "
                    "wildcards only with StringLike",
                    f["expected"],
                    seen,
                    {"key": f["key"], "operator": f["operator"]},
                )
    for f in failing:
        claim = (f.get("claim") or "").lower()
        if claim == "sub" and f["seen"] and not f["negated"]:
            return _sub_finding(f, f["seen"][0])
        if claim == "aud":
            return TrustFinding(
                "audience-not-allowed",
                f"{f['key']} must be {f['expected']} but the token's audience is {f['seen']}",
                f["expected"],
                f["seen"],
                {"key": f["key"]},
            )
    if failing:
        f = failing[0]
        return TrustFinding("other", miss.message, f["expected"], f["seen"])
    return TrustFinding("other", miss.message)


# -- fixes --------------------------------------------------------------------------------------
def fix_for(cause: str | None, facts: dict[str, Any]) -> str:
    """One sentence that says what to change (facts: role_arn, provider_url, suggested, ...)."""
    role = facts.get("role_arn") or "the role"
    provider = facts.get("provider_url") or "the cluster's issuer URL"
    sugg = facts.get("suggested")
    max_session = facts.get("max_session", "the role's MaxSessionDuration")
    audience = facts.get("audience", "sts.amazonaws.com")
    texts = {
        None: "nothing to fix: STS accepts this request.",
        "role-arn-invalid": (
            "pass exactly arn:aws:iam::<12-digit account>:role/<path/><name> as the role ARN."),
        "session-name-invalid": (
            "use a session name of 2-64 characters from letters, digits and _+=,.@- "
            "(replace anything else, e.g. '/' with '_')."),
        "duration-too-long": (
            f"request at most {max_session} seconds or raise the role's MaxSessionDuration (up to 43200)."),
        "role-missing": (
            f"create {role} (or fix the account, path and name in the ARN); "
            "a bare role name means the cluster's own account."),
        "provider-missing": (
            f"register {provider} as an OIDC provider in account {facts.get('account', '?')} "
            "(`rolebridge grant` does it) with client ID sts.amazonaws.com."),
        "provider-in-other-account": (
            f"register {provider} as an OIDC provider in the role's account {facts.get('account', '?')} too "
            "(providers are per account); `rolebridge grant` does it."),
        "issuer-mismatch": (
            f"register the provider with exactly the token's issuer {provider} "
            "(scheme, case and trailing slash must match)."),
        "audience-missing": (
            "mint the token with an audience (aud) the provider lists as a client ID (sts.amazonaws.com)."),
        "audience-not-allowed": (
            f"add the token's audience {audience} to the provider's client IDs "
            "(and to the trust policy's :aud condition)."),
        "jwks-unreachable": "make the issuer's discovery document and JWKS reachable over HTTPS from STS.",
        "tls-untrusted": (
            "put the issuer's certificate thumbprint (`rolebridge cluster list`) "
            "in the provider's thumbprint list."),
        "signature-invalid": (
            "use a token signed by the cluster that owns this issuer URL (its keys are in the published "
            "JWKS); a forged or foreign token never passes real STS."),
        "token-expired": (
            "re-read the token file on every refresh (it is rotated) and check the clock; "
            "never cache the JWT."),
        "principal-mismatch": (
            f"set the statement's Federated principal to {sugg or 'the provider ARN'} "
            "(copy it from ListOpenIDConnectProviders, do not type it)."),
        "condition-key-has-scheme": (
            f"write the condition key without the scheme: {sugg or 'HOST/PATH:claim'}."),
        "condition-key-wrong-provider": (
            f"name this provider in the condition key: {sugg or provider + ':sub'}."),
        "condition-wrong-claim": (
            f"move the value to the right claim key ({sugg or 'the :sub or :aud key'})."),
        "unsupported-condition-key": (
            "condition on :sub (and :aud) instead; STS does not put that claim in the request context."),
        "sub-namespace-mismatch": (
            f"allow the namespace the job runs in: {sugg or 'system:serviceaccount:<env>:...'} "
            "(or add it as another value)."),
        "sub-service-account-mismatch": (
            "make the :sub value match the job's service account (system:serviceaccount:<environment>:"
            "<project with _ as .>-<uuid>, StringLike with the uuid pattern)."),
        "sub-case-mismatch": (
            "copy the sub value verbatim from a decoded token; values compare case-sensitively."),
        "wildcard-needs-stringlike": (
            "use StringLike for values with '*' or '?' (StringEquals compares them literally)."),
        "project-name-underscore": f"write the project with '.' for '_' in the pattern: {sugg}.",
        "conditions-all-required": (
            "put the alternatives in separate Allow statements or list all patterns under one "
            "StringLike key (conditions in one statement are ANDed)."),
        "explicit-deny": "remove or narrow the Deny statement that matches this job; a Deny always wins.",
        "other": "see the failed check above.",
    }
    return texts.get(cause, texts["other"])


# -- the replay ------------------------------------------------------------------------------
_PARAM_CAUSES = (
    ("roleArn", "role-arn-invalid"),
    ("roleSessionName", "session-name-invalid"),
    ("durationSeconds", "duration-too-long"),
)


def _check_dict(c: Check) -> dict[str, Any]:
    """One check as printed: ``status`` ok|fail|skipped; ``ok`` is true/false, or null when not checked."""
    d: dict[str, Any] = {"name": c.name, "ok": None if c.skipped else c.ok, "status": c.status, "detail": c.detail}
    if c.expected is not None:
        d["expected"] = c.expected
    if c.seen is not None:
        d["seen"] = c.seen
    if c.cause:
        d["cause"] = c.cause
    return d


def _validate_params(
    role_arn: str, token: str, session_name: str, duration: int | None
) -> errors.AWSError | None:
    from rolebridge.http.query import decode_params  # the server's own parameter validation

    flat = {"RoleArn": role_arn, "RoleSessionName": session_name, "WebIdentityToken": token}
    if duration is not None:
        flat["DurationSeconds"] = str(duration)
    try:
        decode_params("sts", "AssumeRoleWithWebIdentity", flat)
    except errors.AWSError as exc:
        return exc
    return None


def _similar_providers(services: Services, account: str, issuer: str, *, given: bool = False) -> list[str]:
    """Provider URLs of ``account`` that the token's issuer was meant to be: the same URL but for
    scheme, case or a trailing slash; offline (``given``), any provider the user named."""
    def norm(u: str) -> str:
        return re.sub(r"^[a-z]+://", "", u.strip().lower()).rstrip("/")

    with services.store.read() as s:
        urls = list(s.execute(select(OIDCProvider.url).where(OIDCProvider.account_id == account)).scalars())
    return [u for u in urls if given or norm(u) == norm(issuer)]


def explain_assume(
    services: Services,
    *,
    role_arn: str,
    token: str,
    session_name: str,
    duration: int | None = None,
    now: float | None = None,
    offline: bool = False,
) -> Explanation:
    """Replay the assume against ``services`` and explain it.

    ``offline``: ``services`` holds only what the user gave (a provider, a role made from a trust
    policy file), so the role's existence is reported as not checked, and a token whose issuer is
    not the given provider URL is an issuer mismatch, not a missing provider."""
    bad = _validate_params(role_arn, token, session_name, duration)
    if bad is not None:
        cause = next((c for member, c in _PARAM_CAUSES if f"'{member}'" in bad.message), "other")
        if cause == "duration-too-long" and duration is not None and duration < 900:
            cause = "other"
        check = {"name": "parameters", "ok": False, "status": "fail", "detail": bad.message, "cause": cause}
        return _finish("error", bad, cause, [check], bad.message, {"role_arn": role_arn})

    diagnosis = diagnose_web_identity(
        services, role_arn=role_arn, token=token, session_name=session_name, duration=duration, now=now
    )
    checks = [
        {
            "name": "parameters",
            "ok": True,
            "status": "ok",
            "detail": "RoleArn, RoleSessionName, DurationSeconds and "
            "WebIdentityToken pass the API's constraints",
        }
    ]
    checks += [_check_dict(c) for c in diagnosis.trace.checks]
    ref = parse_role_arn(role_arn)
    facts: dict[str, Any] = {"role_arn": role_arn, "account": ref.account if ref else None}
    for c in diagnosis.trace.checks:
        if c.name == "token-format":
            facts["provider_url"] = c.data.get("iss") or ""
    if offline:
        for c in checks:
            if c["name"] == "role" and c["status"] == "ok":
                c.update({"ok": None, "status": "skipped",
                          "detail": f"not checked: offline, {role_arn} is assumed to exist with the trust policy "
                                    "given (--trust-policy)"})
            elif c["name"] == "provider" and c["status"] == "ok":
                c["detail"] += " as given with --provider-url: the token's iss matches it"
    failed = diagnosis.trace.failed
    if failed is None:
        arn = (diagnosis.result or {}).get("AssumedRoleUser", {}).get("Arn")
        skipped = [c["name"] for c in checks if c["status"] == "skipped"]
        unless = f" (if the checks not made pass: {', '.join(skipped)})" if skipped else ""
        checks.append({"name": "result", "ok": True, "status": "ok", "detail": f"credentials for {arn}{unless}"})
        expl = _finish("success", None, None, checks, "", facts)
        expl.assumed_role_arn = arn
        return expl
    cause, detail = failed.cause or "other", failed.detail
    if cause == "provider-missing" and ref is not None and facts.get("provider_url"):
        iss = facts["provider_url"]
        similar = ["https://" + u.removeprefix("https://")
                   for u in _similar_providers(services, ref.account, iss, given=offline)]
        if similar:
            cause = "issuer-mismatch"
            given = "the provider URL given (--provider-url)" if offline else "the registered provider URL"
            detail = (f"the token's issuer (iss) is {iss!r} but {given} is "
                      f"{similar[0] if len(similar) == 1 else similar!r}; STS finds the provider by the exact iss")
            checks[-1].update({"detail": detail, "expected": similar if len(similar) > 1 else similar[0],
                               "seen": iss})
    if cause == "duration-too-long":
        facts["max_session"] = failed.expected
    if cause.startswith("audience"):
        aud = failed.seen
        facts["audience"] = aud[0] if isinstance(aud, list) and aud else aud
    if cause == "trust":
        data = failed.data
        finding = classify_trust(
            data["trust_policy"],
            context=data["context"],
            provider_url=data["provider_url"],
            provider_arn=data["provider_arn"],
            action=data["action"],
            resource=ref.arn if ref else "*",
        )
        cause, detail = finding.cause, finding.detail
        facts.update(finding.facts)
        facts["provider_url"] = data["provider_url"]
        checks[-1].update({"cause": cause, "detail": f"{failed.detail}: {detail}"})
        if finding.expected is not None:
            checks[-1]["expected"] = finding.expected
        if finding.seen is not None:
            checks[-1]["seen"] = finding.seen
    elif cause in ("provider-missing", "provider-in-other-account", "issuer-mismatch"):
        facts["provider_url"] = facts.get("provider_url")
        checks[-1]["cause"] = cause
    return _finish("error", diagnosis.error, cause, checks, detail, facts)


def _finish(
    outcome: str,
    error: errors.AWSError | None,
    cause: str | None,
    checks: list[dict[str, Any]],
    detail: str,
    facts: dict[str, Any],
) -> Explanation:
    if error is not None:
        checks.append(
            {
                "name": "result",
                "ok": False,
                "status": "fail",
                "detail": f"{error.code}: {error.message}",
                "seen": {
                    "error_code": error.code,
                    "error_message": error.message,
                    "http_status": error.status,
                },
            }
        )
    assert cause is None or cause in CAUSES, cause
    return Explanation(
        outcome,
        error.code if error else None,
        error.message if error else None,
        cause,
        checks,
        fix_for(cause, facts),
        detail,
    )


# -- offline: a throw-away store with just the given provider and role -------------------------
@dataclass(frozen=True)
class OfflineProvider:
    url: str  # with or without https://
    account: str
    client_ids: Sequence[str] = ("sts.amazonaws.com",)
    thumbprints: Sequence[str] = ()


@dataclass(frozen=True)
class OfflineRole:
    arn: str
    trust_policy: str | dict[str, Any]
    max_session_duration: int = 3600


class OfflineServices(Services):
    """Services over a temporary store whose issuer keys are the ones given, or fetched from the
    issuer as STS does (``fetch_keys``), or none: the signature is then not checked."""

    def __init__(self, *args: Any, jwks: dict[str, Any] | None = None, fetch_keys: bool = False,
                 **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.offline_jwks = jwks
        self.fetch_keys = fetch_keys

    async def jwks_for(self, issuer: str, provider: ProviderView, kid: str | None, now: float) -> Any:
        if self.offline_jwks is not None:
            return self.offline_jwks
        if self.fetch_keys:  # discovery then jwks_uri over verified or thumbprint-pinned HTTPS
            return await self.fetcher().get_jwks(issuer, thumbprints=provider.thumbprints, kid=kid, now=now)
        return SIGNATURE_NOT_CHECKED


def _root(account: str) -> Caller:
    return Caller(account_id=account, arn=root_arn(account), user_id=account, kind="root", access_key_id="")


def _call(services: Services, account: str, handler: Any, params: dict[str, Any]) -> Any:
    ctx = CallContext(services=services, caller=_root(account), now=time.time(), request_id=str(uuid.uuid4()))
    result = handler(ctx, params)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return result


@contextmanager
def offline_services(
    providers: Sequence[OfflineProvider], roles: Sequence[OfflineRole], *, jwks: dict[str, Any] | None = None,
    fetch_keys: bool = False,
) -> Iterator[OfflineServices]:
    """A store in a temporary dir with the providers and roles created by IAM's own handlers."""
    from rolebridge.iam.providers import create_provider
    from rolebridge.iam.roles import create_role

    with tempfile.TemporaryDirectory(prefix="rolebridge-explain-") as tmp:
        paths = Paths(data_dir=Path(tmp), database_url=f"sqlite:///{Path(tmp) / 'offline.db'}")
        store = open_store(paths)
        services = OfflineServices(store, public_url="https://offline.rolebridge.invalid", jwks=jwks,
                                   fetch_keys=fetch_keys)
        try:
            for p in providers:
                ensure_account(store, p.account)
                url = p.url if p.url.startswith("https://") else "https://" + p.url
                _call(
                    services,
                    p.account,
                    create_provider,
                    {"Url": url, "ClientIDList": list(p.client_ids), "ThumbprintList": list(p.thumbprints)},
                )
            for r in roles:
                ref = parse_role_arn(r.arn)
                if ref is None:
                    continue
                ensure_account(store, ref.account)
                doc = r.trust_policy if isinstance(r.trust_policy, str) else json.dumps(r.trust_policy)
                _call(
                    services,
                    ref.account,
                    create_role,
                    {
                        "RoleName": ref.name,
                        "Path": ref.path,
                        "AssumeRolePolicyDocument": doc,
                        "MaxSessionDuration": r.max_session_duration,
                    },
                )
            yield services
        finally:
            store.dispose()


def explain_offline(
    *,
    token: str,
    role_arn: str,
    session_name: str,
    trust_policy: str | dict[str, Any] | None,
    providers: Sequence[OfflineProvider],
    duration: int | None = None,
    now: float | None = None,
    jwks: dict[str, Any] | None = None,
    max_session_duration: int = 3600,
) -> Explanation:
    roles = [OfflineRole(role_arn, trust_policy, max_session_duration)] if trust_policy is not None else []
    with offline_services(providers, roles, jwks=jwks) as services:
        return explain_assume(
            services, role_arn=role_arn, token=token, session_name=session_name, duration=duration, now=now,
            offline=True,
        )


# -- from an IAM endpoint (real AWS, or any IAM botocore can reach) ----------------------------
def read_from_iam(iam: Any, role_arn: str) -> tuple[list[OfflineRole], list[OfflineProvider]]:
    """The role (trust policy, MaxSessionDuration) and every OIDC provider of the role's account,
    read through a botocore IAM client whose credentials are of that account. A missing role gives
    no role (STS's ``role-missing``); other IAM errors propagate."""
    ref = parse_role_arn(role_arn)
    if ref is None:
        return [], []
    roles: list[OfflineRole] = []
    seen_accounts: set[str] = set()  # whose IAM the credentials read: every ARN it returns names it
    try:
        got = iam.get_role(RoleName=ref.name)["Role"]
    except Exception as exc:
        if _code(exc) != "NoSuchEntity":
            raise
    else:
        seen_accounts.add(str(got["Arn"]).split(":")[4])
        roles.append(OfflineRole(got["Arn"], _doc(got["AssumeRolePolicyDocument"]),
                                 int(got.get("MaxSessionDuration") or 3600)))
    providers = []
    for item in iam.list_open_id_connect_providers().get("OpenIDConnectProviderList", []):
        arn = item["Arn"]
        seen_accounts.add(arn.split(":")[4])
        got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        providers.append(OfflineProvider(str(got["Url"]), arn.split(":")[4], tuple(got.get("ClientIDList", [])),
                                         tuple(got.get("ThumbprintList", []))))
    others = sorted(seen_accounts - {ref.account})
    if others:
        raise errors.ValidationError(
            f"The IAM credentials are of account {', '.join(others)}, but the role is in {ref.account}: "
            f"use credentials (or --profile) of {ref.account}.")
    return roles, providers


def explain_from_iam(
    iam: Any,
    *,
    token: str,
    role_arn: str,
    session_name: str,
    duration: int | None = None,
    now: float | None = None,
    jwks: dict[str, Any] | None = None,
) -> Explanation:
    """Explain against what an IAM endpoint holds: its role and OIDC providers are read through
    ``iam`` and the offline replay runs on them; the issuer's keys are fetched as STS fetches them
    (discovery, then jwks_uri over verified or thumbprint-pinned HTTPS) unless ``jwks`` is given.
    Unlike the offline mode from files, the role's existence and the provider are checked."""
    roles, providers = read_from_iam(iam, role_arn)
    with offline_services(providers, roles, jwks=jwks, fetch_keys=jwks is None) as services:
        return explain_assume(
            services, role_arn=role_arn, token=token, session_name=session_name, duration=duration, now=now
        )
