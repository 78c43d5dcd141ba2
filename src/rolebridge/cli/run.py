"""`rolebridge run`: run a command as a job with its own short-lived AWS identity.

The run is recorded like any other (`rolebridge runs list`), supervised by this process: the
job's output is shown here and kept in the run's log, Ctrl-C cancels it, and the exit status is
the job's.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, err_console


def print_refusal(run: dict[str, Any]) -> None:
    """The same three lines wherever a job is refused: what AWS said, why, and the fix."""
    outcome = run.get("assume") or {}
    err_console.print(
        f"[bold red]job refused:[/] {run['subject']} cannot assume {run['role_arn']}: "
        f"{outcome.get('error_code')}: {outcome.get('error_message')}", highlight=False, soft_wrap=True)
    if outcome.get("detail"):
        err_console.print(f"  cause: {outcome['detail']}", highlight=False, soft_wrap=True)
    err_console.print(f"  fix:   {outcome.get('fix')}", highlight=False, soft_wrap=True)


def run_foreground(services: Any, req: Any) -> int:
    """Record ``req`` as a run and supervise it here; returns the exit status for the shell."""
    from rolebridge.platform import runs
    from rolebridge.platform.server_info import running_server

    server = running_server(services.store.paths.data_dir)
    row = runs.create_run(services, req)
    sup = runs.Supervision(sts_url=server.url, ca_bundle=server.ca_bundle, echo=True, stdin=None,
                           on_refused=print_refusal)
    with runs.signals_cancel(sup):
        return runs.execute(services, row["id"], req, sup)


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
        from rolebridge import errors
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.projects import choose_role, get_project
        from rolebridge.platform.roles import check_environment, check_project
        from rolebridge.platform.runs import RunRequest

        if aws_role is not None and not aws_role.strip():
            raise errors.ValidationError("--aws-role is empty: give a role name, a role ARN, or leave it out.")
        services = open_services(data_dir, database_url)
        check_project(project)
        check_environment(environment)
        try:  # a registered project's default aws_role applies to ad-hoc runs too
            default = get_project(services, project).aws_role
        except errors.NoSuchEntity:
            default = None
        role = choose_role(aws_role, None, default, environment=environment, project=project)
        req = RunRequest(cluster=cluster, project=project, environment=environment, command=list(command),
                         aws_role=role, region=region, preflight=preflight)
        sys.exit(run_foreground(services, req))
