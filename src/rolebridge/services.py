"""The long-lived objects one server (or CLI command) shares across calls.

Lookups the STS path makes on every request (provider by issuer, role by ARN, cluster keys) go
through here, so caching and its invalidation live in one place.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from rolebridge import errors, pid
from rolebridge.caller import Caller
from rolebridge.clock import Clock, system_clock
from rolebridge.iam.arns import RoleRef, root_arn
from rolebridge.iam.trust_principals import for_evaluation
from rolebridge.lookup_cache import LookupCache
from rolebridge.policy import ALLOW_NOTHING
from rolebridge.store import Store
from rolebridge.store.schema import AccessKey, Cluster, OIDCProvider, Role

LOCAL_ISSUER_PREFIX = "/oidc/"
SECRET_PURPOSE = b"rolebridge-access-key-secret-v1"


@dataclass(frozen=True)
class ProviderView:
    arn: str
    url: str
    account_id: str
    client_ids: tuple[str, ...]
    thumbprints: tuple[str, ...]


@dataclass(frozen=True)
class RoleView:
    arn: str
    name: str
    path: str
    role_id: str
    account_id: str
    trust_policy: str
    max_session_duration: int
    pk: int
    permissions_boundary: str | None
    # the trust policy as it is evaluated: the roles it names by ARN as their unique IDs
    # (iam/trust_principals.py), so a role deleted and re-created is not trusted
    trust_evaluated: str


class Services:
    def __init__(self, store: Store, *, public_url: str, ca_thumbprint: str | None = None,
                 clock: Clock = system_clock, extra_ca_bundle: str | None = None) -> None:
        self.store = store
        self.server_key = store.server_key
        self.public_url = public_url.rstrip("/")
        self.ca_thumbprint = ca_thumbprint
        self.clock = clock
        self.role_quota = int(os.environ.get("ROLEBRIDGE_ROLE_QUOTA", "1000"))
        self._fetcher: Any = None
        self.extra_ca_bundle = extra_ca_bundle
        self._audit: Any = None
        self._audit_pid = 0
        # provider / role / cluster-key lookups; see lookup_cache.py for the cross-process rule
        self.lookups = LookupCache(store.engine)

    # -- time ------------------------------------------------------------------------
    @staticmethod
    def to_datetime(ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(int(ts), dt.UTC)

    def record(self, ctx: Any, service: str, action: str, params: Any, *, result: Any = None,
               error: Any = None, request: Any = None, request_id: str | None = None) -> Any:
        """The audit hook: every call, allowed or refused, passes here (see ``audit/``).

        Returns a ``concurrent.futures.Future`` that completes when the event is committed; the
        HTTP layer awaits it before answering, so no acknowledged call is missing from the trail.
        """
        return self.audit_writer().submit(self._call_record(ctx, service, action, params, result, error,
                                                            request, request_id))

    def record_async(self, ctx: Any, service: str, action: str, params: Any, *, result: Any = None,
                     error: Any = None, request: Any = None, request_id: str | None = None) -> Any:
        """``record`` for a coroutine: returns an awaitable that completes once the event is committed.

        Cheaper on the event loop than awaiting ``record``'s thread future: the records of one loop
        iteration go to the writer together and come back with one wake-up per commit.
        """
        return self.audit_writer().submit_async(self._call_record(ctx, service, action, params, result, error,
                                                                  request, request_id))

    def _call_record(self, ctx: Any, service: str, action: str, params: Any, result: Any, error: Any,
                     request: Any, request_id: str | None) -> Any:
        """The raw inputs of the event; the writer thread shapes them (``audit.events.CallRecord``)."""
        from rolebridge.audit.events import CallRecord

        headers: dict[str, str] | None = None
        query: dict[str, str] | None = None
        source_ip, user_agent = "", ""
        if request is not None:
            # the event reads only the SigV4 credential scope (account key, region) from these
            request_headers = request.headers
            authorization = request_headers.get("authorization")
            headers = {"authorization": authorization} if authorization is not None else None
            if request.scope.get("query_string"):
                credential = request.query_params.get("X-Amz-Credential")
                query = {"X-Amz-Credential": credential} if credential is not None else None
            source_ip = request.client.host if request.client else ""
            user_agent = request_headers.get("user-agent", "")
        if ctx is not None:
            source_ip, user_agent = ctx.source_ip, ctx.user_agent
        return CallRecord(
            service=service, action=action, now=ctx.now if ctx is not None else self.clock(),
            request_id=request_id or (ctx.request_id if ctx is not None else ""),
            caller=ctx.caller if ctx is not None else None, params=params, result=result, error=error,
            source_ip=source_ip, user_agent=user_agent, headers=headers, query=query,
            audit_hints=dict(ctx.audit) if ctx is not None and ctx.audit else None)

    def audit_writer(self) -> Any:
        """This process's writer (made after a fork, never shared across one)."""
        from rolebridge.audit.writer import AuditWriter

        if self._audit is None or self._audit_pid != pid.current():
            self._audit, self._audit_pid = AuditWriter(self.store), pid.current()
        return self._audit

    def invalidate(self) -> None:
        """Called after every IAM write has committed: drops this process's lookup cache and bumps
        the shared generation so every other process sharing the database drops its cache too."""
        self.lookups.bump()

    # -- credentials -------------------------------------------------------------------
    def long_term_key(self, access_key_id: str) -> tuple[Caller, str] | None:
        with self.store.read() as s:
            row = s.get(AccessKey, access_key_id)
            if row is None or row.status != "Active":
                return None
            secret = self.server_key.open(row.secret_sealed, purpose=SECRET_PURPOSE).decode()
            caller = Caller(account_id=row.account_id, arn=root_arn(row.account_id),
                            user_id=row.account_id, kind="root", access_key_id=access_key_id)
            return caller, secret

    # -- IAM lookups on the STS path ---------------------------------------------------------
    def provider_for_issuer(self, account: str, issuer: str) -> ProviderView | None:
        if not issuer.startswith("https://"):
            return None
        return self.lookups.get(("provider", account, issuer), lambda: self._load_provider(account, issuer))

    def _load_provider(self, account: str, issuer: str) -> ProviderView | None:
        with self.store.read() as s:
            row = s.execute(select(OIDCProvider).where(
                OIDCProvider.account_id == account, OIDCProvider.url == issuer[len("https://"):])
            ).scalar_one_or_none()
            if row is None:
                return None
            return ProviderView(row.arn, row.url, row.account_id, tuple(row.client_ids), tuple(row.thumbprints))

    def provider_accounts_for_issuer(self, issuer: str) -> list[str]:
        def load() -> tuple[str, ...]:
            with self.store.read() as s:
                return tuple(s.execute(select(OIDCProvider.account_id).where(
                    OIDCProvider.url == issuer.removeprefix("https://"))).scalars())

        return list(self.lookups.get(("provider-accounts", issuer), load))

    def role_by_arn(self, account: str, ref: RoleRef) -> RoleView | None:
        """The role ``ref`` names, or None; a role ARN of another partition names none here."""
        if not ref.here:
            return None
        key = ("role", account, ref.name.lower(), ref.path)
        return self.lookups.get(key, lambda: self._load_role(account, ref))

    def _load_role(self, account: str, ref: RoleRef) -> RoleView | None:
        with self.store.read() as s:
            row = s.execute(select(Role).where(
                Role.account_id == account, Role.name_lower == ref.name.lower())).scalar_one_or_none()
            if row is None or row.path != ref.path:
                return None
            return RoleView(row.arn, row.name, row.path, row.role_id, row.account_id, row.trust_policy,
                            row.max_session_duration, row.id, row.permissions_boundary,
                            for_evaluation(row.trust_policy, row.trust_principal_ids))

    def role_has_attachments(self, session: Any, row: Role) -> bool:
        from rolebridge.iam.policy_store import attached_arns

        return bool(attached_arns(session, row))

    def attached_policies(self, session: Any, row: Role) -> list[Any]:
        """Compiled default versions of the managed policies attached to a role."""
        from rolebridge.iam.policy_store import attached_arns, default_document
        from rolebridge.policy import compile_policy

        out = []
        for arn in attached_arns(session, row):
            document = default_document(session, row.account_id, arn)
            if document is not None:
                out.append(compile_policy(document, kind="identity", name=arn))
        return out

    def boundary_policy(self, session: Any, row: Role) -> Any:
        """The role's permissions boundary, compiled. A boundary naming a policy that no longer
        resolves fails closed: it becomes a boundary that allows nothing."""
        if not row.permissions_boundary:
            return None
        from rolebridge.iam.policy_store import default_document
        from rolebridge.policy import compile_policy

        document = default_document(session, row.account_id, row.permissions_boundary)
        if document is None:
            document = ALLOW_NOTHING
        return compile_policy(document, kind="boundary", name=row.permissions_boundary)

    def account_guardrails(self, account_id: str) -> tuple[Any, ...]:
        """The account's guardrail policies (SCP style), compiled; empty when it has none.

        Every signed request asks for them, so they come from the lookup cache: no query on the hot
        path, and a `rolebridge account guardrail put|delete` (which calls ``invalidate()``) is seen
        by every process on its next request."""
        def load() -> tuple[Any, ...]:
            from rolebridge.iam.guardrails import load_compiled

            return load_compiled(self.store, account_id)

        return self.lookups.get(("guardrails", account_id), load)

    # -- issuer keys --------------------------------------------------------------------------
    def local_cluster_for_issuer(self, issuer: str) -> str | None:
        prefix = self.public_url + LOCAL_ISSUER_PREFIX
        if not issuer.startswith(prefix):
            return None
        name = issuer[len(prefix):]
        return name if name and "/" not in name else None

    def cluster_jwks(self, name: str) -> dict[str, Any] | None:
        """The hosted issuer's public keys (shared from the cache: callers must not mutate it)."""
        def load() -> dict[str, Any] | None:
            with self.store.read() as s:
                row = s.get(Cluster, name)
                return dict(row.jwks) if row else None

        stored = self.lookups.get(("cluster-jwks", name), load)
        if stored is None:
            return None
        # retired keys drop out once every token they signed has expired (platform.clusters.published_jwks)
        retain = stored.get("retain_until") or {}
        if not retain:
            return stored if "retain_until" not in stored else {"keys": stored.get("keys", [])}
        now = self.clock()
        return {"keys": [k for k in stored.get("keys", []) if retain.get(k.get("kid"), now + 1) > now]}

    async def jwks_for(self, issuer: str, provider: ProviderView, kid: str | None, now: float) -> dict[str, Any]:
        """The issuer's JWKS: from the database for issuers this server hosts, over HTTPS otherwise.

        A hosted issuer is held to the same TLS rule as a remote one: our CA is not publicly
        trusted, so the provider must pin its thumbprint, as AWS would require.
        """
        cluster = self.local_cluster_for_issuer(issuer)
        if cluster is not None:
            jwks = self.cluster_jwks(cluster)
            if jwks is not None:
                if self.ca_thumbprint and self.ca_thumbprint not in provider.thumbprints:
                    from rolebridge.tokens.remote import COULDNT_RETRIEVE

                    raise errors.UntrustedIssuerTLS(
                        COULDNT_RETRIEVE,
                        explanation=f"the issuer's TLS certificate (CA thumbprint {self.ca_thumbprint}) is not "
                                    f"in the provider's thumbprint list {list(provider.thumbprints)}")
                return jwks
        return await self.fetcher().get_jwks(issuer, thumbprints=provider.thumbprints, kid=kid, now=now)

    def fetcher(self) -> Any:
        if self._fetcher is None:
            from rolebridge.tokens.remote import JWKSFetcher

            self._fetcher = JWKSFetcher(extra_ca_bundle=self.extra_ca_bundle)
        return self._fetcher

    def discover_thumbprints(self, url: str) -> list[str]:
        """What IAM does when CreateOpenIDConnectProvider has no ThumbprintList: look it up."""
        if self.local_cluster_for_issuer(url) is not None and self.ca_thumbprint:
            return [self.ca_thumbprint]
        try:
            from rolebridge.tokens.remote import fetch_top_thumbprint

            return [fetch_top_thumbprint(url)]
        except Exception as exc:
            raise errors.OpenIdIdpCommunicationError(
                f"Could not connect to {url}") from exc
