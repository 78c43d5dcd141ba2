"""`rolebridge lint`: flag dangerous web-identity trust policies (files, a role, or every role of an account)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Annotated, Any

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json, read_source


def _from_file(path: str) -> Any:
    from rolebridge import errors

    text = read_source(path)  # an unreadable file: its OSError, printed by ``main``
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise errors.ValidationError(f"{path}: not a readable JSON policy ({exc})") from exc
    if isinstance(doc, dict) and "Role" in doc:
        doc = doc["Role"]
    if isinstance(doc, dict) and "AssumeRolePolicyDocument" in doc:
        doc = doc["AssumeRolePolicyDocument"]
    return doc


def _doc(value: Any) -> Any:
    if isinstance(value, str):
        text = urllib.parse.unquote(value) if value.lstrip().startswith("%") else value
        return json.loads(text)
    return value


def _roles_from_store(services: Any, account: str, role: str | None) -> tuple[list[tuple[str, Any]], list[Any]]:
    from sqlalchemy import select

    from rolebridge.store.schema import OIDCProvider, Role
    from rolebridge.tools.lint import ProviderFacts

    with services.store.read() as s:
        q = select(Role).where(Role.account_id == account)
        if role:
            q = q.where(Role.name_lower == role.lower())
        roles = [(r.arn, _doc(r.trust_policy)) for r in s.execute(q.order_by(Role.name)).scalars()]
        providers = [ProviderFacts(p.arn, p.url, tuple(p.client_ids or ())) for p in
                     s.execute(select(OIDCProvider).where(OIDCProvider.account_id == account)).scalars()]
    return roles, providers


def _roles_from_iam(iam: Any, role: str | None) -> tuple[list[tuple[str, Any]], list[Any]]:
    from rolebridge.tools.lint import ProviderFacts

    if role:
        found = [iam.get_role(RoleName=role)["Role"]]
    else:
        found = [r for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]]
    roles = [(r["Arn"], _doc(r["AssumeRolePolicyDocument"])) for r in found]
    providers = []
    for p in iam.list_open_id_connect_providers().get("OpenIDConnectProviderList", []):
        got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=p["Arn"])
        providers.append(ProviderFacts(p["Arn"], got["Url"].removeprefix("https://"), tuple(got.get("ClientIDList",
                                                                                                    []))))
    return roles, providers


def register(app: typer.Typer) -> None:
    @app.command("lint")
    def lint(
        files: Annotated[list[str] | None, typer.Argument(help="Trust policy files (- for stdin).")] = None,
        role: Annotated[str | None, typer.Option("--role", help="Lint this role of --account.")] = None,
        all_roles: Annotated[bool, typer.Option("--all", help="Lint every role of --account.")] = False,
        account: Annotated[str | None, typer.Option("--account", help="The roles' account.")] = None,
        use_aws: Annotated[bool, typer.Option("--aws", help="Read roles from AWS (standard credentials).")] = False,
        profile: Annotated[str | None, typer.Option("--profile", help="AWS profile (implies --aws).")] = None,
        endpoint_url: Annotated[str | None, typer.Option(
            "--endpoint-url", help="IAM endpoint to read from (implies --aws).")] = None,
        json_out: Json = False,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
    ) -> None:
        """Findings (severity, fix) for each dangerous pattern; exit 1 when there is an error."""
        from rolebridge import errors
        from rolebridge.tools.lint import has_errors, lint_trust_policy

        if not files and not role and not all_roles:
            raise errors.ValidationError("Give policy files, --role NAME or --all: with --account A for rolebridge's "
                                         "IAM, or with --aws (or --profile P) for an IAM endpoint.")
        sources: list[tuple[str, Any, str | None]] = [(f, _from_file(f), account) for f in files or []]
        providers: list[Any] = []
        if role or all_roles:
            if use_aws or profile or endpoint_url:
                from rolebridge.cli.aws import iam_client

                with iam_client(profile=profile, endpoint_url=endpoint_url) as iam:
                    roles, providers = _roles_from_iam(iam, role)
            else:
                if not account:
                    raise errors.ValidationError("--role and --all need --account.")
                from rolebridge.bootstrap import open_services

                roles, providers = _roles_from_store(open_services(data_dir, database_url), account, role)
            if role and not roles:
                raise errors.NoSuchEntity(f"The role with name {role} cannot be found.")
            sources += [(arn, doc, arn.split(":")[4]) for arn, doc in roles]
        findings = []
        for name, doc, acct in sources:
            findings += lint_trust_policy(doc, source=name, role_account=acct, providers=providers)
        if json_out:
            print_json({"findings": [f.to_dict() for f in findings], "errors": sum(f.severity == "error"
                                                                                   for f in findings),
                        "checked": [s[0] for s in sources]})
        else:
            for f in findings:
                color = "red" if f.severity == "error" else "yellow"
                console.print(f"[{color}]{f.severity}[/] {f.code} ({f.where}): {f.message}\n    fix: {f.fix}",
                              highlight=False, soft_wrap=True)
            if not findings:
                console.print(f"no findings in {len(sources)} trust polic{'y' if len(sources) == 1 else 'ies'}",
                              highlight=False)
        if has_errors(findings):
            raise typer.Exit(1)
