"""CPU cost of one request through the real ASGI app, in-process: no sockets, no TLS, no load generator.

Drives ``create_app(services)`` with ASGI messages on a uvloop loop, sequentially, so the figure is
the server's own CPU per request (what limits req/s per core), free of the machine's noise from
other processes. With ``--profile`` it also prints where the time goes (pyinstrument if present,
else cProfile), which is what guided the hot-path changes in docs/benchmarks.md.

    python bench/profile_path.py --data-dir DIR --fixture FIX.json [--seconds 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


def _scope(port: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    hdrs = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    hdrs += [(b"host", f"127.0.0.1:{port}".encode()), (b"content-length", str(len(body)).encode())]
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "https", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
            "headers": hdrs, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", port)}


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def without_audit(services: Any) -> None:
    """Bench-only: answer without the audit trail, to measure what the trail costs (never in a server)."""
    import concurrent.futures

    def record(*_a: Any, **_k: Any) -> concurrent.futures.Future[None]:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        done.set_result(None)
        return done

    def record_async(*_a: Any, **_k: Any) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    services.record = record
    services.record_async = record_async


def measure(data_dir: str, fixture: dict[str, Any], seconds: float, rounds: int, profile: bool,
            audit: bool = True, concurrency: int = 1) -> dict[str, Any]:
    import fixture as fx
    import uvloop

    from rolebridge.bootstrap import open_services
    from rolebridge.http.app import create_app

    services = open_services(data_dir)
    if not audit:
        without_audit(services)
    app = create_app(services)
    port = fixture["port"]
    url = f"https://127.0.0.1:{port}"
    assume = fx.assume_body(fixture["role_arn"], fixture["token"]).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)

    async def first() -> tuple[dict[str, str], bytes]:
        out: dict[str, Any] = {}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                out["body"] = out.get("body", b"") + message.get("body", b"")

        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            sent = True
            return {"type": "http.request", "body": assume, "more_body": False}

        await app(_scope(port, form, assume), receive, send)
        import xml.etree.ElementTree as ET

        creds = {el.tag.rsplit("}", 1)[-1]: el.text or "" for el in ET.fromstring(out["body"]).iter()}  # noqa: S314
        return creds, out["body"]

    creds, _ = loop.run_until_complete(first())
    gci_headers = fx.signed_gci_headers(url, creds)
    cases = {"AssumeRoleWithWebIdentity": (_scope(port, form, assume), assume),
             "GetCallerIdentity": (_scope(port, gci_headers, fx.GCI_BODY.encode()), fx.GCI_BODY.encode())}
    results: dict[str, Any] = {"pid": os.getpid()}
    for name, (scope, body) in cases.items():
        async def one_client(n: int, scope: dict[str, Any] = scope, body: bytes = body, name: str = name) -> None:
            for _ in range(n):
                status = await _call(app, dict(scope), body)
                if status != 200:
                    raise RuntimeError(f"{name} answered {status}")

        async def batch(n: int, one_client: Any = one_client) -> None:
            # n requests from `concurrency` clients at once: with the audit trail, concurrent calls share
            # commits (group commit) as they do under load; one client pays one commit per request
            per, extra = divmod(n, concurrency)
            await asyncio.gather(*(one_client(per + (1 if i < extra else 0)) for i in range(concurrency)))

        loop.run_until_complete(batch(200))  # warm caches
        per = []
        for _ in range(rounds):
            n, t0, c0 = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - t0 < seconds:
                loop.run_until_complete(batch(100))
                n += 100
            per.append(((time.process_time() - c0) / n * 1e6, n / (time.perf_counter() - t0)))
        results[name] = {"cpu_us_per_request": round(statistics.median(p[0] for p in per), 1),
                         "req_per_s": round(statistics.median(p[1] for p in per)),
                         "cpu_us_all": [round(p[0], 1) for p in per]}
        print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
        if profile:
            _profile(loop, batch, name)
    results["lookup_cache"] = {"hits": services.lookups.hits, "misses": services.lookups.misses}
    return results


def _profile(loop: Any, batch: Any, name: str) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        loop.run_until_complete(batch(3000))
        prof.disable()
        print(f"==== cProfile {name}", file=sys.stderr)
        pstats.Stats(prof, stream=sys.stderr).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(int(os.environ.get("PROFILE_LINES", "40")))
        return
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    loop.run_until_complete(batch(3000))
    profiler.stop()
    print(f"==== pyinstrument {name}", file=sys.stderr)
    print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--fixture", required=True, help="JSON written by bench/run.py (role_arn, token, port)")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--no-audit", action="store_true", help="measure without the audit trail (its cost)")
    ap.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (default 1)")
    args = ap.parse_args()
    fixture = json.loads(Path(args.fixture).read_text())
    print(json.dumps(measure(args.data_dir, fixture, args.seconds, args.rounds, args.profile,
                             audit=not args.no_audit, concurrency=max(1, args.concurrency))))


if __name__ == "__main__":
    main()
