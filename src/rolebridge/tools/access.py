"""`rolebridge access`: who can assume what, by reasoning over the patterns, not by sampling.

A job's subject is ``system:serviceaccount:<env>:<project with _ as .>-<uuid4>``: fixed text and
then 36 positions whose characters range over a known set (hex digits, the ``4`` of the version,
``8/9/a/b`` of the variant, dashes). A ``:sub`` condition is decided over *every* such subject
at once: the glob patterns run as an NFA over the subject's positions, branching only where a
position's character set meets a literal of the pattern. The verdict is ``always`` (every run of
the project in that environment passes), ``never``, or ``sometimes`` (it depends on the uuid).
All other conditions (``:aud``, ``aws:*``) are concrete for a cluster and are evaluated by the
policy engine's own compiled conditions; principal and action likewise.
"""

from __future__ import annotations

import re
import string
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from rolebridge.context import CallContext
from rolebridge.iam.arns import provider_arn, request_role_arn
from rolebridge.platform.clusters import ClusterInfo, list_clusters
from rolebridge.platform.roles import UUID_PATTERN, service_account_prefix, session_name
from rolebridge.policy import Principal, Request, compile_policy
from rolebridge.services import Services
from rolebridge.store.schema import Role
from rolebridge.sts.web_identity import ACTION, _trust_context

ALWAYS, SOMETIMES, NEVER = "always", "sometimes", "never"
_HEX = frozenset("0123456789abcdef")
# uuid4 as str(): 8-4-4-4-12 hex, version nibble 4, variant nibble 8/9/a/b.
_UUID_SHAPE: list[str | frozenset[str]] = (
    [_HEX] * 8 + ["-"] + [_HEX] * 4 + ["-", "4"] + [_HEX] * 3 + ["-", frozenset("89ab")] + [_HEX] * 3 + ["-"]
    + [_HEX] * 12)
_ANY = frozenset(string.printable)


def subject_shape(project: str, environment: str) -> list[str | frozenset[str]]:
    head = f"system:serviceaccount:{environment}:{service_account_prefix(project)}-"
    return [*head, *_UUID_SHAPE]


# -- glob reasoning over a set of subjects ---------------------------------------------------
Token = tuple[str, str]  # ("lit", c) | ("one", "") | ("star", "")


def _tokens(pattern: str, *, like: bool, fold: bool) -> list[Token]:
    text = pattern.lower() if fold else pattern
    if not like:
        return [("lit", c) for c in text]
    return [("star", "") if c == "*" else ("one", "") if c == "?" else ("lit", c) for c in text]


def _closure(states: set[tuple[int, int]], pats: Sequence[list[Token]]) -> frozenset[tuple[int, int]]:
    out, todo = set(states), list(states)
    while todo:
        p, i = todo.pop()
        if i < len(pats[p]) and pats[p][i][0] == "star" and (p, i + 1) not in out:
            out.add((p, i + 1))
            todo.append((p, i + 1))
    return frozenset(out)


def _step(states: frozenset[tuple[int, int]], ch: str | None, pats: Sequence[list[Token]]
          ) -> frozenset[tuple[int, int]]:
    """``ch`` None = a character equal to no literal of the patterns."""
    nxt: set[tuple[int, int]] = set()
    for p, i in states:
        if i >= len(pats[p]):
            continue
        kind, c = pats[p][i]
        if kind == "star":
            nxt.add((p, i))
        elif kind == "one" or (ch is not None and c == ch):
            nxt.add((p, i + 1))
    return _closure(nxt, pats)


def match_verdict(patterns: Sequence[str], shape: Sequence[str | frozenset[str]], *, like: bool,
                  fold: bool = False) -> str:
    """Does some value of ``patterns`` match every / some / no subject of ``shape``?"""
    if not patterns:
        return NEVER
    pats = [_tokens(p, like=like, fold=fold) for p in patterns]
    current = {_closure({(p, 0) for p in range(len(pats))}, pats)}
    for pos in shape:
        chars = frozenset(pos.lower() if fold else pos) if isinstance(pos, str) else pos
        nxt: set[frozenset[tuple[int, int]]] = set()
        for states in current:
            if not states:
                nxt.add(states)
                continue
            literals = {pats[p][i][1] for p, i in states if i < len(pats[p]) and pats[p][i][0] == "lit"}
            for ch in chars & literals:
                nxt.add(_step(states, ch, pats))
            if chars - literals:
                nxt.add(_step(states, None, pats))
        current = nxt
    accepting = [any(i == len(pats[p]) for p, i in states) for states in current]
    return ALWAYS if all(accepting) else SOMETIMES if any(accepting) else NEVER


