"""The shared vocabulary: the facts vifdoctor reads and the findings it makes of them.

Sources (``vifdoctor.sources``) produce :class:`Binding`, :class:`Agent`,
:class:`Instance` and :class:`HostWiring` records; rules (``vifdoctor.rules``)
turn them into :class:`Finding` records and the repair into :class:`Change`
records; reports (``vifdoctor.report``) render them. Sources and rules both
stand on this module and never on each other. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass, field
from typing import Any

import orjson

#: The category of a binding row that a plug rule judged (others say why none applied).
JUDGED = "judged"

#: The Binding fields a binding rule's verdict depends on (with the host's agents and the
#: run's context): never the ids, which only appear in findings' messages. Rows equal in
#: these share a clean verdict (rules.binding.BindingJudge), and a source may give such a
#: row back as that verdict without building it (Binding.shape; issue 14).
VERDICT_FIELDS = (
    "host",
    "vif_type",
    "vif_details",
    "vnic_type",
    "profile",
    "status",
    "driver",
    "device_owner",
    "has_active_row",
)


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


def parse_json_column(raw: str | None) -> ParsedJson:
    """Read a JSON text column the way Neutron's ML2 plugin hands it to Nova.

    Empty text is ``{}``; text that does not parse is ``{}`` plus an error
    (Neutron logs it and returns ``{}``); a value that parses but is not an
    object is kept (Neutron returns it as is) and flagged.

    Results are shared between equal texts (a cloud holds few distinct
    vif_details): callers copy before they change a value.
    """
    return _parse_cached("" if raw is None else raw)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> ParsedJson:
    if not text:
        return ParsedJson(text, {})
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return ParsedJson(text, {}, f"not valid JSON ({short_json_error(exc)})")
    if not isinstance(value, dict):
        return ParsedJson(text, value, f"a JSON {json_kind(value)}, not an object")
    return ParsedJson(text, value)


def short_json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg}, char {exc.pos}"
    return type(exc).__name__


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


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
    ``vif_details`` is None where the column holds SQL NULL (vendor and hand-altered
    schemas allow it): judged as empty details, but guarded as ``IS NULL``.
    """

    port_id: str
    host: str
    vif_type: str
    vif_details: str | None
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
    port_status: str = ""  # ports.status (ACTIVE, DOWN, BUILD, ...): OVN's up drives it
    # The source's bytes of this row's VERDICT_FIELDS, where it has them at no cost (a
    # packed row's first values): rows with equal shapes are equal in those fields. None
    # otherwise. Not part of the row's value: equal rows may come with or without one.
    shape: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def is_compute_port(self) -> bool:
        return self.device_owner.startswith("compute:")


@dataclass(slots=True)
class Migration:
    """One live row of a Nova cell's ``migrations`` table: a move of an instance.

    ``migration_type`` is what Nova reads: the column where there is one (object 1.2+),
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
            "id": self.id,
            "uuid": self.uuid or None,
            "cell": self.cell,
            "instance_uuid": self.instance_uuid,
            "migration_type": self.migration_type,
            "status": self.status,
            "source_compute": self.source_compute,
            "dest_compute": self.dest_compute,
            "source_node": self.source_node,
            "dest_node": self.dest_node,
            "created_at": when(self.created_at),
            "updated_at": when(self.updated_at),
            "cross_cell_move": self.cross_cell_move,
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


# nova.compute.power_state: RUNNING=1, PAUSED=3, SHUTDOWN=4, CRASHED=6, SUSPENDED=7
POWER_STATES = {
    0: "nostate",
    1: "running",
    3: "paused",
    4: "shutdown",
    6: "crashed",
    7: "suspended",
}
_PLUGGED_POWER = {1, 3, 7}  # the VIF exists on the host now
_STOPPED_VM_STATES = {"stopped", "shelved", "shelved_offloaded", "deleted", "soft-delete"}


def power_state_name(value: int | None) -> str | int | None:
    """nova.compute.power_state's name for a value (the value itself when unknown)."""
    return None if value is None else POWER_STATES.get(value, value)


#: The keys of a cached VIF that the rules read (rules/nova.py). Where the caches are
#: parsed in another process (sources/nova_worker.py) only these cross over: a rule that
#: reads another key of a cached VIF adds it here.
VIF_KEYS = ("id", "type", "details", "devname", "ovs_interfaceid")


