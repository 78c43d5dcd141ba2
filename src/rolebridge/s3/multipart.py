"""Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts, ListMultipartUploads.

Each part is its own durable blob and row. Complete concatenates the listed parts into a new
blob (fsynced and renamed), then in ONE transaction makes the object visible and removes the
upload and its parts; only then are the part blobs deleted. A crash at any point leaves either
the upload in progress (object absent) or the completed object (upload gone), never a partial
object.

UploadPartCopy is an UploadPart request with ``x-amz-copy-source`` (and optionally
``x-amz-copy-source-range: bytes=first-last``): the part's bytes are read from a stored object
instead of the body. It needs ``s3:GetObject`` on the source (with its tags as
``s3:ExistingObjectTag/*``) and ``s3:PutObject`` on the destination (with ``s3:x-amz-copy-source``),
obeys the ``x-amz-copy-source-if-*`` conditions, and stores the part like any other.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

import anyio.to_thread
from sqlalchemy import delete, select
from starlette.responses import Response

from rolebridge import errors
from rolebridge.s3 import xml
from rolebridge.s3.addressing import check_key
from rolebridge.s3.authz import bucket_arn, check, object_arn
from rolebridge.s3.buckets import load_bucket, owner
from rolebridge.s3.call import S3Call, consume, read_small
from rolebridge.s3.checksums import ALGORITHMS, Digests, b64, composite, new_hasher
from rolebridge.s3.objects import (
    ObjectMeta,
    ObjectView,
    check_conditions,
    find_object,
    meta_from_headers,
    parse_copy_source,
    tag_context,
)
from rolebridge.s3.storage import TempBlob
from rolebridge.store.schema import S3Object, S3Part, S3Upload

MAX_PART = 5 * 1024**3
MIN_PART = 5 * 1024 * 1024
MAX_PART_NUMBER = 10000
_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d+)")
FULL_OBJECT = "FULL_OBJECT"


def _algorithm(raw: str | None) -> tuple[str | None, str | None]:
    """``checksum_algorithm`` column: ``ALGO`` (composite) or ``ALGO/FULL_OBJECT``."""
    if not raw:
        return None, None
    algo, _, kind = raw.partition("/")
    return algo, kind or "COMPOSITE"


def _load_upload(call: S3Call, upload_id: str) -> S3Upload:
    with call.ctx.store.read() as s:
        row = s.get(S3Upload, upload_id)
        if row is None or row.bucket != call.bucket or row.key != call.key:
            raise errors.NoSuchUpload()
        s.expunge(row)
        return row


async def create_upload(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check_key(call.key)
    meta = meta_from_headers(call.headers)
    check(call, "s3:PutObject", object_arn(bucket.name, call.key), bucket,
          tag_context(meta.tags, "s3:RequestObjectTag"))
    algo = (call.headers.get("x-amz-checksum-algorithm") or "").upper() or None
    kind = (call.headers.get("x-amz-checksum-type") or "").upper() or None
    if algo is not None and algo not in ALGORITHMS:
        raise errors.InvalidRequest(f"Checksum algorithm {algo} is not supported.")
    if kind not in (None, "COMPOSITE", FULL_OBJECT):
        raise errors.InvalidRequest("Value for x-amz-checksum-type header is invalid.")
    if kind == FULL_OBJECT and algo not in ("CRC32", "CRC32C"):
        raise errors.InvalidRequest(f"The {algo} checksum algorithm is not supported with the FULL_OBJECT "
                                    "checksum type.")
    await read_small(call, 0)
    upload_id = base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode().rstrip("=")
    caller = call.auth.caller
    with call.ctx.store.tx() as s:
        s.add(S3Upload(upload_id=upload_id, bucket=bucket.name, key=call.key,
                       initiator_arn=caller.arn if caller else "anonymous", content_type=meta.content_type,
                       headers=meta.headers, metadata_=meta.metadata, tags=meta.tags,
                       checksum_algorithm=f"{algo}/{kind}" if algo and kind == FULL_OBJECT else algo,
                       initiated=call.ctx.now))
    headers = {}
    if algo:
        headers["x-amz-checksum-algorithm"] = algo
        headers["x-amz-checksum-type"] = kind or "COMPOSITE"
    doc = xml.document("InitiateMultipartUploadResult", {"Bucket": bucket.name, "Key": call.key, "UploadId": upload_id})
    return Response(doc, media_type="application/xml", headers=headers)


def _part_number(raw: str | None) -> int:
    if raw is None or not raw.isdigit() or not 1 <= int(raw) <= MAX_PART_NUMBER:
        raise errors.InvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
    return int(raw)


async def upload_part(call: S3Call) -> Response:
    if "x-amz-copy-source" in call.headers:
        return await upload_part_copy(call)
    bucket = load_bucket(call)
    number = _part_number(call.query.get("partNumber"))
    upload = _load_upload(call, call.query["uploadId"])
    check(call, "s3:PutObject", object_arn(bucket.name, call.key), bucket)
    algo, _kind = _algorithm(upload.checksum_algorithm)
    temp = call.blobs.temp()
    try:
        digests = await consume(call, temp.write, limit=MAX_PART, default_algorithm=algo)
        blob = await temp.commit()
    except BaseException:
        temp.discard()
        raise
    etag = f'"{digests.md5.hexdigest()}"'
    checksums = digests.values()
    _store_part(call, upload, number, blob=blob, size=digests.size, etag=etag, checksums=checksums)
    return Response(status_code=200, headers={"ETag": etag, **{f"x-amz-checksum-{a.lower()}": v
                                                               for a, v in checksums.items()}})


def _store_part(call: S3Call, upload: S3Upload, number: int, *, blob: str, size: int, etag: str,
                checksums: dict[str, str]) -> None:
    """Record the durable ``blob`` as part ``number`` (replacing an earlier one), or drop it."""
    old = None
    try:
        with call.ctx.store.tx() as s:
            if s.get(S3Upload, upload.upload_id) is None:
                raise errors.NoSuchUpload()
            row = s.execute(select(S3Part).where(S3Part.upload_id == upload.upload_id,
                                                 S3Part.part_number == number)).scalar_one_or_none()
            if row is None:
                s.add(S3Part(upload_id=upload.upload_id, part_number=number, size=size, etag=etag, blob=blob,
                             checksums=checksums, last_modified=call.ctx.now))
            else:
                old = row.blob
                row.size, row.etag, row.blob, row.checksums = size, etag, blob, checksums
                row.last_modified = call.ctx.now
    except Exception:
        call.blobs.delete([blob])
        raise
    call.blobs.delete([old])


def _copy_range(header: str | None, size: int) -> tuple[int, int]:
    """(start, length) of ``x-amz-copy-source-range`` (the whole object when absent)."""
    if header is None:
        if size > MAX_PART:
            raise errors.InvalidRequest("The specified copy source is larger than the maximum allowable size "
                                        f"for a copy source: {MAX_PART}")
        return 0, size
    m = _COPY_RANGE.fullmatch(header.strip())
    if m is None:
        raise errors.InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last "
                                     "where first and last are the zero-based offsets of the first and last "
                                     "bytes to copy")
    first, last = int(m.group(1)), int(m.group(2))
    if first > last or last >= size:
        raise errors.InvalidArgument(f"Range specified is not valid for source object of size: {size}")
    if last - first + 1 > MAX_PART:
        raise errors.EntityTooLarge()
    return first, last - first + 1


def _copy_into(call: S3Call, temp: TempBlob, source: ObjectView, start: int, length: int,
               digests: Digests) -> str:
    """Copy ``length`` bytes of the source blob from ``start`` into ``temp``, digesting them; commit."""
    for block in call.blobs.read(source.blob, start, length):
        digests.update(block)
        temp.write(block)
    return temp._commit_sync()


async def upload_part_copy(call: S3Call) -> Response:
    src_bucket_name, src_key = parse_copy_source(call.headers["x-amz-copy-source"])
    src_bucket = load_bucket(call, src_bucket_name)
    bucket = load_bucket(call)
    number = _part_number(call.query.get("partNumber"))
    upload = _load_upload(call, call.query["uploadId"])
    source = find_object(call, src_bucket.name, src_key)
    check(call, "s3:GetObject", object_arn(src_bucket.name, src_key), src_bucket,
          tag_context(source.tags if source else [], "s3:ExistingObjectTag"))
    if source is None:
        raise errors.NoSuchKey()
    check(call, "s3:PutObject", object_arn(bucket.name, call.key), bucket,
          {"s3:x-amz-copy-source": f"{src_bucket.name}/{src_key}"})
    check_conditions(call.headers, source, prefix="x-amz-copy-source-")
    start, length = _copy_range(call.headers.get("x-amz-copy-source-range"), source.size)
    await read_small(call, 0)
    algo, _kind = _algorithm(upload.checksum_algorithm)
    digests = Digests([algo] if algo else [])
    temp = call.blobs.temp()
    try:
        blob = await anyio.to_thread.run_sync(_copy_into, call, temp, source, start, length, digests)
    except BaseException:
        temp.discard()
        raise
    etag = f'"{digests.md5.hexdigest()}"'
    checksums = digests.values()
    _store_part(call, upload, number, blob=blob, size=length, etag=etag, checksums=checksums)
    doc: dict[str, object] = {"ETag": etag, "LastModified": xml.timestamp(call.ctx.now)}
    for a, v in checksums.items():
        doc[f"Checksum{a}"] = v
    return Response(xml.document("CopyPartResult", doc), media_type="application/xml")


def _requested_parts(body: bytes) -> list[tuple[int, str, dict[str, str]]]:
    root = xml.parse(body, "CompleteMultipartUpload")
    parts = []
    for el in xml.children(root, "Part"):
        number, etag = xml.child_text(el, "PartNumber"), xml.child_text(el, "ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise errors.MalformedXML()
        sums = {a: v for a in ALGORITHMS if (v := xml.child_text(el, f"Checksum{a}")) is not None}
        parts.append((int(number), etag.strip(), sums))
    if not parts:
        raise errors.MalformedXML()
    return parts


def _concatenate(call: S3Call, blobs: list[str], full_algo: str | None) -> tuple[str, str | None]:
    temp = call.blobs.temp()
    hasher = new_hasher(full_algo) if full_algo else None
    try:
        for name in blobs:
            with open(call.blobs.path(name), "rb") as f:
                while block := f.read(8 << 20):
                    temp.write(block)
                    if hasher is not None:
                        hasher.update(block)
        return temp._commit_sync(), (b64(hasher.digest()) if hasher is not None else None)
    except BaseException:
        temp.discard()
        raise


async def complete_upload(call: S3Call) -> Response:
    bucket = load_bucket(call)
    upload = _load_upload(call, call.query["uploadId"])
    check(call, "s3:PutObject", object_arn(bucket.name, call.key), bucket,
          tag_context(upload.tags, "s3:RequestObjectTag"))
    wanted = _requested_parts(await read_small(call))
    numbers = [n for n, _e, _c in wanted]
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        raise errors.InvalidPartOrder()
    with call.ctx.store.read() as s:
        rows = s.execute(select(S3Part).where(S3Part.upload_id == upload.upload_id)).scalars().all()
        stored = {p.part_number: p for p in rows}
    algo, kind = _algorithm(upload.checksum_algorithm)
    chosen = []
    for i, (number, etag, sums) in enumerate(wanted):
        part = stored.get(number)
        if part is None or part.etag.strip('"') != etag.strip('"'):
            raise errors.InvalidPart()
        for a, v in sums.items():
            if part.checksums.get(a) != v:
                raise errors.InvalidPart()
        if i < len(wanted) - 1 and part.size < MIN_PART:
            raise errors.EntityTooSmall()
        chosen.append(part)
    blob, full = await anyio.to_thread.run_sync(_concatenate, call, [p.blob for p in chosen],
                                                algo if kind == FULL_OBJECT else None)
    md5s = b"".join(bytes.fromhex(p.etag.strip('"')) for p in chosen)
    etag = f'"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}"'  # noqa: S324 - S3's multipart ETag
    checksums: dict[str, str] = {}
    if algo and kind == FULL_OBJECT and full is not None:
        checksums[algo] = full
    elif algo and all(algo in p.checksums for p in chosen):
        checksums[algo] = composite([p.checksums[algo] for p in chosen], algo)
    declared = call.headers.get(f"x-amz-checksum-{algo.lower()}") if algo else None
    if declared is not None and declared != checksums.get(algo or ""):
        call.blobs.delete([blob])
        raise errors.BadDigest(f"The {algo} you specified did not match the calculated checksum.")
    meta = ObjectMeta(upload.content_type, dict(upload.headers or {}), dict(upload.metadata_ or {}),
                      list(upload.tags or []))
    size = sum(p.size for p in chosen)
    old = None
    try:
        with call.ctx.store.tx() as s:
            if s.get(S3Upload, upload.upload_id) is None:
                raise errors.NoSuchUpload()
            row = s.execute(select(S3Object).where(S3Object.bucket == bucket.name, S3Object.key == call.key)
                            ).scalar_one_or_none()
            now = call.ctx.now
            if row is None:
                s.add(S3Object(bucket=bucket.name, key=call.key, size=size, etag=etag, blob=blob,
                               content_type=meta.content_type, headers=meta.headers, metadata_=meta.metadata,
                               tags=meta.tags, checksums=checksums, parts_count=len(chosen), last_modified=now))
            else:
                old = row.blob
                row.size, row.etag, row.blob, row.content_type = size, etag, blob, meta.content_type
                row.headers, row.metadata_, row.tags, row.checksums = meta.headers, meta.metadata, meta.tags, checksums
                row.parts_count, row.last_modified = len(chosen), now
            s.execute(delete(S3Part).where(S3Part.upload_id == upload.upload_id))
            s.execute(delete(S3Upload).where(S3Upload.upload_id == upload.upload_id))
    except Exception:
        call.blobs.delete([blob])
        raise
    call.blobs.delete([old, *(p.blob for p in stored.values())])
    doc: dict[str, object] = {"Location": f"/{bucket.name}/{call.key}", "Bucket": bucket.name, "Key": call.key,
                              "ETag": etag}
    for a, v in checksums.items():
        doc[f"Checksum{a}"] = v
    if checksums:
        doc["ChecksumType"] = kind
    return Response(xml.document("CompleteMultipartUploadResult", doc), media_type="application/xml")


async def abort_upload(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:AbortMultipartUpload", object_arn(bucket.name, call.key), bucket)
    upload = _load_upload(call, call.query["uploadId"])
    with call.ctx.store.tx() as s:
        blobs = list(s.execute(select(S3Part.blob).where(S3Part.upload_id == upload.upload_id)).scalars())
        s.execute(delete(S3Part).where(S3Part.upload_id == upload.upload_id))
        s.execute(delete(S3Upload).where(S3Upload.upload_id == upload.upload_id))
    call.blobs.delete(blobs)
    return Response(status_code=204)


def _int(raw: str | None, default: int, name: str) -> int:
    if raw is None:
        return default
    if not raw.isdigit():
        raise errors.InvalidArgument(f"Provided {name} not an integer or within integer range")
    return int(raw)


async def list_parts(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:ListMultipartUploadParts", object_arn(bucket.name, call.key), bucket)
    upload = _load_upload(call, call.query["uploadId"])
    max_parts = min(_int(call.query.get("max-parts"), 1000, "max-parts"), 1000)
    marker = _int(call.query.get("part-number-marker"), 0, "part-number-marker")
    with call.ctx.store.read() as s:
        rows = s.execute(select(S3Part).where(S3Part.upload_id == upload.upload_id, S3Part.part_number > marker)
                         .order_by(S3Part.part_number).limit(max_parts + 1)).scalars().all()
    truncated = len(rows) > max_parts
    rows = rows[:max_parts]
    parts = []
    for p in rows:
        item: dict[str, object] = {"PartNumber": p.part_number, "LastModified": xml.timestamp(p.last_modified),
                                   "ETag": p.etag, "Size": p.size}
        for a, v in (p.checksums or {}).items():
            item[f"Checksum{a}"] = v
        parts.append(item)
    algo, kind = _algorithm(upload.checksum_algorithm)
    doc: dict[str, object] = {
        "Bucket": bucket.name, "Key": call.key, "UploadId": upload.upload_id,
        "Initiator": {"ID": upload.initiator_arn, "DisplayName": upload.initiator_arn},
        "Owner": owner(bucket.account_id), "StorageClass": "STANDARD", "PartNumberMarker": marker,
        "NextPartNumberMarker": rows[-1].part_number if rows else marker, "MaxParts": max_parts,
        "IsTruncated": truncated, "Part": parts, "ChecksumAlgorithm": algo, "ChecksumType": kind,
    }
    return Response(xml.document("ListPartsResult", doc), media_type="application/xml")


async def list_uploads(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:ListBucketMultipartUploads", bucket_arn(bucket.name), bucket)
    q = call.query
    prefix = q.get("prefix", "")
    key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
    max_uploads = min(_int(q.get("max-uploads"), 1000, "max-uploads"), 1000)
    with call.ctx.store.read() as s:
        rows = s.execute(select(S3Upload).where(S3Upload.bucket == bucket.name, S3Upload.key >= key_marker)
                         .order_by(S3Upload.key, S3Upload.initiated, S3Upload.upload_id)).scalars().all()
    chosen = []
    for r in rows:
        if not r.key.startswith(prefix):
            continue
        if key_marker and (r.key == key_marker and (not id_marker or r.upload_id <= id_marker)):
            continue
        chosen.append(r)
    truncated = len(chosen) > max_uploads
    chosen = chosen[:max_uploads]
    uploads = [{"Key": r.key, "UploadId": r.upload_id,
                "Initiator": {"ID": r.initiator_arn, "DisplayName": r.initiator_arn},
                "Owner": owner(bucket.account_id), "StorageClass": "STANDARD",
                "Initiated": xml.timestamp(r.initiated)} for r in chosen]
    doc: dict[str, object] = {"Bucket": bucket.name, "KeyMarker": key_marker, "UploadIdMarker": id_marker,
                              "MaxUploads": max_uploads, "IsTruncated": truncated, "Prefix": prefix,
                              "Upload": uploads}
    if truncated and chosen:
        doc["NextKeyMarker"], doc["NextUploadIdMarker"] = chosen[-1].key, chosen[-1].upload_id
    return Response(xml.document("ListMultipartUploadsResult", doc), media_type="application/xml")
