"""The demo cloud that reproduces the Icehouse incident (seed/incident-en.md).

The eight compute ports keep the seed's UUIDs so the demo output can be set
side by side with the operator's ``SELECT``: six Havana-era ports with empty
vif_details, two Icehouse-bound hybrid ports. Around them sit the rows the
operator's blanket UPDATE must NOT have touched (DHCP and router ports, a
binding_failed port, a Linux bridge port) and one row whose JSON is cut short,
so the audit meets every case it has to tell apart. Everything is fixed:
no random ids, no clock beyond the agents' heartbeats set at write time.
"""

from __future__ import annotations

import datetime
import json
import os

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
    _mac_for,
    utcnow,
    write_cloud,
)
from vifdoctor.demo.nova import (
    POWER_NOSTATE,
    POWER_SHUTDOWN,
    InstanceSpec,
    create_nova_schema,
    vif_entry,
    write_instances,
)
from vifdoctor.demo.schemas import create_schema
from vifdoctor.errors import VifdoctorError

LAYOUT = "icehouse"

PROJECT_ID = "4c1f6b0e8a2d4e7f9b3a5c6d7e8f9012"
NETWORK_ID = "74d2abf4-db8b-4fb8-bf29-154a2be7c433"
SEGMENT_ID = "d3685732-365f-4a5b-baed-8adb7b2decf3"
ROUTER_ID = "716f1817-9c52-44a0-a873-218a603e3f4e"

# What the Icehouse OVS mechanism driver wrote (seed), kept as the exact text.
HYBRID_DETAILS = '{"port_filter": true, "ovs_hybrid_plug": true}'
LINUXBRIDGE_DETAILS = '{"port_filter": true}'
MALFORMED_DETAILS = '{"port_filter": true, "ovs_hybrid_pl'

# port id -> (host, vif_details, instance uuid); order and ids as in the seed.
_SEED_PORTS: dict[str, tuple[str, str, str]] = {
    "0cc863d2-adf4-49b7-9c28-1d0cf0ffd7d4": (
        "compute000",
        "",
        "6f952f0c-62fd-43a8-81fa-0c178dab8eb9",
    ),
    "2f2782dd-cb6b-4a37-a384-8c4883e7243d": (
        "compute000",
        "",
        "d619ce09-03ba-4fd0-813f-9cfeaa88b136",
    ),
    "30cb2d41-62df-44db-9faf-d6638438e71c": (
        "compute001",
        "",
        "71743a73-2873-441e-8930-b37e92233762",
    ),
    "901b564b-5250-4215-bcad-2630b7701a85": (
        "compute001",
        "",
        "be47fb67-06bd-4bea-a6d1-5f426dcab52b",
    ),
    "c157a2bb-0a42-4e2a-8354-ec0560d9e28b": (
        "compute002",
        "",
        "057d5218-816e-4b18-bc85-6ca0fd45976e",
    ),
    "c5ab2b09-b8cb-4381-83d4-a14a7207fdeb": (
        "compute001",
        HYBRID_DETAILS,
        "89fdc12d-fe68-4401-8f2f-fe34516e896d",
    ),
    "c8e328fd-0279-46ff-ba45-177b95b97103": (
        "compute002",
        "",
        "ee534928-6405-4ebf-bb17-2eb007c28146",
    ),
    "e14dbfd5-670e-405f-aaec-3796d1df1c34": (
        "compute000",
        HYBRID_DETAILS,
        "3ec57c66-408b-4c10-b9ab-33d27affc999",
    ),
}

INCIDENT_PORT_IDS: tuple[str, ...] = tuple(_SEED_PORTS)
EMPTY_DETAIL_PORT_IDS: tuple[str, ...] = tuple(
    pid for pid, (_, details, _) in _SEED_PORTS.items() if details == ""
)
HYBRID_PORT_IDS: tuple[str, ...] = tuple(
    pid for pid, (_, details, _) in _SEED_PORTS.items() if details == HYBRID_DETAILS
)

DHCP_PORT_ID = "5b170777-7adc-4706-a6cc-dd56d4666024"
ROUTER_PORT_ID = "c741e065-ee70-46a8-a520-3ab8def9faa9"
BINDING_FAILED_PORT_ID = "435dfe10-70ff-4db8-9dff-5b4e8d8381ab"
LINUXBRIDGE_PORT_ID = "db09a2b7-cd5d-4101-b3c5-31f9368cb9f3"
MALFORMED_PORT_ID = "2fc2c7fe-b9c5-4efc-99c9-48789b986d56"

