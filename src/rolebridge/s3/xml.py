"""S3's XML documents, built with ElementTree from plain data (escaping by construction).

S3 speaks REST-XML, not the Query protocol: results live in the 2006-03-01 namespace and errors
are a bare ``<Error><Code/><Message/><Resource/><RequestId/></Error>``. Request documents
(CompleteMultipartUpload, Delete, Tagging, CreateBucketConfiguration) are parsed here too, with a
size cap and no entity expansion beyond what expat does by default.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

from rolebridge import errors

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_REQUEST_XML = 2 * 1024 * 1024

# A document is a (name, value) tree: value is a str/int/bool/datetime, a Mapping of child
# name -> value (a list value repeats the child element), or None (element omitted).
Value = Any


def timestamp(epoch: float) -> str:
    """ISO-8601 with milliseconds, as S3 writes LastModified/Initiated in documents."""
    stamp = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def http_date(epoch: float) -> str:
    """RFC 7231 date, as S3 writes the Last-Modified header."""
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(parent: ET.Element, children: Mapping[str, Value]) -> None:
    for name, value in children.items():
        if value is None:
            continue
        items: Iterable[Value] = value if isinstance(value, list) else [value]
        for item in items:
            el = ET.SubElement(parent, name)
            if isinstance(item, Mapping):
                _fill(el, item)
            else:
                el.text = _scalar(item)


def document(root: str, children: Mapping[str, Value], *, namespace: bool = True) -> bytes:
    el = ET.Element(root, {"xmlns": NS} if namespace else {})
    _fill(el, children)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(el, encoding="utf-8")


def text_document(root: str, text: str | None) -> bytes:
    """A document whose root holds only text (GetBucketLocation's LocationConstraint)."""
    el = ET.Element(root, {"xmlns": NS})
    el.text = text
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(el, encoding="utf-8")


def error_document(exc: errors.AWSError, *, resource: str, request_id: str,
                   extra: Mapping[str, str] | None = None) -> bytes:
    fields: dict[str, Value] = {"Code": exc.code, "Message": exc.message}
    fields.update(extra or {})
    fields.update({"Resource": resource, "RequestId": request_id})
    return document("Error", fields, namespace=False)


# -- request documents --------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(body: bytes, root: str) -> ET.Element:
    """Parse a request document whose root must be ``root`` (namespace optional); MalformedXML else."""
    if len(body) > MAX_REQUEST_XML or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise errors.MalformedXML()
    try:
        el = ET.fromstring(body)  # noqa: S314 - DOCTYPE/ENTITY refused above, size capped
    except ET.ParseError as exc:
        raise errors.MalformedXML() from exc
    if _local(el.tag) != root:
        raise errors.MalformedXML()
    return el


def children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def child_text(el: ET.Element, name: str) -> str | None:
    found = children(el, name)
    return (found[0].text or "") if found else None


def parse_tagging(body: bytes) -> list[dict[str, str]]:
    """``<Tagging><TagSet><Tag><Key/><Value/></Tag>...`` -> [{"Key", "Value"}], validated."""
    root = parse(body, "Tagging")
    sets = children(root, "TagSet")
    if len(sets) != 1:
        raise errors.MalformedXML()
    tags = []
    for tag in children(sets[0], "Tag"):
        key, value = child_text(tag, "Key"), child_text(tag, "Value")
        if key is None or value is None:
            raise errors.MalformedXML()
        tags.append({"Key": key, "Value": value})
    return tags
