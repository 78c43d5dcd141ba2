"""Helpers shared by the policy tests: build requests and policies from the case-file shapes."""

from __future__ import annotations

from typing import Any

from rolebridge.policy import Principal, Request

USER = "arn:aws:iam::111111111111:user/alice"


def principal_from(raw: Any) -> Principal | None:
    if raw is None:
        return None
    if raw == "*":
        return Principal.anonymous()
    ((ptype, value),) = raw.items()
    if ptype == "AWS":
        return Principal.aws(value)
    if ptype == "Federated":
        return Principal.federated(value)
    if ptype == "Service":
        return Principal.service(value)
    raise AssertionError(ptype)


def request_from(raw: dict[str, Any]) -> Request:
    return Request(
        principal_from(raw.get("principal", {"AWS": USER})),
        raw.get("action", "s3:GetObject"),
        raw.get("resource", "arn:aws:s3:::bucket/key"),
        raw.get("context", {}),
    )
