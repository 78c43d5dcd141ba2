"""docs/benchmarks.md from bench/out/results.json: the tables, the targets with their ratios, the commands.

The prose that does not change between runs (method, cache consistency, where the time goes) lives
in ``NOTES`` below. Every number in the tables comes from the run that wrote the page; the figures
inside ``NOTES`` are the record of dated side-by-side runs behind each change, and say so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OPS = ("AssumeRoleWithWebIdentity", "GetCallerIdentity")
SHORT = {"AssumeRoleWithWebIdentity": "AssumeRoleWithWebIdentity", "GetCallerIdentity": "GetCallerIdentity (signed)"}


def _get(results: dict[str, Any], label: str, op: str, c: int) -> dict[str, Any] | None:
    return results["servers"].get(label, {}).get("runs", {}).get(f"{op}@{c}")


def _fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x" if a / b < 10 else f"{a / b:.0f}x"


def floor_https(results: dict[str, Any], w: int, op: str, c: int) -> dict[str, Any] | None:
    """The HTTPS floor at ``w`` workers: the better of its runs with workers floating and pinned."""
    rows = [r for r in (_get(results, f"floor-https-{w}w", op, c), _get(results, f"floor-https-pinned-{w}w", op, c))
            if r]
    return max(rows, key=lambda r: r["rps"]) if rows else None


def main_table(results: dict[str, Any]) -> list[str]:
    lines = ["| operation | conns | workers | rolebridge req/s | p50 ms | p99 ms | server CPU µs/req "
             "| + audit indexer CPU µs/req | floor HTTPS req/s | floor HTTP req/s | moto req/s (p50 / p99 ms) "
             "| ÷ moto | ÷ floor HTTPS |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for op in OPS:
        for c in (8, 64):
            for w in (1, 2):
                rb = _get(results, f"rolebridge-{w}w", op, c)
                fh = floor_https(results, w, op, c)
                fp = _get(results, f"floor-http-{w}w", op, c)
                mo = _get(results, "moto-1w", op, c)
                lines.append(
                    f"| {SHORT[op]} | {c} | {w} | **{_fmt(rb and rb['rps'])}** | {_fmt(rb and rb['p50_ms'], 2)} "
                    f"| {_fmt(rb and rb['p99_ms'], 2)} | {_fmt(rb and rb['server_cpu_us_per_req'])} "
                    f"| {_fmt(rb and rb.get('indexer_cpu_us_per_req'))} "
                    f"| {_fmt(fh and fh['rps'])} | {_fmt(fp and fp['rps'])} "
                    f"| {_fmt(mo and mo['rps'])} ({_fmt(mo and mo['p50_ms'], 1)} / {_fmt(mo and mo['p99_ms'], 1)}) "
                    f"| {_ratio(rb and rb['rps'], mo and mo['rps'])} | {_ratio(rb and rb['rps'], fh and fh['rps'])} |")
    return lines


def best(results: dict[str, Any], prefix: str, op: str, c: int) -> tuple[dict[str, Any] | None, int]:
    """The better of the 1- and 2-worker rows (what the machine can serve), and its worker count; for
    the HTTPS floor, of its floating and pinned workers too."""
    rows = [(floor_https(results, w, op, c) if prefix == "floor-https" else _get(results, f"{prefix}-{w}w", op, c), w)
            for w in (1, 2)]
    rows = [(r, w) for r, w in rows if r]
    if not rows:
        return None, 0
    return max(rows, key=lambda rw: rw[0]["rps"])


def targets(results: dict[str, Any]) -> list[str]:
    a, aw = best(results, "rolebridge", "AssumeRoleWithWebIdentity", 64)
    g, gw = best(results, "rolebridge", "GetCallerIdentity", 64)
    fa, faw = best(results, "floor-https", "AssumeRoleWithWebIdentity", 64)
    fg, fgw = best(results, "floor-https", "GetCallerIdentity", 64)
    mo = _get(results, "moto-1w", "AssumeRoleWithWebIdentity", 64)
    rss = [results["servers"].get(f"rolebridge-{w}w", {}).get("peak_rss_mb_per_worker") for w in (1, 2)]
    rss = [r for r in rss if r is not None]

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else ("met" if ok else "**missed**")

    def ratio(x: dict[str, Any] | None, y: dict[str, Any] | None) -> float | None:
        return x["rps"] / y["rps"] if x and y and y["rps"] else None

    r_moto, r_floor, r_gfloor = ratio(a, mo), ratio(a, fa), ratio(g, fg)
    p99 = a["p99_ms"] if a else None
    return [
        "| target (64 connections, best worker count) | figure | anchor | ratio | verdict |",
        "|---|---|---|---|---|",
        f"| AssumeRoleWithWebIdentity ≥ 10x moto | {_fmt(a and a['rps'])} req/s ({aw}w) "
        f"| moto {_fmt(mo and mo['rps'])} req/s | {_fmt(r_moto, 1)}x "
        f"| {verdict(None if r_moto is None else r_moto >= 10)} |",
        f"| AssumeRoleWithWebIdentity ≥ 25% of floor | {_fmt(a and a['rps'])} req/s ({aw}w) "
        f"| floor HTTPS {_fmt(fa and fa['rps'])} req/s ({faw}w) | {_fmt(r_floor and 100 * r_floor, 1)}% "
        f"| {verdict(None if r_floor is None else r_floor >= 0.25)} |",
        f"| AssumeRoleWithWebIdentity p99 < 20 ms | {_fmt(p99, 2)} ms ({aw}w) | 20 ms | - "
        f"| {verdict(None if p99 is None else p99 < 20)} |",
        f"| signed GetCallerIdentity ≥ 35% of floor | {_fmt(g and g['rps'])} req/s ({gw}w) "
        f"| floor HTTPS {_fmt(fg and fg['rps'])} req/s ({fgw}w) | {_fmt(r_gfloor and 100 * r_gfloor, 1)}% "
        f"| {verdict(None if r_gfloor is None else r_gfloor >= 0.35)} |",
        f"| peak RSS < 150 MB per worker | {_fmt(max(rss) if rss else None, 1)} MB | 150 MB "
        f"| {_fmt(max(rss) / 150 * 100 if rss else None)}% | {verdict(None if not rss else max(rss) < 150)} |",
    ]


def variants_table(results: dict[str, Any]) -> list[str]:
    """Two workers, 64 connections: rolebridge compiled vs interpreted, the floor floating vs pinned."""
    lines = ["| operation | rolebridge compiled, pinned | rolebridge interpreted, pinned | compiled ÷ interpreted "
             "| floor HTTPS floating | floor HTTPS pinned |", "|---|---|---|---|---|---|"]
    for op in OPS:
        rb = _get(results, "rolebridge-2w", op, 64)
        ri = _get(results, "rolebridge-interpreted-2w", op, 64)
        ff = _get(results, "floor-https-2w", op, 64)
        fp = _get(results, "floor-https-pinned-2w", op, 64)

        def cell(r: dict[str, Any] | None) -> str:
            return f"{_fmt(r['rps'])} req/s, {_fmt(r['server_cpu_us_per_req'])} µs/req" if r else "-"

        lines.append(f"| {SHORT[op]} | {cell(rb)} | {cell(ri)} | {_ratio(rb and rb['rps'], ri and ri['rps'])} "
                     f"| {_fmt(ff and ff['rps'])} | {_fmt(fp and fp['rps'])} |")
    return lines


def rss_table(results: dict[str, Any]) -> list[str]:
    lines = ["| server | peak RSS per worker (MB, max over rounds) |", "|---|---|"]
    for label, entry in results["servers"].items():
        lines.append(f"| {label} | {_fmt(entry.get('peak_rss_mb_per_worker'), 1)} |")
    return lines


def in_process_table(results: dict[str, Any]) -> list[str]:
    ip = results.get("in_process", {})
    w1, w64, wo = ip.get("with_audit", {}), ip.get("with_audit_64", {}), ip.get("without_audit", {})
    lines = ["| operation | with audit trail, 1 in flight (an fsync each) | with audit trail, 64 in flight "
             "(group fsync) | without audit trail | audit trail's share under load |", "|---|---|---|---|---|"]
    for op in OPS:
        a = (w1.get(op) or {}).get("cpu_us_per_request")
        c = (w64.get(op) or {}).get("cpu_us_per_request")
        b = (wo.get(op) or {}).get("cpu_us_per_request")
        share = f"{(c - b) / c * 100:.0f}%" if c and b else "-"
        lines.append(f"| {op} | {_fmt(a)} | {_fmt(c)} | {_fmt(b)} | {share} |")
    return ["CPU µs per request, the real ASGI app driven in-process on one core (`bench/profile_path.py`).",
            "", *lines]


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]], depth: int = 0) -> None:
    if isinstance(value, dict) and depth < 3:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out, depth + 1)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out.append((prefix, value))


def micro_table(results: dict[str, Any]) -> list[str]:
    micro = results.get("micro") or {}
    if not micro:
        return ["(no micro benches found next to bench/run.py)"]
    lines = []
    for name, data in micro.items():
        lines += [f"**{name}**", ""]
        if "error" in data:
            lines += [f"failed: {data['error']}", "", "```", str(data.get("stderr", ""))[-800:], "```", ""]
            continue
        flat: list[tuple[str, Any]] = []
        _flatten("", data, flat)
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v, 2) if isinstance(v, float) and v < 100 else _fmt(v)} |" for k, v in flat[:60]]
        lines.append("")
    return lines


def scale_table(results: dict[str, Any]) -> list[str]:
    sc = results.get("scale")
    if not sc:
        return ["(not run: `--skip-scale`)"]
    lines = [f"{sc['roles']:,} roles and {sc['providers']:,} OIDC providers (spread over accounts; 100 per account "
             f"is the quota), built in {sc['build_seconds']} s through the IAM handlers, against the walkthrough's "
             f"1 role + 1 provider. One worker, {sc['connections']} connections, medians over rounds.", "",
             "| operation | small req/s | small p50 ms | scale req/s | scale p50 ms | p50 ratio (target ≤ 1.5) |",
             "|---|---|---|---|---|---|"]
    for op in OPS:
        row = sc[op]
        lines.append(f"| {op} | {_fmt(row['small']['rps'])} | {row['small']['p50_ms']:.2f} | {_fmt(row['scale']['rps'])} "
                     f"| {row['scale']['p50_ms']:.2f} | {row['p50_ratio']:.2f} |")
    return lines


def commands(results: dict[str, Any]) -> list[str]:
    lines = ["```bash", "make bench            # = .venv/bin/python bench/run.py (full: ~17 min; --skip-scale saves ~2.5)",
             ".venv/bin/python bench/run.py --quick   # one round of 2 s runs (~4 min)",
             ".venv/bin/python bench/run.py --report-only   # re-render this page from bench/out/results.json", ""]
    servers = results["servers"]
    seen = set()
    for label in servers:
        for key, r in servers[label]["runs"].items():
            cmd = r["command"].split(" http")[0]
            if (label, key.split("@")[0]) in seen:
                continue
            seen.add((label, key.split("@")[0]))
            lines.append(f"# {label} {key}:  {r['command']}")
            del cmd
    lines += ["", "# servers (ports from --port-base, default 18440):",
              "taskset -c 0 .venv/bin/rolebridge server --data-dir bench/out/data --port 18440 --workers 1",
              ".venv/bin/rolebridge server --data-dir bench/out/data --port 18440 --workers 2 --pin-workers",
              "ROLEBRIDGE_COMPILED=0 .venv/bin/rolebridge server --data-dir bench/out/data --port 18440 --workers 2 "
              "--pin-workers   # rolebridge-interpreted",
              "taskset -c 0 .venv/bin/uvicorn floor_app:app --app-dir bench --port 18441 --workers 1 --loop uvloop "
              "--http httptools --ssl-certfile bench/out/data/tls/server.pem --ssl-keyfile "
              "bench/out/data/tls/server-key.pem --no-access-log --lifespan off",
              "taskset -c 0 .venv/bin/uvicorn floor_app:app --app-dir bench --port 18442 --workers 1 --loop uvloop "
              "--http httptools --no-access-log --lifespan off",
              "taskset -c 0 .venv-bench/bin/moto_server -H 127.0.0.1 -p 18443",
              ".venv/bin/python bench/profile_path.py --data-dir bench/out/data --fixture bench/out/fixture.json "
              "--profile [--no-audit]", "```"]
    return lines


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    args = results["args"]
    probe = results.get("rsa2048_verify_probe_per_round", [])
    parts = [
        "# Benchmarks: the STS path against moto and the uvicorn floor",
        "",
        "Written by `make bench` (`bench/run.py`); do not edit by hand — edit `bench/report.py`. Raw figures: "
        "`bench/out/results.json` (copied to `docs/benchmarks.json`).",
        "",
        f"Run {results['started']}: **{m['cores']} cores** ({m['cpu']}), Python {m['python']}, {m['wrk']}, "
        f"{m.get('compiled', 'interpreted request path')}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_avg_at_start'])}. "
        f"{args['rounds']} interleaved round(s) of {args['duration']:g} s wrk runs (+{args['warmup']:g} s warm-up per "
        f"server and operation); every figure is the median over rounds. RSA-2048 verify probe per round "
        f"(CPU 0): {', '.join(f'{p:,}' for p in probe)}/s (the anchors measured ~40-47k/s on an idle machine). "
        f"Whole run: {results['elapsed_s']} s.",
        "",
        "## Side by side",
        "",
        *main_table(results),
        "",
        "\"floor\": `bench/floor_app.py` on uvicorn + uvloop + httptools, answering rolebridge's own recorded "
        f"response bytes ({', '.join(f'{k} {v} B' for k, v in results.get('response_bytes', {}).items())}) to the "
        "same wrk scripts. moto is one process (moto_server has no workers), over HTTP as it serves, so its rows "
        "repeat for 1 and 2 workers. \"server CPU µs/req\" is the server processes' utime+stime over the run "
        "divided by requests answered: the figure least disturbed by other load on the machine.",
        "",
        "## Targets",
        "",
        *targets(results),
        "",
        "## Compiled and interpreted, floating and pinned (2 workers, 64 connections, this run)",
        "",
        *variants_table(results),
        "",
        "rolebridge's two workers run with `--pin-workers` (each on its own CPU); the floor's are measured both "
        "floating (uvicorn as it is) and pinned by the harness, and the better of the two is the floor in every "
        "table above. \"interpreted\" is the same server with `ROLEBRIDGE_COMPILED=0` (`src/rolebridge/compiled`).",
        "",
        "## Peak RSS under load",
        "",
        *rss_table(results),
        "",
        "## Where the time goes (in-process, no sockets)",
        "",
        *in_process_table(results),
        "",
        NOTES,
        "",
        "## Issue 5: latency at 10,000 roles + 1,000 providers",
        "",
        *scale_table(results),
        "",
        "## Micro figures from the other benches",
        "",
        *micro_table(results),
        "",
        "## Failures in this run",
        "",
        *([f"- {f}" for f in results.get("failures", [])] or ["none: every request answered 2xx, no socket errors."]),
        "",
        "## Exact commands",
        "",
        *commands(results),
        "",
    ]
    return "\n".join(parts)


NOTES = """\
### Method and caveats

