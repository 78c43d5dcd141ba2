"""IAM roles: create/read/update/delete, listing with pagination, tags, permissions boundaries, and
their inline policies (managed-policy attachments live in ``iam/managed_policies.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import object_session

from rolebridge import errors
from rolebridge.context import CallContext
from rolebridge.iam import ids, paging, trust_principals
from rolebridge.iam import tags as tagging
from rolebridge.iam.arns import role_arn
from rolebridge.iam.documents import INLINE_ROLE_POLICY_QUOTA, check_identity_policy, check_trust_policy
from rolebridge.iam.documents import packed_size as _size
from rolebridge.iam.policy_store import parse_policy_arn, resolve
from rolebridge.iam.registry import operation
from rolebridge.store.schema import Role, RolePolicy

MAX_ROLES = 1000


def _account(ctx: CallContext) -> str:
    return ctx.require_caller().account_id


def role_resource(ctx: CallContext, p: dict[str, Any]) -> str:
    """The role's ARN as IAM authorizes it: with the role's real path when the role exists."""
    account, name = _account(ctx), str(p.get("RoleName", "*"))
    with ctx.store.read() as s:
        row = find_role(s, account, name)
        if row is not None:
            return row.arn
    return role_arn(account, name, str(p.get("Path") or "/"))


_role_resource = role_resource


def _list_resource(ctx: CallContext, _p: dict[str, Any]) -> str:
    return f"arn:aws:iam::{_account(ctx)}:role/"


def check_boundary(session: Any, account: str, arn: str) -> None:
    """A permissions boundary must name a managed policy the account can see (AWS's messages)."""
    if parse_policy_arn(arn) is None:
        raise errors.InvalidInput(f"ARN {arn} is not valid.")
    if resolve(session, account, arn) is None:
        raise errors.NoSuchEntity(f"Scope ARN: {arn} does not exist or is not attachable.")


def find_role(session: Any, account: str, name: str) -> Role | None:
    return session.execute(
        select(Role).where(Role.account_id == account, Role.name_lower == name.lower())
    ).scalar_one_or_none()


def get_role_or_404(session: Any, account: str, name: str) -> Role:
    row = find_role(session, account, name)
    if row is None:
        raise errors.NoSuchEntity(f"The role with name {name} cannot be found.")
    return row


def role_shape(ctx: CallContext, row: Role, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": row.path,
        "RoleName": row.name,
        "RoleId": row.role_id,
        "Arn": row.arn,
        "CreateDate": ctx.services.to_datetime(row.created_at),
        "AssumeRolePolicyDocument": trust_principals.for_display(object_session(row), row),
        "MaxSessionDuration": row.max_session_duration,
    }
    if row.description is not None:
        out["Description"] = row.description
    if full:
        if row.permissions_boundary:
            out["PermissionsBoundary"] = {
                "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                "PermissionsBoundaryArn": row.permissions_boundary,
            }
        if row.tags:
            out["Tags"] = list(row.tags)
        out["RoleLastUsed"] = {}
    return out


@operation("iam", "CreateRole", resource=_role_resource)
def create_role(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account = _account(ctx)
    name, path = p["RoleName"], p.get("Path") or "/"
    trust = p["AssumeRolePolicyDocument"]
    parsed_trust = check_trust_policy(trust)
    tags = tagging.validate_tags(p.get("Tags") or [])
    max_session = int(p.get("MaxSessionDuration") or 3600)
    boundary = p.get("PermissionsBoundary")
    with ctx.store.tx() as s:
        if boundary:
            check_boundary(s, account, boundary)
        if find_role(s, account, name) is not None:
            raise errors.EntityAlreadyExists(f"Role with name {name} already exists.")
        principal_ids = trust_principals.principal_ids(s, parsed_trust)
        count = s.scalar(select(func.count()).select_from(Role).where(Role.account_id == account)) or 0
        if count >= ctx.services.role_quota:
            raise errors.LimitExceeded(f"Cannot exceed quota for RolesPerAccount: {ctx.services.role_quota}")
        row = Role(
            account_id=account, name=name, name_lower=name.lower(), path=path, role_id=ids.role_id(),
            arn=role_arn(account, name, path), trust_policy=trust, trust_principal_ids=principal_ids or None,
            description=p.get("Description"),
            max_session_duration=max_session, permissions_boundary=boundary, tags=tags, created_at=ctx.now,
        )
        s.add(row)
        s.flush()
        result = {"Role": role_shape(ctx, row)}
    ctx.services.invalidate()
    return result


@operation("iam", "GetRole", resource=_role_resource)
def get_role(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as s:
        return {"Role": role_shape(ctx, get_role_or_404(s, _account(ctx), p["RoleName"]))}


@operation("iam", "DeleteRole", resource=_role_resource)
def delete_role(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.tx() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        inline = s.scalar(select(func.count()).select_from(RolePolicy).where(RolePolicy.role_pk == row.id))
        if inline:
            raise errors.DeleteConflict("Cannot delete entity, must delete policies first.")
        if ctx.services.role_has_attachments(s, row):
            raise errors.DeleteConflict("Cannot delete entity, must detach all policies first.")
        s.delete(row)
    ctx.services.invalidate()
    return {}


@operation("iam", "UpdateAssumeRolePolicy", resource=_role_resource)
def update_assume_role_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    parsed = check_trust_policy(p["PolicyDocument"])
    with ctx.store.tx() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        principal_ids = trust_principals.principal_ids(s, parsed)
        row.trust_policy = p["PolicyDocument"]
        row.trust_principal_ids = principal_ids or None
    ctx.services.invalidate()
    return {}


@operation("iam", "PutRolePolicy", resource=_role_resource)
def put_role_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    document = p["PolicyDocument"]
    check_identity_policy(document, inline=True)
    with ctx.store.tx() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        existing = s.execute(select(RolePolicy).where(RolePolicy.role_pk == row.id)).scalars().all()
        total = sum(_size(rp.document) for rp in existing if rp.name != p["PolicyName"]) + _size(document)
        if total > INLINE_ROLE_POLICY_QUOTA:
            raise errors.LimitExceeded(
                f"Maximum policy size of {INLINE_ROLE_POLICY_QUOTA} bytes exceeded for role {row.name}"
            )
        current = next((rp for rp in existing if rp.name == p["PolicyName"]), None)
        if current is None:
            s.add(RolePolicy(role_pk=row.id, name=p["PolicyName"], document=document))
        else:
            current.document = document
    ctx.services.invalidate()
    return {}


@operation("iam", "GetRolePolicy", resource=_role_resource)
def get_role_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        rp = s.execute(
            select(RolePolicy).where(RolePolicy.role_pk == row.id, RolePolicy.name == p["PolicyName"])
        ).scalar_one_or_none()
        if rp is None:
            raise errors.NoSuchEntity(f"The role policy with name {p['PolicyName']} cannot be found.")
        return {"RoleName": row.name, "PolicyName": rp.name, "PolicyDocument": rp.document}


@operation("iam", "DeleteRolePolicy", resource=_role_resource)
def delete_role_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.tx() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        rp = s.execute(
            select(RolePolicy).where(RolePolicy.role_pk == row.id, RolePolicy.name == p["PolicyName"])
        ).scalar_one_or_none()
        if rp is None:
            raise errors.NoSuchEntity(f"The role policy with name {p['PolicyName']} cannot be found.")
        s.delete(rp)
    ctx.services.invalidate()
    return {}


@operation("iam", "ListRolePolicies", resource=_role_resource)
def list_role_policies(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        names = s.execute(select(RolePolicy.name).where(RolePolicy.role_pk == row.id)).scalars().all()
    # sorted here, not by the database: the marker compares names as Python does, whatever the collation
    return paging.page(sorted(names), str, p, "PolicyNames")


@operation("iam", "UpdateRole", resource=_role_resource)
def update_role(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.tx() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        if p.get("Description") is not None:
            row.description = p["Description"]
        if p.get("MaxSessionDuration") is not None:
            row.max_session_duration = int(p["MaxSessionDuration"])
    ctx.services.invalidate()
    return {}


@operation("iam", "UpdateRoleDescription", resource=_role_resource)
def update_role_description(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.tx() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        row.description = p.get("Description") or ""
        s.flush()
        result = {"Role": role_shape(ctx, row)}
    ctx.services.invalidate()
    return result


@operation("iam", "ListRoles", resource=_list_resource)
def list_roles(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Sorted by name; the marker is the last name returned, so paging is one indexed range read."""
    account = _account(ctx)
    prefix = p.get("PathPrefix") or "/"
    after = paging.decode_marker(p.get("Marker"))
    size = paging.max_items(p)
    query = select(Role).where(Role.account_id == account)
    if prefix != "/":
        query = query.where(Role.path.startswith(prefix, autoescape=True))
    if after is not None:
        query = query.where(Role.name_lower > after)
    with ctx.store.read() as s:
        rows = s.execute(query.order_by(Role.name_lower).limit(size + 1)).scalars().all()
        shapes = [role_shape(ctx, r, full=False) for r in rows[:size]]
        last = rows[size - 1].name_lower if len(rows) > size else None
    out: dict[str, Any] = {"Roles": shapes, "IsTruncated": last is not None}
    if last is not None:
        out["Marker"] = paging.encode_marker(last)
    return out


@operation("iam", "TagRole", resource=_role_resource)
def tag_role(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.tx() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        row.tags = tagging.merge_tags(row.tags, p.get("Tags") or [])
    ctx.services.invalidate()
    return {}


@operation("iam", "UntagRole", resource=_role_resource)
def untag_role(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.tx() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        row.tags = tagging.remove_tags(row.tags, p.get("TagKeys") or [])
    ctx.services.invalidate()
    return {}


@operation("iam", "ListRoleTags", resource=_role_resource)
def list_role_tags(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        return tagging.paginate_tags(list(row.tags), p)


@operation("iam", "PutRolePermissionsBoundary", resource=_role_resource)
def put_role_permissions_boundary(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account = _account(ctx)
    with ctx.store.tx() as s:
        row = get_role_or_404(s, account, p["RoleName"])
        check_boundary(s, account, p["PermissionsBoundary"])
        row.permissions_boundary = p["PermissionsBoundary"]
    ctx.services.invalidate()
    return {}


@operation("iam", "DeleteRolePermissionsBoundary", resource=_role_resource)
def delete_role_permissions_boundary(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.tx() as s:
        row = get_role_or_404(s, _account(ctx), p["RoleName"])
        row.permissions_boundary = None
    ctx.services.invalidate()
    return {}



@operation("iam", "ListInstanceProfilesForRole", resource=_role_resource)
def list_instance_profiles_for_role(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """rolebridge has no instance profiles (there is no EC2 here), so an existing role is in none.

    Tools still ask before deleting a role (the Terraform AWS provider removes the role from each
    profile first), so the answer is AWS's for a role without profiles: an empty list, and
    ``NoSuchEntity`` for a role that does not exist.
    """
    with ctx.store.read() as s:
        get_role_or_404(s, _account(ctx), p["RoleName"])
    paging.decode_marker(p.get("Marker"))  # we never issue one here: any marker is refused
    return {"InstanceProfiles": [], "IsTruncated": False}
