"""Build a large, realistic Neutron cloud on MariaDB, fast, for benchmarking the audit.

    .venv/bin/python benchmarks/generate.py --ports 1000000 [--database vifdoctor_bench]
        [--drift 0.1] [--seed 1]

The schema is the real neutron 29.0.0 one (its migrations, dumped by
``scripts/build-schemas`` into ``.cache/schemas/``; Ocata+ layout). Rows are
written as TSV files and bulk-loaded with ``LOAD DATA LOCAL INFILE`` (foreign key
and unique checks off, each table's rows in primary-key order), which is what makes a million ports
load in well under three minutes on two cores; the cloud builder in
``vifdoctor.demo.builder`` is exact but builds dicts row by row.

What the cloud looks like (see docs/benchmarks.md):

* one host per ~500 ports, one ``Open vSwitch agent`` on each, heartbeat now
  (UTC): ~50% Newton+ agents reporting ``ovs_hybrid_plug: true`` (iptables_hybrid,
  with datapath_type/integration_bridge), ~5% reporting ``false`` (openvswitch
  firewall), the rest pre-Newton agents that report no ``ovs_hybrid_plug``;
  one host in ten is a network node (also DHCP and L3 agents);
* ~1 network (one vxlan segment) per 50 ports, ~1 project per 1000 ports;
* device owners ~90% ``compute:nova`` (on compute hosts; one instance in ten
  has a second port), ~6% ``network:dhcp``, ~4% ``network:router_interface``
  (on network nodes);
* every ACTIVE binding holds what the 29.0.0 OVS mechanism driver writes for
  its host, except a ``--drift`` share that holds drifted details (empty,
  ``{"port_filter": true}``, ``ovs_hybrid_plug: null``, stale after a firewall
  change, malformed text);
* ~1% of compute ports also have an INACTIVE binding on another host (a failed
  live migration), and every binding has its level-0 row in
  ``ml2_port_binding_levels`` (driver openvswitch, the network's segment).

With ``--nova`` (the default; ``--no-nova`` skips it) a Nova cell database
``<database>_nova`` is created from nova 34.0.0's real cell schema
(``nova-manage db sync``, dumped by ``scripts/build-schemas`` into
``.cache/schemas/``) and bulk-loaded the same way: one ``instances`` row per compute port's
``device_id`` (on the binding's host; ~4% stopped), each with its
``instance_info_caches`` row whose ``network_info`` is the VIF list nova 34.0.0
caches (``vifdoctor.demo.nova.vif_entry``'s shape: id, address, network with
its subnet and fixed IP, type, details as Neutron returns them -- ``{}`` for
empty or malformed text --, devname, ovs_interfaceid, ...), plus ~1% soft-deleted
instances no port refers to. A small share of caches is stale (~1% of instances
cache other details than Neutron's, ~0.3% miss a port) and ~0.1% of instances
are soft-deleted while their ports are still bound.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    DEFAULT_DATABASE,
    connect,
    mariadb_args,
    nova_database,
    schema_dump,
)

PORTS_PER_HOST = 500
PORTS_PER_NETWORK = 50
PORTS_PER_PROJECT = 1000
NETWORK_NODE_SHARE = 0.10  # one host in ten serves DHCP/router ports
SHARE_COMPUTE = 0.90
SHARE_DHCP = 0.06  # the rest is network:router_interface
SHARE_SECOND_NIC = 0.10  # compute ports that belong to the previous port's instance
SHARE_INACTIVE = 0.01  # compute ports with an INACTIVE duplicate binding

# Agent kinds: what the OVS agent on a host reports, and what the 29.0.0
# mechanism driver therefore writes into a binding on that host.
HYBRID, OVSFW, LEGACY = "newton+ iptables_hybrid", "newton+ openvswitch fw", "pre-newton"
AGENT_SHARES = ((HYBRID, 0.50), (OVSFW, 0.05), (LEGACY, 0.45))

_DUMP = json.dumps  # Neutron stores vif_details with json.dumps: key order as built
EXPECTED = {
    HYBRID: _DUMP(
        {
            "bridge_name": "br-int",
            "connectivity": "l2",
            "datapath_type": "system",
            "ovs_hybrid_plug": True,
            "port_filter": True,
        }
    ),
    OVSFW: _DUMP(
        {
            "bridge_name": "br-int",
            "connectivity": "l2",
            "datapath_type": "system",
            "ovs_create_tap": True,
            "ovs_hybrid_plug": False,
            "port_filter": True,
        }
    ),
    # A pre-Newton agent reports nothing: the server wrote its own view (Kilo style).
    LEGACY: _DUMP({"port_filter": True, "ovs_hybrid_plug": True}),
}

# Drift kinds and their shares among drifted bindings.
DRIFT_SHARES = (
    ("empty", 0.40),  # migrate_to_ml2 / pre-rc1 Icehouse migration: ''
    ("port_filter only", 0.30),  # final Icehouse migration: {"port_filter": true}
    ("ovs_hybrid_plug null", 0.15),  # Victoria+ server, agent not reporting the key
    ("stale after firewall change", 0.10),  # iptables_hybrid <-> openvswitch
    ("malformed", 0.05),  # hand-written SQL
)
DRIFT_TEXT = {
    "empty": "",
    "port_filter only": _DUMP({"port_filter": True}),
    "ovs_hybrid_plug null": _DUMP(
        {
            "bridge_name": "br-int",
            "connectivity": "l2",
            "datapath_type": "system",
            "ovs_hybrid_plug": None,
            "port_filter": True,
        }
    ),
}
MALFORMED = (
    "{'port_filter': True, 'ovs_hybrid_plug': True}",  # a Python repr pasted into SQL
    '{"port_filter": true, "ovs_hybrid_plug": tru',  # text cut short
)


# Nova: shares among instances (drawn from their own random stream, so the Neutron
# side of a seed is the same with and without --nova).
NOVA_STOPPED = 0.04  # vm_state stopped, power_state SHUTDOWN
NOVA_STALE_DETAILS = 0.01  # the cache holds other details than Neutron's (VD201)
NOVA_MISSING_PORT = 0.003  # the cache lacks one of the instance's ports (VD203)
NOVA_DELETED_WITH_PORTS = 0.001  # soft-deleted, its ports still bound (VD204)
NOVA_EXTRA_DELETED = 0.01  # soft-deleted instances no port refers to
INSTANCE_COLUMNS = (
    "created_at",
    "updated_at",
    "deleted_at",
    "id",
    "user_id",
    "project_id",
    "image_ref",
    "launch_index",
    "power_state",
    "vm_state",
    "memory_mb",
    "vcpus",
    "hostname",
    "host",
    "reservation_id",
    "launched_at",
    "terminated_at",
    "display_name",
    "availability_zone",
    "locked",
    "launched_on",
    "instance_type_id",
    "uuid",
    "task_state",
    "progress",
    "shutdown_terminate",
    "disable_terminate",
    "root_gb",
    "ephemeral_gb",
    "node",
    "deleted",
    "cleaned",
    "hidden",
)
CACHE_COLUMNS = (
    "created_at",
    "updated_at",
    "deleted_at",
    "id",
    "network_info",
    "instance_uuid",
    "deleted",
)


def _vif_template() -> str:
    """One cached VIF as nova 34.0.0 writes it (``vif_entry``), as a %-format string."""
    from vifdoctor.demo.nova import subnet_entry, vif_entry

    vif = vif_entry(
        "@PORT@",
        "ovs",
        {"@DETAILS@": 1},
        network_id="@NET@",
        mac="@MAC@",
        tenant_id="@PROJECT@",
        mtu=1450,
        label="@LABEL@",
        devname="@DEVNAME@",
        subnets=[subnet_entry("@CIDR@", gateway="@GATEWAY@", ips=["@IP@"], dhcp_server="@DHCP@")],
    )
    text = json.dumps(vif).replace("%", "%%")
    text = text.replace('{"@DETAILS@": 1}', "%(details)s")
    for name in (
        "PORT",
        "NET",
        "MAC",
        "PROJECT",
        "LABEL",
        "DEVNAME",
        "CIDR",
        "GATEWAY",
        "IP",
        "DHCP",
    ):
        text = text.replace(f"@{name}@", f"%({name.lower()})s")
    # subnet_entry guessed the IP version from the placeholder: these are IPv4 subnets.
    return text.replace('"version": null', '"version": 4')


class NovaBuilder:
    """Instances and their info caches, written as TSV while the ports are generated."""

    def __init__(self, folder: Path, seed: int, stamp: str):
        self.rng = random.Random(seed + 7919)
        self.new_uuid = _uuid_factory(self.rng)
        self.stamp = stamp
        self.template = _vif_template()
        self.inst = Tsv(folder / "instances.tsv", "instances", INSTANCE_COLUMNS)
        self.cache = Tsv(folder / "instance_info_caches.tsv", "instance_info_caches", CACHE_COLUMNS)
        self.next_id = 1
        self.current: tuple[str, str, str] | None = None  # (uuid, host, project)
        self.vifs: list[tuple[str, str]] = []  # (port id, details as Neutron returns them)
        self.vif_text: list[str] = []
        self.details_json: dict[str, str] = {}
        self.counts: Counter = Counter()

    def neutron_details(self, text: str) -> str:
        """``binding:vif_details`` as Neutron's API returns the stored text (JSON)."""
        out = self.details_json.get(text)
        if out is None:
            try:
                value = json.loads(text) if text else {}
            except ValueError:
                value = {}
            out = self.details_json[text] = json.dumps(value if isinstance(value, dict) else {})
        return out

    def port(
        self,
        device: str,
        host: str,
        project: str,
        port_id: str,
        mac: str,
        network: tuple[str, str, int],
        details: str,
        ip_index: int,
    ) -> None:
        if self.current is None or self.current[0] != device:
            self.flush()
            self.current = (device, host, project)
        net_id, label, j = network
        prefix = f"10.{(j >> 8) & 255}.{j & 255}"
        self.vifs.append((port_id, details))
        self.vif_text.append(
            self.template
            % {
                "port": port_id,
                "net": net_id,
                "mac": mac,
                "project": project,
                "label": label,
                "devname": ("tap" + port_id)[:14],
                "cidr": prefix + ".0/24",
                "gateway": prefix + ".1",
                "dhcp": prefix + ".2",
                "ip": f"{prefix}.{3 + ip_index % 250}",
                "details": self.neutron_details(details),
            }
        )

    def _instance(
        self, uuid: str, host: str, project: str, *, deleted: bool, stopped: bool, network_info: str
    ) -> None:
        row_id = self.next_id
        self.next_id += 1
        stamp = self.stamp
        name = "vm-" + uuid[:8]
        vm_state, power = ("stopped", 4) if stopped else ("active", 1)
        if deleted:
            vm_state, power = "deleted", 0
        gone = stamp if deleted else None
        self.inst.add(
            "2024-01-01 00:00:00",
            stamp,
            gone,
            row_id,
            "u" + project[:31],
            project,
            "6f3b1c9e-2a41-4c35-9b0e-5d4c2a1e7f00",
            0,
            power,
            vm_state,
            2048,
            1,
            name,
            host,
            f"r-{uuid[:8]}",
            "2024-01-01 00:00:05",
            gone,
            name,
            "nova",
            0,
            host,
            2,
            uuid,
            None,
            0,
            0,
            0,
            20,
            0,
            host,
            row_id if deleted else 0,
            1 if deleted else 0,
            0,
        )
        self.cache.add(
            "2024-01-01 00:00:05", stamp, gone, row_id, network_info, uuid, row_id if deleted else 0
        )

    def flush(self) -> None:
        """Write the instance whose ports were just generated (and maybe a deleted one)."""
        if self.current is None:
            return
        uuid, host, project = self.current
        rand = self.rng.random
        if rand() < NOVA_EXTRA_DELETED:
            self._instance(
                self.new_uuid(), host, project, deleted=True, stopped=False, network_info="[]"
            )
            self.counts["deleted, no port"] += 1
        texts = self.vif_text
        r = rand()
        if r < NOVA_STALE_DETAILS:
            # cached before Neutron's row changed: empty details where Neutron has some,
            # the pre-Newton server's view where Neutron's text is empty or broken
            port_id, details = self.vifs[0]
            old = (
                "{}"
                if self.neutron_details(details) != "{}"
                else '{"port_filter": true, "ovs_hybrid_plug": true}'
            )
            texts = [
                texts[0].replace(
                    '"details": ' + self.neutron_details(details), '"details": ' + old, 1
                ),
                *texts[1:],
            ]
            self.counts["stale details"] += 1
        elif r < NOVA_STALE_DETAILS + NOVA_MISSING_PORT:
            texts = texts[:-1]
            self.counts["cache missing a port"] += 1
        deleted = (
            NOVA_STALE_DETAILS + NOVA_MISSING_PORT
            <= r
            < (NOVA_STALE_DETAILS + NOVA_MISSING_PORT + NOVA_DELETED_WITH_PORTS)
        )
        if deleted:
            self.counts["deleted, ports still bound"] += 1
        stopped = not deleted and rand() < NOVA_STOPPED
        self.counts["stopped"] += stopped
        self._instance(
            uuid,
            host,
            project,
            deleted=deleted,
            stopped=stopped,
            network_info="[" + ", ".join(texts) + "]",
        )
        self.counts["instances"] += 1
        self.counts["vifs"] += len(self.vifs)
        self.current, self.vifs, self.vif_text = None, [], []

    def files(self) -> list[Tsv]:
        self.flush()
        return [self.inst, self.cache]


