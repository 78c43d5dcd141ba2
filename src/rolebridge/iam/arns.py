"""ARNs: parsing, building, and the role-ARN shapes STS and the platform accept."""

from __future__ import annotations

import re
from dataclasses import dataclass

ACCOUNT_RE = re.compile(r"^\d{12}$")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
_ARN_RE = re.compile(r"^arn:([^:]+):([^:]+):([^:]*):([^:]*):(.+)$")


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse_arn(text: str) -> Arn | None:
    m = _ARN_RE.match(text)
    if not m:
        return None
    return Arn(*m.groups())


@dataclass(frozen=True)
class RoleRef:
    account: str
    path: str
    name: str

    @property
    def arn(self) -> str:
        return role_arn(self.account, self.name, self.path)


def parse_role_arn(text: str) -> RoleRef | None:
    """`arn:aws:iam::ACCOUNT:role/PATH/NAME` -> RoleRef, or None if it is not a role ARN."""
    arn = parse_arn(text)
    if arn is None or arn.service != "iam" or arn.region or not ACCOUNT_RE.match(arn.account):
        return None
    if not arn.resource.startswith("role/"):
        return None
    rest = arn.resource[len("role/") :]
    path, _, name = rest.rpartition("/")
    if not name or not ROLE_NAME_RE.match(name):
        return None
    return RoleRef(account=arn.account, path="/" + path + "/" if path else "/", name=name)


def role_arn(account: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


def provider_arn(account: str, url_without_scheme: str) -> str:
    return f"arn:aws:iam::{account}:oidc-provider/{url_without_scheme}"


def assumed_role_arn(account: str, role_name: str, session: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"


def root_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def policy_arn(account: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account}:policy{path}{name}"
