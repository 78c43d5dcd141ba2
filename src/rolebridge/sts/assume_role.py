"""STS AssumeRole: a signed caller (account root or a role session) takes on a role.

Authorization as AWS does it (reference/aws-semantics.md §1.8, §4.6): the role's trust policy must
explicitly allow every action the call implies (``sts:AssumeRole``, plus ``sts:TagSession`` when the
new session carries tags and ``sts:SetSourceIdentity`` when it carries a source identity); and the
caller's own side must allow them too: the account root always does in its own account; a role
session needs its identity policies (within its boundary and session policies), unless, in the same
account, the trust policy names the session or the role directly (the resource-policy shortcut the
policy engine implements). Cross account, both sides must allow, always. The caller's account's
guardrails (SCP style, ``iam/guardrails.py``) cap the caller's side, the account root's included;
the role's account's guardrails do not gate the assume (they bind the session it makes).

A role session calling AssumeRole is *role chaining*: DurationSeconds is capped at one hour. Session
tags marked transitive and the source identity carry over to the chained session; session policies
and the web-identity provider do not.
"""

from __future__ import annotations

from typing import Any

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.clock import iso8601
from rolebridge.context import CallContext
from rolebridge.iam.arns import assumed_role_arn, request_role_arn
from rolebridge.iam.authorize import identity_policies, principal_of, request_context, session_policies
from rolebridge.iam.guardrails import denial_reason, root_identity
from rolebridge.iam.registry import operation
from rolebridge.policy import EvaluationResult, Request, compile_policy, evaluate, evaluate_trust
from rolebridge.services import RoleView
from rolebridge.sts import credentials, session_policy, session_rules

ACTION = "sts:AssumeRole"
CHAINED_MAX = 3600
CHAINING_MESSAGE = ("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role "
                    "chaining.")
MAX_DURATION_MESSAGE = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


def denied_message(caller: Caller, action: str, role_arn: str) -> str:
    return f"User: {caller.arn} is not authorized to perform: {action} on resource: {role_arn}"


# AssumeRole's answers to the session rules (sts/session_rules.py) its parameters break. The model's own
# constraints (count, length, alphabet) in the model's words, as the Query layer reports them first; the
# rest as STS answers them [LS-AWS sts snapshots, aws-semantics.md §1.8]. Inferred (no AWS capture): the
# reserved ``aws:`` prefix of a tag key (IAM's TagRole sentence) and of a source identity (unreachable in
# practice: ``:`` is outside the source identity's alphabet, so the model's pattern refuses it first).
_TAG_KEY_PATTERN = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+"
_TAG_VALUE_PATTERN = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*"
_SOURCE_IDENTITY_PATTERN = r"[\w+=,.@-]*"
_PARAMETER_MESSAGES = {
    "duplicate-key": "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
    "transitive-missing": "The specified transitive tag key must be included in the requested tags.",
    "reserved-key": 'User-defined tag keys can\'t start with "aws:".',
    "source-identity-reserved": 'The source identity can\'t start with "aws:".',
}


def _model_problem(v: session_rules.Violation) -> errors.Problem | None:
    """The violation as the model's ValidationError problem, or None if the model has no such rule."""
    tag = f"tags.{(v.index or 0) + 1}.member"
    if v.rule == "count":
        return (None, "tags", f"Member must have length less than or equal to {session_rules.MAX_TAGS}")
    if v.rule == "transitive-count":
        return (None, "transitiveTagKeys", f"Member must have length less than or equal to {session_rules.MAX_TAGS}")
    if v.rule == "key-length":
        rule = ("Member must have length greater than or equal to 1" if not v.value else
                f"Member must have length less than or equal to {session_rules.TAG_KEY_MAX}")
        return (v.value, f"{tag}.key", rule)
    if v.rule == "key-chars":
        return (v.value, f"{tag}.key", f"Member must satisfy regular expression pattern: {_TAG_KEY_PATTERN}")
    if v.rule == "value-length":
        return (None, f"{tag}.value", f"Member must have length less than or equal to {session_rules.TAG_VALUE_MAX}")
    if v.rule == "value-chars":
        return (v.value, f"{tag}.value", f"Member must satisfy regular expression pattern: {_TAG_VALUE_PATTERN}")
    if v.rule == "source-identity-length":
        n = session_rules.java_length(v.value or "")
        rule = (f"Member must have length greater than or equal to {session_rules.SOURCE_IDENTITY_MIN}"
                if n < session_rules.SOURCE_IDENTITY_MIN else
                f"Member must have length less than or equal to {session_rules.SOURCE_IDENTITY_MAX}")
        return (v.value, "sourceIdentity", rule)
    if v.rule == "source-identity-chars":
        return (v.value, "sourceIdentity",
                f"Member must satisfy regular expression pattern: {_SOURCE_IDENTITY_PATTERN}")
    return None


def refuse_parameters(violations: list[session_rules.Violation]) -> None:
    """Raise AWS's error for the first broken rule: the model's constraints batched, as AWS reports them,
    before any other rule."""
    model = [p for p in (_model_problem(v) for v in violations) if p is not None]
    if model:
        raise errors.validation_error(model)
    if violations:
        raise errors.InvalidParameterValue(_PARAMETER_MESSAGES[violations[0].rule])


