"""Export bundles: `vifdoctor export` then `audit --bundle` give the live audit's findings.

The incident's cloud (Neutron and Nova) is written into every layout vifdoctor
reads, on the legacy schemas (SQLite and MariaDB) and on the real neutron 29.0.0
(MariaDB from its migrations, PostgreSQL) and nova 34.0.0 (MariaDB) schemas; the
live audit and the audit of its bundle must agree on every finding, the summary,
the agents and the instances with their steps. The bundle must hold the audit's
columns and nothing else.
"""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from testkit.cloudfactory import run_cli

from vifdoctor.demo.builder import AgentSpec, CloudSpec, NetworkSpec, write_cloud
from vifdoctor.demo.incident import incident_cloud, incident_instances, install_incident
from vifdoctor.demo.nova import create_nova_schema, write_instances
from vifdoctor.demo.schemas import LAYOUTS

SAME = ("findings", "summary", "agents", "instances")


def write_incident(neutron: str, nova: str, layout: str | None) -> None:
    """The incident into `neutron` (creating `layout`'s tables unless None: a real schema)."""
    engine = sa.create_engine(neutron)
    try:
        if layout is None:
            write_cloud(engine, incident_cloud())
        else:
            install_incident(engine, layout)
    finally:
        engine.dispose()
    engine = sa.create_engine(nova)
    try:
        if not sa.inspect(engine).has_table("instances"):
            create_nova_schema(engine)
        write_instances(engine, incident_instances())
    finally:
        engine.dispose()


def audit(*argv: str, command: str = "audit") -> dict:
    code, out, err = run_cli([command, *argv, "-f", "json"])
    assert code in (0, 1, 2), err
    return json.loads(out)


def export(tmp_path: Path, *argv: str) -> tuple[Path, str]:
    bundle = tmp_path / "bundle.sqlite"
    code, out, err = run_cli(["export", *argv, "-o", str(bundle)])
    assert code == 0, err
    return bundle, out


def check_same(neutron: str, nova: str, tmp_path: Path) -> tuple[dict, Path]:
    live = audit("--neutron-db", neutron, "--nova-db", nova)
    bundle, _ = export(tmp_path, "--neutron-db", neutron, "--nova-db", nova)
    offline = audit("--bundle", str(bundle))
    for key in SAME:
        assert offline[key] == live[key], key
    schema = {
        k: v for k, v in live["schema"].items() if k not in ("url", "dialect", "database_time_utc")
    }
    assert {k: offline["schema"][k] for k in schema} == schema
    assert any(a.startswith("read from the bundle bundle.sqlite") for a in offline["assumptions"])
    plan_live = audit("--neutron-db", neutron, "--nova-db", nova, command="remediation")
    plan_offline = audit("--bundle", str(bundle), command="remediation")
    assert plan_offline["steps"] == plan_live["steps"]
    return live, bundle


@pytest.mark.parametrize("layout", LAYOUTS)
def test_bundle_audits_as_the_live_databases_on_every_legacy_layout(
    layout: str, db_url: str, tmp_path: Path
) -> None:
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    write_incident(db_url, nova, layout)
    live, _ = check_same(db_url, nova, tmp_path)
    assert live["summary"]["findings"] > 10  # the incident, not an empty cloud


@pytest.mark.nova_real
def test_bundle_of_real_neutron29_and_nova34_on_mariadb(
    neutron29_mariadb_url: str, nova34_cell_mariadb_url: str, tmp_path: Path
) -> None:
    write_incident(neutron29_mariadb_url, nova34_cell_mariadb_url, None)
    live, bundle = check_same(neutron29_mariadb_url, nova34_cell_mariadb_url, tmp_path)
    assert live["schema"]["layout"] == "ocata" and live["summary"]["instances_affected"]


def test_bundle_of_real_neutron29_on_postgresql(
    neutron29_postgresql_url: str, tmp_path: Path
) -> None:
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    write_incident(neutron29_postgresql_url, nova, None)
    check_same(neutron29_postgresql_url, nova, tmp_path)


