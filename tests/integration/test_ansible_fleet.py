"""The vifdoctor.openstack collection run by real ansible-core against namespace hosts.

Each lab host is a network namespace with its own ovsdb-server and userspace
ovs-vswitchd, wired by nova 34.0.0 / os-vif (tests/testkit/hostlab.py). Ansible reaches
it with ``ansible_connection: local`` and an ``ansible_python_interpreter`` that
is a two-line wrapper entering the namespace (``ip netns exec NS python``), so the
module, and the ``vifdoctor host-scan`` it runs, see only that host's devices.
Three more hosts make the fleet partial: a namespace host without virsh on its
PATH, one whose SSH port on 127.0.0.1 is closed (unreachable), and one whose Python
has no vifdoctor.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

pytest.register_assert_rewrite("testkit.hostlab")

from testkit.ansiblekit import VENV_BIN, ansible_env  # noqa: E402
from testkit.hostlab import ComputeHost, LabError, dev  # noqa: E402
from testkit.labcloud import (  # noqa: E402
    DIRECT_DETAILS,
    HYBRID_DETAILS,
    PROJECT,
    neutron_db,
    new_id,
    nova_vif,
    ovs_agent,
    vm_port,
)

from vifdoctor.demo.nova import InstanceSpec, create_nova_schema, write_instances  # noqa: E402

ANSIBLE_PLAYBOOK = VENV_BIN / "ansible-playbook"
ANSIBLE = VENV_BIN / "ansible"
SECRET = "s3cr3t-Pa55word"


@dataclass
class LabPort:
    port: str
    vm: str
    details: dict  # what Neutron stores (and Nova caches)


@dataclass
class Fleet:
    labs: dict[str, ComputeHost]  # inventory name -> lab
    ports: dict[str, LabPort]  # inventory name -> its VM port
    inventory: Path
    neutron: str
    nova: str
    tmp: Path

    def neutron_host(self, name: str) -> str:
        return self.labs[name].name if name in self.labs else name


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again once the socket is: nothing listens


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Three wired namespace hosts (hybrid, direct on a hybrid host, broken hybrid), one
    namespace host without virsh, one unreachable host and one without vifdoctor; Neutron
    and Nova (SQLite) bind a VM port on each."""
    if shutil.which("ssh") is None:
        pytest.fail("ssh client missing: apt-get install openssh-client (or run .ci/run)")
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.fail(f"{ANSIBLE_PLAYBOOK} missing: pip install -e '.[test]' (ansible-core)")
    tmp = tmp_path_factory.mktemp("fleet")
    labs: dict[str, ComputeHost] = {}
    try:
        for name in ("compute-hybrid", "compute-direct", "compute-broken", "compute-notool"):
            labs[name] = ComputeHost().start()
        ports = {
            name: LabPort(
                new_id(), new_id(), DIRECT_DETAILS if name == "compute-direct" else HYBRID_DETAILS
            )
            for name in (*labs, "compute-down", "compute-bare")
        }
        for name, lab in labs.items():
            p = ports[name]
            if name != "compute-notool":  # its VM is not running: nothing wired
                lab.plug(p.vm, [nova_vif(p.port, p.details)])
        labs["compute-broken"].vsctl("del-port", "br-int", dev("qvo", ports["compute-broken"].port))
    except LabError as exc:
        for lab in labs.values():
            lab.stop()
        pytest.fail(str(exc), pytrace=False)

    # compute-notool: a host without virsh (only ip and ovs-vsctl on its PATH)
    notool = tmp / "bin-notool"
    notool.mkdir()
    for tool in ("ip", "ovs-vsctl"):
        os.symlink(shutil.which(tool), notool / tool)
    hosts: dict[str, dict] = {}
    for name, lab in labs.items():
        path = f"PATH={notool}; export PATH\n" if name == "compute-notool" else ""
        ns_python = _script(
            tmp / f"python-{name}",
            f"#!/bin/sh\n{path}exec "
            f"{shutil.which('ip')} netns exec {lab.netns} {sys.executable} "
            '"$@"\n',
        )
        vifdoctor = _script(
            tmp / f"vifdoctor-{name}", f'#!/bin/sh\nexec {sys.executable} -m vifdoctor "$@"\n'
        )
        hosts[name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": ns_python,
            "ansible_become": False,
            "vifdoctor_bin": vifdoctor,
            # inventory host vars: they must win over the role's defaults
            "vifdoctor_host_name": lab.name,
            "vifdoctor_libvirt_uri": lab.libvirt_uri,
            "vifdoctor_ovsdb": lab.ovsdb,
        }
    hosts["compute-down"] = {
        "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": _closed_port(),
        "ansible_user": "nobody",
        "ansible_ssh_common_args": "-o ConnectTimeout=5",
    }
    hosts["compute-bare"] = {
        "ansible_connection": "local",
        "ansible_become": False,
        "ansible_python_interpreter": sys.executable,
    }
    inventory = tmp / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {"compute": {"hosts": hosts}},
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                        }
                    },
                }
            }
        )
    )

    neutron_url = f"sqlite:///{tmp / 'neutron.sqlite'}"
    host_of = {name: (labs[name].name if name in labs else name) for name in ports}
    neutron_db(
        neutron_url,
        [vm_port(p.port, p.vm, host_of[n], p.details) for n, p in ports.items()],
        [ovs_agent(h, hybrid=True) for h in host_of.values()],
    )
    nova_url = f"sqlite:///{tmp / 'nova.sqlite'}"
    engine = sa.create_engine(nova_url)
    try:
        create_nova_schema(engine)
        write_instances(
            engine,
            [
                InstanceSpec(
                    uuid=p.vm,
                    host=host_of[n],
                    project_id=PROJECT,
                    display_name=n,
                    network_info=[nova_vif(p.port, p.details)],
                )
                for n, p in ports.items()
            ],
        )
    finally:
        engine.dispose()
    try:
        yield Fleet(labs, ports, inventory, neutron_url, nova_url, tmp)
    finally:
        for lab in labs.values():
            lab.stop()


