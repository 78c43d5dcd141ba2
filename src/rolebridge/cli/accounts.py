"""`rolebridge account create`: an account and its admin keys; `rolebridge account guardrail
put|list|delete`: the account's guardrail policies (SCP style, ``iam/guardrails.py``).

Guardrails are an operator's command (data-dir or database access), not an IAM API call: the keys of
the account they limit must not be able to lift them, just as a member account cannot detach its SCPs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json, read_source

AccountArg = Annotated[str, typer.Argument(help="12-digit account ID.")]
NameArg = Annotated[str, typer.Argument(help="Guardrail name (1-128 of letters, digits, +=,.@_-).")]


def register(app: typer.Typer) -> None:
    account = typer.Typer(help="Accounts and their admin keys.", no_args_is_help=True)
    app.add_typer(account, name="account")

    @account.command("create")
    def create(account_id: Annotated[str, typer.Argument(help="12-digit account ID.")],
               data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False) -> None:
        """Create ACCOUNT_ID (if new) and print a fresh admin access key."""
        from rolebridge.bootstrap import open_services
        from rolebridge.iam.accounts import create_account

        services = open_services(data_dir, database_url)
        keys = create_account(services.store, account_id)
        if json_out:
            print_json(keys.to_dict())
        else:
            console.print(f"account {keys.account_id}\n  AWS_ACCESS_KEY_ID={keys.access_key_id}\n"
                          f"  AWS_SECRET_ACCESS_KEY={keys.secret_access_key}")

    guardrail = typer.Typer(
        help="Account-wide guardrail policies (SCP style): every principal of the account, its admin keys "
             "included, may do only what some guardrail allows, and any guardrail Deny wins.",
        no_args_is_help=True)
    account.add_typer(guardrail, name="guardrail")

    @guardrail.command("put")
    def put(account_id: AccountArg, name: NameArg,
            source: Annotated[str, typer.Argument(metavar="FILE|-", help="SCP document, or - for stdin.")],
            data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False) -> None:
        """Attach guardrail NAME to ACCOUNT_ID, or replace its document; running servers apply it at once."""
        from rolebridge.bootstrap import open_services
        from rolebridge.iam.guardrails import allows_anything, list_guardrails, put_guardrail

        document = read_source(source)
        services = open_services(data_dir, database_url)
        view, created = put_guardrail(services, account_id, name, document)
        if json_out:
            print_json({**view.to_dict(), "created": created})
        else:
            typer.echo(f"guardrail {view.name} {'attached to' if created else 'replaced on'} account "
                       f"{view.account_id}")
        if not allows_anything(list_guardrails(services.store, account_id)):
            typer.echo(f"warning: no guardrail of account {account_id} allows anything, so every call of its "
                       "principals (its admin keys too) is now refused. Guardrails are an allow-list, as SCPs "
                       "are: also attach one that allows what the account may do (AWS Organizations attaches "
                       "FullAWSAccess, Allow * on *, by default).", err=True)

    @guardrail.command("list")
    def list_(account_id: AccountArg, data_dir: DataDir = None, database_url: DatabaseUrl = None,
              json_out: Json = False) -> None:
        """The guardrails of ACCOUNT_ID (none: the account is not limited by any)."""
        from rolebridge.bootstrap import open_services
        from rolebridge.iam.guardrails import list_guardrails

        views = list_guardrails(open_services(data_dir, database_url).store, account_id)
        if json_out:
            print_json([v.to_dict() for v in views])
            return
        if not views:
            typer.echo(f"account {account_id} has no guardrails", err=True)
            return
        rows = [("NAME", "UPDATED", "CHARACTERS")] + [(v.name, v.updated, str(len(v.document))) for v in views]
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        for r in rows:
            typer.echo("  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2]]))

    @guardrail.command("delete")
    def delete(account_id: AccountArg, name: NameArg, data_dir: DataDir = None,
               database_url: DatabaseUrl = None) -> None:
        """Detach guardrail NAME from ACCOUNT_ID; running servers stop applying it at once."""
        from rolebridge.bootstrap import open_services
        from rolebridge.iam.guardrails import delete_guardrail

        delete_guardrail(open_services(data_dir, database_url), account_id, name)
        typer.echo(f"guardrail {name} deleted from account {account_id}")
