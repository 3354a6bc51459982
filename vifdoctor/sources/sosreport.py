"""A compute host's wiring from its sosreport (a directory or ``sosreport-*.tar.xz``).

Support engineers get sosreports, not access. sos 4.x collects what ``host-scan``
reads, as text: its openvswitch plugin ``ovs-vsctl -t 5 show`` / ``list interface``
/ ``list Open_vSwitch``, its libvirt plugin the domain XML (``run/libvirt/qemu``:
running domains in libvirt's ``<domstatus>``; ``etc/libvirt/qemu``: defined ones),
its networking plugin ``ip -s -d link`` (or ``ip -d address``) and ``bridge -s -s
-d link show``, ``iptables -vnxL`` (networking plugin in sos 4.0, firewall_tables
from 4.1) and the host plugin ``hostname``. ``sos_reports/manifest.json`` maps each
command to its file; without it the file names sos derives from the command are
tried. This module turns that into the same document ``host-scan`` writes, so the
rules see one model. Whatever the report lacks is recorded as an unreadable source
(the audit notes it and makes no finding that needs it), never guessed.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import stat
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from vifdoctor import __version__
from vifdoctor.sources.host import CollectError
from vifdoctor.sources.host.libvirt import parse_domain
from vifdoctor.sources.host.scan import FORMAT, FORMAT_VERSION

MAX_FILE = 64 * 1024 * 1024  # one collected file; `list interface` of 5000 ports is ~10 MB
PLUGIN_DIRS = ("openvswitch", "networking", "firewall_tables", "host", "libvirt")
OVS_SHOW = "ovs-vsctl -t 5 show"
OVS_INTERFACES = "ovs-vsctl -t 5 list interface"
OVS_SYSTEM = "ovs-vsctl -t 5 list Open_vSwitch"
IP_LINK = ("ip -s -d link", "ip -d address")
BRIDGE_LINK = "bridge -s -s -d link show"
IPTABLES = ("iptables -vnxL", "iptables -t filter -nvL")  # both list the filter table
HOSTNAME = "hostname"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_sosreport(path: str) -> bool:
    """A sos directory (it has sos_commands/) or a ``sosreport-*.tar.xz`` file."""
    name = os.path.basename(path.rstrip("/"))
    if name.startswith("sosreport-") and name.endswith(".tar.xz"):
        return True
    return os.path.isdir(os.path.join(path, "sos_commands"))


def mangle(command: str) -> str:
    """The file name sos gives a command's output (sos_commands/<plugin>/<name>)."""
    name = command[5:] if command.startswith("/bin/") else command
    name = name.replace("/", ".")
    return re.sub(r"[^\w\-./]+", "_", name).strip("_")[:255]


class _Files:
    """The report's files we need, by path relative to its top folder."""

    def __init__(self, read: Callable[[str], bytes | None], names: list[str]):
        self._read, self.names = read, names

    def text(self, rel: str | None) -> str | None:
        if not rel:
            return None
        data = self._read(rel)
        return None if data is None else data.decode("utf-8", errors="replace")


def _wanted(rel: str) -> bool:
    parts = rel.split("/")
    if rel in (
        "hostname",
        "version.txt",
        "sos_reports/manifest.json",
        "etc/hostname",
        "etc/nova/nova.conf",
    ):
        return True
    if parts[0] == "sos_commands" and len(parts) == 3:
        return parts[1] in PLUGIN_DIRS
    return (
        len(parts) == 4
        and parts[1:3] == ["libvirt", "qemu"]
        and parts[0] in ("run", "etc")
        and parts[3].endswith(".xml")
    )