def _run(fleet: Fleet, argv: list[str]) -> tuple[int, dict, str]:
    """Run an Ansible command; its exit code, what the record callback saw, its output."""
    record = fleet.tmp / "ansible-record.json"
    record.unlink(missing_ok=True)
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=ansible_env(fleet.tmp),
        cwd=fleet.tmp,
        timeout=600,
        check=False,
    )
    text = done.stdout + done.stderr
    if not record.exists():
        raise AssertionError(f"{argv[0]} exited {done.returncode}, no record:\n{text[-4000:]}")
    return done.returncode, json.loads(record.read_text()), text


def run_playbook(fleet: Fleet, playbook: str, *args: str) -> tuple[int, dict, str]:
    return _run(
        fleet, [str(ANSIBLE_PLAYBOOK), "-i", str(fleet.inventory), playbook, "-f", "5", *args]
    )


def task_results(out: dict, task_name: str) -> dict[str, dict]:
    if task_name not in out["tasks"]:
        raise AssertionError(f"no task {task_name!r} in {list(out['tasks'])}")
    return out["tasks"][task_name]


def findings_by_host(findings: list[dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings:
        out.setdefault(f["host"], set()).add(f["code"])
    return out


SCAN_TASK = (
    "vifdoctor.openstack.host_scan : Scan libvirt, Open vSwitch and the links into "
    "the controller's reports folder"
)


def test_fleet_audit_playbook_scans_every_host_and_audits_a_partial_fleet(fleet: Fleet) -> None:
    reports = fleet.tmp / "reports"
    code, out, err = run_playbook(
        fleet,
        "vifdoctor.openstack.fleet_audit",
        "-e",
        json.dumps(
            {
                "vifdoctor_reports_dir": str(reports),
                "vifdoctor_neutron_db": fleet.neutron,
                "vifdoctor_nova_db": [fleet.nova],
                "vifdoctor_fail_on": "never",
            }
        ),
    )
    stats = out["stats"]
    # The run completes: the unreachable host and the one without vifdoctor are recorded
    # and ignored, the audit play runs.
    assert stats["compute-down"]["unreachable"] == 0 and stats["compute-down"]["ignored"] == 1
    assert stats["compute-bare"]["failures"] == 0 and stats["compute-bare"]["ignored"] == 1
    assert stats["compute-notool"]["failures"] == 0 and stats["compute-notool"]["ignored"] == 0
    assert stats["localhost"]["ok"] >= 2 and stats["localhost"]["failures"] == 0, (out, err)
    assert code == 0, err

    scan = task_results(out, SCAN_TASK)
    assert scan["compute-down"]["unreachable"] is True
    assert "vifdoctor is not installed" in scan["compute-bare"]["msg"]
    # Each lab host's report under its inventory name, filed under Neutron's host name
    # (the inventory's vifdoctor_host_name won over the role default).
    # the host without virsh: scanned, its report says what it could not read
    assert scan["compute-notool"]["complete"] is False
    assert scan["compute-notool"]["errors"] == [{"source": "libvirt", "error": "virsh not found"}]
    assert any("could not read libvirt" in w for w in scan["compute-notool"]["warnings"])
    notool = json.loads((reports / "compute-notool.json").read_text())
    assert notool["sources"]["libvirt"]["ok"] is False and notool["sources"]["ovs"]["ok"]
    for name, lab in fleet.labs.items():
        if name == "compute-notool":
            continue
        doc = json.loads((reports / f"{name}.json").read_text())
        assert doc["format"] == "vifdoctor-host-scan" and doc["host"] == lab.name
        assert [d["uuid"] for d in doc["domains"]] == [fleet.ports[name].vm]
        assert doc["errors"] == [], doc["errors"]
        assert "ansible_facts" not in scan[name]  # report_fact false: not kept in memory
    down = json.loads((reports / "compute-down.json").read_text())
    bare = json.loads((reports / "compute-bare.json").read_text())
    assert (down["format"], down["reason"]) == ("vifdoctor-host-scan-failure", "unreachable")
    assert bare["reason"] == "no vifdoctor" and bare["host"] == "compute-bare"

    audit = task_results(out, "Audit with vifdoctor on the controller")["localhost"]
    by_host = findings_by_host(audit["findings"])
    labs = fleet.labs
    assert labs["compute-hybrid"].name not in by_host, audit["findings"]
    assert by_host[labs["compute-direct"].name] == {"VD101", "VD301"}
    assert by_host[labs["compute-broken"].name] == {"VD303"}
    (vd303,) = [f for f in audit["findings"] if f["code"] == "VD303"]
    assert (
        f"{dev('qvo', fleet.ports['compute-broken'].port)} is not on Open vSwitch"
        in vd303["message"]
    )
    missing = audit["hosts_without_report"]
    assert set(missing) == {"compute-down", "compute-bare"}
    assert missing["compute-down"]["reason"].startswith("unreachable")
    assert missing["compute-bare"]["reason"].startswith("no vifdoctor")
    assert audit["summary"]["hosts_without_report"] == 2
    assert any("no host report for 2 host(s)" in a for a in audit["assumptions"])
    assert any(
        f"{labs['compute-notool'].name}: libvirt could not be read (virsh not found)" in a
        for a in audit["assumptions"]
    )
    assert labs["compute-notool"].name not in by_host  # nothing invented

    # The same folder through the CLI, with every port's basis.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vifdoctor",
            "audit",
            "--neutron-db",
            fleet.neutron,
            "--nova-db",
            fleet.nova,
            "--host-reports",
            str(reports),
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    doc = json.loads(done.stdout)
    assert doc["host_reports"]["missing"] == missing
    basis = {p["port_id"]: p["wired_basis"] for i in doc["instances"] for p in i["ports"]}
    assert basis[fleet.ports["compute-direct"].port] == "host scan"
    # compute-down's port has no finding of its own: its instance is not listed
    assert fleet.ports["compute-down"].port not in basis


def test_host_without_report_falls_back_to_nova_cache_in_each_rows_basis(
    fleet: Fleet, tmp_path: Path
) -> None:
    """A drifted binding on the unreachable host: its instance is listed, and its port's
    wiring comes from Nova's cache, saying why."""
    reports = tmp_path / "reports"
    reports.mkdir()
    p = fleet.ports["compute-down"]
    (reports / "compute-down.json").write_text(
        json.dumps(
            {
                "format": "vifdoctor-host-scan-failure",
                "format_version": 1,
                "host": "compute-down",
                "reason": "unreachable",
                "message": "ssh: connect to host 127.0.0.1: refused",
            }
        )
    )
    url = f"sqlite:///{tmp_path / 'drifted.sqlite'}"
    neutron_db(
        url, [vm_port(p.port, p.vm, "compute-down", "")], [ovs_agent("compute-down", hybrid=True)]
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vifdoctor",
            "audit",
            "--neutron-db",
            url,
            "--nova-db",
            fleet.nova,
            "--host-reports",
            str(reports),
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    doc = json.loads(done.stdout)
    (inst,) = [i for i in doc["instances"] if i["device_id"] == p.vm]
    (port,) = inst["ports"]
    assert port["cached_plug"] == "hybrid"
    assert port["wired_basis"] == (
        "nova cache (no host report for compute-down: unreachable: "
        "ssh: connect to host 127.0.0.1: refused)"
    )
    assert inst["impact"]["wired_as_basis"][p.port] == port["wired_basis"]
    assert doc["host_reports"]["missing"]["compute-down"]["vm_ports"] == 1


def test_check_mode_is_the_same_read_only_scan(fleet: Fleet) -> None:
    reports = fleet.tmp / "check-reports"
    remote = fleet.tmp / "remote-copy.json"
    code, out, err = run_playbook(
        fleet,
        "vifdoctor.openstack.host_scan",
        "--check",
        "--limit",
        "compute-hybrid",
        "-e",
        json.dumps({"vifdoctor_reports_dir": str(reports), "vifdoctor_remote_report": str(remote)}),
    )
    assert code == 0, err
    result = task_results(out, SCAN_TASK)["compute-hybrid"]
    assert result["changed"] is False and result["complete"] is True
    doc = json.loads((reports / "compute-hybrid.json").read_text())
    assert doc["host"] == fleet.labs["compute-hybrid"].name
    assert [d["uuid"] for d in doc["domains"]] == [fleet.ports["compute-hybrid"].vm]
    assert not remote.exists()  # nothing written on the host in check mode


def adhoc(
    fleet: Fleet, pattern: str, module: str, args: dict, *extra: str
) -> tuple[int, dict, str]:
    """``ansible PATTERN -m MODULE``: exit code, the one host's result, all output."""
    code, out, text = _run(
        fleet,
        [
            str(ANSIBLE),
            "-i",
            str(fleet.inventory),
            pattern,
            "-m",
            module,
            "-a",
            json.dumps(args),
            *extra,
        ],
    )
    ((result,),) = [list(hosts.values()) for hosts in out["tasks"].values()]
    return code, result, text


def test_host_scan_module_returns_the_report_as_a_fact(fleet: Fleet) -> None:
    for check in ((), ("--check",)):
        code, result, text = adhoc(
            fleet,
            "compute-direct",
            "vifdoctor.openstack.vifdoctor_host_scan",
            {
                "executable": str(fleet.tmp / "vifdoctor-compute-direct"),
                "host_name": fleet.labs["compute-direct"].name,
                "libvirt_uri": fleet.labs["compute-direct"].libvirt_uri,
                "ovsdb": fleet.labs["compute-direct"].ovsdb,
            },
            *check,
        )
        assert code == 0, text[-3000:]
        report = result["ansible_facts"]["vifdoctor_host_report"]
        tap = dev("tap", fleet.ports["compute-direct"].port)
        ifaces = {
            i["name"]: i for b in report["ovs_bridges"] for p in b["ports"] for i in p["interfaces"]
        }
        assert ifaces[tap]["external_ids"]["iface-id"] == fleet.ports["compute-direct"].port
        # only this namespace's devices
        assert not any(link["name"].startswith("qbr") for link in report["links"])
        assert result["changed"] is False and result["sources"]["ovs"]["ok"] is True


def test_audit_module_fails_on_the_chosen_policy_and_never_shows_passwords(
    fleet: Fleet, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("compute-hybrid",):
        lab = fleet.labs[name]
        lab.scan(reports / f"{name}.json")
    # The fixture's agents beat once, when it writes them; on a loaded machine the hosts'
    # plugs and the playbook take longer than neutron's 75 s, so liveness is not under test.
    base = {"neutron_db": fleet.neutron, "host_reports": str(reports), "agent_down_time": 86400}
    # Only VD101 (failure) on compute-direct, without its report: fail_on decides.
    outcomes = {}
    for policy in ("failure", "warning", "never"):
        code, result, _ = adhoc(
            fleet,
            "localhost",
            "vifdoctor.openstack.vifdoctor_audit",
            {**base, "fail_on": policy, "report_file": str(tmp_path / f"audit-{policy}.json")},
        )
        outcomes[policy] = (code, result)
    assert outcomes["failure"][0] != 0 and outcomes["failure"][1]["failed"] is True
    assert "exit code 2 (fail_on: failure)" in outcomes["failure"][1]["msg"]
    assert outcomes["warning"][1]["failed"] is True
    code, never = outcomes["never"]
    assert code == 0 and not never.get("failed")
    assert never["exit_code"] == 2 and never["summary"]["by_code"]["VD101"] == 1
    assert {f["code"] for f in never["findings"]} == {"VD101"}
    written = json.loads((tmp_path / "audit-never.json").read_text())
    assert written["findings"] == never["findings"]
    assert written["host_reports"]["missing"] == never["hosts_without_report"]
    # hosts Neutron binds VM ports to, without a report here
    assert set(never["hosts_without_report"]) == {
        fleet.labs["compute-direct"].name,
        fleet.labs["compute-broken"].name,
        fleet.labs["compute-notool"].name,
        "compute-down",
        "compute-bare",
    }
    assert never["hosts_without_report"]["compute-down"]["reason"] == "not in the folder"

    # warnings only (a selector keeping VD303-free hybrid host): fail_on warning vs failure
    only_hybrid = {**base, "host": [fleet.labs["compute-hybrid"].name]}
    code, result, _ = adhoc(
        fleet,
        "localhost",
        "vifdoctor.openstack.vifdoctor_audit",
        {**only_hybrid, "fail_on": "failure"},
    )
    assert code == 0 and result["exit_code"] == 0

    # A database URL with a password that cannot connect: one clear failure, no password
    # anywhere in the output, even at -vvv.
    code, result, text = adhoc(
        fleet,
        "localhost",
        "vifdoctor.openstack.vifdoctor_audit",
        {
            "neutron_db": f"mysql+pymysql://neutron:{SECRET}@127.0.0.1:1/neutron",
            "nova_db": [f"mysql+pymysql://nova:{SECRET}@127.0.0.1:1/nova"],
        },
        "-vvv",
    )
    assert code != 0
    assert result["failed"] is True and "could not run" in result["msg"]
    assert SECRET not in text and SECRET not in json.dumps(result)
