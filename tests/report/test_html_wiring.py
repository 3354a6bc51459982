"""The HTML report's wiring diagrams against real wiring a host scan saw.

nova 34.0.0 / os-vif plug three ports of one VM in a lab compute host (tests/hostlab.py);
one hybrid port then loses its qvo from OVS. host-scan records it; the audit with
--host-reports renders HTML; headless Chromium shows, per port, what the binding
says, what the host needs and what the scan saw, with the differences marked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from testkit.cloudfactory import run_cli
from testkit.headless import Chromium
from testkit.hostlab import ComputeHost, dev
from testkit.labcloud import (
    DIRECT_DETAILS,
    HYBRID_DETAILS,
    neutron_db,
    new_id,
    nova_vif,
    ovs_agent,
    scan_into,
    vm_port,
)

pytest_plugins = ["testkit.hostlab"]


def rows(b: Chromium, port: str) -> list[list]:
    """Per diagram row: label, kind, devices drawn, marked devices, missing ones, badge."""
    return b.evaluate(
        f"Array.from(document.querySelectorAll('svg.wiring[data-port=\"{port}\"] g.wrow'))"
        ".map(g => [g.dataset.row, g.dataset.kind,"
        " Array.from(g.querySelectorAll('rect.dev:not(.ghost) title')).map(t => t.textContent"
        ".split(' ')[0]),"
        " Array.from(g.querySelectorAll('rect.diff title')).map(t => t.textContent.split(' ')[0]),"
        " Array.from(g.querySelectorAll('rect.ghost title')).map(t => t.textContent"
        ".split(' ')[0]),"
        " (g.querySelector('.badge, .same') || {}).textContent || ''])"
    )


def test_diagrams_show_what_the_host_scan_saw(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    vm = new_id()
    broken, direct, drifted = new_id(), new_id(), new_id()
    host.plug(
        vm,
        [
            nova_vif(broken, HYBRID_DETAILS),
            nova_vif(direct, DIRECT_DETAILS),
            nova_vif(drifted, HYBRID_DETAILS),
        ],
    )
    host.vsctl("del-port", "br-int", dev("qvo", broken))
    code, report, _ = scan_into(host, tmp_path / "reports")
    assert code == 0, report["errors"]
    stale = {**HYBRID_DETAILS, "ovs_hybrid_plug": False, "ovs_create_tap": True}
    unscanned = new_id()
    url = neutron_db(
        sqlite_url,
        [
            vm_port(broken, vm, host.name, HYBRID_DETAILS),
            vm_port(direct, vm, host.name, DIRECT_DETAILS),
            vm_port(drifted, vm, host.name, stale),
            vm_port(unscanned, new_id(), "compute-unscanned", HYBRID_DETAILS),
        ],
        [ovs_agent(host.name, hybrid=True)],
    )
    code, out, err = run_cli(
        ["audit", "--neutron-db", url, "--host-reports", str(tmp_path / "reports"), "-f", "json"]
    )
    codes = {(f["code"], f["port_id"]) for f in json.loads(out)["findings"]}
    assert {("VD303", broken), ("VD301", direct), ("VD302", drifted)} <= codes, codes
    code, html, err = run_cli(
        ["audit", "--neutron-db", url, "--host-reports", str(tmp_path / "reports"), "-f", "html"]
    )
    assert code == 2, err
    page = tmp_path / "wiring.html"
    page.write_text(html)

    hybrid_chain = [dev(p, broken) for p in ("tap", "qbr", "qvb", "qvo")] + ["br-int"]
    with Chromium() as b:
        b.load(page, f"#port={broken}")
        assert b.problems() == []
        binding, needs, seen = rows(b, broken)
        assert binding == ["binding says", "hybrid", hybrid_chain, [], [], "= needs"]
        assert needs[:3] == ["host needs", "hybrid", hybrid_chain]
        # the scan saw the qbr/qvb/tap but no qvo on OVS: that device is marked
        assert seen == [
            "host scan saw",
            "broken hybrid",
            hybrid_chain,
            [dev("qvo", broken)],
            [],
            "≠ needs",
        ]
        assert f"{dev('qvo', broken)} is not on Open vSwitch" in b.evaluate(
            f"document.querySelector('.port[data-port=\"{broken}\"] ul.problems').textContent"
        )

        # the VM's other ports are drawn in the same instance view
        binding, needs, seen = rows(b, direct)
        missing = [dev(p, direct) for p in ("qbr", "qvb", "qvo")]
        assert binding[1:] == ["direct", [dev("tap", direct), "br-int"], [], missing, "≠ needs"]
        assert seen[:2] == ["host scan saw", "direct"]
        assert seen[4:] == [missing, "≠ needs"]

        # the host Neutron binds a VM port to, with no report in the folder
        assert b.evaluate("document.querySelector('#coverage p').textContent") == (
            "1 host(s) with a report; 1 host(s) with VM ports and none (their live wiring is "
            "not judged)."
        )
        assert b.evaluate(
            "Array.from(document.querySelectorAll('#coverage tr > *')).map(c => c.textContent)"
        ) == ["compute-unscanned", "1 VM port(s): not in the folder"]
        binding, needs, seen = rows(b, drifted)
        assert binding[1] == "direct" and binding[5] == "≠ needs"
        assert seen[:2] == ["host scan saw", "hybrid"] and seen[3:] == [[], [], "= needs"]
        shots = os.environ.get("VIFDOCTOR_SCREENSHOT_DIR")
        if shots:  # docs/html-report-wiring.png is made this way (docs/testing.md)
            b.evaluate(
                f"document.querySelector('.port[data-port=\"{broken}\"]')"
                ".closest('section').scrollIntoView()"
            )
            b.screenshot(Path(shots) / "html-report-wiring.png")
