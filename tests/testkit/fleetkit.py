"""Host-scan reports shaped like a real compute host's, made without a host.

Used by the index tests (tests/sources/test_host_index.py) and the fleet
benchmark (benchmarks/fleet.py), which needs a thousand of them. The shape
follows what host-scan records on the lab hosts nova/os-vif wire
(tests/testkit/hostlab.py): per hybrid port qbr/qvb/qvo/tap, per direct port a tap on
br-int, plus br-tun with one vxlan port per tunnel peer and br-ex.
"""

from __future__ import annotations


def dev(prefix: str, port: str) -> str:
    return (prefix + port)[:14]


def _iface(name: str, kind: str = "", ofport: int | None = 1, **ext: str) -> dict:
    return {"name": name, "type": kind, "ofport": ofport, "external_ids": ext, "error": None}


def _link(name: str, kind: str | None, master: str | None = None, peer: str | None = None) -> dict:
    return {
        "name": name,
        "kind": kind,
        "master": master,
        "peer": peer,
        "operstate": "UP",
        "mac": "fa:16:3e:00:00:01",
    }


def synthetic_report(host: str, ports: list[tuple[str, str, bool]], tunnels: int) -> dict:
    """A host-scan report for ``ports`` (port id, VM uuid, wired hybrid?)."""
    int_ports, links, domains = [], [], []
    links += [
        _link(n, k)
        for n, k in (
            ("lo", None),
            ("eth0", None),
            ("eth1", None),
            ("ovs-system", "openvswitch"),
            ("br-int", "openvswitch"),
            ("br-tun", "openvswitch"),
            ("br-ex", "openvswitch"),
        )
    ]
    for n, (port, vm, hybrid) in enumerate(ports, start=10):
        tap, qbr, qvb, qvo = (dev(p, port) for p in ("tap", "qbr", "qvb", "qvo"))
        mac = f"fa:16:3e:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"
        ids = {"iface-id": port, "attached-mac": mac, "vm-uuid": vm, "iface-status": "active"}
        if hybrid:
            int_ports.append({"name": qvo, "interfaces": [_iface(qvo, "", n, **ids)]})
            links += [
                _link(qbr, "bridge"),
                _link(qvb, "veth", qbr, qvo),
                _link(qvo, "veth", "ovs-system", qvb),
                _link(tap, "tun", qbr),
            ]
            iface = {"type": "bridge", "source_bridge": qbr, "target_dev": tap}
        else:
            int_ports.append({"name": tap, "interfaces": [_iface(tap, "", n, **ids)]})
            links.append(_link(tap, "tun", "ovs-system"))
            iface = {"type": "ethernet", "source_bridge": None, "target_dev": tap}
        domains.append(
            {
                "name": f"instance-{n:08x}",
                "uuid": vm,
                "state": "running",
                "interfaces": [
                    {
                        **iface,
                        "source_path": None,
                        "managed": None,
                        "mac": mac,
                        "virtualport_type": None,
                        "interfaceid": None,
                    }
                ],
            }
        )
    int_ports.append({"name": "patch-tun", "interfaces": [_iface("patch-tun", "patch", 2)]})
    tun_ports = [
        {"name": f"vxlan-7f{t:06x}", "interfaces": [_iface(f"vxlan-7f{t:06x}", "vxlan", 100 + t)]}
        for t in range(tunnels)
    ]
    tun_ports.append({"name": "patch-int", "interfaces": [_iface("patch-int", "patch", 1)]})
    return {
        "format": "vifdoctor-host-scan",
        "format_version": 1,
        "tool_version": "bench",
        "host": host,
        "scanned_at": "2026-01-01T00:00:00+00:00",
        "sources": {
            "libvirt": {"ok": True, "uri": "(default)", "via": "virsh"},
            "ovs": {"ok": True, "db": "(default)"},
            "links": {"ok": True},
        },
        "errors": [],
        "domains": domains,
        "ovs_bridges": [
            {
                "name": "br-ex",
                "datapath_type": "system",
                "ports": [{"name": "eth1", "interfaces": [_iface("eth1")]}],
            },
            {"name": "br-int", "datapath_type": "system", "ports": int_ports},
            {"name": "br-tun", "datapath_type": "system", "ports": tun_ports},
        ],
        "links": links,
        "iptables_chains": None,
    }
