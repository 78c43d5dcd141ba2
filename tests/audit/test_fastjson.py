"""fastjson: orjson where it can, the standard library where orjson refuses; each reads the other."""

from __future__ import annotations

import json

import orjson
import pytest

from rolebridge import fastjson


@pytest.mark.parametrize("value", [
    {"sub": "x\ud800y"},  # a lone surrogate: orjson refuses to write it
    {"n": 2**70},  # beyond 64 bits
    {1: "non-string key"},
    {"text": "caf\u00e9 line\nbreak \u2028 \U0001f600", "list": [1, 2.5, None, True]},
])
def test_what_either_encoder_writes_reads_back_the_same(value: dict) -> None:
    data = fastjson.dumps(value)
    assert b"\n" not in data  # one value, one line
    expected = json.loads(json.dumps(value))  # what the standard library makes of it (keys become str)
    assert fastjson.loads(data) == expected
    assert fastjson.loads(data.decode()) == expected


def test_orjson_alone_would_refuse_these() -> None:
    """Why the fallback exists: the cases above are not hypothetical."""
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps({"sub": "x\ud800y"})
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(json.dumps({"sub": "x\ud800y"}))
