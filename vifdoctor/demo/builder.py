"""Write a described cloud into whatever Neutron schema a database has.

The audit must be tested against every schema generation (Icehouse to today),
so one cloud description has to land in each of them. Rather than keep one
writer per release, the builder reflects the tables that exist and adapts:
``tenant_id``/``project_id``, ``ml2_network_segments``/``networksegments``,
driver+segment on the binding (Icehouse) or a level-0 row in
``ml2_port_binding_levels`` (Kilo+), ``status`` (Ocata+), and
``standardattributes`` (Mitaka+). Any other NOT NULL column without a server
default gets a filler of its type, so the real neutron 29.0.0 schema works too.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

CHUNK = 1000

# uuid5 namespace so generated agent ids are stable across runs.
_NS = uuid.UUID("6f1e3c1e-5c2a-4d4e-9a55-7a1f0c0de0a1")

# What real agents report as binary/topic (neutron/common/topics.py and the
# agents' own report_state); topic 'N/A' is what L2 agents really send.
_AGENT_BINARY_TOPIC: dict[str, tuple[str, str]] = {
    "Open vSwitch agent": ("neutron-openvswitch-agent", "N/A"),
    "Linux bridge agent": ("neutron-linuxbridge-agent", "N/A"),
    "NIC Switch agent": ("neutron-sriov-nic-agent", "N/A"),
    "DHCP agent": ("neutron-dhcp-agent", "dhcp_agent"),
    "L3 agent": ("neutron-l3-agent", "l3_agent"),
    "Metadata agent": ("neutron-metadata-agent", "N/A"),
}


@dataclass
class SegmentSpec:
    """One segment of a network (its id is what bindings point at)."""

    id: str
    network_type: str = "vxlan"
    physical_network: str | None = None
    segmentation_id: int | None = 100


@dataclass
class NetworkSpec:
    """A network with its segments, in segment_index order."""

    id: str
    name: str
    project_id: str
    segments: list[SegmentSpec]


@dataclass
class AgentSpec:
    """An agent row; ``configurations`` as a dict is JSON-encoded, a str is stored as-is."""

    host: str
    agent_type: str
    configurations: dict | str = field(default_factory=dict)
    alive: bool = True
    admin_state_up: bool = True
    heartbeat_at: datetime | None = None
    binary: str = ""
    id: str = ""


@dataclass
class BindingSpec:
    """A binding row; ``vif_details``/``profile`` are raw text stored byte for byte.

    ``driver``/``segment_id`` go on the binding (Icehouse) or into a level-0
    row of ml2_port_binding_levels (Kilo+); ``driver=None`` means no level row,
    as for ports no mechanism driver bound.
    """

    host: str
    vif_type: str
    vif_details: str | None = ""  # None: SQL NULL, where the schema allows it
    vnic_type: str = "normal"
    profile: str = ""
    status: str = "ACTIVE"
    driver: str | None = "openvswitch"
    segment_id: str | None = None


@dataclass
class PortSpec:
    """A port; ``extra_bindings`` (e.g. INACTIVE duplicates) need the Ocata+ schema."""

    id: str
    network_id: str
    device_owner: str
    device_id: str
    project_id: str
    binding: BindingSpec | None
    extra_bindings: list[BindingSpec] = field(default_factory=list)
    mac_address: str = ""
    name: str = ""


@dataclass
class CloudSpec:
    """Everything write_cloud puts into the database."""

    networks: list[NetworkSpec]
    agents: list[AgentSpec]
    ports: list[PortSpec]


def utcnow() -> datetime:
    """Naive UTC without microseconds: what Neutron stores in DATETIME columns."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def agent_id(agent: AgentSpec) -> str:
    """The agent's id, derived from (agent_type, host) when not given, so runs repeat."""
    return agent.id or str(uuid.uuid5(_NS, f"{agent.agent_type}/{agent.host}"))


def _filler(col: sa.Column) -> Any:
    """A harmless value of the column's type, for NOT NULL columns we know nothing of."""
    typ = col.type
    if isinstance(typ, sa.Enum) and typ.enums:
        return typ.enums[0]
    if isinstance(typ, sa.Boolean):
        return False
    if isinstance(typ, (sa.DateTime, sa.TIMESTAMP)):
        return utcnow()
    if isinstance(typ, sa.Date):
        return utcnow().date()
    if isinstance(typ, (sa.Integer, sa.Numeric, sa.Float)):
        return 0
    if isinstance(typ, (sa.String, sa.Text)):
        return ""
    if isinstance(typ, sa.LargeBinary):
        return b""
    try:
        return typ.python_type()
    except (NotImplementedError, TypeError):
        return ""


