"""UploadPartCopy: parts copied from stored objects, as `aws s3 cp s3://... s3://...` does above the
multipart threshold, and as boto3's `copy`/`upload_part_copy` do.

Authorization is AWS's: s3:GetObject on the source, s3:PutObject on the destination (with the
source as s3:x-amz-copy-source).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import zlib
from typing import Any

import pytest
from botocore.exceptions import ClientError
from s3_helpers import error_code, role_session, s3_client

from conftest import AWS_CLI, rb

ACCT = "964000000001"
SRC = "upc-source"
DST = "upc-dest"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(server: Any) -> Any:
    client = s3_client(server, account=ACCT)
    client.create_bucket(Bucket=SRC)
    client.create_bucket(Bucket=DST)
    return client


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag


def _complete(s3: Any, key: str, upload_id: str, etags: list[str], **extra: Any) -> dict[str, Any]:
    parts = [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]
    return s3.complete_multipart_upload(Bucket=DST, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts},
                                        **extra)


def test_parts_copied_by_range_and_whole(s3: Any) -> None:
    data = os.urandom(11 * MB + 123)
    small = b"tail object"
    s3.put_object(Bucket=SRC, Key="big.bin", Body=data)
    s3.put_object(Bucket=SRC, Key="small.bin", Body=small)
    up = s3.create_multipart_upload(Bucket=DST, Key="joined.bin")["UploadId"]
    first = s3.upload_part_copy(Bucket=DST, Key="joined.bin", UploadId=up, PartNumber=1,
                                CopySource={"Bucket": SRC, "Key": "big.bin"}, CopySourceRange=f"bytes=0-{5 * MB - 1}")
    assert first["CopyPartResult"]["ETag"] == f'"{md5(data[:5 * MB])}"'
    second = s3.upload_part_copy(Bucket=DST, Key="joined.bin", UploadId=up, PartNumber=2,
                                 CopySource=f"{SRC}/big.bin", CopySourceRange=f"bytes={5 * MB}-{len(data) - 1}")
    third = s3.upload_part_copy(Bucket=DST, Key="joined.bin", UploadId=up, PartNumber=3,
                                CopySource={"Bucket": SRC, "Key": "small.bin"})  # no range: the whole object
    assert third["CopyPartResult"]["ETag"] == f'"{md5(small)}"'
    parts = s3.list_parts(Bucket=DST, Key="joined.bin", UploadId=up)["Parts"]
    assert [p["Size"] for p in parts] == [5 * MB, len(data) - 5 * MB, len(small)]
    _complete(s3, "joined.bin", up, [first["CopyPartResult"]["ETag"], second["CopyPartResult"]["ETag"],
                                     third["CopyPartResult"]["ETag"]])
    assert s3.get_object(Bucket=DST, Key="joined.bin")["Body"].read() == data + small


def test_copy_part_checksum_and_conditions(s3: Any) -> None:
    data = os.urandom(MB)
    etag = s3.put_object(Bucket=SRC, Key="crc.bin", Body=data)["ETag"]
    up = s3.create_multipart_upload(Bucket=DST, Key="crc.bin", ChecksumAlgorithm="CRC32")["UploadId"]
    out = s3.upload_part_copy(Bucket=DST, Key="crc.bin", UploadId=up, PartNumber=1,
                              CopySource={"Bucket": SRC, "Key": "crc.bin"}, CopySourceRange="bytes=10-1009",
                              CopySourceIfMatch=etag)
    crc = base64.b64encode(zlib.crc32(data[10:1010]).to_bytes(4, "big")).decode()
    assert out["CopyPartResult"]["ChecksumCRC32"] == crc
    with pytest.raises(ClientError) as info:
        s3.upload_part_copy(Bucket=DST, Key="crc.bin", UploadId=up, PartNumber=2,
                            CopySource={"Bucket": SRC, "Key": "crc.bin"}, CopySourceIfMatch='"0000"')
    assert error_code(info.value) == "PreconditionFailed"
    with pytest.raises(ClientError) as info:
        s3.upload_part_copy(Bucket=DST, Key="crc.bin", UploadId=up, PartNumber=2,
                            CopySource={"Bucket": SRC, "Key": "crc.bin"}, CopySourceIfNoneMatch=etag)
    assert error_code(info.value) == "PreconditionFailed"
    s3.abort_multipart_upload(Bucket=DST, Key="crc.bin", UploadId=up)


@pytest.mark.parametrize(("header", "code"), [
    (f"bytes=0-{MB}", "InvalidArgument"),  # past the end of a 1 MB object
    ("bytes=5-4", "InvalidArgument"),
    ("bytes=0-", "InvalidArgument"),
    ("bytes=-10", "InvalidArgument"),
    ("0-10", "InvalidArgument"),
])
def test_bad_copy_ranges(s3: Any, header: str, code: str) -> None:
    s3.put_object(Bucket=SRC, Key="one-mb.bin", Body=b"\0" * MB)
    up = s3.create_multipart_upload(Bucket=DST, Key="bad-range")["UploadId"]
    try:
        with pytest.raises(ClientError) as info:
            s3.upload_part_copy(Bucket=DST, Key="bad-range", UploadId=up, PartNumber=1,
                                CopySource={"Bucket": SRC, "Key": "one-mb.bin"}, CopySourceRange=header)
        assert error_code(info.value) == code
        assert s3.list_parts(Bucket=DST, Key="bad-range", UploadId=up).get("Parts", []) == []
    finally:
        s3.abort_multipart_upload(Bucket=DST, Key="bad-range", UploadId=up)


def test_missing_source_and_upload(s3: Any) -> None:
    up = s3.create_multipart_upload(Bucket=DST, Key="missing")["UploadId"]
    with pytest.raises(ClientError) as info:
        s3.upload_part_copy(Bucket=DST, Key="missing", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": SRC, "Key": "no-such-key"})
    assert error_code(info.value) == "NoSuchKey"
    with pytest.raises(ClientError) as info:
        s3.upload_part_copy(Bucket=DST, Key="missing", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": "upc-no-such-bucket", "Key": "k"})
    assert error_code(info.value) == "NoSuchBucket"
    s3.abort_multipart_upload(Bucket=DST, Key="missing", UploadId=up)
    s3.put_object(Bucket=SRC, Key="exists", Body=b"x")
    with pytest.raises(ClientError) as info:
        s3.upload_part_copy(Bucket=DST, Key="missing", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": SRC, "Key": "exists"})
    assert error_code(info.value) == "NoSuchUpload"


def test_authorization_of_source_and_destination(server: Any, s3: Any) -> None:
    """GetObject on the source and PutObject on the destination, each checked on the part itself."""
    s3.put_object(Bucket=SRC, Key="public/a", Body=b"public bytes")
    s3.put_object(Bucket=SRC, Key="private/a", Body=b"private bytes")
    s3.put_object(Bucket=SRC, Key="sealed/a", Body=b"sealed bytes")
    cluster = server.cluster("s3-upc", ACCT)
    role_arn, creds = role_session(server, cluster=cluster, account=ACCT, role_name="upc-copier",
                                   namespace="upc", service_account="copier")
    server.client("iam", ACCT).put_role_policy(RoleName="upc-copier", PolicyName="copy", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": [f"arn:aws:s3:::{SRC}/public/*", f"arn:aws:s3:::{SRC}/sealed/*"]},
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
             "Resource": f"arn:aws:s3:::{DST}/*"},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{DST}/*",
             "Condition": {"StringLike": {"s3:x-amz-copy-source": f"{SRC}/sealed/*"}}}]}))
    copier = s3_client(server, creds=creds)
    up = copier.create_multipart_upload(Bucket=DST, Key="copied")["UploadId"]
    ok = copier.upload_part_copy(Bucket=DST, Key="copied", UploadId=up, PartNumber=1,
                                 CopySource={"Bucket": SRC, "Key": "public/a"})
    refused = []
    for key, action in (("private/a", "s3:GetObject"), ("sealed/a", "s3:PutObject")):
        with pytest.raises(ClientError) as info:
            copier.upload_part_copy(Bucket=DST, Key="copied", UploadId=up, PartNumber=2,
                                    CopySource={"Bucket": SRC, "Key": key})
        assert error_code(info.value) == "AccessDenied"
        assert f"perform: {action} on resource" in info.value.response["Error"]["Message"]
        refused.append(info.value.response["ResponseMetadata"]["RequestId"])
    # the trail names the call as S3 does
    events = json.loads(rb("audit", "--json", "--errors", "--limit", "100000", data_dir=server.data_dir).stdout)
    assert {e["eventName"] for e in events if e["requestID"] in refused} == {"UploadPartCopy"}
    parts = s3.list_parts(Bucket=DST, Key="copied", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, ok["CopyPartResult"]["ETag"])]
    copier.abort_multipart_upload(Bucket=DST, Key="copied", UploadId=up)
    assert role_arn.endswith(":role/upc-copier")


def _sha256(path: Any) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MB):
            h.update(block)
    return h.hexdigest()


def test_cli_copies_a_large_object_between_buckets(server: Any, s3: Any, tmp_path: Any) -> None:
    """`aws s3 cp s3://a/big s3://b/copy` above the 8 MB threshold: CreateMultipartUpload,
    UploadPartCopy with ranges and If-Match, CompleteMultipartUpload."""
    source = tmp_path / "big.bin"
    with open(source, "wb") as f:
        for _ in range(19):
            f.write(os.urandom(MB))
        f.write(os.urandom(4321))
    s3.upload_file(str(source), SRC, "cli/big.bin")
    keys = server.account(ACCT)
    env = server.env(AWS_ENDPOINT_URL_S3=server.url, AWS_ACCESS_KEY_ID=keys["access_key_id"],
                     AWS_SECRET_ACCESS_KEY=keys["secret_access_key"])
    proc = subprocess.run([AWS_CLI, "s3", "cp", f"s3://{SRC}/cli/big.bin", f"s3://{DST}/cli/copy.bin", "--debug"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "UploadPartCopy" in proc.stderr  # the multipart copy path, not one CopyObject
    head = s3.head_object(Bucket=DST, Key="cli/copy.bin")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].endswith('-3"')  # 8 MB parts: 3 of them
    back = tmp_path / "back.bin"
    s3.download_file(DST, "cli/copy.bin", str(back))
    assert _sha256(back) == _sha256(source)