COMPUTE_HOSTS = ("compute000", "compute001", "compute002")
NETWORK_HOST = "network000"
LINUXBRIDGE_HOST = "compute-lb000"


def _ovs_agent_conf(index: int, devices: int) -> dict:
    """An Icehouse OVS agent's report: it had no ovs_hybrid_plug key at all."""
    return {
        "bridge_mappings": {},
        "tunnel_types": ["vxlan"],
        "tunneling_ip": f"10.0.0.{11 + index}",
        "l2_population": False,
        "devices": devices,
    }


def _ovs_binding(host: str, details: str) -> BindingSpec:
    return BindingSpec(
        host=host, vif_type="ovs", vif_details=details, driver="openvswitch", segment_id=SEGMENT_ID
    )


def _vm_port(port_id: str, instance: str, binding: BindingSpec) -> PortSpec:
    return PortSpec(
        id=port_id,
        network_id=NETWORK_ID,
        device_owner="compute:nova",
        device_id=instance,
        project_id=PROJECT_ID,
        binding=binding,
    )


def incident_cloud() -> CloudSpec:
    """The incident as a CloudSpec, for the ``icehouse`` layout (works on any)."""
    network = NetworkSpec(
        id=NETWORK_ID,
        name="private",
        project_id=PROJECT_ID,
        segments=[SegmentSpec(id=SEGMENT_ID, network_type="vxlan", segmentation_id=1001)],
    )

    ports = [
        _vm_port(pid, instance, _ovs_binding(host, details))
        for pid, (host, details, instance) in _SEED_PORTS.items()
    ]
    ports += [
        PortSpec(
            id=DHCP_PORT_ID,
            network_id=NETWORK_ID,
            device_owner="network:dhcp",
            # Neutron's DHCP device_id: 'dhcp' + uuid5(host) + '-' + network id.
            device_id=f"dhcp0061ed30-160e-507c-9a4c-2f82fee3ac18-{NETWORK_ID}",
            project_id=PROJECT_ID,
            binding=_ovs_binding(NETWORK_HOST, HYBRID_DETAILS),
        ),
        PortSpec(
            id=ROUTER_PORT_ID,
            network_id=NETWORK_ID,
            device_owner="network:router_interface",
            device_id=ROUTER_ID,
            project_id=PROJECT_ID,
            binding=_ovs_binding(NETWORK_HOST, HYBRID_DETAILS),
        ),
        _vm_port(
            BINDING_FAILED_PORT_ID,
            "a3b0f6de-2c1e-4f0a-9d7b-5e8c4b1a6f20",
            BindingSpec(
                host="compute001",
                vif_type="binding_failed",
                vif_details="",
                driver=None,
                segment_id=None,
            ),
        ),
        _vm_port(
            LINUXBRIDGE_PORT_ID,
            "b7e4c2a9-0d3f-4e6b-8a1c-9f2d5e7b3c41",
            BindingSpec(
                host=LINUXBRIDGE_HOST,
                vif_type="bridge",
                vif_details=LINUXBRIDGE_DETAILS,
                driver="linuxbridge",
                segment_id=SEGMENT_ID,
            ),
        ),
        _vm_port(
            MALFORMED_PORT_ID,
            "c9d1e3f5-7a2b-4c6d-8e0f-1a3b5c7d9e02",
            _ovs_binding("compute002", MALFORMED_DETAILS),
        ),
    ]

    devices = {
        h: sum(
            1 for p in ports if p.binding and p.binding.host == h and p.binding.vif_type == "ovs"
        )
        for h in (*COMPUTE_HOSTS, NETWORK_HOST)
    }
    agents = [
        AgentSpec(
            host=host,
            agent_type="Open vSwitch agent",
            configurations=_ovs_agent_conf(i, devices[host]),
        )
        for i, host in enumerate(COMPUTE_HOSTS)
    ]
    agents += [
        AgentSpec(
            host=NETWORK_HOST,
            agent_type="Open vSwitch agent",
            configurations=_ovs_agent_conf(len(COMPUTE_HOSTS), devices[NETWORK_HOST]),
        ),
        AgentSpec(
            host=NETWORK_HOST,
            agent_type="DHCP agent",
            configurations={
                "dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq",
                "use_namespaces": True,
                "dhcp_lease_duration": 86400,
                "networks": 1,
                "subnets": 1,
                "ports": 1,
            },
        ),
        AgentSpec(
            host=NETWORK_HOST,
            agent_type="L3 agent",
            configurations={
                "use_namespaces": True,
                "router_id": "",
                "handle_internal_only_routers": True,
                "gateway_external_network_id": "",
                "interface_driver": "neutron.agent.linux.interface.OVSInterfaceDriver",
                "routers": 1,
                "interfaces": 1,
                "floating_ips": 0,
                "ex_gw_ports": 0,
            },
        ),
        # Icehouse linuxbridge agent with VXLAN: interface_mappings + tunnel keys.
        AgentSpec(
            host=LINUXBRIDGE_HOST,
            agent_type="Linux bridge agent",
            configurations={
                "interface_mappings": {"physnet1": "eth1"},
                "tunneling_ip": "10.0.0.21",
                "tunnel_types": ["vxlan"],
                "l2_population": False,
                "devices": 1,
            },
        ),
    ]
    return CloudSpec(networks=[network], agents=agents, ports=ports)