def _open_dir(root: str) -> _Files:
    real_root = os.path.realpath(root)
    names = []
    for base in ("sos_commands", "run/libvirt/qemu", "etc/libvirt/qemu"):
        for dirpath, _dirs, files in os.walk(os.path.join(root, base)):
            for f in files:
                rel = os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")
                if _wanted(rel):
                    names.append(rel)
    names += [
        n
        for n in (
            "hostname",
            "version.txt",
            "sos_reports/manifest.json",
            "etc/hostname",
            "etc/nova/nova.conf",
        )
        if os.path.lexists(os.path.join(root, n))
    ]

    def read(rel: str) -> bytes | None:
        path = os.path.realpath(os.path.join(root, rel))
        if not path.startswith(real_root + os.sep):
            return None  # a link out of the report: not the report's data
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
                return None
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read(MAX_FILE)
        finally:
            os.close(fd)

    return _Files(read, sorted(set(names)))


def _open_tarball(path: str) -> _Files:
    """One pass over the archive (xz cannot seek); only the files we need are kept."""
    data: dict[str, bytes] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                rel = name.split("/", 1)[1] if "/" in name else ""
                if not rel or not _wanted(rel):
                    continue
                if member.issym():
                    target = os.path.normpath(
                        os.path.join(os.path.dirname(rel), member.linkname)
                    ).replace(os.sep, "/")
                    links[rel] = target
                elif member.isfile() and member.size <= MAX_FILE:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        data[rel] = fh.read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ValueError(f"cannot read the archive: {exc}") from None
    for rel, target in links.items():
        if target in data:
            data[rel] = data[target]
    return _Files(data.get, sorted(data))


# ---- the report's index: which file holds which command ------------------------------


class _Index:
    def __init__(self, files: _Files):
        self.files = files
        # exec -> file. Not the return code: sos 4.0 records 127 for a command it had to
        # re-run outside --sysroot; whether the output is usable is decided by parsing it.
        self.by_exec: dict[str, str | None] = {}
        self.version = ""
        self.start = ""
        self.plugins: set[str] = set()
        text = files.text("sos_reports/manifest.json")
        if text:
            try:
                manifest = json.loads(text)
                report = manifest["components"]["report"]
                self.version = str(manifest.get("version") or "")
                self.start = str(manifest.get("start_time") or "")
                for name, plugin in (report.get("plugins") or {}).items():
                    self.plugins.add(name)
                    for cmd in plugin.get("commands") or []:
                        self.by_exec[_normal(cmd.get("exec") or "")] = cmd.get("filepath")
            except (ValueError, KeyError, TypeError, AttributeError):
                self.by_exec = {}
        if not self.version:
            m = re.search(r"sos(?:report)?: (?:version )?([\d.]+)", files.text("version.txt") or "")
            self.version = m.group(1) if m else "?"

    def output(self, command: str) -> tuple[str | None, str]:
        """(the command's output or None, where it came from) — manifest first."""
        path = self.by_exec.get(_normal(command))
        text = self.files.text(path)
        if text is not None:
            return text, str(path)
        name = mangle(command)
        for rel in self.files.names:
            if rel.startswith("sos_commands/") and rel.rsplit("/", 1)[1] == name:
                return self.files.text(rel), rel
        return None, f"no `{command}` output"


def _normal(command: str) -> str:
    """Commands compared without ovs-vsctl's `-t 5` (older sos ran it without)."""
    return " ".join(command.replace(" -t 5 ", " ").split())


# ---- parsers: the commands' text output ------------------------------------------------


def _ovs_atom(text: str, i: int) -> tuple[object, int]:
    """One value of ovs-vsctl's text output: "string", bare, [set], {map}."""
    if text.startswith('"', i):
        j = i + 1
        while j < len(text) and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        return json.loads(text[i : j + 1]), j + 1
    if text[i : i + 1] in ("[", "{"):
        close = "]" if text[i] == "[" else "}"
        items: list = []
        mapping: dict = {}
        i += 1
        while i < len(text) and text[i] != close:
            if text[i] in ", ":
                i += 1
                continue
            key, i = _ovs_atom(text, i)
            if text.startswith("=", i):
                value, i = _ovs_atom(text, i + 1)
                mapping[str(key)] = value
            else:
                items.append(key)
        return (mapping if close == "}" else items), i + 1
    m = re.compile(r"[^,\]}=\s]*").match(text, i)
    assert m is not None
    word = m.group(0)
    return (int(word) if re.fullmatch(r"-?\d+", word) else word), m.end()


