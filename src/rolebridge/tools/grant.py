"""`rolebridge grant`: the walkthrough's cross-account setup, least privilege, from platform facts.

A plan is computed once per role (provider URL/ARN in the target account, the role, its trust
policy and permission policies; by default one role per environment, ``make_plans``) and then
either rendered (``tools/render.py``: Terraform, CloudFormation,
policy JSON, AWS CLI) or applied through any IAM endpoint botocore can reach. The trust policy
is the platform's own subject pattern (``platform.roles.subject_pattern``: the environment is
the namespace, ``_`` in the project becomes ``.``, a strict uuid pattern) under ``StringLike``,
with ``StringEquals`` on ``:aud``; nothing wider.

Apply is idempotent: it reads first, creates what is missing, and leaves a differing trust or
permission policy alone unless ``update`` is set; drift is returned as a unified diff.
"""

from __future__ import annotations

import difflib
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rolebridge import errors
from rolebridge.iam.arns import ACCOUNT_RE, ROLE_NAME_RE, provider_arn, role_arn
from rolebridge.platform.roles import check_environment, check_project, subject_pattern

WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
ALL_ENVIRONMENTS = "*"
TRUST_SID = "RolebridgeJobs"
ALLOW_POLICY_NAME = "rolebridge-allow"
_ACTION_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*?]+$")


@dataclass(frozen=True)
class ClusterFacts:
    """What grant needs of a cluster (``rolebridge cluster list`` prints the same)."""

    name: str
    account_id: str
    oidc_url: str  # https://...
    thumbprint: str
    audience: str = "sts.amazonaws.com"

    @property
    def provider_url(self) -> str:
        return self.oidc_url.removeprefix("https://")


@dataclass
class GrantPlan:
    cluster: ClusterFacts
    project: str
    environments: list[str]  # ["*"] = every environment
    account: str
    role_name: str
    trust_policy: dict[str, Any]
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_session_duration: int = 3600

    @property
    def provider_url(self) -> str:
        return self.cluster.provider_url

    @property
    def provider_arn(self) -> str:
        return provider_arn(self.account, self.provider_url)

    @property
    def role_arn(self) -> str:
        return role_arn(self.account, self.role_name)

    @property
    def subjects(self) -> list[str]:
        return [subject_pattern(self.project, e) for e in self.environments]


def default_role_name(project: str, environments: Sequence[str]) -> str:
    """The walkthrough's role name: ``<project with _ as ->-<env>`` (``cross_account_sample`` in
    ``dev`` -> ``cross-account-sample-dev``, what a project file's ``aws_role:
    "...role/cross-account-sample-{{ env }}"`` names); ``<project with _ as ->`` alone for one role
    over several environments or all of them."""
    base = project.replace("_", "-")
    if len(environments) == 1 and environments[0] != ALL_ENVIRONMENTS:
        return f"{base}-{environments[0]}"
    return base


def trust_policy(provider_url: str, provider_arn_: str, audience: str, subjects: Sequence[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": TRUST_SID,
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn_},
            "Action": WEB_IDENTITY,
            "Condition": {
                "StringEquals": {f"{provider_url}:aud": audience},
                "StringLike": {f"{provider_url}:sub": subjects[0] if len(subjects) == 1 else list(subjects)},
            },
        }],
    }


def allow_policy(allows: Sequence[str]) -> dict[str, Any]:
    """``--allow ACTION=RESOURCE`` pairs as one policy: one statement per resource, actions merged."""
    by_resource: dict[str, list[str]] = {}
    for item in allows:
        action, sep, resource = item.partition("=")
        action, resource = action.strip(), resource.strip()
        if not sep or not _ACTION_RE.match(action) or not resource:
            raise errors.ValidationError(
                f"--allow {item!r}: expected ACTION=RESOURCE, e.g. s3:GetObject=arn:aws:s3:::b/*")
        by_resource.setdefault(resource, [])
        if action not in by_resource[resource]:
            by_resource[resource].append(action)
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": acts[0] if len(acts) == 1 else acts, "Resource": res}
        for res, acts in by_resource.items()]}


