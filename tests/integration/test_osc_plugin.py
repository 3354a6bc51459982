"""``openstack vifdoctor ...`` through python-openstackclient from PyPI.

The real ``openstack`` command runs in a venv over the shared .venv's packages
(python-openstackclient, cliff, openstacksdk) with this checkout pip-installed,
so OSC finds the plugin by its entry points. API mode goes to the real neutron
29.0.0 API server (tests/neutron_server.py) through a clouds.yaml and OSC's own
session; DB mode reads the same server's database.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_api_mode import HYBRID_DETAILS, drift, make_network, make_port
from testkit.cloudfactory import run_cli
from testkit.neutron_server import NeutronServer, ovs_agent_configurations, running_server
from testkit.overlayvenv import overlay_venv

from vifdoctor.demo.incident import build_demo as build

OPENSTACK = Path(sys.executable).with_name("openstack")
HYBRID, NATIVE = "compute1", "compute2"


@pytest.fixture(scope="session")
def osc_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not OPENSTACK.exists():
        pytest.fail(
            "python-openstackclient missing from .venv: pip install -e '.[test]'", pytrace=False
        )
    return overlay_venv(Path(sys.executable), tmp_path_factory.mktemp("osc") / "venv")


@pytest.fixture
def server(neutron29_mariadb_url: str, tmp_path: Path) -> Iterator[NeutronServer]:
    with running_server(neutron29_mariadb_url, tmp_path) as s:
        s.add_agent(HYBRID, ovs_agent_configurations(True))
        s.add_agent(NATIVE, ovs_agent_configurations(False))
        yield s


@pytest.fixture
def ports(server: NeutronServer) -> dict[str, str]:
    """Ports bound by ML2 through the API; two drifted by SQL as the incident did."""
    net = make_network(server)
    made = {
        "good": make_port(server, net, HYBRID)["id"],
        "empty": make_port(server, net, HYBRID)["id"],
        "native_hybrid": make_port(server, net, NATIVE)["id"],
    }
    drift(server, made["empty"], "")
    drift(server, made["native_hybrid"], json.dumps(HYBRID_DETAILS))
    server.refresh_agents()
    return made


def openstack(python: Path, server: NeutronServer | None, *argv: str) -> tuple[int, str, str]:
    """The real ``openstack`` command; only the test cloud's clouds.yaml, no OS_* variables."""
    base = (
        server.env() if server else {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    )
    env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "VIFDOCTOR_NEUTRON_DB")}
    env["PYTHONWARNINGS"] = "ignore"
    r = subprocess.run(
        [str(python), str(OPENSTACK), *argv], capture_output=True, text=True, env=env, timeout=300
    )
    return r.returncode, r.stdout, r.stderr


def test_api_mode_through_osc_session(osc_python, server, ports, monkeypatch):
    code, out, err = openstack(
        osc_python, server, "--os-cloud", "vdtest", "vifdoctor", "audit", "-f", "json"
    )
    assert code == 2, err
    rows = json.loads(out)
    assert list(rows[0]) == [
        "Code",
        "Severity",
        "Port",
        "Host",
        "Device",
        "Nova Plug",
        "Needs",
        "Problem",
    ]
    got = sorted((r["Code"], r["Port"]) for r in rows)
    assert ("VD101", ports["empty"]) in got and ("VD102", ports["native_hybrid"]) in got
    assert not any(p == ports["good"] for _, p in got)
    # The same findings as vifdoctor's own CLI in API mode on the same cloud.
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(server.clouds_yaml))
    for key in [k for k in os.environ if k.startswith("OS_") and k != "OS_CLIENT_CONFIG_FILE"]:
        monkeypatch.delenv(key)
    cli_code, cli_out, cli_err = run_cli(["audit", "--os-cloud", "vdtest", "-f", "json"])
    assert cli_code == 2, cli_err
    assert got == sorted((f["code"], f["port_id"]) for f in json.loads(cli_out)["findings"])

    # cliff's options: csv, -c, --sort-column; value.
    code, out, _ = openstack(
        osc_python,
        server,
        "--os-cloud",
        "vdtest",
        "vifdoctor",
        "audit",
        "-f",
        "csv",
        "-c",
        "Port",
        "-c",
        "Code",
        "--sort-column",
        "Port",
        "--sort-descending",
    )
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["Code", "Port"]  # cliff keeps the listing's column order
    assert [r[1] for r in table[1:]] == sorted((r[1] for r in table[1:]), reverse=True)
    code, out, _ = openstack(
        osc_python,
        server,
        "--os-cloud",
        "vdtest",
        "vifdoctor",
        "audit",
        "--code",
        "VD101",
        "-f",
        "value",
        "-c",
        "Port",
    )
    assert code == 2 and out.split() == [ports["empty"]]

    # plan: the row a repair would change, with the details it would write.
    code, out, err = openstack(
        osc_python, server, "--os-cloud", "vdtest", "vifdoctor", "plan", "-f", "json", "--long"
    )
    assert code == 0, err
    plan = {r["Port"]: r for r in json.loads(out)}
    assert list(plan) == [ports["empty"]]
    assert plan[ports["empty"]]["Codes"] == ["VD101", "VD103"]
    # repair in API mode re-binds through Neutron: without --apply, nothing is written.
    before = server.sql("SELECT port_id, vif_details FROM ml2_port_bindings ORDER BY port_id")
    code, out, err = openstack(
        osc_python,
        server,
        "--os-cloud",
        "vdtest",
        "vifdoctor",
        "repair",
        "-f",
        "value",
        "-c",
        "Port",
    )
    assert code == 0, err
    assert out.split() == [ports["empty"]]
    assert (
        server.sql("SELECT port_id, vif_details FROM ml2_port_bindings ORDER BY port_id") == before
    )