def parse_ovs_list(text: str) -> list[dict]:
    """`ovs-vsctl list TABLE`: records of `column : value` lines, blank-line separated."""
    records: list[dict] = []
    current: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
            current = {}
            continue
        key, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[a-z_][a-z0-9_]*", key.strip()):
            raise CollectError(f"not `ovs-vsctl list` output: {line[:80]!r}")
        current[key.strip()] = _ovs_atom(value.strip(), 0)[0] if value.strip() else ""
    if current:
        records.append(current)
    if records and "_uuid" not in records[0]:
        raise CollectError("not `ovs-vsctl list` output: no _uuid column")
    return records


def _ovs_name(text: str) -> str:
    text = text.strip()
    return json.loads(text) if text.startswith('"') else text


def parse_ovs_show(text: str) -> list[dict]:
    """`ovs-vsctl show`: bridges, their ports and interfaces, by indentation."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not UUID_RE.match(lines[0].strip()):
        raise CollectError("not `ovs-vsctl show` output (it starts with the database's uuid)")
    bridges: list[dict] = []
    bridge: dict[str, Any] | None = None
    port: dict[str, Any] | None = None
    iface: dict[str, Any] | None = None
    for line in lines[1:]:
        depth = (len(line) - len(line.lstrip(" "))) // 4
        word, _, rest = line.strip().partition(" ")
        if depth == 1:
            bridge = port = iface = None
            if word == "Bridge":
                bridge = {"name": _ovs_name(rest), "datapath_type": "", "ports": []}
                bridges.append(bridge)
        elif depth == 2 and bridge is not None:
            iface = None
            if word == "Port":
                port = {"name": _ovs_name(rest), "interfaces": []}
                bridge["ports"].append(port)
            elif word == "datapath_type:":
                bridge["datapath_type"] = rest.strip()
        elif depth == 3 and port is not None and word == "Interface":
            iface = {
                "name": _ovs_name(rest),
                "type": "",
                "ofport": None,
                "external_ids": {},
                "error": None,
            }
            port["interfaces"].append(iface)
        elif depth == 4 and iface is not None and word in ("type:", "error:"):
            value = _ovs_atom(rest.strip(), 0)[0]
            iface["type" if word == "type:" else "error"] = value
    return bridges


def ovs_bridges(show: str, interfaces: str) -> list[dict]:
    """host-scan's ovs_bridges: the tree from `show`, each interface's columns from `list`."""
    bridges = parse_ovs_show(show)
    by_name = {r.get("name"): r for r in parse_ovs_list(interfaces)}
    for br in bridges:
        for port in br["ports"]:
            for iface in port["interfaces"]:
                row = by_name.get(iface["name"])
                if row is None:
                    continue
                ofport = row.get("ofport")
                ext = row.get("external_ids")
                error = row.get("error")
                iface.update(
                    type=row.get("type") or iface["type"] or "",
                    ofport=ofport if isinstance(ofport, int) else None,
                    external_ids=ext if isinstance(ext, dict) else {},
                    error=error if isinstance(error, str) and error else None,
                )
        br["ports"].sort(key=lambda p: p["name"])
    return sorted(bridges, key=lambda b: b["name"])


_HEADER = re.compile(r"^\d+: ([^:@\s]+)(?:@([^:\s]+))?: <[^>]*>(.*)$")
_KINDS = {
    "bridge",
    "veth",
    "tun",
    "openvswitch",
    "vxlan",
    "geneve",
    "gre",
    "gretap",
    "bond",
    "vlan",
    "dummy",
    "macvlan",
    "macvtap",
    "ipvlan",
    "team",
    "vrf",
    "ifb",
    "erspan",
}


def parse_ip_link(text: str) -> list[dict]:
    """`ip -s -d link` (or `ip -d address`): host-scan's links (name, kind, master, peer...)."""
    links: list[dict] = []
    current: dict | None = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            name, at, rest = m.groups()
            master = re.search(r"\bmaster (\S+)", rest)
            state = re.search(r"\bstate (\S+)", rest)
            current = {
                "name": name,
                "kind": "",
                "master": master.group(1) if master else None,
                "peer": at if at and not at.startswith("if") else None,
                "operstate": state.group(1) if state else None,
                "mac": None,
            }
            links.append(current)
            continue
        if current is None or not line.startswith("    "):
            continue
        word = line.split(maxsplit=1)[0] if line.strip() else ""
        if word.startswith("link/"):
            parts = line.split()
            current["mac"] = parts[1] if len(parts) > 1 and ":" in parts[1] else None
        elif word in _KINDS and not current["kind"]:
            current["kind"] = word
    if not links:
        raise CollectError("no link in the `ip link` output")
    for link in links:
        if link["kind"] != "veth":
            link["peer"] = None
    return links


