"""The command line: exit codes, one-line errors, settings precedence, output formats.

Exit codes follow oslo.upgradecheck (0 success, 1 warning, 2 failure) plus 3
for "could not run", which must be ONE line on stderr, never a traceback, and
never show a database password.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from testkit.cloudfactory import HYBRID, audit_json, execute, pairs, run_cli, write

from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
    utcnow,
)
from vifdoctor.demo.incident import EMPTY_DETAIL_PORT_IDS, HYBRID_PORT_IDS, MALFORMED_PORT_ID
from vifdoctor.rules.catalog import CATALOG
from vifdoctor.settings import ENV_NEUTRON_DB

OVS = "Open vSwitch agent"
NET, SEG, PROJ = "n-1", "s-1", "proj-1"
P_OK, P_WARN, P_FAIL = "port-ok", "port-stale", "port-empty"
PASSWORD = "s3cret"
UNREACHABLE = f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:1/neutron"
DEFAULT_HEADINGS = ["Code", "Severity", "Port", "Host", "Device", "Nova Plug", "Needs", "Problem"]


def cloud(*ports: tuple[str, str, str]) -> CloudSpec:
    """Ports (id, host, vif_details); host 'legacy' runs a silent (pre-Newton) OVS agent,
    host 'ovsfw' a Newton+ agent reporting ovs_hybrid_plug false."""
    return CloudSpec(
        [NetworkSpec(NET, "net", PROJ, [SegmentSpec(SEG)])],
        [
            AgentSpec("legacy", OVS, {"bridge_mappings": {}}),
            AgentSpec("ovsfw", OVS, {"ovs_hybrid_plug": False}),
        ],
        [
            PortSpec(
                pid,
                NET,
                "compute:nova",
                f"vm-{pid}",
                PROJ,
                BindingSpec(host, "ovs", details, segment_id=SEG),
            )
            for pid, host, details in ports
        ],
    )


@pytest.fixture
def sqlite_db(sqlite_url):
    """One failure (VD101: '{"port_filter": true}' on an iptables_hybrid host), one warning
    (VD102: hybrid row on an openvswitch-firewall host) and one clean port."""
    write(
        sqlite_url,
        cloud(
            (P_OK, "legacy", HYBRID),
            (P_WARN, "ovsfw", HYBRID),
            (P_FAIL, "legacy", '{"port_filter": true}'),
        ),
        "icehouse",
    )
    return sqlite_url


def assert_cannot_run(argv, *needles: str) -> str:
    """Exit 3, one line, no traceback, no password, and not main()'s catch-all for bugs."""
    code, out, err = run_cli(argv, debug=False)
    assert code == 3, (code, out, err)
    assert "internal error" not in err, err
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert "Traceback" not in err
    assert PASSWORD not in err + out
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# ------------------------------------------------------------------------ exit codes


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ([(P_OK, "legacy", HYBRID)], 0),
        ([(P_OK, "legacy", HYBRID), (P_WARN, "ovsfw", HYBRID)], 1),
        ([(P_WARN, "ovsfw", HYBRID), (P_FAIL, "legacy", "")], 2),
    ],
    ids=["clean", "warnings", "failures"],
)
def test_exit_codes(db_url, ports, expected):
    write(db_url, cloud(*ports), "ocata")
    code, out, err = run_cli(["audit", "--neutron-db", db_url])
    assert code == expected
    assert err == ""
    code_json, doc = audit_json(db_url)
    assert code_json == expected == doc["summary"]["exit_code"]


def test_unreachable_mariadb():
    assert_cannot_run(
        ["audit", "--neutron-db", UNREACHABLE], "cannot connect", "root:***@127.0.0.1:1"
    )


