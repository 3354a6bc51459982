"""The HTML report (-f html) opened in a real headless Chromium.

The demo's cloud is audited to one file; Chromium loads it from disk with the
network off and the tests read the rendered DOM through the DevTools protocol:
the counts the page shows against the JSON document of the same audit, the
table's filter/sort/paging, an instance's wiring diagrams, and that the page
logged no error and asked for nothing but itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from testkit.cloudfactory import run_cli, write
from testkit.headless import Chromium

from vifdoctor.demo.builder import AgentSpec, BindingSpec, CloudSpec, NetworkSpec, PortSpec
from vifdoctor.demo.incident import BINDING_FAILED_PORT_ID, MALFORMED_PORT_ID

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser():
    with Chromium() as b:
        yield b


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo's audit as HTML and as JSON, and its remediation as HTML and JSON."""
    folder = tmp_path_factory.mktemp("demo")
    code, html, err = run_cli(["demo", "--dir", str(folder), "-f", "html"])
    assert code == 0, err
    (folder / "audit.html").write_text(html)
    nova = f"sqlite:///{folder}/nova.sqlite"
    neutron = f"sqlite:///{folder}/neutron.sqlite"
    code, out, err = run_cli(["audit", "--neutron-db", neutron, "--nova-db", nova, "-f", "json"])
    assert code == 2, err
    doc = json.loads(out)
    code, rem, err = run_cli(
        ["remediation", "--neutron-db", neutron, "--nova-db", nova, "-f", "html"]
    )
    assert code == 0, err
    (folder / "remediation.html").write_text(rem)
    code, out, err = run_cli(
        ["remediation", "--neutron-db", neutron, "--nova-db", nova, "-f", "json"]
    )
    return {"folder": folder, "html": html, "doc": doc, "plan": json.loads(out), "neutron": neutron}


def count(b: Chromium, selector: str) -> int:
    return b.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")


def text(b: Chromium, selector: str) -> str:
    return b.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")


def test_file_is_self_contained(demo: dict) -> None:
    html = demo["html"]
    assert html.startswith("<!DOCTYPE html>")
    # nothing that could make a browser fetch: no URL scheme, no src/href to a file
    assert not re.search(r"https?://", html), re.search(r".{40}https?://.{40}", html)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", html)
    assert "@import" not in html and "url(" not in html


def test_demo_report_renders_the_audit_in_chromium(demo: dict, browser: Chromium) -> None:
    doc, summary = demo["doc"], demo["doc"]["summary"]
    seconds = browser.load(demo["folder"] / "audit.html")
    assert browser.problems() == []
    assert browser.requests() == [(demo["folder"] / "audit.html").as_uri()]
    assert seconds < 10
    assert text(browser, "#n-findings") == str(summary["findings"])
    assert text(browser, "#n-failure") == str(summary["by_severity"]["failure"])
    assert text(browser, "#n-instances") == str(summary["instances_affected"])
    # every finding is a row (18 < one page), in the document's order
    assert count(browser, "#findings-table tbody tr") == summary["findings"]
    ports = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
        ".map(tr => tr.children[2].textContent)"
    )
    assert ports == [f["port_id"] for f in doc["findings"]]
    # heat map: one row per host with findings, one cell title per (host, code)
    cells = browser.evaluate(
        "Array.from(document.querySelectorAll('#heat svg title')).map(t => t.textContent)"
    )
    for host, n in summary["by_host"].items():
        per_code = [c for c in cells if c.startswith(host + " ")]
        assert sum(int(c.rsplit(": ", 1)[1]) for c in per_code) == n
    # the instance list holds every affected instance
    assert browser.evaluate("document.querySelector('#i-count').textContent") == (
        f"{summary['instances_affected']} rows"
    )
    browser.screenshot(demo["folder"] / "audit.png", 2600)
    assert (demo["folder"] / "audit.png").stat().st_size > 50_000
    shots = os.environ.get("VIFDOCTOR_SCREENSHOT_DIR")
    if shots:  # docs/html-report.png is made this way (docs/testing.md)
        browser.screenshot(Path(shots) / "html-report.png", 1500)


