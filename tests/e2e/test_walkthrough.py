"""The walkthrough end to end against a real server: boto3 sets up account B, jobs prove who they are."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rolebridge.platform.demo import walkthrough_trust_policy

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from conftest import AWS_CLI, ROLEBRIDGE

CLUSTER_ACCOUNT, DATA_ACCOUNT = "510000000001", "520000000002"
PROJECT = "cross_account_sample"


@pytest.fixture(scope="module")
def setup(server):
    cluster = server.cluster("wt", CLUSTER_ACCOUNT)
    iam = server.client("iam", DATA_ACCOUNT)
    provider_arn = iam.create_open_id_connect_provider(
        Url=cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"], ThumbprintList=[cluster["thumbprint"]],
    )["OpenIDConnectProviderArn"]
    trust = walkthrough_trust_policy(provider_arn, cluster["oidc_url"], "dev", PROJECT)
    role = iam.create_role(RoleName="cross-account-sample-dev", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    return {"cluster": cluster, "provider_arn": provider_arn, "role_arn": role["Arn"], "iam": iam}


def run_job(server, environment: str, aws_role: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROLEBRIDGE, "run", "--cluster", "wt", "--project", PROJECT, "--environment", environment,
                           "--aws-role", aws_role, "--data-dir", str(server.data_dir), "--", *command],
                          capture_output=True, text=True, env=server.env(), timeout=120)


def test_provider_as_aws_returns_it(setup) -> None:
    iam, cluster = setup["iam"], setup["cluster"]
    host_path = cluster["oidc_url"].removeprefix("https://")
    assert setup["provider_arn"] == f"arn:aws:iam::{DATA_ACCOUNT}:oidc-provider/{host_path}"
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=setup["provider_arn"])
    assert got["Url"] == host_path  # without the scheme, as AWS returns it
    assert got["ClientIDList"] == ["sts.amazonaws.com"]
    assert got["ThumbprintList"] == [cluster["thumbprint"]]
    listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert {"Arn": setup["provider_arn"]} in listed


def test_job_with_boto3_gets_the_cross_account_role(server, setup) -> None:
    code = ("import boto3; s = boto3.Session(); c = s.get_credentials(); "
            "print(c.method); print(boto3.client('sts').get_caller_identity()['Arn'])")
    out = run_job(server, "dev", setup["role_arn"], sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    method, arn = out.stdout.split()
    assert method == "assume-role-with-web-identity"
    assert arn.startswith(f"arn:aws:sts::{DATA_ACCOUNT}:assumed-role/cross-account-sample-dev/cross.account.sample-")


def test_job_with_the_aws_cli(server, setup) -> None:
    out = run_job(server, "dev", setup["role_arn"], AWS_CLI, "sts", "get-caller-identity", "--output", "json")
    assert out.returncode == 0, out.stderr
    ident = json.loads(out.stdout)
    assert ident["Account"] == DATA_ACCOUNT
    assert ident["Arn"].startswith(f"arn:aws:sts::{DATA_ACCOUNT}:assumed-role/cross-account-sample-dev/")
    assert ident["UserId"].startswith("AROA")


def test_job_sees_standard_variables_and_a_private_token_file(server, setup) -> None:
    code = ("import os, stat, json; f = os.environ['AWS_WEB_IDENTITY_TOKEN_FILE']; "
            "print(json.dumps({k: os.environ.get(k) for k in ['AWS_ROLE_ARN', 'AWS_ROLE_SESSION_NAME', "
            "'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ENDPOINT_URL_STS', 'AWS_CA_BUNDLE', 'AWS_ACCESS_KEY_ID']} "
            "| {'mode': oct(stat.S_IMODE(os.stat(f).st_mode)), 'file': f}))")
    out = run_job(server, "dev", setup["role_arn"], sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["AWS_ROLE_ARN"] == setup["role_arn"]
    assert seen["AWS_ROLE_SESSION_NAME"].startswith("cross.account.sample-")
    assert seen["AWS_REGION"] == seen["AWS_DEFAULT_REGION"] == "us-east-1"
    assert seen["AWS_ENDPOINT_URL_STS"] == server.url
    assert seen["AWS_CA_BUNDLE"] == server.ca_bundle
    assert seen["AWS_ACCESS_KEY_ID"] is None
    assert seen["mode"] == "0o600"
    import os

    assert not os.path.exists(seen["file"]), "the token file must be removed after the run"


def test_exit_status_is_the_jobs(server, setup) -> None:
    out = run_job(server, "dev", setup["role_arn"], sys.executable, "-c", "raise SystemExit(7)")
    assert out.returncode == 7


def test_other_environment_is_refused_with_a_reason(server, setup) -> None:
    out = run_job(server, "prd", setup["role_arn"], AWS_CLI, "sts", "get-caller-identity")
    assert out.returncode != 0
    assert "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity" in out.stderr
    assert "system:serviceaccount:prd:cross.account.sample-" in out.stderr
    assert ":sub" in out.stderr


def test_bare_role_name_resolves_in_the_clusters_account(server, setup) -> None:
    out = run_job(server, "dev", "cross-account-sample-dev", AWS_CLI, "sts", "get-caller-identity")
    assert out.returncode != 0
    assert f"arn:aws:iam::{CLUSTER_ACCOUNT}:role/cross-account-sample-dev" in out.stderr
    assert "full ARN" in out.stderr


def test_temporary_credentials_expire(server, setup) -> None:
    """GetCallerIdentity with expired temporary credentials is refused with ExpiredToken."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from rolebridge.bootstrap import open_services
    from rolebridge.caller import Caller
    from rolebridge.sts import credentials

    services = open_services(str(server.data_dir))
    caller = Caller(account_id=DATA_ACCOUNT, arn=f"arn:aws:sts::{DATA_ACCOUNT}:assumed-role/x/y", user_id="AROAX:y",
                    kind="assumed-role", access_key_id="", role_arn=setup["role_arn"], role_name="x",
                    session_name="y")
    issued, _ = credentials.issue(services.server_key, caller, expiration=1.0)  # long expired
    sts = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                       aws_access_key_id=issued.access_key_id, aws_secret_access_key=issued.secret_access_key,
                       aws_session_token=issued.session_token)
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "ExpiredToken"
    # and a token that was tampered with is not ours
    bad = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                       aws_access_key_id=issued.access_key_id, aws_secret_access_key=issued.secret_access_key,
                       aws_session_token=issued.session_token[:-4] + "AAAA")
    with pytest.raises(ClientError) as info:
        bad.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"
    unsigned = boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                            config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError) as info:
        unsigned.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "MissingAuthenticationToken"