def test_the_bundle_holds_the_audits_columns_and_nothing_else(
    neutron29_mariadb_url: str, tmp_path: Path
) -> None:
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    write_incident(neutron29_mariadb_url, nova, None)
    bundle, printed = export(tmp_path, "--neutron-db", neutron29_mariadb_url, "--nova-db", nova)
    assert "bundle written" in printed
    with sqlite3.connect(bundle) as db:
        tables = {
            name: [r[1] for r in db.execute(f"PRAGMA table_info('{name}')")]
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        manifest = {
            k: json.loads(v) for k, v in db.execute("SELECT key, value FROM vifdoctor_bundle")
        }
    assert tables == {
        "ml2_port_bindings": [
            "port_id",
            "host",
            "vif_type",
            "vif_details",
            "vnic_type",
            "profile",
            "status",
        ],
        "ports": ["id", "network_id", "device_id", "device_owner", "project_id"],
        "agents": [
            "id",
            "agent_type",
            "host",
            "admin_state_up",
            "heartbeat_timestamp",
            "configurations",
        ],
        "ml2_port_binding_levels": ["port_id", "host", "level", "driver", "segment_id"],
        "networksegments": ["id"],
        "alembic_version": ["version_num"],
        "nova_1_nova__instances": [
            "uuid",
            "display_name",
            "host",
            "node",
            "vm_state",
            "power_state",
            "task_state",
            "deleted",
        ],
        "nova_1_nova__instance_info_caches": ["instance_uuid", "network_info", "deleted"],
        "vifdoctor_bundle": ["key", "value"],
    }
    assert manifest["format"] == "vifdoctor-bundle" and manifest["format_version"] == 1
    assert manifest["source"]["layout"] == "ocata" and manifest["source"]["dialect"] == "mysql"
    assert manifest["tables"]["ml2_port_bindings"]["rows"] == len(incident_cloud().ports)
    # no connection URL, user, host or database name of the source anywhere in the file
    data = bundle.read_bytes()
    database = neutron29_mariadb_url.rsplit("/", 1)[1]
    for secret in (neutron29_mariadb_url, "127.0.0.1", database, "mysql+pymysql", "root@"):
        assert secret.encode() not in data, secret
    assert os.stat(bundle).st_mode & 0o077 == 0  # like a backup: the owner's only


def test_agents_are_judged_by_the_clock_at_export(sqlite_url: str, tmp_path: Path) -> None:
    """An agent alive at export stays alive in the bundle, however late it is read."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    engine = sa.create_engine(sqlite_url)
    try:
        install_incident(engine, "ocata")
        write_cloud(
            engine,
            CloudSpec(
                networks=[NetworkSpec("net-late", "late", "proj", [])],
                agents=[
                    AgentSpec(
                        host="late-host",
                        agent_type="Open vSwitch agent",
                        configurations={},
                        heartbeat_at=now - datetime.timedelta(seconds=70),
                    )
                ],
                ports=[],
            ),
        )
    finally:
        engine.dispose()
    bundle, _ = export(tmp_path, "--neutron-db", sqlite_url)
    time.sleep(6)  # 76 s since the heartbeat: dead by now, alive at export (75 s)
    live = {a["host"]: a["alive"] for a in audit("--neutron-db", sqlite_url)["agents"]}
    offline = {a["host"]: a["alive"] for a in audit("--bundle", str(bundle))["agents"]}
    assert live["late-host"] is False and offline["late-host"] is True


def test_refusals_are_one_line(sqlite_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(sqlite_url)
    try:
        install_incident(engine, "kilo")
    finally:
        engine.dispose()
    bundle, _ = export(tmp_path, "--neutron-db", sqlite_url)
    before = bundle.read_bytes()
    cases = [
        (["export", "--neutron-db", sqlite_url, "-o", str(bundle)], "exists"),
        (["audit", "--bundle", str(tmp_path / "nope.sqlite")], "no such file"),
        (["audit", "--bundle", sqlite_url.removeprefix("sqlite:///")], "not a vifdoctor bundle"),
        (["audit", "--bundle", str(bundle), "--neutron-db", sqlite_url], "replaces"),
    ]
    for argv, words in cases:
        code, out, err = run_cli(argv, debug=False)
        assert code == 3 and out == "", (argv, err)
        assert err.count("\n") == 1 and words in err, (argv, err)
    assert bundle.read_bytes() == before
    assert not list(tmp_path.glob(".bundle.sqlite.*.part"))


def test_the_library_exports_and_reads_bundles(sqlite_url: str, tmp_path: Path) -> None:
    """vifdoctor.api.export and audit(bundle=...) do what the two commands do."""
    from vifdoctor import api

    engine = sa.create_engine(sqlite_url)
    try:
        install_incident(engine, "newton")
    finally:
        engine.dispose()
    manifest = api.export(neutron_db=sqlite_url, output=str(tmp_path / "b.sqlite"))
    assert manifest["source"]["layout"] == "kilo"  # newton is the kilo layout + project_id
    assert manifest["tables"]["ports"]["columns"][-1] == "project_id"
    live = api.audit(neutron_db=sqlite_url)
    offline = api.audit(bundle=str(tmp_path / "b.sqlite"))
    assert list(offline.findings) == list(live.findings)
