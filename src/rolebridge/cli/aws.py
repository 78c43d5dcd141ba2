"""IAM clients for the setup and diagnosis tools (`grant`, `lint`, `explain`), and the one-line
account of anything botocore raises through them.

A tool opens its client with ``with iam_client(...) as iam:``; a botocore failure inside the block
(unreachable endpoint, TLS, no or bad credentials, unknown profile, an IAM error answer) leaves it
tagged with the endpoint it was about, and ``cli/main.py`` prints it with ``describe_failure`` as
one line -- what failed, where, what to do -- instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_ENDPOINT_ATTR = "rolebridge_endpoint"
_SERVICE_ATTR = "rolebridge_service"
_AUTH_CODES = {"InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature", "ExpiredToken",
               "ExpiredTokenException", "UnrecognizedClientException", "InvalidAccessKeyId",
               "MissingAuthenticationToken", "AuthFailure"}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}


@contextmanager
def iam_client(*, profile: str | None = None, endpoint_url: str | None = None, **client_kw: Any) -> Iterator[Any]:
    """A botocore IAM client (signed for us-east-1, as IAM is) from the standard credential chain or
    ``profile``; ``client_kw`` passes explicit keys or ``verify``. Botocore errors raised in the
    ``with`` block carry the endpoint for ``describe_failure``."""
    import botocore.exceptions
    import botocore.session

    where = endpoint_url or "the default IAM endpoint"
    try:
        session = botocore.session.Session(profile=profile)
        client = session.create_client("iam", region_name="us-east-1", endpoint_url=endpoint_url, **client_kw)
        where = client.meta.endpoint_url
        yield client
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        if getattr(exc, _ENDPOINT_ATTR, None) is None:
            setattr(exc, _ENDPOINT_ATTR, where)
            setattr(exc, _SERVICE_ATTR, "IAM")
        raise


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def describe_failure(exc: BaseException) -> str | None:
    """One line for a botocore/boto3 exception: what failed, the endpoint, what to do; None if not one."""
    import botocore.exceptions as bx

    if not isinstance(exc, (bx.BotoCoreError, bx.ClientError)):
        return None
    service = getattr(exc, _SERVICE_ATTR, None) or "AWS"
    kwargs = getattr(exc, "kwargs", {}) or {}
    where = getattr(exc, _ENDPOINT_ATTR, None) or kwargs.get("endpoint_url") or "the AWS endpoint"
    at = f"{service} at {where}"
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code, message = error.get("Code") or "Unknown", _one_line(error.get("Message") or "")
        what = f"{service} {exc.operation_name} at {where} failed: {code}: {message}".rstrip(": ")
        if code in _AUTH_CODES:
            todo = "the credentials are not valid there: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, " \
                   "AWS_PROFILE or --profile (and that --endpoint-url is the IAM you meant)"
        elif code in _DENIED_CODES:
            todo = f"give the credentials permission for {service.lower()}:{exc.operation_name}"
        elif code in _THROTTLE_CODES:
            todo = "retry in a moment"
        else:
            todo = "fix what the message says and re-run"
        return f"{what} -- {todo}"
    if isinstance(exc, bx.SSLError):
        return (f"TLS to {at} failed ({_one_line(kwargs.get('error') or exc)}) -- trust the endpoint's CA "
                "(AWS_CA_BUNDLE=<its ca.pem>) or check --endpoint-url")
    if isinstance(exc, (bx.ReadTimeoutError, bx.ConnectionClosedError)):
        return f"{at} did not answer ({_one_line(exc)}) -- check that the endpoint is up, then retry"
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ConnectionError,
                        bx.HTTPClientError)):
        return (f"cannot reach {at} ({_one_line(kwargs.get('error') or exc)}) -- check --endpoint-url "
                "(or AWS_ENDPOINT_URL_IAM) and the network")
    if isinstance(exc, bx.ProfileNotFound):
        config = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
        return (f"AWS profile {kwargs.get('profile')!r} not found in {config} (for {at}) -- check --profile "
                "or AWS_PROFILE, or create it with `aws configure --profile NAME`")
    if isinstance(exc, bx.NoCredentialsError):
        return (f"no AWS credentials found for {at} -- set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE, or pass --profile")
    if isinstance(exc, bx.PartialCredentialsError):
        return f"incomplete AWS credentials for {at}: {_one_line(exc)} -- set both the key ID and the secret"
    if isinstance(exc, (bx.CredentialRetrievalError, bx.TokenRetrievalError, bx.SSOError)):
        return f"could not get AWS credentials for {at}: {_one_line(exc)} -- refresh them (e.g. `aws sso login`)"
    return f"{at}: {_one_line(exc)} -- check the AWS configuration (--profile, --endpoint-url, credentials)"
