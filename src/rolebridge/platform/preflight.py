"""The job's first assume, made before the job starts, exactly as the SDK will make it.

If STS refuses, the job would only print a botocore traceback; instead we replay the assume
in-process with a trace and tell the user what failed and how to fix it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import httpx

from rolebridge.services import Services

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass
class AssumeOutcome:
    ok: bool
    assumed_arn: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    cause: str | None = None
    detail: str | None = None
    fix: str | None = None

    def to_dict(self) -> dict[str, str | bool | None]:
        return dict(self.__dict__)


def _text(root: ET.Element, tag: str) -> str | None:
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == tag:
            return el.text
    return None


def assume(sts_url: str, ca_bundle: str, *, role_arn: str, session_name: str, token: str) -> AssumeOutcome:
    form = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": role_arn,
            "RoleSessionName": session_name, "WebIdentityToken": token}
    with httpx.Client(verify=ca_bundle, timeout=TIMEOUT) as client:
        response = client.post(sts_url.rstrip("/") + "/", data=form)
    root = ET.fromstring(response.content)  # noqa: S314 - our own server's XML
    if response.status_code == 200:
        return AssumeOutcome(True, assumed_arn=_text(root, "Arn"))
    return AssumeOutcome(False, error_code=_text(root, "Code"), error_message=_text(root, "Message"))


def fix_for(cause: str | None, *, role_arn: str, cluster_account: str, bare_role: bool) -> str:
    if cause == "role-missing" and bare_role:
        return (f"a bare role name means a role in the cluster's account {cluster_account}; a role in another "
                "account needs its full ARN (--aws-role arn:aws:iam::ACCOUNT:role/NAME)")
    if cause == "role-missing":
        return f"create {role_arn}, or fix the ARN (account, path and name must match the role)"
    if cause in ("provider-missing", "provider-in-other-account"):
        return ("register the cluster's issuer as an OIDC provider in the role's account "
                "(`rolebridge grant` does it, or see `rolebridge cluster list` for URL and thumbprint)")
    if cause and cause.startswith("audience"):
        return "add the token's audience (sts.amazonaws.com) to the provider's client IDs"
    if cause == "tls-untrusted":
        return "put the cluster's thumbprint (`rolebridge cluster list`) in the provider's thumbprint list"
    if cause == "token-expired":
        return "the job's token expired; check the clock and the token lifetime"
    if cause == "duration-too-long":
        return "ask for a shorter session or raise the role's MaxSessionDuration"
    return "make the role's trust policy allow this job's service account (see `rolebridge explain`)"


def explain_refusal(services: Services, outcome: AssumeOutcome, *, role_arn: str, session_name: str, token: str,
                    cluster_account: str, bare_role: bool) -> AssumeOutcome:
    """Replay the refused assume with ``rolebridge explain``'s classifier: one-line cause and fix."""
    from rolebridge.tools.explain import explain_assume

    explanation = explain_assume(services, role_arn=role_arn, token=token, session_name=session_name)
    outcome.cause = explanation.cause
    outcome.detail = explanation.one_line() if explanation.cause else None
    if explanation.cause == "role-missing" and bare_role:
        outcome.fix = fix_for(explanation.cause, role_arn=role_arn, cluster_account=cluster_account,
                              bare_role=bare_role)
    else:
        outcome.fix = explanation.fix
    return outcome
