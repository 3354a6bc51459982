"""Every output format survives any value the databases can hold, in time linear in size.

Issue 13: wrapping a 1 MB value in a table took minutes, ``-f json`` emitted NaN
and Infinity, ``-f yaml`` recursed too deep on nested objects, and a lone surrogate
(from a JSON ``\\ud800`` escape in a column) crashed the output. ``-f html`` draws the
audit report behind the listing: deep nesting in an agent's configurations ended in a
RecursionError, a 1 MB value was drawn on every chart (17 MB of page), and a lone
surrogate in a host crashed the findings' spool.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from html.parser import HTMLParser

import pytest
import yaml
from testkit.hostilekit import hostile_report

from vifdoctor.report import FORMATS, Column, Listing, renderer


def _listing(value) -> Listing:
    rows = [{"port_id": "p1", "details": value}]
    return Listing(
        [Column("port_id", "Port"), Column("details", "Details")],
        rows,
        {"tool": "t", "extra": value, "findings": rows},
        report=hostile_report(value),
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
    if fmt == "html":
        assert _blob(text)["strings"]


class _Tags(HTMLParser):
    """The elements and attributes of a page, in order: its markup, without its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(sorted(k for k, _ in attrs))))


def _tags(page: str) -> list[tuple]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def _blob(page: str) -> dict:
    """The page's data, parsed as strictly as the page's own JSON.parse does."""
    start = page.index('<script id="vd-data" type="application/json">') + len(
        '<script id="vd-data" type="application/json">'
    )
    return json.loads(page[start : page.index("</script>", start)], parse_constant=_no_constants)


HOSTILE = [
    "</script><script>window.pwned=1</script><b onmouseover=x>",
    "]]><!-- --><svg onload=alert(1)>&amp;&lt;",
    "\x00\x1b[31mred\u202e\n\r\t\u2028\u2029 \\",
    "p\ud800 \udfff",
    "x" * 1_000_000,
    float("nan"),
    {"a": [float("inf"), -float("inf")]},
    _deep(3000),
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_html_keeps_data_out_of_markup_and_stays_linear(value):
    """Same markup as a benign page; the data whole in strict JSON; the page's size
    the value's size once (in the data) plus the page itself."""
    page = _render("html", value)
    benign = _render("html", "compute1")
    assert _tags(page) == _tags(benign)  # no element or attribute came from the data
    assert "<script>window.pwned" not in page and "<svg onload" not in page
    blob = _blob(page)  # strict JSON: no NaN/Infinity, nesting bounded
    if isinstance(value, str):
        assert value in blob["strings"]  # the data keeps the value whole
    size = len(value) if isinstance(value, str) else 0
    assert len(page) < len(benign) + 1.1 * size + 20_000


@pytest.mark.parametrize("fmt", FORMATS)
def test_lone_surrogate_survives_every_format_on_a_real_stdout(fmt, tmp_path):
    """Through the real entry point's streams (UTF-8, as a pipe), not an in-memory string."""
    code = (
        "import sys\n"
        "from vifdoctor.cmd.main import _robust_streams\n"
        "from vifdoctor.report import renderer, Column, Listing\n"
        "_robust_streams()\n"
        "from vifdoctor.results import AuditReport\n"
        "rows = [{'port_id': 'p\\ud800', 'details': {'x': '\\udfff'}}]\n"
        "doc = {'tool': '\\ud800', 'findings': rows}\n"
        "report = AuditReport(schema={'url': '\\ud800'}, assumptions=['\\udfff'])\n"
        "report.findings.add({'code': 'VD101', 'severity': 'failure', 'port_id': 'p\\ud800',"
        " 'host': 'h\\udfff', 'message': '\\ud800'}, ('0', 'VD101', 'h\\udfff', 'p\\ud800'))\n"
        "report.by_code['VD101'] += 1\n"
        "report.by_host['h\\udfff'] += 1\n"
        f"renderer({fmt!r})(Listing([Column('port_id', 'Port'), Column('details', 'D')], "
        "rows, doc, report=report), sys.stdout)\n"
    )
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    proc.stdout.decode("utf-8")  # valid UTF-8
