"""Account guardrails (SCP style) against a live server, as AWS applies SCPs (aws-semantics 4.6-4.8):

- every principal of a guarded account, its root (admin keys) and its role sessions alike, may do
  only what some guardrail allows, and any guardrail Deny wins; other accounts are untouched;
- the denial is AWS's sentence naming the policy type ("... with an explicit deny in a service
  control policy", "... because no service control policy allows the X action");
- AssumeRoleWithWebIdentity's trust evaluation is not gated (the caller is no AWS principal), but
  the session it yields is limited from its first call; AssumeRole is gated on the caller's side;
- `rolebridge account guardrail put|list|delete` take effect on a running server at once (the
  lookup cache is invalidated), refuse invalid SCPs, and migration 0004 upgrades a 0003 database.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, inspect, text

from conftest import ROLEBRIDGE, rb
from s3.s3_helpers import role_session, s3_client

GUARDED = "972000000001"
UNGUARDED = "972000000002"
S3_ACCOUNT = "972000000003"
CALLER = "972000000004"
CLI_ACCOUNT = "972000000005"

FULL_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _doc(effect: str, action: str | list[str]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": action, "Resource": "*"}]}


def put(server: Any, account: str, name: str, document: dict[str, Any] | str, *, check: bool = True) -> Any:
    path = server.data_dir / f"guardrail-{account}-{name}.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=2))
    return rb("account", "guardrail", "put", account, name, str(path), data_dir=server.data_dir, check=check)


def delete(server: Any, account: str, name: str) -> None:
    rb("account", "guardrail", "delete", account, name, data_dir=server.data_dir)


Attach = Callable[[str, str, dict[str, Any]], None]


@pytest.fixture
def attach(server: Any) -> Iterator[Attach]:
    """Put guardrails on the shared server's accounts; whatever a test leaves attached is deleted
    afterwards, so a failing test cannot leave an account locked for the tests after it."""
    attached: list[tuple[str, str]] = []

    def put_one(account: str, name: str, document: dict[str, Any]) -> None:
        put(server, account, name, document)
        attached.append((account, name))

    yield put_one
    for account, name in attached:
        rb("account", "guardrail", "delete", account, name, data_dir=server.data_dir, check=False)


def put_stdin(data: Path, account: str, name: str, document: str, *extra: str) -> str:
    """`put ACCOUNT NAME -` with the document on stdin."""
    proc = subprocess.run([ROLEBRIDGE, "account", "guardrail", "put", account, name, "-", *extra, "--data-dir",
                           str(data)], input=document, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "ROLEBRIDGE_DATABASE_URL"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def denial(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    """(code, message without the encoded authorization message)."""
    err = exc.value.response["Error"]
    return err["Code"], err["Message"].split(". Encoded authorization failure message:")[0]


def admin_role_session(server: Any, account: str, role: str) -> Any:
    """An IAM client for a session of a role that may do anything in IAM (trusting the account root)."""
    iam = server.client("iam", account)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=role, PolicyName="iam-admin", PolicyDocument=json.dumps(_doc("Allow", "iam:*")))
    creds = server.client("sts", account).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="ops")["Credentials"]
    return server.client("iam", aws_access_key_id=creds["AccessKeyId"],
                         aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def test_guardrail_deny_binds_root_and_role_sessions_of_its_account_only(server: Any, attach: Attach) -> None:
    session_iam = admin_role_session(server, GUARDED, "gr-admin")
    root_iam = server.client("iam", GUARDED)
    other_iam = server.client("iam", UNGUARDED)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{GUARDED}:root"}, "Action": "sts:AssumeRole"}]})
    # AWS's shape: FullAWSAccess plus a deny SCP
    attach(GUARDED, "full-access", FULL_ACCESS)
    attach(GUARDED, "no-new-roles", _doc("Deny", "iam:CreateRole"))

    for who, iam in ((f"arn:aws:iam::{GUARDED}:root", root_iam),
                     (f"arn:aws:sts::{GUARDED}:assumed-role/gr-admin/ops", session_iam)):
        with pytest.raises(ClientError) as exc:
            iam.create_role(RoleName="gr-blocked", AssumeRolePolicyDocument=trust)
        assert denial(exc) == ("AccessDenied", f"User: {who} is not authorized to perform: iam:CreateRole on "
                               f"resource: arn:aws:iam::{GUARDED}:role/gr-blocked with an explicit deny in a "
                               "service control policy")
        iam.list_roles()  # what the guardrails allow still works
    # the explanation names the guardrail (DecodeAuthorizationMessage, by the account root)
    encoded = exc.value.response["Error"]["Message"].split("Encoded authorization failure message: ")[1]
    decoded = json.loads(server.client("sts", GUARDED).decode_authorization_message(
        EncodedMessage=encoded)["DecodedMessage"])
    matched = decoded["matchedStatements"]["items"]
    assert [(m["policy"], m["policyType"], m["effect"]) for m in matched] == [("guardrail no-new-roles", "scp", "DENY")]

    other_iam.create_role(RoleName="gr-elsewhere", AssumeRolePolicyDocument=trust)  # another account: untouched

    delete(server, GUARDED, "no-new-roles")  # no restart: the next request sees it
    root_iam.create_role(RoleName="gr-after", AssumeRolePolicyDocument=trust)
    session_iam.delete_role(RoleName="gr-after")


def test_guardrail_allowing_only_get_object_limits_sessions_and_not_the_web_identity_trust(
        server: Any, attach: Attach) -> None:
    cluster = server.cluster("gr-cluster", S3_ACCOUNT)
    root_s3 = s3_client(server, account=S3_ACCOUNT)
    root_s3.create_bucket(Bucket="gr-bucket")
    root_s3.put_object(Bucket="gr-bucket", Key="a.txt", Body=b"hello")
    iam = server.client("iam", S3_ACCOUNT)
    role_arn, _ = role_session(server, cluster=cluster, account=S3_ACCOUNT, role_name="gr-s3",
                               namespace="gr", service_account="job-1")
    iam.put_role_policy(RoleName="gr-s3", PolicyName="s3-all", PolicyDocument=json.dumps(_doc("Allow", "s3:*")))

    attach(S3_ACCOUNT, "read-only", _doc("Allow", "s3:GetObject"))
    # the assume itself is not gated (the guardrail allows no sts: action at all) ...
    sts = server.client("sts", aws_access_key_id="x", aws_secret_access_key="x")
    out = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="job-2",
                                            WebIdentityToken=server.token("gr-cluster", "gr", "job-2"))
    creds = {"aws_access_key_id": out["Credentials"]["AccessKeyId"],
             "aws_secret_access_key": out["Credentials"]["SecretAccessKey"],
             "aws_session_token": out["Credentials"]["SessionToken"]}
    s3 = s3_client(server, creds=creds)
    assert s3.get_object(Bucket="gr-bucket", Key="a.txt")["Body"].read() == b"hello"
    # ... but what the session does is
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="gr-bucket", Key="b.txt", Body=b"x")
    assert denial(exc) == ("AccessDenied", f"User: arn:aws:sts::{S3_ACCOUNT}:assumed-role/gr-s3/job-2 is not "
                           "authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::gr-bucket/b.txt\" "
                           "because no service control policy allows the s3:PutObject action")
    with pytest.raises(ClientError) as exc:  # the account root too
        root_s3.put_object(Bucket="gr-bucket", Key="b.txt", Body=b"x")
    assert "because no service control policy allows the s3:PutObject action" in denial(exc)[1]
    with pytest.raises(ClientError) as exc:  # the owner root's bucket-policy shortcut as well
        root_s3.put_bucket_policy(Bucket="gr-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::gr-bucket"}]}))
    assert denial(exc) == ("AccessDenied", f"User: arn:aws:iam::{S3_ACCOUNT}:root is not authorized to perform: "
                           "s3:PutBucketPolicy on resource: \"arn:aws:s3:::gr-bucket\" because no service control "
                           "policy allows the s3:PutBucketPolicy action")
    with pytest.raises(ClientError) as exc:  # and IAM, for the session
        server.client("iam", **creds).list_roles()
    assert "because no service control policy allows the iam:ListRoles action" in denial(exc)[1]

    delete(server, S3_ACCOUNT, "read-only")
    s3.put_object(Bucket="gr-bucket", Key="b.txt", Body=b"x")  # restored without a restart
    root_s3.put_object(Bucket="gr-bucket", Key="c.txt", Body=b"x")


def test_assume_role_is_gated_on_the_callers_side(server: Any, attach: Attach) -> None:
    """The caller's account's guardrails decide its side of AssumeRole; the role's account's do not."""
    iam = server.client("iam", GUARDED)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": [
        f"arn:aws:iam::{GUARDED}:root", f"arn:aws:iam::{CALLER}:root"]}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="gr-target", AssumeRolePolicyDocument=json.dumps(trust))
    role_arn = f"arn:aws:iam::{GUARDED}:role/gr-target"
    attach(GUARDED, "no-assume", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}]})
    with pytest.raises(ClientError) as exc:
        server.client("sts", GUARDED).assume_role(RoleArn=role_arn, RoleSessionName="gr-s")
    assert denial(exc) == ("AccessDenied", f"User: arn:aws:iam::{GUARDED}:root is not authorized to perform: "
                           f"sts:AssumeRole on resource: {role_arn} with an explicit deny in a service control policy")
    # another account's principal: the role's account's guardrails do not gate it, its own do
    server.client("sts", CALLER).assume_role(RoleArn=role_arn, RoleSessionName="gr-s")
    attach(CALLER, "only-s3", _doc("Allow", "s3:*"))
    with pytest.raises(ClientError) as exc:
        server.client("sts", CALLER).assume_role(RoleArn=role_arn, RoleSessionName="gr-s")
    assert denial(exc)[1].endswith("because no service control policy allows the sts:AssumeRole action")
    server.client("sts", CALLER).get_caller_identity()  # needs no permission, as in AWS


@pytest.mark.parametrize(("document", "expected"), [
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                              "Resource": "*"}]},
     "MalformedPolicyDocument: Policy document should not specify a principal."),
    (json.dumps(_doc("Deny", "s3:DeleteObject")) + " " * 5121,
     "LimitExceeded: Cannot exceed quota for PolicySizeSCP: 5120"),
    ({"Version": "2008-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]},
     "MalformedPolicyDocument: Policy document must be version 2012-10-17 or greater."),
    ("{not json", "MalformedPolicyDocument: Syntax errors in policy."),
], ids=["principal", "too-long", "old-version", "not-json"])
def test_invalid_scp_documents_are_refused(server: Any, document: Any, expected: str) -> None:
    server.account(CLI_ACCOUNT)
    proc = put(server, CLI_ACCOUNT, "bad", document, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == f"error: {expected}", proc.stderr
    listed = rb("account", "guardrail", "list", CLI_ACCOUNT, "--json", data_dir=server.data_dir)
    assert json.loads(listed.stdout) == []


def test_cli_put_list_delete(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rb("account", "create", CLI_ACCOUNT, data_dir=data)
    deny = json.dumps(_doc("Deny", "iam:*"))
    assert json.loads(put_stdin(data, CLI_ACCOUNT, "no-iam", deny, "--json"))["created"] is True
    again = put_stdin(data, CLI_ACCOUNT, "no-iam", deny)
    assert again.strip() == f"guardrail no-iam replaced on account {CLI_ACCOUNT}"
    path = tmp_path / "full.json"
    path.write_text(json.dumps(FULL_ACCESS))
    deny_path = tmp_path / "deny.json"
    deny_path.write_text(deny)
    deny_only = rb("account", "guardrail", "put", CLI_ACCOUNT, "no-iam", str(deny_path), data_dir=data)
    assert "no guardrail of account" in deny_only.stderr and "FullAWSAccess" in deny_only.stderr
    with_allow = rb("account", "guardrail", "put", CLI_ACCOUNT, "full-access", str(path), data_dir=data)
    assert "warning" not in with_allow.stderr  # an allow-list that allows something: nothing to warn of

    listed = json.loads(rb("account", "guardrail", "list", CLI_ACCOUNT, "--json", data_dir=data).stdout)
    assert [(g["account_id"], g["name"], g["document"]) for g in listed] == [
        (CLI_ACCOUNT, "full-access", FULL_ACCESS), (CLI_ACCOUNT, "no-iam", json.loads(deny))]
    assert all(g["created_at"] <= g["updated_at"] <= time.time() for g in listed)
    table = rb("account", "guardrail", "list", CLI_ACCOUNT, data_dir=data).stdout.splitlines()
    assert table[0].split() == ["NAME", "UPDATED", "CHARACTERS"]
    assert [line.split()[0] for line in table[1:]] == ["full-access", "no-iam"]

    for i in range(3):  # five per account, as AWS attaches at most five SCPs to one account
        rb("account", "guardrail", "put", CLI_ACCOUNT, f"extra-{i}", str(path), data_dir=data)
    over = rb("account", "guardrail", "put", CLI_ACCOUNT, "sixth", str(path), data_dir=data, check=False)
    assert over.returncode == 1 and over.stderr.startswith("error: LimitExceeded: ")

    rb("account", "guardrail", "delete", CLI_ACCOUNT, "no-iam", data_dir=data)
    gone = rb("account", "guardrail", "delete", CLI_ACCOUNT, "no-iam", data_dir=data, check=False)
    assert (gone.returncode, gone.stderr.strip()) == (
        1, f"error: NoSuchEntity: Account {CLI_ACCOUNT} has no guardrail named 'no-iam'.")
    # an account that does not exist is an error (a typo must not look like "no guardrails")
    unknown = rb("account", "guardrail", "list", "972000000099", data_dir=data, check=False)
    assert unknown.returncode == 1 and "NoSuchEntity: Account 972000000099 does not exist" in unknown.stderr
    bad_name = rb("account", "guardrail", "put", CLI_ACCOUNT, "no spaces", str(path), data_dir=data, check=False)
    assert bad_name.returncode == 1 and bad_name.stderr.startswith("error: ValidationError: ")
    missing = rb("account", "guardrail", "put", CLI_ACCOUNT, "x", str(tmp_path / "nope.json"), data_dir=data,
                 check=False)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: No such file or directory")


def test_migration_0004_upgrades_a_0003_database(tmp_path: Path) -> None:
    from rolebridge.store.migrate import current_revision, head_revision, schema_diff, upgrade

    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade(engine, "0003")
    assert "account_guardrails" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (account_id, created_at) VALUES ('972000000007', 1)"))
    upgrade(engine)
    with engine.begin() as conn:
        assert current_revision(conn) == head_revision()
        conn.execute(text("INSERT INTO account_guardrails (account_id, name, document, created_at, updated_at) "
                          "VALUES ('972000000007', 'g', '{}', 1, 1)"))
        assert conn.execute(text("SELECT account_id FROM accounts")).scalar() == "972000000007"
    assert schema_diff(engine) == []


def test_lookup_is_cached_and_a_write_in_another_process_is_seen(tmp_path: Path) -> None:
    """The hot path reads guardrails from memory; a put/delete by another process (the CLI) drops
    every process's cached copy, so the next request sees it."""
    from rolebridge.bootstrap import open_services
    from rolebridge.iam.accounts import ensure_account
    from rolebridge.iam.guardrails import delete_guardrail, put_guardrail

    server = open_services(str(tmp_path / "data"))
    cli = open_services(str(tmp_path / "data"))
    ensure_account(cli.store, GUARDED)
    assert server.account_guardrails(GUARDED) == ()
    misses = server.lookups.misses
    assert server.account_guardrails(GUARDED) == ()
    assert server.lookups.misses == misses  # an account without guardrails costs no query either
    put_guardrail(cli, GUARDED, "deny-iam", json.dumps(_doc("Deny", "iam:*")))
    (compiled,) = server.account_guardrails(GUARDED)
    assert compiled.label == "guardrail deny-iam" and compiled.kind.value == "scp"
    assert server.account_guardrails(GUARDED) == (compiled,) and server.lookups.misses == misses + 1
    delete_guardrail(cli, GUARDED, "deny-iam")
    assert server.account_guardrails(GUARDED) == ()
