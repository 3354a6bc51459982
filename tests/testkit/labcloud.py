"""Clouds for the lab compute host (testkit/hostlab.py): Neutron rows and Nova VIFs.

Shared by the host-wiring tests (integration/test_hosts.py), the HTML report's
wiring diagrams (report/test_html_wiring.py) and the sosreport tests
(sources/test_sosreport.py): the same network, details and agents everywhere.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from testkit.cloudfactory import write
from testkit.hostlab import ComputeHost
from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
)
from vifdoctor.demo.nova import vif_entry

PROJECT = "11111111aaaa4bbb8ccc000000000001"
NET = "22222222-aaaa-4bbb-8ccc-000000000001"
SEG = "33333333-aaaa-4bbb-8ccc-000000000001"
OTHER_HOST = "compute-elsewhere"

# What the OVS mechanism driver writes (neutron 29.0.0, domain.md section 3), but for
# the lab's userspace datapath: without datapath_type os-vif forces the bridge to
# `system` and the ports get no ofport without the kernel module.
HYBRID_DETAILS = {
    "bridge_name": "br-int",
    "connectivity": "l2",
    "datapath_type": "netdev",
    "ovs_hybrid_plug": True,
    "port_filter": True,
}
DIRECT_DETAILS = {
    "bridge_name": "br-int",
    "connectivity": "l2",
    "datapath_type": "netdev",
    "ovs_create_tap": True,
    "ovs_hybrid_plug": False,
    "port_filter": True,
}


def new_id() -> str:
    return str(uuid.uuid4())


def mac_of(port_id: str) -> str:
    h = port_id.replace("-", "")
    return f"fa:16:3e:{h[0:2]}:{h[2:4]}:{h[4:6]}"


def nova_vif(port_id: str, details: dict) -> dict:
    """The network_info VIF Nova builds from Neutron's port (vifdoctor.demo.nova.vif_entry)."""
    return vif_entry(
        port_id, "ovs", details, network_id=NET, mac=mac_of(port_id), tenant_id=PROJECT, mtu=1450
    )


def ovs_agent(host: str, hybrid: bool | None) -> AgentSpec:
    """hybrid True/False: a Newton+ agent reporting ovs_hybrid_plug; None: a legacy agent
    that reports nothing (the audit then assumes the default iptables_hybrid)."""
    if hybrid is None:
        config: dict = {"bridge_mappings": {}, "tunnel_types": ["vxlan"]}
    else:
        config = {
            "ovs_hybrid_plug": hybrid,
            "integration_bridge": "br-int",
            "datapath_type": "netdev",
            "bridge_mappings": {},
            "tunnel_types": ["vxlan"],
        }
    return AgentSpec(host=host, agent_type="Open vSwitch agent", configurations=config)


def vm_port(
    port_id: str, device_id: str, host: str, details: dict | str, driver: str = "openvswitch"
) -> PortSpec:
    text = details if isinstance(details, str) else json.dumps(details)
    return PortSpec(
        id=port_id,
        network_id=NET,
        device_owner="compute:nova",
        device_id=device_id,
        project_id=PROJECT,
        mac_address=mac_of(port_id),
        binding=BindingSpec(
            host=host, vif_type="ovs", vif_details=text, segment_id=SEG, driver=driver
        ),
    )


def neutron_db(
    url: str, ports: list[PortSpec], agents: list[AgentSpec], network_type: str = "vxlan"
) -> str:
    cloud = CloudSpec(
        networks=[
            NetworkSpec(NET, "private", PROJECT, [SegmentSpec(SEG, network_type, None, 100)])
        ],
        agents=agents,
        ports=ports,
    )
    write(url, cloud, layout="ocata")
    return url


def scan_into(
    host: ComputeHost, folder: Path, *extra: str, env: dict | None = None
) -> tuple[int, dict, str]:
    folder.mkdir(exist_ok=True)
    return host.scan(folder / f"{host.name}.json", *extra, env=env)
