"""Write Nova instances and their network info caches into a Nova database.

vifdoctor compares Neutron's bindings with what Nova believes: which host an
instance lives on, whether it still exists, and the VIF ``details`` Nova
cached in ``instance_info_caches.network_info`` (those details, not Neutron's
row, decide how the libvirt driver plugs a port on the next start). To test
that comparison, demo and test databases need Nova rows shaped like real ones.

``create_nova_schema`` builds the Icehouse (2014.1) cell-less layout: the two
tables vifdoctor reads, with the columns, types and keys that nova 2014.1's
migrations (``216_havana.py`` + ``231_add_ephemeral_key_uuid.py``) left in a
database, plus the ``migrate_version`` row (233) a real Icehouse cloud has.
``write_instances`` reflects whatever schema it meets, so the same specs land
in that layout and in nova 34.0.0's real cell schema; NOT NULL columns it knows
nothing about get a filler of their type, as in the Neutron builder.
``write_migrations`` adds ``migrations`` rows the same way (the table is in the
Icehouse layout too, as 216_havana.py made it). ``vif_entry`` builds one VIF exactly
as nova 34.0.0's ``nova.network.neutron.API._build_vif_model`` caches it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine

from vifdoctor.demo.builder import _insert, _Table, utcnow

NOVA_LAYOUTS = ("icehouse",)

#: sqlalchemy-migrate's version of the nova repository at 2014.1 (last script 233).
ICEHOUSE_MIGRATE_VERSION = 233

#: nova_api's cell0 is always this uuid (nova.objects.CellMapping.CELL0_UUID).
CELL0_UUID = "00000000-0000-0000-0000-000000000000"

#: nova/compute/power_state.py
POWER_NOSTATE = 0
POWER_RUNNING = 1
POWER_SHUTDOWN = 4

#: nova.network.model.NIC_NAME_LEN: tap/qbr/qvo names are cut to this length.
NIC_NAME_LEN = 14

#: [neutron] ovs_bridge default in nova.
DEFAULT_OVS_BRIDGE = "br-int"

#: nova.network.constants.L3_NETWORK_TYPES: the network types nova calls "tunneled".
_TUNNELED_TYPES = ("vxlan", "gre", "geneve")

_AUTO: Any = object()

# Text on SQLite/PostgreSQL, MEDIUMTEXT on MySQL/MariaDB: nova's MediumText().
_MEDIUMTEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


@dataclass
class InstanceSpec:
    """One ``instances`` row and, unless ``network_info`` is None, its cache row.

    ``network_info`` as a list is JSON-encoded the way nova does it; a str is
    stored byte for byte (for malformed caches). ``node`` defaults to ``host``
    (libvirt's hypervisor_hostname). A deleted instance is soft-deleted the way
    nova's ``instance_destroy`` does: ``deleted`` = row id on the instance and
    on its cache row.
    """

    uuid: str
    host: str | None
    node: str | None = None
    vm_state: str = "active"
    power_state: int = POWER_RUNNING
    task_state: str | None = None
    deleted: bool = False
    display_name: str = ""
    project_id: str = ""
    user_id: str = ""
    network_info: list[dict] | str | None = None
    hidden: bool = False  # nova 34's instances.hidden (cross-cell resize); ignored where absent


@dataclass
class MigrationSpec:
    """One ``migrations`` row. ``migration_type`` None leaves the column NULL (pre-Liberty
    rows, and Icehouse where there is no column); ``old``/``new_flavor`` then tell a
    resize (they differ) from a cold migration. ``created_at`` defaults to now."""

    instance_uuid: str
    source_compute: str
    dest_compute: str
    status: str | None
    migration_type: str | None = "live-migration"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    source_node: str | None = None
    dest_node: str | None = None
    old_flavor: int = 1
    new_flavor: int = 1
    uuid: str | None = None
    cross_cell_move: bool = False
    deleted: bool = False


# --------------------------------------------------------------------------- schema


def build_nova_metadata(layout: str = "icehouse") -> sa.MetaData:
    """Fresh metadata for one legacy Nova layout (separate so tests can inspect it)."""
    if layout not in NOVA_LAYOUTS:
        raise ValueError(f"unknown Nova layout {layout!r}; expected one of {NOVA_LAYOUTS}")
    md = sa.MetaData()
    opts: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8"}
    sa.Table(
        "migrate_version",
        md,
        sa.Column("repository_id", sa.String(250), primary_key=True),
        sa.Column("repository_path", sa.Text),
        sa.Column("version", sa.Integer),
        **opts,
    )
    # 216_havana.py column order; everything but id is nullable there, even
    # uuid and deleted (the ORM's SoftDeleteMixin supplies deleted=0).
    instances = sa.Table(
        "instances",
        md,
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("deleted_at", sa.DateTime),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("internal_id", sa.Integer),
        sa.Column("user_id", sa.String(255)),
        sa.Column("project_id", sa.String(255)),
        sa.Column("image_ref", sa.String(255)),
        sa.Column("kernel_id", sa.String(255)),
        sa.Column("ramdisk_id", sa.String(255)),
        sa.Column("launch_index", sa.Integer),
        sa.Column("key_name", sa.String(255)),
        sa.Column("key_data", _MEDIUMTEXT),
        sa.Column("power_state", sa.Integer),
        sa.Column("vm_state", sa.String(255)),
        sa.Column("memory_mb", sa.Integer),
        sa.Column("vcpus", sa.Integer),
        sa.Column("hostname", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("user_data", _MEDIUMTEXT),
        sa.Column("reservation_id", sa.String(255)),
        sa.Column("scheduled_at", sa.DateTime),
        sa.Column("launched_at", sa.DateTime),
        sa.Column("terminated_at", sa.DateTime),
        sa.Column("display_name", sa.String(255)),
        sa.Column("display_description", sa.String(255)),
        sa.Column("availability_zone", sa.String(255)),
        sa.Column("locked", sa.Boolean),
        sa.Column("os_type", sa.String(255)),
        sa.Column("launched_on", _MEDIUMTEXT),
        sa.Column("instance_type_id", sa.Integer),
        sa.Column("vm_mode", sa.String(255)),
        sa.Column("uuid", sa.String(36)),
        sa.Column("architecture", sa.String(255)),
        sa.Column("root_device_name", sa.String(255)),
        sa.Column("access_ip_v4", sa.String(39)),
        sa.Column("access_ip_v6", sa.String(39)),
        sa.Column("config_drive", sa.String(255)),
        sa.Column("task_state", sa.String(255)),
        sa.Column("default_ephemeral_device", sa.String(255)),
        sa.Column("default_swap_device", sa.String(255)),
        sa.Column("progress", sa.Integer),
        sa.Column("auto_disk_config", sa.Boolean),
        sa.Column("shutdown_terminate", sa.Boolean),
        sa.Column("disable_terminate", sa.Boolean),
        sa.Column("root_gb", sa.Integer),
        sa.Column("ephemeral_gb", sa.Integer),
        sa.Column("cell_name", sa.String(255)),
        sa.Column("node", sa.String(255)),
        sa.Column("deleted", sa.Integer),
        sa.Column("locked_by", sa.Enum("owner", "admin", name="instances0locked_by")),
        sa.Column("cleaned", sa.Integer),
        sa.Column("ephemeral_key_uuid", sa.String(36)),  # 231 (Icehouse)
        sa.Index("uuid", "uuid", unique=True),
        sa.Index("project_id", "project_id"),
        sa.Index("instances_reservation_id_idx", "reservation_id"),
        sa.Index("instances_terminated_at_launched_at_idx", "terminated_at", "launched_at"),
        sa.Index("instances_task_state_updated_at_idx", "task_state", "updated_at"),
        sa.Index("instances_host_deleted_idx", "host", "deleted"),
        sa.Index("instances_uuid_deleted_idx", "uuid", "deleted"),
        sa.Index("instances_host_node_deleted_idx", "host", "node", "deleted"),
        sa.Index("instances_host_deleted_cleaned_idx", "host", "deleted", "cleaned"),
        **opts,
    )
    sa.Table(
        "instance_info_caches",
        md,
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("deleted_at", sa.DateTime),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("network_info", _MEDIUMTEXT),
        sa.Column("instance_uuid", sa.String(36), nullable=False),
        sa.Column("deleted", sa.Integer),
        sa.UniqueConstraint("instance_uuid", name="uniq_instance_info_caches0instance_uuid"),
        sa.ForeignKeyConstraint(
            ["instance_uuid"], [instances.c.uuid], name="instance_info_caches_instance_uuid_fkey"
        ),
        **opts,
    )
    # 216_havana.py; migration_type/hidden, uuid and cross_cell_move came later (Migration
    # object 1.2, 1.5, 1.6): reflection finds them missing here, as on an Icehouse cloud.
    sa.Table(
        "migrations",
        md,
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("deleted_at", sa.DateTime),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_compute", sa.String(255)),
        sa.Column("dest_compute", sa.String(255)),
        sa.Column("dest_host", sa.String(255)),
        sa.Column("status", sa.String(255)),
        sa.Column("instance_uuid", sa.String(36)),
        sa.Column("old_instance_type_id", sa.Integer),
        sa.Column("new_instance_type_id", sa.Integer),
        sa.Column("source_node", sa.String(255)),
        sa.Column("dest_node", sa.String(255)),
        sa.Column("deleted", sa.Integer),
        sa.Index(
            "migrations_by_host_nodes_and_status_idx",
            "deleted",
            "source_compute",
            "dest_compute",
            "source_node",
            "dest_node",
            "status",
            mysql_length={
                "source_compute": 100,
                "dest_compute": 100,
                "source_node": 100,
                "dest_node": 100,
            },
        ),
        sa.Index("migrations_instance_uuid_and_status_idx", "deleted", "instance_uuid", "status"),
        sa.ForeignKeyConstraint(
            ["instance_uuid"], [instances.c.uuid], name="fk_migrations_instance_uuid"
        ),
        **opts,
    )
    return md


def create_nova_schema(engine: Engine, layout: str = "icehouse") -> None:
    """Create a legacy Nova layout's tables and stamp migrate_version like a real cloud."""
    md = build_nova_metadata(layout)
    with engine.begin() as conn:
        md.create_all(conn)
        version = md.tables["migrate_version"]
        conn.execute(version.delete())
        conn.execute(
            version.insert(),
            [
                {
                    "repository_id": "nova",
                    "repository_path": (
                        "/usr/lib/python2.7/dist-packages/nova/db/sqlalchemy/migrate_repo"
                    ),
                    "version": ICEHOUSE_MIGRATE_VERSION,
                }
            ],
        )


# --------------------------------------------------------------------- network_info


def subnet_entry(
    cidr: str,
    *,
    gateway: str | None = None,
    ips: Sequence[str] = (),
    dhcp_server: str | None = None,
    enable_dhcp: bool = True,
    dns: Sequence[str] = (),
) -> dict[str, Any]:
    """One subnet of a cached VIF, as ``_get_subnets_from_port`` + ``_nw_info_get_subnets``."""
    version = 6 if ":" in cidr else 4
    meta: dict[str, Any] = {"enable_dhcp": enable_dhcp}
    if dhcp_server is not None:
        meta = {"enable_dhcp": enable_dhcp, "dhcp_server": dhcp_server}
    return {
        "cidr": cidr,
        "dns": [_ip(a, "dns") for a in dns],
        "gateway": _ip(gateway, "gateway"),
        "ips": [{**_ip(a, "fixed"), "floating_ips": []} for a in ips],
        "routes": [],
        "version": version,
        "meta": meta,
    }


def _ip(address: str | None, kind: str) -> dict[str, Any]:
    """nova.network.model.IP: version is derived from the address when there is one."""
    version = None if address is None else (6 if ":" in address else 4)
    return {"address": address, "type": kind, "version": version, "meta": {}}


def _bridge_and_interfaceid(
    port_id: str, vif_type: str, details: dict, network_id: str
) -> tuple[str | None, str | None, bool | None]:
    """(bridge, ovs_interfaceid, should_create_bridge) as ``_nw_info_build_network`` sets them.

    The bridge is br-int for every OVS port, hybrid or not: nova derives the
    qbr name later (os_vif_util), it is never cached. ``bridge`` (Linux bridge)
    follows nova <= 33, which cached ``brq<net>``; nova 34 refuses such ports.
    """
    if vif_type in ("ovs", "agilio_ovs"):
        return details.get("bridge_name", DEFAULT_OVS_BRIDGE), port_id, None
    if vif_type == "bridge":
        return "brq" + network_id, None, True
    if vif_type == "dvs":
        return network_id, None, None
    if vif_type == "vhostuser" and details.get("vhostuser_ovs_plug", False):
        return details.get("bridge_name", DEFAULT_OVS_BRIDGE), port_id, None
    if vif_type == "vhostuser" and details.get("vhostuser_fp_plug", False):
        return details.get("bridge_name", "brq" + network_id), None, None
    return None, None, None


def vif_entry(
    port_id: str,
    vif_type: str,
    details: dict | None,
    *,
    network_id: str,
    mac: str,
    vnic_type: str = "normal",
    profile: dict | None = None,
    active: bool = True,
    devname: str | None = None,
    ovs_interfaceid: str | None = _AUTO,
    bridge: str | None = _AUTO,
    label: str | None = "private",
    tenant_id: str = "",
    mtu: int | None = None,
    network_type: str | None = "vxlan",
    physical_network: str | None = None,
    subnets: list[dict] | None = None,
    preserve_on_delete: bool = False,
) -> dict[str, Any]:
    """One ``network_info`` VIF, key for key what nova 34.0.0 caches for a Neutron port.

    ``details`` is Neutron's ``binding:vif_details`` as the API returns it (a
    dict). ``bridge``/``ovs_interfaceid`` default to what ``_nw_info_build_network``
    derives from vif_type/details; pass them to model a cache that disagrees.
    """
    details = details or {}
    auto_bridge, auto_ifaceid, create_bridge = _bridge_and_interfaceid(
        port_id, vif_type, details, network_id
    )
    if bridge is _AUTO:
        bridge = auto_bridge
        if bridge is not None and vif_type != "dvs":
            bridge = bridge[:NIC_NAME_LEN]
    network: dict[str, Any] = {
        "id": network_id,
        "bridge": bridge,
        "label": label,
        "subnets": list(subnets or []),
        "meta": {
            "injected": False,
            "tenant_id": tenant_id,
            "mtu": mtu,
            "physical_network": physical_network,
            "tunneled": network_type in _TUNNELED_TYPES,
        },
    }
    if create_bridge is not None:
        network["should_create_bridge"] = create_bridge
    return {
        "id": port_id,
        "address": mac,
        "network": network,
        "type": vif_type,
        "details": details,
        "devname": devname if devname is not None else ("tap" + port_id)[:NIC_NAME_LEN],
        "ovs_interfaceid": auto_ifaceid if ovs_interfaceid is _AUTO else ovs_interfaceid,
        "qbh_params": None,
        "qbg_params": None,
        "active": active,
        "vnic_type": vnic_type,
        "profile": profile or {},
        "preserve_on_delete": preserve_on_delete,
        "delegate_create": True,
        "meta": {},
    }


# ---------------------------------------------------------------------------- writers


def _reflect(conn: Connection, names: Sequence[str], what: str) -> dict[str, _Table]:
    present = set(sa.inspect(conn).get_table_names())
    missing = [n for n in names if n not in present]
    if missing:
        raise ValueError(f"not a {what} database: table(s) {', '.join(missing)} missing")
    md = sa.MetaData()
    md.reflect(bind=conn, only=list(names))
    return {n: _Table(md.tables[n]) for n in names}


def _next_id(conn: Connection, t: _Table) -> int:
    """Ids are assigned here: executemany cannot return autoincrement ids everywhere,
    and a soft-deleted row needs its own id in ``deleted``."""
    current = conn.execute(sa.select(sa.func.max(t.table.c.id))).scalar()
    return (current or 0) + 1


def _fix_sequence(conn: Connection, table: str) -> None:
    """Explicit ids do not move a PostgreSQL sequence; keep nova's later inserts working."""
    if conn.dialect.name == "postgresql":
        # table is one of the demo's own table names, never input
        conn.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT MAX(id) FROM {table}))"
            )
        )