@dataclass(frozen=True)
class CachedVifs:
    """The parsed cache: VIFs by port id, or why it could not be read."""

    vifs: dict[str, dict]
    error: str | None = None


def parse_network_info(raw: str | None) -> CachedVifs:
    """Read ``network_info`` as nova's ``NetworkInfo.hydrate`` does.

    NULL is no cache. Otherwise the text is ``jsonutils.loads``-ed and iterated,
    one VIF object per item: so ``''`` and ``null`` break Nova, while an empty
    object or string iterates to nothing, an empty cache.
    """
    if raw is None:
        return CachedVifs({})
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return CachedVifs({}, f"not valid JSON ({short_json_error(exc)})")
    if isinstance(value, (dict, str)) and not value:
        return CachedVifs({})  # iterates to nothing: Nova reads an empty cache
    if not isinstance(value, list):
        return CachedVifs({}, f"a JSON {json_kind(value)}, not a list")
    vifs: dict[str, dict] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return CachedVifs({}, "a list whose items are not all VIF objects with an id")
        vifs[item["id"]] = item
    return CachedVifs(vifs)


_FAST_NESTING = 256  # brackets in a cache, at most, for orjson to read it (see below)


def read_cached_vifs(raw: str | None) -> CachedVifs:
    """``parse_network_info``'s answer with each VIF cut to VIF_KEYS, read fast.

    Parsing a million caches (800 MB of JSON, mostly the networks the rules never read)
    was a quarter of the Nova worker's CPU (issue 14); orjson builds them in about half
    the time. Where its values could differ from Python's ``json`` (Nova's
    ``jsonutils``) the stdlib decides: text orjson refuses (NaN, Infinity, lone
    surrogates, numbers out of range), anything but a list of VIF objects, and any
    float among the kept keys (orjson reads integers past 64 bits as floats).
    """
    # Python's parser refuses nesting near the recursion limit, where orjson goes on to
    # 1024 levels: a text that could nest that deep (counted by its brackets, strings'
    # included) is the stdlib's to read.
    if raw is not None and raw.count("[") + raw.count("{") < _FAST_NESTING:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = None
        if type(value) is list:
            vifs: dict[str, dict] = {}
            for item in value:
                port_id = item.get("id") if type(item) is dict else None
                if type(port_id) is not str:
                    break
                cut = _kept(item)
                if _holds_float(cut):
                    break
                vifs[port_id] = cut
            else:
                return CachedVifs(vifs)
    cache = parse_network_info(raw)
    return CachedVifs({pid: _kept(vif) for pid, vif in cache.vifs.items()}, cache.error)


def _kept(vif: dict) -> dict:
    return {k: vif[k] for k in VIF_KEYS if k in vif}


def _holds_float(value: Any) -> bool:
    """Whether a float is anywhere in ``value`` (walked without recursion)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is float:
            return True
        if type(item) is dict:
            pending.extend(item.values())
        elif type(item) is list:
            pending.extend(item)
    return False


@dataclass
class Instance:
    """One row of a cell's ``instances`` with its cache, as Nova stores them."""

    uuid: str
    cell: str
    name: str = ""
    host: str = ""
    node: str = ""
    vm_state: str = ""
    power_state: int | None = None
    task_state: str | None = None
    deleted: bool = False
    network_info: str | None = None  # raw text; None: no live cache row (or see ``cache``)
    cache_known: bool = True  # False when the source cannot see Nova's cache (the API)
    hidden: bool = False  # the other cell's copy during a cross-cell resize
    migrations: list[Migration] | None = None  # None: the source has no migration records
    # The cache already parsed (and slimmed) by the source; then ``network_info`` holds the
    # raw text only where it could not be read, for VD205's message.
    cache: CachedVifs | None = None

    def as_dict(self) -> dict:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "cell": self.cell,
            "host": self.host,
            "node": self.node,
            "vm_state": self.vm_state,
            "power_state": power_state_name(self.power_state),
            "task_state": self.task_state,
            "deleted": self.deleted,
            **({"hidden": True} if self.hidden else {}),
        }

    def cached_vifs(self) -> CachedVifs:
        """The VIFs of its cache (the keys the rules read), parsed here unless the source
        already did."""
        if self.cache is not None:
            return self.cache
        return read_cached_vifs(self.network_info)

    @property
    def plugged(self) -> bool:
        """Whether its VIFs exist on the host now (running, paused or suspended)."""
        if self.power_state is not None:
            return self.power_state in _PLUGGED_POWER
        return self.vm_state == "active"

    @property
    def stopped(self) -> bool:
        return not self.plugged and (self.vm_state in _STOPPED_VM_STATES or self.power_state == 4)


