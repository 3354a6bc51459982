"""Legacy Neutron database layouts, rebuilt as SQLAlchemy Core metadata.

vifdoctor has to read clouds that were installed years ago and migrated (or
not) ever since, so the demo databases must look like the real ones did. Each
layout is the subset of tables vifdoctor reads, with the columns, types,
server defaults, keys and foreign keys that neutron's own alembic migrations
left in a database at that release (read from openstack/neutron at the tags
named below). Column order follows the migrations, not the ORM models,
because ``SELECT *`` output from real clouds (the incident's, for one) shows
that order.

Layouts:

``icehouse``  neutron 2014.1 (what Juno's ML2 tables still look like, minus
              Juno's ``ml2_dvr_port_bindings``): driver and segment live on
              ``ml2_port_bindings``, one binding per port, ``tenant_id``.
``kilo``      neutron 2015.1 (valid through Mitaka for the binding tables):
              driver/segment moved to ``ml2_port_binding_levels``.
``newton``    neutron 9.0.0: ``project_id``, ``networksegments``,
              ``ml2_distributed_port_bindings``, ``standardattributes``.
``ocata``     neutron 10.0.0 (valid up to today for the binding tables):
              ``ml2_port_bindings.status`` and primary key (port_id, host).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

LAYOUTS = ("icehouse", "kilo", "newton", "ocata")

# alembic_version rows the real migrations leave at each release, so a tool
# that sniffs the revision sees what it would see on a real cloud.
ALEMBIC_HEADS: dict[str, tuple[str, ...]] = {
    "icehouse": ("icehouse",),
    "kilo": ("kilo",),
    # newton/contract 5c85685d616d, newton/expand 5cd92597d11d (9.0.0 *_HEAD files)
    "newton": ("5c85685d616d", "5cd92597d11d"),
    # ocata/expand a9c43481023c_extend_ml2_port_bindings added status + PK
    "ocata": ("5c85685d616d", "a9c43481023c"),
}

# standardattributes.id is BIGINT in neutron, but SQLite only autoincrements
# an INTEGER PRIMARY KEY, hence neutron's own with_variant.
_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _uuid(name: str, **kw) -> sa.Column:
    return sa.Column(name, sa.String(36), **kw)


def _alembic(md: sa.MetaData) -> None:
    sa.Table(
        "alembic_version",
        md,
        sa.Column("version_num", sa.String(32), primary_key=True),
    )


def _owner_col(layout: str) -> sa.Column:
    # Newton's 7d9d8eeec6ad_rename_tenant_to_project renamed it everywhere.
    name = "tenant_id" if layout in ("icehouse", "kilo") else "project_id"
    return sa.Column(name, sa.String(255))


def _standard_attr_id() -> sa.Column:
    return sa.Column(
        "standard_attr_id",
        _BIGINT,
        sa.ForeignKey("standardattributes.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    )


def _standardattributes(md: sa.MetaData) -> None:
    # neutron 9.0.0 neutron/db/standard_attr.py (revision_number: Newton c415aab1c048)
    sa.Table(
        "standardattributes",
        md,
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("resource_type", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("description", sa.String(255)),
        sa.Column("revision_number", _BIGINT, nullable=False, server_default="0"),
    )


def _networks(md: sa.MetaData, layout: str) -> None:
    cols: list[sa.Column] = [
        _owner_col(layout),
        _uuid("id", primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("status", sa.String(16)),
        sa.Column("admin_state_up", sa.Boolean),
    ]
    if layout in ("icehouse", "kilo"):
        # 'shared' moved to RBAC in Liberty (4ffceebfada_rbac_network).
        cols.append(sa.Column("shared", sa.Boolean))
    if layout == "kilo":
        # Kilo added both; Newton's contract b67e765a3524 dropped mtu again.
        cols.append(sa.Column("mtu", sa.Integer))
    if layout != "icehouse":
        cols.append(sa.Column("vlan_transparent", sa.Boolean))
    if layout in ("newton", "ocata"):
        cols.append(_standard_attr_id())
        cols.append(sa.Column("availability_zone_hints", sa.String(255)))
    sa.Table("networks", md, *cols)


def _ports(md: sa.MetaData, layout: str) -> None:
    cols: list[sa.Column] = [
        _owner_col(layout),
        _uuid("id", primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("network_id", sa.String(36), sa.ForeignKey("networks.id"), nullable=False),
        sa.Column("mac_address", sa.String(32), nullable=False),
        sa.Column("admin_state_up", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("device_id", sa.String(255), nullable=False),
        sa.Column("device_owner", sa.String(255), nullable=False),
    ]
    args: list = []
    if layout in ("newton", "ocata"):
        cols.append(_standard_attr_id())
        cols.append(sa.Column("ip_allocation", sa.String(16)))
        args.append(
            sa.UniqueConstraint(
                "network_id", "mac_address", name="uniq_ports0network_id0mac_address"
            )
        )
        args.append(sa.Index("ix_ports_device_id", "device_id"))
    if layout != "icehouse":
        args.append(sa.Index("ix_ports_network_id_device_owner", "network_id", "device_owner"))
    sa.Table("ports", md, *cols, *args)


def _segments(md: sa.MetaData, layout: str) -> str:
    name = "ml2_network_segments" if layout in ("icehouse", "kilo") else "networksegments"
    cols: list[sa.Column] = [
        _uuid("id", primary_key=True),
        sa.Column(
            "network_id",
            sa.String(36),
            sa.ForeignKey("networks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("network_type", sa.String(32), nullable=False),
        sa.Column("physical_network", sa.String(64)),
        sa.Column("segmentation_id", sa.Integer),
    ]
    if layout != "icehouse":
        # is_dynamic: Juno; segment_index: Kilo.
        cols.append(sa.Column("is_dynamic", sa.Boolean, nullable=False, server_default=sa.false()))
        cols.append(sa.Column("segment_index", sa.Integer, nullable=False, server_default="0"))
    if layout in ("newton", "ocata"):
        cols.append(_standard_attr_id())
        cols.append(sa.Column("name", sa.String(255)))
    sa.Table(name, md, *cols)
    return name


def _agents(md: sa.MetaData, layout: str) -> None:
    cols: list[sa.Column] = [
        _uuid("id", primary_key=True),
        sa.Column("agent_type", sa.String(255), nullable=False),
        sa.Column("binary", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
    ]
    if layout in ("newton", "ocata"):
        cols.append(sa.Column("availability_zone", sa.String(255)))
    # Icehouse's 511471cc46b_agent_ext_model_supp had no server default here.
    cols.append(
        sa.Column(
            "admin_state_up",
            sa.Boolean,
            nullable=False,
            server_default=None if layout == "icehouse" else sa.true(),
        )
    )
    cols += [
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_timestamp", sa.DateTime, nullable=False),
        sa.Column("description", sa.String(255)),
        sa.Column("configurations", sa.String(4095), nullable=False),
    ]
    if layout in ("newton", "ocata"):
        cols.append(sa.Column("resource_versions", sa.String(8191)))
    if layout != "icehouse":
        cols.append(sa.Column("load", sa.Integer, nullable=False, server_default="0"))
    sa.Table(
        "agents",
        md,
        *cols,
        sa.UniqueConstraint("agent_type", "host", name="uniq_agents0agent_type0host"),
    )


def _port_bindings(md: sa.MetaData, layout: str, segments: str) -> None:
    def port_fk() -> sa.ForeignKey:
        return sa.ForeignKey("ports.id", ondelete="CASCADE")

    if layout == "icehouse":
        # 32a65f71af51 (create) + 27cc183af192 (vnic_type) + 50d5ba354c23
        # (vif_details, drops cap_port_filter) + 157a5d299379 (profile).
        sa.Table(
            "ml2_port_bindings",
            md,
            sa.Column("port_id", sa.String(36), port_fk(), primary_key=True),
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("vif_type", sa.String(64), nullable=False),
            sa.Column("driver", sa.String(64)),
            sa.Column(
                "segment", sa.String(36), sa.ForeignKey(f"{segments}.id", ondelete="SET NULL")
            ),
            sa.Column("vnic_type", sa.String(64), nullable=False, server_default="normal"),
            sa.Column("vif_details", sa.String(4095), nullable=False, server_default=""),
            sa.Column("profile", sa.String(4095), nullable=False, server_default=""),
        )
        return
    cols: list[sa.Column] = [
        sa.Column("port_id", sa.String(36), port_fk(), primary_key=True),
        # Juno's healing migration gave host a server default of ''.
        sa.Column(
            "host",
            sa.String(255),
            nullable=False,
            server_default="",
            primary_key=(layout == "ocata"),
        ),
        sa.Column("vif_type", sa.String(64), nullable=False),
        sa.Column("vnic_type", sa.String(64), nullable=False, server_default="normal"),
        sa.Column("vif_details", sa.String(4095), nullable=False, server_default=""),
        sa.Column("profile", sa.String(4095), nullable=False, server_default=""),
    ]
    if layout == "ocata":
        cols.append(sa.Column("status", sa.String(16), nullable=False, server_default="ACTIVE"))
    sa.Table("ml2_port_bindings", md, *cols)
    # Kilo 2015.1 neutron/plugins/ml2/models.py PortBindingLevel.
    sa.Table(
        "ml2_port_binding_levels",
        md,
        sa.Column("port_id", sa.String(36), port_fk(), primary_key=True),
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("driver", sa.String(64)),
        sa.Column(
            "segment_id", sa.String(36), sa.ForeignKey(f"{segments}.id", ondelete="SET NULL")
        ),
    )
    # DVR bindings: Juno/Kilo 'ml2_dvr_port_bindings', renamed in Newton
    # (4bcd4df1f426). Kilo dropped its cap_port_filter/driver/segment.
    sa.Table(
        "ml2_dvr_port_bindings" if layout == "kilo" else "ml2_distributed_port_bindings",
        md,
        sa.Column(
            "port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("router_id", sa.String(36)),
        sa.Column("vif_type", sa.String(64), nullable=False),
        sa.Column("vif_details", sa.String(4095), nullable=False, server_default=""),
        sa.Column("vnic_type", sa.String(64), nullable=False, server_default="normal"),
        sa.Column("profile", sa.String(4095), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
    )


def build_metadata(layout: str) -> sa.MetaData:
    """Return fresh metadata for one layout (separate so tests can inspect it)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    md = sa.MetaData()
    _alembic(md)
    if layout in ("newton", "ocata"):
        _standardattributes(md)
    _networks(md, layout)
    _ports(md, layout)
    segments = _segments(md, layout)
    _agents(md, layout)
    _port_bindings(md, layout, segments)
    return md


def create_schema(engine: Engine, layout: str) -> None:
    """Create one legacy layout's tables and stamp alembic_version like a real cloud."""
    md = build_metadata(layout)
    with engine.begin() as conn:
        md.create_all(conn)
        version = md.tables["alembic_version"]
        conn.execute(version.delete())
        conn.execute(version.insert(), [{"version_num": v} for v in ALEMBIC_HEADS[layout]])