def _and(verdicts: Sequence[str]) -> str:
    if NEVER in verdicts:
        return NEVER
    return ALWAYS if all(v == ALWAYS for v in verdicts) else SOMETIMES


def _not(verdict: str) -> str:
    return {ALWAYS: NEVER, NEVER: ALWAYS}.get(verdict, SOMETIMES)


# -- one role x one (cluster, project, environment) ------------------------------------------
@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str

    @property
    def allowed(self) -> bool:
        return self.verdict == ALWAYS


def _condition_verdict(cond: Any, sub_key: str, shape: Sequence[str | frozenset[str]], ctx: dict[str, Any]) -> str:
    if cond.key.lower() != sub_key.lower() or cond.spec.family not in ("string", "string_ci", "string_like"):
        return ALWAYS if cond.check(ctx) else NEVER
    if any("${" in v for v in cond.values):
        return SOMETIMES  # policy variables: resolved per request
    fold = cond.spec.family == "string_ci"
    like = cond.spec.family == "string_like"
    hit = match_verdict(cond.values, shape, like=like, fold=fold)
    # the subject is one present, single value: set operators and IfExists reduce to the plain test
    return _not(hit) if cond.spec.negated else hit


def trust_verdict(trust_policy: str, *, provider_url: str, provider_arn_: str, audience: str, project: str,
                  environment: str, role_arn: str, now: float | None = None) -> Verdict:
    """What the trust policy says for every run of PROJECT in ENVIRONMENT with this provider."""
    compiled = compile_policy(trust_policy, kind="trust")
    shape = subject_shape(project, environment)
    sample_sa = f"{service_account_prefix(project)}-{uuid.UUID(int=0x4000_8000 << 48)}"
    claims = {"sub": f"system:serviceaccount:{environment}:{sample_sa}", "aud": audience}
    call = CallContext(services=None, caller=None, now=time.time() if now is None else now,  # type: ignore[arg-type]
                       request_id="access")
    context, _ = _trust_context(call, provider_url, claims, audience, session_name(sample_sa))
    account = provider_arn_.split(":")[4]
    request = Request(principal=Principal(kind="Federated", arn=provider_arn_, account=account), action=ACTION,
                      resource=role_arn, context=context)
    ctx = request.normalized_context()
    sub_key = f"{provider_url}:sub"
    allow, deny, why = NEVER, NEVER, "no Allow statement matches"
    for st in compiled.statements:
        if st.principal is None or (st.principal.match(request.principal) is None) != st.not_principal:
            continue
        if st.actions.match(ACTION.lower()) is st.not_action:
            continue
        v = _and([_condition_verdict(c, sub_key, shape, ctx) for c in st.conditions])
        if st.deny:
            deny = ALWAYS if ALWAYS in (deny, v) else SOMETIMES if SOMETIMES in (deny, v) else NEVER
            if v != NEVER:
                why = f"Deny statement {st.label} applies ({v})"
        elif v != NEVER and (allow == NEVER or v == ALWAYS):
            allow = v
            why = f"statement {st.label} allows ({v})"
    if deny == ALWAYS:
        return Verdict(NEVER, why)
    if allow == ALWAYS and deny == NEVER:
        return Verdict(ALWAYS, why)
    if allow == NEVER:
        return Verdict(NEVER, why)
    return Verdict(SOMETIMES, why)