# libvirt domain states in which the domain's interfaces exist on the host
RUNNING = {"running", "paused", "blocked", "pmsuspended", "idle", "in shutdown"}


@dataclass
class OvsIface:
    bridge: str
    name: str
    type: str
    ofport: int | None
    iface_id: str | None
    external_ids: dict


@dataclass
class HostWiring:
    """One host-scan report, indexed for the rules."""

    host: str
    readable: dict[str, bool]
    links: dict[str, dict]
    ovs: dict[str, OvsIface]  # by interface name
    ovs_by_iface_id: dict[str, list[OvsIface]]
    domains: list[dict]
    chains: set[str] | None
    errors: list[dict] = field(default_factory=list)
    # The Open_vSwitch row's external_ids (ovn-controller's settings); None: not recorded
    system: dict[str, str] | None = None

    @classmethod
    def from_report(cls, report: dict) -> HostWiring:
        links = {}
        for link in report.get("links") or []:
            if isinstance(link, dict) and isinstance(link.get("name"), str):
                links[link["name"]] = link
        ovs: dict[str, OvsIface] = {}
        by_id: dict[str, list[OvsIface]] = {}
        for br in report.get("ovs_bridges") or []:
            for port in br.get("ports") or []:
                for iface in port.get("interfaces") or []:
                    ext = iface.get("external_ids") or {}
                    item = OvsIface(
                        br.get("name") or "",
                        iface.get("name") or "",
                        iface.get("type") or "",
                        iface.get("ofport"),
                        ext.get("iface-id"),
                        ext,
                    )
                    ovs[item.name] = item
                    if item.iface_id:
                        by_id.setdefault(item.iface_id, []).append(item)
        sources = report.get("sources") or {}
        chains = report.get("iptables_chains")
        system = (report.get("open_vswitch") or {}).get("external_ids")
        return cls(
            host=str(report.get("host") or ""),
            readable={
                k: bool((sources.get(k) or {}).get("ok"))
                for k in ("libvirt", "ovs", "links", "iptables", "open_vswitch")
            },
            links=links,
            ovs=ovs,
            ovs_by_iface_id=by_id,
            domains=[d for d in report.get("domains") or [] if isinstance(d, dict)],
            chains=set(chains) if isinstance(chains, list) else None,
            errors=list(report.get("errors") or []),
            system=(
                {str(k): str(v) for k, v in system.items() if v is not None}
                if isinstance(system, dict)
                else None
            ),
        )

    def running_devices(self) -> set[str]:
        """Target devices of the interfaces of every running domain."""
        return {
            i.get("target_dev")
            for d in self.domains
            if d.get("state") in RUNNING
            for i in d.get("interfaces") or []
            if i.get("target_dev")
        }


@dataclass(frozen=True)
class Change:
    """One binding row to rewrite, with the exact stored text it is guarded on."""

    port_id: str
    host: str
    status: str | None  # "ACTIVE" where the column exists, else None
    stored: str | None  # None: the column holds SQL NULL (guarded as IS NULL)
    new: str | None  # None only when a rollback restores a NULL
    codes: tuple[str, ...]
    device_owner: str
    device_id: str
    vif_type: str
    plug_before: str
    plug_after: str
    binding: Binding | None = field(default=None, compare=False, repr=False)  # the row read
    action: str = "rewrite"  # "delete": a stale INACTIVE row goes (VD206); "restore": back

    @property
    def replug_needed(self) -> bool:
        """Whether the VM's wiring must change for Nova to follow the new details."""
        return self.plug_before != self.plug_after

    def as_dict(self) -> dict:
        return {
            "port_id": self.port_id,
            "host": self.host,
            "status": self.status,
            "codes": list(self.codes),
            "stored_details": self.stored,
            "new_details": None if self.action == "delete" else self.new,
            "device_owner": self.device_owner,
            "device_id": self.device_id,
            "nova_plug_before": self.plug_before,
            "nova_plug_after": self.plug_after,
            "replug_needed": self.replug_needed,
            **({"action": self.action} if self.action != "rewrite" else {}),
        }
