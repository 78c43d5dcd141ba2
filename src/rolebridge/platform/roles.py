"""`aws_role` resolution and the service-account naming scheme of the platform (conveyor-semantics.md §2)."""

from __future__ import annotations

import re
import uuid

from rolebridge import errors
from rolebridge.iam.arns import ROLE_NAME_RE, parse_role_arn, role_arn

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
PROJECT_RE = re.compile(r"^[a-z0-9]([a-z0-9_.-]{0,50}[a-z0-9])?$")
UUID_PATTERN = "????????-????-????-????-????????????"


def resolve_role_arn(aws_role: str, cluster_account: str) -> str:
    """A bare name is a role in the cluster's account; a full ARN is used as given."""
    if aws_role.startswith("arn:"):
        if parse_role_arn(aws_role) is None:
            raise errors.ValidationError(f"aws_role {aws_role!r} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
        return aws_role
    if not ROLE_NAME_RE.match(aws_role):
        raise errors.ValidationError(f"aws_role {aws_role!r} is neither a role name nor a role ARN")
    return role_arn(cluster_account, aws_role)


def check_project(project: str) -> None:
    if not PROJECT_RE.match(project):
        raise errors.ValidationError(
            f"Project name {project!r}: lowercase letters, digits, '_', '.', '-'; start and end alphanumeric.")


def check_environment(environment: str) -> None:
    if not DNS_LABEL.match(environment):
        raise errors.ValidationError(f"Environment {environment!r} must be a DNS label (it is the namespace).")


def service_account_prefix(project: str) -> str:
    """Kubernetes names cannot hold `_`, so the platform writes it as `.`."""
    return project.replace("_", ".")


def new_service_account(project: str) -> str:
    return f"{service_account_prefix(project)}-{uuid.uuid4()}"


def subject_pattern(project: str, environment: str) -> str:
    """The `:sub` pattern that matches exactly this project's job runs in one environment."""
    return f"system:serviceaccount:{environment}:{service_account_prefix(project)}-{UUID_PATTERN}"


def session_name(service_account: str) -> str:
    """RoleSessionName must match [\\w+=,.@-]{2,64}; a service account name always does, cut to 64."""
    return service_account[:64]
