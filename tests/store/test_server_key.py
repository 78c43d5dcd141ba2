"""The server key: rotation keeps old seals open, tampering and expiry are refused with AWS's codes,
and no secret access key is stored in plaintext anywhere in the data dir."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import Server, rb, start_server, stop_server
from cross_account import cross_account
from rolebridge.caller import Caller
from rolebridge.store.server_key import SealError, ServerKey
from rolebridge.sts import credentials


def test_rotation_keeps_old_seals_open_and_seals_with_the_new_key(tmp_path: Path) -> None:
    before = ServerKey.load(tmp_path)
    old = before.seal(b"old secret", purpose=b"p")
    ServerKey.rotate_file(tmp_path)
    after = ServerKey.load(tmp_path)
    assert after.key_ids == [1, 0]
    assert after.open(old, purpose=b"p") == b"old secret"
    new = after.seal(b"new secret", purpose=b"p")
    assert base64.urlsafe_b64decode(new + "=" * (-len(new) % 4))[0] == 1
    # a process that loaded the file before the rotation picks the new key up when it meets it
    assert before.open(new, purpose=b"p") == b"new secret"
    assert before.key_ids == [1, 0]
    with pytest.raises(SealError, match="authentication failed"):
        after.open(old, purpose=b"other purpose")
    tampered = old[:-2] + ("A" if old[-2] != "A" else "B") + old[-1]
    with pytest.raises(SealError):
        after.open(tampered, purpose=b"p")


def test_env_keys_rotate_newest_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first = ServerKey.rotated_env("")
    monkeypatch.setenv("ROLEBRIDGE_SERVER_KEYS", first)
    sealed = ServerKey.load(tmp_path).seal(b"x", purpose=b"p")
    monkeypatch.setenv("ROLEBRIDGE_SERVER_KEYS", ServerKey.rotated_env(first))
    assert ServerKey.load(tmp_path).open(sealed, purpose=b"p") == b"x"
    assert not (tmp_path / "server.key").exists()  # the environment wins; no key file is made


def _sts(server: Server, creds: dict[str, str]) -> Any:
    return boto3.client("sts", endpoint_url=server.url, verify=server.ca_bundle, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"], config=Config(retries={"max_attempts": 1}))


def _error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("keys")
    server = start_server(root / "data", root / "home")
    setup = cross_account(server, cluster="key-c", cluster_account="818181818101", role_account="818181818102",
                          role_name="keyed")
    token = server.token(setup.cluster, setup.namespace, setup.service_account)
    sts = server.client("sts")
    creds = sts.assume_role_with_web_identity(RoleArn=setup.role_arn, RoleSessionName="before",
                                              WebIdentityToken=token)["Credentials"]
    yield server, setup, token, creds
    stop_server(server)


def test_tokens_sealed_before_rotation_still_work_after(keyed: Any) -> None:
    server, setup, token, creds = keyed
    rotated = rb("db", "rotate-server-key", data_dir=server.data_dir)
    assert "re-sealed 2 stored secret(s)" in rotated.stdout  # the two accounts' admin keys
    assert _sts(server, creds).get_caller_identity()["Arn"].endswith("assumed-role/keyed/before")
    # admin keys were re-sealed with a key the running server had never seen: it reloads the file
    assert server.client("iam", "818181818102").get_role(RoleName="keyed")["Role"]["Arn"] == setup.role_arn
    after = server.client("sts").assume_role_with_web_identity(RoleArn=setup.role_arn, RoleSessionName="after",
                                                               WebIdentityToken=token)["Credentials"]
    assert _sts(server, after).get_caller_identity()["Arn"].endswith("/after")


def test_tampered_session_token_is_invalid_client_token_id(keyed: Any) -> None:
    server, _, _, creds = keyed
    token = creds["SessionToken"]
    i = len(token) // 2
    flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    assert _error(lambda: _sts(server, {**creds, "SessionToken": flipped}).get_caller_identity()) == (
        "InvalidClientTokenId", "The security token included in the request is invalid.")
    # a valid token paired with another access key id is refused the same way
    other = {**creds, "AccessKeyId": "ASIA" + "A" * 16}
    assert _error(lambda: _sts(server, other).get_caller_identity())[0] == "InvalidClientTokenId"


def test_expired_credentials_are_expired_token(keyed: Any) -> None:
    server, setup, _, _ = keyed
    key = ServerKey.load(server.data_dir)
    caller = Caller(account_id=setup.role_account, arn=f"arn:aws:sts::{setup.role_account}:assumed-role/keyed/old",
                    user_id="AROAEXAMPLE:old", kind="assumed-role", access_key_id="", role_arn=setup.role_arn,
                    role_name="keyed", session_name="old")
    issued, _ = credentials.issue(key, caller, expiration=time.time() - 5)
    creds = {"AccessKeyId": issued.access_key_id, "SecretAccessKey": issued.secret_access_key,
             "SessionToken": issued.session_token}
    code, message = _error(lambda: _sts(server, creds).get_caller_identity())
    assert code == "ExpiredToken"
    assert message == "The security token included in the request is expired"


def test_no_secret_access_key_in_plaintext_in_the_data_dir(keyed: Any) -> None:
    server, _, _, creds = keyed
    admin = server.account("818181818102")["secret_access_key"]
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            for secret in (admin, creds["SecretAccessKey"]):
                assert secret.encode() not in raw, f"a secret key is in {path}"
                assert base64.b64encode(secret.encode()) not in raw
