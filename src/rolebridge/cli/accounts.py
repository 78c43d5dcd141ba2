"""`rolebridge account create`: an account and its admin keys."""

from __future__ import annotations

from typing import Annotated

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json


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
