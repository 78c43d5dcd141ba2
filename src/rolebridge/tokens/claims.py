"""Session tags and source identity carried by a web identity token (aws-semantics.md §1.6).

The one place the two claims are read. STS reads them from a verified token before evaluating the
trust policy (a token with tags needs ``sts:TagSession`` allowed, one with a source identity
``sts:SetSourceIdentity``). Each claim is checked whole, strictly, here:

- ``https://aws.amazon.com/tags``: an object with at most ``principal_tags`` (an object mapping each
  key to a list of exactly one string) and ``transitive_tag_keys`` (a list of strings); then the
  session-tag rules AssumeRole's ``Tags`` obey (``sts/session_rules.py``: <= 50 tags, key 1-128 and
  value <= 256 characters of the tag alphabet, keys unique case-insensitively, no ``aws:`` prefix,
  transitive keys among the tags). Anything else is ``ValidationError`` ``Unable to validate tags``
  (HTTP 400): AWS's answer to IdP-passed session tags it cannot accept, observed for
  AssumeRoleWithWebIdentity (hashicorp/terraform-provider-aws#44712) and for AssumeRoleWithSAML
  with a tag value over 256 characters (runbooks.cloud-platform.service.justice.gov.uk,
  "Debugging AWS Console read-only access issues"); aws-semantics.md §1.6 gives the limits, not the
  error.
- ``https://aws.amazon.com/source_identity``: a string of 2-64 characters of ``[\\w+=,.@-]``, not
  starting with ``aws:`` (§1.2), the rule AssumeRole's ``SourceIdentity`` obeys. Anything else is
  ``InvalidIdentityToken`` (the error for a token STS cannot validate, §1.4); AWS's exact text for
  this case is not known, so the message is ours and the reason is in ``explanation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rolebridge.errors import InvalidIdentityToken, ValidationError
from rolebridge.sts.session_rules import source_identity_violations, tag_violations
from rolebridge.tokens.verifier import UnverifiedToken

TAGS_CLAIM = "https://aws.amazon.com/tags"
SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"
TAGS_MEMBERS = frozenset({"principal_tags", "transitive_tag_keys"})

MESSAGE_TAGS = "Unable to validate tags"
MESSAGE_SOURCE_IDENTITY = "The source identity in the web identity token is not valid"


@dataclass(frozen=True)
class SessionTags:
    tags: dict[str, str] = field(default_factory=dict)
    transitive_keys: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tags)


def _bad_tags(why: str) -> ValidationError:
    return ValidationError(MESSAGE_TAGS, explanation=f"the {TAGS_CLAIM} claim: {why}")


def session_tags(token: UnverifiedToken) -> SessionTags:
    """``{"principal_tags": {"K": ["v"]}, "transitive_tag_keys": ["K"]}`` -> SessionTags, or
    ValidationError ``Unable to validate tags``."""
    if TAGS_CLAIM not in token.claims:
        return SessionTags()
    claim = token.claims[TAGS_CLAIM]
    if not isinstance(claim, Mapping):
        raise _bad_tags(f"must be an object with principal_tags and transitive_tag_keys, not {_kind(claim)}")
    unknown = sorted(set(claim) - TAGS_MEMBERS)
    if unknown:
        raise _bad_tags(f"unknown members {unknown} (only principal_tags and transitive_tag_keys)")
    principal: Any = claim.get("principal_tags", {})
    if not isinstance(principal, Mapping):
        raise _bad_tags(f"principal_tags must be an object of tag key -> [value], not {_kind(principal)}")
    pairs: list[tuple[str, str]] = []
    for key, values in principal.items():
        if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
            raise _bad_tags(f"tag {key!r} must have exactly one value, a string (seen {_kind(values)})")
        pairs.append((key, values[0]))
    transitive: Any = claim.get("transitive_tag_keys", [])
    if not isinstance(transitive, list) or not all(isinstance(k, str) for k in transitive):
        raise _bad_tags(f"transitive_tag_keys must be a list of strings, not {_kind(transitive)}")
    problems = tag_violations(pairs, transitive)
    if problems:
        raise _bad_tags("; ".join(p.detail for p in problems))
    return SessionTags(dict(pairs), tuple(transitive))


def source_identity(token: UnverifiedToken) -> str | None:
    if SOURCE_IDENTITY_CLAIM not in token.claims:
        return None
    value = token.claims[SOURCE_IDENTITY_CLAIM]
    if not isinstance(value, str):
        why = f"the {SOURCE_IDENTITY_CLAIM} claim must be a string, not {_kind(value)}"
        raise InvalidIdentityToken(MESSAGE_SOURCE_IDENTITY, explanation=why)
    problems = source_identity_violations(value)
    if problems:
        raise InvalidIdentityToken(MESSAGE_SOURCE_IDENTITY, explanation="; ".join(p.detail for p in problems))
    return value


def _kind(value: Any) -> str:
    """A short description of a JSON value, for explanations."""
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, Mapping):
        return "an object"
    return f"{type(value).__name__} {str(value)[:40]!r}"
