"""`rolebridge grant`: the generated setup works on the first try, is idempotent, and renders cleanly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

from conftest import Server, rb
from rolebridge.platform.roles import UUID_PATTERN
from rolebridge.tools import render
from rolebridge.tools.grant import ClusterFacts, make_plan, make_plans

CLUSTER_ACCOUNT = "310000000001"
TARGET_ACCOUNT = "310000000012"
PROJECT = "sales_forecast"
JOB = [sys.executable, "-c", "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"]
FACTS = ClusterFacts("c1", "111111111111", "https://127.0.0.1:8443/oidc/c1", "ab" * 20)


def test_grant_apply_then_jobs_run_first_try_in_two_environments_cross_account(server: Server) -> None:
    server.cluster("grant-x", CLUSTER_ACCOUNT)
    server.account(TARGET_ACCOUNT)
    grant = ("grant", "--cluster", "grant-x", "--project", PROJECT, "--environment", "dev", "--environment", "prd",
             "--account", TARGET_ACCOUNT, "--allow", "s3:GetObject=arn:aws:s3:::sales/*")
    out = rb(*grant, "--apply", data_dir=server.data_dir)
    # one role per environment, named as a project file's aws_role "...role/sales-forecast-{{ env }}" names it
    roles = {env: f"arn:aws:iam::{TARGET_ACCOUNT}:role/sales-forecast-{env}" for env in ("dev", "prd")}
    for env, arn in roles.items():
        assert f"role ARN for jobs in {env}: {arn}" in out.stdout, out.stdout
    assert "created provider" in out.stdout and out.stdout.count("created role") == 2
    for env, arn in roles.items():
        job = rb("run", "--cluster", "grant-x", "--project", PROJECT, "--environment", env, "--aws-role", arn,
                 "--", *JOB, data_dir=server.data_dir)
        got = job.stdout.strip().splitlines()[-1]
        assert got.startswith(f"arn:aws:sts::{TARGET_ACCOUNT}:assumed-role/sales-forecast-{env}/sales.forecast-"), got
    # each role lets in its own environment only, and `run` says why in one line
    for env, arn in (("stg", roles["dev"]), ("dev", roles["prd"])):
        refused = rb("run", "--cluster", "grant-x", "--project", PROJECT, "--environment", env, "--aws-role",
                     arn, "--", *JOB, data_dir=server.data_dir, check=False)
        assert refused.returncode == 1
        assert "AccessDenied" in refused.stderr and "sub-namespace-mismatch" in refused.stderr, refused.stderr

    report = json.loads(rb(*grant, "--apply", "--json", data_dir=server.data_dir).stdout)
    assert report["changed"] is False and report["changes"] == [] and report["drift"] == []
    assert report["role_arns"] == list(roles.values()) and "role_arn" not in report

    # drift: someone widens the dev role's trust policy; grant shows it and leaves it until --update
    iam = server.client("iam", TARGET_ACCOUNT)
    docs = json.loads(rb(*grant, "--policy-json", data_dir=server.data_dir).stdout)
    assert sorted(docs) == ["sales-forecast-dev", "sales-forecast-prd"]
    wide = json.loads(json.dumps(docs["sales-forecast-dev"]).replace("system:serviceaccount:dev:",
                                                                     "system:serviceaccount:*:"))
    iam.update_assume_role_policy(RoleName="sales-forecast-dev", PolicyDocument=json.dumps(wide))
    drift = rb(*grant, "--apply", data_dir=server.data_dir, check=False)
    assert drift.returncode == 1
    assert "-" in drift.stdout and "system:serviceaccount:*:sales.forecast-" in drift.stdout
    assert "--update" in drift.stdout
    current = iam.get_role(RoleName="sales-forecast-dev")["Role"]["AssumeRolePolicyDocument"]
    assert "system:serviceaccount:*:" in json.dumps(current)
    fixed = rb(*grant, "--apply", "--update", data_dir=server.data_dir)
    assert "updated trust policy of " + roles["dev"] in fixed.stdout
    assert "no changes" in rb(*grant, "--apply", data_dir=server.data_dir).stdout

    # --role-name: one role for both environments, as before
    shared = rb(*grant, "--role-name", "sales-forecast-shared", "--apply", "--json", data_dir=server.data_dir)
    assert json.loads(shared.stdout)["role_arn"] == f"arn:aws:iam::{TARGET_ACCOUNT}:role/sales-forecast-shared"
    for env in ("dev", "prd"):
        rb("run", "--cluster", "grant-x", "--project", PROJECT, "--environment", env, "--aws-role",
           "arn:aws:iam::" + TARGET_ACCOUNT + ":role/sales-forecast-shared", "--", *JOB, data_dir=server.data_dir)

    # explain, online: builds the job's token like `run` does and replays STS
    ok = json.loads(rb("explain", roles["prd"], "--cluster", "grant-x", "--project", PROJECT, "--environment",
                       "prd", "--json", data_dir=server.data_dir).stdout)
    assert (ok["outcome"], ok["error_code"], ok["cause"]) == ("success", None, None)
    bad = rb("explain", roles["prd"], "--cluster", "grant-x", "--project", PROJECT, "--environment", "stg",
             "--json", data_dir=server.data_dir, check=False)
    assert bad.returncode == 1
    out = json.loads(bad.stdout)
    assert (out["outcome"], out["error_code"], out["cause"]) == ("error", "AccessDenied", "sub-namespace-mismatch")
    assert "system:serviceaccount:stg:" in out["fix"]


def test_readme_walkthrough_grant_then_project_file_job_runs(server: Server, tmp_path: Path) -> None:
    """The README: grant dev and prd, a rolebridge.yaml whose aws_role is ...role/<project with - >-{{ env }},
    then `job run --environment prd` assumes the granted role on the first try."""
    server.cluster("grant-readme", "310000000003")
    server.account("310000000004")
    rb("grant", "--cluster", "grant-readme", "--project", "cross_account_sample", "--environment", "dev",
       "--environment", "prd", "--account", "310000000004", "--apply", data_dir=server.data_dir)
    (tmp_path / "rolebridge.yaml").write_text(f"""