def _ovs_configurations(kind: str, index: int, devices: int, network_node: bool) -> str:
    """An OVS agent's ``configurations`` as a real agent of that kind reports it."""
    ip = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
    base: dict = {
        "arp_responder_enabled": False,
        "bridge_mappings": {"physnet1": "br-ex"} if network_node else {},
        "devices": devices,
        "enable_distributed_routing": False,
        "extensions": [],
        "in_distributed_mode": False,
        "l2_population": False,
        "log_agent_heartbeats": False,
        "tunnel_types": ["vxlan"],
        "tunneling_ip": ip,
    }
    if kind == LEGACY:
        return _DUMP(base)
    base.update(
        {
            "baremetal_smartnic": False,
            "datapath_type": "system",
            "integration_bridge": "br-int",
            "ovs_capabilities": {
                "datapath_types": ["netdev", "system"],
                "iface_types": [
                    "bareudp",
                    "erspan",
                    "geneve",
                    "gre",
                    "gtpu",
                    "internal",
                    "ip6erspan",
                    "ip6gre",
                    "lisp",
                    "patch",
                    "stt",
                    "system",
                    "tap",
                    "vxlan",
                ],
            },
            "ovs_hybrid_plug": kind == HYBRID,
            "resource_provider_bandwidths": {},
            "resource_provider_hypervisors": {},
            "resource_provider_inventory_defaults": {
                "allocation_ratio": 1.0,
                "min_unit": 1,
                "step_size": 1,
                "reserved": 0,
            },
            "vhostuser_socket_dir": "/var/run/openvswitch",
        }
    )
    return _DUMP(base)


