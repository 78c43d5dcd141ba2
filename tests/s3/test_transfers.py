"""Round trips with the tools people use: the AWS CLI (`s3 cp`, `s3 sync`, `s3 ls`) and boto3's
managed transfers (`upload_file`/`download_file`, multipart above 8 MB), 0 bytes to 200 MB, with
identical SHA-256 on both sides. Also a hand-built STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload (what
SDKs that sign every chunk send), and a tampered chunk that must be refused with nothing stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError
from s3_helpers import error_code, s3_client

from conftest import AWS_CLI

ACCT = "953000000001"
BUCKET = "s3t-transfers"
SIZES = [0, 1, 65_536, 1024 * 1024 + 7, 8 * 1024 * 1024 + 1, 21 * 1024 * 1024]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def make_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 << 20)
            f.write(os.urandom(n))
            left -= n
    return path


@pytest.fixture(scope="module")
def setup(server):  # type: ignore[no-untyped-def]
    s3 = s3_client(server, account=ACCT)
    s3.create_bucket(Bucket=BUCKET)
    keys = server.account(ACCT)
    env = server.env(AWS_ENDPOINT_URL_S3=server.url, AWS_ACCESS_KEY_ID=keys["access_key_id"],
                     AWS_SECRET_ACCESS_KEY=keys["secret_access_key"])
    return s3, env


def aws(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([AWS_CLI, *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, f"aws {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_boto3_managed_transfers(setup, tmp_path):  # type: ignore[no-untyped-def]
    s3, _env = setup
    for size in SIZES:
        src = make_file(tmp_path / f"up-{size}", size)
        s3.upload_file(str(src), BUCKET, f"boto3/{size}")
        dst = tmp_path / f"down-{size}"
        s3.download_file(BUCKET, f"boto3/{size}", str(dst))
        assert sha256_file(dst) == sha256_file(src), size
        head = s3.head_object(Bucket=BUCKET, Key=f"boto3/{size}")
        assert head["ContentLength"] == size
        if size > 8 * 1024 * 1024:
            assert head["ETag"].endswith('-2"') or head["ETag"].endswith('-3"'), head["ETag"]


def test_aws_cli_cp_sync_ls(setup, tmp_path):  # type: ignore[no-untyped-def]
    _s3, env = setup
    local = tmp_path / "tree"
    (local / "sub").mkdir(parents=True)
    files = {"a.bin": 0, "b.bin": 1000, "sub/c.bin": 9 * 1024 * 1024, "sub/d.txt": 12}
    for name, size in files.items():
        make_file(local / name, size)
    aws(env, "s3", "sync", str(local), f"s3://{BUCKET}/cli/tree")
    listing = aws(env, "s3", "ls", "--recursive", f"s3://{BUCKET}/cli/tree/")
    assert sorted(line.split()[-1] for line in listing.splitlines()) == sorted(f"cli/tree/{n}" for n in files)
    top = aws(env, "s3", "ls", f"s3://{BUCKET}/cli/tree/")
    assert "PRE sub/" in top and "a.bin" in top
    back = tmp_path / "back"
    aws(env, "s3", "sync", f"s3://{BUCKET}/cli/tree", str(back))
    for name in files:
        assert sha256_file(back / name) == sha256_file(local / name), name
    # a second sync finds nothing to do
    assert aws(env, "s3", "sync", str(local), f"s3://{BUCKET}/cli/tree").strip() == ""
    one = tmp_path / "one.bin"
    aws(env, "s3", "cp", str(local / "sub/c.bin"), f"s3://{BUCKET}/cli/one.bin")
    aws(env, "s3", "cp", f"s3://{BUCKET}/cli/one.bin", str(one))
    assert sha256_file(one) == sha256_file(local / "sub/c.bin")
    assert f"{BUCKET}" in aws(env, "s3", "ls")


@pytest.mark.slow
def test_200mb_round_trip_cli(setup, tmp_path):  # type: ignore[no-untyped-def]
    _s3, env = setup
    src = make_file(tmp_path / "big.bin", 200 * 1024 * 1024)
    aws(env, "s3", "cp", str(src), f"s3://{BUCKET}/big/200mb.bin")
    dst = tmp_path / "big.back"
    aws(env, "s3", "cp", f"s3://{BUCKET}/big/200mb.bin", str(dst))
    assert sha256_file(dst) == sha256_file(src)
    src.unlink()
    dst.unlink()


def _signed_streaming_request(server, keys, key: str, chunks: list[bytes], *, tamper: bool = False):  # type: ignore[no-untyped-def]
    """Build PUT with x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, signing every chunk."""
    host = server.url.removeprefix("https://")
    now = dt.datetime.now(dt.UTC)
    amz_date, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{date}/us-east-1/s3/aws4_request"
    total = sum(len(c) for c in chunks)
    signed_headers = {"host": host, "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                      "x-amz-date": amz_date, "x-amz-decoded-content-length": str(total),
                      "content-encoding": "aws-chunked"}
    names = sorted(signed_headers)
    canonical = "\n".join(["PUT", f"/{BUCKET}/{key}", "", "".join(f"{n}:{signed_headers[n]}\n" for n in names),
                           ";".join(names), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])
    k = hmac.new(f"AWS4{keys['secret_access_key']}".encode(), date.encode(), hashlib.sha256).digest()
    for part in ("us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    seed = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    body, prev = b"", seed
    empty = hashlib.sha256(b"").hexdigest()
    for chunk in [*chunks, b""]:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty,
                             hashlib.sha256(chunk).hexdigest()])
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        data = chunk.replace(b"a", b"b") if tamper and chunk else chunk
        body += f"{len(chunk):x};chunk-signature={sig}\r\n".encode() + data + b"\r\n"
        prev = sig
    headers = {**signed_headers, "authorization": (
        f"AWS4-HMAC-SHA256 Credential={keys['access_key_id']}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={seed}")}
    return httpx.put(f"{server.url}/{BUCKET}/{key}", content=body, headers=headers, verify=server.ca_bundle)


def test_signed_streaming_chunks(server, setup):  # type: ignore[no-untyped-def]
    s3, _env = setup
    keys = server.account(ACCT)
    chunks = [b"a" * 65536, b"abc" * 1000, b"z"]
    r = _signed_streaming_request(server, keys, "stream/ok", chunks)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=BUCKET, Key="stream/ok")["Body"].read() == b"".join(chunks)
    r = _signed_streaming_request(server, keys, "stream/tampered", chunks, tamper=True)
    assert r.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in r.content
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=BUCKET, Key="stream/tampered")
    assert exc.value.response["Error"]["Code"] == "404"
    assert error_code(exc.value) == "404"
