"""Open vSwitch bridges, ports and interfaces with their external_ids, via ``ovs-vsctl``."""

from __future__ import annotations

import json

from vifdoctor.sources.host import CollectError, run


def _value(cell):
    """Decode OVSDB's JSON encoding: ["uuid", x], ["set", [...]], ["map", [[k, v], ...]]."""
    if isinstance(cell, list) and len(cell) == 2 and isinstance(cell[0], str):
        kind, body = cell
        if kind == "uuid" or kind == "named-uuid":
            return body
        if kind == "set":
            return [_value(v) for v in body]
        if kind == "map":
            return {str(_value(k)): _value(v) for k, v in body}
    return cell


def _table(text: str) -> list[dict]:
    try:
        doc = json.loads(text)
        headings = doc["headings"]
        return [{h: _value(v) for h, v in zip(headings, row, strict=True)} for row in doc["data"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise CollectError(f"ovs-vsctl gave unexpected JSON: {exc}") from None


def _as_list(value) -> list:
    if isinstance(value, list):
        return value
    return [] if value in (None, "") else [value]


def _base(db: str | None) -> list[str]:
    return ["ovs-vsctl", "--timeout=10", "--format=json"] + ([f"--db={db}"] if db else [])


def collect_system(db: str | None) -> dict:
    """The ``Open_vSwitch`` row's ``external_ids``: what ovn-controller reads to register
    its chassis (``system-id``, ``hostname``, ``ovn-remote``, ``ovn-bridge``, ...)."""
    rows = _table(run(_base(db) + ["--columns=external_ids", "list", "Open_vSwitch"]))
    if len(rows) != 1:
        raise CollectError(f"ovs-vsctl listed {len(rows)} Open_vSwitch rows, expected 1")
    ext = rows[0].get("external_ids")
    values = {str(k): str(v) for k, v in ext.items()} if isinstance(ext, dict) else {}
    return {"external_ids": values}


def collect(db: str | None) -> list[dict]:
    """Bridges with their ports and interfaces."""
    base = _base(db)
    bridges = _table(run(base + ["--columns=_uuid,name,datapath_type,ports", "list", "Bridge"]))
    ports = {
        p["_uuid"]: p
        for p in _table(run(base + ["--columns=_uuid,name,interfaces,tag", "list", "Port"]))
    }
    ifaces = {
        i["_uuid"]: i
        for i in _table(
            run(base + ["--columns=_uuid,name,type,ofport,external_ids,error", "list", "Interface"])
        )
    }
    out = []
    for br in sorted(bridges, key=lambda b: b["name"]):
        br_ports = []
        for pid in _as_list(br.get("ports")):
            port = ports.get(pid)
            if port is None:
                continue
            members = []
            for iid in _as_list(port.get("interfaces")):
                iface = ifaces.get(iid)
                if iface is None:
                    continue
                ofport = iface.get("ofport")
                members.append(
                    {
                        "name": iface.get("name"),
                        "type": iface.get("type") or "",
                        "ofport": ofport if isinstance(ofport, int) else None,
                        "external_ids": iface.get("external_ids") or {},
                        "error": iface.get("error") or None,
                    }
                )
            br_ports.append({"name": port.get("name"), "interfaces": members})
        out.append(
            {
                "name": br["name"],
                "datapath_type": br.get("datapath_type") or "",
                "ports": sorted(br_ports, key=lambda p: p["name"] or ""),
            }
        )
    return out
