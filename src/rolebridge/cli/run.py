"""`rolebridge run`: run a command as a job with its own short-lived AWS identity."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, err_console


def register(app: typer.Typer) -> None:
    @app.command("run", context_settings={"allow_interspersed_args": False})
    def run(
        command: Annotated[list[str], typer.Argument(help="The job's command and arguments (after --).")],
        cluster: Annotated[str, typer.Option("--cluster", help="Cluster to run on.")],
        project: Annotated[str, typer.Option("--project", help="Project (may contain '_').")],
        environment: Annotated[str, typer.Option("--environment", help="Environment (= namespace).")],
        aws_role: Annotated[str | None, typer.Option("--aws-role", help="Role name (cluster's account) or full ARN.")]
        = None,
        region: Annotated[str, typer.Option(help="AWS region for the job's SDKs.")] = "us-east-1",
        preflight: Annotated[bool, typer.Option(help="Assume the role before starting; explain a refusal.")]
        = True,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
    ) -> None:
        """Run CMD as a job of PROJECT in ENVIRONMENT; its SDKs get the role's credentials."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform import preflight as pf
        from rolebridge.platform.clusters import get_cluster, mint_token
        from rolebridge.platform.roles import (
            check_environment,
            check_project,
            new_service_account,
            resolve_role_arn,
            session_name,
        )
        from rolebridge.platform.runner import JobSpec, start_job, wait_forwarding_signals
        from rolebridge.platform.server_info import running_server

        services = open_services(data_dir, database_url)
        info = get_cluster(services, cluster)
        check_project(project)
        check_environment(environment)
        sa = new_service_account(project)
        server = running_server(services.store.paths.data_dir)
        role_arn = resolve_role_arn(aws_role, info.account_id) if aws_role else ""

        def mint() -> str:
            return mint_token(services, cluster, namespace=environment, service_account=sa)

        sess = session_name(sa)
        if role_arn and preflight:
            token = mint()
            outcome = pf.assume(server.url, server.ca_bundle, role_arn=role_arn, session_name=sess, token=token)
            if not outcome.ok:
                pf.explain_refusal(services, outcome, role_arn=role_arn, session_name=sess, token=token,
                                   cluster_account=info.account_id, bare_role=not aws_role.startswith("arn:"))
                err_console.print(
                    f"[bold red]job refused:[/] system:serviceaccount:{environment}:{sa} cannot assume {role_arn}: "
                    f"{outcome.error_code}: {outcome.error_message}", highlight=False, soft_wrap=True)
                if outcome.detail:
                    err_console.print(f"  cause: {outcome.detail}", highlight=False, soft_wrap=True)
                err_console.print(f"  fix:   {outcome.fix}", highlight=False, soft_wrap=True)
                raise typer.Exit(1)
        spec = JobSpec(command=command, role_arn=role_arn, session_name=sess, sts_url=server.url,
                       ca_bundle=server.ca_bundle, region=region)
        job = start_job(spec, mint, info.token_lifetime, runs_dir=services.store.paths.runs_dir)
        code = wait_forwarding_signals(job)
        sys.exit(code if code >= 0 else 128 - code)
