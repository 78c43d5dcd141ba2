"""The HTTP edge: the ASGI app, the AWS Query wire protocol, SigV4, issuer routes. No business logic."""
