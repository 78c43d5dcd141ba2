"""Fetching the keys of issuers NOT hosted by this server: discovery, then ``jwks_uri``.

The only impure module of ``tokens/`` (httpx + ssl).  It is reached only with URLs of
registered providers, so the caller (STS) decides what may be fetched.

TLS, as AWS does it (IAM CreateOpenIDConnectProvider docs)
---------------------------------------------------------
1. **Trusted CAs first.**  The connection is verified against the system CA store plus an
   optional extra bundle (the server passes its own local CA), with hostname checking.  When that
   succeeds the provider's thumbprints are not consulted.
2. **Thumbprint pinning, only when (1) fails on certificate verification** and the provider has
   thumbprints.  A pre-flight TLS handshake *without* verification reads the chain the server
   presents (Python 3.11 has it only as the private ``_sslobj.get_unverified_chain()``; 3.13+ as
   public ``get_unverified_chain()``; without either we fall back to the leaf alone).  The *top*
   certificate -- the last one the server sends, as in AWS's thumbprint procedure -- is hashed
   (SHA-1 of the DER, lowercase hex) and compared with the pins.  Nothing learned in the
   pre-flight is trusted for the fetch itself: on a match we build a context whose *only* trust
   anchor is that top certificate (``VERIFY_X509_PARTIAL_CHAIN`` so an intermediate can be an
   anchor; no system CAs) with hostname checking and full chain/validity verification by
   OpenSSL, and run the real request with it.  A server that swaps certificates between the two
   connections fails verification; a pin never relaxes hostname or expiry checks.

Other guards: ``https`` only (loopback hosts are allowed -- local issuers live there); no
proxies or environment CA overrides (``trust_env=False``); redirects are followed only to the
same scheme, host and port (at most ``max_redirects``); connect/read timeouts; responses capped
at ``max_bytes`` (64 KiB) while streaming; strict JSON (no duplicate keys); at most
``MAX_KEYS`` keys.

Cache: per (issuer, pin set) -- keys fetched under one account's pins are never served to a
provider registered with other pins.  Entries live ``ttl`` seconds; an unknown ``kid`` triggers
a refresh at most once per ``min_refresh_interval``, and a failed fetch is remembered for the
same interval, so a flood of bad tokens cannot make us hammer the issuer.  All times come from
the ``now`` argument.

Errors (our choice where AWS's is unobserved): anything that means "these are not usable
keys" -- TLS failure, bad pin, refused/DNS failure, non-200, redirect off-host, oversize, bad
JSON, no keys -- raises ``InvalidIdentityToken`` with AWS's observed text ``COULDNT_RETRIEVE``
(double space included); when the reason is the certificate (not trusted and not pinned, or
matching no thumbprint) it is the ``UntrustedIssuerTLS`` subclass -- the same code and message
for AWS, cause ``tls-untrusted`` for ``rolebridge explain``.  A timeout or a 5xx/429 from the
issuer -- the transient "could not be reached, retry" case the STS model documents for
``IDPCommunicationError`` -- raises ``IDPCommunicationError``.  The precise reason is in
``explanation``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rolebridge.errors import AWSError, IDPCommunicationError, InvalidIdentityToken, UntrustedIssuerTLS
from rolebridge.tokens._jose import JoseFormatError, strict_json_object
from rolebridge.tokens.issuer import DISCOVERY_PATH

COULDNT_RETRIEVE = (
    "Couldn't retrieve verification key from your identity provider,  "
    "please reference AssumeRoleWithWebIdentity documentation for requirements"
)
IDP_UNREACHABLE = (
    "The identity provider could not be reached to verify the web identity token. "
    "Retry the request a limited number of times."
)
MAX_KEYS = 100


def certificate_thumbprint(pem_or_der: bytes | str) -> str:
    """SHA-1 of the certificate's DER, lowercase hex -- the thumbprint AWS registers."""
    data = pem_or_der.encode("ascii") if isinstance(pem_or_der, str) else bytes(pem_or_der)
    if b"-----BEGIN CERTIFICATE-----" in data:
        cert = x509.load_pem_x509_certificate(data)
    else:
        cert = x509.load_der_x509_certificate(data)
    der = cert.public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def fetch_top_thumbprint(url: str, *, timeout: float = 5.0) -> str:
    """Thumbprint of the top certificate the host of ``url`` presents (what ``cluster list`` shows
    and what IAM computes when CreateOpenIDConnectProvider gets no ThumbprintList).

    The handshake is unverified on purpose: this *reads* what the host presents so a person or
    IAM can decide to pin it; nothing fetched through this connection is trusted.
    """
    host, port = _check_url(url)
    probe = _probe_context()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            probe.wrap_socket(raw, server_hostname=host) as tls,
        ):
            chain = _presented_chain(tls)
    except (OSError, ssl.SSLError) as exc:
        raise _couldnt(f"cannot connect to {host}:{port}: {exc}") from None
    if not chain:
        raise _couldnt(f"{host}:{port} presented no certificate")
    return hashlib.sha1(chain[-1], usedforsecurity=False).hexdigest()


