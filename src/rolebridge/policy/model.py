"""The public value types of the policy engine: requests in, decisions and explanations out.

Everything here is plain data. A decision is never a bare bool: ``EvaluationResult`` carries the
statements that decided it (``reasons``) and, for a denial, the statement that came closest
(``nearest_miss``), as structured dicts a diagnosis tool can classify without parsing prose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class PolicyKind(StrEnum):
    """Where a policy is attached; decides which elements are required or forbidden."""

    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"
    BOUNDARY = "boundary"
    SESSION = "session"
    SCP = "scp"

    def __str__(self) -> str:
        return self.value


class Decision(StrEnum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Principal:
    """Who is asking. ``kind`` is the Principal-element key it can be named by.

    For an assumed-role session ``arn`` is the session ARN
    (``arn:aws:sts::ACCT:assumed-role/ROLE/SESSION``) and ``role_arn`` the role's IAM ARN; a
    resource policy naming either matches, with different consequences (aws-semantics 4.6).
    For a web identity ``kind`` is ``"Federated"`` and ``arn`` the OIDC provider ARN or domain.
    """

    kind: str = "AWS"
    arn: str = ""
    account: str | None = None
    role_arn: str | None = None
    user_id: str | None = None
    role_id: str | None = None

    def __post_init__(self) -> None:
        if self.account is None and self.arn.startswith("arn:"):
            parts = self.arn.split(":", 5)
            if len(parts) == 6 and len(parts[4]) == 12 and parts[4].isdigit():
                object.__setattr__(self, "account", parts[4])

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(kind="Anonymous", arn="*")

    @classmethod
    def federated(cls, provider: str) -> Principal:
        return cls(kind="Federated", arn=provider)

    @classmethod
    def service(cls, name: str) -> Principal:
        return cls(kind="Service", arn=name)

    @classmethod
    def aws(cls, arn: str, *, role_arn: str | None = None) -> Principal:
        """An AWS principal by ARN; derives ``role_arn`` for assumed-role session ARNs."""
        if role_arn is None and ":assumed-role/" in arn:
            head, _, rest = arn.partition(":assumed-role/")
            role_name = rest.split("/", 1)[0]
            parts = head.split(":")
            if len(parts) >= 5:
                role_arn = f"arn:{parts[1]}:iam::{parts[4]}:role/{role_name}"
        return cls(kind="AWS", arn=arn, role_arn=role_arn)


ContextValue = str | int | float | bool | Sequence[str]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return str(value)


def normalize_context(context: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Lower-case the key names (IAM compares them case-insensitively) and make every value a
    tuple of strings; ``None`` and empty lists mean "absent" and are dropped."""
    out: dict[str, tuple[str, ...]] = {}
    for key, value in context.items():
        if type(value) is str:  # the common case first: one isinstance chain less per key
            out[key.lower()] = (value,)
        elif value is None:
            continue
        elif isinstance(value, (list, tuple, set, frozenset)):
            vals = tuple(_scalar(v) for v in value if v is not None)
            if vals:
                out[key.lower()] = vals
        else:
            out[key.lower()] = (_scalar(value),)
    return out


@dataclass
class Request:
    """One authorization question. ``context`` keys are case-insensitive; a list value makes a
    multivalued key. The normalized context is computed once per request object and cached, so do
    not mutate ``context`` after the first evaluation."""

    principal: Principal | None
    action: str
    resource: str = "*"
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    _norm: dict[str, tuple[str, ...]] | None = field(default=None, init=False, repr=False, compare=False)
    _action_l: str | None = field(default=None, init=False, repr=False, compare=False)

    def normalized_context(self) -> dict[str, tuple[str, ...]]:
        n = self._norm
        if n is None:
            n = self._norm = normalize_context(self.context)
        return n

    def action_lower(self) -> str:
        a = self._action_l
        if a is None:
            a = self._action_l = self.action.lower()
        return a


@dataclass(frozen=True)
class PolicyProblem:
    """One validation finding. ``message`` is AWS's text; ``detail`` is ours (never sent to AWS
    clients) and says exactly what is wrong and where."""

    code: str
    message: str
    statement: int | None = None
    element: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "statement": self.statement,
            "element": self.element,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Reason:
    """A statement (or a gate such as a missing boundary allow) that decided the outcome."""

    policy: str
    kind: str
    statement: str | None
    effect: str | None
    detail: str
    statement_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "kind": self.kind,
            "statement": self.statement,
            "statement_index": self.statement_index,
            "effect": self.effect,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Miss:
    """The statement that came closest to allowing, and the first element that failed.

    For a condition failure ``operator``, ``key``, ``expected`` (policy values) and ``seen``
    (request values, ``None`` when the key was absent) say why; ``failures`` lists every failed
    element of that statement as dicts with the same fields.
    """

    policy: str
    kind: str
    statement: str | None
    statement_index: int
    element: str
    message: str
    operator: str | None = None
    key: str | None = None
    expected: tuple[str, ...] = ()
    seen: tuple[str, ...] | None = None
    key_absent: bool = False
    failures: tuple[dict[str, Any], ...] = ()
    score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "kind": self.kind,
            "statement": self.statement,
            "statement_index": self.statement_index,
            "element": self.element,
            "message": self.message,
            "operator": self.operator,
            "key": self.key,
            "expected": list(self.expected),
            "seen": None if self.seen is None else list(self.seen),
            "key_absent": self.key_absent,
            "failures": [dict(f) for f in self.failures],
        }


class EvaluationResult:
    """The decision plus why. ``nearest_miss`` is computed on first access (evaluate, then
    explain), so a denial on the hot path costs no more than an allow."""

    __slots__ = ("_diagnose", "_errors", "_explain", "_miss", "decision", "reasons")

    def __init__(
        self,
        decision: Decision,
        reasons: list[Reason] | None = None,
        nearest_miss: Miss | None = None,
        errors: list[str] | None = None,
        *,
        explain: Callable[[], Miss | None] | None = None,
        diagnose: Callable[[], list[str]] | None = None,
    ) -> None:
        self.decision = decision
        self.reasons = reasons if reasons is not None else []
        self._errors = errors if errors is not None else []
        self._miss = nearest_miss
        self._explain = explain
        self._diagnose = diagnose

    @property
    def errors(self) -> list[str]:
        """Problems met while evaluating that did not stop it (fail closed): request values an
        operator could not interpret, so their condition was false. Computed on first access."""
        if self._diagnose is not None:
            self._errors = self._errors + self._diagnose()
            self._diagnose = None
        return self._errors

    @property
    def nearest_miss(self) -> Miss | None:
        if self._explain is not None:
            self._miss = self._explain()
            self._explain = None
        return self._miss

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    def __repr__(self) -> str:
        return f"EvaluationResult({self.decision.value}, reasons={len(self.reasons)})"

    def to_dict(self) -> dict[str, Any]:
        miss = self.nearest_miss
        return {
            "decision": self.decision.value,
            "reasons": [r.to_dict() for r in self.reasons],
            "nearest_miss": None if miss is None else miss.to_dict(),
            "errors": list(self.errors),
        }
