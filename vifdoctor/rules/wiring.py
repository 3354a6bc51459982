"""Rules on a host's live wiring (VD301-VD307): what is plugged now, against the bindings.

Pure: a host-scan report (already loaded) and bindings in, findings out.
Device names follow Nova and Neutron: prefix + port UUID cut to 14 characters
(``tap``, ``qbr``, ``qvb``, ``qvo``); the iptables_hybrid firewall names its
per-port chains ``<agent>-i<port[:10]>`` and ``-o<port[:10]>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vifdoctor.model import Binding, Finding, HostWiring, Plug, Severity
from vifdoctor.rules.finding import declared_finding, new_finding
from vifdoctor.rules.registry import HOST_WIRING, Scope, declare

NIC_NAME_LEN = 14
PREFIXES = ("tap", "qbr", "qvb", "qvo")

HYBRID, DIRECT, VHOSTUSER = "hybrid", "direct", "vhostuser"
MISSING, BROKEN, UNKNOWN = "missing", "broken hybrid", "unknown"


declare(
    "VD301",
    Severity.FAILURE,
    "unprotected now",
    summary="wired direct now while the host needs hybrid: security groups off right now",
    why=(
        "The host scan shows the VM's tap (or os-vif port) straight on the integration bridge"
        " while the host's firewall (iptables_hybrid) needs the hybrid qbr bridge."
    ),
    impact=(
        "Security groups are not enforced on this VM right now: its traffic passes "
        "unfiltered. The most urgent finding."
    ),
    remedy=(
        "Repair the binding if it is wrong (`vifdoctor repair`), then hard reboot or "
        "stop/start the VM so Nova re-plugs it hybrid."
    ),
    applies_to=Scope(HOST_WIRING),
)

declare(
    "VD302",
    Severity.FAILURE,
    "breaks at next re-plug",
    summary="wired hybrid today, but the next stop/start or hard reboot plugs it direct",
    why=(
        "The VM is wired hybrid today (it was plugged before the details drifted), but the "
        "stored details make Nova plug it direct at its next stop/start, hard reboot or "
        "migration."
    ),
    impact=(
        "Fine until the next re-plug; then security groups stop working and the VM can lose "
        "its network: the incident's failure mode."
    ),
    remedy=("Repair the binding now (`vifdoctor repair`); the VM itself needs no reboot."),
    applies_to=Scope(HOST_WIRING),
)

declare(
    "VD303",
    Severity.WARNING,
    "broken hybrid plumbing",
    summary="broken hybrid plumbing (qbr/qvb/qvo missing or carrying another port's iface-id)",
    why=(
        "Part of the hybrid chain is missing or wrong: a qbr without its qvb/qvo, a qvo "
        "missing from the integration bridge, or a qvo carrying another port's iface-id. "
        "os-vif leaves this after a half-done plug and does not redo it."
    ),
    impact=("The VM has no network on this port, or the agent wires another port's flows to it."),
    remedy=(
        "Delete the stale qbr/qvb/qvo devices on the host, then hard reboot the VM so Nova "
        "plugs it afresh."
    ),
    applies_to=Scope(HOST_WIRING),
)

declare(
    "VD304",
    Severity.WARNING,
    "unknown or foreign OVS port",
    summary="an OVS interface whose iface-id Neutron does not know, or binds elsewhere",
    why=(
        "An OVS interface on this host carries an iface-id that Neutron does not know, or "
        "that Neutron binds to another host."
    ),
    impact=(
        "The agent keeps flows for a port that is not here (a leftover of a deleted port or "
        "of a failed migration); a duplicate iface-id confuses the agent."
    ),
    remedy=(
        "Check the port (`openstack port show ID`), then delete the OVS port (`ovs-vsctl "
        "del-port br-int NAME`) if nothing uses it."
    ),
    applies_to=Scope(HOST_WIRING),
)

declare(
    "VD305",
    Severity.INFO,
    "leftover devices",
    summary="leftover tap/qbr/qvb/qvo devices of no running domain",
    why=(
        "tap/qbr/qvb/qvo devices that belong to no running domain and to no port bound to "
        "this host."
    ),
    impact=("Harmless clutter, but they can collide with a new plug of the same port."),
    remedy=("Remove them (`ip link delete NAME`, `ovs-vsctl del-port NAME`)."),
    applies_to=Scope(HOST_WIRING),
)

declare(
    "VD306",
    Severity.WARNING,
    "domain interface not bound here",
    summary="a domain interface whose port Neutron does not bind to this host",
    why=(
        "A libvirt domain has an interface for a port that Neutron does not bind to this "
        "host: a failed migration or a port moved underneath the VM."
    ),
    impact=("The VM's interface is not served by this host's agent: no network on it."),
    remedy=("Re-bind the port to this host or migrate the VM; then hard reboot it."),
    applies_to=Scope(HOST_WIRING),
)

declare(
    "VD307",
    Severity.FAILURE,
    "security-group chains missing",
    summary="a hybrid port on an iptables_hybrid host without its security-group chains",
    why=(
        "The port is wired hybrid on an iptables_hybrid host, but iptables has no neutron "
        "chains for it: the agent never applied its security groups."
    ),
    impact=("The VM's traffic is not filtered although the wiring is right."),
    remedy=("Restart the OVS agent on the host (full resync) and check its log for the port."),
    applies_to=Scope(HOST_WIRING),
)


def dev(prefix: str, port_id: str) -> str:
    return (prefix + port_id)[:NIC_NAME_LEN]


@dataclass(frozen=True)
class Wiring:
    kind: str  # hybrid | direct | vhostuser | missing | broken hybrid | unknown
    problems: tuple[str, ...] = ()


def classify(port_id: str, w: HostWiring, integration_bridge: str = "br-int") -> Wiring:
    """How the port is wired on the host now."""
    if not (w.readable.get("ovs") and w.readable.get("links")):
        # Half a picture would invent faults (a qvo "missing" from an OVS nobody read).
        return Wiring(UNKNOWN, ("the host scan could not read OVS or the links",))
    tap, qbr, qvb, qvo = (dev(p, port_id) for p in PREFIXES)
    links = w.links
    qvo_ovs = w.ovs.get(qvo)
    if qbr in links or qvb in links or qvo in links or qvo_ovs is not None:
        problems = []
        if links.get(qbr, {}).get("kind") != "bridge":
            problems.append(f"no Linux bridge {qbr}")
        if tap in links and links[tap].get("master") != qbr:
            problems.append(f"{tap} is not in {qbr}")
        if links.get(qvb, {}).get("master") != qbr:
            problems.append(f"{qvb} is not in {qbr}")
        if qvo_ovs is None:
            problems.append(f"{qvo} is not on Open vSwitch")
        elif qvo_ovs.bridge != integration_bridge:
            problems.append(f"{qvo} is on {qvo_ovs.bridge}, not {integration_bridge}")
        elif qvo_ovs.iface_id != port_id:
            problems.append(f"{qvo} has iface-id {qvo_ovs.iface_id!r}")
        return Wiring(BROKEN if problems else HYBRID, tuple(problems))
    entry = w.ovs.get(tap) or next(iter(w.ovs_by_iface_id.get(port_id, [])), None)
    if entry is not None:
        if entry.type.startswith("dpdkvhostuser"):
            return Wiring(VHOSTUSER)
        problems = []
        if entry.bridge != integration_bridge:
            problems.append(f"{entry.name} is on {entry.bridge}, not {integration_bridge}")
        if entry.iface_id != port_id:
            problems.append(f"{entry.name} has iface-id {entry.iface_id!r}")
        return Wiring(DIRECT, tuple(problems))
    return Wiring(MISSING)


def _host_finding(code: str, host: str, message: str, **fields) -> Finding:
    return declared_finding(code, message, host=host, **fields)


def judge_wiring(
    b: Binding, w: HostWiring, wiring: Wiring, needed: str, next_plug: str, *, ovn: bool = False
) -> list[Finding]:
    """VD301/VD302/VD303/VD307 for one bound VM port on a scanned host.

    ``ovn``: OVN serves the port, so there is no iptables_hybrid firewall to need the
    hybrid plug: only VD303 applies (rules/ovn_host.py says what a qbr there means).
    """
    out: list[Finding] = []
    extra = {"wiring": wiring.kind, "wiring_problems": list(wiring.problems)}
    if ovn:
        needed, next_plug = "", ""
    if wiring.kind == DIRECT and needed == Plug.HYBRID.value:
        out.append(
            new_finding(
                "VD301",
                b,
                f"{dev('tap', b.port_id)} sits on the integration "
                "bridge while the host's firewall needs the hybrid qbr",
                nova_plug=next_plug,
                needed_plug=needed,
                extra=extra,
            )
        )
    if wiring.kind == HYBRID and next_plug == Plug.DIRECT.value:
        out.append(
            new_finding(
                "VD302",
                b,
                "wired hybrid now; the stored details make Nova "
                "plug it direct at its next stop/start or hard reboot",
                nova_plug=next_plug,
                needed_plug=needed,
                extra=extra,
            )
        )
    if wiring.kind == BROKEN:
        out.append(new_finding("VD303", b, "; ".join(wiring.problems), extra=extra))
    if wiring.kind == HYBRID and needed == Plug.HYBRID.value and w.chains is not None:
        short = b.port_id[:10]
        have = {c for c in w.chains if c.endswith(f"-i{short}") or c.endswith(f"-o{short}")}
        if len(have) < 2:
            out.append(
                new_finding(
                    "VD307",
                    b,
                    f"no neutron iptables chains -i{short}/-o{short} on {b.host}: "
                    "the hybrid port is wired but its security groups are not applied",
                    extra=extra,
                )
            )
    return out


def leftovers(w: HostWiring, claimed: set[str]) -> list[Finding]:
    """VD305: qbr/qvb/qvo/tap devices that belong to no running domain and no bound port."""
    if not w.readable.get("libvirt"):
        return []
    running = {name[3:] for name in w.running_devices() if name.startswith("tap")}
    names = set(w.links) | set(w.ovs)
    out = []
    for name in sorted(names):
        if name[:3] in PREFIXES and len(name) == NIC_NAME_LEN:
            suffix = name[3:]
            if suffix not in running and suffix not in claimed:
                out.append(
                    _host_finding(
                        "VD305",
                        w.host,
                        f"{name} belongs to no running domain and no port bound here",
                        extra={"device": name},
                    )
                )
    return out


def unknown_iface_ids(w: HostWiring, bound_here: set[str]) -> list[str]:
    """iface-ids on the host's OVS that no binding on this host claims (VD304 candidates)."""
    return sorted(i for i in w.ovs_by_iface_id if i not in bound_here)


