"""Authorization of signed calls: the caller's identity policies decide, evaluated by ``policy/``.

Rules, in the order they are applied:
1. Credentials from GetSessionToken (no MFA exists here) cannot call IAM (AWS answers
   ``InvalidClientTokenId``) and, in STS, only AssumeRole and GetCallerIdentity.
2. Operations with no IAM action (GetCallerIdentity, the web-identity assume, AssumeRole, which
   authorizes itself against the trust policy) stop here.
3. A resource ARN in another account is refused for everyone, the account root included: IAM
   has no resource policies, so nothing can grant it.
4. The account root may do anything in its own account, within the account's guardrails.
5. Any other principal (an assumed role) is allowed only what its inline and attached policies,
   permissions boundary and session policies (inline ``Policy`` and ``PolicyArns`` of its assume)
   allow together. A session whose role was deleted (or deleted and re-created: the role ID
   differs) has no policies, so it is denied.
6. Both are capped by the account's guardrails (SCP style, ``iam/guardrails.py``): some guardrail
   must allow the action and none may deny it.

A denial is AWS's ``AccessDenied`` sentence plus a sealed encoded message that
DecodeAuthorizationMessage explains (``sts/authorization_message.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.context import CallContext
from rolebridge.iam import guardrails as guardrails_mod
from rolebridge.iam.arns import parse_arn
from rolebridge.iam.registry import Operation
from rolebridge.policy import Decision, EvaluationResult, Principal, Request, compile_policy, evaluate
from rolebridge.store.schema import Role, RolePolicy
from rolebridge.sts import authorization_message

SESSION_TOKEN_STS_ALLOWED = frozenset({"AssumeRole", "GetCallerIdentity"})


def principal_of(caller: Caller) -> Principal:
    """The caller as policies name it: by ARN, and a role session also by its role's unique ID (a trust
    policy keeps the roles it names by ID: iam/trust_principals.py)."""
    role_id = caller.user_id.split(":", 1)[0] if caller.kind == "assumed-role" else None
    return Principal(kind="AWS", arn=caller.arn, account=caller.account_id, role_arn=caller.role_arn,
                     role_id=role_id)


def _find_session_role(session: Any, caller: Caller) -> Role | None:
    """The caller's role, if it is still the role the session was issued for."""
    role = session.execute(select(Role).where(Role.arn == caller.role_arn)).scalar_one_or_none()
    if role is None or not caller.user_id.startswith(role.role_id + ":"):
        return None
    return role


def identity_policies(ctx: CallContext, caller: Caller) -> tuple[list[Any], Any]:
    """Compiled identity policies (inline + attached) and permissions boundary of the caller's role."""
    if caller.role_arn is None:
        return [], None
    with ctx.store.read() as s:
        role = _find_session_role(s, caller)
        if role is None:
            return [], None
        docs = s.execute(select(RolePolicy).where(RolePolicy.role_pk == role.id)).scalars().all()
        policies = [compile_policy(d.document, kind="identity", name=d.name, inline=True) for d in docs]
        policies.extend(ctx.services.attached_policies(s, role))
        boundary = ctx.services.boundary_policy(s, role)
    return policies, boundary


def session_policies(ctx: CallContext, caller: Caller) -> list[Any]:
    """The session policies passed to the assume that made these credentials (none: no limit).

    A ``PolicyArns`` entry that no longer resolves still limits: it allows nothing (fail closed).
    """
    from rolebridge.iam.policy_store import default_document
    from rolebridge.policy import ALLOW_NOTHING

    out = []
    if caller.session.get("pol"):
        out.append(compile_policy(caller.session["pol"], kind="session", name="session policy"))
    arns = caller.session.get("parns") or []
    if arns:
        with ctx.store.read() as s:
            for arn in arns:
                document = default_document(s, caller.account_id, arn) or ALLOW_NOTHING
                out.append(compile_policy(document, kind="session", name=arn))
    return out


def request_context(ctx: CallContext, caller: Caller) -> dict[str, Any]:
    """The global condition keys of a signed call.

    ``aws:username`` is absent on purpose: AWS includes it only for IAM users, and the principals
    here are account roots and role sessions, which AWS gives none. ``aws:PrincipalArn`` of a role
    session is the role's ARN (with its path), never the session's.
    """
    context: dict[str, Any] = {
        "aws:PrincipalArn": caller.role_arn or caller.arn,
        "aws:PrincipalAccount": caller.account_id,
        "aws:userid": caller.user_id,
        "aws:SourceIp": ctx.source_ip,
        "aws:SecureTransport": ctx.secure,
        "aws:EpochTime": int(ctx.now),
        "aws:PrincipalType": "AssumedRole" if caller.kind == "assumed-role" else "Account",
    }
    if caller.is_temporary:
        context["aws:MultiFactorAuthPresent"] = False
    if caller.session.get("fed"):
        context["aws:FederatedProvider"] = caller.session["fed"]
    for key, value in (caller.session.get("tags") or {}).items():
        context[f"aws:PrincipalTag/{key}"] = value
    if caller.session.get("src"):
        context["aws:SourceIdentity"] = caller.session["src"]
    return context


