"""Renderers for a grant's plans (one per role): Terraform (the walkthrough's shape), CloudFormation,
policy JSON, AWS CLI. The plans of one grant share the cluster, project, account and permission
policies; they differ in role name and environments.

Terraform is built from a small block/attribute model and printed the way ``terraform fmt``
prints it (two-space indent, ``=`` aligned within a run of one-line attributes), never from a
string template; values are quoted by one function that also escapes HCL's ``${``/``%{``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from rolebridge.platform.roles import UUID_PATTERN
from rolebridge.tools.grant import GrantPlan


# -- a tiny HCL model --------------------------------------------------------------------------
@dataclass
class Expr:
    """A raw HCL expression, possibly spanning lines (already formatted)."""

    text: str


@dataclass
class Attr:
    name: str
    value: Expr


@dataclass
class Block:
    type: str
    labels: tuple[str, ...] = ()
    body: list[Union[Attr, Block, None]] = field(default_factory=list)  # None = blank line  # noqa: UP007


def hcl_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = escaped.replace("${", "$${").replace("%{", "%%{")
    return f'"{escaped}"'


def hcl_list(values: list[str], indent: int) -> Expr:
    if len(values) <= 1:
        return Expr("[" + ", ".join(hcl_str(v) for v in values) + "]")
    pad = "  " * (indent + 1)
    return Expr("[\n" + "".join(f"{pad}{hcl_str(v)},\n" for v in values) + "  " * indent + "]")


def _render_block(block: Block, indent: int) -> list[str]:
    pad = "  " * indent
    head = " ".join([block.type, *(hcl_str(label) for label in block.labels)])
    lines = [f"{pad}{head} {{"]
    group: list[Attr] = []

    def flush() -> None:
        width = max((len(a.name) for a in group), default=0)
        for a in group:
            lines.append(f"{pad}  {a.name.ljust(width)} = {a.value.text}")
        group.clear()

    for item in block.body:
        if isinstance(item, Attr) and ("\n" not in item.value.text or item.value.text.startswith("<<")):
            group.append(item)
            continue
        flush()
        if item is None:
            lines.append("")
        elif isinstance(item, Attr):
            lines.append(f"{pad}  {item.name} = {item.value.text}")
        else:
            lines.extend(_render_block(item, indent + 1))
    flush()
    lines.append(f"{pad}}}")
    return lines


def render_hcl(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if out:
            out.append("")
        out.extend(_render_block(b, 0))
    return "\n".join(out) + "\n"


def hcl_map(items: dict[str, Expr], indent: int) -> Expr:
    """An object constructor, one item a line, ``=`` aligned as ``terraform fmt`` aligns it."""
    pad = "  " * (indent + 1)
    keys = {k: hcl_str(k) for k in items}
    width = max((len(q) for q in keys.values()), default=0)
    body = "".join(f"{pad}{keys[k].ljust(width)} = {v.text}\n" for k, v in items.items())
    return Expr("{\n" + body + "  " * indent + "}")


def _plans(plans: GrantPlan | Sequence[GrantPlan]) -> list[GrantPlan]:
    out = [plans] if isinstance(plans, GrantPlan) else list(plans)
    if not out:
        raise ValueError("no plan to render")
    return out


def _heredoc_json(doc: dict[str, Any], indent: int) -> Expr:
    pad = "  " * (indent + 1)
    text = json.dumps(doc, indent=2).replace("${", "$${").replace("%{", "%%{")
    body = "".join(f"{pad}{line}\n" for line in text.splitlines())
    return Expr(f"<<-EOT\n{body}{'  ' * indent}EOT")


def _tf_name(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    return out if out[:1].isalpha() or out[:1] == "_" else f"p_{out}"


# -- renderers ----------------------------------------------------------------------------------
def terraform(plans: GrantPlan | Sequence[GrantPlan], *, region: str = "us-east-1") -> str:
    """The walkthrough's Terraform: provider, OIDC provider, then per role (``for_each`` over
    ``local.roles``, role name -> environments) a policy document, the role and its policies."""
    all_plans = _plans(plans)
    plan = all_plans[0]
    c = plan.cluster
    env_values = "[for env in each.value : " + \
        '"system:serviceaccount:${env}:${replace(local.project_name, "_", ".")}-${local.uuid_pattern}"]'
    roles = hcl_map({p.role_name: hcl_list(p.environments, 2) for p in all_plans}, 1)
    blocks = [
        Block("provider", ("aws",), [Attr("region", Expr("var.aws_region"))]),
        Block("variable", ("aws_region",), [Attr("type", Expr("string")), Attr("default", Expr(hcl_str(region)))]),
        Block("variable", ("oidc_provider_url",), [
            Attr("description", Expr(hcl_str(f"Issuer URL of cluster {c.name} (rolebridge cluster list)"))),
            Attr("type", Expr("string")),
            Attr("default", Expr(hcl_str(c.oidc_url))),
        ]),
        Block("variable", ("oidc_provider_arn",), [
            Attr("description", Expr(hcl_str(f"ARN of that issuer's OIDC provider in account {plan.account}"))),
            Attr("type", Expr("string")),
            Attr("default", Expr(hcl_str(plan.provider_arn))),
        ]),
        Block("variable", ("create_oidc_provider",), [
            Attr("description", Expr(hcl_str("Create the OIDC provider (false when the account has it)"))),
            Attr("type", Expr("bool")),
            Attr("default", Expr("true")),
        ]),
        Block("resource", ("aws_iam_openid_connect_provider", "cluster"), [
            Attr("count", Expr("var.create_oidc_provider ? 1 : 0")),
            Attr("url", Expr("var.oidc_provider_url")),
            Attr("client_id_list", hcl_list([c.audience], 1)),
            Attr("thumbprint_list", hcl_list([c.thumbprint] if c.thumbprint else [], 1)),
        ]),
        Block("locals", (), [
            Attr("project_name", Expr(hcl_str(plan.project))),
            Attr("uuid_pattern", Expr(hcl_str(UUID_PATTERN))),
            None,
            Attr("roles", roles),  # role name -> the environments (namespaces) whose jobs may assume it
        ]),
        Block("data", ("aws_iam_policy_document", "default"), [
            Attr("for_each", Expr("local.roles")),
            None,
            Block("statement", (), [
                Attr("actions", hcl_list(["sts:AssumeRoleWithWebIdentity"], 2)),
                Attr("effect", Expr(hcl_str("Allow"))),
                None,
                Block("condition", (), [
                    Attr("test", Expr(hcl_str("StringLike"))),
                    Attr("variable", Expr('"${replace(var.oidc_provider_url, "https://", "")}:sub"')),
                    Attr("values", Expr(env_values)),
                ]),
                None,
                Block("condition", (), [
                    Attr("test", Expr(hcl_str("StringEquals"))),
                    Attr("variable", Expr('"${replace(var.oidc_provider_url, "https://", "")}:aud"')),
                    Attr("values", hcl_list([c.audience], 3)),
                ]),
                None,
                Block("principals", (), [
                    Attr("identifiers", Expr("[var.oidc_provider_arn]")),
                    Attr("type", Expr(hcl_str("Federated"))),
                ]),
            ]),
        ]),
        Block("resource", ("aws_iam_role", "default"), [
            Attr("for_each", Expr("local.roles")),
            None,
            Attr("name", Expr("each.key")),
            Attr("assume_role_policy", Expr("data.aws_iam_policy_document.default[each.key].json")),
            Attr("max_session_duration", Expr(str(plan.max_session_duration))),
        ]),
    ]
    for name, doc in plan.policies.items():
        blocks.append(Block("resource", ("aws_iam_role_policy", _tf_name(name)), [
            Attr("for_each", Expr("aws_iam_role.default")),
            None,
            Attr("name", Expr(hcl_str(name))),
            Attr("role", Expr("each.value.id")),
            Attr("policy", _heredoc_json(doc, 1)),
        ]))
    blocks.append(Block("output", ("role_arns",), [
        Attr("description", Expr(hcl_str("Role name -> the aws_role jobs must use (full ARN: the role is in "
                                          "another account)"))),
        Attr("value", Expr("{ for name, role in aws_iam_role.default : name => role.arn }")),
    ]))
    return render_hcl(blocks)


def _logical_ids(plans: list[GrantPlan]) -> list[str]:
    """CloudFormation logical ID suffixes: none for one role, else the environments in CamelCase."""
    if len(plans) == 1:
        return [""]
    out: list[str] = []
    for i, p in enumerate(plans):
        words = re.split(r"[^A-Za-z0-9]+", "-".join(p.environments).replace("*", "All"))
        suffix = "".join(w[:1].upper() + w[1:] for w in words if w) or str(i + 1)
        out.append(suffix if suffix not in out else f"{suffix}{i + 1}")
    return out


def cloudformation(plans: GrantPlan | Sequence[GrantPlan]) -> dict[str, Any]:
    all_plans = _plans(plans)
    plan = all_plans[0]
    c = plan.cluster
    provider: dict[str, Any] = {"Url": c.oidc_url, "ClientIdList": [c.audience]}
    if c.thumbprint:
        provider["ThumbprintList"] = [c.thumbprint]
    resources: dict[str, Any] = {
        "OidcProvider": {"Type": "AWS::IAM::OIDCProvider", "Condition": "CreateProvider", "Properties": provider},
    }
    outputs: dict[str, Any] = {}
    for p, suffix in zip(all_plans, _logical_ids(all_plans), strict=True):
        role: dict[str, Any] = {"RoleName": p.role_name, "AssumeRolePolicyDocument": p.trust_policy,
                                "MaxSessionDuration": p.max_session_duration}
        if p.policies:
            role["Policies"] = [{"PolicyName": n, "PolicyDocument": d} for n, d in p.policies.items()]
        resources[f"Role{suffix}"] = {"Type": "AWS::IAM::Role", "Properties": role}
        outputs[f"RoleArn{suffix}"] = {"Description": f"The aws_role jobs in {', '.join(p.environments)} must use",
                                       "Value": {"Fn::GetAtt": [f"Role{suffix}", "Arn"]}}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"rolebridge grant: jobs of {plan.project} on cluster {c.name} assume "
                       + "; ".join(f"{p.role_arn} ({', '.join(p.environments)})" for p in all_plans),
        "Parameters": {"CreateOidcProvider": {"Type": "String", "AllowedValues": ["true", "false"],
                                              "Default": "true"}},
        "Conditions": {"CreateProvider": {"Fn::Equals": [{"Ref": "CreateOidcProvider"}, "true"]}},
        "Resources": resources,
        "Outputs": outputs,
    }


def policy_json(plans: GrantPlan | Sequence[GrantPlan]) -> dict[str, Any]:
    """The trust policy document alone (pipe it to ``rolebridge lint -``); for several roles, an
    object of role name -> trust policy."""
    all_plans = _plans(plans)
    if len(all_plans) == 1:
        return all_plans[0].trust_policy
    return {p.role_name: p.trust_policy for p in all_plans}


def aws_cli(plans: GrantPlan | Sequence[GrantPlan]) -> str:
    all_plans = _plans(plans)
    plan = all_plans[0]
    c = plan.cluster
    lines = ["# the OIDC provider (skip if `aws iam list-open-id-connect-providers` already shows "
             f"{plan.provider_arn})"]
    provider = ["aws", "iam", "create-open-id-connect-provider", "--url", c.oidc_url, "--client-id-list", c.audience]
    if c.thumbprint:
        provider += ["--thumbprint-list", c.thumbprint]
    lines.append(shlex.join(provider))
    for p in all_plans:
        lines.append(shlex.join(["aws", "iam", "create-role", "--role-name", p.role_name, "--max-session-duration",
                                 str(p.max_session_duration), "--assume-role-policy-document",
                                 json.dumps(p.trust_policy, separators=(",", ":"))]))
        for name, doc in p.policies.items():
            lines.append(shlex.join(["aws", "iam", "put-role-policy", "--role-name", p.role_name, "--policy-name",
                                     name, "--policy-document", json.dumps(doc, separators=(",", ":"))]))
    for p in all_plans:
        lines.append(f"# jobs in {', '.join(p.environments)} use --aws-role {p.role_arn}")
    return "\n".join(lines) + "\n"
