"""`rolebridge audit [--account] [--event-name] [--since] [--json]` and `rolebridge audit export`.

Reads the trail straight from the database (works whether or not a server is running).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json

Account = Annotated[str | None, typer.Option("--account", help="Events acting on, or by, this account.")]
EventName = Annotated[str | None, typer.Option("--event-name", help="e.g. AssumeRoleWithWebIdentity.")]
Since = Annotated[str | None, typer.Option("--since", help="ISO 8601, epoch seconds, or an age: 15m, 7d.")]
Until = Annotated[str | None, typer.Option("--until", help="Same forms as --since.")]
ErrorsOnly = Annotated[bool, typer.Option("--errors", help="Only refused or failed calls.")]


def _filters(account: str | None, event_name: str | None, since: str | None, until: str | None,
             errors_only: bool) -> dict[str, Any]:
    from rolebridge.audit.query import parse_time

    try:
        return {"account": account, "event_name": event_name, "errors_only": errors_only,
                "since": parse_time(since) if since else None, "until": parse_time(until) if until else None}
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _open(data_dir: str | None, database_url: str | None):  # type: ignore[no-untyped-def]
    from rolebridge.config import resolve_paths
    from rolebridge.store import open_store

    return open_store(resolve_paths(data_dir, database_url))


def _who(event: dict[str, Any]) -> str:
    ident = event.get("userIdentity") or {}
    if ident.get("type") == "WebIdentityUser":
        return f"{ident.get('identityProvider')}:{ident.get('userName')}"
    return str(ident.get("arn") or ident.get("accessKeyId") or ident.get("type"))


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="The audit trail: every IAM and STS call, allowed or refused.",
                        invoke_without_command=True)
    app.add_typer(audit, name="audit")

    @audit.callback()
    def list_events(ctx: typer.Context, account: Account = None, event_name: EventName = None,
                    since: Since = None, until: Until = None, errors_only: ErrorsOnly = False,
                    limit: Annotated[int, typer.Option(help="The newest this many matching events.", min=0)] = 1000,
                    data_dir: DataDir = None, database_url: DatabaseUrl = None,
                    json_out: Json = False) -> None:
        """List CloudTrail-shaped events: the newest --limit that match, printed oldest first."""
        if ctx.invoked_subcommand is not None:
            return
        from rolebridge.audit.query import iter_events

        store = _open(data_dir, database_url)
        try:
            events = list(iter_events(store, limit=limit, newest=True,
                                      **_filters(account, event_name, since, until, errors_only)))
        finally:
            store.dispose()
        if json_out:
            print_json(events)
            return
        for e in events:
            typer.echo("  ".join([e["eventTime"], e["eventSource"].split(".")[0], e["eventName"],
                                  e.get("recipientAccountId") or "-", _who(e),
                                  e.get("sourceIPAddress") or "-", e.get("errorCode") or "ok"]))
        if not events:
            console.print("no matching events")

    @audit.command("export")
    def export(jsonl: Annotated[str, typer.Option("--jsonl", help="File to write (- for stdout).")] = "-",
               account: Account = None, event_name: EventName = None, since: Since = None,
               until: Until = None, errors_only: ErrorsOnly = False,
               data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Write matching events as JSON lines (one event per line), e.g. for a SIEM."""
        from rolebridge.audit.query import export_jsonl

        store = _open(data_dir, database_url)
        try:
            filters = _filters(account, event_name, since, until, errors_only)
            if jsonl == "-":
                count = export_jsonl(store, sys.stdout, **filters)
            else:
                with open(jsonl, "w", encoding="utf-8") as out:
                    count = export_jsonl(store, out, **filters)
                typer.echo(json.dumps({"exported": count, "file": jsonl}), err=True)
        finally:
            store.dispose()
