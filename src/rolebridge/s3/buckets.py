"""Bucket operations: CreateBucket, HeadBucket, ListBuckets, DeleteBucket, GetBucketLocation.

Bucket names are one global namespace: a name taken by another account is
``BucketAlreadyExists``, by the caller's own account ``BucketAlreadyOwnedByYou``. A bucket is
created in the caller's account; only an account principal can own one.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from rolebridge import errors
from rolebridge.s3 import xml
from rolebridge.s3.addressing import check_bucket_name
from rolebridge.s3.authz import BucketView, bucket_arn, check
from rolebridge.s3.call import S3Call, read_small
from rolebridge.store.schema import S3Bucket, S3Object, S3Upload

DEFAULT_REGION = "us-east-1"


def canonical_id(account_id: str) -> str:
    """A stable 64-hex canonical user ID per account (S3's Owner/ID)."""
    return hashlib.sha256(f"rolebridge-canonical-{account_id}".encode()).hexdigest()


def owner(account_id: str) -> dict[str, str]:
    return {"ID": canonical_id(account_id), "DisplayName": account_id}


def _view(row: S3Bucket) -> BucketView:
    return BucketView(row.name, row.account_id, row.region, row.policy, row.created_at)


def find_bucket(call: S3Call, name: str) -> BucketView | None:
    with call.ctx.store.read() as s:
        row = s.get(S3Bucket, name)
        return _view(row) if row is not None else None


def load_bucket(call: S3Call, name: str | None = None) -> BucketView:
    bucket = find_bucket(call, name or call.bucket)
    if bucket is None:
        raise errors.NoSuchBucket()
    return bucket


def _location(body: bytes) -> str | None:
    if not body.strip():
        return None
    root = xml.parse(body, "CreateBucketConfiguration")
    return xml.child_text(root, "LocationConstraint") or None


async def create_bucket(call: S3Call) -> Response:
    name = call.bucket
    check_bucket_name(name)
    caller = call.auth.caller
    if caller is None:
        raise errors.AccessDenied("Anonymous users cannot create buckets")
    check(call, "s3:CreateBucket", bucket_arn(name), None)
    region = _location(await read_small(call, 64 * 1024)) or DEFAULT_REGION
    if call.auth.creds is not None and region != call.auth.creds.region and call.auth.creds.region != DEFAULT_REGION:
        raise errors.InvalidArgument(  # IllegalLocationConstraintException in AWS; same meaning
            f"The {region} location constraint is incompatible for the region specific endpoint this "
            "request was sent to.")
    try:
        with call.ctx.store.tx() as s:
            existing = s.get(S3Bucket, name)
            if existing is not None:
                if existing.account_id == caller.account_id:
                    raise errors.BucketAlreadyOwnedByYou()
                raise errors.BucketAlreadyExists()
            s.add(S3Bucket(name=name, account_id=caller.account_id, region=region, policy=None, tags=[],
                           created_at=call.ctx.now))
    except IntegrityError as exc:  # a concurrent create of the same name won the race
        raise errors.BucketAlreadyExists() from exc
    return Response(status_code=200, headers={"Location": f"/{name}"})


async def head_bucket(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:ListBucket", bucket_arn(bucket.name), bucket)
    return Response(status_code=200, headers={"x-amz-bucket-region": bucket.region})


async def get_bucket_location(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:GetBucketLocation", bucket_arn(bucket.name), bucket)
    region = None if bucket.region == DEFAULT_REGION else bucket.region  # us-east-1 is an empty element
    return Response(xml.text_document("LocationConstraint", region), media_type="application/xml")


async def list_buckets(call: S3Call) -> Response:
    caller = call.auth.caller
    if caller is None:
        raise errors.AccessDenied("Access Denied")
    check(call, "s3:ListAllMyBuckets", "*", None)
    with call.ctx.store.read() as s:
        rows = s.execute(select(S3Bucket).where(S3Bucket.account_id == caller.account_id)
                         .order_by(S3Bucket.name)).scalars().all()
        buckets = [{"Name": r.name, "CreationDate": xml.timestamp(r.created_at), "BucketRegion": r.region}
                   for r in rows]
    body = xml.document("ListAllMyBucketsResult", {"Owner": owner(caller.account_id),
                                                   "Buckets": {"Bucket": buckets}})
    return Response(body, media_type="application/xml")


async def delete_bucket(call: S3Call) -> Response:
    bucket = load_bucket(call)
    check(call, "s3:DeleteBucket", bucket_arn(bucket.name), bucket)
    with call.ctx.store.tx() as s:
        busy = s.execute(select(S3Object.id).where(S3Object.bucket == bucket.name).limit(1)).first()
        uploads = s.execute(select(S3Upload.upload_id).where(S3Upload.bucket == bucket.name).limit(1)).first()
        if busy is not None or uploads is not None:
            raise errors.BucketNotEmpty()
        row = s.get(S3Bucket, bucket.name)
        if row is not None:
            s.delete(row)
    return Response(status_code=204)
