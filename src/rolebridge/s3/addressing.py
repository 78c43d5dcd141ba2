"""Which requests are S3's, and which bucket and key they address.

The server shares one origin between the AWS Query endpoint (``/``), the issuers (``/oidc/``),
the platform API (``/api/``) and ``/health``. An S3 request is recognised by:
- a Host header naming a bucket under a virtual-host base domain (``bucket.s3.localhost``,
  ``bucket.localhost``, ``bucket.<public host>``): everything on such a host is S3;
- any path outside the reserved prefixes (path style, ``/bucket/key``);
- ``/`` and the reserved prefixes only when the SigV4 credential scope says ``s3`` (ListBuckets;
  a CreateBucket named like a prefix, refused), since ``GET /`` and ``POST /`` are also the
  Query endpoint. Bucket names equal to a reserved prefix can never be created.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from rolebridge import errors

RESERVED_PREFIXES = ("oidc", "api", "health")
DEFAULT_BASES = ("s3.localhost", "localhost")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class Address:
    bucket: str | None
    key: str | None
    virtual: bool

    def resource(self) -> str:
        """The ``<Resource>`` of an error document: the path as S3 reports it."""
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}" + (f"/{self.key}" if self.key is not None else "")


def vhost_bases(public_host: str | None) -> tuple[str, ...]:
    bases = list(DEFAULT_BASES)
    if public_host and not _is_ip(public_host) and public_host not in bases:
        bases = [f"s3.{public_host}", public_host, *bases]
    return tuple(sorted(set(bases), key=len, reverse=True))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def virtual_bucket(host_header: str, bases: Iterable[str]) -> str | None:
    """The bucket named by a virtual-host-style Host header, or None for a plain host."""
    host = host_name(host_header)
    if _is_ip(host):
        return None
    for base in bases:
        if host == base:
            return None
        if host.endswith("." + base):
            return host[: -len(base) - 1] or None
    return None


def _signed_for_s3(authorization: str, query_string: str) -> bool:
    if "/s3/aws4_request" in authorization:
        return True
    if "X-Amz-Credential" in query_string:
        cred = urllib.parse.parse_qs(query_string).get("X-Amz-Credential", [""])[0]
        return cred.endswith("/s3/aws4_request")
    return False


def is_s3_request(*, host: str, raw_path: str, authorization: str, query_string: str,
                  bases: Iterable[str]) -> bool:
    if virtual_bucket(host, bases) is not None:
        return True
    first = raw_path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
    if first == "" or first in RESERVED_PREFIXES:
        # shared with the Query endpoint / the server's own routes: S3's only when signed for s3
        return _signed_for_s3(authorization, query_string)
    return True


def resolve(host: str, raw_path: str, bases: Iterable[str]) -> Address:
    """Bucket and key of a request, keys percent-decoded exactly (no path normalisation)."""
    bucket = virtual_bucket(host, bases)
    path = raw_path or "/"
    if bucket is not None:
        key = urllib.parse.unquote(path[1:]) if len(path) > 1 else None
        return Address(bucket, key, True)
    rest = path[1:]
    if not rest:
        return Address(None, None, False)
    name, sep, raw_key = rest.partition("/")
    bucket = urllib.parse.unquote(name)
    key = urllib.parse.unquote(raw_key) if sep and raw_key else None
    return Address(bucket, key, False)


def check_bucket_name(name: str) -> None:
    """AWS's general-purpose bucket naming rules, plus the server's reserved path prefixes."""
    ok = (
        bool(_BUCKET_RE.fullmatch(name))
        and ".." not in name
        and not _is_ip(name)
        and not name.startswith(("xn--", "sthree-"))
        and not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3"))
        and ".-" not in name and "-." not in name
        and name not in RESERVED_PREFIXES
    )
    if not ok:
        raise errors.InvalidBucketName()


def check_key(key: str) -> None:
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise errors.KeyTooLongError()
