"""Rules on a host's live wiring (VD301-VD307): what is plugged now, against the bindings.

Pure: a host-scan report (already loaded) and bindings in, findings out.
Device names follow Nova and Neutron: prefix + port UUID cut to 14 characters
(``tap``, ``qbr``, ``qvb``, ``qvo``); the iptables_hybrid firewall names its
per-port chains ``<agent>-i<port[:10]>`` and ``-o<port[:10]>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vifdoctor.model import Binding, Finding, HostWiring, Plug
from vifdoctor.rules import catalog
from vifdoctor.rules.binding import new_finding

NIC_NAME_LEN = 14
PREFIXES = ("tap", "qbr", "qvb", "qvo")

HYBRID, DIRECT, VHOSTUSER = "hybrid", "direct", "vhostuser"
MISSING, BROKEN, UNKNOWN = "missing", "broken hybrid", "unknown"


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
    info = catalog.CATALOG[code]
    return Finding(code=code, severity=info.severity, title=info.title, message=message,
                   impact=info.impact, remedy=info.remedy, host=host, **fields)


def judge_wiring(b: Binding, w: HostWiring, wiring: Wiring, needed: str, next_plug: str
                 ) -> list[Finding]:
    """VD301/VD302/VD303/VD307 for one bound VM port on a scanned host."""
    out: list[Finding] = []
    extra = {"wiring": wiring.kind, "wiring_problems": list(wiring.problems)}
    if wiring.kind == DIRECT and needed == Plug.HYBRID.value:
        out.append(new_finding("VD301", b, f"{dev('tap', b.port_id)} sits on the integration "
                               "bridge while the host's firewall needs the hybrid qbr",
                               nova_plug=next_plug, needed_plug=needed, extra=extra))
    if wiring.kind == HYBRID and next_plug == Plug.DIRECT.value:
        out.append(new_finding("VD302", b, "wired hybrid now; the stored details make Nova "
                               "plug it direct at its next stop/start or hard reboot",
                               nova_plug=next_plug, needed_plug=needed, extra=extra))
    if wiring.kind == BROKEN:
        out.append(new_finding("VD303", b, "; ".join(wiring.problems), extra=extra))
    if (wiring.kind == HYBRID and needed == Plug.HYBRID.value and w.chains is not None):
        short = b.port_id[:10]
        have = {c for c in w.chains if c.endswith(f"-i{short}") or c.endswith(f"-o{short}")}
        if len(have) < 2:
            out.append(new_finding(
                "VD307", b, f"no neutron iptables chains -i{short}/-o{short} on {b.host}: "
                "the hybrid port is wired but its security groups are not applied",
                extra=extra))
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
                out.append(_host_finding("VD305", w.host, f"{name} belongs to no running "
                                         "domain and no port bound here",
                                         extra={"device": name}))
    return out


def unknown_iface_ids(w: HostWiring, bound_here: set[str]) -> list[str]:
    """iface-ids on the host's OVS that no binding on this host claims (VD304 candidates)."""
    return sorted(i for i in w.ovs_by_iface_id if i not in bound_here)


def vd304(w: HostWiring, iface_id: str, bound_to: str | None) -> Finding:
    where = (f"Neutron binds it to {bound_to}" if bound_to
             else "Neutron knows no such port")
    names = ", ".join(i.name for i in w.ovs_by_iface_id.get(iface_id, []))
    return _host_finding("VD304", w.host, f"OVS interface {names} has iface-id {iface_id}: "
                         f"{where}", port_id=iface_id, extra={"bound_to": bound_to})


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
            out.append(_host_finding(
                "VD306", w.host, f"domain {d.get('name')} ({d.get('uuid')}) has interface "
                f"{target or '?'}{' for port ' + port if port else ''}, which Neutron does "
                "not bind to this host", device_id=d.get("uuid") or "",
                port_id=port, extra={"domain": d.get("name"), "target_dev": target}))
    return out
