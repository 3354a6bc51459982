"""The audit with Nova's migration records, end to end through the command line.

Every move type (live, cold, evacuation, same-cell and cross-cell resize) in every
status the issue names, on nova 34.0.0's real cell schema with neutron 29.0.0's real
schema (MariaDB), and on the Icehouse-era Nova layout beside an Ocata-layout Neutron
(SQLite and MariaDB). The expected findings are spelled out here, not derived from
the rules under test.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from testkit.dbfixtures import load_mariadb_sql
from testkit.migrationkit import Cloud, inactive_row, write_cell
from testkit.novakit import HYBRID, cli_json, port_id, vif, vm_port, vm_uuid, write_neutron

from vifdoctor.demo.builder import utcnow
from vifdoctor.demo.nova import InstanceSpec, MigrationSpec

SRC, DST = "compute1", "compute2"
TYPES = ["live-migration", "migration", "evacuation", "resize"]
STATUSES = [
    "running",
    "finished",
    "completed",
    "error",
    "failed",
    "cancelled",
    "reverted",
    "confirmed",
]
#: where Nova has the instance once a move reached this status
ON_DEST = {"finished", "completed", "confirmed"}
TERMINAL = {"completed", "error", "failed", "cancelled", "reverted", "confirmed"}


def every_status(legacy_types: bool) -> Cloud:
    """One instance per (type, status): ACTIVE binding where Nova has the instance,
    INACTIVE on the other end of the move."""
    c = Cloud()
    n = 0
    for mtype in TYPES:
        for status in STATUSES:
            n += 1
            uuid, port = vm_uuid(n), port_id(n)
            here, there = (DST, SRC) if status in ON_DEST else (SRC, DST)
            p = vm_port(port, uuid, here)
            p.extra_bindings = [inactive_row(there, bound=there == DST)]
            c.ports.append(p)
            c.instances.append(InstanceSpec(uuid, here, network_info=[vif(port, HYBRID)]))
            c.moves.append(
                MigrationSpec(
                    uuid,
                    SRC,
                    DST,
                    status,
                    # Icehouse has no migration_type: the flavors tell a resize
                    migration_type=None if legacy_types else mtype,
                    old_flavor=1,
                    new_flavor=2 if mtype == "resize" else 1,
                )
            )
            c.inactive.add((uuid, port))
            if status in TERMINAL:
                c.expected.add(("VD206", uuid, port))
    # VD207: the live migration completed, Nova still has the instance on the source
    n += 1
    u, p = vm_uuid(n), port_id(n)
    c.ports.append(vm_port(p, u, DST))
    c.instances.append(InstanceSpec(u, SRC, network_info=[vif(p, HYBRID)]))
    c.moves.append(
        MigrationSpec(
            u, SRC, DST, "completed", migration_type=None if legacy_types else "live-migration"
        )
    )
    c.expected.add(("VD207", u, ""))
    # VD208: a live migration running for 7 hours, its INACTIVE row on the destination
    n += 1
    u, p = vm_uuid(n), port_id(n)
    stuck = vm_port(p, u, SRC)
    stuck.extra_bindings = [inactive_row(DST)]
    c.ports.append(stuck)
    c.instances.append(InstanceSpec(u, SRC, task_state="migrating", network_info=[vif(p, HYBRID)]))
    c.moves.append(
        MigrationSpec(
            u,
            SRC,
            DST,
            "running",
            migration_type=None if legacy_types else "live-migration",
            created_at=utcnow() - timedelta(hours=7),
        )
    )
    c.inactive.add((u, p))
    c.expected.add(("VD208", u, ""))
    return c


def found(doc: dict) -> set:
    return {
        (f["code"], f["device_id"], f["port_id"])
        for f in doc["findings"]
        if f["code"] in ("VD109", "VD202", "VD204", "VD206", "VD207", "VD208")
    }


def check(neutron: str, cells: list[str], cloud: Cloud, kind: str) -> dict:
    """``kind``: the type the first moves read as (Icehouse: derived from the flavors)."""
    nova = [a for url in cells for a in ("--nova-db", url)]
    _, doc, _ = cli_json("audit", "--neutron-db", neutron, *nova)
    assert found(doc) == cloud.expected
    vd206 = {f["port_id"]: f for f in doc["findings"] if f["code"] == "VD206"}
    f = vd206[port_id(5)]  # a failed live migration left its destination row
    assert f"left by migration 5 ({kind}, failed, compute1 -> compute2" in f["message"]
    assert f["extra"]["shape"].startswith("bound row")
    # a completed one whose cleanup failed left the unbound row on the source
    assert vd206[port_id(3)]["extra"]["shape"].startswith("unbound row on the source")
    assert vd206[port_id(3)]["extra"]["migration"]["status"] == "completed"
    # a larger --stuck-after: the long live migration is not stuck
    _, relaxed, _ = cli_json("audit", "--neutron-db", neutron, *nova, "--stuck-after", "8h")
    assert "VD208" not in {f["code"] for f in relaxed["findings"]}
    # without Nova every INACTIVE row is VD109, as before
    _, bare, _ = cli_json("audit", "--neutron-db", neutron)
    assert {(d, p) for (code, d, p) in found(bare) if code == "VD109"} == cloud.inactive
    return doc


@pytest.mark.nova_real
def test_every_status_on_nova34_and_neutron29(
    nova34_cell_mariadb_url: str, neutron29_mariadb_url: str
) -> None:
    cloud = every_status(legacy_types=False)
    write_neutron(neutron29_mariadb_url, cloud.ports, [SRC, DST], layout=None)
    write_cell(nova34_cell_mariadb_url, cloud.instances, cloud.moves, icehouse=False)
    check(neutron29_mariadb_url, [nova34_cell_mariadb_url], cloud, "live-migration")


def test_every_status_on_neutron29_postgresql(neutron29_postgresql_url: str, tmp_path) -> None:
    """PostgreSQL's Neutron (byte-wise ordering by COLLATE "C", its EXISTS and CASE)."""
    cloud = every_status(legacy_types=True)
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    write_neutron(neutron29_postgresql_url, cloud.ports, [SRC, DST], layout=None)
    write_cell(nova, cloud.instances, cloud.moves, icehouse=True)
    check(neutron29_postgresql_url, [nova], cloud, "migration")


