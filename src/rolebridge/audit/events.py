"""One API call -> one CloudTrail-shaped event (a plain dict, JSON-ready).

The shape follows CloudTrail's record format (eventVersion 1.08): who (``userIdentity``), what
(``eventSource``/``eventName``, ``requestParameters``, ``responseElements``), outcome
(``errorCode``/``errorMessage``), from where (``sourceIPAddress``, ``userAgent``), and
``recipientAccountId``: the account whose resource was acted on (for an assume, the role's).

Secrets never reach an event: parameter and response members that carry tokens, secret keys or
passwords are replaced by CloudTrail's own marker wherever they appear, at any depth, before the
event leaves this module. Read-only calls carry no ``responseElements`` (as in CloudTrail).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rolebridge import errors
from rolebridge.caller import Caller
from rolebridge.clock import iso8601
from rolebridge.iam.arns import parse_arn, parse_role_arn
from rolebridge.randomness import uuid7

EVENT_VERSION = "1.08"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
SOURCES = {"iam": "iam.amazonaws.com", "sts": "sts.amazonaws.com"}
# member names (compared without case, dashes or underscores) whose values are never recorded
SECRET_MEMBERS = frozenset({
    "webidentitytoken", "secretaccesskey", "sessiontoken", "password", "oldpassword", "newpassword",
    "samlassertion", "tokencode", "privatekey", "xamzsecuritytoken", "xamzsignature", "authorization",
    "providedcontexts",
})
READ_ONLY_PREFIXES = ("Get", "List", "Decode", "Head")
# S3 calls on objects are CloudTrail *data* events ("Amazon S3 object-level API activity, for example
# GetObject, DeleteObject and PutObject"; S3 user guide, "Amazon S3 CloudTrail events"); calls on
# buckets are management events.
S3_DATA_EVENT_ACTIONS = frozenset({"CreateMultipartUpload", "UploadPart", "UploadPartCopy",
                                   "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts"})


def is_data_event(service: str, action: str) -> bool:
    return service == "s3" and ("Object" in action or action in S3_DATA_EVENT_ACTIONS)
ASSUME_ACTIONS = frozenset({"AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"})
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/\d{8}/([a-z0-9-]+)/")
_NORMALIZE = re.compile(r"[-_.]")


def is_secret_member(name: str) -> bool:
    return _NORMALIZE.sub("", name).lower() in SECRET_MEMBERS


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:] if name else name


# key -> (camelCase key, hidden?): the same few member names recur in every event, so each is
# normalised once. Bounded because flattened names ("Tags.member.7.Key") come from the caller.
_KEYS: dict[str, tuple[str, bool]] = {}
_KEYS_MAX = 4096


def _key(key: str) -> tuple[str, bool]:
    known = _KEYS.get(key)
    if known is None:
        # flattened query members ("Tags.member.1.Key") are checked segment by segment
        hidden = is_secret_member(key) or any(is_secret_member(seg) for seg in key.split("."))
        known = (_camel(key), hidden)
        if len(_KEYS) < _KEYS_MAX:
            _KEYS[key] = known
    return known


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def redact(value: Any) -> Any:
    """A JSON-ready copy of ``value`` with secret members hidden and keys in CloudTrail's camelCase."""
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            camel, hidden = _key(key if type(key) is str else str(key))
            # plain values (most members) are copied without a call
            out[camel] = HIDDEN if hidden else item if type(item) in _PLAIN_TYPES else redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, dt.datetime):
        return iso8601(value.timestamp())
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)




def _kind(arn: str) -> str:
    if arn.endswith(":root"):
        return "Root"
    if ":assumed-role/" in arn:
        return "AssumedRole"
    if ":federated-user/" in arn:
        return "FederatedUser"
    if ":user/" in arn:
        return "IAMUser"
    return "Unknown"


def caller_identity(caller: Caller) -> dict[str, Any]:
    """``userIdentity`` for a signed call."""
    identity: dict[str, Any] = {
        "type": _kind(caller.arn),
        "principalId": caller.user_id,
        "arn": caller.arn,
        "accountId": caller.account_id,
        "accessKeyId": caller.access_key_id,
    }
    if not caller.is_temporary:
        return identity
    session: dict[str, Any] = {"attributes": {"mfaAuthenticated": "false"}}
    if caller.session.get("iat"):
        session["attributes"]["creationDate"] = iso8601(float(caller.session["iat"]))
    if caller.role_arn:
        session["sessionIssuer"] = {
            "type": "Role",
            "principalId": caller.user_id.split(":", 1)[0],
            "arn": caller.role_arn,
            "accountId": caller.account_id,
            "userName": caller.role_name,
        }
    if caller.session.get("fed"):
        session["webIdFederationData"] = {"federatedProvider": caller.session["fed"], "attributes": {}}
    if caller.session.get("src"):
        session["sourceIdentity"] = caller.session["src"]
    identity["sessionContext"] = session
    return identity


def _unverified_claims(token: Any) -> dict[str, Any]:
    """The token's claims without checking anything: only to name who asked (never trusted)."""
    if not isinstance(token, str) or token.count(".") != 2:
        return {}
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError, RecursionError):  # any token at all may be refused and recorded
        return {}
    return claims if isinstance(claims, dict) else {}


