"""`rolebridge issuer publish NAME DIR`: a cluster's discovery document and JWKS as static files.

For real AWS: host DIR at the cluster's issuer URL (e.g. a public bucket, created with
`cluster create --issuer-url`), then register that URL as an IAM OIDC provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, console


def register(app: typer.Typer) -> None:
    issuer = typer.Typer(help="Publish cluster issuers for AWS (or anyone) to trust.", no_args_is_help=True)
    app.add_typer(issuer, name="issuer")

    @issuer.command("publish")
    def publish(name: Annotated[str, typer.Argument(help="Cluster name.")],
                directory: Annotated[Path, typer.Argument(help="Directory to write the files into.")],
                data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Write .well-known/openid-configuration and keys.json (public keys only); republish after rotation."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.clusters import get_cluster, publish_issuer

        services = open_services(data_dir, database_url)
        for path in publish_issuer(services, name, directory):
            console.print(f"wrote {path}")
        console.print(f"host {directory} at {get_cluster(services, name).oidc_url}")
