"""The Nova side of the test kit: real nova 34.0.0 schemas, the Icehouse layout,
``write_instances``/``write_cell_mappings``, ``vif_entry`` and the incident's instances.

The Nova rules are only as good as the rows they are tested on, so these tests
pin the rows to what nova really writes (its migrations, its VIF model).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from testkit import dbfixtures
from testkit.cells import CellMappingSpec, write_cell_mappings

from vifdoctor.demo import incident
from vifdoctor.demo.builder import write_cloud
from vifdoctor.demo.nova import (
    CELL0_UUID,
    ICEHOUSE_MIGRATE_VERSION,
    InstanceSpec,
    create_nova_schema,
    subnet_entry,
    vif_entry,
    write_instances,
)
from vifdoctor.demo.schemas import create_schema

NET = "74d2abf4-db8b-4fb8-bf29-154a2be7c433"
PORT = "0cc863d2-adf4-49b7-9c28-1d0cf0ffd7d4"
HYBRID = {"port_filter": True, "ovs_hybrid_plug": True}
MALFORMED = '[{"id": "0cc863d2-adf4-49b7-9c28-1d0cf0ffd7d4", "details": {"ovs_hy'


@pytest.fixture
def engine_for() -> Iterator:
    """Make engines from URLs and dispose of them, so no connection outlives the database."""
    engines: list[Engine] = []

    def make(url: str) -> Engine:
        engines.append(sa.create_engine(url))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def _sample_instances() -> list[InstanceSpec]:
    vif = vif_entry(PORT, "ovs", HYBRID, network_id=NET, mac="fa:16:3e:00:00:01")
    return [
        InstanceSpec(
            uuid="11111111-1111-4111-8111-111111111111",
            host="compute000",
            network_info=[vif],
            display_name="live",
        ),
        InstanceSpec(
            uuid="22222222-2222-4222-8222-222222222222",
            host="compute001",
            node="compute001.example.org",
            vm_state="stopped",
            power_state=4,
            network_info=MALFORMED,
        ),
        InstanceSpec(
            uuid="33333333-3333-4333-8333-333333333333",
            host="compute002",
            vm_state="deleted",
            power_state=0,
            deleted=True,
            network_info=[vif],
        ),
        InstanceSpec(
            uuid="44444444-4444-4444-8444-444444444444",
            host="compute002",
            task_state="migrating",
            network_info=None,
        ),
    ]


def _check_written(engine: Engine) -> None:
    """What write_instances must leave, on any schema."""
    with engine.connect() as conn:
        inst = {
            r.uuid: r
            for r in conn.execute(
                sa.text(
                    "SELECT id, uuid, host, node, vm_state, power_state, task_state, deleted,"
                    " deleted_at FROM instances"
                )
            )
        }
        caches = {
            r.instance_uuid: r
            for r in conn.execute(
                sa.text(
                    "SELECT id, instance_uuid, network_info, deleted, deleted_at"
                    " FROM instance_info_caches"
                )
            )
        }
    live, malformed, gone, nocache = (inst[s.uuid] for s in _sample_instances())
    assert (live.host, live.node, live.vm_state, live.power_state) == (
        "compute000",
        "compute000",
        "active",
        1,
    )
    assert live.deleted == 0 and live.deleted_at is None
    assert (malformed.node, malformed.vm_state, malformed.power_state) == (
        "compute001.example.org",
        "stopped",
        4,
    )
    assert gone.deleted == gone.id and gone.deleted != 0 and gone.deleted_at is not None
    assert nocache.task_state == "migrating"
    assert nocache.uuid not in caches

    assert json.loads(caches[live.uuid].network_info)[0]["details"] == HYBRID
    assert caches[live.uuid].deleted == 0
    assert caches[malformed.uuid].network_info == MALFORMED  # byte for byte
    cache = caches[gone.uuid]
    assert cache.deleted == cache.id and cache.deleted_at is not None


# ------------------------------------------------------------------ real schemas


def _reference_tables(name: str) -> set[str]:
    """Tables of a dump scripts/build-schemas made: the load must lose none of them."""
    path = dbfixtures.schema_dumps()[name]
    return set(re.findall(r"CREATE TABLE `(\w+)`", path.read_text()))


def test_nova34_cell_schema_has_audited_columns(nova34_cell_mariadb_url: str, engine_for) -> None:
    insp = sa.inspect(engine_for(nova34_cell_mariadb_url))
    instances = {c["name"] for c in insp.get_columns("instances")}
    assert instances >= {
        "id",
        "uuid",
        "host",
        "node",
        "vm_state",
        "power_state",
        "task_state",
        "deleted",
        "deleted_at",
    }
    caches = {c["name"]: c for c in insp.get_columns("instance_info_caches")}
    assert set(caches) >= {"id", "network_info", "instance_uuid", "deleted"}
    assert "MEDIUMTEXT" in str(caches["network_info"]["type"]).upper()
    assert set(insp.get_table_names()) - {"alembic_version"} == (
        _reference_tables("nova-cell") - {"alembic_version"}
    )
    with engine_for(nova34_cell_mariadb_url).connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()


def test_nova34_api_schema_has_cell_mappings(nova34_api_mariadb_url: str, engine_for) -> None:
    engine = engine_for(nova34_api_mariadb_url)
    insp = sa.inspect(engine)
    columns = {c["name"] for c in insp.get_columns("cell_mappings")}
    assert columns >= {"uuid", "name", "transport_url", "database_connection", "disabled"}
    assert set(insp.get_table_names()) - {"alembic_version"} == (
        _reference_tables("nova-api") - {"alembic_version"}
    )

    cell1 = "mysql+pymysql://nova:secret@db.example.org/nova?charset=utf8"
    write_cell_mappings(
        engine,
        [
            CellMappingSpec(
                uuid=CELL0_UUID,
                name="cell0",
                database_connection=cell1.replace("/nova?", "/nova_cell0?"),
            ),
            CellMappingSpec(
                uuid="5c6d2a7e-1f0b-4e8d-9a3c-2b1e0f9d8c7a",
                name="cell1",
                database_connection=cell1,
                transport_url="rabbit://nova:secret@mq.example.org:5672/",
            ),
        ],
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT uuid, name, database_connection, transport_url, disabled"
                " FROM cell_mappings ORDER BY id"
            )
        ).all()
    assert [(r.uuid, r.name) for r in rows] == [
        (CELL0_UUID, "cell0"),
        ("5c6d2a7e-1f0b-4e8d-9a3c-2b1e0f9d8c7a", "cell1"),
    ]
    assert rows[0].transport_url == "none:///" and rows[1].database_connection == cell1
    assert rows[1].disabled == 0


def test_write_instances_on_nova34_cell_schema(nova34_cell_mariadb_url: str, engine_for) -> None:
    engine = engine_for(nova34_cell_mariadb_url)
    write_instances(engine, _sample_instances())
    _check_written(engine)


# ------------------------------------------------------------------ Icehouse layout


def test_icehouse_layout_matches_nova_2014_1(nova_db_url: str, engine_for) -> None:
    engine = engine_for(nova_db_url)
    create_nova_schema(engine)
    insp = sa.inspect(engine)
    assert set(insp.get_table_names()) == {
        "instances",
        "instance_info_caches",
        "migrations",
        "migrate_version",
    }
    # 216_havana.py's migrations: no migration_type/hidden (Liberty), uuid, cross_cell_move
    assert [c["name"] for c in insp.get_columns("migrations")] == [
        "created_at",
        "updated_at",
        "deleted_at",
        "id",
        "source_compute",
        "dest_compute",
        "dest_host",
        "status",
        "instance_uuid",
        "old_instance_type_id",
        "new_instance_type_id",
        "source_node",
        "dest_node",
        "deleted",
    ]
    assert [
        (f["constrained_columns"], f["referred_table"]) for f in insp.get_foreign_keys("migrations")
    ] == [(["instance_uuid"], "instances")]
    cols = {c["name"]: c for c in insp.get_columns("instances")}
    # 216_havana.py: everything but id is nullable, scheduled_at still exists,
    # and 231 added ephemeral_key_uuid.
    assert [n for n, c in cols.items() if not c["nullable"]] == ["id"]
    assert {"scheduled_at", "ephemeral_key_uuid", "cleaned"} <= set(cols)
    assert {"compute_id", "hidden"}.isdisjoint(cols)
    uniques = [i["column_names"] for i in insp.get_indexes("instances") if i["unique"]]
    assert ["uuid"] in uniques
    fks = insp.get_foreign_keys("instance_info_caches")
    assert [
        (f["constrained_columns"], f["referred_table"], f["referred_columns"]) for f in fks
    ] == [(["instance_uuid"], "instances", ["uuid"])]
    with engine.connect() as conn:
        assert conn.execute(
            sa.text("SELECT repository_id, version FROM migrate_version")
        ).all() == [("nova", ICEHOUSE_MIGRATE_VERSION)]


def test_write_instances_on_icehouse_layout(nova_db_url: str, engine_for) -> None:
    engine = engine_for(nova_db_url)
    create_nova_schema(engine)
    write_instances(engine, _sample_instances())
    _check_written(engine)


def test_write_instances_appends_after_existing_rows(nova_db_url: str, engine_for) -> None:
    engine = engine_for(nova_db_url)
    create_nova_schema(engine)
    first, *rest = _sample_instances()
    write_instances(engine, [first])
    write_instances(engine, rest)
    _check_written(engine)


# ---------------------------------------------------------------------- vif_entry


def test_vif_entry_for_an_ovs_port() -> None:
    vif = vif_entry(PORT, "ovs", HYBRID, network_id=NET, mac="fa:16:3e:00:00:01")
    assert vif["devname"] == "tap" + PORT[:11] == "tap0cc863d2-ad"
    assert vif["ovs_interfaceid"] == PORT
    # Hybrid or not, nova caches br-int: the qbr name is derived at plug time.
    assert vif["network"]["bridge"] == "br-int"
    assert vif["details"] == HYBRID and vif["delegate_create"] is True
    assert vif_entry(PORT, "ovs", {}, network_id=NET, mac="m")["network"]["bridge"] == "br-int"


def test_vif_entry_for_other_vif_types() -> None:
    failed = vif_entry(PORT, "binding_failed", None, network_id=NET, mac="m", active=False)
    assert failed["ovs_interfaceid"] is None and failed["network"]["bridge"] is None
    assert failed["details"] == {}
    lb = vif_entry(PORT, "bridge", {"port_filter": True}, network_id=NET, mac="m")
    assert lb["network"]["bridge"] == "brq74d2abf4-db"
    assert lb["network"]["should_create_bridge"] is True and lb["ovs_interfaceid"] is None
    vhu = vif_entry(PORT, "vhostuser", {"vhostuser_ovs_plug": True}, network_id=NET, mac="m")
    assert vhu["ovs_interfaceid"] == PORT and vhu["network"]["bridge"] == "br-int"
    vhu_plain = vif_entry(PORT, "vhostuser", {}, network_id=NET, mac="m")
    assert vhu_plain["ovs_interfaceid"] is None
    named = vif_entry(PORT, "ovs", {"bridge_name": "br-int-integration"}, network_id=NET, mac="m")
    assert named["network"]["bridge"] == "br-int-integra"


#: Runs in nova 34.0.0's venv: nova's own ``_build_vif_model`` on a fake Neutron port.
_NOVA_VIF_PROBE = """
import json
import sys
from unittest import mock