- Load: `wrk -t1 --latency --timeout 5s`, keep-alive, one fixed POST per script. AssumeRoleWithWebIdentity
  is the real thing: the walkthrough's cluster token (RS256, 24 h), the OIDC provider, the role whose
  trust policy is the walkthrough's `StringLike` on `:sub`; every request is fully validated and
  mints fresh credentials. GetCallerIdentity is SigV4-signed with temporary credentials from one
  AssumeRoleWithWebIdentity made right after each server start. **A signature is bound to its
  `X-Amz-Date`; the server accepts 15 minutes of skew**, so the request signed at the start of a
  server's runs replays fine for all of them (each server runs well under a minute). Replaying the
  same signature is what a retrying client does too; no nonce is checked, as in AWS.
- One-worker rows: server pinned to CPU 0, wrk to CPU 1. Two-worker rows: each worker on its own
  CPU (rolebridge by `--pin-workers`, the floor both floating and pinned, the better counted), wrk
  and the audit follower floating; wrk shares the two cores with the workers, so these rows
  understate what two cores could serve. wrk is closed-loop: at saturation latency ≈ connections ÷
  throughput.
- This VM's speed drifts, and other engineers' test runs share its two cores: compare figures
  within one run, and read the RSA probe and "server CPU µs/req" beside req/s. Differences under
  ~25 % are noise.

