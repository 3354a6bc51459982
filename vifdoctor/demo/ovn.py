"""``vifdoctor demo --ovn``: an ML2/OVN cloud half-way out of an OVS -> OVN migration.

Neutron's database (SQLite, ocata layout) holds the bindings as neutron 29.0.0's OVN
driver writes them, plus the drift the field shows; a private NB and SB with a real
ovn-northd (vifdoctor/demo/ovnlab.py) hold the chassis, the switches and their ports,
made with ``ovn-nbctl``/``ovn-sbctl`` as an operator or ovn-controller would.
"""

from __future__ import annotations

import json
import os

import sqlalchemy as sa

from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
    write_cloud,
)
from vifdoctor.demo.ovnlab import APT_HINT, OvnLab, missing_prerequisites
from vifdoctor.demo.schemas import create_schema
from vifdoctor.errors import VifdoctorError

LAYOUT = "ocata"
PROJECT = "4c1f6b0e8a2d4e7f9b3a5c6d7e8f9012"
NET = "5a1c0e9e-7d3b-4f41-9c55-0d2f6a1b7c01"
SEGMENT = "5a1c0e9e-7d3b-4f41-9c55-0d2f6a1b7c02"
OVN_DETAILS = {
    "port_filter": True,
    "connectivity": "l2",
    "ovs_create_tap": True,
    "bridge_name": "br-int",
    "datapath_type": "system",
}
# What today's db_migration leaves: the OVS driver's details with bridge_name br-int.
MIGRATED = {
    "bridge_name": "br-int",
    "connectivity": "l2",
    "datapath_type": "system",
    "ovs_hybrid_plug": True,
    "port_filter": True,
}

# name -> (host, driver, details, what the demo then does to OVN)
PORTS: dict[str, tuple[str, str, dict]] = {
    "good": ("compute000", "ovn", OVN_DETAILS),
    "migrated-hybrid": ("compute000", "openvswitch", MIGRATED),
    "lsp-deleted": ("compute000", "ovn", OVN_DETAILS),
    "requested-elsewhere": ("compute001", "ovn", OVN_DETAILS),
    "claim-moved": ("compute001", "ovn", OVN_DETAILS),
    "dead-chassis": ("compute002", "ovn", OVN_DETAILS),
}


def _id(name: str, kind: str = "port") -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vifdoctor-demo-ovn/{kind}/{name}"))


def build_neutron(folder: str) -> str:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise VifdoctorError(f"cannot create demo folder {folder}: {exc.strerror}") from None
    path = os.path.abspath(os.path.join(folder, "neutron-ovn.sqlite"))
    if os.path.exists(path):
        os.remove(path)  # only the demo's own file, rebuilt each time
    ports = [
        PortSpec(
            id=_id(name),
            network_id=NET,
            device_owner="compute:nova",
            device_id=_id(name, "instance"),
            project_id=PROJECT,
            binding=BindingSpec(
                host=host,
                vif_type="ovs",
                vif_details=json.dumps(details),
                driver=driver,
                segment_id=SEGMENT,
            ),
        )
        for name, (host, driver, details) in PORTS.items()
    ]
    cloud = CloudSpec(
        networks=[NetworkSpec(NET, "demo", PROJECT, [SegmentSpec(SEGMENT, "geneve", None, 42)])],
        # The ML2/OVS era's agent, dead since the migration.
        agents=[
            AgentSpec("compute000", "Open vSwitch agent", {"ovs_hybrid_plug": True}, alive=False)
        ],
        ports=ports,
    )
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    try:
        create_schema(engine, LAYOUT)
        write_cloud(engine, cloud)
        with engine.begin() as conn:  # the ports' status, as OVN's up events left it
            conn.execute(sa.text("UPDATE ports SET status = 'ACTIVE'"))
    finally:
        engine.dispose()
    return url


def build_ovn(lab: OvnLab) -> None:
    """Chassis, the switch and its ports, claims; then the field's drift."""
    for i, host in enumerate(("compute000", "compute001", "compute002")):
        lab.add_chassis(f"chassis-{i}", host)
    lab.nbctl("ls-add", f"neutron-{NET}")
    for name, (host, _driver, _details) in PORTS.items():
        pid = _id(name)
        lab.nbctl("lsp-add", f"neutron-{NET}", pid)
        lab.nbctl(
            "set",
            "Logical_Switch_Port",
            pid,
            f"options:requested-chassis={host}",
            'external_ids:"neutron:port_name"=""',
            f'external_ids:"neutron:host_id"={host}',
        )
        lab.claim(pid, f"chassis-{host[-1]}", up=True)
    for pid in (_id(n) for n in PORTS):
        lab.wait_lsp_up(pid, True)
    lab.nbctl("lsp-del", _id("lsp-deleted"))  # VD406
    lab.nbctl(
        "set",
        "Logical_Switch_Port",
        _id("requested-elsewhere"),
        "options:requested-chassis=compute000",
    )  # VD408
    lab.claim(_id("claim-moved"), "chassis-0")  # VD409
    lab.set_alive("chassis-2", False)  # VD402
    lab.nbctl("lsp-add", f"neutron-{NET}", "added-by-hand")  # VD407


def check_tools() -> None:
    missing = missing_prerequisites()
    if missing:
        raise VifdoctorError(f"demo --ovn needs the OVN tools ({', '.join(missing)}): {APT_HINT}")
