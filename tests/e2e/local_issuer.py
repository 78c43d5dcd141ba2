"""An OIDC issuer of the test's own: HTTPS with its own throwaway CA, discovery + JWKS, token signing.

It stands in for a cluster issuer that rolebridge does not host (like EKS's), so the server must
fetch its keys over HTTPS and pin its CA by thumbprint, as AWS would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rolebridge.tokens.keys import KeyRing


def _cert(cn: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Certificate, Any] | None, ca: bool
          ) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(issuer[0].subject if issuer else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=7))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    return b.sign(issuer[1] if issuer else key, hashes.SHA256())


class LocalIssuer:
    def __init__(self, workdir: Path, path: str = "/id/ABC") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert("test issuer CA", ca_key, None, True)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _cert("127.0.0.1", leaf_key, (self.ca, ca_key), False)
        chain = workdir / "chain.pem"
        chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + self.ca.public_bytes(serialization.Encoding.PEM))
        key_file = workdir / "leaf-key.pem"
        key_file.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        self.thumbprint = hashlib.sha1(self.ca.public_bytes(serialization.Encoding.DER)).hexdigest()  # noqa: S324
        self.ring = KeyRing.create(workdir / "keys")
        self.other_ring = KeyRing.create(workdir / "other-keys")  # a key the issuer does not publish
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == path + "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/keys",
                            "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"]}
                elif self.path == path + "/keys":
                    body = issuer.ring.jwks()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, key_file)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host_path(self) -> str:
        return self.url.removeprefix("https://")

    def sign(self, claims: dict[str, Any], *, forged: bool = False) -> str:
        if not forged:
            return self.ring.sign(claims)
        # signed by a key the issuer never published, but claiming the published key's kid
        token = self.other_ring.sign(claims)
        _header, payload, signature = token.split(".")
        real_header = self.ring.sign(claims).split(".")[0]
        return f"{real_header}.{payload}.{signature}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
