"""Encoded authorization failure messages, and DecodeAuthorizationMessage to read them.

An IAM call refused by policy answers with AWS's sentence ("User: … is not authorized to perform:
… on resource: … because …") followed by ``Encoded authorization failure message: <blob>``, as
EC2 and other services do. The blob is the decision's details (AWS's decoded-message JSON shape:
``allowed``, ``explicitDeny``, ``matchedStatements``, ``failures``, ``context``), compressed and
sealed with the server key, so only this deployment can read it and nobody can forge one.

``sts:DecodeAuthorizationMessage`` opens it for a caller of the *same account* the denial happened
in who is allowed that action (the account root always is). A blob that does not open, or that
belongs to another account, is ``InvalidAuthorizationMessageException``: which of the two is not said.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.context import CallContext
from rolebridge.iam.registry import operation
from rolebridge.policy import EvaluationResult
from rolebridge.store.server_key import SealError, ServerKey

PURPOSE = b"rolebridge-authorization-message-v1"
MARKER = "Encoded authorization failure message: "
INVALID = "The message is not a valid encoded authorization message."


def _items(values: list[Any]) -> dict[str, list[Any]]:
    return {"items": values}


def decoded_document(caller: Caller, action: str, resource: str, result: EvaluationResult,
                     context: dict[str, Any]) -> dict[str, Any]:
    """AWS's decoded-message shape, filled from the evaluation (statements that decided it, and for an
    implicit deny the allow statement that came closest)."""
    explicit = result.decision.value == "ExplicitDeny"
    matched = [{"statementId": r.statement or "", "effect": (r.effect or "").upper(), "policy": r.policy,
                "policyType": r.kind, "detail": r.detail}
               for r in result.reasons if r.statement is not None]
    failures = [{"policy": r.policy, "policyType": r.kind, "detail": r.detail}
                for r in result.reasons if r.statement is None]
    if not explicit:
        miss = result.nearest_miss
        if miss is not None:
            failures.append({"nearestMiss": miss.to_dict()})
    conditions = []
    for key, value in sorted(context.items()):
        values = value if isinstance(value, list) else [value]
        texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
        conditions.append({"key": key, "values": _items([{"value": t} for t in texts])})
    return {
        "allowed": False,
        "explicitDeny": explicit,
        "matchedStatements": _items(matched),
        "failures": _items(failures),
        "context": {
            "principal": {"id": caller.user_id, "arn": caller.arn},
            "action": action,
            "resource": resource,
            "conditions": _items(conditions),
        },
    }


def encode(key: ServerKey, account: str, document: dict[str, Any]) -> str:
    payload = json.dumps({"acct": account, "msg": document}, separators=(",", ":")).encode()
    return key.seal(zlib.compress(payload, 9), purpose=PURPOSE)


def decode(key: ServerKey, blob: str, account: str) -> dict[str, Any]:
    """The decoded message for a caller of ``account``; refuses anything else alike."""
    try:
        record = json.loads(zlib.decompress(key.open(blob.strip(), purpose=PURPOSE)))
    except (SealError, zlib.error, ValueError) as exc:
        raise errors.InvalidAuthorizationMessage(INVALID) from exc
    if record.get("acct") != account:
        raise errors.InvalidAuthorizationMessage(INVALID)
    return dict(record["msg"])


def with_encoded_message(message: str, blob: str) -> str:
    return f"{message}. {MARKER}{blob}"


def encoded_part(message: str) -> str | None:
    """The blob in an AccessDenied message, or None (what a client would cut out to decode)."""
    _, found, blob = message.partition(MARKER)
    return blob.strip() if found else None


@operation("sts", "DecodeAuthorizationMessage")
def decode_authorization_message(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    caller = ctx.require_caller()
    document = decode(ctx.services.server_key, p["EncodedMessage"], caller.account_id)
    return {"DecodedMessage": json.dumps(document, separators=(",", ":"))}