def test_url_with_a_bad_port_is_not_a_url():
    assert_cannot_run(
        ["audit", "--neutron-db", f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:notaport/neutron"],
        "not a database URL",
    )


def test_not_a_url():
    assert_cannot_run(["audit", "--neutron-db", "neutron-db.example.com"], "not a database URL")


def test_missing_sqlite_file(tmp_path):
    missing = tmp_path / "nope" / "neutron.sqlite"
    assert_cannot_run(["audit", "--neutron-db", f"sqlite:///{missing}"], "does not exist")
    assert not missing.parent.exists()  # nothing was created on the way


def test_in_memory_sqlite():
    assert_cannot_run(["audit", "--neutron-db", "sqlite://"], "in-memory")


def test_empty_database(db_url):
    if db_url.startswith("sqlite"):
        sqlite3.connect(db_url.removeprefix("sqlite:///")).close()
    assert_cannot_run(["audit", "--neutron-db", db_url], "not a Neutron ML2 database", "empty")


def test_nova_database(db_url):
    execute(
        db_url,
        "CREATE TABLE instances (id INTEGER PRIMARY KEY, uuid VARCHAR(36))",
        "CREATE TABLE instance_info_caches (id INTEGER PRIMARY KEY, network_info TEXT)",
    )
    assert_cannot_run(["audit", "--neutron-db", db_url], "not a Neutron ML2 database", "Nova")


_PORTS = (
    "CREATE TABLE ports (id VARCHAR(36) PRIMARY KEY, network_id VARCHAR(36), "
    "device_id VARCHAR(255), device_owner VARCHAR(255), project_id VARCHAR(255))"
)
_AGENTS = (
    "CREATE TABLE agents (id VARCHAR(36) PRIMARY KEY, agent_type VARCHAR(255), "
    "host VARCHAR(255), admin_state_up BOOLEAN, heartbeat_timestamp DATETIME, "
    "configurations TEXT)"
)


def test_bindings_table_lacking_columns(db_url):
    execute(
        db_url,
        _PORTS,
        _AGENTS,
        "CREATE TABLE ml2_port_bindings (port_id VARCHAR(36) PRIMARY KEY, host VARCHAR(255))",
    )
    assert_cannot_run(
        ["audit", "--neutron-db", db_url],
        "ml2_port_bindings lacks column(s)",
        "profile",
        "vif_details",
        "vif_type",
        "vnic_type",
    )


def test_unknown_binding_layout(db_url):
    # driver/segment on the binding AND a status column: no Neutron release had both
    execute(
        db_url,
        _PORTS,
        _AGENTS,
        "CREATE TABLE ml2_port_bindings (port_id VARCHAR(36), host VARCHAR(255), "
        "vif_type VARCHAR(64), vif_details VARCHAR(4095), vnic_type VARCHAR(64), "
        "profile VARCHAR(4095), driver VARCHAR(64), segment VARCHAR(36), "
        "status VARCHAR(16), PRIMARY KEY (port_id, host))",
    )
    assert_cannot_run(["audit", "--neutron-db", db_url], "unknown binding layout")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--format", "xml"], "xml"),
        (["-f", "xml"], "xml"),
        (["--code", "VD999"], "VD999"),
        (["--agent-down-time", "-5"], "-5"),
        (["--agent-down-time", "0"], "positive"),
        (["--agent-down-time", "abc"], "abc"),
        (["--firewall-driver", "hybrid"], "hybrid"),
        (["--nova-generation", "havana"], "havana"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_flags(sqlite_db, flags, needle):
    assert_cannot_run(["audit", "--neutron-db", sqlite_db, *flags], needle)


def test_bad_command():
    assert_cannot_run(["frobnicate"], "frobnicate")
    assert_cannot_run([], "required")


def test_no_database_given(monkeypatch):
    monkeypatch.delenv(ENV_NEUTRON_DB, raising=False)
    assert_cannot_run(["audit"], "--neutron-db", ENV_NEUTRON_DB)


def test_missing_config_file(tmp_path, sqlite_db):
    missing = tmp_path / "neutron.conf"
    assert_cannot_run(
        ["audit", "--neutron-db", sqlite_db, "--neutron-config-file", str(missing)], str(missing)
    )


def _conf(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_config_connection_password_is_never_printed(tmp_path):
    conf = _conf(tmp_path, "neutron.conf", f"[database]\nconnection = {UNREACHABLE}\n")
    assert_cannot_run(["audit", "--neutron-config-file", conf], "cannot connect", "***")


@pytest.mark.parametrize(
    "text",
    [
        f"connection = {UNREACHABLE}\n",  # no section header: a parse error
        f"[database]\nconnection = {UNREACHABLE}\n[DEFAULT]\nagent_down_time = soon\n",
        f"[database]\nconnection = {UNREACHABLE}\n[securitygroup]\nfirewall_driver = magic\n",
        f"[database]\nconnection = {UNREACHABLE}\n[securitygroup]\nenable_security_group = maybe\n",
        f"[database]\nconnection = {UNREACHABLE.replace('mysql+pymysql', 'nosuch')}\n",
    ],
)
def test_config_errors_never_print_the_password(tmp_path, text):
    conf = _conf(tmp_path, "neutron.conf", text)
    assert_cannot_run(["audit", "--neutron-config-file", conf])


# ------------------------------------------------------------- settings precedence

# '{"port_filter": true}' on a silent agent's host: VD101 iff the firewall is iptables_hybrid
ONE_PORT = ((P_FAIL, "legacy", '{"port_filter": true}'),)


@pytest.fixture
def one_port_db(sqlite_url):
    write(sqlite_url, cloud(*ONE_PORT), "icehouse")
    return sqlite_url


def test_config_file_openvswitch_firewall_clears_vd101(tmp_path, one_port_db):
    code, doc = audit_json(one_port_db)
    assert pairs(doc) == {("VD101", P_FAIL)} and code == 2
    conf = _conf(
        tmp_path, "openvswitch_agent.ini", "[securitygroup]\nfirewall_driver = openvswitch\n"
    )
    code, doc = audit_json(one_port_db, "--neutron-config-file", conf)
    assert pairs(doc) == set() and code == 0
    assert any("firewall_driver=openvswitch" in a and conf in a for a in doc["assumptions"])


def test_config_file_class_path_firewall(tmp_path, one_port_db):
    conf = _conf(
        tmp_path,
        "ovs.ini",
        "[securitygroup]\nfirewall_driver = "
        "neutron.agent.linux.openvswitch_firewall.OVSFirewallDriver\n",
    )
    assert pairs(audit_json(one_port_db, "--neutron-config-file", conf)[1]) == set()


def test_later_config_file_wins(tmp_path, one_port_db):
    ovs = _conf(tmp_path, "a.ini", "[securitygroup]\nfirewall_driver = openvswitch\n")
    hybrid = _conf(tmp_path, "b.ini", "[securitygroup]\nfirewall_driver = iptables_hybrid\n")
    _, doc = audit_json(one_port_db, "--neutron-config-file", ovs, "--neutron-config-file", hybrid)
    assert pairs(doc) == {("VD101", P_FAIL)}
    assert any(hybrid in a for a in doc["assumptions"])
    _, doc = audit_json(one_port_db, "--neutron-config-file", hybrid, "--neutron-config-file", ovs)
    assert pairs(doc) == set()
    assert any(ovs in a for a in doc["assumptions"])


def test_a_file_without_the_option_does_not_override_an_earlier_one(tmp_path, one_port_db):
    ovs = _conf(tmp_path, "a.ini", "[securitygroup]\nfirewall_driver = openvswitch\n")
    other = _conf(tmp_path, "b.ini", "[DEFAULT]\ndebug = true\n")
    _, doc = audit_json(one_port_db, "--neutron-config-file", ovs, "--neutron-config-file", other)
    assert pairs(doc) == set()


def test_flag_beats_config_file(tmp_path, one_port_db):
    ovs = _conf(tmp_path, "a.ini", "[securitygroup]\nfirewall_driver = openvswitch\n")
    _, doc = audit_json(
        one_port_db, "--neutron-config-file", ovs, "--firewall-driver", "iptables_hybrid"
    )
    assert pairs(doc) == {("VD101", P_FAIL)}


def test_config_file_security_groups_disabled(tmp_path, sqlite_url):
    write(sqlite_url, cloud((P_FAIL, "legacy", "")), "icehouse")
    assert pairs(audit_json(sqlite_url)[1]) == {("VD101", P_FAIL), ("VD103", P_FAIL)}
    conf = _conf(tmp_path, "n.conf", "[securitygroup]\nenable_security_group = false\n")
    assert pairs(audit_json(sqlite_url, "--neutron-config-file", conf)[1]) == set()


def test_config_file_connection_and_agent_down_time(tmp_path, sqlite_url):
    beat = utcnow()
    spec = cloud((P_OK, "legacy", HYBRID))
    spec.agents[0].heartbeat_at = beat - timedelta(seconds=100)
    write(sqlite_url, spec, "icehouse")
    conf = _conf(
        tmp_path,
        "neutron.conf",
        f"[DEFAULT]\nagent_down_time = 200\n[database]\nconnection = {sqlite_url}\n",
    )
    code, out, err = run_cli(["audit", "--neutron-config-file", conf, "-f", "json"])
    assert (code, err) == (0, "")
    assert pairs(json.loads(out)) == set()
    # the flag beats the file
    code, out, _ = run_cli(
        ["audit", "--neutron-config-file", conf, "-f", "json", "--agent-down-time", "75"]
    )
    assert code == 2 and pairs(json.loads(out)) == {("VD107", P_OK)}


def test_env_var_fallback_and_precedence(tmp_path, monkeypatch, one_port_db):
    monkeypatch.setenv(ENV_NEUTRON_DB, one_port_db)
    code, out, err = run_cli(["audit", "-f", "json"])
    assert code == 2 and pairs(json.loads(out)) == {("VD101", P_FAIL)}
    # the flag and the config file both beat the environment
    monkeypatch.setenv(ENV_NEUTRON_DB, f"sqlite:///{tmp_path / 'missing.sqlite'}")
    code, out, err = run_cli(["audit", "--neutron-db", one_port_db, "-f", "json"])
    assert code == 2, err
    conf = _conf(tmp_path, "neutron.conf", f"[database]\nconnection = {one_port_db}\n")
    code, out, err = run_cli(["audit", "--neutron-config-file", conf, "-f", "json"])
    assert code == 2, err
    assert_cannot_run(["audit"], "missing.sqlite")


# ------------------------------------------------------------------------- formats


def _json_doc(url: str, *extra: str) -> dict:
    return audit_json(url, *extra)[1]


def _without_clock(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    doc["schema"].pop("database_time_utc")
    return doc


EXPECTED = {("VD101", P_FAIL), ("VD102", P_WARN)}


def test_format_json(sqlite_db):
    doc = _json_doc(sqlite_db)
    assert pairs(doc) == EXPECTED
    assert doc["tool"]["name"] == "vifdoctor"
    assert doc["summary"]["exit_code"] == 2
    assert {a["host"] for a in doc["agents"]} == {"legacy", "ovsfw"}


def test_format_yaml_is_the_json_document(sqlite_db):
    code, out, _ = run_cli(["audit", "--neutron-db", sqlite_db, "-f", "yaml"])
    assert code == 2
    assert _without_clock(yaml.safe_load(out)) == _without_clock(_json_doc(sqlite_db))


def test_format_table(sqlite_db):
    code, out, _ = run_cli(["audit", "--neutron-db", sqlite_db])
    assert code == 2
    header = next(line for line in out.splitlines() if line.startswith("| Code"))
    assert [h.strip() for h in header.strip("|").split("|")] == DEFAULT_HEADINGS
    assert P_FAIL in out and P_WARN in out and P_OK not in out
    assert "Schema: icehouse" in out
    assert "By code: VD101 1, VD102 1" in out


def test_format_csv(sqlite_db):
    code, out, _ = run_cli(["audit", "--neutron-db", sqlite_db, "-f", "csv"])
    assert code == 2
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == DEFAULT_HEADINGS
    assert {(r["Code"], r["Port"]) for r in rows} == EXPECTED
    fail = next(r for r in rows if r["Code"] == "VD101")
    assert (fail["Severity"], fail["Host"], fail["Nova Plug"], fail["Needs"]) == (
        "failure",
        "legacy",
        "direct",
        "hybrid",
    )


def test_format_value(sqlite_db):
    code, out, _ = run_cli(["audit", "--neutron-db", sqlite_db, "-f", "value"])
    assert code == 2
    lines = out.splitlines()
    assert len(lines) == 2
    assert {tuple(line.split()[:3]) for line in lines} == {
        ("VD101", "failure", P_FAIL),
        ("VD102", "warning", P_WARN),
    }


@pytest.mark.parametrize("fmt", ["csv", "value", "json", "table"])
def test_columns_select(sqlite_db, fmt):
    code, out, _ = run_cli(
        ["audit", "--neutron-db", sqlite_db, "-f", fmt, "-c", "Port", "-c", "Code"]
    )
    assert code == 2
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0] == ["Port", "Code"]
        assert {tuple(r) for r in rows[1:]} == {(p, c) for c, p in EXPECTED}
    elif fmt == "value":
        assert {tuple(line.split()) for line in out.splitlines()} == {(p, c) for c, p in EXPECTED}
    elif fmt == "json":
        findings = json.loads(out)["findings"]
        assert [list(f) for f in findings] == [["port_id", "code"]] * 2
        assert {(f["code"], f["port_id"]) for f in findings} == EXPECTED
    else:
        header = next(line for line in out.splitlines() if line.startswith("| "))
        assert [h.strip() for h in header.strip("|").split("|")] == ["Port", "Code"]


def test_columns_by_key_and_hidden_columns(sqlite_db):
    code, out, _ = run_cli(
        [
            "audit",
            "--neutron-db",
            sqlite_db,
            "-f",
            "csv",
            "-c",
            "port_id",
            "-c",
            "Expected Details",
            "--code",
            "VD101",
        ]
    )
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["Port", "Expected Details"]
    assert rows[1][0] == P_FAIL
    assert json.loads(rows[1][1]) == {"port_filter": True, "ovs_hybrid_plug": True}


def test_unknown_column(sqlite_db):
    assert_cannot_run(["audit", "--neutron-db", sqlite_db, "-c", "nosuch"], "nosuch")


# ------------------------------------------------------------------------- explain


def test_explain_one_code():
    code, out, err = run_cli(["explain", "VD101"])
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "VD101 hybrid plug missing (failure)"
    assert "Repair: repaired by default" in out
    assert "VD102" not in out.split("\n", 1)[0]
    code, out, _ = run_cli(["explain", "vd104"])
    assert code == 0 and out.startswith("VD104 malformed binding column (failure)")
    assert "Repair: never written by the repair" in out


def test_explain_all_codes():
    code, out, _ = run_cli(["explain"])
    assert code == 0
    headers = [line.split()[0] for line in out.splitlines() if line[:2] == "VD"]
    assert headers == sorted(CATALOG)
    assert {f"VD{n}" for n in range(101, 112)} <= set(headers)


def test_explain_unknown_code():
    assert_cannot_run(["explain", "VD999"], "VD999")


# ---------------------------------------------------------------------------- demo


def test_demo(tmp_path):
    folder = tmp_path / "demo"
    code, out, err = run_cli(["demo", "--dir", str(folder)])
    assert (code, err) == (0, "")
    assert (folder / "neutron.sqlite").is_file()
    vd101_lines = [line for line in out.splitlines() if line.startswith("| VD101")]
    assert len(vd101_lines) == 7  # the empty rows, and the malformed one Neutron shows as {}
    for port in [*EMPTY_DETAIL_PORT_IDS, MALFORMED_PORT_ID]:
        assert any(port in line for line in vd101_lines), port
    for port in HYBRID_PORT_IDS:
        assert not any(port in line for line in vd101_lines), port
    assert (folder / "nova.sqlite").is_file()
    assert "Per instance:" in out and "| hard-reboot" in out and "| repair-binding" in out
    assert "vifdoctor explain VD101" in out
    # running it again rebuilds the same cloud
    assert run_cli(["demo", "--dir", str(folder)])[0] == 0


def test_demo_json(tmp_path):
    code, out, _ = run_cli(["demo", "--dir", str(tmp_path), "-f", "json"])
    assert code == 0
    doc = json.loads(out)
    assert {f["port_id"] for f in doc["findings"] if f["code"] == "VD101"} == {
        *EMPTY_DETAIL_PORT_IDS,
        MALFORMED_PORT_ID,
    }
    assert doc["schema"]["layout"] == "icehouse"


def test_demo_agents_stay_alive_when_audited_later(tmp_path, monkeypatch):
    assert run_cli(["demo", "--dir", str(tmp_path)])[0] == 0
    url = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    import vifdoctor.sources.neutron_db as neutron_db

    real = neutron_db.utc_now
    # A month later by the database's clock (the operator comes back to the demo's
    # suggested commands); 75 s would do to catch heartbeats written as 'now'.
    monkeypatch.setattr(neutron_db, "utc_now", lambda conn: real(conn) + timedelta(days=30))
    _, doc = audit_json(url)
    assert all(a["alive"] for a in doc["agents"] if a["agent_type"] == OVS)
    assert "VD107" not in {f["code"] for f in doc["findings"]}
    assert {f["port_id"] for f in doc["findings"] if f["code"] == "VD101"} == {
        *EMPTY_DETAIL_PORT_IDS,
        MALFORMED_PORT_ID,
    }
