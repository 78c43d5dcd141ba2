"""S3 throughput next to the local disk, and small-object requests/s next to the HTTP floor.

Starts its own ``rolebridge server`` (fresh temp data dir, 127.0.0.1, stopped by its PID), then
with one boto3 client (path style, HTTPS, the SDK's default checksums):
  put_mb_s / get_mb_s      PutObject / GetObject of 1 MB and 64 MB objects (median of rounds)
  disk_write_mb_s          the same bytes written to a file on the same disk (write + fsync)
  disk_copy_mb_s           shutil.copyfile of that file (page cache read + write, no fsync)
  small_put_per_s          PutObject of 1 KB objects, sequential, one connection
  small_get_per_s          GetObject of the same 1 KB objects
  health_per_s             GET /health on the same server with the same HTTP stack (the floor)
Prints JSON.

    python bench/bench_s3.py [--rounds 3] [--small 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import urllib3  # botocore's HTTP stack; used for the /health floor
from botocore.config import Config

ROLEBRIDGE = str(Path(sys.executable).parent / "rolebridge")
ACCOUNT = "999000000001"


def start(root: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    data = root / "data"
    data.mkdir()
    log = open(root / "server.log", "wb")
    cpus = set(range(os.cpu_count() or 1))
    proc = subprocess.Popen([ROLEBRIDGE, "server", "--data-dir", str(data), "--port", "0"], stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info_path = data / "server.json"
        if info_path.exists():
            try:
                info = json.loads(info_path.read_text())
                if info.get("pid") == proc.pid:
                    return proc, info
            except ValueError:
                pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start: " + (root / "server.log").read_text()[-2000:])


def timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(s3: Any, root: Path, size_mb: int, rounds: int) -> dict[str, float]:
    body = os.urandom(size_mb * 1024 * 1024)
    puts, gets, writes, copies = [], [], [], []
    for r in range(rounds):
        key = f"o{size_mb}-{r}"
        puts.append(timed(lambda: s3.put_object(Bucket="bench", Key=key, Body=body)))  # noqa: B023 - called now
        gets.append(timed(lambda: s3.get_object(Bucket="bench", Key=key)["Body"].read()))  # noqa: B023
        src, dst = root / f"disk-{r}", root / f"copy-{r}"
        t = time.perf_counter()
        with open(src, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        writes.append(time.perf_counter() - t)
        copies.append(timed(lambda: shutil.copyfile(src, dst)))  # noqa: B023
        src.unlink()
        dst.unlink()
    mb = float(size_mb)
    return {"put_mb_s": round(mb / statistics.median(puts), 1), "get_mb_s": round(mb / statistics.median(gets), 1),
            "disk_write_fsync_mb_s": round(mb / statistics.median(writes), 1),
            "disk_copy_mb_s": round(mb / statistics.median(copies), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--small", type=int, default=300)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    proc, info = start(root)
    try:
        keys = json.loads(subprocess.run([ROLEBRIDGE, "account", "create", ACCOUNT, "--json", "--data-dir",
                                          str(root / "data")], capture_output=True, text=True, check=True).stdout)
        s3 = boto3.client("s3", endpoint_url=info["url"], verify=info["ca_bundle"], region_name="us-east-1",
                          aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"],
                          config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="bench")
        report: dict[str, Any] = {"objects": {}}
        for size_mb in (1, 64):
            report["objects"][f"{size_mb}MB"] = measure(s3, root, size_mb, args.rounds)
        small = os.urandom(1024)
        t = timed(lambda: [s3.put_object(Bucket="bench", Key=f"small/{i}", Body=small) for i in range(args.small)])
        report["small_put_per_s"] = round(args.small / t, 1)
        t = timed(lambda: [s3.get_object(Bucket="bench", Key=f"small/{i}")["Body"].read() for i in range(args.small)])
        report["small_get_per_s"] = round(args.small / t, 1)
        port = int(info["url"].rsplit(":", 1)[1])
        pool = urllib3.HTTPSConnectionPool("127.0.0.1", port, ca_certs=info["ca_bundle"], maxsize=1)
        assert pool.request("GET", "/health").status == 200
        t = timed(lambda: [pool.request("GET", "/health").data for _ in range(args.small)])
        report["health_per_s"] = round(args.small / t, 1)
        report["note"] = ("one client connection, sequential; server and client share the machine; "
                          "PutObject includes fsync of the object and of its directory plus a database commit")
        json.dump(report, sys.stdout, indent=2)
        print()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
