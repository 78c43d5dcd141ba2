"""The S3 entry point: an ASGI middleware in front of the server's routes.

For each HTTP request it decides (``addressing.is_s3_request``) whether the request is S3's; if
so it authenticates it (``auth``), picks the operation from method + bucket/key + subresource
(``route``), runs it, and renders any ``AWSError`` as S3's error document. Everything else goes
on to the Starlette routes untouched. Every call, allowed or refused, passes ``services.record``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from rolebridge import errors
from rolebridge.context import CallContext
from rolebridge.s3 import bucket_policy, buckets, listing, multipart, objects, tagging, xml
from rolebridge.s3.addressing import Address, _signed_for_s3, is_s3_request, resolve, vhost_bases, virtual_bucket
from rolebridge.s3.auth import Authenticated, authenticate
from rolebridge.s3.call import S3Call
from rolebridge.s3.storage import BlobStore
from rolebridge.services import Services

log = logging.getLogger("rolebridge.s3")

Handler = Callable[[S3Call], Awaitable[Response]]

# (method, target, subresource) -> (operation name, handler); target: "service" | "bucket" | "object"
_ROUTES: dict[tuple[str, str, str], tuple[str, Handler]] = {
    ("GET", "service", ""): ("ListBuckets", buckets.list_buckets),
    ("PUT", "bucket", ""): ("CreateBucket", buckets.create_bucket),
    ("HEAD", "bucket", ""): ("HeadBucket", buckets.head_bucket),
    ("DELETE", "bucket", ""): ("DeleteBucket", buckets.delete_bucket),
    ("GET", "bucket", ""): ("ListObjects", listing.list_objects),
    ("GET", "bucket", "location"): ("GetBucketLocation", buckets.get_bucket_location),
    ("GET", "bucket", "uploads"): ("ListMultipartUploads", multipart.list_uploads),
    ("POST", "bucket", "delete"): ("DeleteObjects", objects.delete_objects),
    ("PUT", "bucket", "policy"): ("PutBucketPolicy", bucket_policy.put_bucket_policy),
    ("GET", "bucket", "policy"): ("GetBucketPolicy", bucket_policy.get_bucket_policy),
    ("DELETE", "bucket", "policy"): ("DeleteBucketPolicy", bucket_policy.delete_bucket_policy),
    ("PUT", "bucket", "tagging"): ("PutBucketTagging", tagging.put_bucket_tagging),
    ("GET", "bucket", "tagging"): ("GetBucketTagging", tagging.get_bucket_tagging),
    ("DELETE", "bucket", "tagging"): ("DeleteBucketTagging", tagging.delete_bucket_tagging),
    ("PUT", "object", ""): ("PutObject", objects.put_object),
    ("GET", "object", ""): ("GetObject", objects.get_object),
    ("HEAD", "object", ""): ("HeadObject", objects.head_object),
    ("DELETE", "object", ""): ("DeleteObject", objects.delete_object),
    ("POST", "object", "uploads"): ("CreateMultipartUpload", multipart.create_upload),
    ("PUT", "object", "uploadId"): ("UploadPart", multipart.upload_part),
    ("POST", "object", "uploadId"): ("CompleteMultipartUpload", multipart.complete_upload),
    ("DELETE", "object", "uploadId"): ("AbortMultipartUpload", multipart.abort_upload),
    ("GET", "object", "uploadId"): ("ListParts", multipart.list_parts),
    ("PUT", "object", "tagging"): ("PutObjectTagging", tagging.put_object_tagging),
    ("GET", "object", "tagging"): ("GetObjectTagging", tagging.get_object_tagging),
    ("DELETE", "object", "tagging"): ("DeleteObjectTagging", tagging.delete_object_tagging),
}
_COPY_OPERATIONS = {"PutObject": "CopyObject", "UploadPart": "UploadPartCopy"}
_SUBRESOURCES = ("uploads", "uploadId", "delete", "policy", "tagging", "location")
# subresources S3 has and this server does not: NotImplemented, never a silent wrong answer
_UNSUPPORTED = ("acl", "versioning", "versions", "cors", "lifecycle", "website", "encryption", "replication",
                "notification", "logging", "object-lock", "retention", "legal-hold", "accelerate",
                "requestPayment", "ownershipControls", "publicAccessBlock", "analytics", "metrics",
                "inventory", "intelligent-tiering", "torrent", "restore", "select", "attributes")


def route(method: str, address: Address, query: dict[str, str]) -> tuple[str, Handler]:
    target = "service" if address.bucket is None else ("bucket" if address.key is None else "object")
    for name in _UNSUPPORTED:
        if name in query:
            raise errors.NotImplementedS3(f"The {name} subresource is not implemented by this server")
    sub = next((name for name in _SUBRESOURCES if name in query), "")
    found = _ROUTES.get((method, target, sub))
    if found is None:
        raise errors.MethodNotAllowed()
    return found


def _first_values(query_string: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in urllib.parse.parse_qsl(query_string, keep_blank_values=True):
        out.setdefault(k, v)
    return out


class S3Requests:
    """Which requests are S3's: path- or virtual-host-style, or signed for ``s3`` (``addressing``)."""

    def __init__(self, services: Services) -> None:
        self.bases = vhost_bases(urllib.parse.urlsplit(services.public_url).hostname)
        self._vhost_memo: dict[bytes, bool] = {}  # Host header -> names a bucket (POST / fast path)

    def __call__(self, scope: Scope) -> bool:
        raw = scope.get("raw_path")
        if scope.get("method") == "POST" and (raw == b"/" or (not raw and scope.get("path") == "/")):
            return self._post_root(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        return is_s3_request(host=headers.get("host", ""), raw_path=_raw_path(scope),
                             authorization=headers.get("authorization", ""),
                             query_string=scope.get("query_string", b"").decode("latin-1"), bases=self.bases)

    def _post_root(self, scope: Scope) -> bool:
        """``is_s3_request`` for ``POST /`` (every STS/IAM call): the same rule, on the hot path.

        Only Host and Authorization are read (no header map is built), and whether a Host names a
        bucket is remembered per Host value (a server sees a handful).
        """
        host, authorization = b"", b""
        for name, value in scope.get("headers", []):
            name = name.lower()
            if name == b"host":
                host = value
            elif name == b"authorization":
                authorization = value
        bucket = self._vhost_memo.get(host)
        if bucket is None:
            bucket = virtual_bucket(host.decode("latin-1"), self.bases) is not None
            if len(self._vhost_memo) < 1024:
                self._vhost_memo[host] = bucket
        return bucket or _signed_for_s3(authorization.decode("latin-1"),
                                       scope.get("query_string", b"").decode("latin-1"))


class S3Middleware:
    """ASGI middleware: S3 requests are answered here, the rest passes to ``app``."""

    def __init__(self, app: ASGIApp, services: Services, is_s3: S3Requests | None = None) -> None:
        self.app = app
        self.services = services
        self.is_s3 = is_s3 or S3Requests(services)
        self.bases = self.is_s3.bases
        self.blobs = BlobStore(services.store.paths.data_dir / "s3")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.is_s3(scope):
            await self.app(scope, receive, send)
            return
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        services = self.services
        request_id = uuid.uuid4().hex[:16].upper()
        now = services.clock()
        scope = request.scope
        raw_path = _raw_path(scope)
        query_string = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        address = resolve(headers.get("host", ""), raw_path, self.bases)
        client = request.client
        ctx = CallContext(services=services, caller=None, now=now, request_id=request_id,
                          source_ip=client.host if client else "127.0.0.1",
                          user_agent=headers.get("user-agent", ""), secure=scope.get("scheme") == "https")
        operation = ""
        params: dict[str, Any] = {"bucketName": address.bucket, "key": address.key}
        try:
            query = _first_values(query_string)
            operation, handler = route(request.method, address, query)
            if "x-amz-copy-source" in headers:  # the same handlers; the trail names the copy as S3 does
                operation = _COPY_OPERATIONS.get(operation, operation)
            auth: Authenticated = authenticate(services, method=request.method, raw_path=raw_path,
                                               query_string=query_string, headers=headers, query=query, now=now)
            ctx.caller = auth.caller
            call = S3Call(ctx=ctx, auth=auth, address=address, method=request.method, headers=headers,
                          query=query, request=request, blobs=self.blobs, operation=operation)
            response = await handler(call)
            await self._record(ctx, operation, params, error=None)
        except Exception as exc:
            if isinstance(exc, errors.AWSError):
                await self._record(ctx, operation, params, error=exc)
            response = self.error(exc, request.method, address, request_id)
            has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
            if has_body and not getattr(request, "_stream_consumed", False):
                # refused before the body was read: close, so the unread bytes cannot be taken for the next request
                response.headers["connection"] = "close"
        response.headers["x-amz-request-id"] = request_id
        response.headers["x-amz-id-2"] = request_id
        return response

    async def _record(self, ctx: CallContext, operation: str, params: dict[str, Any], *, error: Any) -> None:
        """Audit the call before answering; a hook that returns a Future is awaited (committed first)."""
        try:
            pending = self.services.record(ctx, "s3", operation, params, result=None if error else {},
                                           error=error, request_id=ctx.request_id)
            if isinstance(pending, concurrent.futures.Future):
                await asyncio.wrap_future(pending)
        except Exception:  # the audit trail must not turn an answered request into a failure
            log.exception("audit record failed for S3 %s", operation)

    @staticmethod
    def error(exc: BaseException, method: str, address: Address, request_id: str) -> Response:
        if not isinstance(exc, errors.AWSError):
            log.error("unhandled error in S3 request %s", request_id, exc_info=exc)
            exc = errors.InternalFailure("We encountered an internal error. Please try again.")
            exc.code = "InternalError"
        extra = {}
        if isinstance(exc, errors.NoSuchBucket | errors.BucketAlreadyExists | errors.BucketNotEmpty) and address.bucket:
            extra["BucketName"] = address.bucket
        if isinstance(exc, errors.NoSuchKey) and address.key is not None:
            extra["Key"] = address.key
        if method == "HEAD" or exc.status == 304:
            return Response(status_code=exc.status)
        body = xml.error_document(exc, resource=address.resource(), request_id=request_id, extra=extra)
        return Response(body, status_code=exc.status, media_type="application/xml")


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0] or "/"
    return urllib.parse.quote(scope.get("path", "/"))