def _probe_context() -> ssl.SSLContext:
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE  # only to READ the presented chain; nothing is trusted from it
    probe.minimum_version = ssl.TLSVersion.TLSv1_2
    return probe


def _couldnt(why: str) -> InvalidIdentityToken:
    return InvalidIdentityToken(COULDNT_RETRIEVE, explanation=why)


def _untrusted(why: str) -> UntrustedIssuerTLS:
    """AWS's key-retrieval failure, whose reason is the issuer's certificate (not trusted, not pinned)."""
    return UntrustedIssuerTLS(COULDNT_RETRIEVE, explanation=why)


def _unreachable(why: str) -> IDPCommunicationError:
    return IDPCommunicationError(IDP_UNREACHABLE, explanation=why)


def _check_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise _couldnt(f"only https URLs without credentials are fetched, not {url!r}")
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise _couldnt(f"bad port in {url!r}") from exc
    return parts.hostname, port


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or 443


def _cert_verify_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ssl.SSLCertVerificationError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _presented_chain(sslobj: Any) -> list[bytes]:
    """DER certificates as the server sent them, leaf first."""
    public = getattr(sslobj, "get_unverified_chain", None)
    if public is not None:  # Python 3.13+
        return [c if isinstance(c, bytes) else c.public_bytes(serialization.Encoding.DER) for c in public()]
    inner = getattr(sslobj, "_sslobj", None)
    private = getattr(inner, "get_unverified_chain", None)
    if private is not None:  # Python 3.10-3.12: _ssl.Certificate objects
        import _ssl

        return [c.public_bytes(_ssl.ENCODING_DER) for c in private() or []]
    leaf = sslobj.getpeercert(binary_form=True)
    return [leaf] if leaf else []


