"""`rolebridge runs list|show|logs|cancel|limit`: job runs, through the platform API when a server runs.

With a server running, these commands call ``/api`` with a bearer token derived from an
account's keys (the environment's keys, or the account's admin key held in the data dir); with
no server they read the store directly, so past runs stay inspectable offline.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json

Account = Annotated[str | None, typer.Option("--account", help="Act as this account (its admin key).")]


def _server(services: Any) -> Any:
    from rolebridge import errors
    from rolebridge.platform.server_info import running_server

    try:
        return running_server(services.store.paths.data_dir)
    except errors.ServiceUnavailable:
        return None


def client_for_account(services: Any, account_id: str | None, server: Any = None) -> Any:
    from rolebridge.platform.api_client import PlatformClient, env_keys, stored_keys

    server = server or _server(services)
    if server is None:
        from rolebridge.platform.server_info import running_server

        running_server(services.store.paths.data_dir)  # raises the usual "start a server" error
    keys = env_keys() if account_id is None else None
    if keys is None:
        if account_id is None:
            raise ValueError("account_id needed")
        keys = stored_keys(services, account_id)
    return PlatformClient(server, *keys)


def client_for_cluster(services: Any, cluster: str) -> Any:
    from rolebridge.platform.api_client import env_keys
    from rolebridge.platform.clusters import get_cluster

    return client_for_account(services, None if env_keys() else get_cluster(services, cluster).account_id)


def _clients(services: Any, account: str | None) -> list[Any] | None:
    """API clients to ask (one per account), or None to read the store directly."""
    from rolebridge.platform.api_client import cluster_accounts, env_keys

    server = _server(services)
    if server is None:
        return None
    if account is None and env_keys():
        return [client_for_account(services, None, server)]
    if account:
        return [client_for_account(services, account, server)]
    from rolebridge import errors

    clients = []
    for a in cluster_accounts(services):
        try:  # an account made only by `cluster create` has no admin key, and so no runs to show
            clients.append(client_for_account(services, a, server))
        except errors.AWSError:
            continue
    return clients


def _run_account(services: Any, run_id: str) -> str:
    from rolebridge.platform.runs import get_run

    return get_run(services, run_id)["account_id"]


def _one_client(services: Any, run_id: str, account: str | None) -> Any:
    from rolebridge.platform.api_client import env_keys

    if _server(services) is None:
        return None
    if account is None and env_keys():
        return client_for_account(services, None)
    return client_for_account(services, account or _run_account(services, run_id))


def _when(ts: float | None) -> str:
    import datetime as dt

    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _show(run: dict[str, Any]) -> None:
    outcome = run.get("assume") or {}
    became = outcome.get("assumed_arn") if outcome.get("ok") else (
        f"refused: {outcome.get('error_code')}: {outcome.get('error_message')}" if outcome else "-")
    lines = [f"run {run['id']}  {run['status']}",
             f"  project/job   {run['project']}/{run['job'] or '-'} in {run['environment']} on {run['cluster']}",
             f"  subject       {run['subject']}",
             f"  role          {run['role_arn'] or '-'}",
             f"  became        {became}"]
    if outcome and not outcome.get("ok"):
        lines += [f"  cause         {outcome.get('detail')}", f"  fix           {outcome.get('fix')}"]
    lines += [f"  attempts      {run['attempts']} of {run['max_attempts']}",
              f"  started/ended {_when(run['started_at'])} / {_when(run['ended_at'])}",
              f"  exit code     {run['exit_code']}"]
    if run.get("message"):
        lines.append(f"  message       {run['message']}")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    runs_app = typer.Typer(help="Job runs: status, identity, logs, cancellation.", no_args_is_help=True)
    app.add_typer(runs_app, name="runs")

    @runs_app.command("list")
    def list_(status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
              project: Annotated[str | None, typer.Option(help="Only this project's runs.")] = None,
              limit: Annotated[int, typer.Option(help="At most this many (newest first).")] = 50,
              account: Account = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
              json_out: Json = False) -> None:
        """Runs, newest first, with who each one became."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform import runs

        services = open_services(data_dir, database_url)
        clients = _clients(services, account)
        if clients is None:
            rows = runs.list_runs(services, account_id=account, project=project, status=status, limit=limit)
        else:
            rows = [r for c in clients for r in c.runs(status=status, project=project, limit=limit)]
            rows.sort(key=lambda r: r["created_at"], reverse=True)
            rows = rows[:limit]
        if json_out:
            print_json(rows)
            return
        for r in rows:  # plain lines, one per run: greppable and never truncated
            outcome = r.get("assume") or {}
            became = outcome.get("assumed_arn") or (outcome.get("error_code") if outcome else None) or "-"
            code = "-" if r["exit_code"] is None else str(r["exit_code"])
            typer.echo(f"{r['id']}  {r['status']:<9}  {r['project']}/{r['job'] or '-'}  {r['environment']}  "
                       f"{r['service_account']}  {became}  exit={code}")

    @runs_app.command("show")
    def show(run_id: str, account: Account = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
             json_out: Json = False) -> None:
        """One run: identity, STS outcome of its first assume, status, times, exit code."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform import runs

        services = open_services(data_dir, database_url)
        client = _one_client(services, run_id, account)
        row = client.run(run_id) if client else runs.get_run(services, run_id)
        if json_out:
            print_json(row)
        else:
            _show(row)

    @runs_app.command("logs")
    def logs(run_id: str, follow: Annotated[bool, typer.Option("--follow", "-f", help="Until the run ends.")]
             = False, account: Account = None, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """The run's captured stdout and stderr."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform import runs

        services = open_services(data_dir, database_url)
        client = _one_client(services, run_id, account)
        out = sys.stdout
        if client is not None:
            if follow:
                for chunk in client.follow(run_id):
                    out.write(chunk)
                    out.flush()
            else:
                out.write(client.logs(run_id)["data"])
            return
        if follow:
            for data in runs.follow_log(services, run_id):
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
        else:
            sys.stdout.buffer.write(runs.read_log(services, run_id, 0, runs.log_max() + 4096)[0])

    @runs_app.command("cancel")
    def cancel(run_id: str, account: Account = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
               json_out: Json = False) -> None:
        """Stop a run: its processes are killed and its token file deleted."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform import runs

        services = open_services(data_dir, database_url)
        client = _one_client(services, run_id, account)
        row = client.cancel(run_id) if client else runs.cancel_run(services, run_id)
        if json_out:
            print_json(row)
        else:
            console.print(f"run {row['id']} {row['status']}", highlight=False)
        if row["status"] not in runs.TERMINAL:
            raise typer.Exit(1)

    @runs_app.command("limit")
    def limit(cluster: Annotated[str, typer.Option("--cluster", help="Cluster.")],
              value: Annotated[int | None, typer.Argument(help="New limit (omit to show).")] = None,
              data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Show or set how many runs may run at once on a cluster (others wait as pending)."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform import runs

        services = open_services(data_dir, database_url)
        if value is not None:
            runs.set_run_limit(services, cluster, value)
        console.print(f"cluster {cluster}: at most {runs.run_limit(services, cluster)} concurrent runs")