def parse_bridge_link(text: str) -> dict[str, str]:
    """`bridge link`: each Linux bridge member and its bridge."""
    out = {}
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            master = re.search(r"\bmaster (\S+)", m.group(3))
            if master:
                out[m.group(1)] = master.group(1)
    return out


def parse_iptables_list(text: str) -> list[str]:
    """`iptables -vnxL` (the filter table): the neutron chain names."""
    chains = re.findall(r"^Chain (\S+) ", text, flags=re.M)
    if "INPUT" not in chains:
        raise CollectError("not `iptables -vnxL` output (no INPUT chain)")
    return sorted({c for c in chains if c.startswith("neutron-")})


def domains(files: _Files) -> list[dict]:
    """Running domains from run/libvirt/qemu (their <domstatus> state), then defined ones."""
    out: dict[str, dict] = {}
    for rel in files.names:
        running = rel.startswith("run/")
        if not (rel.startswith(("run/libvirt/qemu/", "etc/libvirt/qemu/"))):
            continue
        # S314: libvirt's own domain XML from the operator's sosreport; expat >= 2.4
        # bounds entity expansion
        root = ET.fromstring(files.text(rel) or "")  # noqa: S314
        state = "shut off"
        if root.tag == "domstatus":
            state = root.get("state") or "running"
            inner = root.find("domain")
            if inner is None:
                raise CollectError(f"{rel}: <domstatus> without <domain>")
            root = inner
        elif running:
            state = "running"
        domain = parse_domain(ET.tostring(root, encoding="unicode"), state)
        key = domain["uuid"] or domain["name"]
        if running or key not in out:
            out[key] = domain
    return sorted(out.values(), key=lambda d: d["name"])


