"""Renderers for a grant plan: Terraform (the walkthrough's shape), CloudFormation, policy JSON, AWS CLI.

Terraform is built from a small block/attribute model and printed the way ``terraform fmt``
prints it (two-space indent, ``=`` aligned within a run of one-line attributes), never from a
string template; values are quoted by one function that also escapes HCL's ``${``/``%{``.
"""

from __future__ import annotations

import json
import shlex
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


def _heredoc_json(doc: dict[str, Any], indent: int) -> Expr:
    pad = "  " * (indent + 1)
    text = json.dumps(doc, indent=2).replace("${", "$${").replace("%{", "%%{")
    body = "".join(f"{pad}{line}\n" for line in text.splitlines())
    return Expr(f"<<-EOT\n{body}{'  ' * indent}EOT")


def _tf_name(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    return out if out[:1].isalpha() or out[:1] == "_" else f"p_{out}"


# -- renderers ----------------------------------------------------------------------------------
def terraform(plan: GrantPlan, *, region: str = "us-east-1") -> str:
    """The walkthrough's Terraform: provider, OIDC provider, policy document, role, policies."""
    c = plan.cluster
    env_values = "[for env in local.environments : " + \
        '"system:serviceaccount:${env}:${replace(local.project_name, "_", ".")}-${local.uuid_pattern}"]'
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
            Attr("environments", hcl_list(plan.environments, 1)),
        ]),
        Block("data", ("aws_iam_policy_document", "default"), [Block("statement", (), [
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
        ])]),
        Block("resource", ("aws_iam_role", "default"), [
            Attr("name", Expr(hcl_str(plan.role_name))),
            Attr("assume_role_policy", Expr("data.aws_iam_policy_document.default.json")),
            Attr("max_session_duration", Expr(str(plan.max_session_duration))),
        ]),
    ]
    for name, doc in plan.policies.items():
        blocks.append(Block("resource", ("aws_iam_role_policy", _tf_name(name)), [
            Attr("name", Expr(hcl_str(name))),
            Attr("role", Expr("aws_iam_role.default.id")),
            Attr("policy", _heredoc_json(doc, 1)),
        ]))
    blocks.append(Block("output", ("role_arn",), [
        Attr("description", Expr(hcl_str("The aws_role jobs must use (full ARN: the role is in another account)"))),
        Attr("value", Expr("aws_iam_role.default.arn")),
    ]))
    return render_hcl(blocks)


def cloudformation(plan: GrantPlan) -> dict[str, Any]:
    c = plan.cluster
    role: dict[str, Any] = {"RoleName": plan.role_name, "AssumeRolePolicyDocument": plan.trust_policy,
                            "MaxSessionDuration": plan.max_session_duration}
    if plan.policies:
        role["Policies"] = [{"PolicyName": n, "PolicyDocument": d} for n, d in plan.policies.items()]
    provider: dict[str, Any] = {"Url": c.oidc_url, "ClientIdList": [c.audience]}
    if c.thumbprint:
        provider["ThumbprintList"] = [c.thumbprint]
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"rolebridge grant: jobs of {plan.project} ({', '.join(plan.environments)}) on cluster "
                       f"{c.name} assume {plan.role_arn}",
        "Parameters": {"CreateOidcProvider": {"Type": "String", "AllowedValues": ["true", "false"],
                                              "Default": "true"}},
        "Conditions": {"CreateProvider": {"Fn::Equals": [{"Ref": "CreateOidcProvider"}, "true"]}},
        "Resources": {
            "OidcProvider": {"Type": "AWS::IAM::OIDCProvider", "Condition": "CreateProvider", "Properties": provider},
            "Role": {"Type": "AWS::IAM::Role", "Properties": role},
        },
        "Outputs": {"RoleArn": {"Description": "The aws_role jobs must use", "Value": {"Fn::GetAtt": ["Role", "Arn"]}}},
    }


def policy_json(plan: GrantPlan) -> dict[str, Any]:
    """The trust policy document alone (pipe it to ``rolebridge lint -``)."""
    return plan.trust_policy


def aws_cli(plan: GrantPlan) -> str:
    c = plan.cluster
    lines = ["# the OIDC provider (skip if `aws iam list-open-id-connect-providers` already shows "
             f"{plan.provider_arn})"]
    provider = ["aws", "iam", "create-open-id-connect-provider", "--url", c.oidc_url, "--client-id-list", c.audience]
    if c.thumbprint:
        provider += ["--thumbprint-list", c.thumbprint]
    lines.append(shlex.join(provider))
    lines.append(shlex.join(["aws", "iam", "create-role", "--role-name", plan.role_name, "--max-session-duration",
                             str(plan.max_session_duration), "--assume-role-policy-document",
                             json.dumps(plan.trust_policy, separators=(",", ":"))]))
    for name, doc in plan.policies.items():
        lines.append(shlex.join(["aws", "iam", "put-role-policy", "--role-name", plan.role_name, "--policy-name",
                                 name, "--policy-document", json.dumps(doc, separators=(",", ":"))]))
    lines.append(f"# jobs use --aws-role {plan.role_arn}")
    return "\n".join(lines) + "\n"
