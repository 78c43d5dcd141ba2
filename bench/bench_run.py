"""Time from `rolebridge run` to the job's first successful AWS call, with a warm server (issue 6).

A fresh data dir with the walkthrough set-up (cluster in 111111111111, provider + role
`cross-account-sample-dev` in 222222222222), one server started and warmed, then N runs of each job:

- ``probe``: the smallest job that makes an AWS call: plain Python (no SDK import) POSTs
  AssumeRoleWithWebIdentity with the token file and the endpoint/CA the runner set, and prints
  the wall time when the answer is in. This is rolebridge's own overhead (CLI start, run record,
  slot, token, preflight assume, process start) plus one STS round trip.
- ``boto3``: the realistic job: ``boto3.client('sts').get_caller_identity()`` (SDK import, web
  identity assume, signed call).

Each sample is job-reported wall time minus the time just before `rolebridge run` was spawned.
Prints JSON (medians, p90, all samples); target: probe median < 300 ms.

    python bench/bench_run.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
RB = str(VENV_BIN / "rolebridge")
PROBE = """
import os, ssl, time, urllib.parse, urllib.request
form = urllib.parse.urlencode({"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
    "RoleArn": os.environ["AWS_ROLE_ARN"], "RoleSessionName": os.environ["AWS_ROLE_SESSION_NAME"],
    "WebIdentityToken": open(os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"]).read()}).encode()
ctx = ssl.create_default_context(cafile=os.environ["AWS_CA_BUNDLE"])
body = urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL_STS"] + "/", form, context=ctx).read()
assert b"AssumedRoleUser" in body, body
print(repr(time.time()))
"""
BOTO3 = """
import time, boto3
arn = boto3.client("sts").get_caller_identity()["Arn"]
assert ":assumed-role/cross-account-sample-dev/" in arn, arn
print(repr(time.time()))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    import boto3

    root = Path(tempfile.mkdtemp(prefix="rb-bench-run-"))
    data = root / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROLEBRIDGE_"))}
    env.update(ROLEBRIDGE_DATA_DIR=str(data), HOME=str(root), AWS_CONFIG_FILE=str(root / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(root / "none"))

    def cli(*a: str) -> str:
        return subprocess.run([RB, *a], env=env, check=True, capture_output=True, text=True).stdout

    server = subprocess.Popen([RB, "server", "--port", "0"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (data / "server.json").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.05)
        info = json.loads((data / "server.json").read_text())
        cli("account", "create", "111111111111", "--json")
        keys = json.loads(cli("account", "create", "222222222222", "--json"))
        cluster = json.loads(cli("cluster", "create", "demo", "--account", "111111111111", "--json"))
        iam = boto3.client("iam", endpoint_url=info["url"], verify=info["ca_bundle"], region_name="us-east-1",
                           aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"])
        provider = iam.create_open_id_connect_provider(
            Url=cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"],
            ThumbprintList=[cluster["thumbprint"]])["OpenIDConnectProviderArn"]
        iam.create_role(RoleName="cross-account-sample-dev", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": provider},
                "Condition": {"StringLike": {f"{cluster['provider_url']}:sub":
                              "system:serviceaccount:dev:cross.account.sample-????????-????-????-????-????????????"}}}]}))
        role = "arn:aws:iam::222222222222:role/cross-account-sample-dev"

        def one(script: str) -> float:
            t0 = time.time()
            out = subprocess.run([RB, "run", "--cluster", "demo", "--project", "cross_account_sample",
                                  "--environment", "dev", "--aws-role", role, "--", sys.executable, "-c", script],
                                 env=env, check=True, capture_output=True, text=True).stdout
            return (float(out.strip().splitlines()[-1]) - t0) * 1000

        results: dict[str, object] = {}
        for name, script in (("probe", PROBE), ("boto3", BOTO3)):
            one(script)  # warm: server caches, page cache, .pyc files
            samples = [one(script) for _ in range(args.runs)]
            results[name] = {"median_ms": round(statistics.median(samples), 1),
                             "p90_ms": round(sorted(samples)[int(0.9 * (len(samples) - 1))], 1),
                             "min_ms": round(min(samples), 1), "samples_ms": [round(s, 1) for s in samples]}
        results["target_ms"] = 300
        results["probe_meets_target"] = results["probe"]["median_ms"] < 300  # type: ignore[index]
        results["load_average"] = os.getloadavg()
        print(json.dumps(results, indent=2))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
