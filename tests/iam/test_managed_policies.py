"""Managed policies through boto3 against a live server: versions, listing, attachment, deletion rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "310000000001"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]})


def doc(action: str = "s3:GetObject") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def iam(server: Any) -> Any:
    return server.client("iam", ACCOUNT)


def test_create_get_and_versions(iam: Any) -> None:
    created = iam.create_policy(PolicyName="mp-versions", Path="/team/", PolicyDocument=doc(),
                                Description="for tests", Tags=[{"Key": "k", "Value": "v"}])["Policy"]
    arn = created["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/team/mp-versions"
    assert created["PolicyId"].startswith("ANPA") and len(created["PolicyId"]) == 21
    assert (created["DefaultVersionId"], created["AttachmentCount"], created["IsAttachable"]) == ("v1", 0, True)
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    assert got["Description"] == "for tests" and got["Tags"] == [{"Key": "k", "Value": "v"}]

    v1 = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert v1["IsDefaultVersion"] is True and v1["Document"] == json.loads(doc())

    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc("s3:PutObject"))["PolicyVersion"]
    assert (v2["VersionId"], v2["IsDefaultVersion"]) == ("v2", False)
    v3 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc("s3:ListBucket"), SetAsDefault=True)
    assert v3["PolicyVersion"]["IsDefaultVersion"] is True
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    for action in ("s3:A", "s3:B"):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(action))
    with pytest.raises(ClientError) as exc:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc("s3:C"))
    assert error(exc) == ("LimitExceeded", "A managed policy can have up to 5 versions. Before you create a new "
                                           "version, you must delete an existing version.")
    listed = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in listed] == [
        ("v1", False), ("v2", False), ("v3", True), ("v4", False), ("v5", False)]

    with pytest.raises(ClientError) as exc:
        iam.delete_policy_version(PolicyArn=arn, VersionId="v3")
    assert error(exc) == ("DeleteConflict", "Cannot delete the default version of a policy.")
    iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    with pytest.raises(ClientError) as exc:
        iam.get_policy_version(PolicyArn=arn, VersionId="v2")
    assert error(exc) == ("NoSuchEntity", f"Policy {arn} version v2 does not exist or is not attachable.")
    # version numbers are never reused
    assert iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc("s3:D"))["PolicyVersion"]["VersionId"] == "v6"

    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert error(exc)[0] == "DeleteConflict" and "more than one version" in error(exc)[1]
    for v in ("v1", "v4", "v5", "v6"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=v)
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.get_policy(PolicyArn=arn)
    assert error(exc) == ("NoSuchEntity", f"Policy {arn} does not exist or is not attachable.")


def test_create_policy_refusals(iam: Any) -> None:
    iam.create_policy(PolicyName="mp-dup", PolicyDocument=doc())
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName="MP-DUP", PolicyDocument=doc())
    assert error(exc) == ("EntityAlreadyExists", "A policy called MP-DUP already exists. Duplicate names are "
                                                 "not allowed.")
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName="mp-bad", PolicyDocument='{"Version": "2012-10-17"}')
    assert error(exc)[0] == "MalformedPolicyDocument"
    big = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": f"s3:Get{'x' * 40}{i}", "Resource": "*"} for i in range(120)]})
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName="mp-big", PolicyDocument=big)
    assert error(exc) == ("LimitExceeded", "Cannot exceed quota for PolicySize: 6144")


def test_attach_detach_and_delete_conflicts(iam: Any) -> None:
    arn = iam.create_policy(PolicyName="mp-attach", PolicyDocument=doc())["Policy"]["Arn"]
    iam.create_role(RoleName="mp-attach-role", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="mp-attach-role", PolicyArn=arn)
    iam.attach_role_policy(RoleName="mp-attach-role", PolicyArn=arn)  # idempotent, as in AWS
    iam.attach_role_policy(RoleName="mp-attach-role", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    attached = iam.list_attached_role_policies(RoleName="mp-attach-role")
    assert attached["AttachedPolicies"] == [
        {"PolicyName": "mp-attach", "PolicyArn": arn},
        {"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]
    assert attached["IsTruncated"] is False
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1

    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert error(exc) == ("DeleteConflict", "Cannot delete a policy attached to entities.")
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName="mp-attach-role")
    assert error(exc) == ("DeleteConflict", "Cannot delete entity, must detach all policies first.")

    missing = f"arn:aws:iam::{ACCOUNT}:policy/nope"
    with pytest.raises(ClientError) as exc:
        iam.attach_role_policy(RoleName="mp-attach-role", PolicyArn=missing)
    assert error(exc) == ("NoSuchEntity", f"Policy {missing} does not exist or is not attachable.")
    with pytest.raises(ClientError) as exc:
        iam.attach_role_policy(RoleName="no-such-role", PolicyArn=arn)
    assert error(exc) == ("NoSuchEntity", "The role with name no-such-role cannot be found.")
    with pytest.raises(ClientError) as exc:
        iam.attach_role_policy(RoleName="mp-attach-role", PolicyArn="arn:aws:iam::aws:policy/NotAPolicy")
    assert error(exc)[0] == "NoSuchEntity"
    with pytest.raises(ClientError) as exc:
        iam.detach_role_policy(RoleName="mp-attach-role", PolicyArn=missing)
    assert error(exc) == ("NoSuchEntity", f"Policy {missing} was not found.")

    iam.detach_role_policy(RoleName="mp-attach-role", PolicyArn=arn)
    iam.detach_role_policy(RoleName="mp-attach-role", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert iam.list_attached_role_policies(RoleName="mp-attach-role")["AttachedPolicies"] == []
    iam.delete_policy(PolicyArn=arn)
    iam.delete_role(RoleName="mp-attach-role")


def test_attach_quota(iam: Any) -> None:
    iam.create_role(RoleName="mp-quota-role", AssumeRolePolicyDocument=TRUST)
    arns = [iam.create_policy(PolicyName=f"mp-quota-{i}", PolicyDocument=doc())["Policy"]["Arn"] for i in range(11)]
    for arn in arns[:10]:
        iam.attach_role_policy(RoleName="mp-quota-role", PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.attach_role_policy(RoleName="mp-quota-role", PolicyArn=arns[10])
    assert error(exc) == ("LimitExceeded", "Cannot exceed quota for PoliciesPerRole: 10")
    page = iam.list_attached_role_policies(RoleName="mp-quota-role", MaxItems=4)
    assert len(page["AttachedPolicies"]) == 4 and page["IsTruncated"] is True
    names = [p["PolicyName"] for p in iam.get_paginator("list_attached_role_policies").paginate(
        RoleName="mp-quota-role", PaginationConfig={"PageSize": 3}).build_full_result()["AttachedPolicies"]]
    assert sorted(names) == sorted(f"mp-quota-{i}" for i in range(10))


def test_aws_managed_policies_are_read_only(iam: Any) -> None:
    arn = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    assert policy["PolicyName"] == "AmazonS3ReadOnlyAccess" and policy["Path"] == "/"
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    assert {"s3:Get*", "s3:List*"} <= set(version["Document"]["Statement"][0]["Action"])
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]] == [policy["DefaultVersionId"]]
    for call in (lambda: iam.delete_policy(PolicyArn=arn),
                 lambda: iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc())):
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc)[0] == "AccessDenied"
    job = iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/job-function/ViewOnlyAccess")["Policy"]
    assert job["Path"] == "/job-function/"


def test_list_policies_scope_only_attached_path_prefix_and_pagination(iam: Any) -> None:
    iam.create_role(RoleName="mp-list-role", AssumeRolePolicyDocument=TRUST)
    local = [iam.create_policy(PolicyName=f"mp-list-{i}", Path="/list/", PolicyDocument=doc())["Policy"]["Arn"]
             for i in range(5)]
    iam.attach_role_policy(RoleName="mp-list-role", PolicyArn=local[0])
    iam.attach_role_policy(RoleName="mp-list-role", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")

    aws = iam.list_policies(Scope="AWS", MaxItems=1000)["Policies"]
    assert {"AdministratorAccess", "ReadOnlyAccess", "AmazonS3ReadOnlyAccess"} <= {p["PolicyName"] for p in aws}
    assert all(p["Arn"].startswith("arn:aws:iam::aws:policy/") for p in aws)
    assert "Description" not in aws[0]

    prefixed = iam.list_policies(Scope="Local", PathPrefix="/list/")["Policies"]
    assert sorted(p["Arn"] for p in prefixed) == sorted(local)

    attached = iam.list_policies(OnlyAttached=True)["Policies"]
    assert {p["Arn"] for p in attached} >= {local[0], "arn:aws:iam::aws:policy/AdministratorAccess"}
    assert local[1] not in {p["Arn"] for p in attached}
    admin = next(p for p in attached if p["PolicyName"] == "AdministratorAccess")
    assert admin["AttachmentCount"] == 1
    local_attached = iam.list_policies(Scope="Local", OnlyAttached=True, PathPrefix="/list/")["Policies"]
    assert [p["Arn"] for p in local_attached] == [local[0]]

    first = iam.list_policies(Scope="Local", PathPrefix="/list/", MaxItems=2)
    assert len(first["Policies"]) == 2 and first["IsTruncated"] is True and first["Marker"]
    everything = iam.get_paginator("list_policies").paginate(
        Scope="Local", PathPrefix="/list/", PaginationConfig={"PageSize": 2}).build_full_result()["Policies"]
    assert sorted(p["Arn"] for p in everything) == sorted(local)
    with pytest.raises(ClientError) as exc:
        iam.list_policies(Marker="not-a-marker")
    assert error(exc)[0] == "ValidationError"


def test_permissions_boundary(iam: Any) -> None:
    arn = iam.create_policy(PolicyName="mp-boundary", PolicyDocument=doc("iam:*"))["Policy"]["Arn"]
    iam.create_role(RoleName="mp-bounded", AssumeRolePolicyDocument=TRUST, PermissionsBoundary=arn)
    role = iam.get_role(RoleName="mp-bounded")["Role"]
    assert role["PermissionsBoundary"] == {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                        "PermissionsBoundaryArn": arn}
    assert iam.get_policy(PolicyArn=arn)["Policy"]["PermissionsBoundaryUsageCount"] == 1
    assert arn in {p["Arn"] for p in iam.list_policies(PolicyUsageFilter="PermissionsBoundary")["Policies"]}
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert error(exc) == ("DeleteConflict", "Cannot delete a policy attached to entities.")

    missing = f"arn:aws:iam::{ACCOUNT}:policy/missing-boundary"
    with pytest.raises(ClientError) as exc:
        iam.put_role_permissions_boundary(RoleName="mp-bounded", PermissionsBoundary=missing)
    assert error(exc) == ("NoSuchEntity", f"Scope ARN: {missing} does not exist or is not attachable.")
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName="mp-bounded-2", AssumeRolePolicyDocument=TRUST, PermissionsBoundary=missing)
    assert error(exc)[0] == "NoSuchEntity"

    iam.put_role_permissions_boundary(RoleName="mp-bounded",
                                      PermissionsBoundary="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    assert iam.get_role(RoleName="mp-bounded")["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == \
        "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
    iam.delete_role_permissions_boundary(RoleName="mp-bounded")
    assert "PermissionsBoundary" not in iam.get_role(RoleName="mp-bounded")["Role"]
    iam.delete_policy(PolicyArn=arn)


def test_policy_tags(iam: Any) -> None:
    arn = iam.create_policy(PolicyName="mp-tags", PolicyDocument=doc())["Policy"]["Arn"]
    iam.tag_policy(PolicyArn=arn, Tags=[{"Key": "team", "Value": "data"}, {"Key": "env", "Value": "dev"}])
    iam.untag_policy(PolicyArn=arn, TagKeys=["ENV"])
    assert iam.list_policy_tags(PolicyArn=arn)["Tags"] == [{"Key": "team", "Value": "data"}]


def test_account_summary(server: Any) -> None:
    iam = server.client("iam", "310000000002")
    before = iam.get_account_summary()["SummaryMap"]
    assert before["Roles"] == 0 and before["Policies"] == 0 and before["RolesQuota"] >= 1000
    assert before["AttachedPoliciesPerRoleQuota"] == 10 and before["VersionsPerPolicyQuota"] == 5
    iam.create_role(RoleName="summary-role", AssumeRolePolicyDocument=TRUST)
    iam.create_policy(PolicyName="summary-policy", PolicyDocument=doc())
    after = iam.get_account_summary()["SummaryMap"]
    assert (after["Roles"], after["Policies"], after["AccountAccessKeysPresent"]) == (1, 1, 1)
