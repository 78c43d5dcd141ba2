"""AssumeRoleWithWebIdentity, with AWS's checks in AWS's order (reference/aws-semantics.md §1.5, §4.7).

parameters -> token shape -> an OIDC provider for ``iss`` in the *role's* account -> ``aud`` in the
provider's client IDs -> signature against the issuer's keys -> ``exp`` -> the role and its trust
policy -> DurationSeconds within MaxSessionDuration -> credentials.

Every check also writes to a ``Trace`` so the same code explains a refusal (``rolebridge explain``,
``rolebridge run``) as decides it; the AWS-facing messages stay AWS's.
"""

from __future__ import annotations

from typing import Any

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.clock import iso8601
from rolebridge.context import CallContext
from rolebridge.iam.arns import assumed_role_arn, request_role_arn
from rolebridge.iam.registry import operation
from rolebridge.policy import Principal, Request, compile_policy, evaluate_trust
from rolebridge.sts import credentials, session_policy
from rolebridge.sts.trace import NullTrace, Trace
from rolebridge.tokens import claims
from rolebridge.tokens.claims import SessionTags
from rolebridge.tokens.verifier import check_audience, check_times, parse_unverified, remember, verify_signature

ACTION = "sts:AssumeRoleWithWebIdentity"
DENIED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"


class _SignatureNotChecked:
    """What ``Services.jwks_for`` returns when there are no keys to check against.

    Only ``rolebridge explain``'s offline services (``tools/explain.py``) return it, for a token
    given as a file with no JWKS; an identity sentinel, so no JWKS fetched from anywhere can
    stand for it and skip the check.
    """

    def __repr__(self) -> str:
        return "SIGNATURE_NOT_CHECKED"


SIGNATURE_NOT_CHECKED = _SignatureNotChecked()


def _iso(epoch: Any) -> Any:
    """An epoch time as ISO 8601 UTC (what people read); anything else as it is."""
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
        return epoch
    try:
        return iso8601(epoch)
    except (OverflowError, OSError, ValueError):
        return epoch


def _trust_context(ctx: CallContext, prefix: str, token_claims: dict[str, Any], audience: str,
                   session: str, tags: SessionTags | None = None, source_identity: str | None = None
                   ) -> tuple[dict[str, Any], list[str]]:
    """The trust policy's request context and the actions it must allow; ``tags`` and
    ``source_identity`` as ``tokens/claims.py`` read them from the token."""
    context: dict[str, Any] = {
        f"{prefix}:sub": token_claims.get("sub"),
        f"{prefix}:aud": audience,
        "sts:RoleSessionName": session,
        "aws:CurrentTime": iso8601(ctx.now),
        "aws:EpochTime": int(ctx.now),
        "aws:SourceIp": ctx.source_ip,
        "aws:SecureTransport": ctx.secure,
        "aws:UserAgent": ctx.user_agent,
    }
    for claim in ("amr",):
        if claim in token_claims:
            value = token_claims[claim]
            context[f"{prefix}:{claim}"] = value if isinstance(value, list) else [value]
    if isinstance(token_claims.get("azp"), str):
        context[f"{prefix}:azp"] = token_claims["azp"]
    actions = [ACTION]
    if tags:
        actions.append("sts:TagSession")
        for key, value in tags.tags.items():
            context[f"aws:RequestTag/{key}"] = value
        context["aws:TagKeys"] = list(tags.tags)
        context["sts:TransitiveTagKeys"] = list(tags.transitive_keys)
    if source_identity is not None:
        actions.append("sts:SetSourceIdentity")
        context["sts:SourceIdentity"] = source_identity
    return {k: v for k, v in context.items() if v is not None}, actions


