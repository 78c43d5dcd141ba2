"""`rolebridge runs list|show|logs|cancel|limit`: job runs, through the platform API when a server runs.

Whose runs: every account's (the CLI holds the data dir: it is the operator), or one account's with
``--account`` or ``ROLEBRIDGE_ACCESS_KEY_ID`` keys; see ``run_scope``. With a server running these
commands call ``/api``; with none they read the store directly, so past runs stay inspectable offline.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, err_console, print_json

Account = Annotated[str | None, typer.Option(
    "--account", help="Only this account's runs (default: every account's, or the ROLEBRIDGE_ACCESS_KEY_ID keys').")]


def _when(ts: float | None) -> str:
    import datetime as dt

    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


HEADER = ("ID", "STATUS", "JOB", "ENV", "ACCOUNT", "SERVICE ACCOUNT", "ROLE", "BECAME", "EXIT")


def _became(run: dict[str, Any]) -> str:
    """Who the run became, or why it was refused: AWS's code and the explain cause, e.g.
    ``AccessDenied (sub-namespace-mismatch)``."""
    outcome = run.get("assume") or {}
    if outcome.get("ok"):
        return outcome.get("assumed_arn") or "-"
    if not outcome:
        return "-"
    cause = outcome.get("cause")
    return f"{outcome.get('error_code')} ({cause})" if cause else str(outcome.get("error_code"))


def _exit(run: dict[str, Any]) -> str:
    return "-" if run["exit_code"] is None else str(run["exit_code"])


def _table(rows: list[dict[str, Any]]) -> list[str]:
    """A header and one plain line per run, columns aligned: greppable and never truncated."""
    cells = [HEADER, *((r["id"], r["status"], f"{r['project']}/{r['job'] or '-'}", r["environment"], r["account_id"],
                        r["service_account"], r["role_arn"] or "-", _became(r), _exit(r)) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]) for row in cells]


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
    placement = run.get("placement") or {}
    if placement.get("runner") == "kubernetes":
        lines.append(f"  runner        kubernetes: Job {placement.get('namespace')}/{placement.get('job')}, "
                     f"context {placement.get('context') or '-'}, image {placement.get('image')}")
    lines += [f"  attempts      {run['attempts']} of {run['max_attempts']}",
              f"  started/ended {_when(run['started_at'])} / {_when(run['ended_at'])}",
              f"  exit code     {_exit(run)}"]
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
        from rolebridge.cli.run_scope import list_runs, scope_of

        services = open_services(data_dir, database_url)
        scope = scope_of(services, account)
        if scope.account_id is not None:  # narrowed (--account or keys): said on stderr, --json stays parseable
            err_console.print(f"runs of account {scope.account_id} only ({scope.chosen_by}); {scope.widen()}",
                              highlight=False, soft_wrap=True)
        rows = list_runs(services, scope, status=status, project=project, limit=limit)
        if json_out:
            print_json(rows)
            return
        if not rows:
            err_console.print("no runs", highlight=False)
            return
        for line in _table(rows):
            typer.echo(line)

    @runs_app.command("show")
    def show(run_id: str, account: Account = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
             json_out: Json = False) -> None:
        """One run: identity, STS outcome of its first assume, status, times, exit code."""
        from rolebridge.bootstrap import open_services
        from rolebridge.cli.run_scope import run_client, scope_of
        from rolebridge.platform import runs

        services = open_services(data_dir, database_url)
        client = run_client(services, run_id, scope_of(services, account))
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
        from rolebridge.cli.run_scope import run_client, scope_of
        from rolebridge.platform import runs

        services = open_services(data_dir, database_url)
        client = run_client(services, run_id, scope_of(services, account))
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
        """Stop a run: its processes are killed and its token file deleted (on Kubernetes: its Job and
        service account are deleted)."""
        from rolebridge.bootstrap import open_services
        from rolebridge.cli.run_scope import run_client, scope_of
        from rolebridge.platform import runs

        services = open_services(data_dir, database_url)
        client = run_client(services, run_id, scope_of(services, account))
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