def _instance_row(t: _Table, spec: InstanceSpec, row_id: int, now: datetime) -> dict[str, Any]:
    return t.row(
        {
            "id": row_id,
            "uuid": spec.uuid,
            "created_at": now,
            "updated_at": now,
            "deleted_at": now if spec.deleted else None,
            "deleted": row_id if spec.deleted else 0,
            "user_id": spec.user_id,
            "project_id": spec.project_id,
            "display_name": spec.display_name,
            "hostname": spec.display_name or None,
            "host": spec.host,
            "node": spec.node if spec.node is not None else spec.host,
            "launched_on": spec.host,
            "launched_at": now,
            "terminated_at": now if spec.deleted else None,
            "vm_state": spec.vm_state,
            "power_state": spec.power_state,
            "task_state": spec.task_state,
            "availability_zone": "nova",
            "reservation_id": f"r-{spec.uuid[:8]}",
            "launch_index": 0,
            "locked": False,
            "shutdown_terminate": False,
            "disable_terminate": False,
            "cleaned": 1 if spec.deleted else 0,
            "progress": 0,
            "hidden": spec.hidden,
        }
    )


def write_instances(engine: Engine, instances: Sequence[InstanceSpec]) -> None:
    """Insert instances and their caches in one transaction, adapting to the schema found.

    Works on the Icehouse layout and on nova 34.0.0's real cell database.
    """
    now = utcnow()
    with engine.begin() as conn:
        tables = _reflect(conn, ("instances", "instance_info_caches"), "Nova cell")
        inst, caches = tables["instances"], tables["instance_info_caches"]
        inst_id, cache_id = _next_id(conn, inst), _next_id(conn, caches)
        inst_rows: list[dict[str, Any]] = []
        cache_rows: list[dict[str, Any]] = []
        for spec in instances:
            inst_rows.append(_instance_row(inst, spec, inst_id, now))
            inst_id += 1
            if spec.network_info is None:
                continue
            text = spec.network_info
            if not isinstance(text, str):
                text = json.dumps(text)
            cache_rows.append(
                caches.row(
                    {
                        "id": cache_id,
                        "instance_uuid": spec.uuid,
                        "network_info": text,
                        "created_at": now,
                        "updated_at": now,
                        "deleted_at": now if spec.deleted else None,
                        "deleted": cache_id if spec.deleted else 0,
                    }
                )
            )
            cache_id += 1
        _insert(conn, inst, inst_rows)
        _insert(conn, caches, cache_rows)
        if inst_rows:
            _fix_sequence(conn, "instances")
        if cache_rows:
            _fix_sequence(conn, "instance_info_caches")


