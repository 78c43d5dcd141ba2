"""ListObjectsV2 (and the older ListObjects): prefix, delimiter, continuation, max-keys.

Keys are returned in UTF-8 binary order (SQLite's default collation compares the stored UTF-8
bytes, which is S3's order). With a delimiter, keys that share ``prefix + ... + delimiter`` are
rolled up into one CommonPrefix, and the scan jumps past all of them. Each CommonPrefix counts
against max-keys like a key. The continuation token is opaque to clients (base64 of where to
resume, and whether that point is a rolled-up prefix).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator

from sqlalchemy import select
from starlette.responses import Response

from rolebridge import errors
from rolebridge.s3 import xml
from rolebridge.s3.authz import bucket_arn, check
from rolebridge.s3.buckets import load_bucket, owner
from rolebridge.s3.call import S3Call
from rolebridge.store.schema import S3Object

BATCH = 1000
MAX_KEYS = 1000
_AFTER_ALL = "\U0010ffff"


def _token(after: str, rolled: bool) -> str:
    return base64.urlsafe_b64encode(json.dumps({"a": after, "p": rolled}).encode()).decode()


def _untoken(token: str) -> tuple[str, bool]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["a"]
        if not isinstance(after, str):
            raise TypeError("the key in a continuation token is a string")
        after.encode("utf-8")  # a lone surrogate (a "\\ud800" escape) is no key: UnicodeEncodeError
        return after, bool(data["p"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise errors.InvalidArgument("The continuation token provided is incorrect") from exc


def _rows(call: S3Call, bucket: str, prefix: str, after: str, inclusive: bool) -> Iterator[S3Object]:
    """Rows with ``key > after`` (or >=) and the prefix, in key order, fetched in batches."""
    while True:
        with call.ctx.store.read() as s:
            q = select(S3Object).where(S3Object.bucket == bucket)
            q = q.where(S3Object.key >= after if inclusive else S3Object.key > after)
            if prefix:
                q = q.where(S3Object.key >= prefix)
            batch = s.execute(q.order_by(S3Object.key).limit(BATCH)).scalars().all()
        if not batch:
            return
        for row in batch:
            if not row.key.startswith(prefix):
                if row.key > prefix:
                    return
                continue
            yield row
        after, inclusive = batch[-1].key, False
        if len(batch) < BATCH:
            return


def scan(call: S3Call, bucket: str, *, prefix: str, delimiter: str, max_keys: int, after: str,
         after_is_prefix: bool) -> tuple[list[S3Object], list[str], bool, tuple[str, bool] | None]:
    """(objects, common prefixes, truncated, resume point) — one page."""
    contents: list[S3Object] = []
    prefixes: list[str] = []
    last: tuple[str, bool] | None = None
    skip_prefix = after if after_is_prefix else None
    rows = _rows(call, bucket, prefix, after, inclusive=False)
    for row in rows:
        if skip_prefix is not None and row.key.startswith(skip_prefix):
            continue
        if delimiter:
            cut = row.key.find(delimiter, len(prefix))
            if cut >= 0:
                common = row.key[: cut + len(delimiter)]
                if prefixes and prefixes[-1] == common:
                    continue
                if len(contents) + len(prefixes) >= max_keys:
                    return contents, prefixes, True, last
                prefixes.append(common)
                last = (common, True)
                skip_prefix = common
                continue
        if len(contents) + len(prefixes) >= max_keys:
            return contents, prefixes, True, last
        contents.append(row)
        last = (row.key, False)
    return contents, prefixes, False, None


def _enc(value: str, url: bool) -> str:
    return urllib.parse.quote(value, safe="/") if url else value


def _max_keys(raw: str | None) -> int:
    if raw is None:
        return MAX_KEYS
    if not raw.lstrip("-").isdigit() or int(raw) < 0:
        raise errors.InvalidArgument("Provided max-keys not an integer or within integer range")
    return min(int(raw), MAX_KEYS)


async def list_objects(call: S3Call) -> Response:
    bucket = load_bucket(call)
    q = call.query
    v2 = q.get("list-type") == "2"
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    max_keys = _max_keys(q.get("max-keys"))
    url = q.get("encoding-type") == "url"
    if q.get("encoding-type") not in (None, "url"):
        raise errors.InvalidArgument("Invalid Encoding Method specified in Request")
    context = {"s3:prefix": prefix, "s3:max-keys": max_keys}
    if delimiter:
        context["s3:delimiter"] = delimiter
    check(call, "s3:ListBucket", bucket_arn(bucket.name), bucket, context)
    if v2:
        token = q.get("continuation-token")
        after, rolled = _untoken(token) if token else (q.get("start-after", ""), False)
    else:
        after, rolled = q.get("marker", ""), False
        if delimiter and after.endswith(delimiter) and after.startswith(prefix):
            rolled = True
    contents, prefixes, truncated, resume = scan(call, bucket.name, prefix=prefix, delimiter=delimiter,
                                                 max_keys=max_keys, after=after, after_is_prefix=rolled)
    with_owner = not v2 or q.get("fetch-owner") == "true"
    items = []
    for row in contents:
        item = {"Key": _enc(row.key, url), "LastModified": xml.timestamp(row.last_modified), "ETag": row.etag,
                "Size": row.size, "StorageClass": "STANDARD"}
        if row.checksums:
            item["ChecksumAlgorithm"] = sorted(row.checksums)
        if with_owner:
            item["Owner"] = owner(bucket.account_id)
        items.append(item)
    doc: dict[str, object] = {"Name": bucket.name, "Prefix": _enc(prefix, url)}
    if v2:
        doc.update({"KeyCount": len(contents) + len(prefixes), "MaxKeys": max_keys})
        if q.get("continuation-token"):
            doc["ContinuationToken"] = q["continuation-token"]
        if q.get("start-after"):
            doc["StartAfter"] = _enc(q["start-after"], url)
    else:
        doc.update({"Marker": _enc(after, url), "MaxKeys": max_keys})
    if delimiter:
        doc["Delimiter"] = _enc(delimiter, url)
    if url:
        doc["EncodingType"] = "url"
    doc["IsTruncated"] = truncated
    if truncated and resume is not None:
        if v2:
            doc["NextContinuationToken"] = _token(*resume)
        elif delimiter:
            doc["NextMarker"] = _enc(resume[0], url)
    doc["Contents"] = items
    doc["CommonPrefixes"] = [{"Prefix": _enc(p, url)} for p in prefixes]
    return Response(xml.document("ListBucketResult", doc), media_type="application/xml")
