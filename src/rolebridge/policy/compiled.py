"""A validated document compiled for the hot path: matchers are closures built once, statements are
indexed by action service prefix, and compiled policies are cached by content.

The cache key is the document text (or its canonical JSON for a mapping), the kind and the name,
so STS can call ``compile_policy(role.trust_policy, kind="trust")`` on every request for free.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rolebridge.errors import AWSError, LimitExceeded, MalformedPolicyDocument
from rolebridge.policy import document as doc_rules
from rolebridge.policy.conditions import CompiledCondition, compile_condition, parse_operator
from rolebridge.policy.model import PolicyKind, PolicyProblem
from rolebridge.policy.patterns import Context, glob_matcher, parse_template
from rolebridge.policy.principals import PrincipalMatcher, as_list

ResourceMatch = Callable[[str, Context], bool]


@dataclass(frozen=True)
class ActionMatcher:
    """Actions compare case-insensitively: exact names in a set, wildcard patterns as globs."""

    exact: frozenset[str]
    globs: tuple[Callable[[str, Context], bool], ...]
    patterns: tuple[str, ...]

    @classmethod
    def compile(cls, patterns: list[str]) -> ActionMatcher:
        exact = frozenset(p.lower() for p in patterns if "*" not in p and "?" not in p)
        globs = tuple(glob_matcher((p.lower(),)) for p in patterns if "*" in p or "?" in p)
        return cls(exact, globs, tuple(patterns))

    def match(self, action_l: str) -> bool:
        if action_l in self.exact:
            return True
        for g in self.globs:
            if g(action_l, {}):
                return True
        return False


@dataclass(frozen=True)
class ResourceMatcher:
    patterns: tuple[str, ...]
    matchers: tuple[ResourceMatch, ...]
    any: bool

    @classmethod
    def compile(cls, patterns: list[str], variables: bool) -> ResourceMatcher:
        if "*" in patterns:
            return cls(tuple(patterns), (), True)
        ms = tuple(glob_matcher(parse_template(p, variables=variables), arn=True) for p in patterns)
        return cls(tuple(patterns), ms, False)

    def match(self, resource: str, ctx: Context) -> bool:
        if self.any:
            return True
        for m in self.matchers:
            if m(resource, ctx):
                return True
        return False


@dataclass(eq=False)  # identity equality/hash: the service index puts statements in sets
class CompiledStatement:
    index: int
    sid: str | None
    deny: bool
    principal: PrincipalMatcher | None
    not_principal: bool
    actions: ActionMatcher
    not_action: bool
    resources: ResourceMatcher | None
    not_resource: bool
    conditions: tuple[CompiledCondition, ...]
    services: frozenset[str] | None  # None: may match any service (wildcard vendor, NotAction)
    raw: Mapping[str, Any] = field(repr=False)
    label: str = ""  # Sid, else the index: how reasons name the statement
    effect: str = ""

    def __post_init__(self) -> None:
        self.label = self.sid if self.sid else str(self.index)
        self.effect = "Deny" if self.deny else "Allow"


_SERVICE = re.compile(r"^([a-z0-9\-.]+):")


def _services(patterns: list[str]) -> frozenset[str] | None:
    out = set()
    for p in patterns:
        m = _SERVICE.match(p.lower())
        if m is None:
            return None
        out.add(m.group(1))
    return frozenset(out)


def _compile_statement(i: int, s: Mapping[str, Any], variables: bool) -> CompiledStatement:
    principal = None
    not_principal = False
    if "Principal" in s:
        principal = PrincipalMatcher.compile(s["Principal"])
    elif "NotPrincipal" in s:
        principal = PrincipalMatcher.compile(s["NotPrincipal"])
        not_principal = True
    not_action = "NotAction" in s
    action_patterns = [str(a) for a in as_list(s.get("NotAction") if not_action else s.get("Action"))]
    not_resource = "NotResource" in s
    resources = None
    if "Resource" in s or not_resource:
        resources = ResourceMatcher.compile(
            [str(r) for r in as_list(s["NotResource"] if not_resource else s["Resource"])], variables
        )
    conds: list[CompiledCondition] = []
    for op, block in (s.get("Condition") or {}).items():
        spec = parse_operator(op)
        if spec is None:  # validated: only an empty block can get here
            continue
        for key, v in block.items():
            conds.append(compile_condition(spec, key, as_list(v), variables=variables))
    return CompiledStatement(
        index=i,
        sid=s.get("Sid") or None,
        deny=s["Effect"] == "Deny",
        principal=principal,
        not_principal=not_principal,
        actions=ActionMatcher.compile(action_patterns),
        not_action=not_action,
        resources=resources,
        not_resource=not_resource,
        conditions=tuple(conds),
        services=None if not_action else _services(action_patterns),
        raw=s,
    )


@dataclass(eq=False)  # identity hash: policy tuples key the merged index in evaluation
class CompiledPolicy:
    """A compiled, immutable-by-convention policy. ``statements`` keep document order."""

    kind: PolicyKind
    name: str | None
    version: str | None
    statements: tuple[CompiledStatement, ...]
    document: Mapping[str, Any] = field(repr=False)
    _by_service: dict[str, tuple[CompiledStatement, ...]] = field(default_factory=dict, repr=False)
    _wild: tuple[CompiledStatement, ...] = field(default=(), repr=False)
    label: str = ""  # the name, else the kind: how reasons name the policy

    def __post_init__(self) -> None:
        self.label = self.name or self.kind.value
        self._wild = tuple(s for s in self.statements if s.services is None)
        services: dict[str, list[CompiledStatement]] = {}
        for s in self.statements:
            for svc in s.services or ():
                services.setdefault(svc, []).append(s)
        self._by_service = {
            svc: tuple(sorted(set(lst) | set(self._wild), key=lambda st: st.index)) for svc, lst in services.items()
        }

    def candidates(self, action_l: str) -> tuple[CompiledStatement, ...]:
        """Statements that can possibly match this (lower-cased) action, in document order."""
        svc = action_l.partition(":")[0]
        return self._by_service.get(svc, self._wild)

    @property
    def variables(self) -> bool:
        return self.version == "2012-10-17"


def _problem_error(p: PolicyProblem) -> AWSError:
    cls = LimitExceeded if p.code == "LimitExceeded" else MalformedPolicyDocument
    return cls(p.message, explanation=p.to_dict())


def _canonical(document: str | bytes | Mapping[str, Any]) -> str | bytes:
    if isinstance(document, (str, bytes)):
        return document
    try:
        return json.dumps(document, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError) as exc:  # keys that are not strings, cycles
        raise MalformedPolicyDocument(doc_rules.SYNTAX, explanation={"detail": f"not JSON: {exc}"}) from exc


def validate_policy(
    document: str | bytes | Mapping[str, Any], *, kind: PolicyKind | str = PolicyKind.IDENTITY,
    inline: bool = False,
) -> list[PolicyProblem]:
    """Every problem IAM would report for this document (empty == valid); first = AWS's answer.
    ``inline``: a role's inline policy, with no size limit of its own (see ``document.SIZE_LIMITS``)."""
    k = PolicyKind(kind)
    loaded, problem = doc_rules.load(document)
    if problem is not None:
        return [problem]
    raw = document if isinstance(document, str) else None
    return doc_rules.validate(loaded, k, raw, inline=inline)


