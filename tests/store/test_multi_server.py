"""Two `rolebridge server` processes on one PostgreSQL database share one state.

Each server has its own data dir (own TLS CA, own server.json); what they share is the database
URL, the server key (``ROLEBRIDGE_SERVER_KEYS``) and, as servers behind one public URL do, the
TLS CA. The cluster is created through server A's
data dir (its signing key is a file there); its public JWKS is in the database, so B verifies.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import Server, rb, start_server, stop_server
from cross_account import cross_account, trust_policy

pytestmark = pytest.mark.postgres


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def _sts(server: Server, **creds: str) -> object:
    config = Config(retries={"max_attempts": 1}, **({} if creds else {"signature_version": UNSIGNED}))
    return boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                        config=config, **creds)


def _iam_b(server_b: Server, server_a: Server, account: str) -> object:
    keys = server_a.account(account)  # admin keys live in the shared database
    return boto3.client("iam", endpoint_url=server_b.url, verify=server_b.ca_bundle, region_name="us-east-1",
                        aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"],
                        config=Config(retries={"max_attempts": 1}))


class SharedServer(Server):
    """A Server whose CLI calls (account, cluster, token) go to the shared database."""

    shared_env: dict[str, str]

    def rb(self, *args: str) -> str:
        return rb(*args, data_dir=self.data_dir, env=self.shared_env).stdout

    def account(self, account_id: str) -> dict[str, str]:
        if account_id not in self.accounts:
            self.accounts[account_id] = json.loads(self.rb("account", "create", account_id, "--json"))
        return self.accounts[account_id]

    def cluster(self, name: str, account_id: str) -> dict[str, Any]:
        self.account(account_id)
        return json.loads(self.rb("cluster", "create", name, "--account", account_id, "--json"))

    def token(self, cluster: str, namespace: str, service_account: str, *extra: str) -> str:
        return self.rb("token", "--cluster", cluster, "--namespace", namespace, "--service-account",
                       service_account, *extra).strip()


def start_shared(data_dir: Path, home: Path, env: dict[str, str]) -> SharedServer:
    srv = start_server(data_dir, home, env=env)
    shared = SharedServer(srv.data_dir, srv.url, srv.ca_bundle, srv.process, srv.home)
    shared.shared_env = env
    return shared


@pytest.fixture
def two_servers(pg_url: str, tmp_path: Path):
    env = {"ROLEBRIDGE_DATABASE_URL": pg_url, "ROLEBRIDGE_SERVER_KEYS": _key()}
    a = start_shared(tmp_path / "a", tmp_path / "home-a", env)
    # servers behind one public URL present one certificate: B gets A's CA (it makes its own server cert)
    (tmp_path / "b" / "tls").mkdir(parents=True)
    for name in ("ca.pem", "ca-key.pem"):
        shutil.copy2(a.data_dir / "tls" / name, tmp_path / "b" / "tls" / name)
    b = start_shared(tmp_path / "b", tmp_path / "home-b", env)
    yield a, b
    stop_server(a)
    stop_server(b)


def test_credentials_from_one_server_are_accepted_by_the_other(two_servers) -> None:
    a, b = two_servers
    setup = cross_account(a, cluster="pg-multi", cluster_account="616161616101", role_account="616161616102",
                          role_name="shared-role")
    token = a.token(setup.cluster, setup.namespace, setup.service_account)
    creds = _sts(a).assume_role_with_web_identity(RoleArn=setup.role_arn, RoleSessionName="from-a",
                                                  WebIdentityToken=token)["Credentials"]
    as_role_on_b = _sts(b, aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])
    identity = as_role_on_b.get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::616161616102:assumed-role/shared-role/from-a"
    assert identity["Account"] == "616161616102"
    # and the token is verified by B too (B has no key file for the cluster: JWKS comes from the database)
    creds_b = _sts(b).assume_role_with_web_identity(RoleArn=setup.role_arn, RoleSessionName="from-b",
                                                    WebIdentityToken=token)["Credentials"]
    assert _sts(a, aws_access_key_id=creds_b["AccessKeyId"], aws_secret_access_key=creds_b["SecretAccessKey"],
                aws_session_token=creds_b["SessionToken"]).get_caller_identity()["Arn"].endswith("/from-b")
    assert not (b.data_dir / "clusters" / "pg-multi").exists()


def test_role_created_through_one_server_is_assumable_through_the_other(two_servers) -> None:
    a, b = two_servers
    setup = cross_account(a, cluster="pg-multi2", cluster_account="626262626201", role_account="626262626202",
                          role_name="first")
    iam_b = _iam_b(b, a, "626262626202")
    arn = iam_b.create_role(RoleName="made-on-b", AssumeRolePolicyDocument=trust_policy(
        setup.provider_arn, setup.provider_url, setup.sub))["Role"]["Arn"]
    token = a.token(setup.cluster, setup.namespace, setup.service_account)
    out = _sts(a).assume_role_with_web_identity(RoleArn=arn, RoleSessionName="s1", WebIdentityToken=token)
    assert out["AssumedRoleUser"]["Arn"] == "arn:aws:sts::626262626202:assumed-role/made-on-b/s1"
    # a deletion through A is seen by B at once
    a.client("iam", "626262626202").delete_role(RoleName="made-on-b")
    with pytest.raises(ClientError) as gone:
        _sts(b).assume_role_with_web_identity(RoleArn=arn, RoleSessionName="s2", WebIdentityToken=token)
    assert gone.value.response["Error"]["Code"] == "AccessDenied"
