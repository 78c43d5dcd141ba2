"""Evaluation: does a statement apply (matcher), then AWS's combination of policy types (combiner),
then, for a denial, the explanation (nearest miss). aws-semantics 4.6-4.7.

Combination, in order:
1. an applicable ``Deny`` in any policy given (identity, resource, boundary, session, guardrail)
   -> ExplicitDeny;
2. guardrail (SCP-style) policies given and none allows -> ImplicitDeny;
3. same account: a resource-policy allow that names the session/user ARN itself (or a federated
   or service principal) -> Allow regardless of identity/boundary/session implicit denies; one that
   names the role ARN or ``*`` stands in for an identity-policy allow only; one that names the
   account only delegates to the identity policies. Then the identity side must allow, the
   boundary (if any) must allow and the session policies (if any) must allow;
4. cross account (``resource_account`` differs from the principal's): the resource policy must
   allow (an account principal is enough) AND the identity side must allow on its own.
Role trust policies are the exception: ``evaluate_trust`` lets only the trust policy decide, and
it must explicitly allow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from rolebridge.policy.compiled import CompiledPolicy, CompiledStatement
from rolebridge.policy.conditions import TypeMismatch
from rolebridge.policy.model import Decision, EvaluationResult, Miss, Principal, Reason, Request
from rolebridge.policy.patterns import Context
from rolebridge.policy.principals import describe

_DIRECT = frozenset({"session", "user", "federated", "service", "canonical"})


def statement_applies(
    st: CompiledStatement, p: Principal | None, action_l: str, resource: str, ctx: Context
) -> str | None:
    """How the statement applies ("identity" when it has no Principal element) or None."""
    pm = st.principal
    if pm is not None:
        how = pm.match(p)
        if st.not_principal:
            if how is not None:
                return None
            how = "not-principal"
        elif how is None:
            return None
    else:
        how = "identity"
    if st.actions.match(action_l) is st.not_action:
        return None
    rm = st.resources
    if rm is not None and rm.match(resource, ctx) is st.not_resource:
        return None
    for c in st.conditions:
        if not c.check(ctx):
            return None
    return how


Hit = tuple[CompiledPolicy, CompiledStatement, str]
Pair = tuple[CompiledPolicy, CompiledStatement]


class _MergedIndex:
    """Statements of several policies indexed together by action service prefix, so a request
    costs one dict lookup however many policies and non-matching statements there are."""

    def __init__(self, policies: tuple[CompiledPolicy, ...]) -> None:
        wild: list[Pair] = []
        services: set[str] = set()
        for pol in policies:
            for st in pol.statements:
                if st.services is None:
                    wild.append((pol, st))
                else:
                    services.update(st.services)
        self.wild = tuple(wild)
        self.by_service: dict[str, tuple[Pair, ...]] = {
            svc: tuple((pol, st) for pol in policies for st in pol.candidates(svc + ":")) for svc in services
        }

    def candidates(self, action_l: str) -> tuple[Pair, ...]:
        return self.by_service.get(action_l.partition(":")[0], self.wild)


@lru_cache(maxsize=1024)
def _merged(policies: tuple[CompiledPolicy, ...]) -> _MergedIndex:
    return _MergedIndex(policies)


def _scan(policies: Sequence[CompiledPolicy], req: Request, ctx: Context, action_l: str) -> tuple[list[Hit], list[Hit]]:
    denies: list[Hit] = []
    allows: list[Hit] = []
    if not policies:
        return denies, allows
    p = req.principal
    resource = req.resource
    if len(policies) == 1:
        pol = policies[0]
        pairs: Iterable[Pair] = ((pol, st) for st in pol.candidates(action_l))
    else:
        pairs = _merged(tuple(policies)).candidates(action_l)
    for pol, st in pairs:
        how = statement_applies(st, p, action_l, resource, ctx)
        if how is not None:
            (denies if st.deny else allows).append((pol, st, how))
    return denies, allows


def _reason(hit: Hit, req: Request) -> Reason:
    pol, st, how = hit
    verb = "denies" if st.deny else "allows"
    named = "" if how == "identity" else f" (principal named as {how})"
    return Reason(
        pol.label,
        pol.kind.value,
        st.label,
        st.effect,
        f"statement {st.label} {verb} {req.action} on {req.resource}{named}",
        st.index,
    )


def _gate(kind: str, label: str, detail: str) -> Reason:
    return Reason(policy=label, kind=kind, statement=None, effect=None, detail=detail)


# -- explanation of a statement that did not apply -----------------------------------------
def explain_statement(pol: CompiledPolicy, st: CompiledStatement, req: Request) -> Miss:
    """Every element of ``st`` that fails for ``req``, and a closeness score (higher = closer)."""
    ctx = req.normalized_context()
    action_l = req.action_lower()
    failures: list[dict[str, Any]] = []
    score = 0.0
    pm = st.principal
    if pm is not None:
        how = pm.match(req.principal)
        if (how is None) != st.not_principal:
            failures.append(
                {
                    "element": "NotPrincipal" if st.not_principal else "Principal",
                    "expected": list(pm.listed),
                    "seen": [describe(req.principal)],
                    "key_absent": False,
                }
            )
        else:
            score += 1
    else:
        score += 1
    if st.actions.match(action_l) is st.not_action:
        failures.append(
            {
                "element": "NotAction" if st.not_action else "Action",
                "expected": list(st.actions.patterns),
                "seen": [req.action],
                "key_absent": False,
            }
        )
    else:
        score += 1
    rm = st.resources
    if rm is not None and rm.match(req.resource, ctx) is st.not_resource:
        failures.append(
            {
                "element": "NotResource" if st.not_resource else "Resource",
                "expected": list(rm.patterns),
                "seen": [req.resource],
                "key_absent": False,
            }
        )
    else:
        score += 1
    if st.conditions:
        ok = 0
        for c in st.conditions:
            if c.check(ctx):
                ok += 1
            else:
                failures.append(c.explain(ctx))
        score += ok / len(st.conditions)
    else:
        score += 1
    first = failures[0] if failures else {"element": "None", "expected": [], "seen": None}
    return Miss(
        policy=pol.label,
        kind=pol.kind.value,
        statement=st.label,
        statement_index=st.index,
        element=first["element"],
        message=_miss_message(st, first, len(failures)),
        operator=first.get("operator"),
        key=first.get("key"),
        expected=tuple(first.get("expected") or ()),
        seen=None if first.get("seen") is None else tuple(first["seen"]),
        key_absent=bool(first.get("key_absent")),
        failures=tuple(failures),
        score=score,
    )


def _miss_message(st: CompiledStatement, f: dict[str, Any], n: int) -> str:
    more = f" (and {n - 1} more)" if n > 1 else ""
    el = f["element"]
    if el == "Condition":
        if f["key_absent"]:
            seen = "the key is absent from the request"
        else:
            seen = f"the request has {f['seen']}"
        return f"statement {st.label}: condition {f['operator']} on {f['key']} expects {f['expected']} but {seen}{more}"
    if el == "None":
        return f"statement {st.label} applies"
    return f"statement {st.label}: {el} {f['expected']} does not cover {f['seen']}{more}"


def nearest_miss(policies: Iterable[CompiledPolicy], req: Request) -> Miss | None:
    """The Allow statement that came closest to applying (first one on ties)."""
    best: Miss | None = None
    for pol in policies:
        for st in pol.statements:
            if st.deny:
                continue
            m = explain_statement(pol, st, req)
            if best is None or m.score > best.score:
                best = m
    return best


def diagnose(policies: Iterable[CompiledPolicy], req: Request) -> list[str]:
    """Type mismatches met by the conditions of statements that could apply to ``req``."""
    ctx = req.normalized_context()
    action_l = req.action_lower()
    out: list[str] = []
    for pol in policies:
        for st in pol.candidates(action_l):
            for c in st.conditions:
                vals = ctx.get(c.key_l)
                if vals is None or c.test is None:
                    continue
                for v in vals:
                    try:
                        c.test(v, ctx)
                    except TypeMismatch:
                        out.append(
                            f"{pol.label} statement {st.label}: {c.spec.text} cannot compare {c.key} "
                            f"value {v!r}; the condition is false"
                        )
                        break
    return out


# -- combiners ---------------------------------------------------------------------------
_ALLOW = Decision.ALLOW
_EXPLICIT_DENY = Decision.EXPLICIT_DENY
_IMPLICIT_DENY = Decision.IMPLICIT_DENY


def evaluate_trust(trust: CompiledPolicy, request: Request) -> EvaluationResult:
    """Role trust: only the trust policy decides and it must explicitly allow (aws-semantics 4.7).

    This is the STS hot path, so it walks the statements itself instead of going through the
    general combiner; the explanation of a denial is computed only when asked for."""
    ctx = request._norm
    if ctx is None:
        ctx = request.normalized_context()
    action_l = request._action_l or request.action_lower()
    p = request.principal
    resource = request.resource
    allows: list[Hit] = []
    denies: list[Hit] | None = None
    for st in trust.candidates(action_l):
        how = statement_applies(st, p, action_l, resource, ctx)
        if how is not None:
            if st.deny:
                if denies is None:
                    denies = []
                denies.append((trust, st, how))
            else:
                allows.append((trust, st, how))

    def diag() -> list[str]:
        return diagnose((trust,), request)

    if denies:
        return EvaluationResult(_EXPLICIT_DENY, [_reason(h, request) for h in denies], diagnose=diag)
    if allows:
        return EvaluationResult(_ALLOW, [_reason(h, request) for h in allows], diagnose=diag)
    return EvaluationResult(
        _IMPLICIT_DENY,
        [_gate("trust", trust.label, f"no statement of the trust policy allows {request.action}")],
        explain=lambda: nearest_miss((trust,), request),
        diagnose=diag,
    )


def evaluate(
    request: Request,
    *,
    identity: Sequence[CompiledPolicy] = (),
    resource_policy: CompiledPolicy | None = None,
    boundary: CompiledPolicy | None = None,
    session: Sequence[CompiledPolicy] = (),
    guardrails: Sequence[CompiledPolicy] = (),
    resource_account: str | None = None,
) -> EvaluationResult:
    """Combine every policy type that applies to one request, AWS's way (see module doc)."""
    result = _combine(
        request,
        identity=identity,
        resource_policy=resource_policy,
        boundary=boundary,
        session=session,
        guardrails=guardrails,
        resource_account=resource_account,
    )

    def diag() -> list[str]:
        resource_pols = (resource_policy,) if resource_policy else ()
        boundary_pols = (boundary,) if boundary else ()
        return diagnose((*guardrails, *resource_pols, *identity, *boundary_pols, *session), request)

    result._diagnose = diag
    return result


