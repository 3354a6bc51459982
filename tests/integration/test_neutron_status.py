"""``neutron-status upgrade check`` from neutron 29.0.0 with vifdoctor installed beside it.

The environment: a venv that sees ``.cache/openstack-venv``'s packages (neutron
29.0.0 and its dependencies) through a ``.pth`` file, into which pip installs
this checkout for real (non-editable; pip adds only what neutron's venv lacks).
The real ``neutron-status`` script then runs with that venv's python, loads
vifdoctor's checks from the ``neutron.status.upgrade.checks`` entry point and
runs them beside neutron's own, on MariaDB databases with the real neutron
29.0.0 schema, read by a user with a password that must never be printed.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from testkit import dbfixtures
from testkit.cloudfactory import HYBRID_29, write
from testkit.overlayvenv import REPO, overlay_venv

from vifdoctor.demo import incident
from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
)

NEUTRON_STATUS = dbfixtures.OPENSTACK_VENV / "bin" / "neutron-status"
PLUG = "Port bindings Nova will plug wrong"
STALE = "Stale port bindings"
LEFTOVERS = "Binding details leftovers"
OURS = (PLUG, STALE, LEFTOVERS)


@pytest.fixture(scope="session")
def status_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """python of a venv holding neutron 29.0.0 (via .pth) and a pip-installed vifdoctor."""
    dbfixtures.ensure_openstack_venv()
    return overlay_venv(
        dbfixtures.OPENSTACK_PYTHON, tmp_path_factory.mktemp("neutron-status") / "venv"
    )


@pytest.fixture
def reader(neutron29_mariadb_url: str) -> Iterator[tuple[str, str, str]]:
    """(database, user, password): a read-only MariaDB user with a password."""
    dbname = neutron29_mariadb_url.rsplit("/", 1)[1].split("?")[0]
    user, password = f"vdns_{secrets.token_hex(4)}", f"Pw-{secrets.token_hex(8)}"
    dbfixtures._mariadb_execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    dbfixtures._mariadb_execute(f"GRANT SELECT ON `{dbname}`.* TO '{user}'@'%'")
    try:
        yield dbname, user, password
    finally:
        dbfixtures._mariadb_execute(f"DROP USER IF EXISTS '{user}'@'%'")


def confs(tmp_path: Path, dbname: str, user: str, password: str) -> list[str]:
    """neutron.conf and ml2_conf.ini as a deployment has them (neutron's own checks pass)."""
    neutron = tmp_path / "neutron.conf"
    neutron.write_text(
        "[DEFAULT]\ncore_plugin = ml2\nrpc_workers = 1\nagent_down_time = 75\n\n"
        "[database]\nconnection = mysql+pymysql://"
        f"{user}:{password}@127.0.0.1:3306/{dbname}?charset=utf8mb4\n\n"
        "[ovn]\ndisable_ovn_dhcp_for_baremetal_ports = true\n"
    )
    ml2 = tmp_path / "ml2 conf.ini"  # a space: the printed command must quote it
    ml2.write_text(
        "[ml2]\nmechanism_drivers = openvswitch\n\n"
        "[securitygroup]\nfirewall_driver = iptables_hybrid\n"
    )
    return [str(neutron), str(ml2)]


def neutron_status(python: Path, files: list[str], *extra: str) -> tuple[int, str, str]:
    """``neutron-status --config-file F... [--config-dir D] upgrade check [--json]``."""
    argv = [str(python), str(NEUTRON_STATUS)]
    for f in files:
        argv += ["--config-file", f]
    if extra[:1] == ("--config-dir",):
        argv += list(extra[:2])
        extra = extra[2:]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIFDOCTOR_NEUTRON_DB") and not k.startswith("OS_")
    }
    env["PYTHONWARNINGS"] = "ignore"
    r = subprocess.run(
        [*argv, "upgrade", "check", *extra], capture_output=True, text=True, env=env, timeout=300
    )
    return r.returncode, r.stdout, r.stderr


def checks_of(stdout: str) -> dict[str, dict]:
    doc = json.loads(stdout)
    assert doc["name"] == "Upgrade Check Results"
    return {c["check"]: c for c in doc["checks"]}


def full_command(files: list[str], *codes: str) -> str:
    argv = ["vifdoctor", "audit"]
    for f in files:
        argv += ["--neutron-config-file", f]
    for c in codes:
        argv += ["--code", c]
    return shlex.join(argv)


def incident_without(*port_ids: str) -> CloudSpec:
    cloud = incident.incident_cloud()
    return replace(cloud, ports=[p for p in cloud.ports if p.id not in port_ids])


