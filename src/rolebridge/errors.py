"""The one error tree. Every failure a client can see is an `AWSError` subclass.

Each class declares the AWS wire `code`, the HTTP `status` and whether the fault is the
sender's; the message is per instance. Only ``rolebridge.http`` turns these into XML
(``http/errors.py``), and the CLI prints them; core modules just raise.

    AWSError
    ├── ValidationError, InvalidInput, InvalidParameterValue, MissingParameter,
    │   MissingAction, InvalidAction, MalformedQueryString, MalformedPolicyDocument,
    │   PackedPolicyTooLarge
    ├── auth: InvalidClientTokenId, SignatureDoesNotMatch, IncompleteSignature,
    │   MissingAuthenticationToken, RequestTimeTooSkewed, ExpiredToken, AccessDenied
    ├── web identity: InvalidIdentityToken, ExpiredTokenException, IDPCommunicationError,
    │   IDPRejectedClaim
    ├── IAM entities: NoSuchEntity, EntityAlreadyExists, LimitExceeded, DeleteConflict,
    │   UnmodifiableEntity, ConcurrentModification
    └── ServiceFailure, InternalFailure, ServiceUnavailable

``explanation`` carries what AWS never says (which check failed and why). It is never put
into the AWS error message; the CLI and ``rolebridge explain`` show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class AWSError(Exception):
    code: str = "InternalFailure"
    status: int = 500
    sender_fault: bool = False
    default_message: str = ""

    def __init__(self, message: str | None = None, *, explanation: Any = None) -> None:
        self.message = self.default_message if message is None else message
        self.explanation = explanation
        super().__init__(self.message)

    @property
    def fault_type(self) -> str:
        return "Sender" if self.sender_fault else "Receiver"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message!r})"


class _Sender(AWSError):
    status = 400
    sender_fault = True


# -- request and parameter shape -------------------------------------------------------
class ValidationError(_Sender):
    code = "ValidationError"


class InvalidInput(_Sender):
    code = "InvalidInput"


class InvalidParameterValue(_Sender):
    code = "InvalidParameterValue"


class MissingParameter(_Sender):
    code = "MissingParameter"


class MissingAction(_Sender):
    code = "MissingAction"
    default_message = "Missing Action"


class InvalidAction(_Sender):
    code = "InvalidAction"


class MalformedQueryString(_Sender):
    code = "MalformedQueryString"


class MalformedPolicyDocument(_Sender):
    code = "MalformedPolicyDocument"


class PackedPolicyTooLarge(_Sender):
    code = "PackedPolicyTooLarge"


class InvalidAuthorizationMessage(_Sender):
    code = "InvalidAuthorizationMessageException"


# -- request authentication and authorization ------------------------------------------
class InvalidClientTokenId(_Sender):
    code = "InvalidClientTokenId"
    status = 403
    default_message = "The security token included in the request is invalid."


class SignatureDoesNotMatch(_Sender):
    code = "SignatureDoesNotMatch"
    status = 403
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )


class IncompleteSignature(_Sender):
    code = "IncompleteSignature"
    status = 400


class MissingAuthenticationToken(_Sender):
    code = "MissingAuthenticationToken"
    status = 403
    default_message = "Request is missing Authentication Token"


class RequestTimeTooSkewed(_Sender):
    code = "RequestTimeTooSkewed"
    status = 403


class ExpiredToken(_Sender):
    code = "ExpiredToken"
    status = 403
    default_message = "The security token included in the request is expired"


class AccessDenied(_Sender):
    code = "AccessDenied"
    status = 403


# -- web identity ---------------------------------------------------------------------------
class InvalidIdentityToken(_Sender):
    code = "InvalidIdentityToken"


class ExpiredTokenException(_Sender):
    code = "ExpiredTokenException"


class IDPCommunicationError(_Sender):
    code = "IDPCommunicationError"


class OpenIdIdpCommunicationError(_Sender):
    code = "OpenIdIdpCommunicationError"


class IDPRejectedClaim(_Sender):
    code = "IDPRejectedClaim"
    status = 403


# -- IAM entities -----------------------------------------------------------------------
class NoSuchEntity(_Sender):
    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(_Sender):
    code = "EntityAlreadyExists"
    status = 409


class LimitExceeded(_Sender):
    code = "LimitExceeded"
    status = 409


class DeleteConflict(_Sender):
    code = "DeleteConflict"
    status = 409


class UnmodifiableEntity(_Sender):
    code = "UnmodifiableEntity"


class ConcurrentModification(_Sender):
    code = "ConcurrentModification"
    status = 409


# -- server side ------------------------------------------------------------------------
class ServiceFailure(AWSError):
    code = "ServiceFailure"
    default_message = "The request processing has failed because of an unknown error, exception or failure."


class InternalFailure(AWSError):
    code = "InternalFailure"
    default_message = "The request processing has failed because of an unknown error, exception or failure."


class ServiceUnavailable(AWSError):
    code = "ServiceUnavailable"
    status = 503


class _Null:
    """The value of a required member that was not sent: AWS writes ``Value null at 'x'``."""

    def __repr__(self) -> str:
        return "NULL"


NULL = _Null()

Problem = tuple[str | _Null | None, str, str]


def validation_message(problems: Sequence[Problem]) -> str:
    """AWS's batched constraint message.

    ``problems`` holds ``(value, member, constraint)``; a ``None`` value omits the
    ``Value '…'`` part, as AWS does for list members; ``NULL`` gives ``Value null at '…'``
    (a required member not sent: "Member must not be null").
    """
    n = len(problems)
    parts = []
    for value, member, constraint in problems:
        if value is NULL:
            head = f"Value null at '{member}'"
        elif value is not None:
            head = f"Value '{value}' at '{member}'"
        else:
            head = f"Value at '{member}'"
        parts.append(f"{head} failed to satisfy constraint: {constraint}")
    noun = "error" if n == 1 else "errors"
    return f"{n} validation {noun} detected: " + "; ".join(parts)


def validation_error(problems: Sequence[Problem]) -> ValidationError:
    return ValidationError(validation_message(problems))
