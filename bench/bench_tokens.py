"""Token throughput next to the raw cryptography limit, measured in the same run.

For each key type (RS256 = RSA-2048 PKCS#1 v1.5/SHA-256, ES256 = P-256/SHA-256):
  raw_sign_per_s     cryptography sign of a token-sized message with the same key
  mint_per_s         mint_service_account_token (claims, JSON, base64url, sign)
  raw_verify_per_s   cryptography verify of the same message
  verify_per_s       check_length + parse_unverified + check_audience + verify_signature
                     (from the JWKS dict) + check_times + check_subject
and the ratios mint/raw_sign and verify/raw_verify.  Prints JSON.

    python bench/bench_tokens.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from rolebridge.tokens import (
    KeyRing,
    check_audience,
    check_length,
    check_subject,
    check_times,
    mint_service_account_token,
    parse_unverified,
    verify_signature,
)

ISSUER = "https://127.0.0.1:8443/clusters/bench"
NOW = 1767225600


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over roughly ``seconds`` (after a short warm-up)."""
    for _ in range(20):
        fn()
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            fn()
        n += 20
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def bench_alg(alg: str, seconds: float, tmp: Path) -> dict[str, float]:
    ring = KeyRing.create(tmp / alg, alg=alg)
    key = serialization.load_pem_private_key((ring.directory / f"{ring.active_kid}.pem").read_bytes(), None)
    public = key.public_key()
    jwks = ring.jwks()

    def mint() -> str:
        return mint_service_account_token(
            ring, issuer_url=ISSUER, namespace="dev", service_account="cross.account.sample-1", now=NOW
        )

    token = mint()
    message = token.rsplit(".", 1)[0].encode()
    if isinstance(key, rsa.RSAPrivateKey):
        assert isinstance(public, rsa.RSAPublicKey)
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())

        def raw_sign() -> object:
            return key.sign(message, padding.PKCS1v15(), hashes.SHA256())

        def raw_verify() -> object:
            return public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(public, ec.EllipticCurvePublicKey)
        der = key.sign(message, ec.ECDSA(hashes.SHA256()))

        def raw_sign() -> object:
            return key.sign(message, ec.ECDSA(hashes.SHA256()))

        def raw_verify() -> object:
            return public.verify(der, message, ec.ECDSA(hashes.SHA256()))

    def verify() -> object:
        check_length(token)
        parsed = parse_unverified(token)
        check_audience(parsed, ["sts.amazonaws.com"])
        verify_signature(parsed, jwks)
        check_times(parsed, now=NOW)
        return check_subject(parsed)

    verify()
    out = {
        "raw_sign_per_s": rate(raw_sign, seconds),
        "mint_per_s": rate(mint, seconds),
        "raw_verify_per_s": rate(raw_verify, seconds),
        "verify_per_s": rate(verify, seconds),
        "token_bytes": len(token),
    }
    out["mint_vs_raw_sign"] = out["mint_per_s"] / out["raw_sign_per_s"]
    out["verify_vs_raw_verify"] = out["verify_per_s"] / out["raw_verify_per_s"]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per figure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = {alg: bench_alg(alg, args.seconds, Path(tmp)) for alg in ("RS256", "ES256")}
    report = {
        "benchmark": "tokens",
        "python": platform.python_version(),
        "seconds_per_figure": args.seconds,
        "results": results,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