def operation_context(ctx: CallContext, op: Operation, params: dict[str, Any]) -> dict[str, Any]:
    """Condition keys the operation's parameters define (iam:PolicyARN, iam:PermissionsBoundary,
    aws:RequestTag/*, aws:TagKeys) and the role's tags as aws:ResourceTag/*."""
    context: dict[str, Any] = {}
    if op.service != "iam":
        return context
    if params.get("PolicyArn") and op.name in ("AttachRolePolicy", "DetachRolePolicy"):
        context["iam:PolicyARN"] = params["PolicyArn"]
    if params.get("PermissionsBoundary"):
        context["iam:PermissionsBoundary"] = params["PermissionsBoundary"]
    tags = params.get("Tags") or []
    for tag in tags:
        context[f"aws:RequestTag/{tag.get('Key', '')}"] = tag.get("Value", "")
    keys = [t.get("Key", "") for t in tags] or list(params.get("TagKeys") or [])
    if keys:
        context["aws:TagKeys"] = keys
    if params.get("RoleName"):
        from rolebridge.iam.roles import find_role

        with ctx.store.read() as s:
            role = find_role(s, ctx.require_caller().account_id, str(params["RoleName"]))
            for tag in (role.tags if role is not None else []) or []:
                context[f"aws:ResourceTag/{tag['Key']}"] = tag["Value"]
    return context


def denied(ctx: CallContext, caller: Caller, action: str, resource: str, why: str,
           result: EvaluationResult, context: dict[str, Any]) -> errors.AccessDenied:
    """AWS's AccessDenied sentence, with the sealed explanation appended."""
    document = authorization_message.decoded_document(caller, action, resource, result, context)
    blob = authorization_message.encode(ctx.services.server_key, caller.account_id, document)
    message = f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource} {why}"
    return errors.AccessDenied(authorization_message.with_encoded_message(message, blob), explanation=result)


def _session_token_rules(op: Operation, caller: Caller) -> None:
    if not caller.session.get("gst"):
        return
    if op.service == "iam":
        raise errors.InvalidClientTokenId()
    if op.service == "sts" and op.name not in SESSION_TOKEN_STS_ALLOWED:
        raise errors.AccessDenied(f"Cannot call {op.name} with session credentials")


def _resource_account(resource: str) -> str | None:
    arn = parse_arn(resource)
    if arn is None or not arn.account.isdigit():
        return None
    return arn.account


def authorize(ctx: CallContext, op: Operation, params: dict[str, Any]) -> None:
    caller = ctx.caller
    if caller is not None:
        _session_token_rules(op, caller)
    if op.action is None:
        return
    caller = ctx.require_caller()
    resource = op.resource(ctx, params)
    other = _resource_account(resource)
    if other is not None and other != caller.account_id:
        result = EvaluationResult(Decision.IMPLICIT_DENY)
        raise denied(ctx, caller, op.action, resource,
                     f"because no resource-based policy allows the {op.action} action", result, {})
    guardrails = ctx.services.account_guardrails(caller.account_id)
    if caller.is_root and not guardrails:
        return
    context = {**request_context(ctx, caller), **operation_context(ctx, op, params)}
    policies, boundary = identity_policies(ctx, caller)
    if caller.is_root:  # anything in its own account, within the account's guardrails
        policies = [guardrails_mod.root_identity()]
    result = evaluate(
        Request(principal=principal_of(caller), action=op.action, resource=resource, context=context),
        identity=policies, boundary=boundary, session=session_policies(ctx, caller), guardrails=guardrails,
    )
    if not result.allowed:
        why = guardrails_mod.denial_reason(result, op.action)  # a guardrail's, in AWS's words
        if why is None and result.decision is Decision.EXPLICIT_DENY:
            kind = next((r.kind for r in result.reasons if r.statement is not None), "identity")
            where = {"boundary": "a permissions boundary", "session": "a session policy"}
            why = "with an explicit deny in " + where.get(kind, "an identity-based policy")
        elif why is None:
            gate = result.reasons[0].kind if result.reasons else "identity"
            why = {"boundary": f"because no permissions boundary allows the {op.action} action",
                   "session": f"because no session policy allows the {op.action} action"}.get(
                gate, f"because no identity-based policy allows the {op.action} action")
        raise denied(ctx, caller, op.action, resource, why, result, context)
