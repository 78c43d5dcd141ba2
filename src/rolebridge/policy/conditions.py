"""Condition operators, compiled once into closures ``check(ctx) -> bool``.

The semantics follow aws-semantics.md 4.2-4.3 (IAM User Guide, condition operators and
multivalued context keys):

* several values for one key are OR-ed; under a negated operator (``StringNotEquals``,
  ``NotIpAddress``, ...) they are NOR-ed: the request value must match none of them;
* an absent key (or an empty list) makes a positive operator false and a negated one true,
  ``...IfExists`` makes it true, ``Null`` tests exactly that, ``ForAllValues`` is true and
  ``ForAnyValue`` false;
* without a set prefix a multivalued request key matches when any value matches (negated: none);
  ``ForAnyValue`` wants one request value that satisfies the operator, ``ForAllValues`` all of them;
* a request value of the wrong type (``NumericEquals`` on ``"abc"``) fails the condition whatever
  the operator (fail closed), and the explanation says "type_mismatch".

Explanations are computed only on demand (``explain``), so the hot path stays a few closures.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rolebridge.policy.hints import condition_hints
from rolebridge.policy.patterns import Context, Part, glob_matcher, has_vars, parse_template, resolve_literal

Test = Callable[[str, Context], bool]


class TypeMismatch(Exception):
    """A request value that the operator cannot interpret (not a number, date, IP, ...)."""


class BadConditionValue(ValueError):
    """A policy value the operator cannot use; the validator reports it."""


# name -> (family, negated)
BASE_OPERATORS: dict[str, tuple[str, bool]] = {
    "StringEquals": ("string", False),
    "StringNotEquals": ("string", True),
    "StringEqualsIgnoreCase": ("string_ci", False),
    "StringNotEqualsIgnoreCase": ("string_ci", True),
    "StringLike": ("string_like", False),
    "StringNotLike": ("string_like", True),
    "NumericEquals": ("numeric_eq", False),
    "NumericNotEquals": ("numeric_eq", True),
    "NumericLessThan": ("numeric_lt", False),
    "NumericLessThanEquals": ("numeric_le", False),
    "NumericGreaterThan": ("numeric_gt", False),
    "NumericGreaterThanEquals": ("numeric_ge", False),
    "DateEquals": ("date_eq", False),
    "DateNotEquals": ("date_eq", True),
    "DateLessThan": ("date_lt", False),
    "DateLessThanEquals": ("date_le", False),
    "DateGreaterThan": ("date_gt", False),
    "DateGreaterThanEquals": ("date_ge", False),
    "Bool": ("bool", False),
    "BinaryEquals": ("binary", False),
    "IpAddress": ("ip", False),
    "NotIpAddress": ("ip", True),
    "ArnEquals": ("arn", False),
    "ArnLike": ("arn", False),
    "ArnNotEquals": ("arn", True),
    "ArnNotLike": ("arn", True),
    "Null": ("null", False),
}
_VARIABLE_FAMILIES = {"string", "string_ci", "string_like", "arn"}
SET_PREFIXES = ("ForAllValues:", "ForAnyValue:")


@dataclass(frozen=True)
class OperatorSpec:
    text: str
    base: str
    family: str
    negated: bool
    set_op: str | None  # "ForAllValues" | "ForAnyValue" | None
    if_exists: bool


def parse_operator(text: str) -> OperatorSpec | None:
    """Split ``ForAnyValue:StringLikeIfExists`` into its parts; None if not an IAM operator.
    Operator names are matched exactly (AWS treats them case-sensitively)."""
    set_op = None
    rest = text
    for prefix in SET_PREFIXES:
        if rest.startswith(prefix):
            set_op = prefix[:-1]
            rest = rest[len(prefix) :]
            break
    if_exists = False
    if rest.endswith("IfExists") and rest != "IfExists":
        if_exists = True
        rest = rest[: -len("IfExists")]
    spec = BASE_OPERATORS.get(rest)
    if spec is None:
        return None
    if rest == "Null" and (if_exists or set_op):
        return None
    return OperatorSpec(text, rest, spec[0], spec[1], set_op, if_exists)


def policy_value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


# -- value parsers -------------------------------------------------------------------------
_EPOCH = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


def parse_number(s: str) -> float:
    try:
        n = float(s)
    except ValueError:
        raise TypeMismatch(s) from None
    if math.isnan(n) or math.isinf(n):
        raise TypeMismatch(s)
    return n


def parse_date(s: str) -> float:
    """W3C ISO 8601 (``2026-01-01``, ``2026-01-01T00:00:00Z``, with offset) or epoch seconds."""
    if _EPOCH.match(s):
        return float(s)
    text = s.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise TypeMismatch(s) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(s.strip())
    except ValueError:
        raise TypeMismatch(s) from None


def parse_binary(s: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise TypeMismatch(s) from None


# -- per-family "does request value v match any policy value" tests -------------------------
def _build_test(family: str, values: Sequence[str], variables: bool) -> Test:
    if family in _VARIABLE_FAMILIES:
        templates: list[tuple[Part, ...]] = [parse_template(v, variables=variables) for v in values]
        dynamic = any(has_vars(t) for t in templates)
    else:
        templates, dynamic = [], False

    if family == "string":
        if not dynamic:
            fixed = frozenset(resolve_literal(t, {}) for t in templates)
            return lambda v, _ctx: v in fixed
        return lambda v, ctx: any(resolve_literal(t, ctx) == v for t in templates)
    if family == "string_ci":
        if not dynamic:
            fixed_l = frozenset((resolve_literal(t, {}) or "").lower() for t in templates)
            return lambda v, _ctx: v.lower() in fixed_l

        def ci(v: str, ctx: Context) -> bool:
            vl = v.lower()
            for t in templates:
                r = resolve_literal(t, ctx)
                if r is not None and r.lower() == vl:
                    return True
            return False

        return ci
    if family == "string_like":
        ms = [glob_matcher(t) for t in templates]
        if len(ms) == 1:
            return ms[0]
        return lambda v, ctx: any(m(v, ctx) for m in ms)
    if family == "arn":
        ms = [glob_matcher(t, arn=True) for t in templates]

        def arn(v: str, ctx: Context) -> bool:
            if v.count(":") < 5:
                return False
            return any(m(v, ctx) for m in ms)

        return arn
    if family.startswith("numeric_"):
        try:
            nums = [parse_number(v) for v in values]
        except TypeMismatch as exc:
            raise BadConditionValue(f"not a number: {exc}") from None
        return _ordered(family[8:], nums, parse_number)
    if family.startswith("date_"):
        try:
            dates = [parse_date(v) for v in values]
        except TypeMismatch as exc:
            raise BadConditionValue(f"not an ISO 8601 date or epoch seconds: {exc}") from None
        return _ordered(family[5:], dates, parse_date)
    if family == "bool":
        bools = frozenset(v.lower() for v in values)

        def boolean(v: str, _ctx: Context) -> bool:
            vl = v.lower()
            if vl not in ("true", "false"):
                raise TypeMismatch(v)
            return vl in bools

        return boolean
    if family == "binary":
        try:
            blobs = frozenset(parse_binary(v) for v in values)
        except TypeMismatch as exc:
            raise BadConditionValue(f"not base64: {exc}") from None
        return lambda v, _ctx: parse_binary(v) in blobs
    if family == "ip":
        try:
            nets = [ipaddress.ip_network(v.strip(), strict=False) for v in values]
        except ValueError as exc:
            raise BadConditionValue(f"not an IP address or CIDR: {exc}") from None

        def ip(v: str, _ctx: Context) -> bool:
            addr = parse_ip(v)
            return any(addr.version == n.version and addr in n for n in nets)

        return ip
    raise AssertionError(family)


def _ordered(cmp: str, refs: list[float], parse: Callable[[str], float]) -> Test:
    if cmp == "eq":
        return lambda v, _ctx: parse(v) in refs
    if cmp == "lt":
        return lambda v, _ctx: any(parse(v) < r for r in refs)
    if cmp == "le":
        return lambda v, _ctx: any(parse(v) <= r for r in refs)
    if cmp == "gt":
        return lambda v, _ctx: any(parse(v) > r for r in refs)
    if cmp == "ge":
        return lambda v, _ctx: any(parse(v) >= r for r in refs)
    raise AssertionError(cmp)


@dataclass
class CompiledCondition:
    """One ``operator -> key -> values`` triple of a Condition block."""

    spec: OperatorSpec
    key: str
    values: tuple[str, ...]
    check: Callable[[Context], bool] = field(repr=False)
    test: Test | None = field(default=None, repr=False)

    @property
    def key_l(self) -> str:
        return self.key.lower()

    def explain(self, ctx: Context) -> dict[str, Any]:
        """Why this condition holds or not, as data (for ``rolebridge explain`` and misses)."""
        seen = ctx.get(self.key_l)
        prefix, sep, claim = self.key.rpartition(":")
        info: dict[str, Any] = {
            "element": "Condition",
            "operator": self.spec.text,
            "base_operator": self.spec.base,
            "set_operator": self.spec.set_op,
            "if_exists": self.spec.if_exists,
            "negated": self.spec.negated,
            "key": self.key,
            "key_prefix": prefix if sep else None,
            "claim": claim if sep else None,
            "expected": list(self.values),
            "seen": None if seen is None else list(seen),
            "key_absent": seen is None,
            "result": self.check(ctx),
            "wildcards_in_values": self.spec.family not in ("string_like", "arn")
            and any("*" in v or "?" in v for v in self.values),
            "type_mismatch": False,
        }
        if seen is not None and self.test is not None:
            try:
                for v in seen:
                    self.test(v, ctx)
            except TypeMismatch:
                info["type_mismatch"] = True
        if self.spec.family in _VARIABLE_FAMILIES:
            templates = [parse_template(v) for v in self.values]
            if any(has_vars(t) for t in templates):
                info["resolved_expected"] = [resolve_literal(t, ctx) for t in templates]
        info["hints"] = condition_hints(info, ctx)
        return info


def compile_condition(spec: OperatorSpec, key: str, raw_values: Sequence[Any], *, variables: bool) -> CompiledCondition:
    values = tuple(policy_value_text(v) for v in raw_values)
    key_l = key.lower()
    if spec.family == "null":
        wants_absent = frozenset(v.lower() == "true" for v in values)

        def null_check(ctx: Context) -> bool:
            return (key_l not in ctx) in wants_absent

        return CompiledCondition(spec, key, values, null_check)

    test = _build_test(spec.family, values, variables)
    negated = spec.negated
    set_op = spec.set_op
    if spec.if_exists or set_op == "ForAllValues":
        absent = True
    elif set_op == "ForAnyValue":
        absent = False
    else:
        absent = negated

    if set_op is None and not negated:

        def check(ctx: Context) -> bool:
            vals = ctx.get(key_l)
            if vals is None:
                return absent
            try:
                for v in vals:
                    if test(v, ctx):
                        return True
            except TypeMismatch:
                return False
            return False

    elif set_op is None:

        def check(ctx: Context) -> bool:
            vals = ctx.get(key_l)
            if vals is None:
                return absent
            try:
                return not any(test(v, ctx) for v in vals)
            except TypeMismatch:
                return False

    elif set_op == "ForAnyValue":

        def check(ctx: Context) -> bool:
            vals = ctx.get(key_l)
            if vals is None:
                return absent
            try:
                return any(test(v, ctx) != negated for v in vals)
            except TypeMismatch:
                return False

    else:

        def check(ctx: Context) -> bool:
            vals = ctx.get(key_l)
            if vals is None:
                return absent
            try:
                return all(test(v, ctx) != negated for v in vals)
            except TypeMismatch:
                return False

    return CompiledCondition(spec, key, values, check, test)
