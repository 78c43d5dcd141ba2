"""`rolebridge cluster create|list|rotate-keys`: clusters and their OIDC issuers."""

from __future__ import annotations

from typing import Annotated

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json


def register(app: typer.Typer) -> None:
    cluster = typer.Typer(help="Clusters and their OIDC issuers.", no_args_is_help=True)
    app.add_typer(cluster, name="cluster")

    @cluster.command("create")
    def create(name: Annotated[str, typer.Argument(help="Cluster name (DNS label).")],
               account: Annotated[str, typer.Option("--account", help="AWS account the cluster runs in.")],
               alg: Annotated[str, typer.Option(help="Signing algorithm: RS256 or ES256.")] = "RS256",
               audience: Annotated[str, typer.Option(help="Default token audience.")] = "sts.amazonaws.com",
               token_lifetime: Annotated[int, typer.Option(help="Job token lifetime, seconds.")] = 86400,
               issuer_url: Annotated[str | None, typer.Option(
                   "--issuer-url", help="Publish the issuer elsewhere (see `issuer publish`): tokens carry this iss.")]
               = None,
               data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False) -> None:
        """Create a cluster: signing key, issuer, and its OIDC provider in the cluster's account."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.clusters import create_cluster

        services = open_services(data_dir, database_url, fix_public_url=True)
        info = create_cluster(services, name, account, alg=alg, audience=audience, token_lifetime=token_lifetime,
                              external_issuer_url=issuer_url)
        if json_out:
            print_json(info.to_dict())
        else:
            console.print(f"cluster {info.name} in {info.account_id}\n  oidc_url   {info.oidc_url}\n"
                          f"  thumbprint {info.thumbprint}")

    @cluster.command("list")
    def list_(data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False) -> None:
        """Each cluster's OIDC URL and the thumbprint a target account registers."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.clusters import list_clusters

        clusters = list_clusters(open_services(data_dir, database_url))
        if json_out:
            print_json([c.to_dict() for c in clusters])
            return
        # plain columns, never truncated: the URL and thumbprint are copied into other accounts' setup
        rows = [("NAME", "ACCOUNT", "OIDC URL", "THUMBPRINT")]
        rows += [(c.name, c.account_id, c.oidc_url, c.thumbprint) for c in clusters]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            typer.echo("  ".join([*(v.ljust(w) for v, w in zip(r[:3], widths, strict=True)), r[3]]))

    @cluster.command("rotate-keys")
    def rotate(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """New signing key; old public keys stay in the JWKS until their tokens expire."""
        from rolebridge.bootstrap import open_services
        from rolebridge.platform.clusters import rotate_keys

        console.print(f"new signing key {rotate_keys(open_services(data_dir, database_url), name)}")