def make_plan(cluster: ClusterFacts, project: str, environments: Sequence[str], account: str, *,
              role_name: str | None = None, policies: Mapping[str, dict[str, Any]] | None = None,
              allows: Sequence[str] = (), max_session_duration: int = 3600) -> GrantPlan:
    check_project(project)
    envs = list(dict.fromkeys(environments))
    if not envs:
        raise errors.ValidationError("Give at least one --environment (or --all-environments).")
    for e in envs:
        if e != ALL_ENVIRONMENTS:
            check_environment(e)
    if ALL_ENVIRONMENTS in envs:
        envs = [ALL_ENVIRONMENTS]
    if not ACCOUNT_RE.match(account):
        raise errors.ValidationError(f"Account {account!r} must be 12 digits.")
    name = role_name or default_role_name(project, envs)
    if not ROLE_NAME_RE.match(name):
        raise errors.ValidationError(f"Role name {name!r} must match [\\w+=,.@-]{{1,64}}.")
    p_arn = provider_arn(account, cluster.provider_url)
    plan = GrantPlan(cluster, project, envs, account, name, {}, dict(policies or {}),
                     max_session_duration=max_session_duration)
    plan.trust_policy = trust_policy(cluster.provider_url, p_arn, cluster.audience, plan.subjects)
    if allows:
        plan.policies[ALLOW_POLICY_NAME] = allow_policy(allows)
    from rolebridge.policy import compile_policy  # validate what we would send, as IAM would

    compile_policy(plan.trust_policy, kind="trust")
    for doc in plan.policies.values():
        compile_policy(doc, kind="identity")
    return plan


def make_plans(cluster: ClusterFacts, project: str, environments: Sequence[str], account: str, *,
               role_name: str | None = None, policies: Mapping[str, dict[str, Any]] | None = None,
               allows: Sequence[str] = (), max_session_duration: int = 3600) -> list[GrantPlan]:
    """What ``rolebridge grant`` sets up: one role per environment, each named by
    ``default_role_name`` and trusting only that environment's jobs; with ``role_name`` (or all
    environments), one role trusting every environment given."""
    envs = list(dict.fromkeys(environments))
    one_role = role_name is not None or len(envs) <= 1 or ALL_ENVIRONMENTS in envs
    groups = [envs] if one_role else [[e] for e in envs]
    return [make_plan(cluster, project, group, account, role_name=role_name, policies=policies, allows=allows,
                      max_session_duration=max_session_duration) for group in groups]


# -- apply -------------------------------------------------------------------------------------
@dataclass
class ApplyReport:
    role_arn: str
    changes: list[str] = field(default_factory=list)  # what was done
    unchanged: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # unified diffs left in place (no --update)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"role_arn": self.role_arn, "changed": self.changed, "changes": self.changes,
                "unchanged": self.unchanged, "drift": self.drift}


def combined_report(reports: Sequence[ApplyReport]) -> dict[str, Any]:
    """Several roles' reports as one (``grant --apply --json``): ``role_arns`` always, ``role_arn``
    as well when there is one role."""
    out: dict[str, Any] = {"role_arns": [r.role_arn for r in reports]}
    if len(reports) == 1:
        out["role_arn"] = reports[0].role_arn
    out.update({"changed": any(r.changed for r in reports), "changes": [c for r in reports for c in r.changes],
                "unchanged": [u for r in reports for u in r.unchanged], "drift": [d for r in reports for d in r.drift]})
    return out


def _doc(value: Any) -> Any:
    """A policy document as IAM returns it (dict, JSON, or URL-encoded JSON) -> dict."""
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value)
    if text.lstrip().startswith("%7B") or text.lstrip().startswith("%7b"):
        text = urllib.parse.unquote(text)
    return json.loads(text)


def _canonical(doc: Any) -> Any:
    """Order-insensitive form for comparison: single values as lists, lists sorted."""
    if isinstance(doc, Mapping):
        return {k: _canonical(v) for k, v in sorted(doc.items())}
    if isinstance(doc, list):
        items = [_canonical(v) for v in doc]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True)) if len(items) != 1 else items[0]
    return doc