project: cross_account_sample
aws_role: "arn:aws:iam::310000000004:role/cross-account-sample-{{{{ env }}}}"
jobs:
  whoami:
    command: {json.dumps(JOB)}
""")
    rb("job", "sync", str(tmp_path), data_dir=server.data_dir)
    for env in ("dev", "prd"):
        out = rb("job", "run", "cross_account_sample/whoami", "--environment", env, "--cluster", "grant-readme",
                 data_dir=server.data_dir, env=server.env())
        assert f"arn:aws:sts::310000000004:assumed-role/cross-account-sample-{env}/" in out.stdout, out.stdout


def test_default_role_names_and_help_agree() -> None:
    assert [p.role_name for p in make_plans(FACTS, "cross_account_sample", ["dev", "prd"], "222222222222")] == [
        "cross-account-sample-dev", "cross-account-sample-prd"]
    assert [p.role_name for p in make_plans(FACTS, "cross_account_sample", ["*"], "222222222222")] == [
        "cross-account-sample"]
    assert [p.role_name for p in make_plans(FACTS, "a_b", ["dev", "prd"], "222222222222", role_name="r_1")] == [
        "r_1"]
    help_text = subprocess.run([str(Path(sys.executable).parent / "rolebridge"), "grant", "--help"],
                               capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}).stdout
    assert "cross-account-sample-dev" in " ".join(help_text.split())


def test_trust_policy_is_least_privilege() -> None:
    plan = make_plan(FACTS, "a_b", ["dev"], "222222222222")
    st = plan.trust_policy["Statement"][0]
    assert plan.role_name == "a-b-dev"
    assert plan.role_arn == "arn:aws:iam::222222222222:role/a-b-dev"
    assert st["Principal"] == {"Federated": "arn:aws:iam::222222222222:oidc-provider/127.0.0.1:8443/oidc/c1"}
    assert st["Condition"] == {
        "StringEquals": {"127.0.0.1:8443/oidc/c1:aud": "sts.amazonaws.com"},
        "StringLike": {"127.0.0.1:8443/oidc/c1:sub": f"system:serviceaccount:dev:a.b-{UUID_PATTERN}"},
    }


@pytest.mark.parametrize("role_name", [None, "shared"])
def test_terraform_parses_and_is_fmt_clean(tmp_path: Path, role_name: str | None) -> None:
    plans = make_plans(FACTS, "cross_account_sample", ["dev", "prd"], "222222222222", role_name=role_name,
                       allows=["s3:GetObject=arn:aws:s3:::b/${aws:username}/*"])
    plan = plans[0]
    text = render.terraform(plans)
    doc = hcl2.loads(text)
    variables = {k: v for d in doc["variable"] for k, v in d.items()}
    url_var = variables.get("oidc_provider_url") or variables.get('"oidc_provider_url"')
    arn_var = variables.get("oidc_provider_arn") or variables.get('"oidc_provider_arn"')
    assert url_var["default"].strip('"') == "https://127.0.0.1:8443/oidc/c1"
    assert arn_var["default"].strip('"') == plan.provider_arn
    roles = {k.strip('"'): [e.strip('"') for e in v] for k, v in doc["locals"][0]["roles"].items()}
    assert roles == ({"cross-account-sample-dev": ["dev"], "cross-account-sample-prd": ["prd"]} if role_name is None
                     else {"shared": ["dev", "prd"]})
    data = json.dumps(doc["data"])
    assert "StringLike" in data and "StringEquals" in data and "Federated" in data
    assert "replace(local.project_name" in data and "local.uuid_pattern" in data and "each.value" in data
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


def test_cloudformation_and_cli_for_a_role_per_environment() -> None:
    plans = make_plans(FACTS, "p_q", ["dev", "prd"], "222222222222", allows=["s3:GetObject=arn:aws:s3:::b/*"])
    cfn = render.cloudformation(plans)
    assert [k for k in cfn["Resources"] if k.startswith("Role")] == ["RoleDev", "RolePrd"]
    assert cfn["Resources"]["RolePrd"]["Properties"]["RoleName"] == "p-q-prd"
    assert cfn["Resources"]["RolePrd"]["Properties"]["AssumeRolePolicyDocument"] == plans[1].trust_policy
    assert sorted(cfn["Outputs"]) == ["RoleArnDev", "RoleArnPrd"]
    cli = render.aws_cli(plans)
    assert cli.count("aws iam create-open-id-connect-provider") == 1
    assert "--role-name p-q-dev" in cli and "--role-name p-q-prd" in cli
    assert cli.count("aws iam put-role-policy") == 2


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