### The hot path as it stands

- uvicorn with uvloop + httptools (`rolebridge server` asks for them explicitly); `--workers N`
  starts N processes, each serving its own listening socket of the one port (`SO_REUSEPORT`,
  `http/serving.WorkerSockets`), so the kernel spreads connections over them by address hash; the
  parent holds every socket, so a dead worker's queue waits for its replacement. `--pin-workers`
  puts each worker on its own CPU (the two-worker rows above use it).
  Read deadlines, and uvicorn's keep-alive timeout, are lazy: one timer per connection, not timers
  armed and cancelled per request (`http/protocol.py`).
- A Query call (`POST /` with a body of at most 64 KiB) is answered on its connection by
  `http/query_cycle.QueryCycle`, not by uvicorn's ASGI request cycle (an `asyncio.Event`, the
  receive/send message dicts and a regular-expression check of every response header per request:
  two thirds of the floor app's own CPU); pipelining, shutdown and the concurrency limit stay
  uvicorn's. Everything else (S3, the issuer routes, the platform API, chunked bodies) is ASGI.
- The request path is compiled by Cython (`src/rolebridge/compiled`: 44 modules, built by `make`,
  semantics unchanged; an import guard runs a build only while its source is unchanged); the
  "interpreted" row above is the same server with `ROLEBRIDGE_COMPILED=0`.
