"""--host-reports with sosreports made by the real sos (Debian's sosreport 4.0) on a lab host.

The lab compute host (tests/hostlab.py) is wired by nova/os-vif; then both
``vifdoctor host-scan`` and ``sos report`` run inside its namespace:

- sos's openvswitch plugin reads the lab's own ovsdb (OVS_RUNDIR in its
  environment, which sos passes to the commands it runs);
- its host plugin runs ``hostname`` in a private UTS namespace named as the lab
  host (``unshare --uts``), the name Neutron binds the ports to;
- its libvirt plugin copies the domain XML from a ``--sysroot`` (``--chroot
  never``: commands still run in the namespace): libvirt's own ``virsh dumpxml``
  of the lab's domains, as ``etc/libvirt/qemu/<name>.xml`` and, wrapped in
  ``<domstatus>`` as libvirt's qemu driver keeps them, ``run/libvirt/qemu``;
- ``--allow-system-changes`` lets the networking plugin run ``iptables -vnxL``
  (its kernel-module check needs /proc/modules, which this machine lacks);
- ``-k networking.namespace_pattern=<the lab's netns>`` keeps sos out of other
  namespaces on the machine.

The document built from the sosreport must equal host-scan's in what the rules
read, and the audit must give the same findings from either.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit.cloudfactory import audit_json
from testkit.hostlab import ComputeHost, LabError, compute_host_lab, dev
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

from vifdoctor.sources import sosreport

PLUGINS = "openvswitch,libvirt,networking,host"


# The lab's agents beat once, when its database is written; `sos report` and the plugs
# outlive neutron's 75 s on a loaded machine, and liveness is not what is tested here.
LIVE = ("--agent-down-time", "86400")


def sos_report(host: ComputeHost, folder: Path) -> Path:
    """Run the real `sos report` on the lab host; the tarball it writes."""
    sos = shutil.which("sos")
    if sos is None:
        raise RuntimeError("sos not found: apt-get install sosreport (or run .ci/run)")
    root = folder / "sysroot"
    for sub in ("run/libvirt/qemu", "etc/libvirt/qemu"):
        (root / sub).mkdir(parents=True)
    for d in host.domains.values():
        xml = subprocess.run(
            ["virsh", "-c", host.libvirt_uri, "dumpxml", d.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (root / "etc/libvirt/qemu" / f"{d.name}.xml").write_text(xml)
        (root / "run/libvirt/qemu" / f"{d.name}.xml").write_text(
            f"<domstatus state='running' reason='booted' pid='4242'>\n{xml}</domstatus>\n"
        )
    out = folder / "out"
    out.mkdir()
    script = (
        'hostname "$0" && exec ip netns exec "$1" "$2" report --batch --only-plugins '
        f'{PLUGINS} -k networking.namespace_pattern="$1" --allow-system-changes '
        '--tmp-dir "$3" --sysroot "$4" --chroot never --label lab'
    )
    done = subprocess.run(
        [
            "unshare",
            "--uts",
            "--",
            "sh",
            "-c",
            script,
            host.name,
            host.netns,
            sos,
            str(out),
            str(root),
        ],
        env=host.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (tarball,) = out.glob("sosreport-*.tar.xz")
    return tarball


OVS_SYSTEM_ID = "5c3a3a3e-0d0c-4b7b-9d53-2f2f3e8e4d11"


def comparable(doc: dict) -> dict:
    """What the wiring rules read from a report, in a stable order."""
    return {
        "host": doc["host"],
        "ok": {k: v["ok"] for k, v in doc["sources"].items()},
        "links": sorted(
            (link["name"], link["kind"], link["master"], link["peer"], link["mac"])
            for link in doc["links"]
        ),
        "ovs": sorted(
            (
                br["name"],
                br["datapath_type"],
                p["name"],
                i["name"],
                i["type"],
                i["ofport"],
                json.dumps(i["external_ids"], sort_keys=True),
            )
            for br in doc["ovs_bridges"]
            for p in br["ports"]
            for i in p["interfaces"]
        ),
        "domains": sorted(json.dumps(d, sort_keys=True) for d in doc["domains"]),
        "chains": doc["iptables_chains"],
        "open_vswitch": doc.get("open_vswitch"),  # what the OVN host checks read (VD411)
    }


def pairs(doc: dict) -> set[tuple[str, str]]:
    return {(f["code"], f["port_id"]) for f in doc["findings"]}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A hybrid host: a good hybrid port, one without its chains, one broken, one direct.

    Built and reported on once for the module (a lab and a sos run cost ~15 s); the
    tests only read what was made, each from its own copy.
    """
    tmp_path = tmp_path_factory.mktemp("soslab")
    try:
        with compute_host_lab() as host:
            yield _build(host, tmp_path)
    except LabError as exc:
        pytest.fail(str(exc), pytrace=False)


