"""`rolebridge access`: which jobs can assume a role, or which roles a project's jobs can assume."""

from __future__ import annotations

from typing import Annotated

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json


def register(app: typer.Typer) -> None:
    @app.command("access")
    def access(
        role: Annotated[str | None, typer.Option("--role", help="Role ARN: who can assume it.")] = None,
        project: Annotated[str | None, typer.Option("--project", help="With --environment: what it can assume.")]
        = None,
        environment: Annotated[str | None, typer.Option("--environment", help="The project's environment.")] = None,
        cluster: Annotated[str | None, typer.Option("--cluster", help="Only this cluster.")] = None,
        json_out: Json = False,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
    ) -> None:
        """Reasoned over the trust policies' patterns and the service-account naming scheme (no sampling)."""
        from rich.table import Table

        from rolebridge import errors
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.roles import check_environment, check_project
        from rolebridge.tools.access import roles_for, who_can_assume

        services = open_services(data_dir, database_url)
        if role:
            rows = [r for r in who_can_assume(services, role) if cluster is None or r["cluster"] == cluster]
            if json_out:
                print_json({"role_arn": role, "who": rows})
                return
            table = Table("cluster", "environment", "project", "subject pattern", title=f"who can assume {role}")
            for r in rows:
                table.add_row(r["cluster"], r["environment"], r["project"], r["subject"])
            console.print(table if rows else f"no job of any cluster can assume {role}")
            return
        if not (project and environment):
            raise errors.ValidationError("Give --role ARN, or --project P and --environment E.")
        check_project(project)
        check_environment(environment)
        rows = roles_for(services, project, environment, cluster=cluster)
        if json_out:
            print_json({"project": project, "environment": environment, "roles": rows})
            return
        table = Table("cluster", "account", "role", "every run?", "why",
                      title=f"roles jobs of {project} in {environment} can assume")
        for r in rows:
            table.add_row(r["cluster"], r["account"], r["role_arn"], "yes" if r["verdict"] == "always"
                          else "depends on the run's uuid", r["reason"])
        console.print(table if rows else f"jobs of {project} in {environment} can assume no role")
