"""The whole audit, through the command line, on every schema layout and backend.

One cloud (``layout_cloud``) holds one row per case the audit must tell apart;
it is written with the demo builder into each legacy layout (SQLite and
MariaDB) and into neutron 29.0.0's real schema (MariaDB from its migrations,
PostgreSQL, SQLite from its models), and the JSON report is checked exactly.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from testkit.cloudfactory import HYBRID, LINUXBRIDGE, audit_json, pairs, write

from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
    utcnow,
)

OVS, LB = "Open vSwitch agent", "Linux bridge agent"
NET1 = "aaaaaaaa-0000-4000-8000-000000000001"
NET2 = "aaaaaaaa-0000-4000-8000-000000000002"
SEG1 = "bbbbbbbb-0000-4000-8000-000000000001"
SEG2 = "bbbbbbbb-0000-4000-8000-000000000002"
PROJ1 = "11111111111111111111111111111111"
PROJ2 = "22222222222222222222222222222222"


def _pid(n: int) -> str:
    return f"cccccccc-0000-4000-8000-{n:012d}"


P_EMPTY, P_GOOD, P_STALE, P_DHCP, P_ROUTER = (_pid(i) for i in range(1, 6))
P_FAILED, P_LB, P_DEAD, P_MALFORMED, P_MIG = (_pid(i) for i in range(6, 11))
BROKEN_HOST = "cmp-broken"

LEGACY_PAIRS = {
    ("VD101", P_EMPTY),
    ("VD103", P_EMPTY),  # Havana-era empty details, iptables_hybrid host
    ("VD102", P_STALE),  # hybrid row on a Newton+ agent reporting ovs_hybrid_plug false
    ("VD105", P_FAILED),
    ("VD108", P_LB),
    ("VD107", P_DEAD),
    ("VD104", P_MALFORMED),
    # ...and, as the {} Neutron hands Nova for that text, what an empty row gets
    ("VD101", P_MALFORMED),
    ("VD103", P_MALFORMED),
    ("VD111", BROKEN_HOST),
}
OCATA_PAIRS = LEGACY_PAIRS | {("VD101", P_MIG), ("VD103", P_MIG), ("VD109", P_MIG)}


def _ovs(host: str, details: str, **kw) -> BindingSpec:
    seg = SEG2 if kw.pop("net2", False) else SEG1
    return BindingSpec(host=host, vif_type="ovs", vif_details=details, segment_id=seg, **kw)


def _vm(
    pid: str,
    binding: BindingSpec,
    *,
    net: str = NET1,
    project: str = PROJ1,
    extra: list[BindingSpec] | None = None,
) -> PortSpec:
    return PortSpec(
        id=pid,
        network_id=net,
        device_owner="compute:nova",
        device_id=f"vm-{pid[-4:]}",
        project_id=project,
        binding=binding,
        extra_bindings=extra or [],
    )


def layout_cloud(multi_binding: bool) -> CloudSpec:
    """Every case once; ``multi_binding`` adds the Ocata+ INACTIVE duplicate."""
    networks = [
        NetworkSpec(NET1, "net1", PROJ1, [SegmentSpec(SEG1, "vxlan", None, 1001)]),
        NetworkSpec(NET2, "net2", PROJ2, [SegmentSpec(SEG2, "vlan", "physnet1", 200)]),
    ]
    silent = {"bridge_mappings": {}, "tunnel_types": ["vxlan"], "devices": 1}
    agents = [
        AgentSpec("cmp-hybrid", OVS, silent),  # pre-Newton agent: iptables_hybrid assumed
        AgentSpec(
            "cmp-ovsfw",
            OVS,
            {"ovs_hybrid_plug": False, "datapath_type": "system", "integration_bridge": "br-int"},
        ),
        AgentSpec("net-1", OVS, silent),
        AgentSpec("net-1", "DHCP agent", {"networks": 2}),
        AgentSpec("cmp-lb", OVS, silent),  # the host moved from linuxbridge to OVS
        AgentSpec("cmp-dead", OVS, silent, alive=False),
        AgentSpec(BROKEN_HOST, OVS, '{"bridge_mappings": {"physnet1": "br-'),
    ]
    ports = [
        _vm(P_EMPTY, _ovs("cmp-hybrid", "")),
        _vm(P_GOOD, _ovs("cmp-hybrid", HYBRID)),
        _vm(P_STALE, _ovs("cmp-ovsfw", HYBRID, net2=True), net=NET2),
        # The blanket UPDATE rewrote these too; Nova never plugs them.
        PortSpec(P_DHCP, NET1, "network:dhcp", f"dhcp-x-{NET1}", PROJ1, _ovs("net-1", "")),
        PortSpec(P_ROUTER, NET1, "network:router_interface", "router-1", PROJ1, _ovs("net-1", "")),
        _vm(P_FAILED, BindingSpec("cmp-hybrid", "binding_failed", "", driver=None), project=PROJ2),
        _vm(
            P_LB,
            BindingSpec("cmp-lb", "bridge", LINUXBRIDGE, driver="linuxbridge", segment_id=SEG2),
            net=NET2,
        ),
        _vm(P_DEAD, _ovs("cmp-dead", HYBRID), project=PROJ2),
        _vm(P_MALFORMED, _ovs("cmp-hybrid", '{"port_filter": true, "ovs_hybrid_pl')),
    ]
    if multi_binding:
        # A failed live migration to cmp-ghost (no agent at all): as a live row it
        # would be VD107/VD101; it must only be VD109, and the ACTIVE row is judged.
        ports.append(
            _vm(P_MIG, _ovs("cmp-hybrid", ""), extra=[_ovs("cmp-ghost", "", status="INACTIVE")])
        )
    return CloudSpec(networks, agents, ports)


def expected_summary(multi_binding: bool) -> dict:
    skipped = {
        "network:dhcp (Nova plugs nothing)": 1,
        "network:router_interface (Nova plugs nothing)": 1,
    }
    summary = {
        "bindings": 9,
        "judged": 7,  # P_EMPTY, P_GOOD, P_STALE, P_FAILED, P_LB, P_DEAD, P_MALFORMED
        "skipped": skipped,
        "findings": 10,
        "by_code": {
            "VD101": 2,
            "VD102": 1,
            "VD103": 2,
            "VD104": 1,
            "VD105": 1,
            "VD107": 1,
            "VD108": 1,
            "VD111": 1,
        },
        "by_severity": {"info": 0, "warning": 4, "failure": 6},
        "by_host": {"cmp-hybrid": 6, "cmp-ovsfw": 1, "cmp-lb": 1, "cmp-dead": 1, BROKEN_HOST: 1},
        "exit_code": 2,
    }
    if multi_binding:
        summary.update(bindings=11, judged=8, findings=13)
        summary["skipped"] = {**skipped, "inactive binding": 1}
        summary["by_code"].update(VD101=3, VD103=3, VD109=1)
        summary["by_severity"] = {"info": 0, "warning": 6, "failure": 7}
        summary["by_host"].update({"cmp-hybrid": 8, "cmp-ghost": 1})
    summary["by_host"] = dict(sorted(summary["by_host"].items()))
    summary["skipped"] = dict(sorted(summary["skipped"].items()))
    summary["by_code"] = dict(sorted(summary["by_code"].items()))
    return summary


def check_report(url: str, layout: str, multi_binding: bool, project_column: str) -> dict:
    code, doc = audit_json(url)
    assert doc["schema"]["layout"] == layout
    assert doc["schema"]["project_column"] == project_column
    assert pairs(doc) == (OCATA_PAIRS if multi_binding else LEGACY_PAIRS)
    assert doc["summary"] == expected_summary(multi_binding)
    assert code == 2
    by_pair = {(f["code"], f["port_id"], f["host"]): f for f in doc["findings"]}
    # The empty Havana row: what the incident's operator wrote by hand, derived per row.
    vd101 = by_pair[("VD101", P_EMPTY, "cmp-hybrid")]
    assert vd101["expected_details"] == {"port_filter": True, "ovs_hybrid_plug": True}
    assert (vd101["nova_plug"], vd101["needed_plug"]) == ("direct", "hybrid")
    assert vd101["network_id"] == NET1 and vd101["project_id"] == PROJ1
    # every finding carries its own port's ids, on every layout and backend
    ids = {p.id: (p.device_id, p.network_id, p.project_id) for p in layout_cloud(True).ports}
    for f in (f for f in doc["findings"] if f["port_id"]):
        assert (f["device_id"], f["network_id"], f["project_id"]) == ids[f["port_id"]], f
    assert by_pair[("VD108", P_LB, "cmp-lb")]["driver"] == "linuxbridge"
    if multi_binding:
        # the ACTIVE row's finding is on the ACTIVE host; the INACTIVE host only has VD109
        assert ("VD101", P_MIG, "cmp-hybrid") in by_pair
        assert by_pair[("VD109", P_MIG, "cmp-ghost")]["status"] == "INACTIVE"
        assert {f["code"] for f in doc["findings"] if f["host"] == "cmp-ghost"} == {"VD109"}
    return doc


LEGACY = [
    ("icehouse", "icehouse", False, "tenant_id"),
    ("kilo", "kilo", False, "tenant_id"),
    ("newton", "kilo", False, "project_id"),
    ("ocata", "ocata", True, "project_id"),
]


@pytest.mark.parametrize(
    ("layout", "detected", "multi", "project_column"), LEGACY, ids=[x[0] for x in LEGACY]
)
def test_legacy_layouts(db_url, layout, detected, multi, project_column):
    write(db_url, layout_cloud(multi), layout)
    check_report(db_url, detected, multi, project_column)


def test_ocata_layout_on_postgresql(postgresql_url):
    write(postgresql_url, layout_cloud(True), "ocata")
    check_report(postgresql_url, "ocata", True, "project_id")


def test_neutron29_mariadb(neutron29_mariadb_url):
    write(neutron29_mariadb_url, layout_cloud(True))
    doc = check_report(neutron29_mariadb_url, "ocata", True, "project_id")
    assert doc["schema"]["alembic_versions"]  # the real migrations' heads


def test_neutron29_sqlite(neutron29_sqlite_url):
    write(neutron29_sqlite_url, layout_cloud(True))
    check_report(neutron29_sqlite_url, "ocata", True, "project_id")


def test_neutron29_postgresql(neutron29_postgresql_url):
    write(neutron29_postgresql_url, layout_cloud(True))
    check_report(neutron29_postgresql_url, "ocata", True, "project_id")


# ------------------------------------------------------------------------- selectors


@pytest.fixture
def ocata_url(db_url):
    write(db_url, layout_cloud(True), "ocata")
    return db_url


def _bindings_only(doc: dict) -> set[tuple[str, str]]:
    return {p for p in pairs(doc) if p[0] != "VD111"}


def test_select_host(ocata_url):
    code, doc = audit_json(ocata_url, "--host", "cmp-hybrid")
    assert pairs(doc) == {
        ("VD101", P_EMPTY),
        ("VD103", P_EMPTY),
        ("VD105", P_FAILED),
        ("VD104", P_MALFORMED),
        ("VD101", P_MALFORMED),
        ("VD103", P_MALFORMED),
        ("VD101", P_MIG),
        ("VD103", P_MIG),
    }
    assert {f["host"] for f in doc["findings"]} == {"cmp-hybrid"}
    # P_EMPTY, P_GOOD, P_FAILED, P_MALFORMED, P_MIG's ACTIVE row
    assert doc["summary"]["bindings"] == 5
    assert {a["host"] for a in doc["agents"]} == {"cmp-hybrid"}
    assert code == 2


def test_select_host_keeps_agent_findings_of_that_host_only(ocata_url):
    _, doc = audit_json(ocata_url, "--host", BROKEN_HOST)
    assert pairs(doc) == {("VD111", BROKEN_HOST)}
    _, doc = audit_json(ocata_url, "--host", "cmp-ghost", "--host", "cmp-dead")
    assert pairs(doc) == {("VD109", P_MIG), ("VD107", P_DEAD)}


def test_select_port(ocata_url):
    _, doc = audit_json(ocata_url, "--port", P_MIG)
    assert _bindings_only(doc) == {("VD101", P_MIG), ("VD103", P_MIG), ("VD109", P_MIG)}
    assert doc["summary"]["bindings"] == 2  # ACTIVE and INACTIVE rows
    _, doc = audit_json(ocata_url, "--port", P_GOOD, "--port", P_STALE)
    assert _bindings_only(doc) == {("VD102", P_STALE)}


def test_select_network(ocata_url):
    code, doc = audit_json(ocata_url, "--network", NET2)
    assert _bindings_only(doc) == {("VD102", P_STALE), ("VD108", P_LB)}
    assert doc["summary"]["bindings"] == 2


def test_select_project(ocata_url):
    _, doc = audit_json(ocata_url, "--project", PROJ2)
    assert _bindings_only(doc) == {("VD105", P_FAILED), ("VD107", P_DEAD)}


@pytest.mark.parametrize(
    "selector", [["--port", P_STALE], ["--network", NET2], ["--project", PROJ2]]
)
def test_port_network_project_selectors_drop_unrelated_agent_findings(ocata_url, selector):
    _, doc = audit_json(ocata_url, *selector)
    port_hosts = {f["host"] for f in doc["findings"] if f["port_id"]}
    assert all(f["port_id"] or f["host"] in port_hosts for f in doc["findings"])


def test_select_code(ocata_url):
    code, doc = audit_json(ocata_url, "--code", "VD101")
    assert pairs(doc) == {("VD101", P_EMPTY), ("VD101", P_MALFORMED), ("VD101", P_MIG)}
    assert code == 2
    # bindings are still all read and judged; only the findings shown are narrowed
    assert doc["summary"]["bindings"] == 11 and doc["summary"]["judged"] == 8
    code, doc = audit_json(ocata_url, "--code", "vd103", "--code", "VD109")
    assert pairs(doc) == {
        ("VD103", P_EMPTY),
        ("VD103", P_MALFORMED),
        ("VD103", P_MIG),
        ("VD109", P_MIG),
    }
    assert code == 1  # warnings only among the selected codes


def test_selectors_combine(ocata_url):
    _, doc = audit_json(ocata_url, "--host", "cmp-hybrid", "--code", "VD103", "--network", NET1)
    assert pairs(doc) == {("VD103", P_EMPTY), ("VD103", P_MALFORMED), ("VD103", P_MIG)}


def test_selector_matching_nothing(ocata_url):
    _, doc = audit_json(ocata_url, "--port", "no-such-port")
    assert _bindings_only(doc) == set()
    assert doc["summary"]["bindings"] == 0


# ------------------------------------------------------------------ agent liveness


def test_agent_liveness_uses_the_database_clock(db_url):
    beat = utcnow() - timedelta(seconds=100)
    cloud = CloudSpec(
        [NetworkSpec(NET1, "net1", PROJ1, [SegmentSpec(SEG1)])],
        [AgentSpec("cmp-a", OVS, {"ovs_hybrid_plug": True}, heartbeat_at=beat)],
        [_vm(P_GOOD, _ovs("cmp-a", HYBRID))],
    )
    write(db_url, cloud, "ocata")
    code, doc = audit_json(db_url)
    assert pairs(doc) == {("VD107", P_GOOD)}
    assert doc["agents"][0]["alive"] is False
    assert code == 2
    code, doc = audit_json(db_url, "--agent-down-time", "200")
    assert pairs(doc) == set()
    assert doc["agents"][0]["alive"] is True
    assert code == 0
    assert any("200 s" in a and "--agent-down-time" in a for a in doc["assumptions"])
