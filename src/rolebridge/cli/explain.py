"""`rolebridge explain`: replay every STS check of an AssumeRoleWithWebIdentity and say what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rolebridge.cli.options import DatabaseUrl, DataDir, Json, console, print_json, read_source


def _session_from_token(token: str) -> str | None:
    from rolebridge.platform.roles import session_name
    from rolebridge.tokens.verifier import parse_unverified

    try:
        sub = parse_unverified(token.strip()).claims.get("sub")
    except Exception:
        return None
    if isinstance(sub, str) and sub.startswith("system:serviceaccount:"):
        return session_name(sub.rsplit(":", 1)[-1])
    return None


def _job_token(data_dir: str | None, database_url: str | None, cluster: str | None, project: str | None,
               environment: str | None, at: float | None, session_name: str | None, *,
               services: Any = None) -> tuple[str, str]:
    """The token a job of PROJECT in ENVIRONMENT on CLUSTER would get, and its session name."""
    from rolebridge.bootstrap import open_services
    from rolebridge.platform.clusters import mint_token
    from rolebridge.platform.roles import check_environment, check_project, new_service_account
    from rolebridge.platform.roles import session_name as sa_session

    assert project and environment and cluster
    check_project(project)
    check_environment(environment)
    services = services or open_services(data_dir, database_url)
    sa = new_service_account(project)
    jwt = mint_token(services, cluster, namespace=environment, service_account=sa, now=at)
    return jwt, session_name or sa_session(sa)


def print_explanation(expl: Any) -> None:
    marks = {"ok": "[green]ok  [/]", "skipped": "[yellow]skip[/]", "fail": "[bold red]FAIL[/]"}
    for c in expl.checks:
        line = f"{marks[c['status']]} {c['name']:<13} {c.get('detail', '')}"
        console.print(line, highlight=False, soft_wrap=True)
        if c["status"] == "fail" and c["name"] != "result":
            if "expected" in c:
                console.print(f"     expected: {json.dumps(c['expected'])}", highlight=False, soft_wrap=True)
            if "seen" in c:
                console.print(f"     seen:     {json.dumps(c['seen'])}", highlight=False, soft_wrap=True)
    if expl.outcome == "success":
        console.print(f"[green]success[/]: {expl.assumed_role_arn}", highlight=False, soft_wrap=True)
    else:
        console.print(f"[bold]cause[/]: {expl.one_line()}", highlight=False, soft_wrap=True)
        console.print(f"[bold]fix[/]:   {expl.fix}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("explain")
    def explain(
        role_arn: Annotated[str | None, typer.Argument(help="Role ARN the job assumes.")] = None,
        token: Annotated[str | None, typer.Option("--token", help="Token file, or - for stdin.")] = None,
        cluster: Annotated[str | None, typer.Option("--cluster", help="Mint the job's token on CLUSTER.")] = None,
        project: Annotated[str | None, typer.Option("--project", help="The job's project.")] = None,
        environment: Annotated[str | None, typer.Option("--environment", help="The job's environment.")] = None,
        role_arn_opt: Annotated[str | None, typer.Option("--role-arn", help="Same as ROLE_ARN.")] = None,
        session_name: Annotated[str | None, typer.Option("--session-name", help="RoleSessionName.")] = None,
        duration_seconds: Annotated[int | None, typer.Option("--duration-seconds", help="DurationSeconds.")] = None,
        at: Annotated[float | None, typer.Option("--at", help="Evaluate at this epoch time.")] = None,
        trust_policy: Annotated[Path | None, typer.Option("--trust-policy", help="Offline: trust policy file.")]
        = None,
        provider_url: Annotated[str | None, typer.Option("--provider-url", help="Offline: provider URL.")] = None,
        client_id: Annotated[list[str] | None, typer.Option("--client-id", help="Offline: client ID (repeatable).")]
        = None,
        thumbprint: Annotated[list[str] | None, typer.Option("--thumbprint", help="Offline: thumbprint.")] = None,
        provider_account: Annotated[str | None, typer.Option(
            "--provider-account", help="Offline: account holding the provider (default: the role's).")] = None,
        jwks: Annotated[Path | None, typer.Option("--jwks", help="Offline: the issuer's JWKS file "
                                                   "(without it the signature is not checked).")] = None,
        max_session_duration: Annotated[int, typer.Option(help="Offline: the role's MaxSessionDuration.")] = 3600,
        use_aws: Annotated[bool, typer.Option(
            "--aws", help="Read the role and OIDC providers from AWS IAM (standard credentials of the role's "
                          "account) and fetch the issuer's keys as STS does.")] = False,
        profile: Annotated[str | None, typer.Option("--profile", help="AWS profile (implies --aws).")] = None,
        endpoint_url: Annotated[str | None, typer.Option(
            "--endpoint-url", help="IAM endpoint to read from (implies --aws).")] = None,
        json_out: Json = False,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
    ) -> None:
        """Why ROLE_ARN can or cannot be assumed with a token: each STS check, the cause and the fix."""
        from rolebridge import errors
        from rolebridge.iam.arns import parse_role_arn

        arn = role_arn or role_arn_opt
        if not arn:
            raise errors.ValidationError("Give the role ARN (ROLE_ARN or --role-arn).")
        offline = trust_policy is not None or provider_url is not None
        from_iam = use_aws or profile is not None or endpoint_url is not None
        if from_iam and (offline or client_id or thumbprint or provider_account):
            raise errors.ValidationError("--aws reads the role and its account's OIDC providers from IAM: leave out "
                                         "--trust-policy, --provider-url, --client-id, --thumbprint and "
                                         "--provider-account.")
        if token is not None:
            jwt = read_source(token).strip()
        elif cluster and project and environment:
            if offline:
                raise errors.ValidationError("Offline mode needs --token (a cluster's token needs its data dir).")
            jwt = ""
        else:
            raise errors.ValidationError("Give --token FILE|- or --cluster, --project and --environment.")

        if from_iam:
            from rolebridge.cli.aws import iam_client
            from rolebridge.tools.explain import explain_from_iam

            if not jwt:
                jwt, session_name = _job_token(data_dir, database_url, cluster, project, environment, at,
                                               session_name)
            keys = json.loads(jwks.read_text()) if jwks else None
            with iam_client(profile=profile, endpoint_url=endpoint_url) as iam:
                expl = explain_from_iam(iam, token=jwt, role_arn=arn, duration=duration_seconds, now=at, jwks=keys,
                                        session_name=session_name or _session_from_token(jwt)
                                        or "rolebridge-explain")
        elif offline:
            from rolebridge.tools.explain import OfflineProvider, explain_offline

            ref = parse_role_arn(arn)
            providers = []
            if provider_url:
                account = provider_account or (ref.account if ref else None)
                if account is None:
                    raise errors.ValidationError("Give --provider-account (the role ARN names none).")
                providers.append(OfflineProvider(provider_url, account, tuple(client_id or ["sts.amazonaws.com"]),
                                                 tuple(thumbprint or [])))
            doc: Any = read_source(str(trust_policy)) if trust_policy else None
            keys = json.loads(jwks.read_text()) if jwks else None
            expl = explain_offline(token=jwt, role_arn=arn, session_name=session_name or _session_from_token(jwt)
                                   or "rolebridge-explain", trust_policy=doc, providers=providers,
                                   duration=duration_seconds, now=at, jwks=keys,
                                   max_session_duration=max_session_duration)
        else:
            from rolebridge.bootstrap import open_services
            from rolebridge.tools.explain import explain_assume

            services = open_services(data_dir, database_url)
            if not jwt:
                jwt, session_name = _job_token(data_dir, database_url, cluster, project, environment, at,
                                               session_name, services=services)
            expl = explain_assume(services, role_arn=arn, token=jwt, duration=duration_seconds, now=at,
                                  session_name=session_name or _session_from_token(jwt) or "rolebridge-explain")
        if json_out:
            print_json(expl.to_json())
        else:
            print_explanation(expl)
        if expl.outcome != "success":
            raise typer.Exit(1)
