"""A cluster whose issuer is published elsewhere: tokens carry that iss, and the published files verify them.

The "elsewhere" is a local HTTPS server of the test's own serving the published directory, standing in
for a public bucket; the rolebridge server then fetches its keys over pinned TLS like any remote issuer.
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore import UNSIGNED
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from local_issuer import LocalIssuer

from conftest import rb
from rolebridge.tokens.verifier import parse_unverified


def test_publish_and_verify_from_the_published_files(server, tmp_path: Path) -> None:
    tls = LocalIssuer(tmp_path / "tls")  # only for its CA + server certificate
    tls.close()
    site = tmp_path / "site"
    handler = partial(SimpleHTTPRequestHandler, directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "tls" / "chain.pem", tmp_path / "tls" / "leaf-key.pem")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        issuer_url = f"https://127.0.0.1:{httpd.server_address[1]}/pub/c1"
        account = "562000000001"
        server.account(account)
        created = json.loads(rb("cluster", "create", "published", "--account", account, "--issuer-url", issuer_url,
                                "--json", data_dir=server.data_dir).stdout)
        assert created["oidc_url"] == issuer_url and created["thumbprint"] == ""
        rb("issuer", "publish", "published", str(site / "pub" / "c1"), data_dir=server.data_dir)
        discovery = json.loads((site / "pub" / "c1" / ".well-known" / "openid-configuration").read_text())
        assert discovery["issuer"] == issuer_url
        jwks = json.loads((site / "pub" / "c1" / "keys.json").read_text())
        assert jwks["keys"] and all("d" not in k for k in jwks["keys"])

        token = server.token("published", "dev", "app-sa")
        assert parse_unverified(token).issuer == issuer_url
        iam = server.client("iam", "562000000002")
        provider = iam.create_open_id_connect_provider(Url=issuer_url, ClientIDList=["sts.amazonaws.com"],
                                                       ThumbprintList=[tls.thumbprint])["OpenIDConnectProviderArn"]
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{issuer_url.removeprefix('https://')}:sub":
                                           "system:serviceaccount:dev:app-sa"}}}]}
        iam.create_role(RoleName="published-reader", AssumeRolePolicyDocument=json.dumps(trust))
        sts = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                           config=Config(signature_version=UNSIGNED))
        out = sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::562000000002:role/published-reader",
                                                RoleSessionName="pub", WebIdentityToken=token)
        assert out["AssumedRoleUser"]["Arn"] == "arn:aws:sts::562000000002:assumed-role/published-reader/pub"
        assert out["Provider"] == provider
    finally:
        httpd.shutdown()
        httpd.server_close()