def _build(host: ComputeHost, tmp_path: Path) -> dict:
    sqlite_url = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    vm = new_id()
    good, bare, broken, direct = new_id(), new_id(), new_id(), new_id()
    host.plug(
        vm,
        [
            nova_vif(good, HYBRID_DETAILS),
            nova_vif(bare, HYBRID_DETAILS),
            nova_vif(broken, HYBRID_DETAILS),
            nova_vif(direct, DIRECT_DETAILS),
        ],
    )
    host.vsctl("del-port", "br-int", dev("qvo", broken))
    # what a deployment tool sets for ovn-controller: the sosreport must carry it over
    host.vsctl(
        "set",
        "Open_vSwitch",
        ".",
        f"external_ids:system-id={OVS_SYSTEM_ID}",
        "external_ids:ovn-encap-type=geneve",
        "external_ids:ovn-encap-ip=192.0.2.10",
    )
    for direction in ("i", "o"):  # what the iptables_hybrid agent creates for a port
        host.ns(["iptables", "-N", f"neutron-openvswi-{direction}{good[:10]}"])
    code, scan, _ = scan_into(host, tmp_path / "scan", "--iptables")
    assert code == 0, scan["errors"]
    url = neutron_db(
        sqlite_url,
        [
            vm_port(p, vm, host.name, d)
            for p, d in (
                (good, HYBRID_DETAILS),
                (bare, HYBRID_DETAILS),
                (broken, HYBRID_DETAILS),
                (direct, DIRECT_DETAILS),
            )
        ],
        [ovs_agent(host.name, hybrid=True)],
    )
    tarball = sos_report(host, tmp_path / "sos")
    return {
        "scan": scan,
        "url": url,
        "tarball": tarball,
        "tmp": tmp_path,
        "good": good,
        "bare": bare,
        "broken": broken,
        "direct": direct,
    }


def unpack(tarball: Path, into: Path) -> Path:
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="data")
    (top,) = into.glob("sosreport-*")
    return top


def test_real_sosreport_reads_as_the_host_scan_does(lab: dict, tmp_path: Path) -> None:
    tmp = tmp_path
    shutil.copytree(lab["tmp"] / "scan", tmp / "scan")
    from_tar, notes = sosreport.host_report(str(lab["tarball"]))
    assert comparable(from_tar) == comparable(lab["scan"])
    assert from_tar["open_vswitch"]["external_ids"]["system-id"] == OVS_SYSTEM_ID
    assert from_tar["sources"]["open_vswitch"]["ok"]
    assert from_tar["sosreport"]["sos_version"] == "4.0"
    assert f"neutron-openvswi-i{lab['good'][:10]}" in from_tar["iptables_chains"]
    assert any("host name from sos_commands/host/hostname" in n for n in notes), notes
    folder = unpack(lab["tarball"], tmp / "unpacked")
    from_dir, _ = sosreport.host_report(str(folder))
    assert comparable(from_dir) == comparable(lab["scan"])

    # The audit: the same findings from the host-scan JSON, the tarball, the directory.
    _, by_scan = audit_json(lab["url"], *LIVE, "--host-reports", str(tmp / "scan"))
    expected = {
        ("VD303", lab["broken"]),
        ("VD301", lab["direct"]),
        ("VD101", lab["direct"]),
        ("VD307", lab["bare"]),
    }
    assert pairs(by_scan) == expected, by_scan["findings"]
    for name, source in (("tar", lab["tarball"]), ("dir", folder)):
        reports = tmp / f"reports-{name}"
        reports.mkdir()
        os.symlink(source, reports / source.name)
        _, by_sos = audit_json(lab["url"], *LIVE, "--host-reports", str(reports))
        assert pairs(by_sos) == expected, (name, by_sos["findings"])
        assert any("wiring from sosreport" in a for a in by_sos["assumptions"])