def compile_policy(
    document: str | bytes | Mapping[str, Any],
    *,
    kind: PolicyKind | str = PolicyKind.IDENTITY,
    name: str | None = None,
    inline: bool = False,
) -> CompiledPolicy:
    """Parse, validate and compile; raises ``MalformedPolicyDocument`` (or ``LimitExceeded`` for
    an over-long managed identity/boundary or SCP document) with AWS's message for the first problem.
    ``inline``: a role's inline policy, with no size limit of its own (IAM limits those together)."""
    k = kind if type(kind) is PolicyKind else PolicyKind(kind)
    return _compile_cached(_canonical(document), k, name, inline)


@lru_cache(maxsize=4096)
def _compile_cached(text: str | bytes, kind: PolicyKind, name: str | None, inline: bool = False) -> CompiledPolicy:
    loaded, problem = doc_rules.load(text)
    if problem is not None:
        raise _problem_error(problem)
    problems = doc_rules.validate(loaded, kind, text if isinstance(text, str) else None, inline=inline)
    if problems:
        raise _problem_error(problems[0])
    version = loaded.get("Version")
    variables = version == "2012-10-17"
    stmts = tuple(_compile_statement(i, s, variables) for i, s in enumerate(doc_rules.statements_of(loaded)))
    return CompiledPolicy(kind=kind, name=name, version=version, statements=stmts, document=loaded)