- Each serving process settles its heap once warm (`http/heap.py`): every operation's botocore
  model, input plan and XML writer is built, then `gc.freeze()`, so full collections no longer
  walk ~110k long-lived objects (21-34 ms each, every second or two under load, before).
- Issuer keys: parsed once per JWKS content (`tokens/_jose` caches public keys by JWK); cluster
  JWKS, OIDC providers and roles come from an in-process cache (`src/rolebridge/lookup_cache.py`).
- Policies are compiled once per document text (`policy.compile_policy` is cached by content).
- Pure parses are remembered, checks never: a token's text is parsed once (bounded memo in
  `tokens/verifier.py`; its signature, times and trust are checked on every call); a session
  token is opened once per server key set (`sts/credentials.py`; its key id, the request's
  signature and expiry are checked on every call); SigV4 signing keys and `X-Amz-Date` values
  are kept as the SDKs keep them; role ARNs parse into a memoised frozen value.
- No database read for the session token: it is AES-GCM sealed, opened with the server key.
- No database write per request. The audit trail is durable before the answer, but in a file: once
  per event-loop iteration the loop shapes that iteration's CloudTrail events (orjson) and hands the
  lines to a writer thread that only appends them to this process's journal segment and
  `fdatasync`s (both release the GIL); each response waits for its line (nothing acknowledged may
  be lost). A follower process at `nice 10`, in the server's session (under the kernel's autogroup
  a nice value only counts within a session), moves the journal into the `audit_events` table off
  the request path, a few hundred events per transaction under load, through the driver's own
  `executemany`; its CPU is the "+ audit indexer" column, measured from the start of each wrk run
  until it has caught up (`docs/storage.md`). Event IDs are time-ordered UUIDs (version 7), so the
  table's unique index grows at its end and an insert costs the same at 2 million events as at 0.