def test_filter_sort_and_page(demo: dict, browser: Chromium) -> None:
    summary = demo["doc"]["summary"]
    browser.load(demo["folder"] / "audit.html")
    browser.evaluate(
        "(() => { const s = document.getElementById('f-code'); s.value = 'VD101';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    codes = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
        ".map(tr => tr.children[0].textContent)"
    )
    assert codes == ["VD101"] * summary["by_code"]["VD101"]
    browser.evaluate(
        "(() => { const s = document.getElementById('f-code'); s.value = '';"
        " s.dispatchEvent(new Event('change'));"
        " const i = document.getElementById('f-text'); i.value = 'compute-lb000';"
        " i.dispatchEvent(new Event('input')); })()"
    )
    # the text filter is debounced (150 ms)
    browser.evaluate("new Promise(r => setTimeout(r, 400))")
    hosts = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
        ".map(tr => tr.children[3].textContent)"
    )
    assert hosts == ["compute-lb000"]
    browser.evaluate(
        "(() => { const i = document.getElementById('f-text'); i.value = '';"
        " i.dispatchEvent(new Event('input')); })()"
    )
    browser.evaluate("new Promise(r => setTimeout(r, 400))")
    browser.evaluate("document.querySelector('#findings-table th[data-col=\"3\"]').click()")
    hosts = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
        ".map(tr => tr.children[3].textContent)"
    )
    assert hosts == sorted(f["host"] for f in demo["doc"]["findings"])
    browser.evaluate("document.querySelector('#findings-table th[data-col=\"3\"]').click()")
    hosts = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
        ".map(tr => tr.children[3].textContent)"
    )
    assert hosts == sorted((f["host"] for f in demo["doc"]["findings"]), reverse=True)
    # pages of 50: 18 rows fit on one
    browser.evaluate(
        "(() => { const s = document.querySelector('#f-pager select');"
        " s.value = '50'; s.dispatchEvent(new Event('change')); })()"
    )
    assert text(browser, "#f-pager .where") == f"1–{summary['findings']} of {summary['findings']}"


def test_a_ports_wiring_diagram_marks_what_differs(demo: dict, browser: Chromium) -> None:
    vd101 = next(f for f in demo["doc"]["findings"] if f["code"] == "VD101")
    port = vd101["port_id"]
    browser.load(demo["folder"] / "audit.html", f"#port={port}")
    assert browser.problems() == []
    svg = f'svg.wiring[data-port="{port}"]'
    assert count(browser, svg) == 1
    rows = browser.evaluate(
        f"Array.from(document.querySelectorAll('{svg} g.wrow'))"
        ".map(g => [g.dataset.row, g.dataset.kind, g.querySelectorAll('rect.diff').length,"
        " g.querySelectorAll('rect.ghost').length, (g.querySelector('.badge') || {}).textContent])"
    )
    # the binding plugs direct (tap -> br-int); the host needs hybrid: qbr, qvb, qvo missing.
    # No host scan: the third row is Nova's cache, which (stale) says hybrid.
    assert rows[0] == ["binding says", "direct", 0, 3, "≠ needs"]
    assert rows[1][:2] == ["host needs", "hybrid"]
    assert rows[2][0] == "Nova's cache says"
    names = browser.evaluate(
        f"Array.from(document.querySelectorAll('{svg} g.wrow')[1]"
        ".querySelectorAll('text')).map(t => t.textContent)"
    )
    for prefix in ("tap", "qbr", "qvb", "qvo"):
        assert (prefix + port)[:14] in names
    # the instance view shows its remediation steps with the commands
    inst = next(i for i in demo["doc"]["instances"] if i["device_id"] == vd101["device_id"])
    shown = browser.evaluate(
        "Array.from(document.querySelectorAll('#instance-detail ol.steps "
        "code')).map(c => c.textContent)"
    )
    assert shown == [s["command"] for s in inst["steps"] if s["command"]]
    assert inst["impact"]["next_stop_start_or_hard_reboot"] in text(browser, "#instance-detail")


def test_clicking_a_finding_opens_its_instance(demo: dict, browser: Chromium) -> None:
    browser.load(demo["folder"] / "audit.html")
    failed = next(f for f in demo["doc"]["findings"] if f["port_id"] == BINDING_FAILED_PORT_ID)
    browser.evaluate(
        "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
        f".find(tr => tr.children[2].textContent === '{failed['port_id']}').click()"
    )
    assert text(browser, "#instance-detail h3") == failed["device_id"]
    assert count(browser, f'svg.wiring[data-port="{failed["port_id"]}"]') == 1


def test_remediation_report_lists_every_step(demo: dict, browser: Chromium) -> None:
    browser.load(demo["folder"] / "remediation.html")
    assert browser.problems() == []
    plan = demo["plan"]
    assert count(browser, "#steps-table tbody tr") == len(plan["steps"])
    commands = browser.evaluate(
        "Array.from(document.querySelectorAll('#steps-table tbody code')).map(c => c.textContent)"
    )
    assert commands == [s["command"] for s in plan["steps"]]
    assert text(browser, "h1") == "vifdoctor remediation plan"


def test_hostile_text_stays_text(tmp_path: Path, browser: Chromium) -> None:
    """A stored vif_details that closes the script element is shown, not run."""
    url = f"sqlite:///{tmp_path}/n.sqlite"
    evil = '{"x": "</script><script>window.pwned=1</script><b>'
    write(
        url,
        CloudSpec(
            networks=[NetworkSpec("net-1", "n", "proj", [])],
            agents=[AgentSpec(host="c1", agent_type="Open vSwitch agent", configurations={})],
            ports=[
                PortSpec(
                    id=MALFORMED_PORT_ID,
                    network_id="net-1",
                    device_owner="compute:nova",
                    device_id="vm-1",
                    project_id="proj",
                    binding=BindingSpec(host="c1", vif_type="ovs", vif_details=evil),
                )
            ],
        ),
        layout="ocata",
    )
    code, html, err = run_cli(["audit", "--neutron-db", url, "-f", "html"])
    assert code == 2, err
    (tmp_path / "r.html").write_text(html)
    browser.load(tmp_path / "r.html")
    assert browser.problems() == []
    assert browser.evaluate("window.pwned === undefined")
    messages = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
        ".map(tr => tr.children[7].textContent)"
    )
    assert any("</script><script>window.pwned=1" in m for m in messages), messages


