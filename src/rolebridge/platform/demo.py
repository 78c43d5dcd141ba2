"""The walkthrough, end to end, on a fresh data dir: what `make demo` shows a new user.

Cluster in 111111111111; in 222222222222 the OIDC provider and the role
`cross-account-sample-dev`, created through boto3's IAM client exactly as the walkthrough's
Terraform would; one job that assumes the role and prints who it is via the AWS CLI, then two
jobs that must fail, each with its one-line reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CLUSTER_ACCOUNT = "111111111111"
DATA_ACCOUNT = "222222222222"
PROJECT = "cross_account_sample"
ROLE = "cross-account-sample-dev"
UUID_PATTERN = "????????-????-????-????-????????????"


def walkthrough_trust_policy(provider_arn: str, provider_url: str, environment: str, project: str) -> dict:
    """The trust policy of the walkthrough's `aws_iam_policy_document`, as JSON."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["sts:AssumeRoleWithWebIdentity"],
            "Principal": {"Federated": provider_arn},
            "Condition": {"StringLike": {
                f"{provider_url.removeprefix('https://')}:sub":
                    f"system:serviceaccount:{environment}:{project.replace('_', '.')}-{UUID_PATTERN}",
            }},
        }],
    }


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def run_demo(data_dir: Path | None = None, say: Callable[[str], None] = print) -> int:
    import boto3

    keep = data_dir is not None
    data_dir = Path(data_dir or tempfile.mkdtemp(prefix="rolebridge-demo-"))
    if data_dir.exists() and any(data_dir.iterdir()):
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    rb = _bin("rolebridge")
    env = {**os.environ, "ROLEBRIDGE_DATA_DIR": str(data_dir)}
    env.pop("ROLEBRIDGE_DATABASE_URL", None)

    def cli(*args: str) -> str:
        return subprocess.run([rb, *args], env=env, check=True, capture_output=True, text=True).stdout

    say(f"== data dir {data_dir}")
    server = subprocess.Popen([rb, "server", "--port", "0"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    failures = 0
    try:
        server_json = data_dir / "server.json"
        deadline = time.monotonic() + 30
        while not server_json.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                detail = server.stderr.read().decode() if server.stderr else ""
                raise SystemExit("the server did not start: " + detail)
            time.sleep(0.05)
        info = json.loads(server_json.read_text())
        say(f"== server {info['url']} (pid {info['pid']})")

        cli("account", "create", CLUSTER_ACCOUNT, "--json")
        keys = json.loads(cli("account", "create", DATA_ACCOUNT, "--json"))
        cluster = json.loads(cli("cluster", "create", "demo", "--account", CLUSTER_ACCOUNT, "--json"))
        say(f"== cluster demo in {CLUSTER_ACCOUNT}: oidc_url {cluster['oidc_url']} thumbprint {cluster['thumbprint']}")

        iam = boto3.client("iam", endpoint_url=info["url"], verify=info["ca_bundle"], region_name="us-east-1",
                           aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"])
        provider_arn = iam.create_open_id_connect_provider(
            Url=cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"], ThumbprintList=[cluster["thumbprint"]],
        )["OpenIDConnectProviderArn"]
        say(f"== {DATA_ACCOUNT}: OIDC provider {provider_arn}")
        trust = walkthrough_trust_policy(provider_arn, cluster["oidc_url"], "dev", PROJECT)
        role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        say(f"== {DATA_ACCOUNT}: role {role_arn}")
        job_script, bucket = _s3_setup(info, keys, role_arn, say)

        job_env = {**env, "HOME": str(data_dir / "home")}
        job_cmd = [sys.executable, "-c", job_script, bucket]

        def run(environment: str, aws_role: str, command: list[str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run([rb, "run", "--cluster", "demo", "--project", PROJECT, "--environment", environment,
                                   "--aws-role", aws_role, "--", *command], env=job_env, capture_output=True,
                                  text=True)

        say(f"\n-- job: project {PROJECT}, environment dev, aws_role {role_arn}")
        ok = run("dev", role_arn, [_bin("aws"), "sts", "get-caller-identity", "--query", "Arn", "--output", "text"])
        say("   " + (ok.stdout.strip() or ok.stderr.strip()).replace("\n", "\n   "))
        failures += ok.returncode != 0
        say("\n-- job: the same role reads its input from S3 with plain boto3 and writes its result")
        data_job = run("dev", role_arn, job_cmd)
        say("   " + (data_job.stdout.strip() or data_job.stderr.strip()).replace("\n", "\n   "))
        failures += data_job.returncode != 0

        for title, environment, aws_role in (
            ("the same role from environment prd (must fail)", "prd", role_arn),
            (f"the bare role name {ROLE} (must fail)", "dev", ROLE),
        ):
            say(f"\n-- job: {title}")
            bad = run(environment, aws_role, job_cmd)
            say("   " + bad.stderr.strip().replace("\n", "\n   "))
            failures += bad.returncode == 0
        say("\n== demo " + ("passed" if failures == 0 else f"FAILED ({failures} unexpected results)"))
        return 1 if failures else 0
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def _s3_setup(info: dict, keys: dict, role_arn: str, say: Callable[[str], None]) -> tuple[str, str]:
    """Data in the other account: a bucket with input in 222222222222, and the role allowed to use it."""
    import boto3
    from botocore.config import Config

    from rolebridge.s3.demo_data import JOB_SCRIPT, setup_demo_data

    creds = {"aws_access_key_id": keys["access_key_id"], "aws_secret_access_key": keys["secret_access_key"],
             "endpoint_url": info["url"], "verify": info["ca_bundle"], "region_name": "us-east-1"}
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **creds)
    data = setup_demo_data(boto3.client("iam", **creds), s3)
    say(f"== {DATA_ACCOUNT}: bucket s3://{data.bucket} with {data.input_key}; {ROLE} may read input/ and "
        f"write {data.result_prefix}")
    return JOB_SCRIPT, data.bucket
