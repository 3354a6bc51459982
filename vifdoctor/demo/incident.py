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

from sqlalchemy.engine import Engine

from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
    write_cloud,
)
from vifdoctor.demo.schemas import create_schema

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
        "compute000", "", "6f952f0c-62fd-43a8-81fa-0c178dab8eb9"),
    "2f2782dd-cb6b-4a37-a384-8c4883e7243d": (
        "compute000", "", "d619ce09-03ba-4fd0-813f-9cfeaa88b136"),
    "30cb2d41-62df-44db-9faf-d6638438e71c": (
        "compute001", "", "71743a73-2873-441e-8930-b37e92233762"),
    "901b564b-5250-4215-bcad-2630b7701a85": (
        "compute001", "", "be47fb67-06bd-4bea-a6d1-5f426dcab52b"),
    "c157a2bb-0a42-4e2a-8354-ec0560d9e28b": (
        "compute002", "", "057d5218-816e-4b18-bc85-6ca0fd45976e"),
    "c5ab2b09-b8cb-4381-83d4-a14a7207fdeb": (
        "compute001", HYBRID_DETAILS, "89fdc12d-fe68-4401-8f2f-fe34516e896d"),
    "c8e328fd-0279-46ff-ba45-177b95b97103": (
        "compute002", "", "ee534928-6405-4ebf-bb17-2eb007c28146"),
    "e14dbfd5-670e-405f-aaec-3796d1df1c34": (
        "compute000", HYBRID_DETAILS, "3ec57c66-408b-4c10-b9ab-33d27affc999"),
}

INCIDENT_PORT_IDS: tuple[str, ...] = tuple(_SEED_PORTS)
EMPTY_DETAIL_PORT_IDS: tuple[str, ...] = tuple(
    pid for pid, (_, details, _) in _SEED_PORTS.items() if details == "")
HYBRID_PORT_IDS: tuple[str, ...] = tuple(
    pid for pid, (_, details, _) in _SEED_PORTS.items() if details == HYBRID_DETAILS)

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
    return BindingSpec(host=host, vif_type="ovs", vif_details=details,
                       driver="openvswitch", segment_id=SEGMENT_ID)


def _vm_port(port_id: str, instance: str, binding: BindingSpec) -> PortSpec:
    return PortSpec(id=port_id, network_id=NETWORK_ID, device_owner="compute:nova",
                    device_id=instance, project_id=PROJECT_ID, binding=binding)


def incident_cloud() -> CloudSpec:
    """The incident as a CloudSpec, for the ``icehouse`` layout (works on any)."""
    network = NetworkSpec(
        id=NETWORK_ID, name="private", project_id=PROJECT_ID,
        segments=[SegmentSpec(id=SEGMENT_ID, network_type="vxlan", segmentation_id=1001)])

    ports = [_vm_port(pid, instance, _ovs_binding(host, details))
             for pid, (host, details, instance) in _SEED_PORTS.items()]
    ports += [
        PortSpec(id=DHCP_PORT_ID, network_id=NETWORK_ID, device_owner="network:dhcp",
                 # Neutron's DHCP device_id: 'dhcp' + uuid5(host) + '-' + network id.
                 device_id=f"dhcp0061ed30-160e-507c-9a4c-2f82fee3ac18-{NETWORK_ID}",
                 project_id=PROJECT_ID, binding=_ovs_binding(NETWORK_HOST, HYBRID_DETAILS)),
        PortSpec(id=ROUTER_PORT_ID, network_id=NETWORK_ID,
                 device_owner="network:router_interface", device_id=ROUTER_ID,
                 project_id=PROJECT_ID, binding=_ovs_binding(NETWORK_HOST, HYBRID_DETAILS)),
        _vm_port(BINDING_FAILED_PORT_ID, "a3b0f6de-2c1e-4f0a-9d7b-5e8c4b1a6f20",
                 BindingSpec(host="compute001", vif_type="binding_failed", vif_details="",
                             driver=None, segment_id=None)),
        _vm_port(LINUXBRIDGE_PORT_ID, "b7e4c2a9-0d3f-4e6b-8a1c-9f2d5e7b3c41",
                 BindingSpec(host=LINUXBRIDGE_HOST, vif_type="bridge",
                             vif_details=LINUXBRIDGE_DETAILS, driver="linuxbridge",
                             segment_id=SEGMENT_ID)),
        _vm_port(MALFORMED_PORT_ID, "c9d1e3f5-7a2b-4c6d-8e0f-1a3b5c7d9e02",
                 _ovs_binding("compute002", MALFORMED_DETAILS)),
    ]

    devices = {h: sum(1 for p in ports if p.binding and p.binding.host == h
                      and p.binding.vif_type == "ovs")
               for h in (*COMPUTE_HOSTS, NETWORK_HOST)}
    agents = [
        AgentSpec(host=host, agent_type="Open vSwitch agent",
                  configurations=_ovs_agent_conf(i, devices[host]))
        for i, host in enumerate(COMPUTE_HOSTS)
    ]
    agents += [
        AgentSpec(host=NETWORK_HOST, agent_type="Open vSwitch agent",
                  configurations=_ovs_agent_conf(len(COMPUTE_HOSTS), devices[NETWORK_HOST])),
        AgentSpec(host=NETWORK_HOST, agent_type="DHCP agent", configurations={
            "dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq",
            "use_namespaces": True, "dhcp_lease_duration": 86400,
            "networks": 1, "subnets": 1, "ports": 1}),
        AgentSpec(host=NETWORK_HOST, agent_type="L3 agent", configurations={
            "use_namespaces": True, "router_id": "",
            "handle_internal_only_routers": True, "gateway_external_network_id": "",
            "interface_driver": "neutron.agent.linux.interface.OVSInterfaceDriver",
            "routers": 1, "interfaces": 1, "floating_ips": 0, "ex_gw_ports": 0}),
        # Icehouse linuxbridge agent with VXLAN: interface_mappings + tunnel keys.
        AgentSpec(host=LINUXBRIDGE_HOST, agent_type="Linux bridge agent", configurations={
            "interface_mappings": {"physnet1": "eth1"},
            "tunneling_ip": "10.0.0.21", "tunnel_types": ["vxlan"],
            "l2_population": False, "devices": 1}),
    ]
    return CloudSpec(networks=[network], agents=agents, ports=ports)


def install_incident(engine: Engine, layout: str = LAYOUT) -> CloudSpec:
    """Create the layout's tables and write the incident cloud into them."""
    create_schema(engine, layout)
    cloud = incident_cloud()
    write_cloud(engine, cloud)
    return cloud
