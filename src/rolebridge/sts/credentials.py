"""Temporary credentials that any server process can check without a database read.

The session token *is* the session: a JSON record (who, until when, the secret key) sealed with
the server key (AES-256-GCM, see ``store/server_key.py``). A server that holds the key opens it,
recovers the secret to check the SigV4 signature, and knows the caller. Tampering fails the AEAD
tag (-> InvalidClientTokenId); expiry is checked against the injected clock (-> ExpiredToken).
Secrets are never stored in plaintext anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rolebridge import errors, fastjson
from rolebridge.caller import Caller
from rolebridge.iam import ids
from rolebridge.memo import BoundedMemo
from rolebridge.store.server_key import SealError, ServerKey

PURPOSE = b"rolebridge-session-token-v1"
MAX_SESSION_TOKEN = 8192


@dataclass(frozen=True)
class IssuedCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float

    def shape(self, to_datetime: Any) -> dict[str, Any]:
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": to_datetime(self.expiration),
        }


def issue(key: ServerKey, caller: Caller, *, expiration: float) -> tuple[IssuedCredentials, Caller]:
    """Mint keys for ``caller`` (whose access_key_id is replaced by a fresh ASIA id)."""
    akid = ids.temporary_access_key_id()
    secret = ids.secret_access_key()
    record = {
        "ak": akid,
        "sk": secret,
        "acct": caller.account_id,
        "arn": caller.arn,
        "uid": caller.user_id,
        "kind": caller.kind,
        "role": caller.role_arn,
        "rn": caller.role_name,
        "sn": caller.session_name,
        "exp": expiration,
        "chain": caller.chained,
        "ctx": caller.session,
    }
    token = key.seal(fastjson.dumps(record), purpose=PURPOSE)
    final = Caller(
        account_id=caller.account_id, arn=caller.arn, user_id=caller.user_id, kind=caller.kind,
        access_key_id=akid, role_arn=caller.role_arn, role_name=caller.role_name,
        session_name=caller.session_name, expiration=expiration, chained=caller.chained, session=caller.session,
    )
    return IssuedCredentials(akid, secret, token, expiration), final


#: Session tokens opened lately: token -> (server key, its generation, caller, secret). A client
#: signs every call of a session with the same token, and opening it (base64, AES-GCM, JSON, the
#: Caller) is a pure function of the token and the server's keys, so a repeat skips it. An entry
#: counts only for the same ServerKey with the same key set (a reload that drops a key drops what it
#: opened); the access key id, the signature and the expiry are still checked on every call. Bounded:
#: at most 2,048 tokens of at most 4,096 characters are held (~8 MB).
_OPENED: BoundedMemo[tuple[ServerKey, int, Caller, str]] = BoundedMemo(max_entries=2048, max_key_chars=4096)


def open_session(key: ServerKey, token: str, access_key_id: str) -> tuple[Caller, str]:
    """The caller and secret key behind a session token; refuses anything not sealed by us."""
    known = _OPENED.get(token)
    if known is not None and known[0] is key and known[1] == key.generation:
        if known[2].access_key_id != access_key_id:
            raise errors.InvalidClientTokenId()
        return known[2], known[3]
    generation = key.generation  # before the open: a key set changing meanwhile must not be credited
    caller, secret = _open_session(key, token, access_key_id)
    _OPENED.put(token, (key, generation, caller, secret))
    return caller, secret


def _open_session(key: ServerKey, token: str, access_key_id: str) -> tuple[Caller, str]:
    if len(token) > MAX_SESSION_TOKEN:
        raise errors.InvalidClientTokenId()
    try:
        record = fastjson.loads(key.open(token, purpose=PURPOSE))
    except (SealError, ValueError) as exc:
        raise errors.InvalidClientTokenId() from exc
    if record.get("ak") != access_key_id:
        raise errors.InvalidClientTokenId()
    caller = Caller(
        account_id=record["acct"], arn=record["arn"], user_id=record["uid"], kind=record["kind"],
        access_key_id=record["ak"], role_arn=record.get("role"), role_name=record.get("rn"),
        session_name=record.get("sn"), expiration=float(record["exp"]), chained=bool(record.get("chain")),
        session=record.get("ctx") or {},
    )
    return caller, record["sk"]