def session_tags(caller: Caller, p: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The new session's tags and transitive keys: the caller's transitive tags plus the requested ones,
    with AWS's rules and messages (the session rules shared with the web identity token's tags)."""
    requested = p.get("Tags") or []
    transitive = list(p.get("TransitiveTagKeys") or [])
    refuse_parameters(session_rules.tag_violations([(t["Key"], t.get("Value", "")) for t in requested],
                                                   transitive))
    seen = {t["Key"].lower() for t in requested}
    inherited_keys = list(caller.session.get("ttk") or [])
    inherited = {k: v for k, v in (caller.session.get("tags") or {}).items() if k in inherited_keys}
    if any(k.lower() in seen for k in inherited):
        raise errors.InvalidParameterValue("One of the specified transitive tag keys can't be set because it "
                                           "conflicts with a transitive tag key from the calling session.")
    tags = {**inherited, **{t["Key"]: t.get("Value", "") for t in requested}}
    wanted = {k.lower() for k in transitive}
    return tags, inherited_keys + [t["Key"] for t in requested if t["Key"].lower() in wanted]


def trust_context(ctx: CallContext, caller: Caller, p: dict[str, Any], tags: dict[str, str],
                  transitive: list[str], source_identity: str | None) -> dict[str, Any]:
    context = request_context(ctx, caller)
    context.update({
        "sts:RoleSessionName": p["RoleSessionName"],
        "aws:CurrentTime": iso8601(ctx.now),
        "aws:UserAgent": ctx.user_agent,
    })
    if p.get("ExternalId") is not None:
        context["sts:ExternalId"] = p["ExternalId"]
    if tags:
        for key, value in tags.items():
            context[f"aws:RequestTag/{key}"] = value
        context["aws:TagKeys"] = list(tags)
        context["sts:TransitiveTagKeys"] = transitive
    if source_identity:
        context["sts:SourceIdentity"] = source_identity
    return context


def authorize_assume(ctx: CallContext, caller: Caller, role: RoleView, actions: list[str],
                     context: dict[str, Any]) -> None:
    """Both sides for every action: the trust policy, then the caller's own policies."""
    trust = compile_policy(role.trust_evaluated, kind="trust")
    principal = principal_of(caller)
    identity: list[Any] = []
    boundary: Any = None
    session: list[Any] = []
    guardrails = ctx.services.account_guardrails(caller.account_id)  # the caller's account, not the role's
    if not caller.is_root:
        identity, boundary = identity_policies(ctx, caller)
        session = session_policies(ctx, caller)
    elif guardrails:
        identity = [root_identity()]
    for action in actions:
        request = Request(principal=principal, action=action, resource=role.arn, context=context)
        result: EvaluationResult = evaluate_trust(trust, request)
        if result.allowed and (guardrails or not caller.is_root):
            result = evaluate(request, identity=identity, resource_policy=trust, boundary=boundary,
                              session=session, guardrails=guardrails, resource_account=role.account_id)
        if not result.allowed:
            scp = denial_reason(result, action)
            message = denied_message(caller, action, role.arn) + (f" {scp}" if scp else "")
            raise errors.AccessDenied(message, explanation=result)


@operation("sts", "AssumeRole", action=None)
def assume_role(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    caller = ctx.require_caller()
    ref = request_role_arn(p["RoleArn"], echo_malformed=True)
    session_name = p["RoleSessionName"]
    duration = int(p.get("DurationSeconds") or 3600)
    policies = session_policy.requested(p)
    tags, transitive = session_tags(caller, p)
    if p.get("SourceIdentity") is not None:
        refuse_parameters(session_rules.source_identity_violations(p["SourceIdentity"]))
    inherited_source = caller.session.get("src")
    source_identity = p.get("SourceIdentity") or inherited_source
    if inherited_source and p.get("SourceIdentity") and p["SourceIdentity"] != inherited_source:
        raise errors.InvalidParameterValue(
            "The source identity of a role session cannot be changed once it is set.")
    packed = session_policy.check_packed(policies, [(t["Key"], t.get("Value", "")) for t in p.get("Tags") or []])
    if p.get("SerialNumber") or p.get("TokenCode"):
        raise errors.AccessDenied("MultiFactorAuthentication failed with invalid MFA one time pass code.")

    role = ctx.services.role_by_arn(ref.account, ref)
    if role is None:
        raise errors.AccessDenied(denied_message(caller, ACTION, p["RoleArn"]))
    actions = [ACTION]
    if tags:
        actions.append("sts:TagSession")
    if source_identity:
        actions.append("sts:SetSourceIdentity")
    authorize_assume(ctx, caller, role, actions,
                     trust_context(ctx, caller, p, tags, transitive, source_identity))

    chained = caller.is_temporary
    if chained and duration > CHAINED_MAX:
        raise errors.ValidationError(CHAINING_MESSAGE)
    if duration > role.max_session_duration:
        raise errors.ValidationError(MAX_DURATION_MESSAGE)
    if policies.arns:
        with ctx.store.read() as store:
            session_policy.resolve(store, role.account_id, policies)

    expiration = ctx.now + duration
    session_ctx: dict[str, Any] = {}
    if tags:
        session_ctx["tags"] = tags
    if transitive:
        session_ctx["ttk"] = transitive
    if source_identity:
        session_ctx["src"] = source_identity
    session_ctx.update(session_policy.session_context(policies))
    new = Caller(
        account_id=ref.account, arn=assumed_role_arn(ref.account, role.name, session_name),
        user_id=f"{role.role_id}:{session_name}", kind="assumed-role", access_key_id="",
        role_arn=role.arn, role_name=role.name, session_name=session_name, expiration=expiration,
        chained=chained, session=session_ctx,
    )
    issued, _ = credentials.issue(ctx.services.server_key, new, expiration=expiration)
    result: dict[str, Any] = {
        "Credentials": issued.shape(ctx.services.to_datetime),
        "AssumedRoleUser": {"AssumedRoleId": new.user_id, "Arn": new.arn},
    }
    if packed is not None:
        result["PackedPolicySize"] = packed
    if source_identity:
        result["SourceIdentity"] = source_identity
    ctx.audit["assumed"] = new.arn
    return result
