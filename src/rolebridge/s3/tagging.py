"""Object tags: PutObjectTagging, GetObjectTagging, DeleteObjectTagging (bucket tags too).

Tags are authorization inputs (``s3:ExistingObjectTag/<key>``), so they are read before the
policy check and written only after it.
"""

from __future__ import annotations

from sqlalchemy import select
from starlette.responses import Response

from rolebridge import errors
from rolebridge.s3 import xml
from rolebridge.s3.authz import bucket_arn, check, object_arn
from rolebridge.s3.buckets import load_bucket
from rolebridge.s3.call import S3Call, read_small
from rolebridge.s3.objects import find_object, tag_context, validate_tags
from rolebridge.store.schema import S3Bucket, S3Object


def _doc(tags: list[dict[str, str]]) -> bytes:
    return xml.document("Tagging", {"TagSet": {"Tag": tags}})


def _object(call: S3Call, action: str, extra_tags: list[dict[str, str]] | None = None):  # type: ignore[no-untyped-def]
    bucket = load_bucket(call)
    obj = find_object(call, bucket.name, call.key)
    context = tag_context(obj.tags if obj else [], "s3:ExistingObjectTag")
    if extra_tags is not None:
        context.update(tag_context(extra_tags, "s3:RequestObjectTag"))
    check(call, action, object_arn(bucket.name, call.key), bucket, context)
    if obj is None:
        raise errors.NoSuchKey()
    return bucket, obj


def _set_tags(call: S3Call, bucket: str, key: str, tags: list[dict[str, str]]) -> None:
    with call.ctx.store.tx() as s:
        row = s.execute(select(S3Object).where(S3Object.bucket == bucket, S3Object.key == key)).scalar_one_or_none()
        if row is None:
            raise errors.NoSuchKey()
        row.tags = tags


async def put_object_tagging(call: S3Call) -> Response:
    tags = validate_tags(xml.parse_tagging(await read_small(call)))
    bucket, obj = _object(call, "s3:PutObjectTagging", tags)
    _set_tags(call, bucket.name, obj.key, tags)
    return Response(status_code=200)


async def get_object_tagging(call: S3Call) -> Response:
    _bucket, obj = _object(call, "s3:GetObjectTagging")
    return Response(_doc(obj.tags), media_type="application/xml")


async def delete_object_tagging(call: S3Call) -> Response:
    bucket, obj = _object(call, "s3:DeleteObjectTagging")
    _set_tags(call, bucket.name, obj.key, [])
    return Response(status_code=204)


async def put_bucket_tagging(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:PutBucketTagging", bucket_arn(bucket.name), bucket)
    tags = xml.parse_tagging(await read_small(call))
    if len(tags) > 50:
        raise errors.InvalidTag("Bucket tag count cannot be greater than 50")
    with call.ctx.store.tx() as s:
        row = s.get(S3Bucket, bucket.name)
        if row is not None:
            row.tags = tags
    return Response(status_code=204)


async def get_bucket_tagging(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:GetBucketTagging", bucket_arn(bucket.name), bucket)
    with call.ctx.store.read() as s:
        row = s.get(S3Bucket, bucket.name)
        tags = list(row.tags or []) if row else []
    if not tags:
        raise errors.NoSuchTagSet()
    return Response(_doc(tags), media_type="application/xml")


async def delete_bucket_tagging(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:PutBucketTagging", bucket_arn(bucket.name), bucket)
    with call.ctx.store.tx() as s:
        row = s.get(S3Bucket, bucket.name)
        if row is not None:
            row.tags = []
    return Response(status_code=204)
