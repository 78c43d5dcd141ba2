"""The rules a role session's tags and source identity must meet, wherever they come from.

One set of rules for AssumeRole's ``Tags``/``TransitiveTagKeys``/``SourceIdentity`` parameters and
for a web identity token's ``https://aws.amazon.com/tags`` and ``.../source_identity`` claims
(aws-semantics.md §1.2, §1.6, §1.8): at most 50 tags; a key of 1-128 and a value of 0-256
characters of the STS model's tag alphabet (letters, spaces, digits and ``_.:/=+-@``); keys unique
case-insensitively and not starting with ``aws:``; every transitive key one of the tags; a source
identity of 2-64 characters of ``[\\w+=,.@-]`` not starting with ``aws:``.

Pure: the checks return what is wrong (``Violation``); each caller answers in the words AWS uses
for its own input (parameters: the model's ValidationError text and InvalidParameterValue; token
claims: see ``tokens/claims.py``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

MAX_TAGS = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
SOURCE_IDENTITY_MIN = 2
SOURCE_IDENTITY_MAX = 64
RESERVED_PREFIX = "aws:"
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]*", re.ASCII)  # the model's pattern; Java's \w is ASCII


@dataclass(frozen=True)
class Violation:
    """One broken rule. ``rule`` is one of: ``count``, ``key-length``, ``key-chars``, ``value-length``,
    ``value-chars``, ``reserved-key``, ``duplicate-key``, ``transitive-count``, ``transitive-missing``,
    ``source-identity-length``, ``source-identity-chars``, ``source-identity-reserved``.
    ``index`` is the tag's position (0-based) for the per-tag rules."""

    rule: str
    detail: str
    index: int | None = None
    value: str | None = None


def java_length(text: str) -> int:
    """Length as AWS counts it (UTF-16 code units, Java's ``String.length()``)."""
    return len(text.encode("utf-16-le")) // 2


def _tag_chars_ok(text: str) -> bool:
    """The model's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``: letters, separators (spaces), digits, punctuation."""
    return all(ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LZN" for ch in text)


def tag_violations(tags: Sequence[tuple[str, str]], transitive: Sequence[str] = ()) -> list[Violation]:
    """Everything wrong with a set of session tags (in the order given) and transitive tag keys."""
    out: list[Violation] = []
    if len(tags) > MAX_TAGS:
        out.append(Violation("count", f"{len(tags)} tags; at most {MAX_TAGS}"))
    seen: set[str] = set()
    for i, (key, value) in enumerate(tags):
        n = java_length(key)
        if n < 1 or n > TAG_KEY_MAX:
            out.append(Violation("key-length", f"tag key {key[:40]!r}… has {n} characters; 1 to {TAG_KEY_MAX}",
                                 i, key))
        elif not _tag_chars_ok(key):
            out.append(Violation("key-chars", f"tag key {key!r} has a character outside letters, digits, "
                                 "spaces and _.:/=+-@", i, key))
        elif key.lower().startswith(RESERVED_PREFIX):
            out.append(Violation("reserved-key", f"tag key {key!r} starts with {RESERVED_PREFIX!r}", i, key))
        if key.lower() in seen:
            out.append(Violation("duplicate-key", f"tag key {key!r} is given twice (tag keys are "
                                 "case-insensitive)", i, key))
        seen.add(key.lower())
        m = java_length(value)
        if m > TAG_VALUE_MAX:
            out.append(Violation("value-length", f"value of tag {key[:40]!r} has {m} characters; at most "
                                 f"{TAG_VALUE_MAX}", i, value))
        elif not _tag_chars_ok(value):
            out.append(Violation("value-chars", f"value of tag {key!r} has a character outside letters, digits, "
                                 "spaces and _.:/=+-@", i, value))
    if len(transitive) > MAX_TAGS:
        out.append(Violation("transitive-count", f"{len(transitive)} transitive tag keys; at most {MAX_TAGS}"))
    missing = [k for k in transitive if k.lower() not in seen]
    if missing:
        out.append(Violation("transitive-missing", f"transitive tag keys {missing} are not among the tags"))
    return out


def source_identity_violations(value: str) -> list[Violation]:
    """Everything wrong with a source identity."""
    out: list[Violation] = []
    n = java_length(value)
    if n < SOURCE_IDENTITY_MIN or n > SOURCE_IDENTITY_MAX:
        out.append(Violation("source-identity-length", f"source identity has {n} characters; "
                             f"{SOURCE_IDENTITY_MIN} to {SOURCE_IDENTITY_MAX}", value=value))
    if not _SOURCE_IDENTITY.fullmatch(value):
        out.append(Violation("source-identity-chars", f"source identity {value!r} has a character outside "
                             "[\\w+=,.@-]", value=value))
    if value.lower().startswith(RESERVED_PREFIX):
        out.append(Violation("source-identity-reserved", f"source identity {value!r} starts with "
                             f"{RESERVED_PREFIX!r}", value=value))
    return out
