"""Linux network devices: bridges and their members, veth peers, taps (``ip -j -d link``)."""

from __future__ import annotations

import json

from vifdoctor.sources.host import CollectError, run


def collect() -> list[dict]:
    try:
        items = json.loads(run(["ip", "-j", "-d", "link", "show"]) or "[]")
    except ValueError as exc:
        raise CollectError(f"ip -j gave unparsable JSON: {exc}") from None
    by_index = {i.get("ifindex"): i.get("ifname") for i in items if isinstance(i, dict)}
    links = []
    for item in items:
        if not isinstance(item, dict):
            continue
        info = item.get("linkinfo") or {}
        kind = info.get("info_kind") or ""
        if not kind and "tun" in (info.get("info_slave_kind") or ""):
            kind = "tun"
        peer = item.get("link")
        if peer is None and item.get("link_index") is not None and kind == "veth":
            peer = by_index.get(item.get("link_index"))
        links.append(
            {
                "name": item.get("ifname"),
                "kind": kind,
                "master": item.get("master"),
                "peer": peer if kind == "veth" else None,
                "operstate": item.get("operstate"),
                "mac": item.get("address"),
            }
        )
    return links