def install_incident(engine: Engine, layout: str = LAYOUT) -> CloudSpec:
    """Create the layout's tables and write the incident cloud into them."""
    create_schema(engine, layout)
    cloud = incident_cloud()
    write_cloud(engine, cloud)
    return cloud


# ------------------------------------------------------------------------ Nova side
#
# What Nova believes about the same cloud: one instance per compute port of
# incident_cloud() (device_id = instance uuid), on the port's host, whose
# network_info cache holds that port's VIF with the details Neutron returns
# today ({} for the empty rows and for the malformed row, which Neutron cannot
# parse; the parsed object otherwise). Five Nova-only faults sit on top,
# each on its own instance, without adding or changing any Neutron row.

#: The Keystone user who owns every instance (Nova's instances.user_id).
USER_ID = "9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"
#: A Havana-era VM that is shut off (vm_state stopped, power_state 4): it gets
#: re-plugged from its details on the next start.
STOPPED_INSTANCE = _SEED_PORTS["30cb2d41-62df-44db-9faf-d6638438e71c"][2]
#: Nova puts this hybrid port's VM on compute002, Neutron binds it to compute001
#: (task_state None: no migration under way that would explain it).
HOST_MISMATCH_INSTANCE = _SEED_PORTS["c5ab2b09-b8cb-4381-83d4-a14a7207fdeb"][2]
HOST_MISMATCH_NOVA_HOST = "compute002"
#: The VM of e14dbfd5 caches a second VIF, for a port Neutron does not have.
EXTRA_VIF_INSTANCE = _SEED_PORTS["e14dbfd5-670e-405f-aaec-3796d1df1c34"][2]
EXTRA_VIF_PORT_ID = "f3a9b1c7-5d2e-4b8a-9c6f-0e1d2a3b4c5d"
#: The Linux bridge port's VM is soft-deleted in Nova: its binding is an orphan.
ORPHAN_INSTANCE = "b7e4c2a9-0d3f-4e6b-8a1c-9f2d5e7b3c41"
#: An empty-details VM whose cache still says hybrid: Neutron has '' (stale cache).
STALE_CACHE_INSTANCE = _SEED_PORTS["2f2782dd-cb6b-4a37-a384-8c4883e7243d"][2]
STALE_CACHE_DETAILS: dict = {"port_filter": True, "ovs_hybrid_plug": True}
#: The binding_failed port's VM: its build failed, so Nova has it in ERROR.
ERROR_INSTANCE = "a3b0f6de-2c1e-4f0a-9d7b-5e8c4b1a6f20"
#: The malformed-details port's VM: Neutron returns {} for that text, and so does the cache.
MALFORMED_DETAILS_INSTANCE = "c9d1e3f5-7a2b-4c6d-8e0f-1a3b5c7d9e02"


