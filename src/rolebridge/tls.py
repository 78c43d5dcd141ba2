"""The local certificate authority behind the server's HTTPS.

Made on first use in ``DATA_DIR/tls``: a CA (``ca.pem``, the bundle clients trust) and a server
certificate for the loopback names and the public URL's host. The server presents leaf + CA, so
the *top* certificate of the chain is the CA and its SHA-1 thumbprint is what a target account
registers for a cluster's OIDC provider (as AWS pins a provider by its top certificate).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rolebridge.config import Paths, write_private

LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1",
                  # S3 virtual-host-style addressing: https://BUCKET.s3.localhost:PORT (s3/addressing.py)
                  "s3.localhost", "*.s3.localhost"]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rolebridge"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def ensure_ca(paths: Paths, extra_hosts: list[str] | None = None) -> None:
    """Create the CA and server certificate if missing (or if a host is not covered yet)."""
    tls = paths.tls_dir
    tls.mkdir(parents=True, exist_ok=True)
    hosts = LOOPBACK_NAMES + list(extra_hosts or [])
    now = dt.datetime.now(dt.UTC)
    ca_key_path, ca_path = tls / "ca-key.pem", tls / "ca.pem"
    if not ca_path.exists() or not ca_key_path.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("rolebridge local CA"))
            .issuer_name(_name("rolebridge local CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write_private(ca_key_path, ca_key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        (tls / "server.pem").unlink(missing_ok=True)
    ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    server_path, server_key_path = tls / "server.pem", tls / "server-key.pem"
    if server_path.exists() and _covers(server_path, hosts):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("rolebridge server"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                       critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    write_private(server_key_path, key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    # the chain file: leaf then CA, so clients see the CA as the top certificate
    server_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                            + ca_cert.public_bytes(serialization.Encoding.PEM))


def _covers(server_pem: Path, hosts: list[str]) -> bool:
    cert = x509.load_pem_x509_certificates(server_pem.read_bytes())[0]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    return all(h in have for h in hosts)


def ca_thumbprint(paths: Paths) -> str:
    """Lowercase hex SHA-1 of the CA certificate (DER), as IAM thumbprint lists hold it."""
    cert = x509.load_pem_x509_certificate(paths.ca_pem.read_bytes())
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()  # noqa: S324 - AWS's format