class _Table:
    """A reflected table plus the NOT NULL columns nobody will supply a value for."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.names = set(table.c.keys())
        self._needs_filler = [
            c
            for c in table.c
            if not c.nullable
            and c.server_default is None
            and not (c.primary_key and c.autoincrement is True)
        ]

    def has(self, name: str) -> bool:
        return name in self.names

    def row(self, values: dict[str, Any]) -> dict[str, Any]:
        """Keep only existing columns and fill the NOT NULL ones left without a value."""
        out = {k: v for k, v in values.items() if k in self.names}
        for col in self._needs_filler:
            if col.name not in out:
                out[col.name] = _filler(col)
        return out


def _chunks(rows: list[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _insert(conn: Connection, t: _Table, rows: list[dict[str, Any]]) -> None:
    """executemany in chunks: PyMySQL turns each chunk into one multi-row INSERT."""
    for chunk in _chunks(rows):
        conn.execute(sa.insert(t.table), chunk)


def _mac_for(port_id: str, taken: set[tuple[str, str]], network_id: str) -> str:
    """A Neutron-style fa:16:3e MAC derived from the port id, unique per network."""
    n = int.from_bytes(hashlib.sha1(port_id.encode(), usedforsecurity=False).digest()[:3], "big")
    while True:
        mac = f"fa:16:3e:{n >> 16:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"
        if (network_id, mac) not in taken:
            taken.add((network_id, mac))
            return mac
        n = (n + 1) & 0xFFFFFF


def _reflect(conn: Connection) -> dict[str, _Table]:
    names = set(sa.inspect(conn).get_table_names())
    wanted = [
        n
        for n in (
            "networks",
            "ports",
            "agents",
            "ml2_port_bindings",
            "ml2_port_binding_levels",
            "ml2_network_segments",
            "networksegments",
            "standardattributes",
        )
        if n in names
    ]
    for required in ("networks", "ports", "agents", "ml2_port_bindings"):
        if required not in names:
            raise ValueError(f"not a Neutron ML2 database: table {required} is missing")
    md = sa.MetaData()
    md.reflect(bind=conn, only=wanted)
    return {n: _Table(md.tables[n]) for n in wanted}


class _StdAttrs:
    """Hands out standardattributes ids and collects their rows.

    Ids are assigned here (MAX(id)+1 onward) rather than by the database,
    because executemany cannot return autoincrement ids on every backend.
    """

    def __init__(self, conn: Connection, table: _Table | None, now: datetime) -> None:
        self.table = table
        self.rows: list[dict[str, Any]] = []
        self.now = now
        self.next_id = 1
        if table is not None:
            current = conn.execute(sa.select(sa.func.max(table.table.c.id))).scalar()
            self.next_id = (current or 0) + 1

    def new(self, resource_type: str) -> int | None:
        if self.table is None:
            return None
        sid = self.next_id
        self.next_id += 1
        self.rows.append(
            self.table.row(
                {
                    "id": sid,
                    "resource_type": resource_type,
                    "created_at": self.now,
                    "updated_at": self.now,
                    "description": "",
                    "revision_number": 0,
                }
            )
        )
        return sid


def _owner(t: _Table, project_id: str) -> dict[str, str]:
    """Newton renamed tenant_id to project_id; write whichever exists."""
    return {"project_id" if t.has("project_id") else "tenant_id": project_id}


def _agent_row(t: _Table, a: AgentSpec, now: datetime) -> dict[str, Any]:
    if a.heartbeat_at is not None:
        beat = a.heartbeat_at
    else:
        beat = now if a.alive else now - timedelta(hours=1)
    binary, topic = _AGENT_BINARY_TOPIC.get(a.agent_type, ("", "N/A"))
    conf = a.configurations
    if not isinstance(conf, str):
        conf = json.dumps(conf)
    return t.row(
        {
            "id": agent_id(a),
            "agent_type": a.agent_type,
            "binary": a.binary or binary,
            "topic": topic,
            "host": a.host,
            "admin_state_up": a.admin_state_up,
            "created_at": beat - timedelta(days=30),
            "started_at": beat - timedelta(hours=2),
            "heartbeat_timestamp": beat,
            "description": None,
            "configurations": conf,
            "availability_zone": "nova" if topic != "N/A" else None,
            "load": 0,
            "resources_synced": True if t.has("resources_synced") else None,
        }
    )


def _all_bindings(port: PortSpec) -> Iterable[BindingSpec]:
    if port.binding is not None:
        yield port.binding
    yield from port.extra_bindings


def write_cloud(engine: Engine, cloud: CloudSpec) -> None:
    """Insert the whole cloud in one transaction, adapting to the schema found."""
    now = utcnow()
    with engine.begin() as conn:
        tables = _reflect(conn)
        networks = tables["networks"]
        ports = tables["ports"]
        agents = tables["agents"]
        bindings = tables["ml2_port_bindings"]
        levels = tables.get("ml2_port_binding_levels")
        segments = tables.get("networksegments") or tables.get("ml2_network_segments")
        if segments is None:
            raise ValueError("no segments table (ml2_network_segments/networksegments)")
        std = _StdAttrs(conn, tables.get("standardattributes"), now)
        seg_rt = segments.table.name
        has_status = bindings.has("status")
        multi_binding = {c.name for c in bindings.table.primary_key.columns} >= {"port_id", "host"}

        net_rows, seg_rows = [], []
        for net in cloud.networks:
            net_rows.append(
                networks.row(
                    {
                        **_owner(networks, net.project_id),
                        "id": net.id,
                        "name": net.name,
                        "status": "ACTIVE",
                        "admin_state_up": True,
                        "shared": False,
                        "standard_attr_id": std.new("networks"),
                    }
                )
            )
            for index, seg in enumerate(net.segments):
                seg_rows.append(
                    segments.row(
                        {
                            "id": seg.id,
                            "network_id": net.id,
                            "network_type": seg.network_type,
                            "physical_network": seg.physical_network,
                            "segmentation_id": seg.segmentation_id,
                            "is_dynamic": False,
                            "segment_index": index,
                            "standard_attr_id": std.new(seg_rt),
                        }
                    )
                )

        agent_rows = [_agent_row(agents, a, now) for a in cloud.agents]

        port_rows, binding_rows, level_rows = [], [], []
        macs: set[tuple[str, str]] = set()
        for p in cloud.ports:
            if p.extra_bindings and not multi_binding:
                raise ValueError(
                    f"port {p.id}: extra bindings need the Ocata+ schema "
                    "(ml2_port_bindings primary key (port_id, host))"
                )
            mac = p.mac_address or _mac_for(p.id, macs, p.network_id)
            if p.mac_address:
                macs.add((p.network_id, p.mac_address))
            bound = p.binding is not None and p.binding.vif_type not in (
                "unbound",
                "binding_failed",
            )
            port_rows.append(
                ports.row(
                    {
                        **_owner(ports, p.project_id),
                        "id": p.id,
                        "name": p.name,
                        "network_id": p.network_id,
                        "mac_address": mac,
                        "admin_state_up": True,
                        "status": "ACTIVE" if bound else "DOWN",
                        "device_id": p.device_id,
                        "device_owner": p.device_owner,
                        "standard_attr_id": std.new("ports"),
                        "ip_allocation": "immediate",
                    }
                )
            )
            for b in _all_bindings(p):
                if b.status != "ACTIVE" and not has_status:
                    raise ValueError(
                        f"port {p.id}: binding status {b.status!r} needs the Ocata+ schema"
                    )
                values: dict[str, Any] = {
                    "port_id": p.id,
                    "host": b.host,
                    "vif_type": b.vif_type,
                    "vif_details": b.vif_details,
                    "vnic_type": b.vnic_type,
                    "profile": b.profile,
                    "status": b.status,
                }
                if levels is None:
                    values["driver"] = b.driver
                    values["segment"] = b.segment_id
                elif b.driver is not None:
                    level_rows.append(
                        levels.row(
                            {
                                "port_id": p.id,
                                "host": b.host,
                                "level": 0,
                                "driver": b.driver,
                                "segment_id": b.segment_id,
                            }
                        )
                    )
                binding_rows.append(bindings.row(values))

        # Parents before children, for the foreign keys.
        if std.table is not None:
            _insert(conn, std.table, std.rows)
        _insert(conn, networks, net_rows)
        _insert(conn, segments, seg_rows)
        _insert(conn, agents, agent_rows)
        _insert(conn, ports, port_rows)
        _insert(conn, bindings, binding_rows)
        if levels is not None:
            _insert(conn, levels, level_rows)
        if std.table is not None and std.rows and conn.dialect.name == "postgresql":
            # Explicit ids do not move a PostgreSQL sequence; keep Neutron's own
            # later inserts from colliding with ours.
            conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence('standardattributes', 'id'), "
                    "(SELECT MAX(id) FROM standardattributes))"
                )
            )