def host_name(index: _Index) -> tuple[str, str]:
    """Nova's [DEFAULT] host when nova.conf is in the report, else `hostname`."""
    conf = index.files.text("etc/nova/nova.conf")
    if conf:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parser.read_string(conf)
            host = parser.get("DEFAULT", "host", fallback="").strip()
            if host:
                return host, "etc/nova/nova.conf [DEFAULT] host"
        except configparser.Error:
            pass
    text, where = index.output(HOSTNAME)
    if text is None:
        text, where = index.files.text("hostname"), "hostname"
    if not text or not text.strip():
        text, where = index.files.text("etc/hostname"), "etc/hostname"
    name = (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""
    if not name or " " in name:
        name, where = _ovs_hostname(index), "ovs-vsctl list Open_vSwitch external_ids:hostname"
    if not name:
        raise ValueError("no host name in the report (sos_commands/host/hostname)")
    return name, where


def _open_vswitch(index: _Index) -> dict:
    """The Open_vSwitch row (`ovs-vsctl list Open_vSwitch`), or {} when absent or unreadable."""
    text, _ = index.output(OVS_SYSTEM)
    try:
        rows = parse_ovs_list(text or "")
    except CollectError:
        return {}
    return rows[0] if rows else {}


def _ovs_hostname(index: _Index) -> str:
    ext = _open_vswitch(index).get("external_ids")
    name = ext.get("hostname", "") if isinstance(ext, dict) else ""
    return name if isinstance(name, str) and " " not in name else ""


def host_report(path: str) -> tuple[dict, list[str]]:
    """The host-scan document of a sosreport, and notes on what it was made from.

    Raises ValueError when the path cannot be read as a sosreport at all.
    """
    files = _open_tarball(path) if os.path.isfile(path) else _open_dir(path)
    if not files.names:
        raise ValueError("no sos_commands in it: not a sosreport")
    index = _Index(files)
    host, host_from = host_name(index)
    report: dict = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "host": host,
        "scanned_at": index.start,
        "sources": {},
        "errors": [],
        "domains": [],
        "ovs_bridges": [],
        "links": [],
        "iptables_chains": None,
        "sosreport": {"path": path, "sos_version": index.version, "host_from": host_from},
    }
    system = _open_vswitch(index)
    for key in ("ovs_version", "datapath_types"):
        if system.get(key) not in (None, "", []):
            report["sosreport"][key] = system[key]
    if isinstance(system.get("external_ids"), dict):  # ovn-controller's settings
        report["open_vswitch"] = {"external_ids": system["external_ids"]}
        report["sources"]["open_vswitch"] = {"ok": True, "via": f"sosreport {OVS_SYSTEM}"}

    def attempt(name: str, key: str, read: Callable[[], tuple[object, str]]) -> None:
        try:
            value, via = read()
        except (CollectError, ET.ParseError, ValueError) as exc:
            report["sources"][name] = {"ok": False, "via": "sosreport"}
            report["errors"].append({"source": name, "error": f"sosreport: {exc}"})
            return
        report[key] = value
        report["sources"][name] = {"ok": True, "via": f"sosreport {via}"}

    def need(command: str | tuple[str, ...]) -> tuple[str, str]:
        tried = (command,) if isinstance(command, str) else command
        for cmd in tried:
            text, where = index.output(cmd)
            if text is not None:
                return text, where
        raise CollectError("the report has no " + " or ".join(f"`{c}`" for c in tried) + " output")

    def ovs() -> tuple[object, str]:
        (show, w1), (ifaces, w2) = need(OVS_SHOW), need(OVS_INTERFACES)
        return ovs_bridges(show, ifaces), f"{w1}, {w2}"

    def links() -> tuple[object, str]:
        text, where = need(IP_LINK)
        found = parse_ip_link(text)
        bridged, _ = index.output(BRIDGE_LINK)
        masters = parse_bridge_link(bridged or "")
        for link in found:
            link["master"] = link["master"] or masters.get(link["name"])
        return found, where

    def libvirt() -> tuple[object, str]:
        has_xml = any(n.startswith(("run/libvirt/qemu/", "etc/libvirt/qemu/")) for n in files.names)
        if not has_xml and "libvirt" not in index.plugins:
            raise CollectError(
                "no libvirt domain XML (run/libvirt/qemu, etc/libvirt/qemu) "
                "and no libvirt plugin in the manifest"
            )
        return domains(files), "run/libvirt/qemu, etc/libvirt/qemu"

    def iptables() -> tuple[object, str]:
        text, where = need(IPTABLES)
        return parse_iptables_list(text), where

    attempt("libvirt", "domains", libvirt)
    attempt("ovs", "ovs_bridges", ovs)
    attempt("links", "links", links)
    attempt("iptables", "iptables_chains", iptables)
    notes = [
        f"{host}: wiring from sosreport {os.path.basename(path.rstrip('/'))} "
        f"(sos {index.version}{', ' + index.start if index.start else ''}); host name "
        f"from {host_from}: it must be the name Neutron binds the ports to"
    ]
    return report, notes


def read(path: str, notes: list[str]) -> dict | str:
    """A sosreport as a host-scan document (its notes added), or why it cannot be used."""
    try:
        doc, more = host_report(path)
    except (OSError, ValueError) as exc:
        return str(exc)
    notes.extend(more)
    return doc