def _neutron_details(text: str | None) -> dict:
    """What neutron's API returns for a vif_details column: {} when NULL, empty or unparsable."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _port_macs(cloud: CloudSpec) -> dict[str, str]:
    """The MACs write_cloud derives for ports without one (same order, same collisions)."""
    taken: set[tuple[str, str]] = set()
    macs = {}
    for p in cloud.ports:
        if p.mac_address:
            taken.add((p.network_id, p.mac_address))
            macs[p.id] = p.mac_address
        else:
            macs[p.id] = _mac_for(p.id, taken, p.network_id)
    return macs


def incident_instances() -> list[InstanceSpec]:
    """Nova's view of incident_cloud(): one instance per compute port, plus the faults above."""
    cloud = incident_cloud()
    macs = _port_macs(cloud)
    specs: list[InstanceSpec] = []
    for index, port in enumerate(p for p in cloud.ports if p.device_owner.startswith("compute:")):
        binding = port.binding
        if binding is None:  # an unbound port gives nova nothing to cache
            continue
        details = _neutron_details(binding.vif_details)
        uuid = port.device_id
        if uuid == STALE_CACHE_INSTANCE:
            details = dict(STALE_CACHE_DETAILS)
        bound = binding.vif_type not in ("unbound", "binding_failed")
        vifs = [
            vif_entry(
                port.id,
                binding.vif_type,
                details,
                network_id=port.network_id,
                mac=macs[port.id],
                vnic_type=binding.vnic_type,
                active=bound,
                tenant_id=PROJECT_ID,
            )
        ]
        if uuid == EXTRA_VIF_INSTANCE:
            vifs.append(
                vif_entry(
                    EXTRA_VIF_PORT_ID,
                    "ovs",
                    json.loads(HYBRID_DETAILS),
                    network_id=NETWORK_ID,
                    mac="fa:16:3e:0e:1d:2a",
                    tenant_id=PROJECT_ID,
                )
            )
        spec = InstanceSpec(
            uuid=uuid,
            host=binding.host,
            display_name=f"vm{index:03d}",
            project_id=PROJECT_ID,
            user_id=USER_ID,
            network_info=vifs,
        )
        if uuid == STOPPED_INSTANCE:
            spec.vm_state, spec.power_state = "stopped", POWER_SHUTDOWN
        elif uuid == HOST_MISMATCH_INSTANCE:
            spec.host = spec.node = HOST_MISMATCH_NOVA_HOST
        elif uuid == ORPHAN_INSTANCE:
            # What nova's delete leaves: vm_state deleted, NOSTATE, soft-deleted rows.
            spec.vm_state, spec.power_state, spec.deleted = "deleted", POWER_NOSTATE, True
        elif uuid == ERROR_INSTANCE:
            spec.vm_state, spec.power_state = "error", POWER_NOSTATE
        specs.append(spec)
    return specs


def install_incident_nova(engine: Engine, layout: str = "icehouse") -> list[InstanceSpec]:
    """Create the legacy Nova tables and write incident_instances() into them."""
    create_nova_schema(engine, layout)
    instances = incident_instances()
    write_instances(engine, instances)
    return instances


NEUTRON_FILE = "neutron.sqlite"
NOVA_FILE = "nova.sqlite"


def build_demo(folder: str) -> tuple[str, str]:
    """(Re)create the demo Neutron and Nova databases; returns their SQLAlchemy URLs."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise VifdoctorError(f"cannot create demo folder {folder}: {exc.strerror}") from None
    path = os.path.abspath(os.path.join(folder, NEUTRON_FILE))
    nova_path = os.path.abspath(os.path.join(folder, NOVA_FILE))
    for old in (path, nova_path):
        if os.path.exists(old):
            os.remove(old)  # only the demo's own files, rebuilt from scratch each time
    url = f"sqlite:///{path}"
    nova_url = f"sqlite:///{nova_path}"
    cloud = incident_cloud()
    # The demo's agents "keep reporting": a heartbeat a year ahead keeps them alive for the
    # commands the demo suggests, run minutes or days later, without a live agent process.
    ahead = utcnow() + datetime.timedelta(days=365)
    for agent in cloud.agents:
        if agent.alive:
            agent.heartbeat_at = ahead
    engine = sa.create_engine(url)
    try:
        create_schema(engine, LAYOUT)
        write_cloud(engine, cloud)
    finally:
        engine.dispose()
    nova_engine = sa.create_engine(nova_url)
    try:
        install_incident_nova(nova_engine)
    finally:
        nova_engine.dispose()
    return url, nova_url
