"""S3 operations through boto3 against the live server: buckets, objects, listing, copy, tags,
conditions, ranges, checksums, presigned URLs, addressing styles, error shapes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import socket
import zlib

import crc32c
import httpx
import pytest
from botocore.exceptions import ClientError
from s3_helpers import error_code, s3_client

ACCT, OTHER = "952000000001", "952000000002"


@pytest.fixture(scope="module")
def s3(server):  # type: ignore[no-untyped-def]
    client = s3_client(server, account=ACCT)
    client.create_bucket(Bucket="ops-bucket")
    return client


def test_bucket_lifecycle_and_global_names(server, s3):  # type: ignore[no-untyped-def]
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "ops-bucket" in names
    assert s3.head_bucket(Bucket="ops-bucket")["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="ops-bucket")
    assert error_code(exc.value) == "BucketAlreadyOwnedByYou"
    other = s3_client(server, account=OTHER)
    with pytest.raises(ClientError) as exc:
        other.create_bucket(Bucket="ops-bucket")
    assert error_code(exc.value) == "BucketAlreadyExists"
    assert "ops-bucket" not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    for bad in ("oidc", "api", "health", "Upper", "a", "bad..name", "192.168.1.1"):
        with pytest.raises(ClientError) as exc:
            s3.create_bucket(Bucket=bad)
        assert error_code(exc.value) == "InvalidBucketName", bad
    s3.create_bucket(Bucket="ops-temp")
    s3.put_object(Bucket="ops-temp", Key="x", Body=b"1")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="ops-temp")
    assert error_code(exc.value) == "BucketNotEmpty"
    s3.delete_object(Bucket="ops-temp", Key="x")
    s3.delete_bucket(Bucket="ops-temp")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="ops-temp")
    assert exc.value.response["Error"]["Code"] == "404"
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="ops-temp")
    assert error_code(exc.value) == "NoSuchBucket"
    assert exc.value.response["Error"]["BucketName"] == "ops-temp"


def test_put_get_metadata_ranges(s3):  # type: ignore[no-untyped-def]
    body = bytes(range(256)) * 40
    put = s3.put_object(Bucket="ops-bucket", Key="dir/bin data.bin", Body=body, ContentType="application/x-test",
                        Metadata={"owner": "team-a"}, CacheControl="max-age=60")
    assert put["ETag"] == f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
    got = s3.get_object(Bucket="ops-bucket", Key="dir/bin data.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"owner": "team-a"}
    assert got["CacheControl"] == "max-age=60"
    head = s3.head_object(Bucket="ops-bucket", Key="dir/bin data.bin")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    part = s3.get_object(Bucket="ops-bucket", Key="dir/bin data.bin", Range="bytes=100-199")
    assert part["Body"].read() == body[100:200] and part["ContentRange"] == f"bytes 100-199/{len(body)}"
    assert s3.get_object(Bucket="ops-bucket", Key="dir/bin data.bin", Range="bytes=-10")["Body"].read() == body[-10:]
    assert s3.get_object(Bucket="ops-bucket", Key="dir/bin data.bin", Range="bytes=10000-")["Body"].read() == body[10000:]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="ops-bucket", Key="dir/bin data.bin", Range=f"bytes={len(body)}-")
    assert error_code(exc.value) == "InvalidRange"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="ops-bucket", Key="missing")
    assert error_code(exc.value) == "NoSuchKey"
    assert exc.value.response["Error"]["Key"] == "missing"
    # unicode and odd keys survive the round trip
    for key in ("ünï/cødé ✓.txt", "a+b=c&d.txt", "sp ace/%percent", "x//double"):
        s3.put_object(Bucket="ops-bucket", Key=key, Body=key.encode())
        assert s3.get_object(Bucket="ops-bucket", Key=key)["Body"].read() == key.encode()


def test_conditional_get(s3):  # type: ignore[no-untyped-def]
    etag = s3.put_object(Bucket="ops-bucket", Key="cond.txt", Body=b"v1")["ETag"]
    assert s3.get_object(Bucket="ops-bucket", Key="cond.txt", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="ops-bucket", Key="cond.txt", IfMatch='"0000"')
    assert error_code(exc.value) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="ops-bucket", Key="cond.txt", IfNoneMatch=etag)
    assert exc.value.response["Error"]["Code"] == "304"
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="ops-bucket", Key="cond.txt", IfModifiedSince=future)
    assert exc.value.response["Error"]["Code"] == "304"
    past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="ops-bucket", Key="cond.txt", IfUnmodifiedSince=past)
    assert error_code(exc.value) == "PreconditionFailed"


def test_listing_prefix_delimiter_pagination(s3):  # type: ignore[no-untyped-def]
    s3.create_bucket(Bucket="ops-list")
    keys = [f"logs/2024/{i:03d}.log" for i in range(7)] + ["logs/readme", "top.txt"] + [f"img/{c}.png" for c in "abc"]
    for k in keys:
        s3.put_object(Bucket="ops-list", Key=k, Body=b"x")
    out = s3.list_objects_v2(Bucket="ops-list", Delimiter="/")
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["img/", "logs/"]
    assert [o["Key"] for o in out["Contents"]] == ["top.txt"]
    out = s3.list_objects_v2(Bucket="ops-list", Prefix="logs/", Delimiter="/")
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["logs/2024/"]
    assert [o["Key"] for o in out["Contents"]] == ["logs/readme"]
    seen, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket="ops-list", MaxKeys=3, **kw)
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
        assert page["KeyCount"] <= 3
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == sorted(keys) and pages == 4
    # pagination across common prefixes never repeats a prefix
    paginator = s3.get_paginator("list_objects_v2")
    prefixes, contents = [], []
    for page in paginator.paginate(Bucket="ops-list", Delimiter="/", PaginationConfig={"PageSize": 1}):
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        contents += [o["Key"] for o in page.get("Contents", [])]
    assert prefixes == ["img/", "logs/"] and contents == ["top.txt"]
    assert s3.list_objects_v2(Bucket="ops-list", StartAfter="logs/readme")["Contents"][0]["Key"] == "top.txt"
    v1 = s3.list_objects(Bucket="ops-list", Prefix="img/")
    assert [o["Key"] for o in v1["Contents"]] == ["img/a.png", "img/b.png", "img/c.png"]


def test_copy_delete_objects_tags(s3):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket="ops-bucket", Key="src.txt", Body=b"copy me", Metadata={"a": "1"}, Tagging="k=v&team=x")
    out = s3.copy_object(Bucket="ops-bucket", Key="dst.txt", CopySource={"Bucket": "ops-bucket", "Key": "src.txt"})
    assert out["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"copy me", usedforsecurity=False).hexdigest()}"'
    dst = s3.get_object(Bucket="ops-bucket", Key="dst.txt")
    assert dst["Body"].read() == b"copy me" and dst["Metadata"] == {"a": "1"} and dst["TagCount"] == 2
    s3.copy_object(Bucket="ops-bucket", Key="dst2.txt", CopySource="ops-bucket/src.txt",
                   MetadataDirective="REPLACE", Metadata={"b": "2"})
    assert s3.head_object(Bucket="ops-bucket", Key="dst2.txt")["Metadata"] == {"b": "2"}
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket="ops-bucket", Key="src.txt", CopySource="ops-bucket/src.txt")
    assert error_code(exc.value) == "InvalidRequest"
    tags = s3.get_object_tagging(Bucket="ops-bucket", Key="src.txt")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("k", "v"), ("team", "x")]
    s3.put_object_tagging(Bucket="ops-bucket", Key="src.txt", Tagging={"TagSet": [{"Key": "n", "Value": "1"}]})
    assert s3.get_object_tagging(Bucket="ops-bucket", Key="src.txt")["TagSet"] == [{"Key": "n", "Value": "1"}]
    s3.delete_object_tagging(Bucket="ops-bucket", Key="src.txt")
    assert s3.get_object_tagging(Bucket="ops-bucket", Key="src.txt")["TagSet"] == []
    out = s3.delete_objects(Bucket="ops-bucket", Delete={"Objects": [{"Key": "dst.txt"}, {"Key": "dst2.txt"},
                                                                    {"Key": "never-existed"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["dst.txt", "dst2.txt", "never-existed"]
    with pytest.raises(ClientError):
        s3.head_object(Bucket="ops-bucket", Key="dst.txt")


def test_checksums_and_bad_digest_store_nothing(s3):  # type: ignore[no-untyped-def]
    body = b"checked body" * 1000
    crc32c_value = base64.b64encode(crc32c.crc32c(body).to_bytes(4, "big")).decode()
    for algo in ("CRC32", "CRC32C", "SHA1", "SHA256"):
        # botocore needs awscrt to compute CRC32C itself; send the value precomputed instead
        kw = {"ChecksumCRC32C": crc32c_value} if algo == "CRC32C" else {"ChecksumAlgorithm": algo}
        out = s3.put_object(Bucket="ops-bucket", Key=f"sum-{algo}", Body=body, **kw)
        assert out[f"Checksum{algo}"]
        got = s3.get_object(Bucket="ops-bucket", Key=f"sum-{algo}", ChecksumMode="ENABLED")
        assert got["Body"].read() == body and got[f"Checksum{algo}"] == out[f"Checksum{algo}"]
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert s3.head_object(Bucket="ops-bucket", Key="sum-CRC32", ChecksumMode="ENABLED")["ChecksumCRC32"] == crc
    wrong = base64.b64encode(b"\0\0\0\0").decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="ops-bucket", Key="bad-crc", Body=body, ChecksumCRC32=wrong)
    assert error_code(exc.value) == "BadDigest"
    assert "CRC32" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="ops-bucket", Key="bad-md5", Body=body,
                      ContentMD5=base64.b64encode(hashlib.md5(b"other", usedforsecurity=False).digest()).decode())
    assert error_code(exc.value) == "BadDigest"
    for key in ("bad-crc", "bad-md5"):
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket="ops-bucket", Key=key)
        assert exc.value.response["Error"]["Code"] == "404"


def test_presigned_urls(server, s3):  # type: ignore[no-untyped-def]
    s3 = s3_client(server, account=ACCT, signature_version="s3v4")  # boto3 presigns with SigV2 otherwise
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "ops-bucket", "Key": "presigned.txt"})
    r = httpx.put(put_url, content=b"via presign", verify=server.ca_bundle)
    assert r.status_code == 200, r.text
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "ops-bucket", "Key": "presigned.txt"})
    r = httpx.get(get_url, verify=server.ca_bundle)
    assert r.status_code == 200 and r.content == b"via presign"
    r = httpx.get(get_url.replace("presigned.txt", "other.txt"), verify=server.ca_bundle)
    assert r.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in r.content
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": "ops-bucket", "Key": "presigned.txt"},
                                        ExpiresIn=1)
    import time

    time.sleep(2)
    r = httpx.get(expired, verify=server.ca_bundle)
    assert r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content and b"Request has expired" in r.content


def test_error_document_shape_and_anonymous(server, s3):  # type: ignore[no-untyped-def]
    r = httpx.get(f"{server.url}/ops-bucket/src.txt", verify=server.ca_bundle)
    assert r.status_code == 403
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                                b"<Message>Access Denied</Message><Resource>/ops-bucket/src.txt</Resource>"
                                b"<RequestId>")
    assert r.headers["x-amz-request-id"]
    bad = s3_client(server, creds={"aws_access_key_id": "AKIANOTAKEY000000000", "aws_secret_access_key": "x"})
    with pytest.raises(ClientError) as exc:
        bad.list_buckets()
    assert error_code(exc.value) == "InvalidAccessKeyId"
    keys = server.account(ACCT)
    forged = s3_client(server, creds={"aws_access_key_id": keys["access_key_id"], "aws_secret_access_key": "wrong"})
    with pytest.raises(ClientError) as exc:
        forged.get_object(Bucket="ops-bucket", Key="src.txt")
    assert error_code(exc.value) == "SignatureDoesNotMatch"
    # the Query endpoint still owns POST / and GET / without S3 credentials
    assert httpx.get(f"{server.url}/health", verify=server.ca_bundle).json() == {"status": "ok"}


def test_virtual_host_addressing(server, s3, monkeypatch):  # type: ignore[no-untyped-def]
    """``BUCKET.s3.localhost`` (RFC 6761: *.localhost is loopback; this box's resolver lacks it, so resolve it here)."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kw):  # type: ignore[no-untyped-def]
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    port = server.url.rsplit(":", 1)[1]
    keys = server.account(ACCT)
    import boto3
    from botocore.config import Config

    vs3 = boto3.client("s3", endpoint_url=f"https://s3.localhost:{port}", verify=server.ca_bundle,
                       region_name="us-east-1", aws_access_key_id=keys["access_key_id"],
                       aws_secret_access_key=keys["secret_access_key"],
                       config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}))
    seen = []
    vs3.meta.events.register("before-send.s3", lambda request, **kw: seen.append(request.url))
    vs3.put_object(Bucket="ops-bucket", Key="vhost/key.txt", Body=b"virtual")
    assert vs3.get_object(Bucket="ops-bucket", Key="vhost/key.txt")["Body"].read() == b"virtual"
    assert [o["Key"] for o in vs3.list_objects_v2(Bucket="ops-bucket", Prefix="vhost/")["Contents"]] == ["vhost/key.txt"]
    assert seen[0].startswith(f"https://ops-bucket.s3.localhost:{port}/vhost/key.txt")


@pytest.mark.parametrize("raw", [b'{"a":"\\ud800","p":false}', b'{"a":' + b"[" * 5000 + b"]" * 5000 + b',"p":false}',
                                 b'{"a":5,"p":false}', b"not json"])
def test_bad_continuation_token_is_invalid_argument(raw: bytes) -> None:
    # a lone surrogate (UnicodeEncodeError in the query) and deep nesting (RecursionError) were 500s
    import base64

    from rolebridge import errors
    from rolebridge.s3.listing import _untoken

    with pytest.raises(errors.InvalidArgument):
        _untoken(base64.urlsafe_b64encode(raw).decode())