def test_errors_and_remediation_without_a_server(osc_python, tmp_path):
    # An unknown cloud: OSC's own error, before vifdoctor runs.
    code, out, err = openstack(osc_python, None, "--os-cloud", "nosuch", "vifdoctor", "audit")
    assert code == 1 and "nosuch" in err and "Traceback" not in err
    # vifdoctor's errors become OSC CommandErrors: one line, no password.
    secret = "mysql+pymysql://neutron:Hush-123@127.0.0.1:1/neutron"
    code, out, err = openstack(osc_python, None, "vifdoctor", "audit", "--neutron-db", secret)
    assert code == 1 and err.count("\n") == 1 and "cannot connect" in err
    assert "Hush-123" not in err + out
    # OSC's --debug log: the parsed arguments and vifdoctor's records are masked; OSC's own
    # "START with options" line echoes argv as typed (hence docs: prefer config files).
    code, out, err = openstack(
        osc_python,
        None,
        "--debug",
        "vifdoctor",
        "audit",
        "--neutron-db",
        secret,
        "--nova-db",
        secret,
    )
    assert code == 1 and "neutron_db='mysql+pymysql://neutron:***@127.0.0.1:1/neutron'" in err
    assert "nova_db=['mysql+pymysql://neutron:***@127.0.0.1:1/neutron']" in err
    assert "reading Neutron's database mysql+pymysql://neutron:***@" in err
    leaking = [line for line in err.splitlines() if "Hush-123" in line]
    assert len(leaking) == 1 and leaking[0].startswith("START with options: "), leaking
    assert "Hush-123" not in out
    # remediation needs Nova: said in one line; with the demo's Nova, the per-host steps.
    neutron, nova = build(str(tmp_path / "demo"))
    code, out, err = openstack(
        osc_python, None, "vifdoctor", "remediation", "--neutron-db", neutron
    )
    assert code == 1 and "remediation needs Nova's database" in err
    code, out, err = openstack(
        osc_python,
        None,
        "vifdoctor",
        "remediation",
        "--neutron-db",
        neutron,
        "--nova-db",
        nova,
        "-f",
        "json",
    )
    assert code == 0, err
    steps = json.loads(out)
    assert {"Host", "Action", "Instance", "Command"} <= set(steps[0])
    assert any(s["Command"].startswith("openstack vifdoctor repair") for s in steps)
    code, out, err = openstack(osc_python, None, "vifdoctor", "explain", "VD999")
    assert code == 1 and "unknown code(s) VD999" in err


def test_db_mode_repair_rollback_explain(osc_python, server, ports, tmp_path):
    """DB mode needs no Keystone: the whole write cycle through `openstack vifdoctor`."""
    db = ["--neutron-db", server.db_url]
    code, out, err = openstack(
        osc_python, server, "vifdoctor", "audit", *db, "-f", "yaml", "-c", "Code", "-c", "Port"
    )
    assert code == 2, err
    assert f"- Code: VD101\n  Port: {ports['empty']}\n" in out
    code, out, err = openstack(
        osc_python,
        server,
        "vifdoctor",
        "repair",
        *db,
        "--apply",
        "--backup-dir",
        str(tmp_path / "bk"),
        "-f",
        "json",
        "--long",
    )
    assert code == 0, err
    done = json.loads(out)
    assert [(r["Port"], r["Result"]) for r in done] == [(ports["empty"], "changed")]
    assert json.loads(
        server.sql(
            "SELECT vif_details FROM ml2_port_bindings WHERE port_id = :p", p=ports["empty"]
        )[0][0]
    )["ovs_hybrid_plug"]
    backup = next((tmp_path / "bk").glob("repair-*.json"))
    code, out, err = openstack(
        osc_python,
        server,
        "vifdoctor",
        "rollback",
        str(backup),
        *db,
        "--apply",
        "--backup-dir",
        str(tmp_path / "rb"),
        "-f",
        "value",
        "-c",
        "Port",
    )
    assert code == 0, err
    assert out.split() == [ports["empty"]]
    assert (
        server.sql(
            "SELECT vif_details FROM ml2_port_bindings WHERE port_id = :p", p=ports["empty"]
        )[0][0]
        == ""
    )
    code, out, err = openstack(
        osc_python, server, "vifdoctor", "explain", "VD101", "VD109", "-f", "json"
    )
    assert code == 0, err
    assert [(r["Code"], r["Severity"], r["Repair"]) for r in json.loads(out)] == [
        ("VD101", "failure", "by default"),
        ("VD109", "warning", "never"),
    ]