async def assume_role_with_web_identity(ctx: CallContext, p: dict[str, Any], trace: Trace | None = None
                                        ) -> dict[str, Any]:
    trace = trace if trace is not None else NullTrace()
    services = ctx.services
    session_name = p["RoleSessionName"]
    duration = int(p.get("DurationSeconds") or 3600)

    try:
        ref = request_role_arn(p["RoleArn"])
    except errors.ValidationError:
        trace.fail("role-arn", f"{p['RoleArn']!r} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                   cause="role-arn-invalid", seen=p["RoleArn"])
        raise
    trace.ok("role-arn", f"role {ref.name} in account {ref.account}")
    try:
        policies = session_policy.requested(p)
    except errors.AWSError as exc:
        trace.fail("session-policy", exc.message, cause="other")
        raise

    try:
        token = parse_unverified(p["WebIdentityToken"])
    except errors.InvalidIdentityToken as exc:
        trace.fail("token-format", f"not a JWT STS accepts: {exc.explanation or exc.message}", cause="other")
        raise
    issuer = token.issuer
    # who asked, for the audit event (unverified until the signature check; never trusted from there)
    ctx.audit["web_identity_claims"] = token.claims
    trace.ok("token-format", "a signed JWT", data={"iss": issuer, "sub": token.claims.get("sub")})

    provider = services.provider_for_issuer(ref.account, issuer)
    if provider is None:
        elsewhere = services.provider_accounts_for_issuer(issuer)
        trace.fail("provider", f"no OIDC provider for {issuer} in account {ref.account}"
                   + (f" (registered in {', '.join(elsewhere)})" if elsewhere else ""),
                   cause="provider-in-other-account" if elsewhere else "provider-missing",
                   expected=f"an IAM OIDC provider with URL {issuer} in {ref.account}",
                   seen=elsewhere or None)
        raise errors.InvalidIdentityToken(f"No OpenIDConnect provider found in your account for {issuer}")
    trace.ok("provider", f"provider {provider.arn}")

    try:
        audience = check_audience(token, provider.client_ids)
    except errors.InvalidIdentityToken:
        trace.fail("audience", "token audience is not a client ID of the provider",
                   cause="audience-missing" if "aud" not in token.claims else "audience-not-allowed",
                   expected=list(provider.client_ids), seen=token.claims.get("aud"))
        raise
    trace.ok("audience", f"audience {audience}")

    try:
        jwks = await services.jwks_for(issuer, provider, token.header.get("kid"), ctx.now)
    except errors.AWSError as exc:
        trace.fail("keys", f"could not get the issuer's keys: {exc.explanation or exc.message}",
                   cause=getattr(exc, "cause", "jwks-unreachable"))
        raise
    if jwks is SIGNATURE_NOT_CHECKED:
        trace.skip("signature", "not checked: offline with no keys (give the issuer's JWKS with --jwks)",
                   data={"checked": False})
    else:
        try:
            verify_signature(token, jwks)
        except errors.InvalidIdentityToken as exc:
            trace.fail("signature", "the token's signature does not verify with any key the issuer publishes",
                       cause="signature-invalid", seen=token.header.get("kid"),
                       expected=[k.get("kid") for k in jwks.get("keys", []) if isinstance(k, dict)],
                       data={"why": exc.explanation})
            raise
        trace.ok("signature", f"signed by key {token.header.get('kid')}")
        remember(token)  # its next arrival skips the parse (the checks still run)

    try:
        check_times(token, now=ctx.now)
    except errors.AWSError as exc:
        trace.fail("expiry", exc.message, cause="token-expired", expected=f"exp after {_iso(ctx.now)} (now)",
                   seen=_iso(token.claims.get("exp")))
        raise
    if not isinstance(trace, NullTrace):
        trace.ok("expiry", f"valid until {_iso(token.claims.get('exp'))}")

    sub = token.claims.get("sub")
    if not isinstance(sub, str) or not sub:
        trace.fail("claims", "the token has no sub claim", cause="other")
        raise errors.InvalidIdentityToken("Missing a required claim: sub")
    try:
        tags = claims.session_tags(token)
        source_identity = claims.source_identity(token)
    except errors.AWSError as exc:
        trace.fail("claims", f"{exc.message}: {exc.explanation}", cause="other")
        raise

    role = services.role_by_arn(ref.account, ref)
    if role is None:
        trace.fail("role", f"role {ref.arn} does not exist" + ("" if ref.here else " (this server is the "
                   "aws partition only)"), cause="role-missing", expected=ref.arn)
        raise errors.AccessDenied(DENIED)
    trace.ok("role", f"role {role.arn} exists")

    context, actions = _trust_context(ctx, provider.url, token.claims, audience, session_name, tags,
                                      source_identity)
    compiled = compile_policy(role.trust_evaluated, kind="trust")
    principal = Principal(kind="Federated", arn=provider.arn, account=ref.account)
    for action in actions:
        result = evaluate_trust(compiled, Request(principal=principal, action=action, resource=role.arn,
                                                  context=context))
        if not result.allowed:
            if not isinstance(trace, NullTrace):  # the explanation (nearest miss) only when recorded
                trace.fail("trust-policy", f"the trust policy does not allow {action}",
                           cause="explicit-deny" if result.decision.value == "ExplicitDeny" else "trust",
                           data={"evaluation": result.to_dict(), "context": context, "action": action,
                                 "provider_url": provider.url, "provider_arn": provider.arn,
                                 "trust_policy": role.trust_policy})
            raise errors.AccessDenied(DENIED, explanation=result)
    trace.ok("trust-policy", "the trust policy allows " + ", ".join(actions))

    if duration > role.max_session_duration:
        trace.fail("duration", f"DurationSeconds {duration} > MaxSessionDuration {role.max_session_duration}",
                   cause="duration-too-long", expected=role.max_session_duration, seen=duration)
        raise errors.ValidationError(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    trace.ok("duration", f"{duration} s")

    try:
        packed = session_policy.check_packed(policies, list(tags.tags.items()))
        if policies.arns:
            with ctx.store.read() as store:
                session_policy.resolve(store, role.account_id, policies)
    except errors.AWSError as exc:
        trace.fail("session-policy", exc.message, cause="other")
        raise
    if policies:
        trace.ok("session-policy", "session policies " + ", ".join(
            (["inline Policy"] if policies.policy else []) + list(policies.arns)))

    expiration = ctx.now + duration
    session_ctx: dict[str, Any] = {"fed": provider.arn, "sub": sub, "aud": audience, "prefix": provider.url}
    if source_identity:
        session_ctx["src"] = source_identity
    if tags:
        session_ctx["tags"] = dict(tags.tags)
        if tags.transitive_keys:  # carried into chained sessions (sts/assume_role.py)
            session_ctx["ttk"] = list(tags.transitive_keys)
    session_ctx.update(session_policy.session_context(policies))  # limit the session (iam/authorize.py)
    caller = Caller(
        account_id=ref.account, arn=assumed_role_arn(ref.account, role.name, session_name),
        user_id=f"{role.role_id}:{session_name}", kind="assumed-role", access_key_id="",
        role_arn=role.arn, role_name=role.name, session_name=session_name, expiration=expiration,
        session=session_ctx,
    )
    issued, _ = credentials.issue(services.server_key, caller, expiration=expiration)
    result_shape: dict[str, Any] = {
        "Credentials": issued.shape(services.to_datetime),
        "SubjectFromWebIdentityToken": sub,
        "AssumedRoleUser": {"AssumedRoleId": caller.user_id, "Arn": caller.arn},
        "Provider": provider.arn,
        "Audience": audience,
    }
    if source_identity:
        result_shape["SourceIdentity"] = source_identity
    if packed is not None:
        result_shape["PackedPolicySize"] = packed
    ctx.audit["assumed"] = caller.arn
    return result_shape


operation("sts", "AssumeRoleWithWebIdentity", action=None, signed=False)(assume_role_with_web_identity)  # type: ignore[arg-type]
