"""The Principal / NotPrincipal element: validation of its forms and a compiled matcher.

A match says *how* the principal was named, because the evaluation logic depends on it
(aws-semantics 4.6): a resource policy naming the session or user ARN itself bypasses implicit
denies on the identity side; naming the role ARN bypasses only the identity-policy one; naming the
account only delegates to the account's own identity policies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rolebridge.policy.model import Principal

PRINCIPAL_TYPES = ("AWS", "Federated", "Service", "CanonicalUser")

_PART = r"aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc"
ACCOUNT = re.compile(r"^\d{12}$")
ACCOUNT_ROOT = re.compile(rf"^arn:(?:{_PART}):iam::(\d{{12}}):root$")
IAM_ENTITY = re.compile(rf"^arn:(?:{_PART}):iam::\d{{12}}:(?:user|role)/[^*?]+$")
STS_SESSION = re.compile(rf"^arn:(?:{_PART}):sts::\d{{12}}:(?:assumed-role/[^/*?]+/[^*?]+|federated-user/[^*?]+)$")
UNIQUE_ID = re.compile(r"^A[A-Z0-9]{15,127}$")
PROVIDER_ARN = re.compile(rf"^arn:(?:{_PART}):iam::\d{{12}}:(?:oidc-provider|saml-provider)/[^*?]+$")
DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
SERVICE = re.compile(r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com(?:\.cn)?$|^[a-z0-9][a-z0-9.-]*\.amazon\.com$")


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def principal_problem(ptype: str, value: str) -> str | None:
    """AWS's message for an invalid principal value, or None when it is a valid form."""
    if ptype == "AWS":
        if (
            value == "*"
            or ACCOUNT.match(value)
            or ACCOUNT_ROOT.match(value)
            or IAM_ENTITY.match(value)
            or STS_SESSION.match(value)
            or UNIQUE_ID.match(value)
        ):
            return None
    elif ptype == "Federated":
        if PROVIDER_ARN.match(value) or DOMAIN.match(value):
            return None
        return "Federated principals must be valid domain names or SAML metadata ARNs"
    elif ptype == "Service":
        if value == "*" or SERVICE.match(value):
            return None
    elif ptype == "CanonicalUser":
        if value:
            return None
    return f'Invalid principal in policy: "{ptype}":"{value}"'


@dataclass(frozen=True)
class PrincipalMatcher:
    star: bool
    accounts: frozenset[str]
    aws: frozenset[str]
    federated: frozenset[str]
    services: frozenset[str]
    canonical: frozenset[str]
    listed: tuple[str, ...]

    @classmethod
    def compile(cls, element: Any) -> PrincipalMatcher:
        if element == "*":
            return cls(True, frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), ("*",))
        assert isinstance(element, Mapping)
        accounts: set[str] = set()
        aws: set[str] = set()
        star = False
        listed: list[str] = []
        by_type: dict[str, set[str]] = {t: set() for t in PRINCIPAL_TYPES}
        for ptype, raw in element.items():
            for v in as_list(raw):
                listed.append(f"{ptype}:{v}")
                if ptype == "AWS":
                    if v == "*":
                        star = True
                    elif ACCOUNT.match(v):
                        accounts.add(v)
                    elif m := ACCOUNT_ROOT.match(v):
                        accounts.add(m.group(1))
                    else:
                        aws.add(v)
                else:
                    by_type[ptype].add(v)
        return cls(
            star,
            frozenset(accounts),
            frozenset(aws),
            frozenset(by_type["Federated"]),
            frozenset(by_type["Service"]),
            frozenset(by_type["CanonicalUser"]),
            tuple(listed),
        )

    def match(self, p: Principal | None) -> str | None:
        """How ``p`` is named here: "wildcard", "session", "user", "role", "account",
        "federated", "service", "canonical"; None when it is not."""
        if self.star:
            return "wildcard"
        if p is None:
            return None
        kind = p.kind
        if kind == "AWS":
            aws = self.aws
            if p.arn in aws:
                if ":assumed-role/" in p.arn or ":federated-user/" in p.arn:
                    return "session"
                if ":role/" in p.arn:
                    return "role"
                return "user"
            if p.role_arn is not None and p.role_arn in aws:
                return "role"
            if p.user_id is not None and p.user_id in aws:
                return "user"
            if p.role_id is not None and p.role_id in aws:
                return "role"
            if p.account is not None and p.account in self.accounts:
                return "account"
            return None
        if kind == "Federated":
            return "federated" if p.arn in self.federated else None
        if kind == "Service":
            return "service" if (p.arn in self.services or "*" in self.services) else None
        if kind == "CanonicalUser":
            return "canonical" if p.arn in self.canonical else None
        return None


def describe(p: Principal | None) -> str:
    if p is None:
        return "anonymous"
    return f"{p.kind}:{p.arn}"


def listed_values(matcher: PrincipalMatcher) -> Sequence[str]:
    return matcher.listed
