"""IAM OIDC identity providers: create/read/update/delete with AWS's validation and messages.

Messages follow real AWS as recorded in reference/aws-semantics.md §2.2-2.3 (LocalStack's
AWS-validated snapshots), not moto's drifted copies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from rolebridge import errors
from rolebridge.context import CallContext
from rolebridge.iam import tags as tagging
from rolebridge.iam.arns import provider_arn
from rolebridge.iam.registry import operation
from rolebridge.store.schema import OIDCProvider

MAX_THUMBPRINTS = 5
MAX_CLIENT_IDS = 100
MAX_PROVIDERS = 100


def _account(ctx: CallContext) -> str:
    return ctx.require_caller().account_id


def _arn_param(_ctx: CallContext, p: dict[str, Any]) -> str:
    return str(p.get("OpenIDConnectProviderArn", "*"))


def normalize_url(url: str) -> str:
    """The stored form: without ``https://``; refuses what AWS refuses."""
    if not url.startswith("https://"):
        raise errors.ValidationError("Invalid Open ID Connect Provider URL")
    parts = urlsplit(url)
    try:
        port = parts.port  # raises for a port out of range or not a number
    except ValueError:
        port = -1
    if (not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc or port == 0 or port == -1
            or any(c.isspace() for c in url)):
        raise errors.ValidationError("Invalid Open ID Connect Provider URL")
    return url[len("https://") :]


def _check_thumbprints(thumbprints: list[str]) -> list[str]:
    if len(thumbprints) > MAX_THUMBPRINTS:
        raise errors.InvalidInput("Thumbprint list must contain fewer than 5 entries.")
    out = []
    for t in thumbprints:
        if len(t) != 40 or any(c not in "0123456789abcdefABCDEF" for c in t):
            raise errors.InvalidInput(f"Thumbprint {t} is not a valid SHA-1 hex string.")
        out.append(t.lower())
    return out


def _check_client_ids(client_ids: list[str]) -> list[str]:
    if len(client_ids) > MAX_CLIENT_IDS:
        raise errors.LimitExceeded("Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100")
    seen: list[str] = []
    for c in client_ids:
        if c not in seen:
            seen.append(c)
    return seen


def find_provider(session: Any, account: str, arn: str) -> OIDCProvider | None:
    return session.execute(
        select(OIDCProvider).where(OIDCProvider.account_id == account, OIDCProvider.arn == arn)
    ).scalar_one_or_none()


def _get_or_404(session: Any, account: str, arn: str, *, message: str) -> OIDCProvider:
    row = find_provider(session, account, arn)
    if row is None:
        raise errors.NoSuchEntity(message)
    return row


@operation("iam", "CreateOpenIDConnectProvider", resource=lambda ctx, p: provider_arn(
    _account(ctx), str(p.get("Url", "")).removeprefix("https://")))
def create_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account = _account(ctx)
    url = p["Url"]
    stored = normalize_url(url)
    client_ids = _check_client_ids(list(p.get("ClientIDList") or []))
    tags = tagging.validate_tags(p.get("Tags") or [])
    if p.get("ThumbprintList") is None:
        thumbprints = ctx.services.discover_thumbprints(url)
    else:
        thumbprints = _check_thumbprints(list(p["ThumbprintList"]))
    arn = provider_arn(account, stored)
    with ctx.store.tx() as s:
        if find_provider(s, account, arn) is not None:
            raise errors.EntityAlreadyExists(f"Provider with url {url} already exists.")
        count = s.scalar(select(func.count()).select_from(OIDCProvider).where(OIDCProvider.account_id == account))
        if (count or 0) >= MAX_PROVIDERS:
            raise errors.LimitExceeded("Cannot exceed quota for OpenIdConnectProvidersPerAccount: 100")
        s.add(OIDCProvider(account_id=account, url=stored, arn=arn, client_ids=client_ids,
                           thumbprints=thumbprints, tags=tags, created_at=ctx.now))
    ctx.services.invalidate()
    return {"OpenIDConnectProviderArn": arn, "Tags": tags}


