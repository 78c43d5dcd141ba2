"""Which checksum the SDKs send by default, and CRC64NVME's refusal (see ``s3/checksums.py``).

The server computes CRC32, CRC32C, SHA-1 and SHA-256. These tests pin the reason that suffices: the
installed boto3 and AWS CLI send CRC32 (never CRC64NVME) on every request that carries a checksum
by default. Should a new botocore switch its default, the first two tests fail, and CRC64NVME must
then be implemented. Until then a request that asks for CRC64NVME gets S3's InvalidRequest and
nothing is stored.
"""

from __future__ import annotations

import base64
import subprocess
from typing import Any

import pytest
from botocore.exceptions import ClientError
from s3_helpers import error_code, s3_client

from conftest import AWS_CLI

ACCT = "966000000001"
BUCKET = "checksum-defaults"


@pytest.fixture(scope="module")
def s3(server: Any) -> Any:
    client = s3_client(server, account=ACCT)
    client.create_bucket(Bucket=BUCKET)
    return client


def _checksum_headers(request: Any) -> dict[str, str]:
    out = {}
    for name, value in request.headers.items():
        lowered = name.lower()
        if "checksum" in lowered or lowered == "x-amz-trailer":
            out[lowered] = value.decode() if isinstance(value, bytes) else value
    return out


def test_boto3_defaults_to_crc32(server: Any, s3: Any, tmp_path: Any) -> None:
    sent: list[tuple[str, dict[str, str]]] = []

    def spy(request: Any, event_name: str, **_: Any) -> None:
        sent.append((event_name.rsplit(".", 1)[-1], _checksum_headers(request)))

    s3.meta.events.register("before-send.s3", spy)
    s3.put_object(Bucket=BUCKET, Key="small", Body=b"abc")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\1" * (9 * 1024 * 1024))
    s3.upload_file(str(big), BUCKET, "big")  # multipart: CreateMultipartUpload, UploadPart x2, Complete
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "nothing"}]})
    s3.get_object(Bucket=BUCKET, Key="small")["Body"].read()
    s3.meta.events.unregister("before-send.s3", spy)
    algorithms = {h.get("x-amz-sdk-checksum-algorithm") for _op, h in sent} - {None}
    assert algorithms == {"CRC32"}, sent
    assert {op for op, h in sent if h.get("x-amz-sdk-checksum-algorithm") == "CRC32"} >= {
        "PutObject", "UploadPart", "DeleteObjects"}
    assert not any("crc64nvme" in name or "CRC64NVME" in value for _op, h in sent for name, value in h.items())


def test_aws_cli_defaults_to_crc32(server: Any, s3: Any, tmp_path: Any) -> None:
    keys = server.account(ACCT)
    env = server.env(AWS_ENDPOINT_URL_S3=server.url, AWS_ACCESS_KEY_ID=keys["access_key_id"],
                     AWS_SECRET_ACCESS_KEY=keys["secret_access_key"])
    src = tmp_path / "cli.txt"
    src.write_bytes(b"cli body")
    proc = subprocess.run([AWS_CLI, "s3", "cp", str(src), f"s3://{BUCKET}/cli.txt", "--debug"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\nx-amz-sdk-checksum-algorithm:CRC32\n" in proc.stderr  # the canonical request the CLI signed
    assert "crc64nvme" not in proc.stderr.lower()


def test_crc64nvme_is_refused_and_nothing_stored(s3: Any) -> None:
    def ask_crc64(request: Any, **_: Any) -> None:
        request.headers["x-amz-checksum-crc64nvme"] = base64.b64encode(b"\0" * 8).decode()

    s3.meta.events.register("before-sign.s3.PutObject", ask_crc64)
    try:
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket=BUCKET, Key="crc64", Body=b"data", ChecksumAlgorithm="CRC32")
    finally:
        s3.meta.events.unregister("before-sign.s3.PutObject", ask_crc64)
    assert error_code(info.value) == "InvalidRequest"
    assert "CRC64NVME" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=BUCKET, Key="crc64")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as info:
        s3.create_multipart_upload(Bucket=BUCKET, Key="crc64-mp", ChecksumAlgorithm="CRC64NVME")
    assert error_code(info.value) == "InvalidRequest"