def role_verdict(services: Services, role: Role, cluster: ClusterInfo, project: str, environment: str) -> Verdict:
    """The gates STS applies before the trust policy (provider, audience, TLS pin), then the policy."""
    issuer = cluster.oidc_url
    provider = services.provider_for_issuer(role.account_id, issuer)
    if provider is None:
        return Verdict(NEVER, f"no provider for {issuer} in {role.account_id}")
    if cluster.audience not in provider.client_ids:
        return Verdict(NEVER, f"audience {cluster.audience} is not a client ID of {provider.arn}")
    if services.local_cluster_for_issuer(issuer) and services.ca_thumbprint and \
            services.ca_thumbprint not in provider.thumbprints:
        return Verdict(NEVER, f"the issuer's thumbprint is not in {provider.arn}'s list")
    return trust_verdict(role.trust_policy, provider_url=provider.url, provider_arn_=provider.arn,
                         audience=cluster.audience, project=project, environment=environment, role_arn=role.arn)


def roles_for(services: Services, project: str, environment: str, *, cluster: str | None = None
              ) -> list[dict[str, Any]]:
    """Every role (any account) the jobs of PROJECT in ENVIRONMENT can assume, per cluster."""
    clusters = [c for c in list_clusters(services) if cluster is None or c.name == cluster]
    with services.store.read() as s:
        roles = list(s.execute(select(Role).order_by(Role.account_id, Role.name)).scalars())
        s.expunge_all()
    out = []
    for c in clusters:
        for r in roles:
            v = role_verdict(services, r, c, project, environment)
            if v.verdict != NEVER:
                out.append({"cluster": c.name, "account": r.account_id, "role_arn": r.arn, "verdict": v.verdict,
                            "reason": v.reason})
    return out


# -- a role: which clusters, environments, projects ----------------------------------------
_UUID_SUFFIX = "-" + UUID_PATTERN


def describe_subject(pattern: str, like: bool) -> dict[str, str]:
    """A :sub value in platform terms: environment and project (as names, or as patterns)."""
    m = re.match(r"^system:serviceaccount:([^:]*):([^:]*)$", pattern)
    if m is None:
        return {"environment": "*" if like and "*" in pattern else "?", "project": "*" if like and "*" in pattern
                else "none (not a service-account subject)", "subject": pattern}
    ns, sa = m.groups()
    if like and sa.endswith(_UUID_SUFFIX) and "*" not in sa and "?" not in sa[: -len(_UUID_SUFFIX)]:
        prefix = sa[: -len(_UUID_SUFFIX)]
        project = prefix if "." not in prefix else f"{prefix} (written with '_' or '.' for each '.')"
        if "_" in prefix:
            project = f"none: '_' never appears in a service account ({prefix})"
    elif like and ("*" in sa or "?" in sa):
        project = f"any project whose service account matches {sa}"
    else:
        project = f"none: exact service account {sa} (the platform adds a uuid per run)"
    return {"environment": ns if not (like and ("*" in ns or "?" in ns)) else f"any matching {ns}",
            "project": project, "subject": pattern}


def who_can_assume(services: Services, role_arn: str) -> list[dict[str, Any]]:
    ref = request_role_arn(role_arn)
    role = services.role_by_arn(ref.account, ref)
    if role is None:
        from rolebridge import errors

        raise errors.NoSuchEntity(f"The role with name {ref.name} cannot be found.")
    compiled = compile_policy(role.trust_policy, kind="trust")
    out: list[dict[str, Any]] = []
    for c in list_clusters(services):
        provider = services.provider_for_issuer(ref.account, c.oidc_url)
        if provider is None or c.audience not in provider.client_ids:
            continue
        p_arn = provider_arn(ref.account, provider.url)
        principal = Principal(kind="Federated", arn=p_arn, account=ref.account)
        sub_key = f"{provider.url}:sub".lower()
        for st in compiled.statements:
            if st.deny or st.principal is None or (st.principal.match(principal) is None) != st.not_principal:
                continue
            if st.actions.match(ACTION.lower()) is st.not_action:
                continue
            subs = [cond for cond in st.conditions if cond.key.lower() == sub_key and not cond.spec.negated]
            if not subs:
                out.append({"cluster": c.name, "statement": st.label, "environment": "any", "project": "any",
                            "subject": "*"})
                continue
            for cond in subs:
                for v in cond.values:
                    out.append({"cluster": c.name, "statement": st.label, "operator": cond.spec.text,
                                **describe_subject(v, cond.spec.family == "string_like")})
    return out
