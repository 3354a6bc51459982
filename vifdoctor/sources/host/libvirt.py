"""libvirt domains and their interfaces: libvirt-python when installed, else ``virsh``."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vifdoctor.sources.host import CollectError, run

_STATES = {
    0: "nostate",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutdown",
    5: "shutoff",
    6: "crashed",
    7: "pmsuspended",
}


def parse_domain(xml_text: str, state: str = "") -> dict:
    """A domain's name, uuid and interfaces from its XML (libvirt's domain format)."""
    try:
        # S314: the XML comes from the local libvirtd (virsh -r dumpxml), not from tenants,
        # and expat >= 2.4 bounds entity expansion
        root = ET.fromstring(xml_text)  # noqa: S314
    except ET.ParseError as exc:
        raise CollectError(f"unparsable domain XML: {exc}") from None
    interfaces = []
    for iface in root.findall("./devices/interface"):
        source = iface.find("source")
        target = iface.find("target")
        mac = iface.find("mac")
        vport = iface.find("virtualport")
        params = vport.find("parameters") if vport is not None else None
        interfaces.append(
            {
                "type": iface.get("type", ""),
                "source_bridge": source.get("bridge") if source is not None else None,
                "source_path": source.get("path") if source is not None else None,
                "target_dev": target.get("dev") if target is not None else None,
                "managed": target.get("managed") if target is not None else None,
                "mac": mac.get("address") if mac is not None else None,
                "virtualport_type": vport.get("type") if vport is not None else None,
                "interfaceid": params.get("interfaceid") if params is not None else None,
            }
        )
    return {
        "name": root.findtext("name", default=""),
        "uuid": root.findtext("uuid", default=""),
        "state": state,
        "interfaces": interfaces,
    }


def collect(uri: str | None) -> tuple[list[dict], str]:
    """Every domain (running or not); also says which way it was read."""
    try:
        import libvirt
    except ImportError:
        return _collect_virsh(uri), "virsh"
    try:
        conn = libvirt.openReadOnly(uri)
        try:
            domains = []
            for dom in conn.listAllDomains():
                state = _STATES.get(dom.state()[0], str(dom.state()[0]))
                domains.append(parse_domain(dom.XMLDesc(0), state))
            return domains, "libvirt-python"
        finally:
            conn.close()
    except libvirt.libvirtError as exc:
        raise CollectError(f"libvirt: {str(exc).splitlines()[0][:200]}") from None


def _collect_virsh(uri: str | None) -> list[dict]:
    base = ["virsh", "-r"] + (["-c", uri] if uri else [])
    names = [n for n in run(base + ["list", "--all", "--name"]).splitlines() if n.strip()]
    domains = []
    for name in names:
        state = run(base + ["domstate", name]).strip()
        domains.append(parse_domain(run(base + ["dumpxml", name]), state))
    return domains