def policy_diff(current: Any, wanted: Any, label: str) -> str | None:
    if _canonical(current) == _canonical(wanted):
        return None
    a = json.dumps(current, indent=2, sort_keys=True).splitlines()
    b = json.dumps(wanted, indent=2, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(a, b, f"{label} (current)", f"{label} (grant)", lineterm=""))


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return (response or {}).get("Error", {}).get("Code") if isinstance(response, dict) else None


def apply_plan(plan: GrantPlan, iam: Any, *, update: bool = False) -> ApplyReport:
    """Make the target account match the plan through a botocore IAM client."""
    report = ApplyReport(plan.role_arn)
    providers = [p["Arn"] for p in iam.list_open_id_connect_providers().get("OpenIDConnectProviderList", [])]
    if plan.provider_arn in providers:
        got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=plan.provider_arn)
        if plan.cluster.audience not in got.get("ClientIDList", []):
            if update:
                iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=plan.provider_arn,
                                                              ClientID=plan.cluster.audience)
                report.changes.append(f"added client ID {plan.cluster.audience} to {plan.provider_arn}")
            else:
                report.drift.append(f"provider {plan.provider_arn} lacks client ID {plan.cluster.audience} "
                                    f"(has {got.get('ClientIDList', [])})")
        else:
            report.unchanged.append(f"provider {plan.provider_arn}")
    else:
        kw: dict[str, Any] = {"Url": plan.cluster.oidc_url, "ClientIDList": [plan.cluster.audience]}
        if plan.cluster.thumbprint:
            kw["ThumbprintList"] = [plan.cluster.thumbprint]
        iam.create_open_id_connect_provider(**kw)
        report.changes.append(f"created provider {plan.provider_arn}")

    try:
        role = iam.get_role(RoleName=plan.role_name)["Role"]
    except Exception as exc:
        if _code(exc) != "NoSuchEntity":
            raise
        role = None
    if role is None:
        iam.create_role(RoleName=plan.role_name, AssumeRolePolicyDocument=json.dumps(plan.trust_policy),
                        MaxSessionDuration=plan.max_session_duration,
                        Description=f"rolebridge: jobs of {plan.project} in {', '.join(plan.environments)} "
                                    f"on cluster {plan.cluster.name}",
                        Tags=[{"Key": "rolebridge:project", "Value": plan.project},
                              {"Key": "rolebridge:cluster", "Value": plan.cluster.name}])
        report.changes.append(f"created role {plan.role_arn}")
    else:
        diff = policy_diff(_doc(role["AssumeRolePolicyDocument"]), plan.trust_policy, "trust policy")
        if diff is None:
            report.unchanged.append(f"trust policy of {plan.role_arn}")
        elif update:
            iam.update_assume_role_policy(RoleName=plan.role_name, PolicyDocument=json.dumps(plan.trust_policy))
            report.changes.append(f"updated trust policy of {plan.role_arn}\n{diff}")
        else:
            report.drift.append(diff)

    for name, doc in plan.policies.items():
        try:
            current = _doc(iam.get_role_policy(RoleName=plan.role_name, PolicyName=name)["PolicyDocument"])
        except Exception as exc:
            if _code(exc) != "NoSuchEntity":
                raise
            current = None
        if current is None:
            iam.put_role_policy(RoleName=plan.role_name, PolicyName=name, PolicyDocument=json.dumps(doc))
            report.changes.append(f"put policy {name} on {plan.role_name}")
            continue
        diff = policy_diff(current, doc, f"policy {name}")
        if diff is None:
            report.unchanged.append(f"policy {name} of {plan.role_name}")
        elif update:
            iam.put_role_policy(RoleName=plan.role_name, PolicyName=name, PolicyDocument=json.dumps(doc))
            report.changes.append(f"updated policy {name} on {plan.role_name}\n{diff}")
        else:
            report.drift.append(diff)
    return report
