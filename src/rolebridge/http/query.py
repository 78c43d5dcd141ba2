"""AWS Query protocol, server side: form decoding, then flat params -> the operation's input.

botocore only has the client half of this protocol (``botocore.serialize.QuerySerializer``
turns an input dict into ``Tags.member.1.Key=...``); nothing in it parses such a request back,
nor checks the model's constraints the way the service does (botocore's ``ParamValidator``
checks types for the client and raises Python exceptions, not AWS's batched text). So the
inverse of ``QuerySerializer`` and the service-side constraint checks are written here, driven
by the same botocore shapes so that every operation gets them for free.

AWS's wording, as observed (aws-semantics.md §1.2, §2.2):
- ``1 validation error detected: Value 'x' at 'roleSessionName' failed to satisfy constraint:
  Member must satisfy regular expression pattern: [\\w+=,.@-]*``; member paths are the
  camelCase member names, nested as ``tags.1.member.key``;
- constraints of a scalar list member are reported once, at the list, without the value:
  ``Value at 'clientIDList' failed to satisfy constraint: Member must satisfy constraint:
  [Member must have length less than or equal to 255, Member must have length greater than
  or equal to 1]``;
- a required member not sent: ``Value null at 'roleName' failed to satisfy constraint: Member
  must not be null`` (Coral's text; ValidationError, not MissingParameter);
- problems are batched, ordered by member path.
Inferred (no AWS capture found): the text for a value that is not of the member's type
("Member must be of type integer"), and refusing repeated keys with MalformedQueryString.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
import sys
import unicodedata
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.model

from rolebridge import errors
from rolebridge.errors import NULL, Problem
from rolebridge.http.models import operation_model

# Largest accepted query string + body. The biggest legitimate inputs are policy documents
# (131,072 characters, up to 12 bytes each once percent-encoded as UTF-8) and web identity
# tokens (20,000). The ASGI app must stop reading the body at this size too.
MAX_QUERY_BYTES = 2 * 1024 * 1024
# More fields than any IAM/STS call needs (50 tags = 100 fields).
MAX_FIELDS = 1000

_ECHO_MAX = 256
_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_INT_RE = re.compile(r"[+-]?[0-9]+")


def parse_query(body: bytes, query_string: bytes = b"") -> dict[str, str]:
    """Decode the query string and the form body into one flat ``{name: value}`` dict.

    Raises only ``MalformedQueryString``: for more than ``MAX_QUERY_BYTES``, more than
    ``MAX_FIELDS`` fields, bytes that are not UTF-8 (raw or percent-encoded), or a name given
    twice (in one part or across both): an ambiguous request is refused, not guessed at.
    """
    if len(body) + len(query_string) > MAX_QUERY_BYTES:
        raise errors.MalformedQueryString(f"The request is larger than {MAX_QUERY_BYTES} bytes.")
    flat: dict[str, str] = {}
    for part in (query_string, body):
        if not part:
            continue
        try:
            pairs = form_pairs(part.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise errors.MalformedQueryString("The query string is not valid UTF-8.") from exc
        except ValueError as exc:  # max_num_fields exceeded
            raise errors.MalformedQueryString(f"More than {MAX_FIELDS} query parameters.") from exc
        for name, value in pairs:
            if name in flat:
                raise errors.MalformedQueryString(f"Parameter {name} is given more than once.")
            flat[name] = value
        if len(flat) > MAX_FIELDS:
            raise errors.MalformedQueryString(f"More than {MAX_FIELDS} query parameters.")
    return flat


# urllib.parse's own table: two hex digits (either case) -> the byte
_HEX_BYTE = {(a + b).encode(): bytes.fromhex(a + b) for a in "0123456789ABCDEFabcdef" for b in "0123456789ABCDEFabcdef"}


def _unquote(component: str) -> str:
    """``urllib.parse.unquote(component.replace("+", " "), errors="strict")``.

    Most components (a token, a name) carry no escapes; an ASCII one that does (an ARN's ``%3A``)
    is unquoted here by urllib's own algorithm without its regular-expression split, which made it
    the costliest step of decoding a call; anything else goes to urllib.
    """
    if "%" not in component:
        return component.replace("+", " ") if "+" in component else component
    if not component.isascii():
        return urllib.parse.unquote(component.replace("+", " "), encoding="utf-8", errors="strict")
    first, *rest = component.replace("+", " ").encode("ascii").split(b"%")
    out = [first]
    for item in rest:
        byte = _HEX_BYTE.get(item[:2])
        out.append(byte + item[2:] if byte is not None else b"%" + item)
    return b"".join(out).decode("utf-8", "strict")


def form_pairs(text: str) -> list[tuple[str, str]]:
    """``urllib.parse.parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)``,
    without its per-component unquoting when a component has nothing to unquote (a 1 KB token was
    most of a call's decoding time). A property test holds the two to the same answers."""
    if 1 + text.count("&") > MAX_FIELDS:
        raise ValueError("Max number of fields exceeded")
    pairs = []
    for name_value in text.split("&"):
        if not name_value:
            continue
        name, sep, value = name_value.partition("=")
        pairs.append((_unquote(name), _unquote(value) if sep else ""))
    return pairs


# -- flat params -> input dict ------------------------------------------------------------


@dataclass
class _Node:
    """One dotted-name level of the flat params: ``Tags.member.1.Key`` is four levels."""

    value: str | None = None
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(flat: Mapping[str, str]) -> _Node:
    root = _Node()
    for name, value in flat.items():
        node = root
        for part in name.split("."):
            node = node.children.setdefault(part, _Node())
        node.value = value
    return root


def _camel(name: str) -> str:
    """AWS reports members by their camelCase name (``RoleSessionName`` -> ``roleSessionName``)."""
    return name[:1].lower() + name[1:]


def _java_len(value: str) -> int:
    """String length as the service counts it (UTF-16 code units, as Java's ``length()``)."""
    return len(value.encode("utf-16-le")) // 2


@functools.cache
def _category_class(category: str) -> str:
    """The ``[...]``-body of code-point ranges in Unicode category ``category`` (``L``, ``N``...)."""
    ranges: list[str] = []
    start = prev = -2
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp)).startswith(category):
            if cp != prev + 1:
                if start >= 0:
                    ranges.append(f"\\U{start:08x}-\\U{prev:08x}")
                start = cp
            prev = cp
    ranges.append(f"\\U{start:08x}-\\U{prev:08x}")
    return "".join(ranges)


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    """A model pattern (a Java regex) as a Python one.

    Java's ``\\w``/``\\d`` are ASCII-only (so ``re.ASCII``), ``matches()`` is ``fullmatch``, and
    ``\\p{L}``-style categories (tag keys and values) are expanded to code-point ranges since
    ``re`` lacks them.
    """
    translated = re.sub(r"\\p\{(\w+)\}", lambda m: _category_class(m.group(1)), pattern)
    return re.compile(translated, re.ASCII)


