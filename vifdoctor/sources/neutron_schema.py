"""The one place that knows the layout of Neutron's binding tables, release by release.

The layout is found by reflection, never guessed from a version string:

* ``icehouse`` -- Icehouse/Juno: ``driver``/``segment`` on ``ml2_port_bindings``
* ``kilo``     -- Kilo..Newton: ``ml2_port_binding_levels``, no ``status``
* ``ocata``    -- Ocata..today (neutron 29.0.0): ``status``, PK (port_id, host);
  only the ACTIVE row is the live binding

Readers (the source) and writers (the repair) both ask this module which rows
are live and which columns exist, instead of probing the table themselves.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vifdoctor.errors import UnsupportedSchema
from vifdoctor.model import Layout

BINDINGS = "ml2_port_bindings"
LEVELS = "ml2_port_binding_levels"
_REQUIRED_BINDING_COLUMNS = {"port_id", "host", "vif_type", "vif_details", "vnic_type", "profile"}
_REQUIRED_PORT_COLUMNS = {"id", "network_id", "device_id", "device_owner"}
_REQUIRED_AGENT_COLUMNS = {
    "id",
    "agent_type",
    "host",
    "admin_state_up",
    "heartbeat_timestamp",
    "configurations",
}
#: ml2_port_bindings' columns in every layout vifdoctor knows -> the Binding field holding each.
BINDING_COLUMNS = {
    "port_id": "port_id",
    "host": "host",
    "vif_type": "vif_type",
    "vif_details": "vif_details",
    "vnic_type": "vnic_type",
    "profile": "profile",
    "status": "status",
    "driver": "driver",
    "segment": "segment",
}


def detect_layout(conn: Connection) -> Layout:
    """Identify the schema layout by the tables and columns that are there."""
    insp = sa.inspect(conn)
    tables = set(insp.get_table_names())
    if BINDINGS not in tables:
        hint = ""
        if "instances" in tables or "instance_info_caches" in tables:
            hint = " (it looks like a Nova database)"
        elif "ovs_network_bindings" in tables or "portbindingports" in tables:
            hint = " (a pre-ML2 monolithic plugin database: migrate it to ML2 first)"
        elif not tables:
            hint = " (the database is empty)"
        raise UnsupportedSchema(f"no {BINDINGS} table: not a Neutron ML2 database{hint}")
    for table, required in (("ports", _REQUIRED_PORT_COLUMNS), ("agents", _REQUIRED_AGENT_COLUMNS)):
        if table not in tables:
            raise UnsupportedSchema(f"{BINDINGS} exists but table {table} is missing")
        missing = required - {c["name"] for c in insp.get_columns(table)}
        if missing:
            raise UnsupportedSchema(f"table {table} lacks column(s) {', '.join(sorted(missing))}")
    cols = {c["name"] for c in insp.get_columns(BINDINGS)}
    missing = _REQUIRED_BINDING_COLUMNS - cols
    if missing:
        raise UnsupportedSchema(
            f"{BINDINGS} lacks column(s) {', '.join(sorted(missing))}: not a layout vifdoctor knows"
        )
    has_driver = {"driver", "segment"} <= cols
    has_levels = LEVELS in tables
    has_status = "status" in cols
    port_cols = {c["name"] for c in insp.get_columns("ports")}
    project_column = "project_id" if "project_id" in port_cols else "tenant_id"
    if project_column not in port_cols:
        raise UnsupportedSchema("table ports has neither project_id nor tenant_id")
    segments = next((t for t in ("networksegments", "ml2_network_segments") if t in tables), None)

    if has_driver and not has_levels and not has_status:
        name, text = "icehouse", "Icehouse-Juno: driver/segment on ml2_port_bindings"
    elif not has_driver and has_levels and not has_status:
        name, text = "kilo", "Kilo-Newton: ml2_port_binding_levels, one binding per port"
    elif not has_driver and has_levels and has_status:
        pk = set(insp.get_pk_constraint(BINDINGS).get("constrained_columns") or [])
        if pk != {"port_id", "host"}:
            raise UnsupportedSchema(
                f"{BINDINGS} has a status column but its primary key is "
                f"({', '.join(sorted(pk)) or 'none'}), not (port_id, host)"
            )
        name, text = "ocata", "Ocata+: status column, PK (port_id, host), ACTIVE row is live"
    else:
        found = ", ".join(
            f"{k}={'yes' if v else 'no'}"
            for k, v in (
                ("driver/segment", has_driver),
                ("levels", has_levels),
                ("status", has_status),
            )
        )
        raise UnsupportedSchema(f"unknown binding layout ({found})")
    versions: tuple = ()
    if "alembic_version" in tables:
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        versions = tuple(sorted(str(v) for v in rows))
    return Layout(
        name=name,
        description=text,
        bindings_table=BINDINGS,
        has_levels=has_levels,
        has_status=has_status,
        project_column=project_column,
        segments_table=segments,
        alembic_versions=versions,
    )


def reflect_bindings(conn: Connection) -> sa.Table:
    """``ml2_port_bindings`` as the database has it, vendor columns included."""
    return sa.Table(BINDINGS, sa.MetaData(), autoload_with=conn)


def only_live(query: sa.Select, table: sa.Table, layout: Layout) -> sa.Select:
    """Keep a query on the bindings table to live rows: the ACTIVE one from Ocata on."""
    return query.where(table.c.status == "ACTIVE") if layout.has_status else query
