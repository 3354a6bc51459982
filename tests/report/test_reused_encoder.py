"""strictjson.encoder: JSONEncoder's text, with its C encoder built once (issue 14).

The JSON listings' rows and the backup's canonical rows go through it; a byte of
difference would change every ``-f json`` document and every backup's checksum.
"""

from __future__ import annotations

import datetime
import json

import pytest

from vifdoctor.strictjson import encoder

VALUES = [
    {"port_id": "p", "host": "h\u00e9\n\t\"'\\", "codes": ["VD101", "VD103"], "n": None},
    {"z": 1, "a": {"y": [1.5, -0.0, 1e300, True, False], "b": ""}, "m": "\u202e\x00\U0001f600"},
    {"when": datetime.datetime(2026, 11, 30, 7, 0), "bytes": {"type": "bytes", "base64": "AA=="}},
    ["x", 3, None],
    "plain text",
    {},
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize(
    "kw",
    [
        {"allow_nan": False},
        {"sort_keys": True, "separators": (",", ":"), "allow_nan": True},
    ],
)
def test_the_same_text_as_json_encoder(value, kw):
    expected = json.JSONEncoder(default=str, **kw).encode(value)
    encode = encoder(**kw)
    assert encode(value) == expected
    assert encode(value) == expected  # built once, used again


def test_non_finite_numbers_as_json_encoder_treats_them():
    assert encoder(allow_nan=True)([float("nan")]) == "[NaN]"
    with pytest.raises(ValueError):
        encoder(allow_nan=False)([float("inf")])