@operation("iam", "GetOpenIDConnectProvider", resource=_arn_param)
def get_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    arn = p["OpenIDConnectProviderArn"]
    with ctx.store.read() as s:
        row = _get_or_404(s, _account(ctx), arn, message=f"OpenIDConnect Provider not found for arn {arn}")
        return {
            "Url": row.url,
            "ClientIDList": list(row.client_ids),
            "ThumbprintList": list(row.thumbprints),
            "CreateDate": ctx.services.to_datetime(row.created_at),
            "Tags": list(row.tags),
        }


@operation("iam", "ListOpenIDConnectProviders")
def list_providers(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as s:
        rows = s.execute(
            select(OIDCProvider.arn).where(OIDCProvider.account_id == _account(ctx)).order_by(OIDCProvider.arn)
        ).scalars()
        return {"OpenIDConnectProviderList": [{"Arn": arn} for arn in rows]}


@operation("iam", "DeleteOpenIDConnectProvider", resource=_arn_param)
def delete_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    arn = p["OpenIDConnectProviderArn"]
    with ctx.store.tx() as s:
        row = _get_or_404(s, _account(ctx), arn, message=f"OpenId connect Provider {arn} cannot be found.")
        s.delete(row)
    ctx.services.invalidate()
    return {}


def _update(ctx: CallContext, p: dict[str, Any], change: Callable[[OIDCProvider], None], *,
            affects_trust: bool = True) -> dict[str, Any]:
    """Apply ``change`` to the caller's provider named in ``p`` in one transaction (404 when absent)."""
    arn = p["OpenIDConnectProviderArn"]
    with ctx.store.tx() as s:
        change(_get_or_404(s, _account(ctx), arn, message=f"OpenIDConnect Provider not found for arn {arn}"))
    if affects_trust:  # client IDs and thumbprints are read on the STS path; tags are not
        ctx.services.invalidate()
    return {}


@operation("iam", "AddClientIDToOpenIDConnectProvider", resource=_arn_param)
def add_client_id(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    def change(row: OIDCProvider) -> None:
        if p["ClientID"] not in row.client_ids:  # documented idempotent
            row.client_ids = _check_client_ids([*row.client_ids, p["ClientID"]])

    return _update(ctx, p, change)


@operation("iam", "RemoveClientIDFromOpenIDConnectProvider", resource=_arn_param)
def remove_client_id(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    def change(row: OIDCProvider) -> None:
        row.client_ids = [c for c in row.client_ids if c != p["ClientID"]]

    return _update(ctx, p, change)


@operation("iam", "UpdateOpenIDConnectProviderThumbprint", resource=_arn_param)
def update_thumbprints(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Replaces the list (not merged). Only CreateOpenIDConnectProvider may leave it out (IAM then
    fetches one): an update needs at least one thumbprint (the Terraform AWS provider skips the
    call for an empty list because IAM refuses it, hashicorp/terraform-provider-aws#40509). The text is
    the InvalidInput IAM gave for an empty list while Create still required one (#29963, 2023);
    that Update words it the same is inferred."""
    thumbprints = _check_thumbprints(list(p.get("ThumbprintList") or []))
    if not thumbprints:
        raise errors.InvalidInput("Thumbprint list must contain at least one entry.")

    def change(row: OIDCProvider) -> None:
        row.thumbprints = thumbprints

    return _update(ctx, p, change)


@operation("iam", "TagOpenIDConnectProvider", resource=_arn_param)
def tag_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    def change(row: OIDCProvider) -> None:
        row.tags = tagging.merge_tags(row.tags, p.get("Tags") or [])

    return _update(ctx, p, change, affects_trust=False)


@operation("iam", "UntagOpenIDConnectProvider", resource=_arn_param)
def untag_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    def change(row: OIDCProvider) -> None:
        row.tags = tagging.remove_tags(row.tags, p.get("TagKeys") or [])

    return _update(ctx, p, change, affects_trust=False)


@operation("iam", "ListOpenIDConnectProviderTags", resource=_arn_param)
def list_provider_tags(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    arn = p["OpenIDConnectProviderArn"]
    with ctx.store.read() as s:
        row = _get_or_404(s, _account(ctx), arn, message=f"OpenIDConnect Provider not found for arn {arn}")
        return tagging.paginate_tags(list(row.tags), p)
