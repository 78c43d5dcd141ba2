"""`rolebridge job sync|list|run`: jobs declared in a project file (`rolebridge.yaml`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json
from rolebridge.cli.run import ImageOpt, KubeContextOpt, RunnerOpt

ProjectDir = Annotated[str | None, typer.Option("--project-dir", help="Directory holding rolebridge.yaml.")]


def register(app: typer.Typer) -> None:
    job = typer.Typer(help="Jobs declared in project files (rolebridge.yaml).", no_args_is_help=True)
    app.add_typer(job, name="job")

    @job.command("sync")
    def sync(project_dir: Annotated[str, typer.Argument(help="Project directory or rolebridge.yaml.")] = ".",
             data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False) -> None:
        """Register (or update) the project and its jobs from its project file."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.projects import load_project_file, save_project

        pf = load_project_file(project_dir)
        save_project(open_services(data_dir, database_url), pf)
        if json_out:
            print_json(pf.to_dict())
        else:
            console.print(f"project {pf.name}: {len(pf.jobs)} job(s) {', '.join(pf.jobs)}", highlight=False)

    @job.command("list")
    def list_(data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False) -> None:
        """Registered projects and their jobs."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.projects import list_projects

        projects = list_projects(open_services(data_dir, database_url))
        if json_out:
            print_json([p.to_dict() for p in projects])
            return
        for p in projects:
            runs_on = "".join(f"  {k}={v}" for k, v in p.runner_settings.items())
            console.print(f"{p.name}  (default aws_role: {p.aws_role or '-'}){runs_on}", highlight=False)
            for j in p.jobs.values():
                console.print(f"  {p.name}/{j.name}: {' '.join([*j.command, *j.args])}"
                              f"  aws_role={j.aws_role or '(project default)'}  retries={j.retries}"
                              + "".join(f"  {k}={v}" for k, v in j.runner_settings.items()),
                              highlight=False)

    @job.command("run")
    def run(
        target: Annotated[str, typer.Argument(help="PROJECT/JOB")],
        environment: Annotated[str, typer.Option("--environment", help="Environment (= namespace).")],
        project_dir: ProjectDir = None,
        cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster (default: the environment's).")]
        = None,
        aws_role: Annotated[str | None, typer.Option("--aws-role", help="Overrides the job's and the project's.")]
        = None,
        region: Annotated[str, typer.Option(help="AWS region for the job's SDKs.")] = "us-east-1",
        detach: Annotated[bool, typer.Option("--detach", help="Submit to the server's API; print the run id.")]
        = False,
        runner: RunnerOpt = None,
        image: ImageOpt = None,
        kube_context: KubeContextOpt = None,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
    ) -> None:
        """Run job JOB of PROJECT in ENVIRONMENT with its aws_role (explicit > job > project default).

        The job runs in its project's directory (the one it was last synced from, or --project-dir), or,
        with `runner: kubernetes` in the project file (or --runner kubernetes), as a Kubernetes Job."""
        from rolebridge import errors
        from rolebridge.bootstrap import open_services
        from rolebridge.cli.run import run_foreground
        from rolebridge.platform import projects as proj
        from rolebridge.platform.runs import RunRequest

        project, sep, name = target.partition("/")
        if not sep or not project or not name:
            raise errors.ValidationError(f"{target!r}: name the job as PROJECT/JOB.")
        services = open_services(data_dir, database_url)
        if project_dir is not None:
            pf = proj.load_project_file(project_dir)
            if pf.name != project:
                raise errors.ValidationError(f"{project_dir} declares project {pf.name}, not {project}.")
            proj.save_project(services, pf)
        pf = proj.get_project(services, project)
        spec = pf.jobs.get(name)
        if spec is None:
            raise errors.NoSuchEntity(f"Project {project} has no job {name} (jobs: {', '.join(pf.jobs) or 'none'}).")
        cluster_name = proj.cluster_for_environment(services, environment, cluster)
        where = proj.choose_runner({"runner": runner, "image": image, "kube_context": kube_context}, spec, pf,
                                   environment=environment, project_name=project)
        if not where.kubernetes and (image is not None or kube_context is not None):
            raise errors.ValidationError(
                f"--image and --kube-context apply to Kubernetes runs; {target} runs locally "
                "(add --runner kubernetes).")
        if detach and where.kubernetes:
            raise errors.ValidationError(
                f"{target} runs on Kubernetes, which --detach (the server's API) does not submit to yet: "
                "run it without --detach.")
        if detach:
            from rolebridge.cli.run_scope import cluster_client

            client = cluster_client(services, cluster_name)
            row = client.submit(project=project, job=name, environment=environment, cluster=cluster_name,
                                aws_role=aws_role, region=region)
            typer.echo(row["id"])
            return
        role = proj.choose_role(aws_role, spec, pf.aws_role, environment=environment, project=project)
        req = RunRequest(cluster=cluster_name, project=project, environment=environment,
                         command=[*spec.command, *spec.args], aws_role=role, job=name, env=spec.env,
                         retries=spec.retries, retry_backoff=spec.retry_backoff, region=region,
                         cwd=None if where.kubernetes else pf.workdir())
        sys.exit(run_foreground(services, req, where))
