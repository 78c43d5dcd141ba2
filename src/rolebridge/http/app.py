"""The ASGI app: the AWS Query endpoint at ``/``, cluster issuers under ``/oidc/``, health.

Routing only; every route hands off to a module that holds one concept.
"""

from __future__ import annotations

import re
import uuid
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

# importing the handler modules registers their operations
from rolebridge import errors
from rolebridge.http import oidc
from rolebridge.http.errors import error_response
from rolebridge.http.platform_api import create_platform_api
from rolebridge.http.query_api import QueryEndpoint, handle_query
from rolebridge.iam import account_summary as _account_summary  # noqa: F401
from rolebridge.iam import managed_policies as _managed_policies  # noqa: F401
from rolebridge.iam import providers as _providers  # noqa: F401
from rolebridge.iam import roles as _roles  # noqa: F401
from rolebridge.s3.app import S3Middleware, S3Requests
from rolebridge.services import Services
from rolebridge.sts import assume_role as _assume_role  # noqa: F401
from rolebridge.sts import authorization_message as _authorization_message  # noqa: F401
from rolebridge.sts import caller_identity as _caller_identity  # noqa: F401
from rolebridge.sts import session_token as _session_token  # noqa: F401
from rolebridge.sts import web_identity as _web_identity  # noqa: F401
from rolebridge.tokens.issuer import DISCOVERY_PATH, JWKS_PATH


class _Mount(Mount):
    """Starlette's Mount, matching every path below it. Its pattern ends in ``.*``, which stops at
    a newline, so a percent-encoded ``%0A`` in a path segment (``/api/runs/%0A/cancel``) missed the
    mount and got Starlette's bare 404 instead of the platform API's answer (seen by schemathesis)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def platform_mount(services: Services) -> Mount:
    """The platform API as the server mounts it, at ``/api`` (tests fuzz this same mount)."""
    return _Mount("/api", app=create_platform_api(services))


def create_app(services: Services) -> ASGIApp:
    async def query(request: Request) -> Response:
        return await handle_query(request, services)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/", query, methods=["GET", "POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/oidc/{cluster}" + DISCOVERY_PATH, partial(oidc.discovery, services=services), methods=["GET"]),
        Route("/oidc/{cluster}" + JWKS_PATH, partial(oidc.jwks, services=services), methods=["GET"]),
        platform_mount(services),
    ]
    # S3 shares the origin: S3 requests (path- or virtual-host-style) are answered by the middleware
    is_s3 = S3Requests(services)
    app = Starlette(routes=routes, middleware=[Middleware(S3Middleware, services=services, is_s3=is_s3)],
                    exception_handlers={405: _method_not_allowed})
    app.state.services = services
    # every STS/IAM call is a POST /: answered in front of Starlette's stack (same handler as the route)
    return QueryEndpoint(app, services, is_s3)


async def _method_not_allowed(_request: Request, _exc: Exception) -> Response:
    """PUT/DELETE/... on a Query or issuer route: an AWS error document, not Starlette's plain text."""
    return error_response("sts", errors.MethodNotAllowed(), str(uuid.uuid4()))
