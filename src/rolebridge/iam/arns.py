"""ARNs: parsing, building, and the role-ARN shapes STS and the platform accept."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from rolebridge import errors

ACCOUNT_RE = re.compile(r"^\d{12}$")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
#: The one partition this server is. Roles of any other partition do not exist here.
PARTITION = "aws"
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
    partition: str = PARTITION

    @property
    def arn(self) -> str:
        return role_arn(self.account, self.name, self.path, self.partition)

    @property
    def here(self) -> bool:
        """Whether the ARN is of this server's partition; a role of another one never exists here."""
        return self.partition == PARTITION


@functools.lru_cache(maxsize=4096)  # a pure parse into a frozen value; STS parses the same few ARNs all day
def parse_role_arn(text: str) -> RoleRef | None:
    """`arn:PARTITION:iam::ACCOUNT:role/PATH/NAME` -> RoleRef, or None if it is not a role ARN.

    The partition is kept, not checked: a role ARN of another partition is well-formed (AWS does not
    refuse it as malformed) but names no role of this server (``RoleRef.here``).
    """
    arn = parse_arn(text)
    if arn is None or arn.service != "iam" or arn.region or not ACCOUNT_RE.match(arn.account):
        return None
    if not arn.resource.startswith("role/"):
        return None
    rest = arn.resource[len("role/") :]
    path, _, name = rest.rpartition("/")
    if not name or not ROLE_NAME_RE.match(name):
        return None
    return RoleRef(account=arn.account, path="/" + path + "/" if path else "/", name=name,
                   partition=arn.partition)


# What AssumeRole accepts as an ARN at all: LocalStack's expression, which reproduces the accept/reject
# set of AWS's own recorded cases (aws-semantics.md §1.2).
_WELL_FORMED_ARN = re.compile(r"^arn:[^:]+:[^:]+:[^:]*:[^:]*:[^:]+$")


def request_role_arn(text: str, *, echo_malformed: bool = False) -> RoleRef:
    """The ``RoleArn`` of an STS assume, or AWS's ValidationError ``Request ARN is invalid``, observed for
    AssumeRoleWithWebIdentity (sts-cases.json C24: a pasted annotation, an ARN with extra colons) and for
    an ARN that is not a role's (AssumeRoleWithSAML given a saml-provider ARN, physera/onelogin-aws-cli#12).
    ``echo_malformed``: AssumeRole answers what is no ARN at all with ``<value> is invalid`` instead
    (aws-semantics.md §1.2, LocalStack's AssumeRole snapshots recorded against AWS). A role ARN of another
    partition is returned (see ``RoleRef.here``)."""
    if echo_malformed and not _WELL_FORMED_ARN.match(text):
        raise errors.ValidationError(f"{text} is invalid")
    ref = parse_role_arn(text)
    if ref is None:
        raise errors.ValidationError("Request ARN is invalid")
    return ref


def role_arn(account: str, name: str, path: str = "/", partition: str = PARTITION) -> str:
    return f"arn:{partition}:iam::{account}:role{path}{name}"


def provider_arn(account: str, url_without_scheme: str) -> str:
    return f"arn:aws:iam::{account}:oidc-provider/{url_without_scheme}"


def assumed_role_arn(account: str, role_name: str, session: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"


def root_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def policy_arn(account: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account}:policy{path}{name}"
