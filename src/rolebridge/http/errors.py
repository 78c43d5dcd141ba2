"""The one place errors become HTTP responses.

Expected errors (``AWSError``) render as AWS's XML with their status. Anything else is a bug: it
is logged (never with request bodies, which can hold tokens) and answered as a generic
``InternalFailure`` with no traceback.
"""

from __future__ import annotations

import logging

from starlette.responses import Response

from rolebridge import errors
from rolebridge.http.xml import serialize_error

log = logging.getLogger("rolebridge.http")


def error_payload(service: str, exc: BaseException, request_id: str) -> tuple[int, bytes]:
    """(HTTP status, XML error document) for ``exc``; anything not an ``AWSError`` is logged and hidden."""
    if not isinstance(exc, errors.AWSError):
        log.error("unhandled error in request %s", request_id, exc_info=exc)
        exc = errors.InternalFailure()
    return exc.status, serialize_error(service, exc, request_id)


def error_response(service: str, exc: BaseException, request_id: str) -> Response:
    status, payload = error_payload(service, exc, request_id)
    return Response(payload, status_code=status, media_type="text/xml", headers={"x-amzn-RequestId": request_id})
