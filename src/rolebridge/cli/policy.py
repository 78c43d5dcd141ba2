"""`rolebridge policy evaluate|validate`: the policy engine on the command line.

``evaluate`` takes the JSON shape fixed in DESIGN.md (plus optional ``boundary``,
``session_policies``, ``guardrails`` and ``resource_account``; or ``trust_policy`` alone, for a
role-trust decision) and prints the engine's result object; any decision exits 0, invalid input
exits 2 with the reason on stderr. A ``resource_policy`` asked about an STS assume action on a
role ARN is that role's trust policy when it has no Resource element (AWS trust policies have
none), and is validated as one; ``--kind trust|resource`` says which it is instead. The request's
action must be ``svc:Name``. ``validate`` prints what IAM would report and exits 1 when the
document is not valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import typer

from rolebridge.errors import AWSError
from rolebridge.policy import (
    CompiledPolicy,
    PolicyKind,
    Principal,
    Request,
    compile_policy,
    evaluate,
    evaluate_trust,
    validate_policy,
)

policy_app = typer.Typer(help="Evaluate and validate IAM policy documents.", no_args_is_help=True)

_ASSUME_ACTIONS = (
    "sts:assumerole",
    "sts:assumerolewithwebidentity",
    "sts:assumerolewithsaml",
    "sts:tagsession",
    "sts:setsourceidentity",
)


#: DESIGN.md's request action: ``svc:Name`` (service prefix, a colon, the action name).
_ACTION_RE = re.compile(r"^[A-Za-z0-9-]+:[A-Za-z0-9]+$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
RESOURCE_POLICY_KINDS = (PolicyKind.TRUST, PolicyKind.RESOURCE)


class InputError(Exception):
    """Input the command cannot use; reported on stderr with exit status 2."""


def _read(source: str) -> str:
    from rolebridge import errors
    from rolebridge.cli.options import read_source

    try:
        return read_source(source)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from exc
    except errors.ValidationError as exc:
        raise InputError(exc.message) from exc


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _compile(doc: Any, kind: PolicyKind, where: str) -> CompiledPolicy:
    if not isinstance(doc, Mapping):
        raise InputError(f"{where}: a policy document must be a JSON object")
    try:
        return compile_policy(doc, kind=kind, name=where)
    except AWSError as exc:
        detail = ""
        if isinstance(exc.explanation, Mapping) and exc.explanation.get("detail"):
            detail = f" ({exc.explanation['detail']})"
        raise InputError(f"{where}: {exc.code}: {exc.message}{detail}") from exc


# DESIGN.md's `"principal": ... | null`: null (or absent) is "the caller the identity policies
# belong to, not named": identity policies apply to it, and a resource policy matches it only
# through `"*"`. Anonymous is asked for explicitly with `"*"` or `{"AWS": "*"}`.
UNNAMED_CALLER = Principal(kind="AWS", arn="")


def _principal(raw: Any) -> Principal | None:
    if raw is None:
        return UNNAMED_CALLER
    if raw == "*" or raw == {"AWS": "*"}:
        return Principal.anonymous()
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise InputError('request.principal must be null or one of {"AWS"|"Federated"|"Service": "..."}')
    ((ptype, value),) = raw.items()
    if not isinstance(value, str) or not value:
        raise InputError(f"request.principal.{ptype} must be a non-empty string")
    if ptype == "AWS":
        if value.isdigit() and len(value) == 12:
            return Principal(kind="AWS", arn=f"arn:aws:iam::{value}:root", account=value)
        return Principal.aws(value)
    if ptype == "Federated":
        return Principal.federated(value)
    if ptype == "Service":
        return Principal.service(value)
    if ptype == "CanonicalUser":
        return Principal(kind="CanonicalUser", arn=value)
    raise InputError(f"request.principal: unknown principal type {ptype!r}")


def _context(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError("request.context must be an object")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        ok_scalar = isinstance(v, (str, bool, int, float))
        ok_list = isinstance(v, list) and all(isinstance(x, (str, bool, int, float)) for x in v)
        if not (ok_scalar or ok_list or v is None):
            raise InputError(f"request.context[{k!r}] must be a string, number, boolean or list of strings")
        out[k] = v
    return out


def _request(raw: Any) -> Request:
    if not isinstance(raw, Mapping):
        raise InputError("request must be an object")
    action = raw.get("action")
    if not isinstance(action, str) or not action:
        raise InputError('request.action must be a string like "s3:GetObject"')
    if not _ACTION_RE.match(action):
        raise InputError(f'request.action {action!r} is not svc:Name (a service prefix, a colon and the action '
                         'name, e.g. "s3:GetObject")')
    resource = raw.get("resource", "*")
    if not isinstance(resource, str):
        raise InputError("request.resource must be a string")
    return Request(_principal(raw.get("principal")), action, resource, _context(raw.get("context")))


def _policies(raw: Any, name: str, kind: PolicyKind) -> list[CompiledPolicy]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError(f"{name} must be an array of policy documents")
    return [_compile(doc, kind, f"{name}[{i}]") for i, doc in enumerate(raw)]


def _is_trust_request(request: Request) -> bool:
    return request.action.lower() in _ASSUME_ACTIONS and bool(_ROLE_ARN_RE.match(request.resource))


def _has_resource_element(doc: Any) -> bool:
    stmts = doc.get("Statement") if isinstance(doc, Mapping) else None
    stmts = [stmts] if isinstance(stmts, Mapping) else stmts
    return isinstance(stmts, list) and any(
        isinstance(st, Mapping) and ("Resource" in st or "NotResource" in st) for st in stmts)


def resource_policy_kind(doc: Any, request: Request, kind: PolicyKind | None) -> PolicyKind:
    """How to read ``resource_policy``: as given by ``--kind``; else a role's trust policy when the
    request is an STS assume action on a role ARN and the document has no Resource element (a trust
    policy has none); else a resource policy."""
    if kind is not None:
        return kind
    if _is_trust_request(request) and not _has_resource_element(doc):
        return PolicyKind.TRUST
    return PolicyKind.RESOURCE


def run_evaluate(text: str, *, resource_kind: PolicyKind | None = None) -> dict[str, Any]:
    """The evaluate command without the I/O: input JSON text -> result dict (raises InputError).

    ``resource_kind``: read ``resource_policy`` as a trust or a resource policy (default: detected)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser goes
        raise InputError(f"input is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise InputError("input must be a JSON object with policies, resource_policy and request")
    if "request" not in data:
        raise InputError("input has no request")
    request = _request(data["request"])
    if data.get("trust_policy") is not None:
        if data.get("policies") or data.get("resource_policy") is not None:
            raise InputError("trust_policy is evaluated alone: leave policies and resource_policy empty")
        trust = _compile(data["trust_policy"], PolicyKind.TRUST, "trust_policy")
        return evaluate_trust(trust, request).to_dict()
    identity = _policies(data.get("policies", []), "policies", PolicyKind.IDENTITY)
    rp = data.get("resource_policy")
    resource_policy = None if rp is None else _compile(rp, resource_policy_kind(rp, request, resource_kind),
                                                       "resource_policy")
    bd = data.get("boundary")
    boundary = None if bd is None else _compile(bd, PolicyKind.BOUNDARY, "boundary")
    account = data.get("resource_account")
    if account is not None and not isinstance(account, str):
        raise InputError("resource_account must be a string")
    result = evaluate(
        request,
        identity=identity,
        resource_policy=resource_policy,
        boundary=boundary,
        session=_policies(data.get("session_policies"), "session_policies", PolicyKind.SESSION),
        guardrails=_policies(data.get("guardrails"), "guardrails", PolicyKind.SCP),
        resource_account=account,
    )
    return result.to_dict()


def guess_kind(text: str) -> PolicyKind:
    """Trust when every statement names a Principal and only STS assume actions; else identity."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return PolicyKind.IDENTITY
    if not isinstance(doc, Mapping):
        return PolicyKind.IDENTITY
    stmts = doc.get("Statement")
    stmts = [stmts] if isinstance(stmts, Mapping) else stmts
    if not isinstance(stmts, list) or not stmts:
        return PolicyKind.IDENTITY
    for s in stmts:
        if not isinstance(s, Mapping) or "Principal" not in s:
            return PolicyKind.IDENTITY
        actions = s.get("Action")
        actions = [actions] if isinstance(actions, str) else actions
        if not isinstance(actions, list) or not actions:
            return PolicyKind.IDENTITY
        if not all(isinstance(a, str) and a.lower() in _ASSUME_ACTIONS for a in actions):
            return PolicyKind.RESOURCE
    return PolicyKind.TRUST


@policy_app.command("evaluate")
def evaluate_cmd(
    source: str = typer.Argument(..., metavar="FILE|-", help="Input JSON file, or - for stdin."),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="Read resource_policy as a role's trust policy or as a resource policy (default: trust when the "
        "request is an sts:AssumeRole* action on a role ARN and the document has no Resource element).",
    ),
) -> None:
    """Evaluate a request against identity and resource policies; prints the decision as JSON."""
    resource_kind = None
    if kind is not None:
        if kind not in [k.value for k in RESOURCE_POLICY_KINDS]:
            _fail(f"--kind must be one of {', '.join(k.value for k in RESOURCE_POLICY_KINDS)} (the kind of "
                  "resource_policy; policies are always identity policies)")
        resource_kind = PolicyKind(kind)
    try:
        out = run_evaluate(_read(source), resource_kind=resource_kind)
    except InputError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(out, indent=2))


@policy_app.command("validate")
def validate_cmd(
    source: str = typer.Argument(..., metavar="FILE|-", help="Policy document, or - for stdin."),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="identity|resource|trust|boundary|session|scp (default identity; trust is detected)",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the problems as JSON."),
) -> None:
    """Print the problems IAM would report; exit 0 when valid, 1 when not."""
    try:
        text = _read(source)
    except InputError as exc:
        _fail(str(exc))
    if kind is None:
        k = guess_kind(text)
    else:
        try:
            k = PolicyKind(kind)
        except ValueError:
            _fail(f"--kind must be one of {', '.join(x.value for x in PolicyKind)}")
    problems = validate_policy(text, kind=k)
    if as_json:
        typer.echo(json.dumps({"kind": k.value, "valid": not problems, "problems": [p.to_dict() for p in problems]}))
    elif not problems:
        typer.echo(f"valid {k.value} policy")
    else:
        for p in problems:
            where = []
            if p.statement is not None:
                where.append(f"statement {p.statement}")
            if p.element:
                where.append(p.element)
            loc = f" [{', '.join(where)}]" if where else ""
            detail = f" -- {p.detail}" if p.detail else ""
            typer.echo(f"{p.code}: {p.message}{loc}{detail}")
    raise typer.Exit(0 if not problems else 1)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
