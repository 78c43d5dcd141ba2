"""`make bench`: rolebridge's STS path against moto and a bare-uvicorn floor, side by side, in one run.

What one run does (every server on 127.0.0.1, every server stopped by its PID, every loop bounded):

1. Tools: ``wrk`` (apt-get install if missing and we are root) and ``.venv-bench`` (moto[server],
   py-spy, pyinstrument), made on first use.
2. Fixture: a fresh data dir with the walkthrough set-up (cluster, OIDC provider, role with the
   walkthrough trust policy, a valid 24 h job token), built through the CLI and boto3.
3. Interleaved rounds: each round starts every server fresh (rolebridge HTTPS 1 and 2 workers, the
   floor app over HTTPS and HTTP 1 and 2 workers, moto_server over HTTP) and runs wrk (1 thread,
   keep-alive) for AssumeRoleWithWebIdentity and signed GetCallerIdentity at 8 and 64 connections.
   One-worker servers are pinned to CPU 0 and wrk to CPU 1; two-worker rows are unpinned (wrk
   shares the cores). Per run: req/s, p50/p99, non-2xx, socket errors, server CPU per request, and
   the server's peak RSS per worker. A 1 s RSA-2048 verify probe per round tracks machine drift.
4. In-process CPU per request with and without the audit trail (``profile_path.py``), the other
   issues' micro benches (``bench_policy.py``, ``bench_tokens.py``, ``bench_run.py``, ``bench_s3.py``
   when present), and issue 5's scale figure (10,000 roles + 1,000 providers vs 1 + 1).
5. Medians -> ``bench/out/results.json`` and ``docs/benchmarks.md``. Exit status 1 if any run had a
   non-2xx answer or socket errors (a missed target is reported, not failed).

    python bench/run.py [--quick] [--rounds N] [--duration S] [--skip-scale] [--skip-micro]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import fixture as fx  # noqa: E402
import harness  # noqa: E402
import report  # noqa: E402

VENV_BIN = Path(sys.executable).parent
BENCH_VENV = ROOT / ".venv-bench"
BENCH_PACKAGES = ["moto[server]", "py-spy", "pyinstrument"]
MICRO = ["bench_policy.py", "bench_tokens.py", "bench_run.py", "bench_s3.py"]
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
OPS = ("AssumeRoleWithWebIdentity", "GetCallerIdentity")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- set-up -------------------------------------------------------------------------------------

def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: sudo apt-get install -y wrk")
    log("installing wrk (Debian package)")
    if subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, check=True)


def ensure_bench_venv() -> Path:
    bin_dir = BENCH_VENV / "bin"
    if not (bin_dir / "moto_server").exists() or not (bin_dir / "py-spy").exists():
        log(f"creating {BENCH_VENV} with {' '.join(BENCH_PACKAGES)}")
        if not (bin_dir / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "-q", *BENCH_PACKAGES], check=True)
    return bin_dir


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()
    from rolebridge import compiled

    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release(), "wrk": wrk_version[0] if wrk_version else "?",
            "load_avg_at_start": os.getloadavg(), "compiled": compiled.summary()}


def rsa_probe(seconds: float = 1.0) -> int:
    """RSA-2048 verifies/s on CPU 0: how fast this machine is right now (it drifts)."""
    code = ("import time\nfrom cryptography.hazmat.primitives.asymmetric import rsa, padding\n"
            "from cryptography.hazmat.primitives import hashes\n"
            "k=rsa.generate_private_key(65537,2048);p=k.public_key();m=b'x'*436\n"
            "s=k.sign(m,padding.PKCS1v15(),hashes.SHA256());n=0;t=time.perf_counter()\n"
            f"while time.perf_counter()-t<{seconds}:\n"
            " [p.verify(s,m,padding.PKCS1v15(),hashes.SHA256()) for _ in range(100)];n+=100\n"
            "print(round(n/(time.perf_counter()-t)))\n")
    out = subprocess.run([*harness.pin("0"), sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    return int(out.stdout.strip() or 0)


# -- targets -------------------------------------------------------------------------------------

class Target:
    """One server kind: how to start it and what each operation's wrk script is after a fresh start.

    ``pin_workers``: the harness puts worker i on CPU i once they run (for servers with no option of
    their own; rolebridge pins itself with ``--pin-workers``)."""

    pin_workers = False

    def __init__(self, name: str, scheme: str, port: int, workers: int) -> None:
        self.name, self.scheme, self.port, self.workers = name, scheme, port, workers

    @property
    def label(self) -> str:
        return f"{self.name}-{self.workers}w"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def argv(self, ctx: Context) -> list[str]:
        raise NotImplementedError

    def env(self, ctx: Context) -> dict[str, str]:
        return {}

    def scripts(self, ctx: Context, out: Path) -> dict[str, Path]:
        raise NotImplementedError


class Rolebridge(Target):
    """``rolebridge server``; with two workers, each pinned to its own CPU (``--pin-workers``).
    ``interpreted``: with ``ROLEBRIDGE_COMPILED=0``, to show what the compiled request path gives."""

    def __init__(self, port: int, workers: int, data_dir: str | None = None, name: str = "rolebridge",
                 interpreted: bool = False) -> None:
        super().__init__(name, "https", port, workers)
        self.data_dir = data_dir
        self.interpreted = interpreted

    def argv(self, ctx: Context) -> list[str]:
        return [str(VENV_BIN / "rolebridge"), "server", "--data-dir", self.data_dir or ctx.fixture.data_dir,
                "--port", str(self.port), "--workers", str(self.workers),
                *(["--pin-workers"] if self.workers > 1 else [])]

    def env(self, ctx: Context) -> dict[str, str]:
        return {"ROLEBRIDGE_ROLE_QUOTA": fx.SCALE_QUOTA, **({"ROLEBRIDGE_COMPILED": "0"} if self.interpreted else {})}

    def scripts(self, ctx: Context, out: Path, fixture: fx.Fixture | None = None) -> dict[str, Path]:
        f = fixture or ctx.fixture
        creds, _ = fx.temporary_credentials(self.url, f.role_arn, f.token, f.ca_bundle)
        headers = fx.signed_gci_headers(self.url, creds)
        return {
            "AssumeRoleWithWebIdentity": harness.lua_script(out / f"{self.label}-assume.lua",
                                                            body=fx.assume_body(f.role_arn, f.token), headers=FORM),
            "GetCallerIdentity": harness.lua_script(out / f"{self.label}-gci.lua", body=fx.GCI_BODY, headers=headers),
        }


class Floor(Target):
    def __init__(self, name: str, scheme: str, port: int, workers: int, *, pin: bool = False) -> None:
        super().__init__(name, scheme, port, workers)
        self.pin_workers = pin

    def argv(self, ctx: Context) -> list[str]:
        argv = [str(VENV_BIN / "uvicorn"), "floor_app:app", "--app-dir", str(HERE), "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", str(self.workers), "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--log-level", "warning", "--lifespan", "off"]
        if self.scheme == "https":
            argv += ["--ssl-certfile", ctx.fixture.tls_cert, "--ssl-keyfile", ctx.fixture.tls_key]
        return argv

    def env(self, ctx: Context) -> dict[str, str]:
        return {"BENCH_FLOOR_RESPONSES": str(ctx.floor_file)}

    def scripts(self, ctx: Context, out: Path) -> dict[str, Path]:
        return {"AssumeRoleWithWebIdentity": ctx.rb_assume_script, "GetCallerIdentity": ctx.rb_gci_script}


class Moto(Target):
    def argv(self, ctx: Context) -> list[str]:
        return [str(ctx.bench_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def scripts(self, ctx: Context, out: Path) -> dict[str, Path]:
        f = ctx.fixture
        creds, _ = fx.temporary_credentials(self.url, f.role_arn, f.token, None)
        headers = fx.signed_gci_headers(self.url, creds)
        status, raw = fx.call_gci(self.url, headers, None)
        if status != 200:
            raise RuntimeError(f"moto GetCallerIdentity answered {status}: {raw[:300]!r}")
        return {
            "AssumeRoleWithWebIdentity": harness.lua_script(out / "moto-assume.lua",
                                                            body=fx.assume_body(f.role_arn, f.token), headers=FORM),
            "GetCallerIdentity": harness.lua_script(out / "moto-gci.lua", body=fx.GCI_BODY, headers=headers),
        }


class Context:
    def __init__(self, args: argparse.Namespace, out: Path, fixture: fx.Fixture, bench_bin: Path) -> None:
        self.args, self.out, self.fixture, self.bench_bin = args, out, fixture, bench_bin
        self.floor_file = out / "floor-responses.json"
        # the floor replays rolebridge's own request scripts (same bytes in), answering rolebridge's bytes
        self.rb_assume_script = out / "floor-assume.lua"
        self.rb_gci_script = out / "floor-gci.lua"
        self.response_sizes: dict[str, int] = {}


def server_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def settled_cpu_seconds(pids: list[int], timeout: float = 60.0) -> float:
    """CPU seconds of ``pids`` once they have gone idle (no CPU used for half a second), at most ``timeout``."""
    deadline = time.monotonic() + timeout
    last = server_cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = server_cpu_seconds(pids)
        if now == last:
            return now
        last = now
    return last


def run_target(ctx: Context, target: Target, conns: list[int], duration: float, round_no: int,
               ops: tuple[str, ...] = OPS) -> dict[str, Any]:
    args = ctx.args
    cpus_server = "0" if target.workers == 1 else None
    cpus_wrk = "1" if target.workers == 1 else None
    label = f"r{round_no}-{target.label}"
    server = harness.start_server(label, target.argv(ctx), target.port, ctx.out / "logs", cpus=cpus_server,
                                  workers=target.workers, env=target.env(ctx), tls=target.scheme == "https")
    results: dict[str, Any] = {"runs": {}}
    try:
        if target.pin_workers:
            harness.pin_workers(server)
        scripts = target.scripts(ctx, ctx.out)
        for op in ops:
            script = scripts[op]
            harness.wrk(f"{target.url}/", script, 16, args.warmup, cpus=cpus_wrk,
                        log=ctx.out / "logs" / f"{label}.warmup.txt")
            for c in conns:
                pids = [*server.worker_pids(), server.proc.pid]
                indexer = server.indexer_pids()
                cpu0, idx0 = server_cpu_seconds(sorted(set(pids))), server_cpu_seconds(indexer)
                r = harness.wrk(f"{target.url}/", script, c, duration, cpus=cpus_wrk,
                                log=ctx.out / "logs" / f"{label}.wrk.txt")
                cpu1 = server_cpu_seconds(sorted(set(pids)))
                r["server_cpu_us_per_req"] = round((cpu1 - cpu0) / max(1, r["requests"]) * 1e6, 1)
                if indexer:  # the audit follower's share, including its catch-up once the load stops
                    r["indexer_cpu_us_per_req"] = round(
                        (settled_cpu_seconds(indexer) - idx0) / max(1, r["requests"]) * 1e6, 1)
                results["runs"][f"{op}@{c}"] = r
                log(f"{label} {op} c={c}: {r['rps']:.0f} req/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms "
                    f"cpu {r['server_cpu_us_per_req']} us/req (+ audit indexer {r.get('indexer_cpu_us_per_req')}) "
                    f"non2xx {r['non2xx']} {r['socket_errors']}")
        results["rss"] = server.peak_rss()
    finally:
        server.stop()
    return results


def record_floor_bytes(ctx: Context, port: int) -> None:
    """Start rolebridge once: its exact answers become the floor app's answers; its requests the floor's."""
    target = Rolebridge(port, 1)
    server = harness.start_server("floor-record", target.argv(ctx), port, ctx.out / "logs", env=target.env(ctx),
                                  tls=True)
    try:
        f = ctx.fixture
        creds, assume_raw = fx.temporary_credentials(target.url, f.role_arn, f.token, f.ca_bundle)
        headers = fx.signed_gci_headers(target.url, creds)
        status, gci_raw = fx.call_gci(target.url, headers, f.ca_bundle)
        if status != 200:
            raise RuntimeError(f"GetCallerIdentity answered {status}: {gci_raw[:300]!r}")
    finally:
        server.stop()
    ctx.floor_file.write_text(json.dumps({"AssumeRoleWithWebIdentity": assume_raw.decode(),
                                          "GetCallerIdentity": gci_raw.decode()}))
    harness.lua_script(ctx.rb_assume_script, body=fx.assume_body(f.role_arn, f.token), headers=FORM)
    harness.lua_script(ctx.rb_gci_script, body=fx.GCI_BODY, headers=headers)
    ctx.response_sizes = {"AssumeRoleWithWebIdentity": len(assume_raw), "GetCallerIdentity": len(gci_raw)}


# -- the other parts ------------------------------------------------------------------------------

def micro_benches(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in MICRO:
        path = HERE / name
        if not path.exists():
            continue
        argv = [sys.executable, str(path)]
        if quick and name in ("bench_policy.py", "bench_tokens.py"):
            argv += ["--seconds", "0.3"]
        log(f"micro: {name}")
        proc = subprocess.run(harness.pin("0") + argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
        try:
            out[name] = json.loads(proc.stdout)
        except ValueError:
            out[name] = {"error": f"exit {proc.returncode}", "stderr": proc.stderr[-1500:],
                         "stdout": proc.stdout[-1500:]}
    return out


def in_process(ctx: Context, fixture_file: Path, quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # (label, audit, concurrency): one client pays one audit commit per request; 64 share commits
    for label, audit, concurrency in (("with_audit", True, 1), ("with_audit_64", True, 64),
                                      ("without_audit", False, 64)):
        argv = [*harness.pin("0"), sys.executable, str(HERE / "profile_path.py"), "--data-dir", ctx.fixture.data_dir, "--fixture", str(fixture_file), "--seconds", "1" if quick else "2", "--rounds", "1" if quick else "3", "--concurrency", str(concurrency)]
        if not audit:
            argv.append("--no-audit")
        log(f"in-process CPU per request ({label}, {concurrency} in flight)")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
        try:
            out[label] = json.loads(proc.stdout)
        except ValueError:
            out[label] = {"error": proc.stderr[-1500:]}
    return out


def scale(ctx: Context, args: argparse.Namespace, port: int) -> dict[str, Any]:
    """Issue 5: the same two calls at 10,000 roles + 1,000 providers vs the 1 + 1 walkthrough."""
    roles, providers = (1_000, 100) if args.quick else (10_000, 1_000)
    log(f"scale fixture: {roles} roles, {providers} providers (in-process IAM handlers)")
    t0 = time.monotonic()
    big = fx.build(ctx.out / "data-scale", port, ctx.out / "logs", scale=True, n_roles=roles, n_providers=providers)
    built_s = time.monotonic() - t0
    small = ctx.fixture
    runs: dict[str, list[dict[str, Any]]] = {"small": [], "scale": []}
    for round_no in range(args.rounds):
        for name, f in (("small", small), ("scale", big)):
            target = Rolebridge(port, 1, f.data_dir, name=f"rolebridge-{name}")
            server = harness.start_server(f"scale-r{round_no}-{name}", target.argv(ctx), port, ctx.out / "logs",
                                          cpus="0", env=target.env(ctx), tls=True)
            try:
                scripts = target.scripts(ctx, ctx.out, fixture=f)
                one: dict[str, Any] = {}
                for op in OPS:
                    harness.wrk(f"{target.url}/", scripts[op], 8, args.warmup, cpus="1",
                                log=ctx.out / "logs" / "scale.warmup.txt")
                    one[op] = harness.wrk(f"{target.url}/", scripts[op], 8, args.duration, cpus="1",
                                          log=ctx.out / "logs" / "scale.wrk.txt")
                    log(f"scale {name} {op}: {one[op]['rps']:.0f} req/s p50 {one[op]['p50_ms']} ms")
                runs[name].append(one)
            finally:
                server.stop()
    summary: dict[str, Any] = {"roles": big.roles, "providers": big.providers, "build_seconds": round(built_s, 1),
                               "connections": 8}
    for op in OPS:
        row: dict[str, Any] = {}
        for name in ("small", "scale"):
            row[name] = {k: round(statistics.median(r[op][k] for r in runs[name]), 3)
                         for k in ("rps", "p50_ms", "p99_ms")}
            row[name]["non2xx"] = sum(r[op]["non2xx"] for r in runs[name])
            row[name]["socket_errors"] = [r[op]["socket_errors"] for r in runs[name] if r[op]["socket_errors"]]
        row["p50_ratio"] = round(row["scale"]["p50_ms"] / row["small"]["p50_ms"], 2)
        summary[op] = row
    return summary


# -- aggregation ---------------------------------------------------------------------------------

def aggregate(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """label -> op@c -> medians over rounds (with every round's req/s kept)."""
    table: dict[str, Any] = {}
    for rnd in rounds:
        for label, res in rnd["targets"].items():
            entry = table.setdefault(label, {"runs": {}, "rss_mb": []})
            if res.get("rss", {}).get("per_worker_max_mb") is not None:
                entry["rss_mb"].append(res["rss"]["per_worker_max_mb"])
            for key, r in res["runs"].items():
                entry["runs"].setdefault(key, []).append(r)
    out: dict[str, Any] = {}
    for label, entry in table.items():
        rows = {}
        for key, runs in entry["runs"].items():
            rows[key] = {
                "rps": round(statistics.median(r["rps"] for r in runs), 1),
                "rps_all": [round(r["rps"]) for r in runs],
                "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
                "server_cpu_us_per_req": round(statistics.median(r["server_cpu_us_per_req"] for r in runs), 1),
                **({"indexer_cpu_us_per_req": round(statistics.median(
                    r["indexer_cpu_us_per_req"] for r in runs if "indexer_cpu_us_per_req" in r), 1)}
                   if any("indexer_cpu_us_per_req" in r for r in runs) else {}),
                "non2xx": sum(r["non2xx"] for r in runs),
                "socket_errors": [r["socket_errors"] for r in runs if r["socket_errors"]],
                "command": runs[0]["command"],
            }
        out[label] = {"runs": rows, "peak_rss_mb_per_worker": max(entry["rss_mb"]) if entry["rss_mb"] else None}
    return out


def failures(results: dict[str, Any]) -> list[str]:
    bad = []
    for label, entry in results.get("servers", {}).items():
        for key, r in entry["runs"].items():
            if r["non2xx"] or r["socket_errors"]:
                bad.append(f"{label} {key}: non2xx={r['non2xx']} socket_errors={r['socket_errors']}")
    for op in OPS:
        for name in ("small", "scale"):
            r = results.get("scale", {}).get(op, {}).get(name)
            if r and (r["non2xx"] or r["socket_errors"]):
                bad.append(f"scale {name} {op}: non2xx={r['non2xx']} socket_errors={r['socket_errors']}")
    return bad


def report_only(args: argparse.Namespace) -> int:
    """After a change to the aggregation or the report: the same run's figures, rendered again."""
    path = Path(args.out) / "results.json"
    results = json.loads(path.read_text())
    results["servers"] = aggregate(results["rounds_raw"])
    path.write_text(json.dumps(results, indent=1, default=str))
    if args.docs:
        Path(args.docs).write_text(report.markdown(results))
        Path(args.docs).with_suffix(".json").write_text(json.dumps(
            {k: v for k, v in results.items() if k != "rounds_raw"}, indent=1, default=str))
        log(f"wrote {args.docs} from {path}")
    return 0


def rerun_scale(args: argparse.Namespace) -> int:
    out = Path(args.out)
    results = json.loads((out / "results.json").read_text())
    fixture = fx.Fixture(**json.loads((out / "fixture.json").read_text()))
    shutil.rmtree(out / "data-scale", ignore_errors=True)
    ctx = Context(args, out, fixture, ensure_bench_venv())
    results["errors"] = [e for e in results.get("errors", []) if not e.startswith("scale:")]
    try:
        results["scale"] = scale(ctx, args, args.port_base)
    except Exception as exc:
        results["errors"].append(f"scale: {exc}")
    results["failures"] = failures(results) + results["errors"]
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    if args.docs:
        Path(args.docs).write_text(report.markdown(results))
        Path(args.docs).with_suffix(".json").write_text(json.dumps(
            {k: v for k, v in results.items() if k != "rounds_raw"}, indent=1, default=str))
    for line in results["failures"]:
        log("FAILED: " + line)
    return 1 if results["failures"] else 0


def main() -> int:
    ap = argparse.ArgumentParser(description="rolebridge vs moto vs the uvicorn floor (see docs/benchmarks.md)")
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s runs, small scale figure (~3 min)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3, quick 1)")
    ap.add_argument("--duration", type=float, default=None, help="seconds per wrk run (default 5, quick 2)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per server and operation")
    ap.add_argument("--port-base", type=int, default=18440)
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-micro", action="store_true")
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"),
                    help="where the report goes ('' to skip)")
    ap.add_argument("--scale-only", action="store_true",
                    help="re-run only the scale figure into an existing results.json (after a failed scale part)")
    ap.add_argument("--report-only", action="store_true",
                    help="re-aggregate the last run's raw rounds (results.json) and rewrite the report; measures nothing")
    args = ap.parse_args()
    if args.report_only:
        return report_only(args)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    started = time.time()
    if args.scale_only:
        return rerun_scale(args)

    ensure_wrk()
    bench_bin = ensure_bench_venv()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True)
    info = machine()
    log(f"{info['cores']} cores ({info['cpu']}), load average {info['load_avg_at_start']}")

    p = args.port_base
    log("fixture: walkthrough set-up in a fresh data dir")
    fixture = fx.build(out / "data", p, out / "logs")
    fixture_file = out / "fixture.json"
    fixture_file.write_text(json.dumps({**fixture.__dict__}))
    ctx = Context(args, out, fixture, bench_bin)
    record_floor_bytes(ctx, p)

    conns = [8, 64]
    targets: list[Target] = [
        Rolebridge(p, 1), Rolebridge(p, 2), Rolebridge(p, 2, name="rolebridge-interpreted", interpreted=True),
        Floor("floor-https", "https", p + 1, 1), Floor("floor-https", "https", p + 1, 2),
        # the floor's two workers pinned as rolebridge's are: the anchor is the better of the two
        Floor("floor-https-pinned", "https", p + 1, 2, pin=True),
        Floor("floor-http", "http", p + 2, 1), Floor("floor-http", "http", p + 2, 2),
        Moto("moto", "http", p + 3, 1),
    ]
    rounds: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        probe = rsa_probe()
        log(f"round {round_no + 1}/{args.rounds}: RSA-2048 verify probe {probe}/s")
        rnd: dict[str, Any] = {"rsa2048_verify_per_s": probe, "targets": {}}
        order = targets[round_no % len(targets):] + targets[:round_no % len(targets)]  # rotate start order
        for target in order:
            try:
                rnd["targets"][target.label] = run_target(ctx, target, conns, args.duration, round_no)
            except Exception as exc:  # a server that cannot start is a failed run, reported below
                log(f"{target.label}: FAILED {exc}")
                rnd["targets"][target.label] = {"runs": {}, "error": str(exc)}
        rounds.append(rnd)

    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": info, "args": {k: v for k, v in vars(args).items()},
        "fixture": fixture.to_dict(), "response_bytes": ctx.response_sizes,
        "rsa2048_verify_probe_per_round": [r["rsa2048_verify_per_s"] for r in rounds],
        "servers": aggregate(rounds),
        "errors": [f"round {i}: {label}: {res['error']}" for i, r in enumerate(rounds)
                   for label, res in r["targets"].items() if res.get("error")],
    }
    results["in_process"] = in_process(ctx, fixture_file, args.quick)
    if not args.skip_micro:
        results["micro"] = micro_benches(args.quick)
    if not args.skip_scale:
        try:
            results["scale"] = scale(ctx, args, p)
        except Exception as exc:
            results["errors"].append(f"scale: {exc}")
    results["elapsed_s"] = round(time.time() - started)
    results["failures"] = failures(results) + results["errors"]
    results["rounds_raw"] = rounds
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    if args.docs:
        Path(args.docs).write_text(report.markdown(results))
        # the committed copy of the figures the page shows (bench/out is not committed)
        Path(args.docs).with_suffix(".json").write_text(json.dumps(
            {k: v for k, v in results.items() if k != "rounds_raw"}, indent=1, default=str))
        log(f"wrote {args.docs}")
    log(f"wrote {out / 'results.json'} in {results['elapsed_s']} s")
    if results["failures"]:
        for line in results["failures"]:
            log("FAILED: " + line)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
