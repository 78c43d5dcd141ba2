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


def error_response(service: str, exc: BaseException, request_id: str) -> Response:
    if not isinstance(exc, errors.AWSError):
        log.error("unhandled error in request %s", request_id, exc_info=exc)
        exc = errors.InternalFailure()
    return Response(serialize_error(service, exc, request_id), status_code=exc.status,
                    media_type="text/xml", headers={"x-amzn-RequestId": request_id})