def _string_constraints(shape: botocore.model.Shape) -> list[tuple[str, Any]]:
    """(kind, rule) pairs of a string shape, in the order AWS lists them."""
    meta = shape.metadata
    rules: list[tuple[str, Any]] = []
    if "max" in meta:
        rules.append(("max", meta["max"]))
    if "min" in meta:
        rules.append(("min", meta["min"]))
    if "pattern" in meta:
        rules.append(("pattern", meta["pattern"]))
    return rules


def _rule_text(kind: str, rule: Any, *, noun: str = "length") -> str:
    if kind == "max":
        return f"Member must have {noun} less than or equal to {rule}"
    if kind == "min":
        return f"Member must have {noun} greater than or equal to {rule}"
    if kind == "pattern":
        return f"Member must satisfy regular expression pattern: {rule}"
    return f"Member must satisfy enum value set: [{', '.join(rule)}]"


def _string_failures(shape: botocore.model.Shape, value: str) -> list[str]:
    """Failed constraints of a string: enum, then pattern, then length (AWS's order)."""
    failed = []
    enum = getattr(shape, "enum", None) or []
    if enum and value not in enum:
        failed.append(_rule_text("enum", enum))
    meta = shape.metadata
    if "pattern" in meta and not _pattern(meta["pattern"]).fullmatch(value):
        failed.append(_rule_text("pattern", meta["pattern"]))
    n = _java_len(value)
    if "max" in meta and n > meta["max"]:
        failed.append(_rule_text("max", meta["max"]))
    if "min" in meta and n < meta["min"]:
        failed.append(_rule_text("min", meta["min"]))
    return failed


