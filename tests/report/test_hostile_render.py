"""Every output format survives any value the databases can hold, in time linear in size.

Issue 13: wrapping a 1 MB value in a table took minutes, ``-f json`` emitted NaN
and Infinity, ``-f yaml`` recursed too deep on nested objects, and a lone surrogate
(from a JSON ``\\ud800`` escape in a column) crashed the output.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from vifdoctor.report import FORMATS as ALL_FORMATS
from vifdoctor.report import Column, Listing, renderer

FORMATS = [f for f in ALL_FORMATS if f != "html"]  # html renders audit reports only


def _listing(value) -> Listing:
    rows = [{"port_id": "p1", "details": value}]
    return Listing(
        [Column("port_id", "Port"), Column("details", "Details")],
        rows,
        {"tool": "t", "extra": value, "findings": rows},
    )


def _render(fmt: str, value) -> str:
    out = io.StringIO()
    renderer(fmt)(_listing(value), out)
    return out.getvalue()


def _deep(levels: int):
    value: object = "bottom"
    for _ in range(levels):
        value = {"k": [value]}
    return value


def test_a_huge_value_is_cut_in_a_table_quickly():
    value = "x" * 1_000_000
    started = time.monotonic()
    text = _render("table", value)
    assert time.monotonic() - started < 5
    assert "cut: 1000000 characters" in text
    assert len(text) < 10_000


def _no_constants(name):
    raise AssertionError(f"non-strict JSON constant {name}")


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), -float("inf"), {"a": [float("nan")]}]
)
def test_json_is_strict(value):
    doc = json.loads(_render("json", value), parse_constant=_no_constants)
    assert doc["findings"][0]["details"] is not None


@pytest.mark.parametrize("fmt", FORMATS)
def test_deep_nesting_survives_every_format(fmt):
    text = _render(fmt, _deep(3000))
    if fmt == "yaml":
        assert yaml.safe_load(text)["tool"] == "t"
    if fmt == "json":
        assert json.loads(text)["tool"] == "t"


@pytest.mark.parametrize("fmt", FORMATS)
def test_lone_surrogate_survives_every_format_on_a_real_stdout(fmt, tmp_path):
    """Through the real entry point's streams (UTF-8, as a pipe), not an in-memory string."""
    code = (
        "import sys\n"
        "from vifdoctor.cmd.main import _robust_streams\n"
        "from vifdoctor.report import renderer, Column, Listing\n"
        "_robust_streams()\n"
        "rows = [{'port_id': 'p\\ud800', 'details': {'x': '\\udfff'}}]\n"
        "doc = {'tool': '\\ud800', 'findings': rows}\n"
        f"renderer({fmt!r})(Listing([Column('port_id', 'Port'), Column('details', 'D')], "
        "rows, doc), sys.stdout)\n"
    )
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    proc.stdout.decode("utf-8")  # valid UTF-8
