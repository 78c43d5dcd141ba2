"""Managed policies: customer managed policies with versions, AWS managed ones read-only, and their
attachment to roles.

AWS's rules kept here: at most 5 versions per policy (``LimitExceeded``); version numbers are never
reused; the default version cannot be deleted; a policy still attached (or used as a permissions
boundary) cannot be deleted, nor one with non-default versions left (``DeleteConflict``); at most 10
managed policies per role; a policy of another account is never visible (``NoSuchEntity`` in its own
handler, ``AccessDenied`` already at authorization, see ``iam/authorize.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from rolebridge import errors
from rolebridge.context import CallContext
from rolebridge.iam import ids, paging
from rolebridge.iam import tags as tagging
from rolebridge.iam.arns import policy_arn
from rolebridge.iam.aws_policies import catalog
from rolebridge.iam.documents import MANAGED_POLICY_QUOTA, check_identity_policy, packed_size
from rolebridge.iam.policy_store import (
    PolicyView,
    attached_arns,
    attachment_count,
    boundary_usage_count,
    parse_policy_arn,
    resolve,
    version_document,
    versions,
)
from rolebridge.iam.registry import operation
from rolebridge.iam.roles import get_role_or_404, role_resource
from rolebridge.store.schema import ManagedPolicy, PolicyVersion, Role, RolePolicyAttachment

MAX_VERSIONS = 5
MAX_ATTACHED_PER_ROLE = 10
MAX_POLICIES = 1500


def _account(ctx: CallContext) -> str:
    return ctx.require_caller().account_id


def _policy_arn_param(_ctx: CallContext, p: dict[str, Any]) -> str:
    return str(p.get("PolicyArn", "*"))


def _create_resource(ctx: CallContext, p: dict[str, Any]) -> str:
    return policy_arn(_account(ctx), str(p.get("PolicyName", "*")), str(p.get("Path") or "/"))


def _list_resource(ctx: CallContext, _p: dict[str, Any]) -> str:
    return f"arn:aws:iam::{_account(ctx)}:policy/"


def not_found(arn: str) -> errors.NoSuchEntity:
    return errors.NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")


def no_version(arn: str, version_id: str) -> errors.NoSuchEntity:
    return errors.NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")


def check_policy_arn(arn: str) -> None:
    if parse_policy_arn(arn) is None:
        raise errors.InvalidInput(f"ARN {arn} is not valid.")


def get_policy_or_404(session: Any, account: str, arn: str) -> PolicyView:
    check_policy_arn(arn)
    view = resolve(session, account, arn)
    if view is None:
        raise not_found(arn)
    return view


def _local_or_refuse(ctx: CallContext, view: PolicyView, action: str) -> ManagedPolicy:
    """Customer managed policies change; AWS managed ones are read-only to every account."""
    if view.row is None:
        caller = ctx.require_caller()
        raise errors.AccessDenied(f"User: {caller.arn} is not authorized to perform: iam:{action} "
                                  f"on resource: policy {view.arn}")
    return view.row


def _check_document(document: str) -> None:
    check_identity_policy(document)
    if packed_size(document) > MANAGED_POLICY_QUOTA:
        raise errors.LimitExceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_QUOTA}")


def policy_shape(ctx: CallContext, session: Any, view: PolicyView, *, full: bool = True) -> dict[str, Any]:
    account = _account(ctx)
    out: dict[str, Any] = {
        "PolicyName": view.name,
        "PolicyId": view.policy_id,
        "Arn": view.arn,
        "Path": view.path,
        "DefaultVersionId": view.default_version,
        "AttachmentCount": attachment_count(session, account, view.arn),
        "PermissionsBoundaryUsageCount": boundary_usage_count(session, account, view.arn),
        "IsAttachable": True,
        "CreateDate": ctx.services.to_datetime(view.created_at),
        "UpdateDate": ctx.services.to_datetime(view.updated_at),
    }
    if full:
        if view.description is not None:
            out["Description"] = view.description
        if view.tags:
            out["Tags"] = list(view.tags)
    return out


def _version_shape(ctx: CallContext, version_id: str, default: str, created: float,
                   document: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"VersionId": version_id, "IsDefaultVersion": version_id == default,
                           "CreateDate": ctx.services.to_datetime(created)}
    if document is not None:
        out["Document"] = document
    return out


# -- policies ------------------------------------------------------------------------------
@operation("iam", "CreatePolicy", resource=_create_resource)
def create_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account = _account(ctx)
    name, path, document = p["PolicyName"], p.get("Path") or "/", p["PolicyDocument"]
    _check_document(document)
    tags = tagging.validate_tags(p.get("Tags") or [])
    arn = policy_arn(account, name, path)
    with ctx.store.tx() as s:
        clash = s.execute(select(ManagedPolicy).where(
            ManagedPolicy.account_id == account, ManagedPolicy.name_lower == name.lower())).scalar_one_or_none()
        if clash is not None:
            raise errors.EntityAlreadyExists(
                f"A policy called {name} already exists. Duplicate names are not allowed.")
        count = s.scalar(select(func.count()).select_from(ManagedPolicy).where(
            ManagedPolicy.account_id == account))
        if (count or 0) >= MAX_POLICIES:
            raise errors.LimitExceeded(f"Cannot exceed quota for PoliciesPerAccount: {MAX_POLICIES}")
        row = ManagedPolicy(account_id=account, name=name, name_lower=name.lower(), path=path,
                            policy_id=ids.policy_id(), arn=arn, description=p.get("Description"),
                            default_version="v1", next_version=2, tags=tags, created_at=ctx.now,
                            updated_at=ctx.now)
        s.add(row)
        s.flush()
        s.add(PolicyVersion(policy_pk=row.id, version_id="v1", document=document, created_at=ctx.now))
        s.flush()
        result = {"Policy": policy_shape(ctx, s, resolve(s, account, arn))}  # type: ignore[arg-type]
    ctx.services.invalidate()
    return result


@operation("iam", "GetPolicy", resource=_policy_arn_param)
def get_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as s:
        return {"Policy": policy_shape(ctx, s, get_policy_or_404(s, _account(ctx), p["PolicyArn"]))}


@operation("iam", "DeletePolicy", resource=_policy_arn_param)
def delete_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account = _account(ctx)
    with ctx.store.tx() as s:
        view = get_policy_or_404(s, account, p["PolicyArn"])
        row = _local_or_refuse(ctx, view, "DeletePolicy")
        if attachment_count(s, account, row.arn) or boundary_usage_count(s, account, row.arn):
            raise errors.DeleteConflict("Cannot delete a policy attached to entities.")
        if len(versions(s, row)) > 1:
            raise errors.DeleteConflict(
                "This policy has more than one version. Before you delete a policy, you must delete the "
                "policy's versions. The default version is deleted with the policy.")
        s.delete(row)
    ctx.services.invalidate()
    return {}


@operation("iam", "ListPolicies", resource=_list_resource)
def list_policies(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account = _account(ctx)
    scope = p.get("Scope") or "All"
    prefix = p.get("PathPrefix") or "/"
    usage = p.get("PolicyUsageFilter")
    with ctx.store.read() as s:
        views: list[PolicyView] = []
        if scope in ("All", "AWS"):
            views.extend(v for v in (resolve(s, account, a.arn) for a in catalog()) if v is not None)
        if scope in ("All", "Local"):
            rows = s.execute(select(ManagedPolicy.arn).where(ManagedPolicy.account_id == account)).scalars()
            views.extend(v for v in (resolve(s, account, arn) for arn in rows) if v is not None)
        views = [v for v in views if v.path.startswith(prefix)]
        shapes = [policy_shape(ctx, s, v, full=False) for v in views]
    if p.get("OnlyAttached") or usage:
        def used(shape: dict[str, Any]) -> bool:
            if usage == "PermissionsPolicy":
                return shape["AttachmentCount"] > 0
            if usage == "PermissionsBoundary":
                return shape["PermissionsBoundaryUsageCount"] > 0
            return shape["AttachmentCount"] > 0 or shape["PermissionsBoundaryUsageCount"] > 0
        shapes = [sh for sh in shapes if used(sh)]
    shapes.sort(key=_policy_key)
    return paging.page(shapes, _policy_key, p, "Policies")


def _policy_key(shape: dict[str, Any]) -> str:
    return f"{shape['PolicyName'].lower()}\x00{shape['Arn']}"


# -- versions ---------------------------------------------------------------------------------
@operation("iam", "GetPolicyVersion", resource=_policy_arn_param)
def get_policy_version(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    arn, version_id = p["PolicyArn"], p["VersionId"]
    with ctx.store.read() as s:
        view = get_policy_or_404(s, _account(ctx), arn)
        document = version_document(s, view, version_id)
        if document is None:
            raise no_version(arn, version_id)
        created = view.created_at
        if view.row is not None:
            created = next(v.created_at for v in versions(s, view.row) if v.version_id == version_id)
        return {"PolicyVersion": _version_shape(ctx, version_id, view.default_version, created, document)}


@operation("iam", "CreatePolicyVersion", resource=_policy_arn_param)
def create_policy_version(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    document = p["PolicyDocument"]
    with ctx.store.tx() as s:
        view = get_policy_or_404(s, _account(ctx), p["PolicyArn"])
        row = _local_or_refuse(ctx, view, "CreatePolicyVersion")
        _check_document(document)
        if len(versions(s, row)) >= MAX_VERSIONS:
            raise errors.LimitExceeded(
                "A managed policy can have up to 5 versions. Before you create a new version, you must "
                "delete an existing version.")
        version_id = f"v{row.next_version}"
        row.next_version += 1
        s.add(PolicyVersion(policy_pk=row.id, version_id=version_id, document=document, created_at=ctx.now))
        row.updated_at = ctx.now
        if p.get("SetAsDefault"):
            row.default_version = version_id
        result = {"PolicyVersion": _version_shape(ctx, version_id, row.default_version, ctx.now)}
    ctx.services.invalidate()
    return result


@operation("iam", "DeletePolicyVersion", resource=_policy_arn_param)
def delete_policy_version(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    arn, version_id = p["PolicyArn"], p["VersionId"]
    with ctx.store.tx() as s:
        view = get_policy_or_404(s, _account(ctx), arn)
        row = _local_or_refuse(ctx, view, "DeletePolicyVersion")
        found = next((v for v in versions(s, row) if v.version_id == version_id), None)
        if found is None:
            raise no_version(arn, version_id)
        if version_id == row.default_version:
            raise errors.DeleteConflict("Cannot delete the default version of a policy.")
        s.delete(found)
    ctx.services.invalidate()
    return {}


@operation("iam", "SetDefaultPolicyVersion", resource=_policy_arn_param)
def set_default_policy_version(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    arn, version_id = p["PolicyArn"], p["VersionId"]
    with ctx.store.tx() as s:
        view = get_policy_or_404(s, _account(ctx), arn)
        row = _local_or_refuse(ctx, view, "SetDefaultPolicyVersion")
        if all(v.version_id != version_id for v in versions(s, row)):
            raise no_version(arn, version_id)
        row.default_version = version_id
    ctx.services.invalidate()
    return {}


@operation("iam", "ListPolicyVersions", resource=_policy_arn_param)
def list_policy_versions(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as s:
        view = get_policy_or_404(s, _account(ctx), p["PolicyArn"])
        if view.row is None:
            shapes = [_version_shape(ctx, view.default_version, view.default_version, view.updated_at)]
        else:
            shapes = [_version_shape(ctx, v.version_id, view.default_version, v.created_at)
                      for v in versions(s, view.row)]
    return paging.page(shapes, lambda v: v["VersionId"][1:].zfill(10), p, "Versions")


# -- tags -----------------------------------------------------------------------------------------
@operation("iam", "TagPolicy", resource=_policy_arn_param)
def tag_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.tx() as s:
        row = _local_or_refuse(ctx, get_policy_or_404(s, _account(ctx), p["PolicyArn"]), "TagPolicy")
        row.tags = tagging.merge_tags(row.tags, p.get("Tags") or [])
    return {}


@operation("iam", "UntagPolicy", resource=_policy_arn_param)
def untag_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.tx() as s:
        row = _local_or_refuse(ctx, get_policy_or_404(s, _account(ctx), p["PolicyArn"]), "UntagPolicy")
        row.tags = tagging.remove_tags(row.tags, p.get("TagKeys") or [])
    return {}


@operation("iam", "ListPolicyTags", resource=_policy_arn_param)
def list_policy_tags(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as s:
        view = get_policy_or_404(s, _account(ctx), p["PolicyArn"])
        return tagging.paginate_tags(list(view.tags), p)


# -- attachments -----------------------------------------------------------------------------------
@operation("iam", "AttachRolePolicy", resource=role_resource)
def attach_role_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account, arn = _account(ctx), p["PolicyArn"]
    check_policy_arn(arn)
    with ctx.store.tx() as s:
        role = get_role_or_404(s, account, p["RoleName"])
        if resolve(s, account, arn) is None:
            raise not_found(arn)
        current = attached_arns(s, role)
        if arn not in current:
            if len(current) >= MAX_ATTACHED_PER_ROLE:
                raise errors.LimitExceeded(
                    f"Cannot exceed quota for PoliciesPerRole: {MAX_ATTACHED_PER_ROLE}")
            s.add(RolePolicyAttachment(role_pk=role.id, account_id=account, policy_arn=arn))
    ctx.services.invalidate()
    return {}


@operation("iam", "DetachRolePolicy", resource=role_resource)
def detach_role_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account, arn = _account(ctx), p["PolicyArn"]
    check_policy_arn(arn)
    with ctx.store.tx() as s:
        role = get_role_or_404(s, account, p["RoleName"])
        row = s.execute(select(RolePolicyAttachment).where(
            RolePolicyAttachment.role_pk == role.id, RolePolicyAttachment.policy_arn == arn)
        ).scalar_one_or_none()
        if row is None:
            raise errors.NoSuchEntity(f"Policy {arn} was not found.")
        s.delete(row)
    ctx.services.invalidate()
    return {}


@operation("iam", "ListAttachedRolePolicies", resource=role_resource)
def list_attached_role_policies(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account = _account(ctx)
    prefix = p.get("PathPrefix") or "/"
    with ctx.store.read() as s:
        role = get_role_or_404(s, account, p["RoleName"])
        shapes = []
        for arn in attached_arns(s, role):
            view = resolve(s, account, arn)
            if view is not None and view.path.startswith(prefix):
                shapes.append({"PolicyName": view.name, "PolicyArn": view.arn})
    shapes.sort(key=lambda a: a["PolicyArn"])
    return paging.page(shapes, lambda a: a["PolicyArn"], p, "AttachedPolicies")



@operation("iam", "ListEntitiesForPolicy", resource=_policy_arn_param)
def list_entities_for_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The caller's roles that use the policy: attached (``PermissionsPolicy``), as permissions
    boundary (``PermissionsBoundary``), or either when no ``PolicyUsageFilter`` is given.

    rolebridge has no IAM users or groups, so ``PolicyUsers`` and ``PolicyGroups`` are always empty
    and an ``EntityFilter`` other than ``Role`` lists nothing. Roles are listed by name; the Marker
    is the last name returned (``iam/paging.py``).
    """
    account = _account(ctx)
    usage = p.get("PolicyUsageFilter")
    prefix = p.get("PathPrefix") or "/"
    entity = p.get("EntityFilter")
    with ctx.store.read() as s:
        arn = get_policy_or_404(s, account, p["PolicyArn"]).arn
        roles: dict[int, Role] = {}
        if entity in (None, "Role"):
            if usage in (None, "PermissionsPolicy"):
                roles.update((r.id, r) for r in s.execute(select(Role).join(
                    RolePolicyAttachment, RolePolicyAttachment.role_pk == Role.id).where(
                    RolePolicyAttachment.account_id == account, RolePolicyAttachment.policy_arn == arn)).scalars())
            if usage in (None, "PermissionsBoundary"):
                roles.update((r.id, r) for r in s.execute(select(Role).where(
                    Role.account_id == account, Role.permissions_boundary == arn)).scalars())
        shapes = sorted(({"RoleName": r.name, "RoleId": r.role_id} for r in roles.values()
                         if r.path.startswith(prefix)), key=lambda r: r["RoleName"].lower())
    out = paging.page(shapes, lambda r: r["RoleName"].lower(), p, "PolicyRoles")
    return {"PolicyGroups": [], "PolicyUsers": [], **out}
