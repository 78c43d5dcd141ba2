"""AWS Query protocol responses: results and errors as XML, built from botocore's output shapes.

botocore has only the client half: ``botocore.parsers.QueryParser`` reads these documents, but
nothing in botocore writes them. This module is that writer, walking the operation's output
shape so that every operation is serialized the same way, with ``xml.etree.ElementTree``
building elements (escaping by construction; no string templates).

Per-field quirks are data, in ``_FIELD_ENCODERS``: IAM sends policy documents URL-encoded
(botocore's ``json_decode_policies`` handler undoes it on the client, keyed by the
``policyDocumentType`` shape).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any

import botocore.model

from rolebridge import errors
from rolebridge.http.models import namespace, operation_model

# Shape name -> how its string values go on the wire.
_FIELD_ENCODERS: dict[str, Callable[[str], str]] = {
    "policyDocumentType": lambda doc: urllib.parse.quote(doc, safe=""),
}

# Characters XML 1.0 cannot carry at all; replaced so a response is always well-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _timestamp(value: Any) -> str:
    """ISO-8601 UTC to the second, as AWS writes them: ``2014-10-24T23:00:23Z``."""
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        stamp = dt.datetime.fromtimestamp(value, tz=dt.UTC)
    else:
        raise TypeError(f"timestamp expected, got {type(value).__name__}")
    return stamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scalar(shape: botocore.model.Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        if not isinstance(value, bool):
            raise TypeError(f"{shape.name}: bool expected, got {type(value).__name__}")
        return "true" if value else "false"
    if kind == "timestamp":
        return _timestamp(value)
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{shape.name}: int expected, got {type(value).__name__}")
        return str(value)
    if kind in ("float", "double"):
        return repr(float(value))
    if kind == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()
    text = str(value)
    encoder = _FIELD_ENCODERS.get(shape.name)
    return encoder(text) if encoder else text


def _add(parent: ET.Element, name: str, shape: botocore.model.Shape, value: Any) -> None:
    """Append ``value`` as element(s) named ``name`` under ``parent``, per ``shape``."""
    kind = shape.type_name
    if kind == "list":
        assert isinstance(shape, botocore.model.ListShape)
        member = shape.member
        if shape.serialization.get("flattened"):
            for item in value:
                _add(parent, member.serialization.get("name", name), member, item)
            return
        container = ET.SubElement(parent, name)
        for item in value:
            _add(container, member.serialization.get("name", "member"), member, item)
        return
    if kind == "map":
        assert isinstance(shape, botocore.model.MapShape)
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        flattened = shape.serialization.get("flattened")
        container = parent if flattened else ET.SubElement(parent, name)
        for key, item in value.items():
            entry = ET.SubElement(container, name if flattened else "entry")
            _add(entry, key_name, shape.key, key)
            _add(entry, value_name, shape.value, item)
        return
    element = ET.SubElement(parent, name)
    if kind == "structure":
        assert isinstance(shape, botocore.model.StructureShape)
        _members(element, shape, value)
        return
    element.text = _text(_scalar(shape, value))


def _members(element: ET.Element, shape: botocore.model.StructureShape, value: Mapping[str, Any]) -> None:
    unknown = set(value) - set(shape.members)
    if unknown:
        # A typo in a result key would silently drop a field the client needs: refuse instead.
        raise KeyError(f"{shape.name} has no member(s) {sorted(unknown)}")
    for name, member in shape.members.items():
        item = value.get(name)
        if item is None:
            continue
        _add(element, member.serialization.get("name", name), member, item)


def _document(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def serialize_result(service: str, action: str, result: Mapping[str, Any] | None, request_id: str) -> bytes:
    """``<ActionResponse xmlns=ns><ActionResult>...</ActionResult><ResponseMetadata>...``.

    ``result`` uses botocore's member names and Python values (str, int, bool, datetime, list,
    dict); ``None`` members are left out. Operations without an output shape get only
    ``ResponseMetadata``. A result key the output shape does not have is a programming error
    (``KeyError``), never silently dropped.
    """
    op = operation_model(service, action)
    root = ET.Element(f"{action}Response", {"xmlns": namespace(service)})
    shape = op.output_shape
    if shape is not None:
        wrapper = ET.SubElement(root, shape.serialization.get("resultWrapper", f"{action}Result"))
        _members(wrapper, shape, result or {})
    elif result:
        raise KeyError(f"{action} has no output, got {sorted(result)}")
    metadata = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(metadata, "RequestId").text = _text(request_id)
    return _document(root)


def serialize_error(service: str, error: errors.AWSError, request_id: str) -> bytes:
    """``<ErrorResponse xmlns=ns><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``.

    The shape AWS sends for query-protocol errors (``RequestId`` beside ``Error``, not inside
    ``ResponseMetadata``); the explanation never goes on the wire.
    """
    root = ET.Element("ErrorResponse", {"xmlns": namespace(service)})
    body = ET.SubElement(root, "Error")
    ET.SubElement(body, "Type").text = error.fault_type
    ET.SubElement(body, "Code").text = _text(error.code)
    ET.SubElement(body, "Message").text = _text(error.message or "")
    ET.SubElement(root, "RequestId").text = _text(request_id)
    return _document(root)