def test_what_the_sosreport_lacks_is_an_assumption_not_a_finding(lab: dict, tmp_path: Path) -> None:
    tmp = tmp_path
    top = unpack(lab["tarball"], tmp / "u")
    reports = tmp / "reports"
    reports.mkdir()
    os.symlink(top, reports / top.name)
    # no `ovs-vsctl list interface` (no iface-ids): OVS counts as unread; nothing is
    # called broken or direct, and no foreign-iface-id finding is made
    (top / "sos_commands/openvswitch/ovs-vsctl_-t_5_list_interface").unlink()
    (top / "sos_commands/networking/iptables_-vnxL").unlink()
    _, doc = audit_json(lab["url"], *LIVE, "--host-reports", str(reports))
    assert pairs(doc) == {("VD101", lab["direct"])}, doc["findings"]  # the binding alone
    assert any(
        "ovs could not be read" in a and "list interface" in a for a in doc["assumptions"]
    ), doc["assumptions"]
    # no iptables listing either (sos skips it when no iptables module is loaded): no
    # VD307, and it says so
    assert any("iptables could not be read" in a for a in doc["assumptions"])

    # libvirt: without the domain XML and without the manifest that says the libvirt
    # plugin ran, the domains are unknown: no leftover (VD305) or foreign-domain (VD306)
    # finding is made from their absence
    shutil.rmtree(top / "run/libvirt")
    shutil.rmtree(top / "etc/libvirt")
    (top / "sos_reports/manifest.json").unlink()
    doc_, _ = sosreport.host_report(str(top))
    assert doc_["sources"]["libvirt"]["ok"] is False
    _, doc = audit_json(lab["url"], *LIVE, "--host-reports", str(reports))
    assert not {c for c, _ in pairs(doc)} & {"VD305", "VD306"}
    assert any("libvirt could not be read" in a for a in doc["assumptions"])


def test_sos_41_layout_and_nova_host_name(lab: dict, tmp_path: Path) -> None:
    """From sos 4.1 iptables is the firewall_tables plugin's; the manifest says where."""
    tmp = tmp_path
    top = unpack(lab["tarball"], tmp / "u41")
    old = top / "sos_commands/networking/iptables_-vnxL"
    assert old.is_file()
    (top / "sos_commands/firewall_tables").mkdir()
    new = top / "sos_commands/firewall_tables/iptables_-vnxL"
    old.rename(new)
    manifest_path = top / "sos_reports/manifest.json"
    manifest = json.loads(manifest_path.read_text())
    plugins = manifest["components"]["report"]["plugins"]
    entry = next(c for c in plugins["networking"]["commands"] if c["exec"] == "iptables -vnxL")
    plugins["networking"]["commands"].remove(entry)
    plugins["firewall_tables"] = {
        "commands": [{**entry, "filepath": str(new.relative_to(top))}],
        "files": [],
    }
    manifest_path.write_text(json.dumps(manifest))
    doc, _ = sosreport.host_report(str(top))
    assert doc["iptables_chains"] == lab["scan"]["iptables_chains"]

    # nova.conf's [DEFAULT] host (sos's openstack_nova plugin copies /etc/nova) is the
    # name Neutron binds to, and wins over `hostname`
    (top / "etc/nova").mkdir(parents=True)
    (top / "etc/nova/nova.conf").write_text("[DEFAULT]\nhost = compute-17.example\n")
    doc, notes = sosreport.host_report(str(top))
    assert doc["host"] == "compute-17.example"
    assert "nova.conf [DEFAULT] host" in notes[0]

    # without nova.conf and `hostname`, the name OVS keeps (external_ids:hostname, set by
    # ovs-ctl) is the last resort; the lab's OVS has none: then the report is skipped
    assert doc["sosreport"]["datapath_types"] == ["netdev"]  # from `list Open_vSwitch`
    (top / "etc/nova/nova.conf").unlink()
    for name in ("hostname", "sos_commands/host/hostname"):
        (top / name).unlink()
    with pytest.raises(ValueError, match="no host name"):
        sosreport.host_report(str(top))
    system = top / "sos_commands/openvswitch/ovs-vsctl_-t_5_list_Open_vSwitch"
    text = system.read_text()
    assert "external_ids        : {" in text and "hostname=" not in text
    system.write_text(
        text.replace("external_ids        : {", 'external_ids        : {hostname="compute-9", ')
    )
    doc, notes = sosreport.host_report(str(top))
    assert doc["host"] == "compute-9" and "external_ids:hostname" in notes[0]


def test_only_the_reports_own_regular_files_are_read(tmp_path: Path) -> None:
    """A FIFO never blocks the read and a link out of the report is not followed."""
    top = tmp_path / "sosreport-evil"
    (top / "sos_commands/openvswitch").mkdir(parents=True)
    (top / "sos_commands/host").mkdir(parents=True)
    (top / "sos_commands/host/hostname").write_text("compute-9\n")
    os.mkfifo(top / "sos_commands/openvswitch/ovs-vsctl_-t_5_show")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    os.symlink(outside, top / "sos_commands/openvswitch/ovs-vsctl_-t_5_list_interface")
    doc, _ = sosreport.host_report(str(top))
    assert doc["host"] == "compute-9"
    assert doc["sources"]["ovs"]["ok"] is False
    assert "no `ovs-vsctl -t 5 show` output" in json.dumps(doc["errors"])
    assert "secret" not in json.dumps(doc)
