"""Authorization of S3 requests: identity policies, bucket policy, cross-account rule.

One call to ``policy.evaluate`` per action, with:
- identity side: an assumed role's inline/attached policies and boundary (``iam/authorize.py``);
  an account root has every permission in its own account (a synthetic allow-all identity
  policy), but still needs the bucket policy across accounts and still obeys its explicit denies;
  an anonymous request has no identity side at all;
- resource side: the bucket policy, with ``resource_account`` = the bucket owner, so a principal
  from another account needs both its own allow and the bucket policy's allow.
- guardrails: the caller's account's SCP-style policies (``iam/guardrails.py``) cap every signed
  caller, the account root included (none for an anonymous request: it has no account).
Denials carry AWS's current message form and the evaluation result as the explanation.

``s3:TlsVersion`` is the version the connection negotiated, as the server's HTTP protocol reports it
in the ASGI TLS extension (``http/protocol.py``); where that is not reported the key is absent
rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.clock import iso8601
from rolebridge.iam.authorize import identity_policies, principal_of, request_context, session_policies
from rolebridge.iam.guardrails import denial_reason, root_identity
from rolebridge.policy import CompiledPolicy, EvaluationResult, Principal, Request, compile_policy, evaluate
from rolebridge.policy.model import Decision
from rolebridge.s3.call import S3Call


@dataclass(frozen=True)
class BucketView:
    name: str
    account_id: str
    region: str
    policy: str | None
    created_at: float


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def compiled_bucket_policy(bucket: BucketView) -> CompiledPolicy | None:
    if not bucket.policy:
        return None
    return compile_policy(bucket.policy, kind="resource", name=f"bucket policy of {bucket.name}")


def _principal(caller: Caller | None) -> Principal:
    if caller is None:
        return Principal.anonymous()
    if caller.is_root:
        return Principal(kind="AWS", arn=caller.arn, account=caller.account_id)
    return principal_of(caller)


def tls_version(scope: Mapping[str, Any]) -> str | None:
    """``s3:TlsVersion`` ("1.2", "1.3") from the ASGI TLS extension's ``tls_version`` (0x0303, 0x0304)."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    version = tls.get("tls_version")
    if not isinstance(version, int) or not 0x0301 <= version <= 0x03FF:
        return None
    return f"1.{(version & 0xFF) - 1}"


def condition_context(call: S3Call, bucket: BucketView | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    caller = call.auth.caller
    ctx = call.ctx
    context: dict[str, Any] = (request_context(ctx, caller) if caller is not None else {
        "aws:SourceIp": ctx.source_ip, "aws:SecureTransport": ctx.secure, "aws:EpochTime": int(ctx.now)})
    context["aws:CurrentTime"] = iso8601(ctx.now)
    if call.auth.creds is not None:
        context["s3:signatureversion"] = "AWS4-HMAC-SHA256"
        context["s3:authType"] = call.auth.auth_type
        context["s3:x-amz-content-sha256"] = call.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
    tls = tls_version(call.request.scope) if ctx.secure else None
    if tls is not None:
        context["s3:TlsVersion"] = tls
    if bucket is not None:
        context["s3:ResourceAccount"] = bucket.account_id
    acl = call.headers.get("x-amz-acl")
    if acl:
        context["s3:x-amz-acl"] = acl
    sse = call.headers.get("x-amz-server-side-encryption")
    if sse:
        context["s3:x-amz-server-side-encryption"] = sse
    context.update(extra)
    return context


def _why(result: EvaluationResult, action: str, cross: bool) -> str:
    scp = denial_reason(result, action)
    if scp is not None:
        return scp
    kinds = {r.kind for r in result.reasons}
    if result.decision is Decision.EXPLICIT_DENY:
        where = "a resource-based policy" if "resource" in kinds else "an identity-based policy"
        return f"with an explicit deny in {where}"
    if "resource" in kinds and cross:
        return f"because no resource-based policy allows the {action} action"
    return f"because no identity-based policy allows the {action} action"


def check(call: S3Call, action: str, resource: str, bucket: BucketView | None,
          extra: Mapping[str, Any] | None = None) -> EvaluationResult:
    """Allow or raise AccessDenied. ``bucket`` is None only for ListBuckets / CreateBucket."""
    caller = call.auth.caller
    principal = _principal(caller)
    session: list[Any] = []
    guardrails = call.ctx.services.account_guardrails(caller.account_id) if caller is not None else ()
    if caller is None:
        identity: list[Any] = []
        boundary = None
    elif caller.is_root:
        identity, boundary = [root_identity()], None
    else:
        identity, boundary = identity_policies(call.ctx, caller)
        session = session_policies(call.ctx, caller)  # an AssumeRole Policy/PolicyArns limits S3 too
    resource_policy = compiled_bucket_policy(bucket) if bucket is not None else None
    request = Request(principal=principal, action=action, resource=resource,
                      context=condition_context(call, bucket, extra or {}))
    result = evaluate(request, identity=identity, resource_policy=resource_policy, boundary=boundary,
                      session=session, guardrails=guardrails,
                      resource_account=bucket.account_id if bucket is not None else None)
    if result.allowed:
        return result
    cross = bucket is not None and caller is not None and bucket.account_id != caller.account_id
    who = caller.arn if caller is not None else "anonymous"
    message = (f"User: {who} is not authorized to perform: {action} on resource: \"{resource}\" "
               f"{_why(result, action, cross or caller is None)}")
    if caller is None:
        message = "Access Denied"
    raise errors.AccessDenied(message, explanation=result)


def check_guardrails(call: S3Call, action: str, resource: str, bucket: BucketView) -> None:
    """Where the bucket owner's root skips ``check`` (it may always manage its bucket's policy, so a
    policy that denies everyone can be undone), its account's guardrails still bind it, as SCPs
    bind a member account's root user."""
    caller = call.auth.caller
    if caller is None:
        return
    guardrails = call.ctx.services.account_guardrails(caller.account_id)
    if not guardrails:
        return
    request = Request(principal=_principal(caller), action=action, resource=resource,
                      context=condition_context(call, bucket, {}))
    result = evaluate(request, identity=[root_identity()], guardrails=guardrails)
    if not result.allowed:
        raise errors.AccessDenied(f"User: {caller.arn} is not authorized to perform: {action} on resource: "
                                  f"\"{resource}\" {_why(result, action, False)}", explanation=result)


def allowed(call: S3Call, action: str, resource: str, bucket: BucketView | None,
            extra: Mapping[str, Any] | None = None) -> bool:
    try:
        check(call, action, resource, bucket, extra)
    except errors.AccessDenied:
        return False
    return True
