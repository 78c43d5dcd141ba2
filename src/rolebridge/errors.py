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
    ├── web identity: InvalidIdentityToken (UntrustedIssuerTLS), ExpiredTokenException,
    │   IDPCommunicationError, IDPRejectedClaim
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


class IncompleteRequest(_Sender):
    code = "IncompleteRequest"


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


class UntrustedIssuerTLS(InvalidIdentityToken):
    """The issuer's keys could not be fetched because its TLS certificate is neither trusted nor
    pinned by a thumbprint of the provider. AWS answers it as any key-retrieval failure
    (InvalidIdentityToken "Couldn't retrieve verification key..."); ``cause`` is what
    ``rolebridge explain`` calls it."""

    cause = "tls-untrusted"


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


# -- S3 (``s3/``): codes and default texts as S3 sends them ------------------------------------
class S3Error(_Sender):
    """Base of S3's own codes; rendered as S3's ``<Error>`` document by ``s3/xml.py``."""


class NoSuchBucket(S3Error):
    code = "NoSuchBucket"
    status = 404
    default_message = "The specified bucket does not exist"


class NoSuchKey(S3Error):
    code = "NoSuchKey"
    status = 404
    default_message = "The specified key does not exist."


class NoSuchUpload(S3Error):
    code = "NoSuchUpload"
    status = 404
    default_message = ("The specified upload does not exist. The upload ID may be invalid, or the upload "
                       "may have been aborted or completed.")


class NoSuchBucketPolicy(S3Error):
    code = "NoSuchBucketPolicy"
    status = 404
    default_message = "The bucket policy does not exist"


class NoSuchTagSet(S3Error):
    code = "NoSuchTagSet"
    status = 404
    default_message = "The TagSet does not exist"


class BucketAlreadyExists(S3Error):
    code = "BucketAlreadyExists"
    status = 409
    default_message = ("The requested bucket name is not available. The bucket namespace is shared by all "
                       "users of the system. Please select a different name and try again.")


class BucketAlreadyOwnedByYou(S3Error):
    code = "BucketAlreadyOwnedByYou"
    status = 409
    default_message = "Your previous request to create the named bucket succeeded and you already own it."


class BucketNotEmpty(S3Error):
    code = "BucketNotEmpty"
    status = 409
    default_message = "The bucket you tried to delete is not empty"


class InvalidBucketName(S3Error):
    code = "InvalidBucketName"
    default_message = "The specified bucket is not valid."


class KeyTooLongError(S3Error):
    code = "KeyTooLongError"
    default_message = "Your key is too long"


class InvalidArgument(S3Error):
    code = "InvalidArgument"


class InvalidRequest(S3Error):
    code = "InvalidRequest"


class MalformedXML(S3Error):
    code = "MalformedXML"
    default_message = ("The XML you provided was not well-formed or did not validate against our "
                       "published schema")


class MalformedPolicy(S3Error):
    code = "MalformedPolicy"


class InvalidRange(S3Error):
    code = "InvalidRange"
    status = 416
    default_message = "The requested range is not satisfiable"


class PreconditionFailed(S3Error):
    code = "PreconditionFailed"
    status = 412
    default_message = "At least one of the pre-conditions you specified did not hold"


class NotModified(S3Error):
    code = "NotModified"
    status = 304
    default_message = "Not Modified"


class BadDigest(S3Error):
    code = "BadDigest"
    default_message = "The Content-MD5 you specified did not match what we received."


class InvalidDigest(S3Error):
    code = "InvalidDigest"
    default_message = "The Content-MD5 you specified was invalid."


class XAmzContentSHA256Mismatch(S3Error):
    code = "XAmzContentSHA256Mismatch"
    default_message = "The provided 'x-amz-content-sha256' header does not match what was computed."


class IncompleteBody(S3Error):
    code = "IncompleteBody"
    default_message = "You did not provide the number of bytes specified by the Content-Length HTTP header"


class EntityTooSmall(S3Error):
    code = "EntityTooSmall"
    default_message = "Your proposed upload is smaller than the minimum allowed object size."


class EntityTooLarge(S3Error):
    code = "EntityTooLarge"
    default_message = "Your proposed upload exceeds the maximum allowed size"


class InvalidPart(S3Error):
    code = "InvalidPart"
    default_message = ("One or more of the specified parts could not be found.  The part may not have been "
                       "uploaded, or the specified entity tag may not match the part's entity tag.")


class InvalidPartOrder(S3Error):
    code = "InvalidPartOrder"
    default_message = "The list of parts was not in ascending order. Parts must be ordered by part number."


class InvalidTag(S3Error):
    code = "InvalidTag"


class InvalidAccessKeyId(S3Error):
    code = "InvalidAccessKeyId"
    status = 403
    default_message = "The AWS Access Key Id you provided does not exist in our records."


class AuthorizationHeaderMalformed(S3Error):
    code = "AuthorizationHeaderMalformed"


class MethodNotAllowed(S3Error):
    code = "MethodNotAllowed"
    status = 405
    default_message = "The specified method is not allowed against this resource."


class NotImplementedS3(S3Error):
    code = "NotImplemented"
    status = 501
    default_message = "A header you provided implies functionality that is not implemented"


class InvalidToken(S3Error):
    code = "InvalidToken"
    default_message = "The provided token is malformed or otherwise invalid."
