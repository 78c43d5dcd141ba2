"""PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy.

A bucket policy is a resource policy: validated by the policy engine as ``kind=resource`` and
refused as S3 does (``MalformedPolicy``) when invalid. The bucket owner's account root may always
manage the policy (S3 lets the owner recover from a policy that denies everyone), other callers
need ``s3:PutBucketPolicy`` & co.
"""

from __future__ import annotations

from starlette.responses import Response

from rolebridge import errors
from rolebridge.policy import compile_policy
from rolebridge.s3.authz import BucketView, bucket_arn, check, check_guardrails
from rolebridge.s3.buckets import load_bucket
from rolebridge.s3.call import S3Call, read_small
from rolebridge.store.schema import S3Bucket

MAX_POLICY = 20 * 1024


def _authorize(call: S3Call, action: str, bucket: BucketView) -> None:
    caller = call.auth.caller
    if caller is not None and caller.is_root and caller.account_id == bucket.account_id:
        check_guardrails(call, action, bucket_arn(bucket.name), bucket)
        return
    check(call, action, bucket_arn(bucket.name), bucket)


async def put_bucket_policy(call: S3Call) -> Response:
    bucket = load_bucket(call)
    _authorize(call, "s3:PutBucketPolicy", bucket)
    body = await read_small(call, MAX_POLICY + 1)
    if len(body) > MAX_POLICY:
        raise errors.MalformedPolicy("Policies must be less than 20 KB")
    text = body.decode("utf-8", "replace")
    try:
        compile_policy(text, kind="resource", name=f"bucket policy of {bucket.name}")
    except errors.AWSError as exc:
        raise errors.MalformedPolicy(exc.message) from exc
    with call.ctx.store.tx() as s:
        row = s.get(S3Bucket, bucket.name)
        if row is None:
            raise errors.NoSuchBucket()
        row.policy = text
    return Response(status_code=204)


async def get_bucket_policy(call: S3Call) -> Response:
    bucket = load_bucket(call)
    _authorize(call, "s3:GetBucketPolicy", bucket)
    if not bucket.policy:
        raise errors.NoSuchBucketPolicy()
    return Response(bucket.policy, media_type="application/json")


async def delete_bucket_policy(call: S3Call) -> Response:
    bucket = load_bucket(call)
    _authorize(call, "s3:DeleteBucketPolicy", bucket)
    with call.ctx.store.tx() as s:
        row = s.get(S3Bucket, bucket.name)
        if row is not None:
            row.policy = None
    return Response(status_code=204)