def _uuid_factory(rng: random.Random):
    bits = rng.getrandbits

    def new() -> str:
        h = f"{bits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    return new


def _pick(rng: random.Random, shares: tuple[tuple[str, float], ...]) -> str:
    r = rng.random()
    for name, share in shares:
        if r < share:
            return name
        r -= share
    return shares[-1][0]


@dataclass
class Host:
    name: str
    kind: str
    network_node: bool
    devices: int = 0


@dataclass
class Made:
    """What was generated, for the summary."""

    hosts: list[Host] = field(default_factory=list)
    networks: int = 0
    projects: int = 0
    ports: int = 0
    owners: Counter = field(default_factory=Counter)
    active: int = 0
    inactive: int = 0
    levels: int = 0
    drift: Counter = field(default_factory=Counter)
    agents: int = 0
    rows: dict[str, int] = field(default_factory=dict)


class Tsv:
    """Rows for LOAD DATA: tab-separated, \\N for NULL (values never hold tabs/newlines)."""

    def __init__(self, path: Path, table: str, columns: tuple[str, ...]):
        self.path, self.table, self.columns = path, table, columns
        self.lines: list[str] = []

    def add(self, *values: object) -> None:
        self.lines.append("\t".join("\\N" if v is None else str(v) for v in values))

    def add_line(self, line: str) -> None:
        self.lines.append(line)

    def write(self) -> int:
        lines = self.lines
        with open(self.path, "w", encoding="utf-8") as f:
            for start in range(0, len(lines), 10000):  # no second copy of a big table
                f.write("\n".join(lines[start : start + 10000]))
                f.write("\n")
        n = len(self.lines)
        self.lines = []
        return n