- Random ids, secrets and GCM nonces come from a per-thread 4 KiB block of `os.urandom` (one
  system call per ~250 values, fork-safe: `randomness.py`); fork checks compare the process id kept
  by `pid.py` (renewed by the at-fork hook), not a `getpid` system call each.
- Every `POST /` Query call is answered by `http/query_api.QueryEndpoint` in front of Starlette
  (the same `answer_query` as the Starlette route, which still serves GET and POST with a query
  string); XML is written by per-shape writers compiled from botocore's output shapes (text that
  needs no escaping is written as it is); SigV4's canonical request is built directly (checked
  against botocore's signer in the tests).

### Cache consistency (across workers, servers and the CLI)

Every IAM or issuer write, once committed, bumps the generation counter (`Services.invalidate()`,
called by every IAM handler after its transaction and by `cluster create/rotate`): the `settings`
row `iam_generation`, and on SQLite also an 8-byte file beside the database that every process maps
into memory. Every cached lookup first reads the counter (on SQLite the mapped file, a fraction of a
microsecond; on PostgreSQL the row, one round trip, since servers may be on several hosts); a
different value drops the process's whole cache. Guarantee: **a request that starts after an IAM
write was acknowledged sees it, in every process sharing the database** (the bump happens before
the acknowledgement, and the counter is read before the data). That is stronger than AWS (IAM is
eventually consistent). Backstops: entries expire after 10 s even without a bump (a writer that
bypasses `invalidate()` or dies between commit and bump), and when the counter cannot be read the
cache is bypassed (the database answers). Within one API request the counter is read once (by the
first lookup; `LookupCache.request_scope`).

### Profile: which part costs what, and what would change it

The figures in this section and the next are from dated side-by-side runs (named with each), kept
as the record of what each change did; the tables above are this page's own run.

