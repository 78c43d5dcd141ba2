"""`rolebridge grant`: the generated setup works on the first try, is idempotent, and renders cleanly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

from conftest import Server, rb
from rolebridge.platform.roles import UUID_PATTERN
from rolebridge.tools import render
from rolebridge.tools.grant import ClusterFacts, make_plan

CLUSTER_ACCOUNT = "310000000001"
TARGET_ACCOUNT = "310000000002"
PROJECT = "sales_forecast"
JOB = [sys.executable, "-c", "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"]
FACTS = ClusterFacts("c1", "111111111111", "https://127.0.0.1:8443/oidc/c1", "ab" * 20)


def test_grant_apply_then_jobs_run_first_try_in_two_environments_cross_account(server: Server) -> None:
    server.cluster("grant-x", CLUSTER_ACCOUNT)
    server.account(TARGET_ACCOUNT)
    out = rb("grant", "--cluster", "grant-x", "--project", PROJECT, "--environment", "dev", "--environment", "prd",
             "--account", TARGET_ACCOUNT, "--allow", "s3:GetObject=arn:aws:s3:::sales/*", "--apply",
             data_dir=server.data_dir)
    role_arn = f"arn:aws:iam::{TARGET_ACCOUNT}:role/{PROJECT}"
    assert f"role ARN for jobs: {role_arn}" in out.stdout
    assert "created provider" in out.stdout and "created role" in out.stdout
    for env in ("dev", "prd"):
        job = rb("run", "--cluster", "grant-x", "--project", PROJECT, "--environment", env, "--aws-role", role_arn,
                 "--", *JOB, data_dir=server.data_dir)
        arn = job.stdout.strip().splitlines()[-1]
        assert arn.startswith(f"arn:aws:sts::{TARGET_ACCOUNT}:assumed-role/{PROJECT}/sales.forecast-"), job.stdout
    # another environment is not let in, and `run` says why in one line
    refused = rb("run", "--cluster", "grant-x", "--project", PROJECT, "--environment", "stg", "--aws-role",
                 role_arn, "--", *JOB, data_dir=server.data_dir, check=False)
    assert refused.returncode == 1
    assert "AccessDenied" in refused.stderr and "sub-namespace-mismatch" in refused.stderr, refused.stderr

    again = rb("grant", "--cluster", "grant-x", "--project", PROJECT, "--environment", "dev", "--environment", "prd",
               "--account", TARGET_ACCOUNT, "--allow", "s3:GetObject=arn:aws:s3:::sales/*", "--apply", "--json",
               data_dir=server.data_dir)
    report = json.loads(again.stdout)
    assert report["changed"] is False and report["changes"] == [] and report["drift"] == []
    assert report["role_arn"] == role_arn

    # drift: someone widens the trust policy; grant shows it and leaves it until --update
    iam = server.client("iam", TARGET_ACCOUNT)
    doc = json.loads(rb("grant", "--cluster", "grant-x", "--project", PROJECT, "--environment", "dev",
                        "--environment", "prd", "--account", TARGET_ACCOUNT, "--policy-json",
                        data_dir=server.data_dir).stdout)
    wide = json.loads(json.dumps(doc).replace("system:serviceaccount:dev:", "system:serviceaccount:*:"))
    iam.update_assume_role_policy(RoleName=PROJECT, PolicyDocument=json.dumps(wide))
    args = ("grant", "--cluster", "grant-x", "--project", PROJECT, "--environment", "dev", "--environment", "prd",
            "--account", TARGET_ACCOUNT, "--allow", "s3:GetObject=arn:aws:s3:::sales/*", "--apply")
    drift = rb(*args, data_dir=server.data_dir, check=False)
    assert drift.returncode == 1
    assert "-" in drift.stdout and "system:serviceaccount:*:sales.forecast-" in drift.stdout
    assert "--update" in drift.stdout
    current = iam.get_role(RoleName=PROJECT)["Role"]["AssumeRolePolicyDocument"]
    assert "system:serviceaccount:*:" in json.dumps(current)
    fixed = rb(*args, "--update", data_dir=server.data_dir)
    assert "updated trust policy" in fixed.stdout
    assert "no changes" in rb(*args, data_dir=server.data_dir).stdout

    # explain, online: builds the job's token like `run` does and replays STS
    ok = json.loads(rb("explain", role_arn, "--cluster", "grant-x", "--project", PROJECT, "--environment", "prd",
                       "--json", data_dir=server.data_dir).stdout)
    assert (ok["outcome"], ok["error_code"], ok["cause"]) == ("success", None, None)
    bad = rb("explain", role_arn, "--cluster", "grant-x", "--project", PROJECT, "--environment", "stg", "--json",
             data_dir=server.data_dir, check=False)
    assert bad.returncode == 1
    out = json.loads(bad.stdout)
    assert (out["outcome"], out["error_code"], out["cause"]) == ("error", "AccessDenied", "sub-namespace-mismatch")
    assert "system:serviceaccount:stg:" in out["fix"]


def test_trust_policy_is_least_privilege() -> None:
    plan = make_plan(FACTS, "a_b", ["dev"], "222222222222")
    st = plan.trust_policy["Statement"][0]
    assert plan.role_name == "a_b-dev"
    assert plan.role_arn == "arn:aws:iam::222222222222:role/a_b-dev"
    assert st["Principal"] == {"Federated": "arn:aws:iam::222222222222:oidc-provider/127.0.0.1:8443/oidc/c1"}
    assert st["Condition"] == {
        "StringEquals": {"127.0.0.1:8443/oidc/c1:aud": "sts.amazonaws.com"},
        "StringLike": {"127.0.0.1:8443/oidc/c1:sub": f"system:serviceaccount:dev:a.b-{UUID_PATTERN}"},
    }


def test_terraform_parses_and_is_fmt_clean(tmp_path: Path) -> None:
    plan = make_plan(FACTS, "cross_account_sample", ["dev", "prd"], "222222222222",
                     allows=["s3:GetObject=arn:aws:s3:::b/${aws:username}/*"])
    text = render.terraform(plan)
    doc = hcl2.loads(text)
    variables = {k: v for d in doc["variable"] for k, v in d.items()}
    url_var = variables.get("oidc_provider_url") or variables.get('"oidc_provider_url"')
    arn_var = variables.get("oidc_provider_arn") or variables.get('"oidc_provider_arn"')
    assert url_var["default"].strip('"') == "https://127.0.0.1:8443/oidc/c1"
    assert arn_var["default"].strip('"') == plan.provider_arn
    data = json.dumps(doc["data"])
    assert "StringLike" in data and "StringEquals" in data and "Federated" in data
    assert "replace(local.project_name" in data and "local.uuid_pattern" in data
    resources = json.dumps(doc["resource"])
    for kind in ("aws_iam_role", "aws_iam_openid_connect_provider", "aws_iam_role_policy"):
        assert kind in resources
    assert "provider" in doc and "output" in doc
    if shutil.which("terraform") is None:
        pytest.skip("terraform not installed")
    (tmp_path / "main.tf").write_text(text)
    proc = subprocess.run(["terraform", "fmt", "-check", "-diff", str(tmp_path / "main.tf")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cloudformation_and_cli_renderings_carry_the_same_policy() -> None:
    plan = make_plan(FACTS, "p", ["dev"], "222222222222", allows=["s3:GetObject=arn:aws:s3:::b/*"])
    cfn = render.cloudformation(plan)
    role = cfn["Resources"]["Role"]["Properties"]
    assert role["AssumeRolePolicyDocument"] == plan.trust_policy
    assert role["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] == "s3:GetObject"
    assert cfn["Resources"]["OidcProvider"]["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    cli = render.aws_cli(plan)
    assert "aws iam create-role --role-name p-dev" in cli
    assert json.dumps(plan.trust_policy, separators=(",", ":")) in cli


def test_bad_allow_is_refused() -> None:
    from rolebridge import errors

    with pytest.raises(errors.ValidationError, match="ACTION=RESOURCE"):
        make_plan(FACTS, "p", ["dev"], "222222222222", allows=["s3:GetObject"])