@dataclass
class _Entry:
    jwks: dict[str, Any] | None = None
    fetched_at: float = float("-inf")
    last_attempt: float = float("-inf")
    error: AWSError | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JWKSFetcher:
    """Discovery + JWKS over verified (or pinned) HTTPS, with a bounded-refresh cache."""

    def __init__(
        self,
        *,
        ca_bundle: str | Path | None = None,
        extra_ca_bundle: str | Path | None = None,
        use_system_cas: bool = True,
        ttl: float = 3600.0,
        min_refresh_interval: float = 60.0,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        max_bytes: int = 64 * 1024,
        max_redirects: int = 3,
    ) -> None:
        if ca_bundle and extra_ca_bundle and Path(ca_bundle) != Path(extra_ca_bundle):
            raise ValueError("pass ca_bundle or extra_ca_bundle (the same thing), not both")
        bundle = ca_bundle or extra_ca_bundle
        self.ca_bundle = Path(bundle) if bundle else None
        self.use_system_cas = use_system_cas
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._cache: dict[tuple[str, frozenset[str]], _Entry] = {}
        self._trusted: ssl.SSLContext | None = None
        self.fetch_count = 0  # network fetches of a JWKS (for tests and metrics)

    # -- cache ------------------------------------------------------------------------------
    async def get_jwks(
        self, issuer_url: str, *, thumbprints: Sequence[str], kid: str | None, now: float
    ) -> dict[str, Any]:
        pins = frozenset(t.strip().lower() for t in thumbprints)
        entry = self._cache.setdefault((issuer_url, pins), _Entry())
        async with entry.lock:
            fresh = entry.jwks is not None and now - entry.fetched_at < self.ttl
            if fresh and (kid is None or kid in _kids(entry.jwks)):
                return entry.jwks  # type: ignore[return-value]
            if now - entry.last_attempt < self.min_refresh_interval:
                if fresh:
                    return entry.jwks  # type: ignore[return-value]  # unknown kid, rate-limited
                if entry.error is not None:
                    raise entry.error
            entry.last_attempt = now
            try:
                jwks = await self.fetch(issuer_url, thumbprints=sorted(pins))
            except AWSError as exc:
                entry.error = exc
                if fresh:
                    return entry.jwks  # type: ignore[return-value]
                raise
            entry.jwks, entry.fetched_at, entry.error = jwks, now, None
            return jwks

    # -- fetching ---------------------------------------------------------------------------
    async def fetch(self, issuer_url: str, *, thumbprints: Sequence[str]) -> dict[str, Any]:
        """Discovery then JWKS, uncached."""
        _check_url(issuer_url)
        discovery = await self._get_json(issuer_url.rstrip("/") + DISCOVERY_PATH, thumbprints)
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise _couldnt("the discovery document has no jwks_uri string")
        _check_url(jwks_uri)
        jwks = await self._get_json(jwks_uri, thumbprints)
        keys = jwks.get("keys")
        if not isinstance(keys, list) or not keys or len(keys) > MAX_KEYS:
            raise _couldnt(f"the JWKS at {jwks_uri} has no usable keys list")
        self.fetch_count += 1
        return {"keys": [k for k in keys if isinstance(k, dict)]}

    async def _get_json(self, url: str, thumbprints: Sequence[str]) -> dict[str, Any]:
        start = _origin(url)
        for _ in range(self.max_redirects + 1):
            status, location, body = await self._get(url, thumbprints)
            if status in (301, 302, 303, 307, 308):
                if not location:
                    raise _couldnt(f"redirect without Location from {url}")
                target = urljoin(url, location)
                if _origin(target) != start:
                    raise _couldnt(f"redirect from {url} to another origin ({target}) refused")
                url = target
                continue
            if status == 429 or status >= 500:
                raise _unreachable(f"{url} answered HTTP {status}")
            if status != 200:
                raise _couldnt(f"{url} answered HTTP {status}")
            try:
                return strict_json_object(body)
            except JoseFormatError as exc:
                raise _couldnt(f"{url} did not return a JSON object: {exc}") from None
        raise _couldnt(f"too many redirects from {url}")

    async def _get(self, url: str, thumbprints: Sequence[str]) -> tuple[int, str | None, bytes]:
        host, port = _check_url(url)
        try:
            return await self._send(url, self._trusted_context())
        except httpx.ConnectError as exc:
            if not _cert_verify_failure(exc):
                raise _couldnt(f"cannot connect to {url}: {exc}") from None
            if not thumbprints:
                why = f"TLS verification of {host} failed and the provider has no thumbprints: {exc}"
                raise _untrusted(why) from None
        context = await self._pinned_context(host, port, thumbprints)
        try:
            return await self._send(url, context)
        except httpx.ConnectError as exc:
            why = f"TLS verification of {host} against the pinned certificate failed: {exc}"
            raise (_untrusted(why) if _cert_verify_failure(exc) else _couldnt(why)) from None

    async def _send(self, url: str, context: ssl.SSLContext) -> tuple[int, str | None, bytes]:
        timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
        options: dict[str, Any] = {"verify": context, "timeout": timeout, "trust_env": False}
        try:
            async with (
                httpx.AsyncClient(follow_redirects=False, **options) as client,
                client.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise _couldnt(f"{url} response is larger than {self.max_bytes} bytes")
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise _couldnt(f"{url} response is larger than {self.max_bytes} bytes")
                return response.status_code, response.headers.get("location"), bytes(body)
        except httpx.TimeoutException as exc:
            raise _unreachable(f"timed out talking to {url}: {type(exc).__name__}") from None
        except httpx.ConnectError:
            raise
        except (httpx.HTTPError, OSError) as exc:
            raise _couldnt(f"fetching {url} failed: {exc}") from None

    # -- TLS --------------------------------------------------------------------------------
    def _trusted_context(self) -> ssl.SSLContext:
        if self._trusted is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.use_system_cas:
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
            if self.ca_bundle is not None:
                ctx.load_verify_locations(cafile=str(self.ca_bundle))
            self._trusted = ctx
        return self._trusted

    async def _pinned_context(self, host: str, port: int, thumbprints: Sequence[str]) -> ssl.SSLContext:
        probe = _probe_context()
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=probe, server_hostname=host),
                timeout=self.connect_timeout,
            )
        except TimeoutError:
            raise _unreachable(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.SSLError) as exc:
            raise _couldnt(f"cannot connect to {host}:{port}: {exc}") from None
        try:
            chain = _presented_chain(writer.get_extra_info("ssl_object"))
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=1)
        if not chain:
            raise _couldnt(f"{host}:{port} presented no certificate")
        top = chain[-1]
        presented = hashlib.sha1(top, usedforsecurity=False).hexdigest()
        if not any(hmac.compare_digest(presented, pin.strip().lower()) for pin in thumbprints):
            why = f"the top certificate of {host}:{port} ({presented}) matches none of the thumbprints"
            raise _untrusted(why)
        pinned = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
        pinned.minimum_version = ssl.TLSVersion.TLSv1_2
        pinned.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        pinned.load_verify_locations(cadata=top)
        return pinned


def _kids(jwks: dict[str, Any] | None) -> set[str]:
    return {k.get("kid") for k in (jwks or {}).get("keys", []) if isinstance(k, dict)} - {None}


__all__ = ["COULDNT_RETRIEVE", "JWKSFetcher", "certificate_thumbprint", "fetch_top_thumbprint"]