def _combine(
    request: Request,
    *,
    identity: Sequence[CompiledPolicy] = (),
    resource_policy: CompiledPolicy | None = None,
    boundary: CompiledPolicy | None = None,
    session: Sequence[CompiledPolicy] = (),
    guardrails: Sequence[CompiledPolicy] = (),
    resource_account: str | None = None,
) -> EvaluationResult:
    """AWS's combination of every policy type for one request (see the module doc)."""
    ctx = request.normalized_context()
    action_l = request.action_lower()
    resource_pols = (resource_policy,) if resource_policy is not None else ()
    boundary_pols = (boundary,) if boundary is not None else ()
    groups = {
        "guardrail": _scan(guardrails, request, ctx, action_l),
        "resource": _scan(resource_pols, request, ctx, action_l),
        "identity": _scan(identity, request, ctx, action_l),
        "boundary": _scan(boundary_pols, request, ctx, action_l),
        "session": _scan(session, request, ctx, action_l),
    }
    denies = [h for d, _a in groups.values() for h in d]
    if denies:
        return EvaluationResult(Decision.EXPLICIT_DENY, [_reason(h, request) for h in denies])

    def deny(kind: str, label: str, detail: str, candidates: Iterable[CompiledPolicy]) -> EvaluationResult:
        return EvaluationResult(
            Decision.IMPLICIT_DENY,
            [_gate(kind, label, detail)],
            explain=lambda: nearest_miss(tuple(candidates), request),
        )

    guard_allows = groups["guardrail"][1]
    if guardrails and not guard_allows:
        return deny("scp", "guardrails", f"no guardrail policy allows {request.action}", guardrails)
    res_allows = groups["resource"][1]
    id_allows = groups["identity"][1]
    bnd_allows = groups["boundary"][1]
    sess_allows = groups["session"][1]
    p = request.principal
    extra = [_reason(h, request) for h in guard_allows]

    anonymous = p is None or p.kind == "Anonymous"
    direct = [h for h in res_allows if h[2] in _DIRECT]
    if anonymous or p is None or p.kind != "AWS":
        # no identity side at all (anonymous, service, web identity): the resource policy decides
        if res_allows:
            return EvaluationResult(Decision.ALLOW, [_reason(h, request) for h in res_allows] + extra)
        if id_allows and p is not None and not anonymous:
            return EvaluationResult(Decision.ALLOW, [_reason(h, request) for h in id_allows] + extra)
        return deny(
            "resource",
            "resource policy",
            f"no resource policy statement allows {describe(p)}",
            (*resource_pols, *identity),
        )

    cross = resource_account is not None and p.account is not None and resource_account != p.account
    if not cross and direct:
        return EvaluationResult(Decision.ALLOW, [_reason(h, request) for h in direct] + extra)
    if cross and not res_allows:
        return deny(
            "resource",
            "resource policy",
            f"cross-account request: the resource account ({resource_account}) has no resource policy "
            f"statement allowing {describe(p)}",
            resource_pols,
        )
    stand_in = [] if cross else [h for h in res_allows if h[2] in ("role", "wildcard", "not-principal")]
    if not id_allows and not stand_in:
        what = "identity-based policy" if cross else "identity-based or resource-based policy"
        return deny(
            "identity",
            "identity policies",
            f"no {what} allows {request.action} on {request.resource}",
            (*identity, *resource_pols),
        )
    if boundary is not None and not bnd_allows:
        return deny(
            "boundary",
            boundary.label,
            f"the permissions boundary does not allow {request.action}",
            boundary_pols,
        )
    if session and not sess_allows:
        return deny("session", "session policies", f"no session policy allows {request.action}", session)
    hits = id_allows + (res_allows if cross else stand_in) + bnd_allows + sess_allows
    return EvaluationResult(Decision.ALLOW, [_reason(h, request) for h in hits] + extra)
