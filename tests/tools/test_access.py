"""`rolebridge access` agrees with real STS on a 5 projects x 3 environments x 10 roles matrix.

Every (project, environment, role) is tried for real: a job token for a fresh service account of
the project in that environment, AssumeRoleWithWebIdentity against the live server.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import pytest

from conftest import Server, rb
from rolebridge.bootstrap import open_services
from rolebridge.platform.clusters import mint_token
from rolebridge.platform.roles import UUID_PATTERN, new_service_account, session_name
from rolebridge.tools.access import ALWAYS, NEVER, roles_for

CLUSTER, CLUSTER_ACCOUNT, TARGET = "acc-m", "320000000001", "320000000002"
PROJECTS = ["alpha", "alpha-x", "beta", "beta_gamma", "delta.eps"]
ENVIRONMENTS = ["dev", "prd", "stg"]


def _roles(url: str, provider: str) -> dict[str, list[dict[str, Any]]]:
    sub, aud = f"{url}:sub", f"{url}:aud"

    def allow(cond: dict[str, Any]) -> dict[str, Any]:
        return {"Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": cond}

    a = {"StringEquals": {aud: "sts.amazonaws.com"}}
    return {
        "alpha-dev": [allow({**a, "StringLike": {sub: f"system:serviceaccount:dev:alpha-{UUID_PATTERN}"}})],
        "bg-everywhere": [allow({**a, "StringLike": {sub: f"system:serviceaccount:*:beta.gamma-{UUID_PATTERN}"}})],
        "bg-underscore": [allow({**a, "StringLike": {sub: f"system:serviceaccount:dev:beta_gamma-{UUID_PATTERN}"}})],
        "alpha-star-prd": [allow({**a, "StringLike": {sub: "system:serviceaccount:prd:alpha-*"}})],
        "no-sub": [allow(a)],
        "equals-wildcard": [allow({"StringEquals": {aud: "sts.amazonaws.com",
                                                    sub: f"system:serviceaccount:dev:alpha-{UUID_PATTERN}"}})],
        "two-statements": [allow({**a, "StringLike": {sub: f"system:serviceaccount:dev:beta-{UUID_PATTERN}"}}),
                           allow({**a, "StringLike": {sub: [f"system:serviceaccount:stg:delta.eps-{UUID_PATTERN}",
                                                             "system:serviceaccount:prd:beta.*"]}})],
        "deny-prd": [allow({"StringLike": {sub: "system:serviceaccount:*"}}),
                     {"Effect": "Deny", "Principal": {"Federated": provider},
                      "Action": "sts:AssumeRoleWithWebIdentity",
                      "Condition": {"StringLike": {sub: "system:serviceaccount:prd:*"}}}],
        "wrong-aud": [allow({"StringEquals": {aud: "api://other"}})],
        "not-like-alpha": [allow({**a, "StringLike": {sub: "system:serviceaccount:*:*"},
                                  "StringNotLike": {sub: "system:serviceaccount:*:alpha*"}})],
    }


@pytest.fixture(scope="module")
def matrix(server: Server) -> dict[str, Any]:
    info = server.cluster(CLUSTER, CLUSTER_ACCOUNT)
    iam = server.client("iam", TARGET)
    provider = iam.create_open_id_connect_provider(Url=info["oidc_url"], ClientIDList=["sts.amazonaws.com"],
                                                   ThumbprintList=[info["thumbprint"]])["OpenIDConnectProviderArn"]
    url = info["oidc_url"].removeprefix("https://")
    roles = _roles(url, provider)
    for name, statements in roles.items():
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
    return {"roles": roles, "url": url, "provider": provider}


def test_access_agrees_with_sts_on_every_pair(server: Server, matrix: dict[str, Any]) -> None:
    services = open_services(str(server.data_dir))
    sts = server.client("sts")
    disagreements = []
    allowed_somewhere = set()
    for project in PROJECTS:
        for env in ENVIRONMENTS:
            answer = {r["role_arn"]: r["verdict"] for r in roles_for(services, project, env, cluster=CLUSTER)
                      if r["account"] == TARGET}
            assert set(answer.values()) <= {ALWAYS}, answer  # no uuid-dependent answers in this matrix
            sa = new_service_account(project)
            token = mint_token(services, CLUSTER, namespace=env, service_account=sa)
            for role in matrix["roles"]:
                arn = f"arn:aws:iam::{TARGET}:role/{role}"
                try:
                    sts.assume_role_with_web_identity(RoleArn=arn, RoleSessionName=session_name(sa),
                                                      WebIdentityToken=token)
                    real = ALWAYS
                except botocore.exceptions.ClientError as exc:
                    assert exc.response["Error"]["Code"] == "AccessDenied", exc.response
                    real = NEVER
                said = answer.get(arn, NEVER)
                if said != real:
                    disagreements.append((project, env, role, said, real))
                if real == ALWAYS:
                    allowed_somewhere.add(role)
    assert disagreements == []
    # the matrix is not trivial: most roles let someone in, and three let nobody in
    assert allowed_somewhere == set(matrix["roles"]) - {"bg-underscore", "equals-wildcard", "wrong-aud"}


def test_access_cli_both_directions(server: Server, matrix: dict[str, Any]) -> None:
    out = json.loads(rb("access", "--project", "beta_gamma", "--environment", "stg", "--cluster", CLUSTER, "--json",
                        data_dir=server.data_dir).stdout)
    arns = {r["role_arn"] for r in out["roles"] if r["account"] == TARGET}
    assert arns == {f"arn:aws:iam::{TARGET}:role/{n}" for n in ("bg-everywhere", "no-sub", "deny-prd",
                                                               "not-like-alpha")}
    who = json.loads(rb("access", "--role", f"arn:aws:iam::{TARGET}:role/alpha-dev", "--json",
                        data_dir=server.data_dir).stdout)["who"]
    assert who == [{"cluster": CLUSTER, "statement": "0", "operator": "StringLike", "environment": "dev",
                    "project": "alpha", "subject": f"system:serviceaccount:dev:alpha-{UUID_PATTERN}"}]
    under = json.loads(rb("access", "--role", f"arn:aws:iam::{TARGET}:role/bg-underscore", "--json",
                          data_dir=server.data_dir).stdout)["who"]
    assert under[0]["project"].startswith("none: '_' never appears")
    lint = rb("lint", "--all", "--account", TARGET, "--json", data_dir=server.data_dir, check=False)
    assert lint.returncode == 1
    codes = {(f["where"].split()[0].rsplit("/", 1)[-1], f["code"]) for f in json.loads(lint.stdout)["findings"]}
    assert ("no-sub", "no-sub-condition") in codes
    assert ("bg-underscore", "project-name-underscore") in codes
    assert ("equals-wildcard", "stringequals-with-wildcard") in codes
    assert ("alpha-star-prd", "sub-wildcard-crosses-projects") in codes
    assert not any(role == "alpha-dev" for role, _ in codes)


def test_access_table_is_not_cut_when_piped(server: Server, matrix: dict[str, Any]) -> None:
    # captured output is no terminal: rich used to cut cells to 80 columns ("system:serviceaccount:p…")
    out = rb("access", "--role", f"arn:aws:iam::{TARGET}:role/alpha-dev", data_dir=server.data_dir).stdout
    assert f"system:serviceaccount:dev:alpha-{UUID_PATTERN}" in out
    assert "…" not in out
