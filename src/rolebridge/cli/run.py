"""`rolebridge run`: run a command as a job with its own short-lived AWS identity.

The run is recorded like any other (`rolebridge runs list`), supervised by this process: the
job's output is shown here and kept in the run's log, Ctrl-C cancels it, and the exit status is
the job's.

``--runner kubernetes --image IMAGE [--kube-context CTX]`` sends the same run to a Kubernetes
cluster the IRSA way instead (``k8s.runner``); without it the run is the local process DESIGN.md
describes, whatever a project file says, so the contract of `rolebridge run` does not depend on state.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, err_console

RunnerOpt = Annotated[str | None, typer.Option(
    "--runner", help="Where the job runs: local (a process here, the default) or kubernetes (a Job, IRSA-style).")]
ImageOpt = Annotated[str | None, typer.Option("--image", help="Container image of the job (--runner kubernetes).")]
KubeContextOpt = Annotated[str | None, typer.Option(
    "--kube-context", help="kubeconfig context (--runner kubernetes; default: the current context).")]


def print_refusal(run: dict[str, Any]) -> None:
    """The same three lines wherever a job is refused: what AWS said, why, and the fix."""
    outcome = run.get("assume") or {}
    err_console.print(
        f"[bold red]job refused:[/] {run['subject']} cannot assume {run['role_arn']}: "
        f"{outcome.get('error_code')}: {outcome.get('error_message')}", highlight=False, soft_wrap=True)
    if outcome.get("detail"):
        err_console.print(f"  cause: {outcome['detail']}", highlight=False, soft_wrap=True)
    err_console.print(f"  fix:   {outcome.get('fix')}", highlight=False, soft_wrap=True)


def run_foreground(services: Any, req: Any, where: Any = None) -> int:
    """Record ``req`` as a run and supervise it here; returns the exit status for the shell.

    ``where`` (a ``projects.RunnerChoice``) sends it to Kubernetes when it says so."""
    from rolebridge.platform import runs
    from rolebridge.platform.server_info import running_server

    if where is not None and where.kubernetes:
        return run_on_kubernetes_foreground(services, req, where)

    server = running_server(services.store.paths.data_dir)
    row = runs.create_run(services, req)
    sup = runs.Supervision(sts_url=server.url, ca_bundle=server.ca_bundle, echo=True, stdin=None,
                           on_refused=print_refusal)
    with runs.signals_cancel(sup):
        return runs.execute(services, row["id"], req, sup)


def run_on_kubernetes_foreground(services: Any, req: Any, where: Any) -> int:
    """``req`` as a Kubernetes Job supervised here: Ctrl-C deletes the Job, the pods' output is shown when
    the Job ends, the exit status is the container's. The kubeconfig is checked before the run is
    recorded, so a missing client, kubeconfig or context leaves no run behind."""
    from rolebridge.k8s.runner import KubernetesRunner, KubernetesTarget, execute_on_kubernetes
    from rolebridge.platform import runs

    runner = KubernetesRunner.connect(where.kube_context)
    row = runs.create_run(services, req)
    err_console.print(f"run {row['id']}: Job {req.environment}/rb-{row['id']} on Kubernetes context "
                      f"{runner.context}, service account {row['service_account']}", highlight=False, soft_wrap=True)
    # only its stop flag is used: the pod's token and STS endpoint come from Kubernetes, not from here
    sup = runs.Supervision(sts_url="", ca_bundle="", echo=True)
    target = KubernetesTarget(image=where.image, env=dict(req.env), region=req.region)
    with runs.signals_cancel(sup):
        code = execute_on_kubernetes(services, row["id"], runner, target, stop=sup.stop, echo=True)
    final = runs.get_run(services, row["id"])
    if final["status"] != "succeeded":
        err_console.print(f"run {row['id']} {final['status']}: {final['message'] or '-'}", highlight=False,
                          soft_wrap=True)
    return code


def choose_where(runner: str | None, image: str | None, kube_context: str | None) -> Any:
    """`rolebridge run`'s own flags only (a project file's runner settings are for `job run`)."""
    from rolebridge import errors
    from rolebridge.platform.projects import RUNNERS, RunnerChoice

    if runner not in (None, *RUNNERS):
        raise errors.ValidationError(f"--runner must be one of {', '.join(RUNNERS)}, not {runner!r}.")
    if runner != "kubernetes":
        if image is not None or kube_context is not None:
            raise errors.ValidationError("--image and --kube-context apply to --runner kubernetes only.")
        return RunnerChoice()
    if not (image or "").strip():
        raise errors.ValidationError("--runner kubernetes needs --image IMAGE (the job's container image).")
    return RunnerChoice("kubernetes", image.strip() if image else None, kube_context)


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
        runner: RunnerOpt = None,
        image: ImageOpt = None,
        kube_context: KubeContextOpt = None,
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
        where = choose_where(runner, image, kube_context)
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
        sys.exit(run_foreground(services, req, where))