def clean_cloud(*extra: PortSpec) -> CloudSpec:
    """Two VMs bound as neutron 29.0.0 binds them for a live iptables_hybrid agent."""
    net = NetworkSpec(
        id=incident.NETWORK_ID,
        name="private",
        project_id=incident.PROJECT_ID,
        segments=[SegmentSpec(id=incident.SEGMENT_ID)],
    )
    agent = AgentSpec(
        host="compute1",
        agent_type="Open vSwitch agent",
        configurations={
            "ovs_hybrid_plug": True,
            "integration_bridge": "br-int",
            "datapath_type": "system",
            "bridge_mappings": {},
            "tunnel_types": ["vxlan"],
        },
    )
    ports = [vm(f"1111111{i}-0000-4000-8000-000000000000", HYBRID_29) for i in range(2)]
    return CloudSpec(networks=[net], agents=[agent], ports=[*ports, *extra])


def vm(port_id: str, details: str, *extra: BindingSpec) -> PortSpec:
    return PortSpec(
        id=port_id,
        network_id=incident.NETWORK_ID,
        device_owner="compute:nova",
        device_id=f"vm-{port_id[:8]}",
        project_id=incident.PROJECT_ID,
        binding=BindingSpec(
            host="compute1", vif_type="ovs", vif_details=details, segment_id=incident.SEGMENT_ID
        ),
        extra_bindings=list(extra),
    )


def assert_no_password(password: str, *texts: str) -> None:
    for text in texts:
        assert password not in text


def test_incident_cloud(status_python, neutron29_mariadb_url, reader, tmp_path):
    """The seed's ports (its one unparsable row aside: next test) fail the plug check."""
    write(neutron29_mariadb_url, incident_without(incident.MALFORMED_PORT_ID))
    files = confs(tmp_path, *reader)
    code, out, err = neutron_status(status_python, files, "--json")
    assert code == 2, out + err
    checks = checks_of(out)
    assert [c for c in checks if c in OURS] == list(OURS)
    theirs = {name: c["result"] for name, c in checks.items() if name not in OURS}
    assert len(theirs) >= 10 and set(theirs.values()) == {0}, theirs  # neutron's still ran
    plug = checks[PLUG]
    assert plug["result"] == 2
    assert plug["details"].startswith(
        "7 port binding(s) Nova will plug wrong or cannot plug: VD101 x6, VD105 x1."
    )
    first = sorted(incident.EMPTY_DETAIL_PORT_IDS)[0]
    assert f"First: {first} (VD101 on compute000);" in plug["details"]
    assert plug["details"].endswith(
        "Full report: " + full_command(files, "VD101", "VD104", "VD105", "VD107", "VD108", "VD112")
    )
    assert "'" + files[1] + "'" in plug["details"]  # quoted for the shell
    assert checks[STALE]["result"] == 0
    assert checks[STALE]["details"].startswith("No stale port binding among 12 binding(s)")
    leftovers = checks[LEFTOVERS]
    assert leftovers["result"] == 1
    assert leftovers["details"].startswith(
        "6 port binding(s) whose vif_details disagree with the host's firewall: VD103 x6."
    )
    # The printed command gives the same findings.
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "vifdoctor",
            *shlex.split(plug["details"].split("Full report: vifdoctor ")[1]),
            "-f",
            "value",
            "-c",
            "code",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert cli.returncode == 2, cli.stderr
    assert sorted(cli.stdout.split()) == ["VD101"] * 6 + ["VD105"]
    # The human table, as oslo.upgradecheck draws it.
    code, table, err = neutron_status(status_python, files)
    assert code == 2
    assert f"Check: {PLUG}" in table and "Result: Failure" in table
    assert_no_password(reader[2], out, err, table, cli.stdout, cli.stderr)


def test_incident_row_that_does_not_parse_stops_neutron_own_check(
    status_python, neutron29_mariadb_url, reader, tmp_path
):
    """neutron 29.0.0's 'Port Binding profile sanity check' dies on unparsable vif_details.

    oslo.upgradecheck then prints a traceback and exits 255 for every check, vifdoctor's
    included (upstream behaviour, pinned here); vifdoctor's checks run first in this
    environment and name the cause on stderr before the traceback.
    """
    write(neutron29_mariadb_url, incident.incident_cloud())
    files = confs(tmp_path, *reader)
    code, out, err = neutron_status(status_python, files, "--json")
    assert code == 255
    assert "port_binding_profile_sanity" in out and "JSONDecodeError" in out
    assert (
        "vifdoctor: 1 port binding row(s) hold vif_details or profile that is not a "
        "JSON object (VD104)"
    ) in err
    assert_no_password(reader[2], out, err)


