"""Static publishing, session-tag/source-identity claims, projected token files."""

from __future__ import annotations

import json
import stat

import pytest
from tokens_forge import ISSUER, NOW, claims

from rolebridge.errors import InvalidIdentityToken, ValidationError
from rolebridge.tokens import KeyRing, mint_service_account_token, parse_unverified, verify_token
from rolebridge.tokens.claims import SOURCE_IDENTITY_CLAIM, TAGS_CLAIM, session_tags, source_identity
from rolebridge.tokens.projected import refresh_at, write_token_file
from rolebridge.tokens.publish import publish_static


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    return KeyRing.create(tmp_path_factory.mktemp("ring") / "k", alg="ES256")


def test_publish_static(ring, tmp_path):
    paths = publish_static(ring, ISSUER, tmp_path / "site")
    assert [p.relative_to(tmp_path / "site").as_posix() for p in paths] == [
        ".well-known/openid-configuration",
        "keys.json",
    ]
    discovery = json.loads(paths[0].read_text())
    assert discovery["issuer"] == ISSUER and discovery["jwks_uri"] == ISSUER + "/keys.json"
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]
    jwks = json.loads(paths[1].read_text())
    assert jwks == ring.jwks() and all("d" not in k for k in jwks["keys"])
    assert stat.S_IMODE(paths[1].stat().st_mode) == 0o644
    token = mint_service_account_token(
        ring, issuer_url=ISSUER, namespace="dev", service_account="app", now=NOW
    )
    verify_token(token, issuer=ISSUER, client_ids=["sts.amazonaws.com"], jwks=jwks, now=NOW)


def _sign(over):
    from tokens_forge import seg

    return parse_unverified(f"{seg({'alg': 'ES256', 'kid': 'k'})}.{seg(claims(**over))}.AAAA")


def test_session_tags():
    assert not session_tags(_sign({}))
    tags = session_tags(
        _sign(
            {
                TAGS_CLAIM: {
                    "principal_tags": {"Team": ["data"], "Env": ["dev"]},
                    "transitive_tag_keys": ["team"],
                }
            }
        )
    )
    assert tags.tags == {"Team": "data", "Env": "dev"} and tags.transitive_keys == ("team",)
    for bad in (
        "x",
        {"principal_tags": {"Team": ["a", "b"]}},
        {"principal_tags": {"Team": "a"}},
        {"principal_tags": {"Team": ["a"], "team": ["b"]}},
        {"principal_tags": {"aws:x": ["a"]}},
        {"principal_tags": {f"k{i}": ["v"] for i in range(51)}},
        {"principal_tags": {"Team": ["a"]}, "transitive_tag_keys": ["Other"]},
        {"principal_tags": {"Team": ["a"]}, "other": 1},
        {"principal_tags": ["x"]},
        {"principal_tags": {"a": ["v"]}, "transitive_tag_keys": 5},
        {"principal_tags": {"a*b": ["v"]}},
        5,
    ):
        # AWS's answer to IdP-passed tags it cannot accept (tokens/claims.py)
        with pytest.raises(ValidationError, match=r"^Unable to validate tags$"):
            session_tags(_sign({TAGS_CLAIM: bad}))


def test_source_identity():
    assert source_identity(_sign({})) is None
    assert source_identity(_sign({SOURCE_IDENTITY_CLAIM: "alice@example.com"})) == "alice@example.com"
    for bad in ("a", "x" * 65, "aws:me", "a b", 5):
        with pytest.raises(InvalidIdentityToken, match="source identity"):
            source_identity(_sign({SOURCE_IDENTITY_CLAIM: bad}))


def test_projected_token_file(ring, tmp_path):
    token = mint_service_account_token(
        ring, issuer_url=ISSUER, namespace="dev", service_account="app", expires_in=3600, now=NOW
    )
    path = tmp_path / "token"
    write_token_file(path, token)
    assert path.read_text() == token and stat.S_IMODE(path.stat().st_mode) == 0o600
    write_token_file(path, token + "x")
    assert path.read_text() == token + "x"
    assert [p.name for p in tmp_path.iterdir()] == ["token"]
    assert refresh_at(token) == NOW + 2880
    long = mint_service_account_token(
        ring, issuer_url=ISSUER, namespace="dev", service_account="app", expires_in=48 * 3600, now=NOW
    )
    assert refresh_at(long) == NOW + 0.8 * 86400


def test_lone_surrogates_are_refused_at_any_depth() -> None:
    from rolebridge.tokens._jose import JoseFormatError, strict_json_object

    assert strict_json_object(b'{"a":"\\ud83d\\ude00","b":"\\\\ud800"}') == {"a": "\U0001f600", "b": "\\ud800"}
    for text in (b'{"iss":"\\ud800"}', b'{"\\udfff":1}', b'{"a":[{"b":["\\udabc"]}]}',
                 # nested deeper than a recursive walk can go (json.loads itself allows it)
                 b'{"a":' + b"[" * 900 + b"]" * 900 + b',"b":"\\ud800"}'):
        with pytest.raises(JoseFormatError, match="lone surrogate"):
            strict_json_object(text)