def write_migrations(engine: Engine, migrations: Sequence[MigrationSpec]) -> list[int]:
    """Insert migration rows (the instances must exist: nova has a foreign key); their ids."""
    now = utcnow()
    with engine.begin() as conn:
        t = _reflect(conn, ("migrations",), "Nova cell")["migrations"]
        row_id = _next_id(conn, t)
        rows, ids = [], []
        for m in migrations:
            created = m.created_at or now
            rows.append(
                t.row(
                    {
                        "id": row_id,
                        "created_at": created,
                        "updated_at": m.updated_at or created,
                        "deleted_at": now if m.deleted else None,
                        "deleted": row_id if m.deleted else 0,
                        "instance_uuid": m.instance_uuid,
                        "status": m.status,
                        "source_compute": m.source_compute,
                        "dest_compute": m.dest_compute,
                        "source_node": m.source_node or m.source_compute,
                        "dest_node": m.dest_node or m.dest_compute,
                        "dest_host": "192.0.2.1",
                        "old_instance_type_id": m.old_flavor,
                        "new_instance_type_id": m.new_flavor,
                        "migration_type": m.migration_type,
                        "uuid": m.uuid,
                        "hidden": False,
                        "cross_cell_move": m.cross_cell_move,
                    }
                )
            )
            ids.append(row_id)
            row_id += 1
        _insert(conn, t, rows)
        if rows:
            _fix_sequence(conn, "migrations")
        return ids
