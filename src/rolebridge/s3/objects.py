"""Object operations: PutObject, GetObject (ranges, conditions), HeadObject, DeleteObject,
DeleteObjects, CopyObject; and ``commit_object``, the one way a new object version becomes
visible (shared with CompleteMultipartUpload).

Order in every write: authorize, stream the body into a temporary blob while digesting it, verify
every declared digest, make the blob durable (fsync + rename), then switch the row in one
transaction, then delete the blob the row used to name. A failure before the row switch discards
the new blob; the old object stays as it was.
"""

from __future__ import annotations

import email.utils
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from sqlalchemy import select
from starlette.responses import Response, StreamingResponse

from rolebridge import errors
from rolebridge.s3 import xml
from rolebridge.s3.addressing import check_key
from rolebridge.s3.authz import BucketView, allowed, bucket_arn, check, object_arn
from rolebridge.s3.buckets import load_bucket
from rolebridge.s3.call import S3Call, consume, read_small
from rolebridge.store.schema import S3Object

MAX_PUT = 5 * 1024**3
STORED_HEADERS = ("content-disposition", "content-language", "cache-control", "expires", "content-encoding")
RESPONSE_OVERRIDES = {"response-content-type": "content-type", "response-content-language": "content-language",
                      "response-expires": "expires", "response-cache-control": "cache-control",
                      "response-content-disposition": "content-disposition",
                      "response-content-encoding": "content-encoding"}
MAX_TAGS = 10


@dataclass
class ObjectMeta:
    """What a new object carries besides its bytes."""

    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectView:
    bucket: str
    key: str
    size: int
    etag: str
    blob: str
    content_type: str | None
    headers: dict[str, str]
    metadata: dict[str, str]
    tags: list[dict[str, str]]
    checksums: dict[str, str]
    parts_count: int | None
    last_modified: float


def _view(row: S3Object) -> ObjectView:
    return ObjectView(row.bucket, row.key, row.size, row.etag, row.blob, row.content_type, dict(row.headers or {}),
                      dict(row.metadata_ or {}), list(row.tags or []), dict(row.checksums or {}), row.parts_count,
                      row.last_modified)


def find_object(call: S3Call, bucket: str, key: str) -> ObjectView | None:
    with call.ctx.store.read() as s:
        row = s.execute(select(S3Object).where(S3Object.bucket == bucket, S3Object.key == key)).scalar_one_or_none()
        return _view(row) if row is not None else None