Measured 2026-12-04 with py-spy (`--gil`, so shares of the interpreter's time) on a one-worker
server under `wrk -c64`, and with `bench/profile_path.py` in-process. What was done, by effect:

1. Starlette's stack (routing, two middleware layers, Request/Response objects, the body stream)
   was ~20 % of an AssumeRoleWithWebIdentity; `QueryEndpoint` skips it for `POST /`.
2. The audit trail: events are shaped on the writer thread from raw inputs captured on the request
   path, handed over once per loop iteration, and the writer wakes each loop once per commit;
   member values are copied without a call each; the token's claims come from the handler instead
   of a second decode. With two workers, a flock between the workers' SQLite commits removed
   second-long tails (no longer needed since item 4: each process appends to its own journal).
3. XML 24 % -> ~6 % (compiled per-shape writers instead of ElementTree + `tostring`); SigV4 from a
   third of a signed GetCallerIdentity to ~9 %; base64url 3x cheaper (`bytes.translate`, no
   regular expression); base32 ids without `base64.b32encode`'s Python loop.

4. The audit trail's database insert left the request path (2026-12-04): events are appended to
   a per-process journal and fsynced (`audit/journal.py`), and a niced follower moves them into
   `audit_events` (`audit/ingest.py`, ~42 µs per event in bulk; the "+ audit indexer" column).
5. The IAM generation counter on SQLite became a mapped file (one query per request less), random
   values come a block at a time, and form bodies are split without unquoting components that hold
   no escapes (`parse_qsl` unquoted the 1 KB token character by character).

Items 4-5 measured side by side (`bench/profile_path.py`, in-process on one core, 64 calls in
flight, the code before and after alternated three times, medians): AssumeRoleWithWebIdentity
367 -> 323 µs of CPU per call with the audit trail (246 -> 210 without it); signed
GetCallerIdentity 224 -> 164 µs. The trail's own share of an AssumeRoleWithWebIdentity barely
moved (~120 -> ~114 µs): what it costs now is mostly the `fdatasync` itself (a `write` +
`fdatasync` is ~73 µs of CPU on this VM, kernel time charged to the server) when batches are
small, plus the thread hand-off. Tried and not kept: PostgreSQL-style `commit_delay` (wait up to
1 ms for more calls to share an fsync when the writer is busy) made no difference beyond noise on
a one-worker server under `wrk -c64` (2,535 vs 2,687 req/s, 345 vs 349 µs CPU per call).

Items 1-3, with the earlier lookup cache, took AssumeRoleWithWebIdentity at 64 connections on one
worker from 595 to 1,604 req/s (signed GetCallerIdentity from 701 to 2,692) in the run of
2026-12-04 05:21; items 4-5 gave 2,229 req/s in the run of 08:04 (another, slower VM).

Items 6-9 (2026-12-04, 09:21-11:05), measured side by side against the code it
started from (commit c80b533, from a git worktree, alternated three times, medians; the clean
walkthrough fixture copied fresh for every run):

6. The heap is settled once warm (`gc.freeze()`, `http/heap.py`): full collections took 21-34 ms
   every second or two under load and stalled every request in flight; now under 1 ms.
7. Lazy read deadlines: the floor app under our protocol went from 20.0k to 21.8k req/s (stock
   httptools 23.4k), i.e. ~8 -> ~3 µs per request.
8. Pure parses remembered (token, session token, signing key, `X-Amz-Date`, role ARN), one strict
   JSON decoder, per-second ISO times (`clock.iso8601`), XML text without needless escaping,
   orjson for sealed session records.
9. Audit: orjson journal lines (shaping + JSON ~18 -> ~11 µs per assume), shaping moved onto the
   loop (CPU-neutral; the writer thread now only makes system calls), and the follower sleeps
   between passes unless it met a backlog (~28 -> ~20 µs per event).

| measure (2026-12-04, one sitting, not this page's run) | before (c80b533) | after | change |
|---|---|---|---|
| in-process CPU per AssumeRoleWithWebIdentity, 64 in flight, with trail / without | 204.7 / 156.1 µs | 142.4 / 111.3 µs | -30 % / -29 % |
| in-process CPU per signed GetCallerIdentity, with trail / without | 108.2 / 75.9 µs | 64.5 / 43.3 µs | -40 % / -43 % |
| AssumeRoleWithWebIdentity, 1 worker pinned, 64 connections | 3,359 req/s, p99 51.8 ms | 4,691 req/s, p99 24.3 ms | +40 % |
| AssumeRoleWithWebIdentity, 2 workers, 64 connections | 5,240 req/s, p99 27.9 ms | 7,126 req/s, p99 19.5 ms | +36 % |

Why p99 was what it was. Measured in the server (per-request timestamps, 1 worker, 64
connections, 4,700 req/s): from a call's audit hand-over to "durable" is 8 ms at p50 and 18 ms at
p99, while an `fdatasync` here takes 0.2 ms; a call waits for the rest of its loop pass, the next
pass and the wake-up. Tried and not kept against that, each measured against the kept code in
alternating runs: syncing on the loop thread itself (4,400-4,520 vs 4,740 req/s, p99 30 vs 25 ms),
handing a batch over as soon as 4/8/16 calls wait (up to +19 % CPU per call, no shorter wait),
completing batches from the loop's I/O phase through a pipe (p50 wait 7.6 vs 8.2 ms, p99
unchanged), a 0.1-0.5 ms GIL switch interval. But most of the spread was not the trail's wait.

Items 10-13 (2026-12-04, 11:47-13:00), side by side against the code before each (a git worktree,
alternated, a fresh copy of the walkthrough data):

10. **The audit follower was the tail, through autogroup.** With the follower stopped (`SIGSTOP`)
    for a run, one pinned worker at 64 connections went from p99 28-31 ms and 4,300 req/s to 15-17
    ms and 5,100 req/s; two workers from p99 24-25 ms to 13-14 ms (+14 % req/s). Renicing it to 19
    or `SCHED_IDLE` changed nothing; pinning it to the other core did (p99 20 ms). Reason: the server
    started it in a session of its own, and with the kernel's autogroup scheduling (on here:
    `kernel.sched_autogroup_enabled=1`) each session is one group sharing the CPU equally with the
    others; a nice value only ranks processes within their group. The follower now has its own
    process group in the server's session (`cli/server._start_indexer`): p99 20-21 ms on one worker,
    16-18 ms against 21-25 ms on two (alternated), and the 5 s runs above no longer show it.
11. **One socket per worker** (`SO_REUSEPORT`, `http/serving.py`). Splits of 64 connections over two
    workers, shared socket: 18/46, 37/27, 38/26, 25/39, 23/41, 13/51, 39/25, 38/26 and once 64/0
    (4,700 req/s that run); per-worker sockets: 28/36, 34/30, 27/37, 38/26, 33/31, 29/35, 32/32,
    30/34. AssumeRoleWithWebIdentity at two workers, medians of five alternations: 6,389 vs 6,175
    req/s, p99 24.8 vs 25.5 ms (before item 10, which dominated).
