"""Authorization of signed calls: the caller's identity policies decide, evaluated by ``policy/``.

The account root (admin keys) may do anything in its own account. Any other principal (an
assumed role) is allowed only what its inline and attached policies, permissions boundary and
session policy allow; a principal never acts outside its own account.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.context import CallContext
from rolebridge.iam.registry import Operation
from rolebridge.policy import Principal, Request, compile_policy, evaluate
from rolebridge.store.schema import Role, RolePolicy


def principal_of(caller: Caller) -> Principal:
    return Principal(kind="AWS", arn=caller.arn, account=caller.account_id, role_arn=caller.role_arn)


def identity_policies(ctx: CallContext, caller: Caller) -> tuple[list[Any], Any]:
    """Compiled identity policies and permissions boundary of the caller's role."""
    if caller.role_arn is None:
        return [], None
    with ctx.store.read() as s:
        role = s.execute(select(Role).where(Role.arn == caller.role_arn)).scalar_one_or_none()
        if role is None:
            return [], None
        docs = s.execute(select(RolePolicy).where(RolePolicy.role_pk == role.id)).scalars().all()
        policies = [compile_policy(d.document, kind="identity", name=d.name) for d in docs]
        policies.extend(ctx.services.attached_policies(s, role))
        boundary = ctx.services.boundary_policy(s, role)
    return policies, boundary


def request_context(ctx: CallContext, caller: Caller) -> dict[str, Any]:
    context: dict[str, Any] = {
        "aws:PrincipalArn": caller.role_arn or caller.arn,
        "aws:PrincipalAccount": caller.account_id,
        "aws:userid": caller.user_id,
        "aws:SourceIp": ctx.source_ip,
        "aws:SecureTransport": ctx.secure,
        "aws:EpochTime": int(ctx.now),
        "aws:PrincipalType": "AssumedRole" if caller.kind == "assumed-role" else "Account",
    }
    if caller.session.get("fed"):
        context["aws:FederatedProvider"] = caller.session["fed"]
    for key, value in (caller.session.get("tags") or {}).items():
        context[f"aws:PrincipalTag/{key}"] = value
    if caller.session.get("src"):
        context["aws:SourceIdentity"] = caller.session["src"]
    return context


def authorize(ctx: CallContext, op: Operation, params: dict[str, Any]) -> None:
    if op.action is None:
        return
    caller = ctx.require_caller()
    if caller.is_root:
        return
    resource = op.resource(ctx, params)
    policies, boundary = identity_policies(ctx, caller)
    result = evaluate(
        Request(principal=principal_of(caller), action=op.action, resource=resource,
                context=request_context(ctx, caller)),
        identity=policies, boundary=boundary,
    )
    if not result.allowed:
        why = ("with an explicit deny in an identity-based policy" if result.decision.value == "ExplicitDeny"
               else f"because no identity-based policy allows the {op.action} action")
        raise errors.AccessDenied(
            f"User: {caller.arn} is not authorized to perform: {op.action} on resource: {resource} {why}",
            explanation=result)
