"""The walkthrough's data: a bucket in the data account, an input object, and the role policy.

``rolebridge demo`` calls ``setup_demo_data`` with IAM and S3 clients signed by the data account
(222222222222 in the walkthrough): it creates the bucket with ``input/`` data and attaches to the
job's role (``cross-account-sample-dev``) an inline policy that lets it read ``input/``, list the
bucket, and write under ``results/`` only. ``JOB_SCRIPT`` is what the demo job runs with plain
boto3 (the job's environment needs ``AWS_ENDPOINT_URL_S3`` pointing at the server): it reads the
input, writes its result under ``results/``, and tries ``input/`` to show the refusal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DEFAULT_BUCKET = "cross-account-sample-data"
DEFAULT_ROLE = "cross-account-sample-dev"
POLICY_NAME = "cross-account-sample-data-access"
INPUT_KEY = "input/numbers.csv"
INPUT_BODY = b"n\n" + b"".join(f"{i}\n".encode() for i in range(1, 101))


@dataclass(frozen=True)
class DemoData:
    bucket: str
    input_key: str
    result_prefix: str
    refused_prefix: str
    role_name: str
    policy_name: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def role_policy(bucket: str) -> dict[str, Any]:
    """Read ``input/``, list the bucket, write ``results/`` only (``input/`` writes stay refused)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadInput", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/input/*"},
        {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringLike": {"s3:prefix": ["input/*", "results/*", "input/", "results/", ""]}}},
        {"Sid": "WriteResults", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
         "Resource": f"arn:aws:s3:::{bucket}/results/*"},
    ]}


def setup_demo_data(iam: Any, s3: Any, *, bucket: str = DEFAULT_BUCKET, role_name: str = DEFAULT_ROLE) -> DemoData:
    """Idempotent: an existing bucket owned by the caller is reused, the input rewritten, the policy put."""
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket=bucket, Key=INPUT_KEY, Body=INPUT_BODY, ContentType="text/csv")
    iam.put_role_policy(RoleName=role_name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(role_policy(bucket)))
    return DemoData(bucket, INPUT_KEY, "results/", "input/", role_name, POLICY_NAME)


JOB_SCRIPT = '''
import sys, boto3, botocore.exceptions
bucket = sys.argv[1]
s3 = boto3.client("s3")
rows = s3.get_object(Bucket=bucket, Key="input/numbers.csv")["Body"].read().decode().split()[1:]
total = sum(int(r) for r in rows)
s3.put_object(Bucket=bucket, Key="results/sum.txt", Body=str(total).encode())
print(f"read {len(rows)} rows from s3://{bucket}/input/numbers.csv, wrote sum={total} to results/sum.txt")
try:
    s3.put_object(Bucket=bucket, Key="input/tampered.csv", Body=b"x")
    print("UNEXPECTED: write to input/ was allowed")
    sys.exit(1)
except botocore.exceptions.ClientError as exc:
    print(f"write to input/ refused: {exc.response['Error']['Code']}: {exc.response['Error']['Message']}")
'''
