"""Refused S3 calls in the audit trail, read back with `rolebridge audit --json` as an operator would.

Each refusal is found by the request ID S3 returned (``x-amz-request-id``) and must carry AWS's
error code and message; the whole trail must hold none of the secrets the calls were signed with
(secret keys, the session token, signatures of headers or presigned URLs).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from s3_helpers import error_code, role_session, s3_client

from conftest import rb

ACCOUNT = "963000000001"
BUCKET = "audited-bucket"


def trail(server: Any) -> tuple[str, list[dict[str, Any]]]:
    out = rb("audit", "--json", "--errors", "--limit", "100000", data_dir=server.data_dir).stdout
    return out, json.loads(out)


def refused(call: Any) -> tuple[str, str, str]:
    """(error code, message, request ID) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return error_code(info.value), response["Error"].get("Message", ""), response["ResponseMetadata"]["RequestId"]


def test_refused_s3_calls_are_audited_without_secrets(server: Any) -> None:
    owner = s3_client(server, account=ACCOUNT)
    owner.create_bucket(Bucket=BUCKET)
    owner.put_object(Bucket=BUCKET, Key="report.csv", Body=b"a,b\n")
    cluster = server.cluster("s3-audit", ACCOUNT)
    role_arn, creds = role_session(server, cluster=cluster, account=ACCOUNT, role_name="s3-audited",
                                   namespace="audit", service_account="auditee")
    session = s3_client(server, creds=creds)

    # 1. an identity without any S3 permission reads an object: AccessDenied
    code, message, get_id = refused(lambda: session.get_object(Bucket=BUCKET, Key="report.csv"))
    assert code == "AccessDenied"
    # 2. the same session through a presigned URL (token and signature in the query string)
    presigner = s3_client(server, creds=creds, signature_version="s3v4")
    url = presigner.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "upload.bin"})
    with httpx.Client(verify=server.ca_bundle) as http:
        answer = http.put(url, content=b"payload")
    assert answer.status_code == 403
    presigned_id = answer.headers["x-amz-request-id"]
    # 3. a request signed with a wrong secret: refused before anyone is identified
    keys = server.account(ACCOUNT)
    forged_secret = "F" * 40
    forged = s3_client(server, creds={"aws_access_key_id": keys["access_key_id"], "aws_secret_access_key": forged_secret})
    bad_code, _msg, bad_id = refused(lambda: forged.list_objects_v2(Bucket=BUCKET))
    assert bad_code == "SignatureDoesNotMatch"

    text, events = trail(server)
    by_id = {e["requestID"]: e for e in events}
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/s3-audited/auditee"

    get = by_id[get_id]
    assert get["eventSource"] == "s3.amazonaws.com"
    assert get["eventName"] == "GetObject"
    assert get["errorCode"] == "AccessDenied"
    assert get["errorMessage"] == message == (
        f'User: {session_arn} is not authorized to perform: s3:GetObject on resource: '
        f'"arn:aws:s3:::{BUCKET}/report.csv" because no identity-based policy allows the s3:GetObject action')
    assert get["userIdentity"]["type"] == "AssumedRole"
    assert get["userIdentity"]["arn"] == session_arn
    assert get["userIdentity"]["accessKeyId"] == creds["aws_access_key_id"]
    assert get["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] == role_arn
    assert get["sourceIPAddress"] == "127.0.0.1"
    assert get["requestParameters"] == {"bucketName": BUCKET, "key": "report.csv"}
    assert get["responseElements"] is None

    put = by_id[presigned_id]
    assert (put["eventName"], put["errorCode"]) == ("PutObject", "AccessDenied")
    assert put["userIdentity"]["arn"] == session_arn

    bad = by_id[bad_id]
    assert (bad["eventSource"], bad["errorCode"]) == ("s3.amazonaws.com", "SignatureDoesNotMatch")
    assert "arn" not in bad["userIdentity"]

    signature = url.split("X-Amz-Signature=")[1].split("&")[0]
    for secret in (creds["aws_secret_access_key"], creds["aws_session_token"], keys["secret_access_key"],
                   forged_secret, signature):
        assert secret not in text
    assert "X-Amz-Security-Token" not in text and "Signature=" not in text


def test_object_calls_are_data_events_and_bucket_calls_management_events(server: Any) -> None:
    """CloudTrail: S3 object-level API activity (GetObject, PutObject, DeleteObject, ...) is recorded
    as data events; bucket-level calls (CreateBucket, ...) as management events."""
    owner = s3_client(server, account=ACCOUNT)
    bucket = "audited-categories"
    created = owner.create_bucket(Bucket=bucket)["ResponseMetadata"]["RequestId"]
    put = owner.put_object(Bucket=bucket, Key="k", Body=b"x")["ResponseMetadata"]["RequestId"]
    head = owner.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["RequestId"]
    out = rb("audit", "--json", "--account", ACCOUNT, "--limit", "100000", data_dir=server.data_dir).stdout
    by_id = {e["requestID"]: e for e in json.loads(out)}
    assert (by_id[created]["eventName"], by_id[created]["managementEvent"], by_id[created]["eventCategory"]) == (
        "CreateBucket", True, "Management")
    assert (by_id[put]["eventName"], by_id[put]["managementEvent"], by_id[put]["eventCategory"],
            by_id[put]["readOnly"]) == ("PutObject", False, "Data", False)
    assert (by_id[head]["eventName"], by_id[head]["eventCategory"], by_id[head]["readOnly"]) == (
        "HeadObject", "Data", True)
