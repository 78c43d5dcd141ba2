"""The issuer routes of clusters hosted by this server: discovery document and JWKS (public keys only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rolebridge.services import Services
from rolebridge.tokens.issuer import discovery_document

CACHE = {"Cache-Control": "public, max-age=300"}


async def discovery(request: Request, services: Services) -> Response:
    name = request.path_params["cluster"]
    jwks = services.cluster_jwks(name)
    if jwks is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    algs = sorted({k.get("alg", "RS256") for k in jwks.get("keys", [])}) or ["RS256"]
    return JSONResponse(discovery_document(f"{services.public_url}/oidc/{name}", signing_algs=algs),
                        headers=CACHE)


async def jwks(request: Request, services: Services) -> Response:
    keys = services.cluster_jwks(request.path_params["cluster"])
    if keys is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse(keys, headers=CACHE)