HOSTILE = {
    "script": "</script><script>window.pwned=1</script><img src=x onerror=window.pwned=2>",
    "controls": "h\x00\x1b[31m\u202e\n\r\t\u2028\u2029\\ 'q\" &amp;",
    "surrogate": "p\ud800 \udfff",
    "big": "x" * 1_000_000,
    "nan": float("nan"),
    "deep": json.loads("[" * 900 + "]" * 900),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_values_load_as_text_in_chromium(name: str, tmp_path: Path, browser: Chromium):
    """The page with hostile values in every field it draws (testkit.hostilekit) loads in
    a real browser with no error, runs nothing from the data, and shows the text."""
    from testkit.hostilekit import hostile_report

    from vifdoctor.report import Column, Listing, renderer

    report = hostile_report(HOSTILE[name])
    page = tmp_path / "hostile.html"
    with page.open("w", encoding="utf-8") as out:  # strict UTF-8: no lone surrogate left
        renderer("html")(Listing([Column("port_id", "Port")], [], {}, report=report), out)
    browser.load(page)
    assert browser.problems() == []
    assert browser.evaluate("window.pwned === undefined")
    value = HOSTILE[name]
    shown = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
        ".map(tr => tr.children[2].textContent)"
    )
    assert len(shown) == 1
    if isinstance(value, str) and name != "surrogate":  # CDP returns lone surrogates as U+FFFD
        # the data parsed by the page is the value, byte for byte ...
        blob = browser.evaluate("JSON.parse(document.getElementById('vd-data').textContent)")
        assert value in blob["strings"]
        # ... and the cell shows it as text (as the HTML parser keeps text: no NUL, no CR)
        assert shown == [value.replace("\x00", "").replace("\r", "\n")]


def test_html_is_refused_where_there_is_no_report(demo: dict) -> None:
    code, out, err = run_cli(["plan", "--neutron-db", demo["neutron"], "-f", "html"])
    assert code == 3 and out == ""
    assert err.count("\n") == 1 and "-f html is for `audit` and `remediation`" in err


def test_a_built_wheel_renders_the_report(tmp_path: Path) -> None:
    """What `pip install .` installs carries the template, stylesheet and script, and works.

    The wheel is built as pip builds it (isolated, non-editable), unpacked, and run
    with nothing of the source tree on the path.
    """
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("vifdoctor-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    for name in ("report.html.j2", "report.css", "report.js"):
        assert f"vifdoctor/report/templates/{name}" in names, sorted(names)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path / "site")}
    run = subprocess.run(
        [sys.executable, "-m", "vifdoctor", "demo", "--dir", str(tmp_path / "demo"), "-f", "html"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert 'id="vd-data"' in run.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import vifdoctor; print(vifdoctor.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(tmp_path / "site"))


def test_ovn_migration_progress(tmp_path: Path, browser: Chromium) -> None:
    """VM ports bound by ML2/OVN beside agent-bound ones: the share already on OVN."""
    url = f"sqlite:///{tmp_path}/n.sqlite"
    ovs = '{"port_filter": true, "ovs_hybrid_plug": true}'
    ports = [
        PortSpec(
            id=f"00000000-0000-4000-8000-{n:012d}",
            network_id="net-1",
            device_owner="compute:nova",
            device_id=f"vm-{n}",
            project_id="proj",
            binding=BindingSpec(
                host="c1", vif_type="ovs", vif_details=ovs, driver="ovn" if n < 3 else "openvswitch"
            ),
        )
        for n in range(8)
    ]
    write(
        url,
        CloudSpec(
            networks=[NetworkSpec("net-1", "n", "proj", [])],
            agents=[AgentSpec(host="c1", agent_type="Open vSwitch agent", configurations={})],
            ports=ports,
        ),
        layout="ocata",
    )
    code, html, err = run_cli(["audit", "--neutron-db", url, "-f", "html"])
    assert code in (0, 1, 2), err
    (tmp_path / "r.html").write_text(html)
    browser.load(tmp_path / "r.html")
    assert browser.problems() == []
    shown = text(browser, "#ovn p")
    assert shown.startswith("3 of 8 VM ports (37.5%) are on ML2/OVN; 5 still"), shown
    assert (
        browser.evaluate("document.querySelector('#ovn svg rect.done').getAttribute('width')")
        == "188"
    )