from nova.network import model, neutron

api = neutron.API()
out = []
for case in json.loads(sys.argv[1]):
    port = {
        "id": case["port_id"], "mac_address": case["mac"], "network_id": case["network_id"],
        "tenant_id": case["tenant_id"], "admin_state_up": True,
        "status": "ACTIVE" if case["active"] else "DOWN",
        "binding:vnic_type": "normal", "binding:vif_type": case["vif_type"],
        "binding:vif_details": case["details"], "binding:profile": {},
        "fixed_ips": [{"subnet_id": "s1", "ip_address": ip} for ip in case["ips"]],
    }
    client = mock.Mock()
    client.list_subnets.return_value = {"subnets": [{
        "id": "s1", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1",
        "network_id": case["network_id"], "enable_dhcp": True,
        "dns_nameservers": [], "host_routes": []}]}
    client.list_ports.return_value = {"ports": [
        {"fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.2"}]}]}
    client.list_floatingips.return_value = {"floatingips": []}
    networks = [{"id": case["network_id"], "name": "private",
                 "tenant_id": case["tenant_id"], "mtu": case["mtu"]}]
    with mock.patch.object(neutron, "get_client", return_value=client), \\
            mock.patch.object(api, "_get_physnet_tunneled_info", return_value=(None, True)):
        vif = api._build_vif_model(mock.sentinel.ctx, client, port, networks, [])
    out.append(model.NetworkInfo([vif]).json())