def test_clean_cloud(status_python, neutron29_mariadb_url, reader, tmp_path):
    write(neutron29_mariadb_url, clean_cloud())
    files = confs(tmp_path, *reader)
    code, out, err = neutron_status(status_python, files, "--json")
    assert code == 0, out + err
    checks = checks_of(out)
    assert {name: checks[name]["result"] for name in OURS} == dict.fromkeys(OURS, 0)
    assert checks[PLUG]["details"] == (
        "No port binding that Nova will plug wrong among 2 binding(s) (2 judged, layout ocata)."
    )
    code, table, _ = neutron_status(status_python, files)
    assert code == 0 and table.count("Result: Success") == len(checks)


def test_malformed_and_stale_rows(status_python, neutron29_mariadb_url, reader, tmp_path):
    """vif_details 'null' (parsable, not an object) and a stale INACTIVE duplicate."""
    bad = "22222222-0000-4000-8000-000000000000"
    stale = "33333333-0000-4000-8000-000000000000"
    write(
        neutron29_mariadb_url,
        clean_cloud(
            vm(bad, "null"),
            vm(
                stale,
                HYBRID_29,
                BindingSpec(
                    host="compute9", vif_type="ovs", vif_details=HYBRID_29, status="INACTIVE"
                ),
            ),
        ),
    )
    neutron_conf, ml2 = confs(tmp_path, *reader)
    # ml2 settings from a --config-dir, as packaged deployments (neutron.conf.d) have them
    folder = tmp_path / "neutron.conf.d"
    folder.mkdir()
    Path(ml2).rename(folder / "ml2.conf")
    code, out, err = neutron_status(
        status_python, [neutron_conf], "--config-dir", str(folder), "--json"
    )
    assert code == 2, out + err
    checks = checks_of(out)
    assert checks[PLUG]["result"] == 2
    assert checks[PLUG]["details"].endswith(
        "Full report: "
        + full_command(
            [neutron_conf, str(folder / "ml2.conf")],
            "VD101",
            "VD104",
            "VD105",
            "VD107",
            "VD108",
            "VD112",
        )
    )
    assert checks[PLUG]["details"].startswith(
        "1 port binding(s) Nova will plug wrong or cannot plug: VD104 x1. Hosts: compute1 1. "
        f"First: {bad} (VD104 on compute1)."
    )
    assert checks[STALE]["result"] == 1
    assert checks[STALE]["details"].startswith(
        "1 stale INACTIVE port binding(s) beside the ACTIVE one: VD109 x1. "
    )
    assert f"First: {stale} (VD109 on " in checks[STALE]["details"]
    assert checks[LEFTOVERS]["result"] == 0
    theirs = [c["result"] for name, c in checks.items() if name not in OURS]
    assert set(theirs) == {0}


def test_vifdoctor_failure_never_breaks_neutron_checks(
    status_python, neutron29_mariadb_url, reader, tmp_path
):
    """A database user that may not read ml2_port_binding_levels: vifdoctor cannot run.

    neutron's own checks never read that table, so they all still pass.
    """
    dbname, user, password = reader
    write(neutron29_mariadb_url, clean_cloud())
    dbfixtures._mariadb_execute(f"REVOKE SELECT ON `{dbname}`.* FROM '{user}'@'%'")
    tables = [
        r[0]
        for r in dbfixtures._mariadb_execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (dbname,)
        )
    ]
    for table in tables:
        if table != "ml2_port_binding_levels":
            dbfixtures._mariadb_execute(f"GRANT SELECT ON `{dbname}`.`{table}` TO '{user}'@'%'")
    files = confs(tmp_path, dbname, user, password)
    code, out, err = neutron_status(status_python, files, "--json")
    assert code == 2, out + err  # a FAILURE, not oslo's 255 "Error: traceback"
    checks = checks_of(out)
    for name in OURS:
        details = checks[name]["details"]
        assert checks[name]["result"] == 2
        # The table is invisible to the user, so the layout is not one vifdoctor knows.
        assert details == (
            "vifdoctor could not run: unknown binding layout "
            "(driver/segment=no, levels=no, status=yes)"
        )
    theirs = {name: c["result"] for name, c in checks.items() if name not in OURS}
    assert len(theirs) >= 10 and set(theirs.values()) == {0}, theirs
    assert_no_password(password, out, err)
