"""IAM's Marker/MaxItems pagination with opaque, key-based markers.

A marker names the sort key of the last item returned, not an offset, so a page boundary stays
put when items before it are created or deleted between calls (Terraform lists while it writes).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from rolebridge import errors

T = TypeVar("T")
DEFAULT_MAX_ITEMS = 100
_PREFIX = "rb1:"


def encode_marker(key: str) -> str:
    return base64.urlsafe_b64encode((_PREFIX + key).encode()).decode()


def decode_marker(marker: str | None) -> str | None:
    """The sort key a marker stands for; a marker we did not issue is refused."""
    if not marker:
        return None
    try:
        text = base64.urlsafe_b64decode(marker.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.ValidationError("Invalid Marker.") from exc
    if not text.startswith(_PREFIX):
        raise errors.ValidationError("Invalid Marker.")
    return text[len(_PREFIX):]


def max_items(p: dict[str, Any]) -> int:
    return int(p.get("MaxItems") or DEFAULT_MAX_ITEMS)


def page(items: Sequence[T], key: Callable[[T], str], p: dict[str, Any], list_name: str) -> dict[str, Any]:
    """One page of ``items`` (already sorted by ``key``) after the request's Marker."""
    after = decode_marker(p.get("Marker"))
    rest = [i for i in items if after is None or key(i) > after]
    size = max_items(p)
    chunk = list(rest[:size])
    out: dict[str, Any] = {list_name: chunk, "IsTruncated": len(rest) > size}
    if out["IsTruncated"]:
        out["Marker"] = encode_marker(key(chunk[-1]))
    return out