def build_files(
    ports: int, drift: float, seed: int, folder: Path, nova: NovaBuilder | None = None
) -> tuple[list[Tsv], Made]:
    """Write one TSV per table, each in primary-key order (Nova's rows into ``nova``)."""
    rng = random.Random(seed)
    new_uuid = _uuid_factory(rng)
    made = Made(ports=ports)
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    created = "2023-04-01 09:00:00"

    # Hosts and their agents.
    n_hosts = max(2, math.ceil(ports / PORTS_PER_HOST))
    n_network = max(1, round(n_hosts * NETWORK_NODE_SHARE))
    hosts = []
    for i in range(n_hosts):
        network_node = i >= n_hosts - n_network
        name = f"network-{i - (n_hosts - n_network):04d}" if network_node else f"compute-{i:05d}"
        kind = HYBRID if network_node else _pick(rng, AGENT_SHARES)
        hosts.append(Host(name, kind, network_node))
    computes = [h for h in hosts if not h.network_node]
    netnodes = [h for h in hosts if h.network_node]
    # "a few" openvswitch-firewall hosts even in a small cloud.
    if not any(h.kind == OVSFW for h in computes) and len(computes) >= 4:
        computes[1].kind = OVSFW
    made.hosts = hosts

    # Projects, networks, segments, routers.
    n_projects = max(1, ports // PORTS_PER_PROJECT)
    projects = [f"{rng.getrandbits(128):032x}" for _ in range(n_projects)]
    n_networks = max(1, ports // PORTS_PER_NETWORK)
    networks = [(new_uuid(), rng.choice(projects), new_uuid()) for _ in range(n_networks)]
    routers = [new_uuid() for _ in range(max(1, ports // 200))]
    dhcp_prefix = {h.name: "dhcp" + str(uuid.uuid5(uuid.NAMESPACE_DNS, h.name)) for h in netnodes}
    made.networks, made.projects = n_networks, n_projects

    std = Tsv(
        folder / "standardattributes.tsv",
        "standardattributes",
        ("id", "resource_type", "created_at", "updated_at", "description", "revision_number"),
    )
    net_t = Tsv(
        folder / "networks.tsv",
        "networks",
        ("project_id", "id", "name", "status", "admin_state_up", "mtu", "standard_attr_id"),
    )
    seg_t = Tsv(
        folder / "networksegments.tsv",
        "networksegments",
        (
            "id",
            "network_id",
            "network_type",
            "physical_network",
            "segmentation_id",
            "is_dynamic",
            "segment_index",
            "standard_attr_id",
        ),
    )
    agent_t = Tsv(
        folder / "agents.tsv",
        "agents",
        (
            "id",
            "agent_type",
            "binary",
            "topic",
            "host",
            "admin_state_up",
            "created_at",
            "started_at",
            "heartbeat_timestamp",
            "configurations",
            "load",
            "availability_zone",
            "resources_synced",
        ),
    )
    port_t = Tsv(
        folder / "ports.tsv",
        "ports",
        (
            "project_id",
            "id",
            "name",
            "network_id",
            "mac_address",
            "admin_state_up",
            "status",
            "device_id",
            "device_owner",
            "standard_attr_id",
            "ip_allocation",
        ),
    )
    bind_t = Tsv(
        folder / "ml2_port_bindings.tsv",
        "ml2_port_bindings",
        ("port_id", "host", "vif_type", "vnic_type", "profile", "vif_details", "status"),
    )
    level_t = Tsv(
        folder / "ml2_port_binding_levels.tsv",
        "ml2_port_binding_levels",
        ("port_id", "host", "level", "driver", "segment_id"),
    )

    sid = 0
    labels = {}
    for i, (net_id, project, _seg) in enumerate(sorted(networks)):
        labels[net_id] = f"net-{i:06d}"
        sid += 1
        std.add(sid, "networks", created, created, "", 1)
        net_t.add(project, net_id, f"net-{i:06d}", "ACTIVE", 1, 1450, sid)
    for i, (net_id, _project, seg_id) in sorted(enumerate(networks), key=lambda x: x[1][2]):
        sid += 1
        std.add(sid, "networksegments", created, created, "", 0)
        seg_t.add(seg_id, net_id, "vxlan", None, 1000 + i, 0, 0, sid)

    # Ports, in primary-key order; attributes drawn independently of the order.
    port_ids = sorted(new_uuid() for _ in range(ports))
    rand = rng.random
    n_computes, n_netnodes = len(computes), len(netnodes)
    compute_names = [h.name for h in computes]
    compute_expected = [EXPECTED[h.kind] for h in computes]
    compute_stale = [EXPECTED[HYBRID if h.kind == OVSFW else OVSFW] for h in computes]
    drift_names = [name for name, _ in DRIFT_SHARES]
    drift_cum = []
    acc = 0.0
    for _name, share in DRIFT_SHARES:
        acc += share
        drift_cum.append(acc)
    ports_lines, bind_lines, level_lines = port_t.lines, bind_t.lines, level_t.lines
    std_lines = std.lines
    owners = made.owners
    drift_count = made.drift
    last_instance, last_host = None, 0
    inactive = 0
    for index, pid in enumerate(port_ids):
        sid += 1
        j = int(rand() * n_networks)
        net_id, project, seg_id = networks[j]
        r = rand()
        if r < SHARE_COMPUTE:
            owner = "compute:nova"
            if last_instance is not None and rand() < SHARE_SECOND_NIC:
                device, h = last_instance, last_host
            else:
                device, h = new_uuid(), int(rand() * n_computes)
                last_instance, last_host = device, h
            host = compute_names[h]
            expected = compute_expected[h]
            stale = compute_stale[h]
        else:
            owner = "network:dhcp" if r < SHARE_COMPUTE + SHARE_DHCP else "network:router_interface"
            node = netnodes[int(rand() * n_netnodes)]
            host = node.name
            expected, stale = EXPECTED[HYBRID], EXPECTED[OVSFW]
            h = -1
            if owner == "network:dhcp":
                device = f"{dhcp_prefix[host]}-{net_id}"
            else:
                device = routers[int(rand() * len(routers))]
        owners[owner] += 1
        if rand() < drift:
            d = rand()
            kind = drift_names[-1]
            for name, limit in zip(drift_names, drift_cum, strict=True):
                if d < limit:
                    kind = name
                    break
            drift_count[kind] += 1
            if kind == "stale after firewall change":
                details = stale
            elif kind == "malformed":
                details = MALFORMED[int(rand() * len(MALFORMED))]
            else:
                details = DRIFT_TEXT[kind]
        else:
            details = expected
        mac = f"fa:16:3e:{(index >> 16) & 255:02x}:{(index >> 8) & 255:02x}:{index & 255:02x}"
        std_lines.append(f"{sid}\tports\t{created}\t{created}\t\t2")
        ports_lines.append(
            f"{project}\t{pid}\t\t{net_id}\t{mac}\t1\tACTIVE\t{device}\t{owner}\t{sid}\timmediate"
        )
        if nova is not None and h >= 0:
            nova.port(device, host, project, pid, mac, (net_id, labels[net_id], j), details, index)
        rows = [(host, details, "ACTIVE")]
        if h >= 0 and n_computes > 1 and rand() < SHARE_INACTIVE:
            other = (h + 1 + int(rand() * (n_computes - 1))) % n_computes
            rows.append((compute_names[other], compute_expected[other], "INACTIVE"))
            inactive += 1
            rows.sort()
        for bhost, bdetails, status in rows:
            bind_lines.append(f"{pid}\t{bhost}\tovs\tnormal\t\t{bdetails}\t{status}")
            level_lines.append(f"{pid}\t{bhost}\t0\topenvswitch\t{seg_id}")
    made.active, made.inactive = ports, inactive
    made.levels = ports + inactive

    devices = Counter(line.split("\t", 2)[1] for line in bind_lines)
    for i, h in enumerate(sorted(hosts, key=lambda h: h.name)):
        h.devices = devices.get(h.name, 0)
        agent_rows = [
            (
                "Open vSwitch agent",
                "neutron-openvswitch-agent",
                "N/A",
                _ovs_configurations(h.kind, i + 1, h.devices, h.network_node),
                None,
            )
        ]
        if h.network_node:
            agent_rows += [
                (
                    "DHCP agent",
                    "neutron-dhcp-agent",
                    "dhcp_agent",
                    _DUMP(
                        {
                            "dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq",
                            "dhcp_lease_duration": 86400,
                            "log_agent_heartbeats": False,
                            "networks": n_networks // max(1, n_network),
                            "ports": owners["network:dhcp"] // max(1, n_network),
                            "subnets": n_networks // max(1, n_network),
                        }
                    ),
                    "nova",
                ),
                (
                    "L3 agent",
                    "neutron-l3-agent",
                    "l3_agent",
                    _DUMP(
                        {
                            "agent_mode": "legacy",
                            "ex_gw_ports": 0,
                            "floating_ips": 0,
                            "interfaces": owners["network:router_interface"] // max(1, n_network),
                            "log_agent_heartbeats": False,
                            "routers": len(routers) // max(1, n_network),
                        }
                    ),
                    "nova",
                ),
            ]
        for atype, binary, topic, conf, az in agent_rows:
            aid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{atype}/{h.name}"))
            agent_t.add(aid, atype, binary, topic, h.name, 1, created, stamp, stamp, conf, 0, az, 1)
    agent_t.lines.sort()
    made.agents = len(agent_t.lines)
    return [std, net_t, seg_t, agent_t, port_t, bind_t, level_t], made


def load(database: str, files: list[Tsv], made: Made) -> dict[str, float]:
    """LOAD DATA each file, parents first; returns seconds per table."""
    timings = {}
    conn = connect(database, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks=0, unique_checks=0")
            for tsv in files:
                t0 = time.perf_counter()
                cols = ", ".join(f"`{c}`" for c in tsv.columns)
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE `{tsv.table}` CHARACTER SET utf8mb4 "
                    f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                    f"({cols})",
                    (str(tsv.path),),
                )
                made.rows[tsv.table] = cur.rowcount
                conn.commit()
                timings[tsv.table] = time.perf_counter() - t0
            t0 = time.perf_counter()
            cur.execute("ANALYZE TABLE " + ", ".join(f"`{t.table}`" for t in files))
            cur.fetchall()
            timings["analyze"] = time.perf_counter() - t0
            cur.execute("SET SESSION foreign_key_checks=1, unique_checks=1")
    finally:
        conn.close()
    return timings


def _recreate_from(database: str, schema_file: Path) -> None:
    """Drop and create ``database``, then load a schema dump into it."""
    conn = connect(None, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute(
                f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
            )
    finally:
        conn.close()
    with open(schema_file, "rb") as schema:
        subprocess.run(mariadb_args(database), stdin=schema, check=True)


def schemas(nova: bool) -> tuple[Path, Path | None]:
    """neutron 29.0.0's and nova 34.0.0's real schemas, built once by scripts/build-schemas.

    VIFDOCTOR_BENCH_SCHEMA / VIFDOCTOR_BENCH_NOVA_SCHEMA name other dump files instead.
    """
    neutron = schema_dump("neutron-mariadb", "VIFDOCTOR_BENCH_SCHEMA")
    return neutron, schema_dump("nova-cell", "VIFDOCTOR_BENCH_NOVA_SCHEMA") if nova else None


def generate(
    ports: int,
    database: str = DEFAULT_DATABASE,
    drift: float = 0.1,
    seed: int = 1,
    quiet: bool = False,
    nova: bool = True,
    tweak: Callable[[list[Tsv], Made], None] | None = None,
) -> Made:
    """Build the cloud (and its Nova cell in ``<database>_nova`` unless ``nova`` is False).

    ``tweak`` may rewrite the generated rows before they are loaded (benchmarks/repair.py
    uses it to plant an exact number of drifted rows).
    """
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    t_start = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="vifdoctor-bench-"))
    nova_made = None
    try:
        neutron_schema, nova_schema = schemas(nova)
        t0 = time.perf_counter()
        _recreate_from(database, neutron_schema)
        t_schema = time.perf_counter() - t0
        say(f"schema: neutron 29.0.0 ({neutron_schema}) in {database}: {t_schema:.1f} s")
        if nova_schema is not None:
            t0 = time.perf_counter()
            _recreate_from(nova_database(database), nova_schema)
            say(
                f"schema: nova 34.0.0 cell ({nova_schema}) in "
                f"{nova_database(database)}: {time.perf_counter() - t0:.1f} s"
            )
        t0 = time.perf_counter()
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        nova_made = NovaBuilder(folder, seed, stamp) if nova else None
        files, made = build_files(ports, drift, seed, folder, nova_made)
        nova_files = nova_made.files() if nova_made else []
        if tweak is not None:
            tweak(files, made)
        for tsv in files + nova_files:
            tsv.write()
        t_build = time.perf_counter() - t0
        say(f"rows built and written as TSV: {t_build:.1f} s")
        timings = load(database, files, made)
        say("loaded: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        if nova_files:
            timings = load(nova_database(database), nova_files, made)
            say("loaded (nova): " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    total = time.perf_counter() - t_start
    kinds = Counter(h.kind for h in made.hosts if not h.network_node)
    say(
        f"hosts: {len(made.hosts)} ({sum(not h.network_node for h in made.hosts)} compute: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        + f"; {sum(h.network_node for h in made.hosts)} network nodes, {HYBRID})"
    )
    say(
        f"agents: {made.agents}; networks: {made.networks} (one vxlan segment each); "
        f"projects: {made.projects}"
    )
    say(
        f"ports: {made.ports} (" + ", ".join(f"{k} {v}" for k, v in made.owners.most_common()) + ")"
    )
    drifted = sum(made.drift.values())
    say(
        f"bindings: {made.active} ACTIVE + {made.inactive} INACTIVE = "
        f"{made.active + made.inactive}; levels: {made.levels}"
    )
    say(
        f"drifted ACTIVE bindings: {drifted} ({drifted / max(1, made.active):.1%}): "
        + ", ".join(f"{k} {v}" for k, v in made.drift.most_common())
    )
    say("rows loaded: " + ", ".join(f"{k} {v}" for k, v in made.rows.items()))
    say(f"total: {total:.1f} s")
    return made


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, required=True, help="number of ports")
    p.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        help=f"database to drop and recreate (default {DEFAULT_DATABASE})",
    )
    p.add_argument(
        "--drift",
        type=float,
        default=0.1,
        help="share of ACTIVE bindings with drifted vif_details (default 0.1)",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument(
        "--nova",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also build the Nova cell database <database>_nova (default: yes)",
    )
    args = p.parse_args(argv)
    if args.ports < 1 or not 0 <= args.drift <= 1:
        p.error("--ports must be >= 1 and --drift within [0, 1]")
    generate(args.ports, args.database, args.drift, args.seed, nova=args.nova)
    return 0


if __name__ == "__main__":
    sys.exit(main())
