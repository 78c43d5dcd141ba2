"""IAM wildcard matching and policy variables, compiled once into matchers.

IAM globs know only ``*`` (any run, possibly empty) and ``?`` (one character); everything else,
``[`` included, is literal (fnmatch would read ``[ab]`` as a class). ARN patterns are matched
component by component: ``*``/``?`` in the first five colon-separated components never cross a
colon, in the resource component they match anything (``/`` and ``:`` included). That is exactly a
single regex in which wildcards before the fifth colon are ``[^:]*``/``[^:]``.

Policy variables (``${aws:username}``, ``${key, 'default'}``) and the escapes ``${*}``, ``${?}``,
``${$}`` are parsed into a template; a template without variables compiles to a fixed matcher,
one with variables is resolved per request (the compiled regex is memoised by its text). A
variable with no value and no default makes the value match nothing (aws-semantics 4.5).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

Matcher = Callable[[str], bool]
Context = Mapping[str, tuple[str, ...]]

_ESCAPES = {"*": "*", "?": "?", "$": "$"}
_VAR = re.compile(r"\$\{([^}]*)\}")
_VAR_BODY = re.compile(r"^\s*([^,\s][^,]*?)\s*(?:,\s*'([^']*)'\s*)?$")


@dataclass(frozen=True)
class Var:
    """``${name}`` or ``${name, 'default'}``; ``name`` is lower-cased (names are case-insensitive)."""

    name: str
    default: str | None = None


@dataclass(frozen=True)
class Esc:
    """``${*}``, ``${?}`` or ``${$}``: the character itself, never a wildcard."""

    char: str


Part = str | Var | Esc


def parse_template(text: str, *, variables: bool = True) -> tuple[Part, ...]:
    """Split ``text`` into literal chunks, escapes and variables. With ``variables=False``
    (policy Version 2008-10-17 or absent) the whole text is literal."""
    if not variables or "${" not in text:
        return (text,)
    parts: list[Part] = []
    pos = 0
    for m in _VAR.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        body = m.group(1)
        if body in _ESCAPES:
            parts.append(Esc(_ESCAPES[body]))
        else:
            vm = _VAR_BODY.match(body)
            if vm is None:
                parts.append(m.group(0))  # not a variable: keep literally
            else:
                parts.append(Var(vm.group(1).lower(), vm.group(2)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


def has_vars(parts: tuple[Part, ...]) -> bool:
    return any(isinstance(p, Var) for p in parts)


def resolve_var(var: Var, ctx: Context) -> str | None:
    """A variable's value: only single-valued keys substitute; else the default, else None."""
    vals = ctx.get(var.name)
    if vals is not None and len(vals) == 1:
        return vals[0]
    return var.default


def resolve_literal(parts: tuple[Part, ...], ctx: Context) -> str | None:
    """The template as a plain string (for StringEquals & co.); None when a variable is missing."""
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, Esc):
            out.append(p.char)
        else:
            v = resolve_var(p, ctx)
            if v is None:
                return None
            out.append(v)
    return "".join(out)


def _glob_regex_text(parts: tuple[Part, ...], ctx: Context | None, *, arn: bool, colons: int = 0) -> str:
    """Regex text for a template; ``colons`` says how many ARN separators precede it. Variables
    are resolved from ``ctx``; callers resolve missing ones first (an absent value raises)."""
    out: list[str] = []
    for p in parts:
        if isinstance(p, str):
            for ch in p:
                if ch == "*":
                    out.append("[^:]*" if arn and colons < 5 else ".*")
                elif ch == "?":
                    out.append("[^:]" if arn and colons < 5 else ".")
                else:
                    if ch == ":":
                        colons += 1
                    out.append(re.escape(ch))
        elif isinstance(p, Esc):
            out.append(re.escape(p.char))
        else:
            v = None if ctx is None else resolve_var(p, ctx)
            if v is None:
                raise LookupError(p.name)
            out.append(re.escape(v))
    return "".join(out)


@lru_cache(maxsize=8192)
def _compile(text: str, flags: int) -> Callable[[str], re.Match[str] | None]:
    return re.compile(text, flags).fullmatch


def _literal_count_colons(parts: tuple[Part, ...]) -> int:
    return sum(p.count(":") for p in parts if isinstance(p, str))


def _static_matcher(parts: tuple[Part, ...], *, arn: bool, ignore_case: bool) -> Matcher:
    """A matcher for a template without variables, with fast paths for the common shapes."""
    if ignore_case:
        parts = tuple(p.lower() if isinstance(p, str) else p for p in parts)
    if len(parts) == 1 and isinstance(parts[0], str):
        pat = parts[0]
        if "*" not in pat and "?" not in pat:
            return pat.__eq__
        if pat == "*" and not arn:
            return _true
        body = pat[:-1]
        if pat.endswith("*") and "*" not in body and "?" not in body and (not arn or body.count(":") >= 5):
            return lambda s, _p=body: s.startswith(_p)
        parts = (pat,)
    fm = _compile(_glob_regex_text(parts, None, arn=arn), re.S)
    return lambda s: fm(s) is not None


def _true(_s: str) -> bool:
    return True


def glob_matcher(
    parts: tuple[Part, ...], *, arn: bool = False, ignore_case: bool = False
) -> Callable[[str, Context], bool]:
    """Compile a (possibly variable) glob template into ``match(value, ctx)``.

    ``arn=True`` applies ARN component rules when the pattern has all six components; a pattern
    with fewer colons (e.g. ``"*"``) is matched as a plain glob. With ``ignore_case`` the caller
    must pass lower-cased values.
    """
    if arn and _literal_count_colons(parts) < 5:
        arn = False
    if not has_vars(parts):
        m = _static_matcher(parts, arn=arn, ignore_case=ignore_case)
        return lambda s, _ctx, _m=m: _m(s)

    # Translate the literal parts once; per request only the variables' values are escaped in.
    pieces: list[str | Var] = []
    colons = 0
    for p in parts:
        if isinstance(p, Var):
            pieces.append(p)
            continue
        text = _glob_regex_text((p,), None, arn=arn, colons=colons)
        if isinstance(p, str):
            colons += p.count(":")
        pieces.append(text.lower() if ignore_case else text)

    def match(s: str, ctx: Context) -> bool:
        out = []
        for pc in pieces:
            if type(pc) is str:
                out.append(pc)
            else:
                v = resolve_var(pc, ctx)  # type: ignore[arg-type]  # a Var here
                if v is None:
                    return False
                out.append(re.escape(v.lower() if ignore_case else v))
        return _compile("".join(out), re.S)(s) is not None

    return match


def glob(pattern: str, value: str) -> bool:
    """Plain IAM glob match (no variables), for tests and one-off checks."""
    return _static_matcher((pattern,), arn=False, ignore_case=False)(value)
