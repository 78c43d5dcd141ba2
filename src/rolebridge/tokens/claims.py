"""Session tags and source identity carried by a web identity token (aws-semantics.md §1.6).

STS reads these after the signature is verified and before evaluating the trust policy: a token
with tags needs ``sts:TagSession`` allowed, one with a source identity ``sts:SetSourceIdentity``.
Malformed claims are refused with InvalidIdentityToken (AWS's exact text is unknown; the reason
is in ``explanation``).  Limits from the IAM user guide: <= 50 tags, key <= 128, value <= 256,
exactly one value per tag, keys unique case-insensitively; source identity 2..64 chars of
``[\\w+=,.@-]`` and not starting with ``aws:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rolebridge.errors import InvalidIdentityToken
from rolebridge.tokens.verifier import UnverifiedToken

TAGS_CLAIM = "https://aws.amazon.com/tags"
SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"
MAX_TAGS = 50
_TAG_KEY = re.compile(r"[\w\s+=.@:/-]{1,128}")
_TAG_VALUE = re.compile(r"[\w\s+=.@:/-]{0,256}")
_SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}")

MESSAGE_TAGS = "The session tags in the web identity token are not valid"
MESSAGE_SOURCE_IDENTITY = "The source identity in the web identity token is not valid"


@dataclass(frozen=True)
class SessionTags:
    tags: dict[str, str] = field(default_factory=dict)
    transitive_keys: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tags)


def _bad_tags(why: str) -> InvalidIdentityToken:
    return InvalidIdentityToken(MESSAGE_TAGS, explanation=why)


def session_tags(token: UnverifiedToken) -> SessionTags:
    """``{"principal_tags": {"K": ["v"]}, "transitive_tag_keys": ["K"]}`` -> SessionTags."""
    if TAGS_CLAIM not in token.claims:
        return SessionTags()
    claim = token.claims[TAGS_CLAIM]
    if not isinstance(claim, dict) or set(claim) - {"principal_tags", "transitive_tag_keys"}:
        raise _bad_tags("the tags claim must be an object with principal_tags and transitive_tag_keys")
    principal = claim.get("principal_tags", {})
    if not isinstance(principal, dict) or len(principal) > MAX_TAGS:
        raise _bad_tags(f"principal_tags must be an object of at most {MAX_TAGS} tags")
    tags: dict[str, str] = {}
    seen: set[str] = set()
    for key, values in principal.items():
        if not _TAG_KEY.fullmatch(key) or key.lower().startswith("aws:"):
            raise _bad_tags(f"invalid tag key {key!r}")
        if key.lower() in seen:
            raise _bad_tags(f"duplicate tag key {key!r} (tag keys are case-insensitive)")
        seen.add(key.lower())
        if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
            raise _bad_tags(f"tag {key!r} must have exactly one string value")
        if not _TAG_VALUE.fullmatch(values[0]):
            raise _bad_tags(f"invalid value for tag {key!r}")
        tags[key] = values[0]
    transitive = claim.get("transitive_tag_keys", [])
    if not isinstance(transitive, list) or not all(isinstance(k, str) for k in transitive):
        raise _bad_tags("transitive_tag_keys must be a list of strings")
    lowered = {k.lower() for k in tags}
    missing = [k for k in transitive if k.lower() not in lowered]
    if missing:
        raise _bad_tags(f"transitive tag keys {missing} are not among the principal tags")
    return SessionTags(tags, tuple(transitive))


def source_identity(token: UnverifiedToken) -> str | None:
    if SOURCE_IDENTITY_CLAIM not in token.claims:
        return None
    value = token.claims[SOURCE_IDENTITY_CLAIM]
    if (
        not isinstance(value, str)
        or not _SOURCE_IDENTITY.fullmatch(value)
        or value.lower().startswith("aws:")
    ):
        raise InvalidIdentityToken(MESSAGE_SOURCE_IDENTITY, explanation=f"invalid source identity {value!r}")
    return value
