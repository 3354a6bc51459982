"""The facts vifdoctor reads and the findings it makes of them.

Sources (``vifdoctor.sources``) produce :class:`Binding` and :class:`Agent`
records; rules (``vifdoctor.rules``) turn them into :class:`Finding` records;
reports (``vifdoctor.report``) render them. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    """oslo.upgradecheck's scale: what the exit code is made of."""

    INFO = "info"
    WARNING = "warning"
    FAILURE = "failure"


class Plug(str, enum.Enum):
    """How Nova wires a VIF on the compute host."""

    HYBRID = "hybrid"  # tap -> qbr Linux bridge -> qvb/qvo veth -> br-int
    DIRECT = "direct"  # tap (or os-vif port) straight on the integration bridge
    VHOSTUSER = "vhostuser"  # DPDK vhost-user socket
    BRIDGE = "bridge"  # linuxbridge agent: tap in brq<net>
    NONE = "none"  # Nova plugs nothing usable (binding failed / unbound)
    UNKNOWN = "unknown"


class NovaGeneration(str, enum.Enum):
    """Which Nova decides the plug (domain.md section 1, point 4)."""

    LEGACY = "legacy"  # Icehouse..Train: firewall_required(vif) or ovs_hybrid_plug
    MODERN = "modern"  # Ussuri+: ovs_hybrid_plug only


@dataclass(frozen=True)
class ParsedJson:
    """A JSON column as Neutron reads it, and whether it is usable.

    ``value`` is what Neutron's ML2 plugin hands to Nova: the parsed object,
    or ``{}`` when the text is empty or does not parse. ``error`` says why the
    stored text is not a JSON object (None when it is, or when it is empty).
    """

    raw: str
    value: Any
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        return self.value if isinstance(self.value, dict) else {}


@dataclass(slots=True)
class Agent:
    """One row of Neutron's ``agents`` table, as the rules need it."""

    id: str
    agent_type: str
    host: str
    alive: bool
    admin_state_up: bool
    configurations: dict
    heartbeat_timestamp: Any = None
    configurations_error: str | None = None  # set when the column is not a JSON object
    configurations_raw: str = ""


@dataclass(slots=True)
class Binding:
    """One row of ``ml2_port_bindings`` joined with its port.

    ``vif_details`` and ``profile`` are kept as the raw text from the database
    (the repair guards its UPDATE on that exact text); rules parse them.
    """

    port_id: str
    host: str
    vif_type: str
    vif_details: str
    vnic_type: str = "normal"
    profile: str = ""
    status: str | None = None  # None before Ocata (no column)
    driver: str | None = None  # bottom binding level's driver, or Icehouse's column
    segment: str | None = None
    device_owner: str = ""
    device_id: str = ""
    network_id: str = ""
    project_id: str = ""
    has_active_row: bool = True  # for INACTIVE rows: whether an ACTIVE row exists too

    @property
    def is_compute_port(self) -> bool:
        return self.device_owner.startswith("compute:")


@dataclass(slots=True)
class Migration:
    """One live row of a Nova cell's ``migrations`` table: a move of an instance.

    ``migration_type`` is what Nova reads: the column where there is one (Liberty+),
    else nova's ``determine_migration_type`` (``resize`` when the flavors differ,
    else ``migration``). Columns a release lacks are left empty. ``uuid`` is the same
    in both cells' copies of a cross-cell resize; ``id`` is per cell.
    """

    id: int
    instance_uuid: str
    cell: str = ""
    uuid: str = ""
    migration_type: str = ""
    status: str | None = None
    source_compute: str = ""
    dest_compute: str = ""
    source_node: str = ""
    dest_node: str = ""
    created_at: Any = None  # naive UTC, as Nova stores it
    updated_at: Any = None
    hidden: bool = False
    cross_cell_move: bool = False

    @property
    def key(self) -> str:
        """One move however many cells hold a copy of it."""
        return self.uuid or f"{self.cell}/{self.id}"

    def as_dict(self) -> dict:
        def when(value: Any) -> str | None:
            return value.isoformat(sep=" ") if hasattr(value, "isoformat") else value

        return {
            "id": self.id, "uuid": self.uuid or None, "cell": self.cell,
            "instance_uuid": self.instance_uuid, "migration_type": self.migration_type,
            "status": self.status, "source_compute": self.source_compute,
            "dest_compute": self.dest_compute, "source_node": self.source_node,
            "dest_node": self.dest_node, "created_at": when(self.created_at),
            "updated_at": when(self.updated_at), "cross_cell_move": self.cross_cell_move,
        }


@dataclass(slots=True)
class Finding:
    """One judged fault on one binding (or one agent), with what to do about it."""

    code: str
    severity: Severity
    title: str
    message: str
    impact: str
    remedy: str
    port_id: str = ""
    host: str = ""
    device_owner: str = ""
    device_id: str = ""
    network_id: str = ""
    project_id: str = ""
    vif_type: str = ""
    vnic_type: str = ""
    status: str = ""
    driver: str = ""
    stored_details: Any = None  # parsed object where it parses, else the raw text cut short
    expected_details: Any = None
    nova_plug: str = ""
    needed_plug: str = ""
    correction: dict | None = None  # {"set": {...}, "remove": [...]}: what the repair changes
    instance: dict | None = None  # the Nova instance behind device_id, when Nova was read
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "title": self.title,
            "message": self.message,
            "port_id": self.port_id,
            "host": self.host,
            "device_owner": self.device_owner,
            "device_id": self.device_id,
            "network_id": self.network_id,
            "project_id": self.project_id,
            "vif_type": self.vif_type,
            "vnic_type": self.vnic_type,
            "status": self.status,
            "driver": self.driver,
            "stored_details": self.stored_details,
            "expected_details": self.expected_details,
            "nova_plug": self.nova_plug,
            "needed_plug": self.needed_plug,
            "impact": self.impact,
            "remedy": self.remedy,
            "correction": self.correction,
            **({"instance": self.instance} if self.instance is not None else {}),
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass(frozen=True)
class Layout:
    """The Neutron schema layout found by reflection."""

    name: str  # "icehouse" | "kilo" | "ocata"
    description: str
    bindings_table: str
    has_levels: bool  # ml2_port_binding_levels (Kilo+)
    has_status: bool  # ml2_port_bindings.status (Ocata+)
    project_column: str  # "tenant_id" (before Newton) or "project_id"
    segments_table: str | None
    alembic_versions: tuple = ()

    def as_dict(self) -> dict:
        return {
            "layout": self.name,
            "description": self.description,
            "bindings_table": self.bindings_table,
            "binding_levels": self.has_levels,
            "binding_status": self.has_status,
            "project_column": self.project_column,
            "segments_table": self.segments_table,
            "alembic_versions": list(self.alembic_versions),
        }