def test_every_status_on_icehouse_nova(nova_db_url: str, tmp_path) -> None:
    cloud = every_status(legacy_types=True)
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    write_neutron(neutron, cloud.ports, [SRC, DST], layout="ocata")
    write_cell(nova_db_url, cloud.instances, cloud.moves, icehouse=True)
    check(neutron, [nova_db_url], cloud, "migration")


@pytest.mark.nova_real
def test_cross_cell_resize(
    nova34_cell_mariadb_url: str, mariadb_url: str, neutron29_mariadb_url: str, nova34_mariadb_ddl
) -> None:
    """A cross-cell resize awaiting confirmation keeps its source binding (a revert needs
    it) and is one instance, not two; once confirmed in the target cell, the source
    cell's copy still saying 'finished' does not keep the stale row alive."""
    load_mariadb_sql(sa.engine.make_url(mariadb_url).database, nova34_mariadb_ddl[0])
    cell1, cell2 = Cloud(), Cloud()
    ports = []
    for n, target_status in ((1, "finished"), (2, "confirmed")):
        u, p = vm_uuid(n), port_id(n)
        mig = f"c0ffee00-0000-4000-8000-{n:012d}"
        port = vm_port(p, u, DST)
        port.extra_bindings = [inactive_row(SRC)]
        ports.append(port)
        cell1.instances.append(InstanceSpec(u, SRC, hidden=True, network_info=[vif(p, HYBRID)]))
        cell2.instances.append(InstanceSpec(u, DST, network_info=[vif(p, HYBRID)]))
        for cell, status in ((cell1, "finished"), (cell2, target_status)):
            cell.moves.append(
                MigrationSpec(
                    u,
                    SRC,
                    DST,
                    status,
                    migration_type="resize",
                    old_flavor=1,
                    new_flavor=2,
                    uuid=mig,
                    cross_cell_move=True,
                )
            )
    write_neutron(neutron29_mariadb_url, ports, [SRC, DST], layout=None)
    write_cell(nova34_cell_mariadb_url, cell1.instances, cell1.moves, icehouse=False)
    write_cell(mariadb_url, cell2.instances, cell2.moves, icehouse=False)
    _, doc, _ = cli_json(
        "audit",
        "--neutron-db",
        neutron29_mariadb_url,
        "--nova-db",
        nova34_cell_mariadb_url,
        "--nova-db",
        mariadb_url,
    )
    assert found(doc) == {("VD206", vm_uuid(2), port_id(2))}
    assert doc["summary"]["instances_read"] == 2
    assert not [f for f in doc["findings"] if f["code"] in ("VD201", "VD203")]
