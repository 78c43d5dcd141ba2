"""`rolebridge token`: a signed service-account token, like `kubectl create token`."""

from __future__ import annotations

from typing import Annotated

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir


def register(app: typer.Typer) -> None:
    @app.command("token")
    def token(cluster: Annotated[str, typer.Option("--cluster", help="Cluster whose issuer signs.")],
              namespace: Annotated[str, typer.Option("--namespace", help="Namespace (environment).")],
              service_account: Annotated[str, typer.Option("--service-account", help="Service account name.")],
              audience: Annotated[str | None, typer.Option("--audience", help="Audience (default: cluster's).")] = None,
              expires_in: Annotated[int | None, typer.Option("--expires-in", help="Lifetime in seconds.")] = None,
              data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Print a signed JWT for system:serviceaccount:NAMESPACE:SERVICE_ACCOUNT."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.clusters import mint_token

        typer.echo(mint_token(open_services(data_dir, database_url), cluster, namespace=namespace,
                              service_account=service_account, audience=audience, expires_in=expires_in))