12. **The follower's cost per event.** Rows as tuples to the driver's `executemany` instead of
    SQLAlchemy's per-row parameter processing: 16-18 -> 13-14 µs per event in bulk. Event IDs:
    random UUIDs put each insert on a random page of the unique index, so the cost grew with the
    table (sqlite3 alone, 20,000 inserts into a 2-million-event, 4 GB table: 42.5 µs per event, 30.8
    with the four other indexes dropped, against 12.5 on an empty table); time-ordered (version 7)
    IDs: 10.4 µs at 2 million. A bench run writes about 2 million events, so its later rounds paid
    the growth: the "+ audit indexer" column went from 23-28 to 14-18 µs per request.
13. **`getpid` system calls**: seven per AssumeRoleWithWebIdentity (strace), from the fork checks of
    the random blocks, the audit writer and the lookup cache's connection; now `pid.py`. In-process
    CPU per call 145.8 -> 142.5 µs (AssumeRoleWithWebIdentity), 67.2 -> 64.7 µs (GetCallerIdentity).

Tried and not kept in the same sitting: writing a response's headers with its body in one
transport write (one TLS record and one send instead of two): server CPU per call unchanged (195 vs
196 µs AssumeRoleWithWebIdentity, 109 vs 109 µs GetCallerIdentity, three alternations); pre-zeroed
journal segments against the tail (p99 28 vs 28 ms: the tail was not the `fdatasync`); SQLite
`synchronous=OFF`/`NORMAL` in the follower (p99 29-30 vs 32 ms).

Items 14-17 (2026-12-04, 16:19-18:10), each measured side by side against the code before it (a git
worktree, alternated, medians of 2-3 rounds of 4 s at 64 connections, a fresh copy of the
walkthrough data each run; "server CPU" as in the tables):

14. **Query calls without uvicorn's ASGI cycle** (`QueryCycle`). On the floor's own bytes, a bare
    httptools protocol answered ~105,000 req/s on one core where uvicorn answered ~31,000 (both
    uvloop + TLS): most of the floor app's cost is uvicorn's per-request machinery. Server CPU per
    call, one pinned worker: AssumeRoleWithWebIdentity 190 -> 181 µs, GetCallerIdentity 111 -> 99 µs.
15. **The request path compiled** (Cython, annotation typing off): one pinned worker 182 -> 165 µs
    (AssumeRoleWithWebIdentity) and 97 -> 84 µs (GetCallerIdentity); items 14 and 15 together at two
    floating workers: 7,082 -> 7,757 and 11,511 -> 13,716 req/s. Less than compiled code usually
    gains because Python 3.11's specialising interpreter already caches the attribute lookups that
    make up much of this code, which Cython's generic calls do not (see "tried" below).
16. **Three hot spots**: the XML text check by one `bytes.translate` pass instead of a regular
    expression over the 1.2 KB session token (3.0 -> 0.7 µs), `%`-escaped form values unquoted
    without urllib's regular-expression split, and the audit hand-over through a C-level
    `SimpleQueue` instead of `threading.Condition`: AssumeRoleWithWebIdentity 165 -> 155-157 µs.
17. **`--pin-workers`**: two workers at 64 connections, three alternations: GetCallerIdentity
    12,338 -> 15,630 req/s, AssumeRoleWithWebIdentity 8,206 -> 9,208, p99 11.5 -> 8.9 and 15.7 ->
    12.8 ms; CPU per call 111 -> 101 and 202 -> 184 µs (fewer migrations, warmer caches for a working
    set larger than the floor's). The floor app gains nothing from the same pinning (40,440 vs
    37,586 and 45,174 vs 47,627 req/s, one sitting); the tables count its better run anyway.

Tried and not kept in this sitting: a young-generation GC threshold of 20,000 (p99 18 -> 20-21 ms,
GetCallerIdentity CPU +5 %); a 0.5 ms wait before each `fdatasync` when the writer is busy (CPU per
call -6 to -7 %, but GetCallerIdentity -5 % req/s at one worker and -15 % at two: the loop ran out of
ready calls); uvicorn's per-request callbacks (`data_received`, `on_message_begin`, `on_header`)
restated in our compiled module: 3 % slower than uvicorn's interpreted ones; the protocol and
`QueryCycle` compiled or not: no difference; Cython's `annotation_typing`: no gain (155.7 vs 153.5
µs); explicit compiled `__init__`s for the frozen dataclasses (`Caller` 1.49 -> 1.23 µs: not worth a
second copy of each field list).