class _Decoder:
    """Walks one input shape over the params tree, collecting values and problems."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, value: str | None, path: str, constraint: str, shape: botocore.model.Shape) -> None:
        # Sensitive members (tokens, secrets) are never echoed back; nor are very long values
        # (AWS leaves out a 300-character Url, yet echoes a 90-character RoleName; inferred cut).
        shown = None if shape.metadata.get("sensitive") or (value and len(value) > _ECHO_MAX) else value
        self.problems.append((shown, path, constraint))

    def structure(self, shape: botocore.model.StructureShape, node: _Node, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        required = set(shape.required_members)
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            mpath = f"{path}.{_camel(name)}" if path else _camel(name)
            child = node.children.get(wire)
            value = _ABSENT if child is None else self.value(member, child, mpath)
            if value is _ABSENT:
                if name in required:
                    self.problems.append((NULL, mpath, "Member must not be null"))
                continue
            out[name] = value
        return out

    def value(self, shape: botocore.model.Shape, node: _Node, path: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, botocore.model.StructureShape)
            return self.structure(shape, node, path)
        if kind == "list":
            assert isinstance(shape, botocore.model.ListShape)
            return self.list(shape, node, path)
        if kind == "map":
            assert isinstance(shape, botocore.model.MapShape)
            return self.map(shape, node, path)
        if node.value is None:
            return _ABSENT
        return self.scalar(shape, node.value, path)

    def _items(self, node: _Node) -> list[_Node]:
        indexed = [(int(k), child) for k, child in node.children.items() if k.isdigit() and k != "0"]
        return [child for _, child in sorted(indexed, key=lambda kc: kc[0])]

    def _count(self, shape: botocore.model.Shape, count: int, path: str) -> None:
        meta = shape.metadata
        if "max" in meta and count > meta["max"]:
            self.problems.append((None, path, _rule_text("max", meta["max"])))
        if "min" in meta and count < meta["min"]:
            self.problems.append((None, path, _rule_text("min", meta["min"])))

    def list(self, shape: botocore.model.ListShape, node: _Node, path: str) -> Any:
        member = shape.member
        if shape.serialization.get("flattened"):
            container: _Node | None = node
        else:
            container = node.children.get(member.serialization.get("name", "member"))
        if container is None or not container.children:
            # ``Name=`` is how QuerySerializer sends an empty list.
            if node.value is None and container is None:
                return _ABSENT
            self._count(shape, 0, path)
            return []
        items: list[Any] = []
        bad_scalar = False
        for i, child in enumerate(self._items(container), start=1):
            if member.type_name in ("structure", "list", "map"):
                items.append(self.value(member, child, f"{path}.{i}.member"))
                continue
            if child.value is None:
                continue
            before = len(self.problems)
            value = self.scalar(member, child.value, path, report_constraints=False)
            bad_scalar |= member.type_name == "string" and bool(_string_failures(member, child.value))
            if len(self.problems) == before:
                items.append(value)
        if bad_scalar:
            rules = ", ".join(_rule_text(k, r) for k, r in _string_constraints(member))
            self.problems.append((None, path, f"Member must satisfy constraint: [{rules}]"))
        self._count(shape, len(items), path)
        return items

    def map(self, shape: botocore.model.MapShape, node: _Node, path: str) -> Any:
        flattened = shape.serialization.get("flattened")
        container = node if flattened else node.children.get("entry")
        if container is None or not container.children:
            if node.value is None and container is None:
                return _ABSENT
            self._count(shape, 0, path)
            return {}
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out: dict[str, Any] = {}
        for i, entry in enumerate(self._items(container), start=1):
            k_node = entry.children.get(key_name)
            v_node = entry.children.get(value_name)
            if k_node is None or k_node.value is None:
                self.problems.append((NULL, f"{path}.{i}.key", "Member must not be null"))
                continue
            key = self.scalar(shape.key, k_node.value, f"{path}.{i}.key")
            value = _ABSENT if v_node is None else self.value(shape.value, v_node, f"{path}.{i}.value")
            if value is _ABSENT:
                self.problems.append((NULL, f"{path}.{i}.value", "Member must not be null"))
                continue
            out[key] = value
        self._count(shape, len(out), path)
        return out

    def scalar(
        self, shape: botocore.model.Shape, raw: str, path: str, *, report_constraints: bool = True
    ) -> Any:
        kind = shape.type_name
        if kind == "string":
            if report_constraints:
                for constraint in _string_failures(shape, raw):
                    self.problem(raw, path, constraint, shape)
            return raw
        if kind in ("integer", "long"):
            low, high = _INT_RANGES[kind]
            if not _INT_RE.fullmatch(raw) or not low <= int(raw) <= high:
                self.problem(raw, path, f"Member must be of type {kind}", shape)
                return None
            number = int(raw)
            meta = shape.metadata
            if report_constraints and "min" in meta and number < meta["min"]:
                self.problem(raw, path, _rule_text("min", meta["min"], noun="value"), shape)
            if report_constraints and "max" in meta and number > meta["max"]:
                self.problem(raw, path, _rule_text("max", meta["max"], noun="value"), shape)
            return number
        if kind in ("float", "double"):
            try:
                return float(raw)
            except ValueError:
                self.problem(raw, path, f"Member must be of type {kind}", shape)
                return None
        if kind == "boolean":
            lowered = raw.lower()
            if lowered not in ("true", "false"):
                self.problem(raw, path, "Member must be of type boolean", shape)
                return None
            return lowered == "true"
        if kind == "timestamp":
            try:
                stamp = dt.datetime.fromisoformat(raw)
            except ValueError:
                self.problem(raw, path, "Member must be of type timestamp", shape)
                return None
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
        if kind == "blob":
            try:
                return base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                self.problem(raw, path, "Member must be of type blob", shape)
                return None
        return raw


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


_ABSENT: Any = _Absent()


_Scalar = tuple[str, str, botocore.model.Shape, str, bool]  # name, wire name, shape, path, required


@functools.cache
def _flat_plan(service: str, action: str) -> tuple[botocore.model.StructureShape, tuple[_Scalar, ...],
                                                   frozenset[str], tuple[str, ...]] | None:
    """The input shape, its scalar members in model order, the wire names of the others, and the
    paths of those others that are required."""
    shape = operation_model(service, action).input_shape
    if shape is None:
        return None
    required = set(shape.required_members)
    scalars: list[_Scalar] = []
    nested: set[str] = set()
    nested_required: list[str] = []
    for name, member in shape.members.items():
        wire = member.serialization.get("name", name)
        if member.type_name in ("structure", "list", "map"):
            nested.add(wire)
            if name in required:
                nested_required.append(_camel(name))
        else:
            scalars.append((name, wire, member, _camel(name), name in required))
    return shape, tuple(scalars), frozenset(nested), tuple(nested_required)


def decode_params(service: str, action: str, flat: Mapping[str, str]) -> dict[str, Any]:
    """Flat query params -> the operation's input dict, with botocore's (PascalCase) member names.

    The inverse of botocore's ``QuerySerializer``: ``ClientIDList.member.1``, ``Tags.member.1.Key``,
    maps as ``Name.entry.1.key``/``.value``, ``Name=`` for an empty list; integers, booleans,
    timestamps (ISO-8601) and blobs (base64) converted. Names the model does not know (``Action``,
    ``Version``, ``X-Amz-*``) are ignored, as AWS ignores them. All constraint failures of the
    request are raised together as one ``ValidationError`` in AWS's words. An action the service
    does not have is ``InvalidAction``.
    """
    plan = _flat_plan(service, action)
    if plan is None:
        return {}
    shape, scalars, nested, nested_required = plan
    decoder = _Decoder()
    if nested.isdisjoint(flat) and not any("." in name for name in flat):
        # Only top-level scalars given (most calls: every STS call): the same checks as the tree
        # walk below, member by member, without building the tree.
        result: dict[str, Any] = {}
        for name, wire, member, path, required in scalars:
            raw = flat.get(wire)
            if raw is None:
                if required:
                    decoder.problems.append((NULL, path, "Member must not be null"))
                continue
            result[name] = decoder.scalar(member, raw, path)
        for path in nested_required:  # a required list, map or structure, absent by the test above
            decoder.problems.append((NULL, path, "Member must not be null"))
    else:
        result = decoder.structure(shape, _tree(flat), "")
    if decoder.problems:
        problems = sorted(decoder.problems, key=lambda p: p[1])  # stable: per-member order kept
        raise errors.validation_error(problems)
    return result
