"""Tags on IAM entities: AWS's limits, case-insensitive key replacement, and Marker pagination."""

from __future__ import annotations

from typing import Any

from rolebridge import errors

MAX_TAGS = 50


def validate_tags(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    if len(tags) > MAX_TAGS:
        raise errors.LimitExceeded("The number of tags has reached the maximum limit.")
    seen: set[str] = set()
    out = []
    for t in tags:
        key, value = t.get("Key", ""), t.get("Value", "")
        if key.lower().startswith("aws:"):
            raise errors.InvalidInput("User-defined tag keys can't start with \"aws:\".")
        if key.lower() in seen:
            raise errors.InvalidInput("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
        seen.add(key.lower())
        out.append({"Key": key, "Value": value})
    return out


def merge_tags(existing: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    new = validate_tags(new)
    replaced = {t["Key"].lower() for t in new}
    merged = [t for t in existing if t["Key"].lower() not in replaced] + new
    if len(merged) > MAX_TAGS:
        raise errors.LimitExceeded("The number of tags has reached the maximum limit.")
    return merged


def remove_tags(existing: list[dict[str, str]], keys: list[str]) -> list[dict[str, str]]:
    drop = {k.lower() for k in keys}
    return [t for t in existing if t["Key"].lower() not in drop]


def paginate_tags(tags: list[dict[str, str]], p: dict[str, Any]) -> dict[str, Any]:
    start = int(p["Marker"]) if str(p.get("Marker") or "").isdigit() else 0
    size = int(p.get("MaxItems") or 100)
    page = tags[start : start + size]
    out: dict[str, Any] = {"Tags": page, "IsTruncated": start + size < len(tags)}
    if out["IsTruncated"]:
        out["Marker"] = str(start + size)
    return out