print(json.dumps(out))
"""


@pytest.mark.nova_real
def test_vif_entry_matches_nova34_build_vif_model(tmp_path: Path) -> None:
    """Key for key and in order: caches written by vif_entry read like nova's own."""
    dbfixtures.ensure_nova_venv()
    cases = [
        {"vif_type": "ovs", "details": HYBRID, "active": True, "ips": ["10.0.0.5"], "mtu": 1450},
        {"vif_type": "ovs", "details": {}, "active": True, "ips": [], "mtu": None},
        {
            "vif_type": "ovs",
            "details": {"port_filter": True, "bridge_name": "br-int-very-long"},
            "active": True,
            "ips": ["10.0.0.6"],
            "mtu": 1450,
        },
        {
            "vif_type": "vhostuser",
            "details": {"vhostuser_ovs_plug": True},
            "active": True,
            "ips": [],
            "mtu": None,
        },
        {"vif_type": "binding_failed", "details": {}, "active": False, "ips": [], "mtu": None},
    ]
    for case in cases:
        case.update(port_id=PORT, mac="fa:16:3e:00:00:01", network_id=NET, tenant_id="t1")
    proc = subprocess.run(
        [str(dbfixtures.NOVA_PYTHON), "-c", _NOVA_VIF_PROBE, json.dumps(cases)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    nova_says = json.loads(proc.stdout.strip().splitlines()[-1])
    for case, expected in zip(cases, nova_says, strict=True):
        subnets = (
            [
                subnet_entry(
                    "10.0.0.0/24", gateway="10.0.0.1", ips=case["ips"], dhcp_server="10.0.0.2"
                )
            ]
            if case["ips"]
            else []
        )
        ours = vif_entry(
            PORT,
            case["vif_type"],
            case["details"],
            network_id=NET,
            mac="fa:16:3e:00:00:01",
            tenant_id="t1",
            mtu=case["mtu"],
            active=case["active"],
            subnets=subnets,
        )
        assert json.dumps([ours]) == expected, case


# ------------------------------------------------------------------ incident data


def _compute_ports() -> list:
    return [p for p in incident.incident_cloud().ports if p.device_owner.startswith("compute:")]


def test_incident_instances_cover_every_compute_port() -> None:
    specs = {s.uuid: s for s in incident.incident_instances()}
    ports = _compute_ports()
    assert len(specs) == len(ports) == 11
    for port in ports:
        spec = specs[port.device_id]
        vif = next(v for v in spec.network_info if v["id"] == port.id)
        assert vif["type"] == port.binding.vif_type
        if spec.uuid != incident.HOST_MISMATCH_INSTANCE:
            assert spec.host == port.binding.host
        expected = (
            {}
            if port.binding.vif_details in ("", incident.MALFORMED_DETAILS)
            else (json.loads(port.binding.vif_details))
        )
        if spec.uuid != incident.STALE_CACHE_INSTANCE:
            assert vif["details"] == expected, port.id
    running = [s for s in specs.values() if s.vm_state == "active"]
    assert all(s.power_state == 1 for s in running)
    havana = [specs[incident._SEED_PORTS[p][2]] for p in incident.EMPTY_DETAIL_PORT_IDS]
    assert sorted(s.vm_state for s in havana) == ["active"] * 5 + ["stopped"]


def test_incident_nova_faults() -> None:
    specs = {s.uuid: s for s in incident.incident_instances()}
    neutron_ports = {p.id: p for p in incident.incident_cloud().ports}
    faults = [
        incident.HOST_MISMATCH_INSTANCE,
        incident.EXTRA_VIF_INSTANCE,
        incident.ORPHAN_INSTANCE,
        incident.STALE_CACHE_INSTANCE,
        incident.STOPPED_INSTANCE,
    ]
    assert len(set(faults)) == len(faults)

    mismatch = specs[incident.HOST_MISMATCH_INSTANCE]
    port = next(p for p in neutron_ports.values() if p.device_id == mismatch.uuid)
    assert port.id == "c5ab2b09-b8cb-4381-83d4-a14a7207fdeb"
    assert mismatch.host == incident.HOST_MISMATCH_NOVA_HOST != port.binding.host
    assert mismatch.task_state is None and mismatch.vm_state == "active"

    extra = specs[incident.EXTRA_VIF_INSTANCE]
    assert [v["id"] for v in extra.network_info] == [
        "e14dbfd5-670e-405f-aaec-3796d1df1c34",
        incident.EXTRA_VIF_PORT_ID,
    ]
    assert incident.EXTRA_VIF_PORT_ID not in neutron_ports
    every_cached = {v["id"] for s in specs.values() for v in s.network_info}
    assert every_cached - set(neutron_ports) == {incident.EXTRA_VIF_PORT_ID}

    orphan = specs[incident.ORPHAN_INSTANCE]
    assert orphan.deleted and orphan.vm_state == "deleted"
    assert neutron_ports[incident.LINUXBRIDGE_PORT_ID].device_id == orphan.uuid

    stale = specs[incident.STALE_CACHE_INSTANCE]
    stale_port = next(p for p in neutron_ports.values() if p.device_id == stale.uuid)
    assert stale_port.binding.vif_details == ""
    assert stale.network_info[0]["details"] == incident.STALE_CACHE_DETAILS

    stopped = specs[incident.STOPPED_INSTANCE]
    assert (stopped.vm_state, stopped.power_state, stopped.deleted) == ("stopped", 4, False)
    assert sum(s.deleted for s in specs.values()) == 1


def test_install_incident_nova_matches_neutron_macs(
    nova_db_url: str, sqlite_url: str, engine_for
) -> None:
    """The cached MAC of every VIF is the MAC write_cloud gave the Neutron port."""
    nova = engine_for(nova_db_url)
    specs = incident.install_incident_nova(nova)
    neutron = engine_for(sqlite_url)
    create_schema(neutron, incident.LAYOUT)
    write_cloud(neutron, incident.incident_cloud())
    with neutron.connect() as conn:
        macs = dict(conn.execute(sa.text("SELECT id, mac_address FROM ports")).all())
    with nova.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT i.uuid, i.deleted, i.id, c.network_info FROM instances i"
                " JOIN instance_info_caches c ON c.instance_uuid = i.uuid"
            )
        ).all()
    assert len(rows) == len(specs)
    for uuid, deleted, row_id, text in rows:
        assert deleted == (row_id if uuid == incident.ORPHAN_INSTANCE else 0)
        for vif in json.loads(text):
            if vif["id"] != incident.EXTRA_VIF_PORT_ID:
                assert vif["address"] == macs[vif["id"]]