Where an AssumeRoleWithWebIdentity's CPU goes now (`perf record -e cpu-clock -g` on one pinned,
compiled worker at 64 connections; shares of the worker's CPU): the RSA-2048 verify ~10 % (OpenSSL's
bignum code: fixed), TLS records and the event loop ~10 %, the kernel ~10 % (loopback TCP, whose
receive side is charged to the sender, and the journal's `fdatasync`), the audit trail ~16 % (the
writer thread's write + `fdatasync` ~7 %: a write + `fdatasync` costs 55-76 µs of CPU on this VM and
covers ~7 calls at one worker by that count, 24 by the 22:00 count below; shaping the CloudTrail
event ~5.5 %; capturing it ~3 %), credential minting ~7.6 %, decoding the form ~7 %, HTTP parsing and
its callbacks ~7 %, the XML ~5 %, trust evaluation ~4 %, the rest spread thinly. Python's own object machinery (`libpython`: dict and
attribute lookups, allocation) is about half of all samples, spread over all of these.

Measured on 2026-12-04, 22:00-22:30, after the run in the tables, in a slow sitting of the VM (RSA
probe 47,500/s; one pinned worker 3,600-4,000 req/s where the tables' run had 4,706), so each figure
compares only with the other side of its own A/B (alternated, medians of three 4 s runs at 64
connections, a fresh copy of the walkthrough data each run):

- **The durable audit trail is not what stands between the path and the target.** With the writer
  cut out for measuring only (each call's future completed at once, no journal line, no `fdatasync`;
  not kept), one pinned worker answered 3,866 against 3,924 req/s at 258 against 234 µs of CPU per
  call, two interpreted workers 7,315 against 7,611. Answers that wait for their batch leave together,
  once per `fdatasync`; without the wait they leave one by one, and the extra wake-ups cost more than
  the journal's write and sync. The in-process "audit trail's share" above (no sockets) does not
  carry over to the server.
- System calls per AssumeRoleWithWebIdentity, two pinned workers at 64 connections (`perf stat`
  on the syscall tracepoints): `write` 1.1, `read` 1.0, `getpid` 1.0, `futex` 0.5-0.8,
  `epoll_pwait` 0.2, `fdatasync` 0.08 (12.7 calls per `fdatasync` per worker; 24 with one worker),
  each `fdatasync` 0.36 ms wall at p50, 0.54 ms at p90 (`strace -T`). The `getpid` is CPython 3.11's
  `asyncio.get_running_loop`, which checks for a fork with a system call (the audit writer's
  `submit_async` asks once per call); Python 3.12 keeps the running loop in the thread state instead.
- A GIL switch interval of 1 ms or 0.2 ms instead of 5 ms: 5,987 and 5,975 against 6,339 req/s (two
  workers), 283 against 266 µs per call: the writer thread gets the GIL sooner, the loop pays for it.
- The audit follower at `SCHED_IDLE` or nice 19 instead of nice 10: 7,017 and 6,784 against 6,552
  req/s, within the spread of each variant (6,199-7,366 for `SCHED_IDLE`); not kept, since a follower
  that only runs on an idle CPU falls behind without bound under sustained load.
- The RSA-2048 verify is ~16 % of a loaded worker's CPU (`perf record --call-graph dwarf`), ~34 µs a
  call against ~21 µs in a tight loop: between calls the rest of the path evicts OpenSSL's working
  set. Attribute and dict lookups (`_PyObject_GenericGetAttrWithDict`, `_PyType_Lookup`,
  `unicodekeys_lookup_unicode`) are ~9 % and spread over some forty functions, none above 1.1 %.

What would change it further, in order of effect:
1. What remains is Python's object machinery spread over the whole path (about half the samples,
   no function above ~5 %): only fewer objects and lookups per call, or a path written outside
   Python, would change it.
2. The RSA verify (~16 % under load) is fixed for as long as every call verifies its token, which
   it must: caching verdicts would make this bench measure a cache.
3. The audit follower (~16-20 µs per call, five indexes on `audit_events`) and wrk share the two
   cores with the workers in the two-worker rows: what they take, the workers do not get. The
   journal's `fdatasync` itself is a few µs per call at 64 connections (one per 12-24 calls), so
   pre-zeroed segments (76 -> 55 µs per `fdatasync`, measured) would buy ~1-2 % and are not done.

### Fixed on the way

`rolebridge server --workers N` failed with uvicorn 0.55 (`Multiprocess` no longer takes `target`);
it now starts N workers on the shared socket (the 2-worker rows above). uvloop and httptools are
requested by name (falling back to asyncio / h11 only when not installed).

A connection that never finished its TLS handshake was held for asyncio's 60 s default (the read
deadlines start after the handshake); the handshake now has the header deadline, in the server
process and in each worker (`http/serving.py`).

`--workers N` with per-worker sockets: uvicorn's rolling restart (SIGHUP) and SIGTTIN/SIGTTOU could
leave a socket without a worker, whose share of connections would wait unanswered;
`http/serving.SlottedMultiprocess` gives each new worker the slot of the one it replaces and
refuses the two resizing signals (found in review; tests drive uvicorn's own supervisor flows)."""


if __name__ == "__main__":
    data = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/results.json").read_text())
    print(markdown(data))