def web_identity_user(params: Mapping[str, Any] | None, result: Mapping[str, Any] | None,
                      claims: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``userIdentity`` for AssumeRoleWithWebIdentity: the token's issuer and subject.

    ``claims`` are the token's as the handler parsed them; without them (a token refused before
    parsing) the token is decoded here, unverified.
    """
    if claims is None:
        claims = _unverified_claims((params or {}).get("WebIdentityToken"))
    issuer = str(claims.get("iss") or "")
    provider = issuer.removeprefix("https://") or "Unknown"
    aud = claims.get("aud")
    audience = (result or {}).get("Audience") or (aud[0] if isinstance(aud, list) and aud else aud) or ""
    sub = (result or {}).get("SubjectFromWebIdentityToken") or claims.get("sub") or "Unknown"
    return {"type": "WebIdentityUser", "principalId": f"{provider}:{audience}:{sub}", "userName": str(sub),
            "identityProvider": provider}


def _region(headers: Mapping[str, str], query: Mapping[str, str], service: str) -> str:
    scope = headers.get("authorization", "")
    m = _CREDENTIAL.search(scope)
    if m:
        return m.group(2)
    cred = query.get("X-Amz-Credential", "")
    parts = cred.split("/")
    if len(parts) >= 3:
        return parts[2]
    return "us-east-1"


def _access_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    m = _CREDENTIAL.search(headers.get("authorization", ""))
    if m:
        return m.group(1)
    cred = query.get("X-Amz-Credential", "")
    return cred.split("/")[0] or None


def _recipient(action: str, params: Mapping[str, Any] | None, caller: Caller | None,
               hint: str | None) -> str | None:
    if hint:
        return hint
    if action in ASSUME_ACTIONS and params and isinstance(params.get("RoleArn"), str):
        ref = parse_role_arn(params["RoleArn"])
        if ref is not None:
            return ref.account
        arn = parse_arn(params["RoleArn"])
        if arn is not None and arn.account:
            return arn.account
    return caller.account_id if caller is not None else None


def build_event(*, service: str, action: str, now: float, request_id: str,
                caller: Caller | None, params: Mapping[str, Any] | None, result: Any = None,
                error: BaseException | None = None, source_ip: str = "", user_agent: str = "",
                headers: Mapping[str, str] | None = None, query: Mapping[str, str] | None = None,
                audit_hints: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CloudTrail record for one call; ``error`` set means the call was refused or failed."""
    headers = headers or {}
    query = query or {}
    hints = audit_hints or {}
    if caller is not None:
        identity = caller_identity(caller)
    elif action == "AssumeRoleWithWebIdentity":
        identity = web_identity_user(params, result if isinstance(result, Mapping) else None,
                                     hints.get("web_identity_claims"))
    else:
        identity = {"type": "Unknown"}
        akid = _access_key(headers, query)
        if akid:
            identity["accessKeyId"] = akid
    aws_error: errors.AWSError | None = None
    if error is not None:
        aws_error = error if isinstance(error, errors.AWSError) else errors.InternalFailure(
            "An internal error occurred.")
    read_only = action.startswith(READ_ONLY_PREFIXES)
    data_event = is_data_event(service, action)
    request_parameters = redact({k: v for k, v in params.items() if k not in ("Action", "Version")
                                 and not k.startswith("X-Amz-")}) if params else None
    response = None if error is not None or read_only or not result else redact(result)
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": iso8601(now),
        "eventSource": SOURCES.get(service, f"{service}.amazonaws.com"),
        "eventName": action or "Unknown",
        "awsRegion": "us-east-1" if service == "iam" else _region(headers, query, service),
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": request_parameters or None,
        "responseElements": response,
        "requestID": request_id,
        "eventID": uuid7(now),  # time-ordered: the key of an ever-growing index (randomness.uuid7)
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": not data_event,
        "recipientAccountId": _recipient(action, params, caller, hints.get("recipient_account")),
        "eventCategory": "Data" if data_event else "Management",
    }
    if aws_error is not None:
        event["errorCode"] = aws_error.code
        event["errorMessage"] = aws_error.message
    return event


@dataclass(frozen=True, slots=True)
class CallRecord:
    """The raw inputs of one call's event, captured on the request path and shaped later.

    Building the CloudTrail dict and its JSON is the expensive part of auditing a call; the
    writer thread does it (``audit.writer.AuditWriter``) just before the insert, so the request
    path only captures references. Nothing here may be mutated after capture: the handler's
    ``params``/``result`` are finished by then, and ``Caller`` is frozen.
    """

    service: str
    action: str
    now: float
    request_id: str
    caller: Caller | None
    params: Mapping[str, Any] | None
    result: Any = None
    error: BaseException | None = None
    source_ip: str = ""
    user_agent: str = ""
    headers: Mapping[str, str] | None = None  # only what the event reads (authorization)
    query: Mapping[str, str] | None = None  # only what the event reads (X-Amz-Credential)
    audit_hints: Mapping[str, Any] | None = None

    def event(self) -> dict[str, Any]:
        return build_event(service=self.service, action=self.action, now=self.now, request_id=self.request_id,
                           caller=self.caller, params=self.params, result=self.result, error=self.error,
                           source_ip=self.source_ip, user_agent=self.user_agent, headers=self.headers,
                           query=self.query, audit_hints=self.audit_hints)