def vd304(w: HostWiring, iface_id: str, bound_to: str | None) -> Finding:
    where = f"Neutron binds it to {bound_to}" if bound_to else "Neutron knows no such port"
    names = ", ".join(i.name for i in w.ovs_by_iface_id.get(iface_id, []))
    return _host_finding(
        "VD304",
        w.host,
        f"OVS interface {names} has iface-id {iface_id}: {where}",
        port_id=iface_id,
        extra={"bound_to": bound_to},
    )


def foreign_domain_interfaces(w: HostWiring, bound_prefixes: set[str]) -> list[Finding]:
    """VD306: domain interfaces whose port Neutron does not bind to this host."""
    out = []
    for d in w.domains:
        for iface in d.get("interfaces") or []:
            target = iface.get("target_dev") or ""
            port = iface.get("interfaceid") or ""
            key = port[:11] if port else (target[3:] if target.startswith("tap") else "")
            if not key or key in bound_prefixes:
                continue
            out.append(
                _host_finding(
                    "VD306",
                    w.host,
                    f"domain {d.get('name')} ({d.get('uuid')}) has interface "
                    f"{target or '?'}{' for port ' + port if port else ''}, which Neutron does "
                    "not bind to this host",
                    device_id=d.get("uuid") or "",
                    port_id=port,
                    extra={"domain": d.get("name"), "target_dev": target},
                )
            )
    return out
