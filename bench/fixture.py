"""The bench's data: the walkthrough set-up (cluster, provider, role, a valid job token) in a fresh data dir.

Built the way a user builds it: ``rolebridge account create`` / ``cluster create`` / ``token`` on the
command line, the provider and role through boto3's IAM client against a running server, with the
walkthrough's trust policy. The scale variant (issue 5) adds 9,999 roles and 999 more providers
(spread over accounts: 100 providers is the per-account quota) through the same IAM handlers,
called in-process to keep set-up short.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import HOST, start_server

VENV_BIN = Path(sys.executable).parent
ROLEBRIDGE = str(VENV_BIN / "rolebridge")
CLUSTER_ACCOUNT = "111111111111"
DATA_ACCOUNT = "222222222222"
PROJECT = "cross_account_sample"
ROLE = "cross-account-sample-dev"
SCALE_QUOTA = "20000"


@dataclass
class Fixture:
    data_dir: str
    port: int
    role_arn: str
    provider_arn: str
    token: str
    ca_bundle: str
    tls_cert: str
    tls_key: str
    roles: int
    providers: int

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["token"] = f"<{len(self.token)} chars>"
        return out


def _cli(data_dir: Path, *args: str) -> str:
    return subprocess.run([ROLEBRIDGE, *args, "--data-dir", str(data_dir)], check=True, capture_output=True,
                          text=True, timeout=120, env=_env()).stdout


def _env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "ROLEBRIDGE_DATABASE_URL"}
    env["ROLEBRIDGE_ROLE_QUOTA"] = SCALE_QUOTA
    return env


def build(data_dir: Path, port: int, logs: Path, *, scale: bool = False, n_roles: int = 10_000,
          n_providers: int = 1_000) -> Fixture:
    import boto3
    from botocore.config import Config

    from rolebridge.platform.demo import walkthrough_trust_policy

    data_dir.mkdir(parents=True, exist_ok=True)
    server = start_server(f"setup-{data_dir.name}", [ROLEBRIDGE, "server", "--data-dir", str(data_dir),
                                                      "--port", str(port)], port, logs, env=_env(), settle_s=0.2,
                          tls=True)
    try:
        info = json.loads((data_dir / "server.json").read_text())
        _cli(data_dir, "account", "create", CLUSTER_ACCOUNT, "--json")
        keys = json.loads(_cli(data_dir, "account", "create", DATA_ACCOUNT, "--json"))
        cluster = json.loads(_cli(data_dir, "cluster", "create", "demo", "--account", CLUSTER_ACCOUNT, "--json"))
        iam = boto3.client("iam", endpoint_url=info["url"], verify=info["ca_bundle"], region_name="us-east-1",
                           aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"],
                           config=Config(retries={"max_attempts": 1}))
        provider_arn = iam.create_open_id_connect_provider(
            Url=cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"], ThumbprintList=[cluster["thumbprint"]],
        )["OpenIDConnectProviderArn"]
        trust = walkthrough_trust_policy(provider_arn, cluster["oidc_url"], "dev", PROJECT)
        role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        service_account = f"{PROJECT.replace('_', '.')}-{uuid.uuid4()}"
        token = _cli(data_dir, "token", "--cluster", "demo", "--namespace", "dev", "--service-account",
                     service_account, "--expires-in", str(24 * 3600)).strip()
    finally:
        server.stop()
    roles, providers = 1, 1
    if scale:
        roles, providers = _bulk(data_dir, json.dumps(trust), n_roles, n_providers)
    tls = data_dir / "tls"
    return Fixture(str(data_dir), port, role_arn, provider_arn, token, info["ca_bundle"], str(tls / "server.pem"),
                   str(tls / "server-key.pem"), roles, providers)


def _bulk(data_dir: Path, trust_text: str, n_roles: int = 10_000, n_providers: int = 1_000) -> tuple[int, int]:
    """Fill the data dir to issue 5's scale through the IAM handlers (one transaction per entity, as the API)."""
    import os

    os.environ["ROLEBRIDGE_ROLE_QUOTA"] = SCALE_QUOTA
    from rolebridge.bootstrap import open_services
    from rolebridge.caller import Caller
    from rolebridge.context import CallContext
    from rolebridge.iam import providers as _p  # noqa: F401  (registers the handlers)
    from rolebridge.iam import roles as _r  # noqa: F401
    from rolebridge.iam.arns import root_arn
    from rolebridge.iam.registry import OPERATIONS

    services = open_services(str(data_dir))
    # set-up only, no server running: skip the per-commit fsync and the per-write generation bump
    # (one bump at the end); the handlers' own checks and transactions are unchanged
    from sqlalchemy import event

    event.listen(services.store.engine, "connect", lambda conn, _rec: conn.execute("PRAGMA synchronous=OFF"))
    services.store.engine.dispose()
    real_invalidate = services.invalidate
    services.invalidate = lambda: None  # type: ignore[method-assign]
    create_role = OPERATIONS[("iam", "CreateRole")].handler
    create_provider = OPERATIONS[("iam", "CreateOpenIDConnectProvider")].handler

    def ctx(account: str) -> CallContext:
        caller = Caller(account_id=account, arn=root_arn(account), user_id=account, kind="root", access_key_id="")
        return CallContext(services=services, caller=caller, now=time.time(), request_id=str(uuid.uuid4()))

    made_providers = 1
    accounts = [DATA_ACCOUNT] + [f"3000000000{i:02d}" for i in range(n_providers // 100)]
    from rolebridge.iam.accounts import ensure_account

    for account in accounts:
        ensure_account(services.store, account)
        for i in range(100 if account != DATA_ACCOUNT else 99):
            if made_providers >= n_providers:
                break
            create_provider(ctx(account), {"Url": f"https://oidc.scale.test/id/{account}-{i:03d}",
                                           "ClientIDList": ["sts.amazonaws.com"], "ThumbprintList": ["0" * 40]})
            made_providers += 1
    made_roles = 1
    c = ctx(DATA_ACCOUNT)
    for i in range(n_roles - 1):
        create_role(c, {"RoleName": f"scale-role-{i:05d}", "AssumeRolePolicyDocument": trust_text})
        made_roles += 1
    real_invalidate()
    services.store.dispose()
    return made_roles, made_providers


def _post(url: str, body: str, ca: str | None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    import ssl
    import urllib.request

    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={  # noqa: S310
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **(headers or {})})
    context = ssl.create_default_context(cafile=ca) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as resp:  # noqa: S310 - http(s) to loopback
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def assume_body(role_arn: str, token: str, session: str = "bench") -> str:
    from urllib.parse import urlencode

    return urlencode({"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": role_arn,
                      "RoleSessionName": session, "WebIdentityToken": token})


GCI_BODY = "Action=GetCallerIdentity&Version=2011-06-15"


def signed_gci_headers(url: str, creds: dict[str, str]) -> dict[str, str]:
    """A SigV4-signed GetCallerIdentity, signed now: the signature holds for the server's 15-minute skew."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=url + "/", data=GCI_BODY,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
              "sts", "us-east-1").add_auth(req)
    return {k: v for k, v in req.headers.items()}


def temporary_credentials(url: str, role_arn: str, token: str, ca: str | None) -> tuple[dict[str, str], bytes]:
    """One real AssumeRoleWithWebIdentity; returns the credentials and the exact response bytes."""
    import xml.etree.ElementTree as ET

    status, raw = _post(url + "/", assume_body(role_arn, token), ca)
    if status != 200:
        raise RuntimeError(f"AssumeRoleWithWebIdentity at {url} answered {status}: {raw[:600]!r}")
    creds: dict[str, str] = {}
    for el in ET.fromstring(raw).iter():  # noqa: S314 - our own server's answer
        tag = el.tag.rsplit("}", 1)[-1]
        if tag in ("AccessKeyId", "SecretAccessKey", "SessionToken") and el.text:
            creds[tag] = el.text
    return creds, raw


def call_gci(url: str, headers: dict[str, str], ca: str | None) -> tuple[int, bytes]:
    return _post(url + "/", GCI_BODY, ca, {k: v for k, v in headers.items() if k.lower() != "content-type"})


__all__ = [
    "GCI_BODY",
    "HOST",
    "Fixture",
    "assume_body",
    "build",
    "call_gci",
    "signed_gci_headers",
    "temporary_credentials",
]
