"""The walkthrough completed: a job in the cluster's account reads the data account's bucket with
plain boto3 (through `rolebridge run`), writes its result under results/, and is refused input/."""

from __future__ import annotations

import json
import sys

from s3_helpers import s3_client

from conftest import rb
from rolebridge.s3.demo_data import JOB_SCRIPT, setup_demo_data

CLUSTER_ACCOUNT, DATA_ACCOUNT = "955000000001", "955000000002"
BUCKET = "s3demo-walkthrough-data"


def test_job_reads_other_accounts_bucket(server):  # type: ignore[no-untyped-def]
    cluster = server.cluster("s3demo", CLUSTER_ACCOUNT)
    host = cluster["oidc_url"].removeprefix("https://")
    iam = server.client("iam", DATA_ACCOUNT)
    provider = iam.create_open_id_connect_provider(Url=cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"],
                                                   ThumbprintList=[cluster["thumbprint"]])
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": provider["OpenIDConnectProviderArn"]},
        "Condition": {"StringLike": {f"{host}:sub": "system:serviceaccount:dev:cross.account.sample-"
                                                     "????????-????-????-????-????????????"}}}]}
    role_arn = iam.create_role(RoleName="cross-account-sample-dev",
                               AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    s3 = s3_client(server, account=DATA_ACCOUNT)
    data = setup_demo_data(iam, s3, bucket=BUCKET)
    assert setup_demo_data(iam, s3, bucket=BUCKET) == data  # idempotent
    out = rb("run", "--cluster", "s3demo", "--project", "cross_account_sample", "--environment", "dev",
             "--aws-role", role_arn, "--", sys.executable, "-c", JOB_SCRIPT, BUCKET,
             data_dir=server.data_dir, env=server.env(AWS_ENDPOINT_URL_S3=server.url))
    assert "read 100 rows" in out.stdout and "wrote sum=5050 to results/sum.txt" in out.stdout, out.stdout
    assert "write to input/ refused: AccessDenied: User: arn:aws:sts::955000000002:assumed-role/" \
           "cross-account-sample-dev/cross.account.sample-" in out.stdout, out.stdout
    assert 'perform: s3:PutObject on resource: "arn:aws:s3:::s3demo-walkthrough-data/input/tampered.csv" ' \
           "because no identity-based policy allows the s3:PutObject action" in out.stdout
    assert s3.get_object(Bucket=BUCKET, Key="results/sum.txt")["Body"].read() == b"5050"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == ["input/numbers.csv", "results/sum.txt"]