# -- request metadata ------------------------------------------------------------------------------
def validate_tags(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    if len(tags) > MAX_TAGS:
        raise errors.InvalidTag("Object tags cannot be greater than 10")
    seen = set()
    for tag in tags:
        key, value = tag["Key"], tag["Value"]
        if not 1 <= len(key) <= 128:
            raise errors.InvalidTag("The TagKey you have provided is invalid")
        if len(value) > 256:
            raise errors.InvalidTag("The TagValue you have provided is invalid")
        if key in seen:
            raise errors.InvalidTag("Cannot provide multiple Tags with the same key")
        seen.add(key)
    return tags


def tags_from_header(value: str | None) -> list[dict[str, str]]:
    if not value:
        return []
    pairs = urllib.parse.parse_qsl(value, keep_blank_values=True)
    return validate_tags([{"Key": k, "Value": v} for k, v in pairs])


def meta_from_headers(headers: Mapping[str, str]) -> ObjectMeta:
    stored = {}
    for name in STORED_HEADERS:
        value = headers.get(name)
        if name == "content-encoding" and value:
            value = ",".join(p.strip() for p in value.split(",") if p.strip() and p.strip() != "aws-chunked")
        if value:
            stored[name] = value
    metadata = {name[len("x-amz-meta-"):]: value for name, value in headers.items() if name.startswith("x-amz-meta-")}
    if sum(len(k) + len(v) for k, v in metadata.items()) > 2048:
        raise errors.S3Error("Your metadata headers exceed the maximum allowed metadata size")
    return ObjectMeta(headers.get("content-type"), stored, metadata, tags_from_header(headers.get("x-amz-tagging")))


def tag_context(tags: list[dict[str, str]], prefix: str) -> dict[str, Any]:
    ctx: dict[str, Any] = {f"{prefix}/{t['Key']}": t["Value"] for t in tags}
    if prefix == "s3:RequestObjectTag":
        ctx["s3:RequestObjectTagKeys"] = [t["Key"] for t in tags]
    return ctx


# -- the one commit path -------------------------------------------------------------------------------
def commit_object(call: S3Call, bucket: str, key: str, *, blob: str, size: int, etag: str, meta: ObjectMeta,
                  checksums: dict[str, str], parts_count: int | None = None) -> float:
    """Point ``bucket/key`` at the durable ``blob`` (one transaction), then drop the old blob."""
    now = call.ctx.now
    old: str | None = None
    try:
        with call.ctx.store.tx() as s:
            row = s.execute(select(S3Object).where(S3Object.bucket == bucket, S3Object.key == key)
                            ).scalar_one_or_none()
            if row is None:
                s.add(S3Object(bucket=bucket, key=key, size=size, etag=etag, blob=blob, content_type=meta.content_type,
                               headers=meta.headers, metadata_=meta.metadata, tags=meta.tags, checksums=checksums,
                               parts_count=parts_count, last_modified=now))
            else:
                old = row.blob
                row.size, row.etag, row.blob, row.content_type = size, etag, blob, meta.content_type
                row.headers, row.metadata_, row.tags, row.checksums = meta.headers, meta.metadata, meta.tags, checksums
                row.parts_count, row.last_modified = parts_count, now
    except Exception:
        call.blobs.delete([blob])
        raise
    call.blobs.delete([old])
    return now


def _checksum_headers(checksums: Mapping[str, str]) -> dict[str, str]:
    return {f"x-amz-checksum-{algo.lower()}": value for algo, value in checksums.items()}


# -- PutObject -------------------------------------------------------------------------------------
async def put_object(call: S3Call) -> Response:
    if "x-amz-copy-source" in call.headers:
        return await copy_object(call)
    bucket = load_bucket(call)
    check_key(call.key)
    meta = meta_from_headers(call.headers)
    tag_ctx = tag_context(meta.tags, "s3:RequestObjectTag")
    check(call, "s3:PutObject", object_arn(bucket.name, call.key), bucket, tag_ctx)
    if meta.tags:
        check(call, "s3:PutObjectTagging", object_arn(bucket.name, call.key), bucket, tag_ctx)
    temp = call.blobs.temp()
    try:
        digests = await consume(call, temp.write, limit=MAX_PUT)
        blob = await temp.commit()
    except BaseException:
        temp.discard()
        raise
    etag = f'"{digests.md5.hexdigest()}"'
    checksums = digests.values()
    commit_object(call, bucket.name, call.key, blob=blob, size=digests.size, etag=etag, meta=meta, checksums=checksums)
    return Response(status_code=200, headers={"ETag": etag, **_checksum_headers(checksums)})


# -- GetObject / HeadObject ------------------------------------------------------------------------
def _parse_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _etag_matches(header: str, etag: str) -> bool:
    wanted = [v.strip() for v in header.split(",")]
    return "*" in wanted or etag in wanted or etag.strip('"') in [w.strip('"') for w in wanted]


def check_conditions(headers: Mapping[str, str], obj: ObjectView, prefix: str = "") -> None:
    """If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (304), S3's precedence."""
    modified = int(obj.last_modified)
    if_match = headers.get(f"{prefix}if-match")
    if if_match is not None:
        if not _etag_matches(if_match, obj.etag):
            raise errors.PreconditionFailed()
    else:
        since = headers.get(f"{prefix}if-unmodified-since")
        stamp = _parse_date(since) if since else None
        if stamp is not None and modified > stamp:
            raise errors.PreconditionFailed()
    if_none = headers.get(f"{prefix}if-none-match")
    if if_none is not None:
        if _etag_matches(if_none, obj.etag):
            raise errors.PreconditionFailed() if prefix else errors.NotModified()
    else:
        since = headers.get(f"{prefix}if-modified-since")
        stamp = _parse_date(since) if since else None
        if stamp is not None and modified <= stamp:
            raise errors.PreconditionFailed() if prefix else errors.NotModified()


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range; None for no/ignored range; InvalidRange."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, sep, last = value[len("bytes="):].strip().partition("-")
    if not sep or (not first and not last):
        return None
    try:
        if not first:
            n = int(last)
            if n <= 0 or size == 0:
                raise errors.InvalidRange()
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise errors.InvalidRange()
    if end < start:
        return None
    return start, min(end, size - 1)


def _object_headers(obj: ObjectView, query: Mapping[str, str]) -> dict[str, str]:
    headers = {"ETag": obj.etag, "Last-Modified": xml.http_date(obj.last_modified), "Accept-Ranges": "bytes",
               "Content-Type": obj.content_type or "binary/octet-stream"}
    headers.update(obj.headers)
    for name, value in obj.metadata.items():
        headers[f"x-amz-meta-{name}"] = value
    if obj.tags:
        headers["x-amz-tagging-count"] = str(len(obj.tags))
    if obj.parts_count:
        headers["x-amz-mp-parts-count"] = str(obj.parts_count)
    for param, header in RESPONSE_OVERRIDES.items():
        if param in query:
            headers[header] = query[param]
    return headers


def _load_readable(call: S3Call) -> tuple[BucketView, ObjectView]:
    bucket = load_bucket(call)
    obj = find_object(call, bucket.name, call.key)
    tags = obj.tags if obj is not None else []
    check(call, "s3:GetObject", object_arn(bucket.name, call.key), bucket, tag_context(tags, "s3:ExistingObjectTag"))
    if obj is None:
        # S3 says NoSuchKey only to callers who may list the bucket; others learn nothing.
        if allowed(call, "s3:ListBucket", bucket_arn(bucket.name), bucket, {"s3:prefix": call.key}):
            raise errors.NoSuchKey()
        raise errors.AccessDenied("Access Denied")
    return bucket, obj


async def get_object(call: S3Call, *, head: bool = False) -> Response:
    _bucket, obj = _load_readable(call)
    check_conditions(call.headers, obj)
    headers = _object_headers(obj, call.query)
    span = parse_range(call.headers.get("range"), obj.size)
    if span is None:
        start, length, status = 0, obj.size, 200
        if call.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" and obj.checksums:
            headers.update(_checksum_headers(obj.checksums))
            if obj.parts_count:
                headers["x-amz-checksum-type"] = "COMPOSITE"
    else:
        start, end = span
        length, status = end - start + 1, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{obj.size}"
    headers["Content-Length"] = str(length)
    if head:
        return Response(status_code=status, headers=headers)
    return StreamingResponse(call.blobs.read(obj.blob, start, length), status_code=status, headers=headers)


async def head_object(call: S3Call) -> Response:
    return await get_object(call, head=True)


# -- DeleteObject / DeleteObjects ------------------------------------------------------------------
def _delete_row(call: S3Call, bucket: str, key: str) -> None:
    old = None
    with call.ctx.store.tx() as s:
        row = s.execute(select(S3Object).where(S3Object.bucket == bucket, S3Object.key == key)).scalar_one_or_none()
        if row is not None:
            old = row.blob
            s.delete(row)
    call.blobs.delete([old])


async def delete_object(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:DeleteObject", object_arn(bucket.name, call.key), bucket)
    _delete_row(call, bucket.name, call.key)
    return Response(status_code=204)


async def delete_objects(call: S3Call) -> Response:
    bucket = load_bucket(call)
    body = await read_small(call)
    root = xml.parse(body, "Delete")
    quiet = (xml.child_text(root, "Quiet") or "").strip().lower() == "true"
    entries = xml.children(root, "Object")
    if not entries or len(entries) > 1000:
        raise errors.MalformedXML()
    deleted, failed = [], []
    for entry in entries:
        key = xml.child_text(entry, "Key")
        if key is None:
            raise errors.MalformedXML()
        try:
            check(call, "s3:DeleteObject", object_arn(bucket.name, key), bucket)
            _delete_row(call, bucket.name, key)
            if not quiet:
                deleted.append({"Key": key})
        except errors.AWSError as exc:
            failed.append({"Key": key, "Code": exc.code, "Message": exc.message})
    doc = xml.document("DeleteResult", {"Deleted": deleted, "Error": failed})
    return Response(doc, media_type="application/xml")


# -- CopyObject ------------------------------------------------------------------------------------
def parse_copy_source(value: str) -> tuple[str, str]:
    source = urllib.parse.unquote(value.split("?", 1)[0]).lstrip("/")
    bucket, sep, key = source.partition("/")
    if not sep or not bucket or not key:
        raise errors.InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
    return bucket, key


async def copy_object(call: S3Call) -> Response:
    src_bucket_name, src_key = parse_copy_source(call.headers["x-amz-copy-source"])
    src_bucket = load_bucket(call, src_bucket_name)
    dst_bucket = load_bucket(call)
    check_key(call.key)
    src = find_object(call, src_bucket.name, src_key)
    check(call, "s3:GetObject", object_arn(src_bucket.name, src_key), src_bucket,
          tag_context(src.tags if src else [], "s3:ExistingObjectTag"))
    if src is None:
        raise errors.NoSuchKey()
    directive = call.headers.get("x-amz-metadata-directive", "COPY").upper()
    tag_directive = call.headers.get("x-amz-tagging-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE") or tag_directive not in ("COPY", "REPLACE"):
        raise errors.InvalidArgument("Unknown metadata directive.")
    given = meta_from_headers(call.headers)
    meta = ObjectMeta(src.content_type, dict(src.headers), dict(src.metadata), list(src.tags))
    if directive == "REPLACE":
        meta.content_type, meta.headers, meta.metadata = given.content_type, given.headers, given.metadata
    if tag_directive == "REPLACE":
        meta.tags = given.tags
    if (src_bucket.name, src_key) == (dst_bucket.name, call.key) and directive == "COPY":
        raise errors.InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to itself without changing the "
            "object's metadata, storage class, website redirect location or encryption attributes.")
    check(call, "s3:PutObject", object_arn(dst_bucket.name, call.key), dst_bucket,
          {"s3:x-amz-copy-source": f"{src_bucket.name}/{src_key}", "s3:x-amz-metadata-directive": directive,
           **tag_context(meta.tags, "s3:RequestObjectTag")})
    check_conditions(call.headers, src, prefix="x-amz-copy-source-")
    await read_small(call, 0)
    temp = call.blobs.temp()
    try:
        await anyio.to_thread.run_sync(temp.copy_from, call.blobs.path(src.blob))
        blob = await temp.commit()
    except BaseException:
        temp.discard()
        raise
    checksums = {} if src.parts_count else dict(src.checksums)
    etag = src.etag if not src.parts_count else await anyio.to_thread.run_sync(_md5_etag, call, blob)
    now = commit_object(call, dst_bucket.name, call.key, blob=blob, size=src.size, etag=etag, meta=meta,
                        checksums=checksums)
    doc = xml.document("CopyObjectResult", {"ETag": etag, "LastModified": xml.timestamp(now)})
    return Response(doc, media_type="application/xml")


def _md5_etag(call: S3Call, blob: str) -> str:
    import hashlib

    h = hashlib.md5()  # noqa: S324 - the ETag
    path = call.blobs.path(blob)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return f'"{h.hexdigest()}"'
