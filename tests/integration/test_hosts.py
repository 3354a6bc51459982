"""Host wiring built by the real OpenStack code, scanned by host-scan, judged by the audit.

Every test gets its own compute host (tests/testkit/hostlab.py: a network namespace with a
private ovsdb-server + userspace ovs-vswitchd); nova 34.0.0's
``LibvirtGenericVIFDriver.plug()`` (os-vif 5.3.0) wires the ports and its
``get_config()`` writes the domain XML that libvirt's test driver serves. Then
``vifdoctor host-scan`` runs inside the namespace and ``vifdoctor audit
--host-reports`` judges the report against a Neutron database (SQLite) whose
bindings name the lab host. Faults are made on top of the real wiring with the
same tools an operator would use (ovs-vsctl, ip).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.register_assert_rewrite("hostlab")

import sqlalchemy as sa  # noqa: E402
from testkit.cloudfactory import audit_json, run_cli  # noqa: E402
from testkit.hostlab import ComputeHost, LabError, compute_host_lab, dev  # noqa: E402
from testkit.labcloud import (  # noqa: E402
    DIRECT_DETAILS,
    HYBRID_DETAILS,
    OTHER_HOST,
    PROJECT,
    mac_of,
    neutron_db,
    new_id,
    nova_vif,
    ovs_agent,
    scan_into,
    vm_port,
)

from vifdoctor.demo.nova import (  # noqa: E402
    InstanceSpec,
    create_nova_schema,
    write_instances,
)
from vifdoctor.rules import wiring  # noqa: E402
from vifdoctor.sources.host.scan import FORMAT, FORMAT_VERSION  # noqa: E402

pytest_plugins = ["testkit.hostlab"]

VD3 = {"VD301", "VD302", "VD303", "VD304", "VD305", "VD306", "VD307"}


def findings(doc: dict, code: str | None = None) -> list[dict]:
    return [f for f in doc["findings"] if code is None or f["code"] == code]


def codes_for(doc: dict, port_id: str) -> set[str]:
    return {f["code"] for f in doc["findings"] if f["port_id"] == port_id}


def classify(report: dict, port_id: str) -> wiring.Wiring:
    return wiring.classify(port_id, wiring.HostWiring.from_report(report))


def ovs_iface(report: dict, name: str) -> dict:
    for br in report["ovs_bridges"]:
        for port in br["ports"]:
            for iface in port["interfaces"]:
                if iface["name"] == name:
                    return {**iface, "bridge": br["name"]}
    raise AssertionError(f"{name} is not on OVS: {report['ovs_bridges']}")


# ---------------------------------------------------------------------- hybrid / direct


def test_hybrid_plug_is_hybrid_and_breaks_at_next_replug_when_details_drift(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    port, vm = new_id(), new_id()
    host.plug(vm, [nova_vif(port, HYBRID_DETAILS)])
    code, report, _ = scan_into(host, tmp_path / "reports")
    assert code == 0, report["errors"]

    # What nova/os-vif really built, as host-scan saw it.
    links = {link["name"]: link for link in report["links"]}
    assert links[dev("qbr", port)]["kind"] == "bridge"
    assert links[dev("qvb", port)]["master"] == dev("qbr", port)
    assert links[dev("tap", port)]["master"] == dev("qbr", port)
    assert links[dev("qvb", port)]["peer"] == dev("qvo", port)
    qvo = ovs_iface(report, dev("qvo", port))
    assert qvo["bridge"] == "br-int"
    assert qvo["external_ids"]["iface-id"] == port
    assert qvo["external_ids"]["vm-uuid"] == vm
    assert qvo["external_ids"]["attached-mac"] == mac_of(port)
    assert isinstance(qvo["ofport"], int) and qvo["ofport"] > 0
    (domain,) = report["domains"]
    assert domain["uuid"] == vm and domain["state"] == "running"
    (iface,) = domain["interfaces"]
    assert (iface["type"], iface["source_bridge"], iface["target_dev"]) == (
        "bridge",
        dev("qbr", port),
        dev("tap", port),
    )
    assert classify(report, port) == wiring.Wiring(wiring.HYBRID)

    agents = [ovs_agent(host.name, hybrid=True)]
    good = neutron_db(sqlite_url, [vm_port(port, vm, host.name, HYBRID_DETAILS)], agents)
    _, doc = audit_json(good, "--host-reports", str(tmp_path / "reports"))
    assert doc["findings"] == [], doc["findings"]

    # Same wiring, but Neutron's details drifted to '' (migrate_to_ml2, pre-rc1 Icehouse).
    # '' also lacks port_filter (VD103) and the datapath_type the agent reports (VD110).
    drifted = neutron_db(
        f"sqlite:///{tmp_path / 'drifted.sqlite'}", [vm_port(port, vm, host.name, "")], agents
    )
    _, doc = audit_json(drifted, "--host-reports", str(tmp_path / "reports"))
    assert codes_for(doc, port) == {"VD101", "VD103", "VD110", "VD302"}, doc["findings"]
    assert codes_for(doc, port) & VD3 == {"VD302"}
    (vd302,) = findings(doc, "VD302")
    assert vd302["host"] == host.name


@pytest.mark.parametrize("agent_hybrid", [True, None], ids=["reports-hybrid", "legacy-agent"])
def test_direct_plug_on_a_hybrid_host_is_unprotected(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path, agent_hybrid: bool | None
) -> None:
    host = compute_host
    port, vm = new_id(), new_id()
    host.plug(vm, [nova_vif(port, DIRECT_DETAILS)])
    code, report, _ = scan_into(host, tmp_path / "reports")
    assert code == 0, report["errors"]

    tap = ovs_iface(report, dev("tap", port))  # os-vif added the tap to br-int itself
    assert tap["bridge"] == "br-int" and tap["external_ids"]["iface-id"] == port
    assert not any(link["name"].startswith("qbr") for link in report["links"])
    (iface,) = report["domains"][0]["interfaces"]
    assert (iface["type"], iface["target_dev"], iface["managed"]) == (
        "ethernet",
        dev("tap", port),
        "no",
    )
    assert classify(report, port) == wiring.Wiring(wiring.DIRECT)

    url = neutron_db(
        sqlite_url,
        [vm_port(port, vm, host.name, DIRECT_DETAILS)],
        [ovs_agent(host.name, hybrid=agent_hybrid)],
    )
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    (vd301,) = findings(doc, "VD301")
    assert vd301["port_id"] == port and vd301["host"] == host.name
    assert codes_for(doc, port) == {"VD101", "VD301"}, doc["findings"]


def test_direct_plug_on_a_direct_host_is_fine(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    port, vm = new_id(), new_id()
    host.plug(vm, [nova_vif(port, DIRECT_DETAILS)])
    code, report, _ = scan_into(host, tmp_path / "reports")
    assert code == 0, report["errors"]
    url = neutron_db(
        sqlite_url,
        [vm_port(port, vm, host.name, DIRECT_DETAILS)],
        [ovs_agent(host.name, hybrid=False)],
    )
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    assert doc["findings"] == [], doc["findings"]


# ---------------------------------------------------------------------- faults on real wiring


def test_qvo_missing_from_ovs_is_broken_hybrid_and_a_replug_does_not_mend_it(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    port, vm = new_id(), new_id()
    vif = nova_vif(port, HYBRID_DETAILS)
    host.plug(vm, [vif])
    host.vsctl("del-port", "br-int", dev("qvo", port))
    url = neutron_db(
        sqlite_url,
        [vm_port(port, vm, host.name, HYBRID_DETAILS)],
        [ovs_agent(host.name, hybrid=True)],
    )

    _, report, _ = scan_into(host, tmp_path / "reports")
    found = classify(report, port)
    assert found.kind == wiring.BROKEN
    assert found.problems == (f"{dev('qvo', port)} is not on Open vSwitch",)
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    assert codes_for(doc, port) == {"VD303"}, doc["findings"]

    # nova-compute plugs again (host reboot, init_host): os-vif sees the qvo and only
    # updates it, so the OVS port stays missing (domain.md section 5).
    host.plug(vm, [vif])
    _, report, _ = scan_into(host, tmp_path / "reports")
    assert classify(report, port).kind == wiring.BROKEN
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    assert codes_for(doc, port) == {"VD303"}, doc["findings"]


def test_qvo_with_another_ports_iface_id_is_broken_hybrid(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    port, vm, other = new_id(), new_id(), new_id()
    host.plug(vm, [nova_vif(port, HYBRID_DETAILS)])
    host.vsctl("set", "Interface", dev("qvo", port), f"external_ids:iface-id={other}")
    url = neutron_db(
        sqlite_url,
        [vm_port(port, vm, host.name, HYBRID_DETAILS)],
        [ovs_agent(host.name, hybrid=True)],
    )
    _, report, _ = scan_into(host, tmp_path / "reports")
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    (vd303,) = findings(doc, "VD303")
    assert vd303["port_id"] == port and other in vd303["message"]
    (vd304,) = findings(doc, "VD304")  # and the foreign iface-id itself
    assert vd304["port_id"] == other and "Neutron knows no such port" in vd304["message"]


def test_devices_of_a_deleted_domain_are_leftovers(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    kept_port, kept_vm = new_id(), new_id()
    gone_port, gone_vm = new_id(), new_id()
    host.plug(kept_vm, [nova_vif(kept_port, HYBRID_DETAILS)])
    host.plug(gone_vm, [nova_vif(gone_port, HYBRID_DETAILS)])
    host.drop_domain(gone_vm)  # the VM was deleted; its port is gone from Neutron too
    url = neutron_db(
        sqlite_url,
        [vm_port(kept_port, kept_vm, host.name, HYBRID_DETAILS)],
        [ovs_agent(host.name, hybrid=True)],
    )
    _, report, _ = scan_into(host, tmp_path / "reports")
    assert [d["uuid"] for d in report["domains"]] == [kept_vm]
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    leftovers = {f["extra"]["device"] for f in findings(doc, "VD305")}
    assert leftovers == {dev(p, gone_port) for p in ("tap", "qbr", "qvb", "qvo")}
    assert all(f["host"] == host.name for f in findings(doc, "VD305"))
    assert {f["port_id"] for f in findings(doc, "VD304")} == {gone_port}
    assert codes_for(doc, kept_port) == set(), doc["findings"]


@pytest.mark.parametrize("neutron_has_it", [False, True], ids=["unknown", "bound-elsewhere"])
def test_ovs_iface_id_neutron_does_not_bind_here(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path, neutron_has_it: bool
) -> None:
    host = compute_host
    port, vm, stray = new_id(), new_id(), new_id()
    host.plug(vm, [nova_vif(port, DIRECT_DETAILS)])
    # A port left on br-int by hand or by a failed migration: no domain uses it.
    host.make_tap("tapstray000001")
    host.vsctl(
        "add-port",
        "br-int",
        "tapstray000001",
        "--",
        "set",
        "Interface",
        "tapstray000001",
        f"external_ids:iface-id={stray}",
        "external_ids:iface-status=active",
    )
    ports = [vm_port(port, vm, host.name, DIRECT_DETAILS)]
    if neutron_has_it:
        ports.append(vm_port(stray, new_id(), OTHER_HOST, DIRECT_DETAILS))
    url = neutron_db(
        sqlite_url, ports, [ovs_agent(host.name, hybrid=False), ovs_agent(OTHER_HOST, hybrid=False)]
    )
    _, report, _ = scan_into(host, tmp_path / "reports")
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    (vd304,) = findings(doc, "VD304")
    assert vd304["port_id"] == stray and vd304["host"] == host.name
    assert vd304["extra"]["bound_to"] == (OTHER_HOST if neutron_has_it else None)
    assert (
        "Neutron binds it to " + OTHER_HOST if neutron_has_it else "Neutron knows no such port"
    ) in vd304["message"]
    assert codes_for(doc, port) == set(), doc["findings"]


def test_domain_interface_for_a_port_bound_elsewhere(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    port, vm = new_id(), new_id()
    host.plug(vm, [nova_vif(port, HYBRID_DETAILS)])
    # Neutron moved the port to another host underneath the running VM.
    url = neutron_db(
        sqlite_url,
        [vm_port(port, vm, OTHER_HOST, HYBRID_DETAILS)],
        [ovs_agent(host.name, hybrid=True), ovs_agent(OTHER_HOST, hybrid=True)],
    )
    _, report, _ = scan_into(host, tmp_path / "reports")
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    (vd306,) = findings(doc, "VD306")
    assert vd306["host"] == host.name and vd306["device_id"] == vm
    assert vd306["extra"]["target_dev"] == dev("tap", port)
    (vd304,) = findings(doc, "VD304")
    assert vd304["port_id"] == port and vd304["extra"]["bound_to"] == OTHER_HOST
    assert not findings(doc, "VD305")  # the devices belong to a running domain


# ---------------------------------------------------------------------- the report itself


def test_report_format_and_sources(compute_host: ComputeHost, tmp_path: Path) -> None:
    host = compute_host
    port, vm = new_id(), new_id()
    host.plug(vm, [nova_vif(port, HYBRID_DETAILS)])
    before = datetime.datetime.now(datetime.timezone.utc)
    code, report, stderr = scan_into(host, tmp_path / "reports")
    assert code == 0, stderr
    assert report["format"] == FORMAT == "vifdoctor-host-scan"
    assert report["format_version"] == FORMAT_VERSION == 1
    assert report["host"] == host.name
    scanned = datetime.datetime.fromisoformat(report["scanned_at"])
    assert scanned.tzinfo is not None
    assert (
        before - datetime.timedelta(seconds=1)
        <= scanned
        <= datetime.datetime.now(datetime.timezone.utc)
    )
    assert report["errors"] == []
    assert report["sources"]["libvirt"] == {"ok": True, "uri": host.libvirt_uri, "via": "virsh"}
    assert report["sources"]["ovs"] == {"ok": True, "db": host.ovsdb}
    assert report["sources"]["links"] == {"ok": True}
    assert report["iptables_chains"] is None  # not asked for
    (br_int,) = report["ovs_bridges"]
    assert (br_int["name"], br_int["datapath_type"]) == ("br-int", "netdev")
    # Only the namespace's devices: the lab does not leak into the host or vice versa.
    assert {link["name"] for link in report["links"]} == {
        "lo",
        "ovs-netdev",
        "br-int",
        *(dev(p, port) for p in ("tap", "qbr", "qvb", "qvo")),
    }
    assert list(tmp_path.joinpath("reports").iterdir()) == [
        tmp_path / "reports" / f"{host.name}.json"
    ]  # no temporary file left


def _env_without_virsh(tmp_path: Path, host: ComputeHost) -> dict:
    """PATH with only ip and ovs-vsctl; libvirt-python blocked so virsh would be needed."""
    bindir = tmp_path / "bin-no-virsh"
    bindir.mkdir()
    for tool in ("ip", "ovs-vsctl"):
        os.symlink(shutil.which(tool), bindir / tool)
    block = tmp_path / "no-libvirt-python"
    block.mkdir()
    (block / "libvirt.py").write_text("raise ImportError('blocked by the test')\n")
    return {**host.env, "PATH": str(bindir), "PYTHONPATH": str(block)}


def test_without_virsh_the_report_says_so_and_the_audit_uses_the_rest(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    port, vm = new_id(), new_id()
    host.plug(vm, [nova_vif(port, DIRECT_DETAILS)])
    code, report, _ = scan_into(host, tmp_path / "reports", env=_env_without_virsh(tmp_path, host))
    assert code == 1
    assert report["sources"]["libvirt"]["ok"] is False
    assert report["errors"] == [{"source": "libvirt", "error": "virsh not found"}]
    assert report["sources"]["ovs"]["ok"] and report["sources"]["links"]["ok"]
    assert report["domains"] == []
    assert set(report) >= {
        "format",
        "format_version",
        "tool_version",
        "host",
        "scanned_at",
        "sources",
        "errors",
        "domains",
        "ovs_bridges",
        "links",
        "iptables_chains",
    }

    url = neutron_db(
        sqlite_url,
        [vm_port(port, vm, host.name, DIRECT_DETAILS)],
        [ovs_agent(host.name, hybrid=True)],
    )
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    assert any("libvirt could not be read (virsh not found)" in a for a in doc["assumptions"])
    # The OVS and link data are there: the direct tap on br-int is still seen.
    assert codes_for(doc, port) == {"VD101", "VD301"}, doc["findings"]
    # Nothing that needs libvirt is claimed.
    assert not findings(doc, "VD305") and not findings(doc, "VD306")


def test_with_ovsdb_down_the_report_says_so_and_nothing_is_invented(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    direct_port, direct_vm = new_id(), new_id()
    host.plug(direct_vm, [nova_vif(direct_port, DIRECT_DETAILS)])
    url = neutron_db(
        sqlite_url,
        [vm_port(direct_port, direct_vm, host.name, DIRECT_DETAILS)],
        [ovs_agent(host.name, hybrid=True)],
    )
    code, _, _ = scan_into(host, tmp_path / "full")
    assert code == 0
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "full"))
    assert codes_for(doc, direct_port) == {"VD101", "VD301"}

    host.kill_ovsdb()
    code, report, _ = scan_into(host, tmp_path / "down")
    assert code == 1
    assert report["sources"]["ovs"]["ok"] is False
    ((err),) = report["errors"]
    assert err["source"] == "ovs" and "ovs-vsctl" in err["error"]
    assert report["ovs_bridges"] == []
    assert report["sources"]["libvirt"]["ok"] and report["sources"]["links"]["ok"]
    assert report["domains"] and report["links"]
    assert classify(report, direct_port).kind == wiring.UNKNOWN

    _, doc = audit_json(url, "--host-reports", str(tmp_path / "down"))
    assert any("ovs could not be read" in a for a in doc["assumptions"])
    assert codes_for(doc, direct_port) == {"VD101"}, doc["findings"]  # no VD301 invented
    assert not {f["code"] for f in doc["findings"]} & VD3, doc["findings"]


def test_with_ovsdb_down_a_hybrid_port_is_not_called_broken(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    host = compute_host
    port, vm = new_id(), new_id()
    host.plug(vm, [nova_vif(port, HYBRID_DETAILS)])
    url = neutron_db(
        sqlite_url,
        [vm_port(port, vm, host.name, HYBRID_DETAILS)],
        [ovs_agent(host.name, hybrid=True)],
    )
    host.kill_ovsdb()
    code, report, _ = scan_into(host, tmp_path / "down")
    assert code == 1 and report["sources"]["ovs"]["ok"] is False
    _, doc = audit_json(url, "--host-reports", str(tmp_path / "down"))
    assert not {f["code"] for f in doc["findings"]} & VD3, doc["findings"]


# ---------------------------------------------------------------------- remediation plan


def test_remediation_reboots_only_the_direct_wired_vm(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    """Both ports have drifted details (''); one VM is still wired hybrid, one direct."""
    host = compute_host
    hyb_port, hyb_vm = new_id(), new_id()
    dir_port, dir_vm = new_id(), new_id()
    host.plug(hyb_vm, [nova_vif(hyb_port, HYBRID_DETAILS)])
    host.plug(dir_vm, [nova_vif(dir_port, DIRECT_DETAILS)])
    _, report, _ = scan_into(host, tmp_path / "reports")
    url = neutron_db(
        sqlite_url,
        [vm_port(hyb_port, hyb_vm, host.name, ""), vm_port(dir_port, dir_vm, host.name, "")],
        [ovs_agent(host.name, hybrid=True)],
    )

    nova_url = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    engine = sa.create_engine(nova_url)
    try:
        create_nova_schema(engine)
        # Nova caches the details Neutron returns now: '' for both.
        write_instances(
            engine,
            [
                InstanceSpec(
                    uuid=vm,
                    host=host.name,
                    project_id=PROJECT,
                    display_name=name,
                    network_info=[nova_vif(p, {})],
                )
                for vm, p, name in (
                    (hyb_vm, hyb_port, "still-hybrid"),
                    (dir_vm, dir_port, "plugged-direct"),
                )
            ],
        )
    finally:
        engine.dispose()

    code, out, err = run_cli(
        [
            "remediation",
            "--neutron-db",
            url,
            "--nova-db",
            nova_url,
            "--host-reports",
            str(tmp_path / "reports"),
            "-f",
            "json",
        ]
    )
    assert code == 0, err
    plan = json.loads(out)
    actions = {(s["instance"], s["action"]) for s in plan["steps"]}
    assert ("", "repair-binding") in actions
    assert (dir_vm, "hard-reboot") in actions
    assert (hyb_vm, "hard-reboot") not in actions, plan["steps"]
    (reboot,) = [s for s in plan["steps"] if s["action"] == "hard-reboot"]
    assert reboot["command"] == f"openstack server reboot --hard {dir_vm}"
    assert reboot["host"] == host.name

    _, doc = audit_json(url, "--host-reports", str(tmp_path / "reports"))
    assert codes_for(doc, hyb_port) & VD3 == {"VD302"}, doc["findings"]
    assert codes_for(doc, dir_port) & VD3 == {"VD301"}, doc["findings"]
    assert {"VD101"} <= codes_for(doc, hyb_port) & codes_for(doc, dir_port)


# ---------------------------------------------------------------------- the lab itself


def test_lab_teardown_kills_its_daemons_and_namespace_even_on_failure() -> None:
    with pytest.raises(RuntimeError, match="test body failed"), compute_host_lab() as host:
        pids = [host._pid("ovsdb-server"), host._pid("ovs-vswitchd")]
        assert all(pids)
        assert host.setup_seconds is not None and host.setup_seconds < 10
        raise RuntimeError("test body failed")
    netns = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert host.netns not in netns
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    assert not host.dir.exists()


def test_a_refused_namespace_is_a_failure_with_the_reason() -> None:
    host = ComputeHost()
    host.netns = "vdlab-bad/name"  # `ip netns add` refuses it, as a locked-down machine would
    try:
        with pytest.raises(LabError, match="refuses network namespaces"):
            host.start()
    finally:
        host.stop()


def test_security_group_chains_missing_for_a_hybrid_port_vd307(
    compute_host: ComputeHost, sqlite_url: str, tmp_path: Path
) -> None:
    """VD307 from real iptables-save output: no neutron chains, then the agent's chains."""
    host = compute_host
    port, vm = new_id(), new_id()
    host.plug(vm, [nova_vif(port, HYBRID_DETAILS)])
    db = neutron_db(
        sqlite_url,
        [vm_port(port, vm, host.name, HYBRID_DETAILS)],
        [ovs_agent(host.name, hybrid=True)],
    )

    code, report, _ = scan_into(host, tmp_path / "bare", "--iptables")
    assert code == 0, report["errors"]
    assert report["sources"]["iptables"]["ok"] and report["iptables_chains"] == []
    _, doc = audit_json(db, "--host-reports", str(tmp_path / "bare"))
    assert [f["code"] for f in findings(doc)] == ["VD307"]
    assert findings(doc)[0]["port_id"] == port

    # The chains the iptables_hybrid agent creates for the port (wrap name
    # "neutron-openvswi", chain "i"/"o" + port id, cut to 11 characters).
    for direction in ("i", "o"):
        host.ns(["iptables", "-N", f"neutron-openvswi-{direction}{port[:10]}"])
    code, report, _ = scan_into(host, tmp_path / "applied", "--iptables")
    assert code == 0, report["errors"]
    assert f"neutron-openvswi-i{port[:10]}" in report["iptables_chains"]
    _, doc = audit_json(db, "--host-reports", str(tmp_path / "applied"))
    assert findings(doc) == [], doc["findings"]
