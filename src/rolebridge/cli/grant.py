"""`rolebridge grant`: set up (or print the setup for) a role jobs of a project can assume, any account."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, err_console, print_json


def _own_iam_credentials(services: Any, account: str) -> dict[str, Any]:
    """Endpoint, CA and the account's keys for rolebridge's own IAM (the running server)."""
    from sqlalchemy import select

    from rolebridge.iam.accounts import create_account
    from rolebridge.platform.server_info import running_server
    from rolebridge.store.schema import AccessKey

    server = running_server(services.store.paths.data_dir)
    with services.store.read() as s:
        akids = list(s.execute(select(AccessKey.access_key_id).where(
            AccessKey.account_id == account, AccessKey.status == "Active")).scalars())
    found = services.long_term_key(akids[0]) if akids else None
    if found is None:
        keys = create_account(services.store, account)
        akid, secret = keys.access_key_id, keys.secret_access_key
    else:
        akid, secret = akids[0], found[1]
    return {"endpoint_url": server.url, "verify": server.ca_bundle, "aws_access_key_id": akid,
            "aws_secret_access_key": secret}


def register(app: typer.Typer) -> None:
    @app.command("grant")
    def grant(
        cluster: Annotated[str, typer.Option("--cluster", help="Cluster whose jobs get access.")],
        project: Annotated[str, typer.Option("--project", help="Project (may contain '_').")],
        account: Annotated[str, typer.Option("--account", help="Target AWS account of the role.")],
        environment: Annotated[list[str] | None, typer.Option("--environment", help="Environment (repeatable).")]
        = None,
        all_environments: Annotated[bool, typer.Option("--all-environments", help="Any environment.")] = False,
        role_name: Annotated[str | None, typer.Option(
            "--role-name", help="One role, so named, for all the environments given. Default: one role per "
                                "environment, <project with _ as ->-<env> (cross_account_sample in dev: "
                                "cross-account-sample-dev); <project with _ as -> with --all-environments.")] = None,
        policy: Annotated[list[Path] | None, typer.Option("--policy", help="Permission policy file (repeatable).")]
        = None,
        allow: Annotated[list[str] | None, typer.Option("--allow", help="ACTION=RESOURCE, e.g. "
                                                         "s3:GetObject=arn:aws:s3:::bucket/* (repeatable).")] = None,
        max_session_duration: Annotated[int, typer.Option(help="Role MaxSessionDuration (s).")] = 3600,
        apply: Annotated[bool, typer.Option("--apply", help="Create it through IAM (idempotent).")] = False,
        update: Annotated[bool, typer.Option("--update", help="With --apply: fix a drifted policy.")] = False,
        terraform: Annotated[bool, typer.Option("--terraform", help="Print Terraform.")] = False,
        cloudformation: Annotated[bool, typer.Option("--cloudformation", help="Print CloudFormation JSON.")] = False,
        policy_json: Annotated[bool, typer.Option(
            "--policy-json", help="Print the trust policy JSON (several roles: role name -> trust policy).")] = False,
        aws_cli: Annotated[bool, typer.Option("--aws-cli", help="Print AWS CLI commands.")] = False,
        use_aws: Annotated[bool, typer.Option("--aws", help="Apply to AWS (standard credentials/env).")] = False,
        profile: Annotated[str | None, typer.Option("--profile", help="AWS profile (implies --aws).")] = None,
        endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="IAM endpoint override.")] = None,
        json_out: Json = False,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
    ) -> None:
        """Least-privilege role(s) in ACCOUNT for jobs of PROJECT in the given environments on CLUSTER."""
        from rolebridge import errors
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.clusters import get_cluster
        from rolebridge.tools import render
        from rolebridge.tools.grant import ALL_ENVIRONMENTS, ClusterFacts, apply_plan, combined_report, make_plans

        modes = [apply, terraform, cloudformation, policy_json, aws_cli]
        if sum(modes) > 1:
            raise errors.ValidationError("Choose one of --apply, --terraform, --cloudformation, --policy-json, "
                                         "--aws-cli.")
        if all_environments and environment:
            raise errors.ValidationError("--all-environments and --environment exclude each other.")
        services = open_services(data_dir, database_url)
        info = get_cluster(services, cluster)
        facts = ClusterFacts(info.name, info.account_id, info.oidc_url, info.thumbprint, info.audience)
        policies: dict[str, dict[str, Any]] = {}
        for path in policy or []:
            try:
                policies[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise errors.ValidationError(f"--policy {path}: {exc}") from exc
        envs = [ALL_ENVIRONMENTS] if all_environments else list(environment or [])
        plans = make_plans(facts, project, envs, account, role_name=role_name, policies=policies,
                           allows=allow or [], max_session_duration=max_session_duration)
        plan = plans[0]  # what the roles share: provider, project, permission policies

        def arn_lines() -> list[str]:
            if len(plans) == 1:
                return [f"role ARN for jobs: {plan.role_arn}"]
            return [f"role ARN for jobs in {', '.join(p.environments)}: {p.role_arn}" for p in plans]

        if terraform:
            typer.echo(render.terraform(plans), nl=False)
        elif cloudformation:
            print_json(render.cloudformation(plans))
        elif policy_json:
            print_json(render.policy_json(plans))
        elif aws_cli:
            typer.echo(render.aws_cli(plans), nl=False)
        elif apply:
            from rolebridge.cli.aws import iam_client

            if use_aws or profile:
                target: dict[str, Any] = {"profile": profile, "endpoint_url": endpoint_url}
            else:
                target = _own_iam_credentials(services, account)
                target["endpoint_url"] = endpoint_url or target["endpoint_url"]
            with iam_client(**target) as iam:
                reports = [apply_plan(p, iam, update=update) for p in plans]
            report = combined_report(reports)
            if json_out:
                print_json(report)
            else:
                for line in report["changes"]:
                    typer.echo(f"changed: {line}")
                if not report["changed"] and not report["drift"]:
                    typer.echo("no changes: provider, role and policies are already as granted")
                for diff in report["drift"]:
                    typer.echo(f"drift (not changed; re-run with --update to fix):\n{diff}")
                for line in arn_lines():
                    typer.echo(line)
            if report["drift"]:
                raise typer.Exit(1)
            return
        elif json_out:
            roles = [{"role_name": p.role_name, "role_arn": p.role_arn, "environments": p.environments,
                      "subjects": p.subjects, "trust_policy": p.trust_policy} for p in plans]
            out: dict[str, Any] = {"provider_arn": plan.provider_arn, "provider_url": plan.provider_url,
                                   "policies": plan.policies, "roles": roles}
            if len(plans) == 1:
                out.update({"role_arn": plan.role_arn, "trust_policy": plan.trust_policy, "subjects": plan.subjects})
            print_json(out)
            return
        else:
            typer.echo(f"OIDC provider: {plan.provider_arn} (URL {facts.oidc_url}, client ID {facts.audience})")
            for p in plans:
                typer.echo(f"role: {p.role_arn} (jobs in {', '.join(p.environments)})\ntrust policy:")
                print_json(p.trust_policy)
            for name, doc in plan.policies.items():
                typer.echo(f"policy {name}{' (on each role)' if len(plans) > 1 else ''}:")
                print_json(doc)
            typer.echo("(print it as --terraform, --cloudformation, --policy-json or --aws-cli; or --apply it)")
        for line in arn_lines():
            err_console.print(line, highlight=False, soft_wrap=True)
