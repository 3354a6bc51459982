"""The fast cache parse (orjson) must give what Nova's own parse gives.

orjson reads RFC 8259 JSON only and turns integers past 64 bits into floats, where
Python's ``json`` (Nova's ``jsonutils``) keeps them exact and also reads NaN,
Infinity and lone surrogates. ``read_cached_vifs`` falls back to the stdlib parse for
all of that, so the answer is ``parse_network_info``'s, cut to VIF_KEYS, whatever the
text holds.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vifdoctor import model
from vifdoctor.model import VIF_KEYS, CachedVifs, parse_network_info, read_cached_vifs

PORT = "00000000-0000-4000-8000-000000000001"


def _reference(raw: str | None) -> CachedVifs:
    cache = parse_network_info(raw)
    cut = {pid: {k: v[k] for k in VIF_KEYS if k in v} for pid, v in cache.vifs.items()}
    return CachedVifs(cut, cache.error)


def _same(raw: str | None) -> None:
    got, want = read_cached_vifs(raw), _reference(raw)
    # repr: 1 and 1.0, True and 1, and key order all differ in it
    assert repr(got) == repr(want)


def _one(rest: str) -> str:
    """A one-VIF cache's text: the port's id, then ``rest`` as written."""
    return '[{"id": "' + PORT + '", ' + rest + "}]"


HOSTILE = [
    None,
    "",
    "{}",
    '""',
    "null",
    "[]",
    "[1, 2]",
    '{"id": "x"}',
    "[{}]",
    '[{"id": 1}]',
    _one('"details": {"big": 18446744073709551616}'),
    _one('"details": {"neg": -9223372036854775809}'),
    _one('"details": {"ok": 9223372036854775807, "f": 1.5}'),
    _one('"type": 123456789012345678901234567890'),
    _one('"details": {"n": NaN, "i": -Infinity}'),
    _one('"details": {"huge": 1e400}'),
    _one('"devname": "\\ud800"'),
    _one('"type": "ovs", "type": "bridge"'),
    _one('"details": {"a": 1, "a": 2}}, {"id": "' + PORT + '", "type": "x"'),
    _one('"network": {"big": 99999999999999999999999}, "type": "ovs"'),
    "\ufeff[]",
    "[1,]",
    '["a\x01"]',
    "[]x",
    "[" * 5000 + "]" * 5000,
    # nesting orjson reads (up to 1024 levels) but Python's parser may refuse, in a kept
    # key (a float guard that recursed would overflow there) and in a dropped one
    _one('"details": ' + "[" * 900 + "1.5" + "]" * 900),
    _one('"details": ' + "[" * 1000 + "]" * 1000),
    _one('"network": ' + "[" * 1000 + "]" * 1000 + ', "type": "ovs"'),
    _one('"details": ' + '{"a": ' * 600 + "1" + "}" * 600),
    f'[{{"id": "{PORT}"}}] ',
    f'{{"id": "{PORT}"}}',
    '"text"',
    "123456789012345678901234567890",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_caches_read_as_nova_reads_them(raw: str | None) -> None:
    _same(raw)


def test_the_fast_parse_is_taken_for_ordinary_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ordinary cache never reaches the stdlib parse (else the fast path is dead code)."""
    calls: list[object] = []
    monkeypatch.setattr(model, "parse_network_info", lambda raw: calls.append(raw))
    vif = {"id": PORT, "type": "ovs", "details": {"port_filter": True}, "devname": "tap1"}
    got = read_cached_vifs(json.dumps([{**vif, "network": {"mtu": 1450.0}}]))
    assert got == CachedVifs({PORT: vif}) and not calls


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", *VIF_KEYS]), inner, max_size=4)
    ),
    max_leaves=12,
)
_vif = st.fixed_dictionaries(
    {"id": st.sampled_from([PORT, PORT.upper(), "p2"])},
    optional={k: _values for k in (*VIF_KEYS[1:], "network")},
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(_vif, max_size=3), _values))
def test_any_json_nova_could_have_written_reads_the_same(value: object) -> None:
    _same(json.dumps(value))  # NaN and Infinity as Python's json writes them
