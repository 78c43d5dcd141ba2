"""The floor: a minimal ASGI app that answers with the bytes rolebridge answered, and nothing else.

It reads the body, parses the form (as any Query endpoint must) and returns the response rolebridge
gave for that Action, recorded at setup (``$BENCH_FLOOR_RESPONSES``, a JSON file {Action: text}).
No validation, no crypto: what uvicorn + uvloop + httptools (+ TLS) cost on their own.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs

with open(os.environ["BENCH_FLOOR_RESPONSES"]) as _fh:
    RESPONSES = {k: v.encode() for k, v in json.load(_fh).items()}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    action = parse_qs(body.decode("ascii")).get("Action", [""])[0]
    out = RESPONSES.get(action)
    status = 200 if out is not None else 400
    out = out if out is not None else b"unknown action"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/xml"), (b"content-length", str(len(out)).encode()),
                            (b"x-amzn-requestid", b"c6104cbe-af31-11e0-8154-cbc7ccf896c7")]})
    await send({"type": "http.response.body", "body": out})
