"""The binding rules: one binding row and its host's agents in, findings out.

Pure functions, no I/O: the audit feeds them rows streamed from a source.
Every row comes back with exactly one category, "judged" or the reason no
plug rule applies (a DHCP port, an OVN port, ...), so the summary can count
what was not judged instead of dropping it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vifdoctor.model import JUDGED, Agent, Binding, Finding, ParsedJson, Plug, parse_json_column
from vifdoctor.rules import catalog
from vifdoctor.rules.plug import (
    AGENT_LINUXBRIDGE,
    AGENT_OVS,
    DATAPATH_SYSTEM,
    L2_AGENT_TYPES,
    NOVA_VIF_TYPES,
    SRIOV_VIF_TYPES,
    VIF_BINDING_FAILED,
    VIF_BRIDGE,
    VIF_OVS,
    VIF_UNBOUND,
    VIF_VHOSTUSER,
    HostNeeds,
    RuleContext,
    host_needs,
    nova_plug,
)

RAW_CUT = 200  # characters of a malformed value shown in a finding

# The mechanism drivers whose bindings an L2 agent on the host must serve.
_AGENT_DRIVERS = {"openvswitch": AGENT_OVS, "linuxbridge": AGENT_LINUXBRIDGE}
_VIF_TYPE_AGENT = {VIF_OVS: AGENT_OVS, VIF_VHOSTUSER: AGENT_OVS, VIF_BRIDGE: AGENT_LINUXBRIDGE}


@dataclass
class Judgement:
    category: str
    findings: list[Finding] = field(default_factory=list)


def cut(text: str, limit: int = RAW_CUT) -> str:
    """A raw value cut short for display, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} chars)"


def shown_details(parsed: ParsedJson) -> Any:
    """Stored details for a report: the object where it parses, else the raw text."""
    if parsed.ok and parsed.raw:
        return parsed.value
    return cut(parsed.raw)


def new_finding(code: str, b: Binding, message: str, **fields: Any) -> Finding:
    info = catalog.CATALOG[code]
    return Finding(
        code=code,
        severity=info.severity,
        title=info.title,
        message=message,
        impact=info.impact,
        remedy=info.remedy,
        port_id=b.port_id,
        host=b.host,
        device_owner=b.device_owner,
        device_id=b.device_id,
        network_id=b.network_id,
        project_id=b.project_id,
        vif_type=b.vif_type,
        vnic_type=b.vnic_type,
        status=b.status or "",
        driver=b.driver or "",
        **fields,
    )


def agent_finding(agent: Agent) -> Finding | None:
    """VD111 for an agent whose configurations column is not a JSON object."""
    if agent.configurations_error is None:
        return None
    info = catalog.CATALOG["VD111"]
    return Finding(
        code="VD111",
        severity=info.severity,
        title=info.title,
        message=(
            f"{agent.agent_type} {agent.id} on {agent.host}: configurations is "
            f"{agent.configurations_error}: {cut(agent.configurations_raw)!r}"
        ),
        impact=info.impact,
        remedy=info.remedy,
        host=agent.host,
        extra={"agent_id": agent.id, "agent_type": agent.agent_type},
    )


def owner_category(device_owner: str) -> str:
    """Summary category of a port Nova does not plug."""
    if not device_owner:
        return "no device_owner (Nova plugs nothing)"
    prefix = device_owner.split(":", 1)[0]
    if prefix == "network":
        return f"{device_owner} (Nova plugs nothing)"
    return f"{prefix}:* (Nova plugs nothing)"


def judge_binding(b: Binding, agents: Sequence[Agent], ctx: RuleContext,
                  needs_memo: dict[str, HostNeeds] | None = None) -> Judgement:
    """Judge one binding row against the agents on its host.

    ``needs_memo`` (agent id -> HostNeeds) saves recomputing a host's needs for
    each of its ports within one run with one context.
    """
    details = parse_json_column(b.vif_details)
    profile = parse_json_column(b.profile)
    findings: list[Finding] = []
    for column, parsed in (("vif_details", details), ("profile", profile)):
        if not parsed.ok:
            findings.append(
                new_finding(
                    "VD104",
                    b,
                    f"{column} is {parsed.error}: {cut(parsed.raw)!r}",
                    stored_details=shown_details(details),
                    extra={"column": column},
                )
            )
    if not details.ok:
        return Judgement("malformed vif_details", findings)

    if b.status is not None and b.status != "ACTIVE":
        findings.append(_inactive_finding(b, details))
        return Judgement("inactive binding", findings)
    if not b.is_compute_port:
        return Judgement(owner_category(b.device_owner), findings)
    if b.vif_type == VIF_BINDING_FAILED:
        findings.append(
            new_finding(
                "VD105",
                b,
                f"binding failed on host {b.host or '(none)'}",
                nova_plug=Plug.NONE.value,
            )
        )
        return Judgement(JUDGED, findings)
    if b.vif_type == VIF_UNBOUND or not b.host:
        findings.append(
            new_finding(
                "VD106",
                b,
                f"not bound (vif_type {b.vif_type or '(empty)'}, host {b.host or '(empty)'})",
                nova_plug=Plug.NONE.value,
            )
        )
        return Judgement(JUDGED, findings)

    if b.vif_type not in NOVA_VIF_TYPES:
        findings.append(new_finding(
            "VD112", b, f"vif_type {b.vif_type!r} on {b.host}: Nova has no plug for it",
            stored_details=shown_details(details), nova_plug=Plug.NONE.value))
        return Judgement(JUDGED, findings)

    driver = (b.driver or "").strip()
    if driver and driver not in _AGENT_DRIVERS:
        return Judgement(f"driver {driver} (no agent-based rule)", findings)
    wanted_agent = _AGENT_DRIVERS.get(driver) or _VIF_TYPE_AGENT.get(b.vif_type)
    if wanted_agent is None:
        if b.vif_type in SRIOV_VIF_TYPES:
            return Judgement(f"SR-IOV/macvtap vif_type {b.vif_type} (no plug rule)", findings)
        return Judgement(f"vif_type {b.vif_type} (no plug rule)", findings)

    agent = _check_agents(b, agents, wanted_agent, details, findings)
    if agent is None:
        return Judgement(JUDGED, findings)
    if b.vif_type in (VIF_OVS, VIF_VHOSTUSER) and wanted_agent == AGENT_OVS:
        if b.vnic_type != "normal":
            return Judgement(f"ovs vnic_type {b.vnic_type} (hardware offload, no plug rule)",
                             findings)
        if needs_memo is None:
            needs = host_needs(agent, ctx)
        else:
            needs = needs_memo.get(agent.id) or needs_memo.setdefault(
                agent.id, host_needs(agent, ctx))
        findings.extend(judge_ovs(b, details.value, needs, ctx))
    elif b.vif_type == VIF_BRIDGE and ctx.enable_security_group:
        fields = {"nova_plug": Plug.BRIDGE.value, "needed_plug": Plug.BRIDGE.value,
                  "stored_details": shown_details(details)}
        findings.extend(_port_filter_finding(b, details.value, ctx, "linuxbridge", fields))
    return Judgement(JUDGED, findings)


def _inactive_finding(b: Binding, details: ParsedJson) -> Finding:
    beside = "beside its ACTIVE binding" if b.has_active_row else "with no ACTIVE binding"
    return new_finding(
        "VD109",
        b,
        f"port {b.port_id} has an INACTIVE binding on host {b.host} {beside}",
        stored_details=shown_details(details),
    )


def _check_agents(
    b: Binding,
    agents: Sequence[Agent],
    wanted: str,
    details: ParsedJson,
    findings: list[Finding],
) -> Agent | None:
    """VD107/VD108: the agent the binding needs on its host; None when there is none.

    A dead or admin-down agent is still returned: its last report still says
    what the host needs, and ML2 would refuse to bind to it (VD107).
    """
    of_type = [a for a in agents if a.agent_type == wanted]
    stored = shown_details(details)
    if of_type:
        agent = next((a for a in of_type if a.alive and a.admin_state_up), of_type[0])
        if not (agent.alive and agent.admin_state_up):
            state = "dead (no heartbeat within agent_down_time)" if not agent.alive else ""
            if not agent.admin_state_up:
                state = f"{state} and admin-down" if state else "admin-down"
            findings.append(
                new_finding(
                    "VD107",
                    b,
                    f"the {wanted} on {b.host} is {state}",
                    stored_details=stored,
                    extra={"agent_id": agent.id},
                )
            )
        return agent
    other_l2 = sorted({a.agent_type for a in agents if a.agent_type in L2_AGENT_TYPES})
    if other_l2:
        findings.append(
            new_finding(
                "VD108",
                b,
                f"vif_type {b.vif_type} needs a {wanted}, but {b.host} runs only "
                f"{', '.join(other_l2)}",
                stored_details=stored,
            )
        )
    else:
        findings.append(
            new_finding(
                "VD107",
                b,
                f"no {wanted} is registered on host {b.host}",
                stored_details=stored,
            )
        )
    return None


def judge_ovs(b: Binding, details: dict, needs: HostNeeds, ctx: RuleContext) -> list[Finding]:
    """VD101/VD102/VD103/VD108/VD110 for an ``ovs``/``vhostuser`` binding of a normal VIF."""
    plug = nova_plug(b.vif_type, details, ctx.nova_generation, ctx.nova_firewall_driver)
    out: list[Finding] = []
    common = {"nova_plug": plug.value, "needed_plug": needs.plug.value,
              "stored_details": details if b.vif_details else ""}

    if b.vif_type == VIF_VHOSTUSER:
        if not needs.vhostuser:
            out.append(new_finding(
                "VD108", b,
                f"vif_type vhostuser on {b.host}, whose OVS agent has no DPDK vhost-user "
                f"datapath ({needs.source})", **common))
        return out
    if needs.vhostuser:
        out.append(new_finding(
            "VD110", b,
            f"vif_type ovs on {b.host}, whose OVS agent binds vhostuser (netdev datapath "
            f"with DPDK vhost-user ports)", **common))
        return out

    if needs.plug is Plug.HYBRID and plug is Plug.DIRECT:
        fix = corrections("VD101", details, needs, ctx)
        out.append(new_finding(
            "VD101", b,
            f"ovs_hybrid_plug={_shown_key(details, 'ovs_hybrid_plug')}: Nova plugs direct, "
            f"the host needs hybrid ({needs.source})",
            expected_details=apply_correction(details, fix), correction=fix, **common))
    elif needs.plug is Plug.DIRECT and plug is Plug.HYBRID:
        fix = corrections("VD102", details, needs, ctx)
        reason = (f"ovs_hybrid_plug={_shown_key(details, 'ovs_hybrid_plug')}"
                  if details.get("ovs_hybrid_plug") else
                  "port_filter off and legacy Nova's firewall_driver is not Noop")
        out.append(new_finding(
            "VD102", b,
            f"{reason}: Nova plugs hybrid, the host needs direct ({needs.source})",
            expected_details=apply_correction(details, fix), correction=fix, **common))

    if needs.enforces_security_groups:
        out.extend(_port_filter_finding(b, details, ctx, needs.source, common))

    if needs.datapath_type is not None:
        stored_dp = details.get("datapath_type") or DATAPATH_SYSTEM
        if stored_dp != needs.datapath_type:
            fix = corrections("VD110", details, needs, ctx)
            out.append(new_finding(
                "VD110", b,
                f"datapath_type={_shown_key(details, 'datapath_type')}, the host's OVS agent "
                f"reports {needs.datapath_type}",
                expected_details=apply_correction(details, fix), correction=fix, **common))
    return out


def _port_filter_finding(
    b: Binding, details: dict, ctx: RuleContext, source: str, fields: dict
) -> list[Finding]:
    """VD103: port_filter off where the host enforces security groups."""
    if details.get("port_filter"):
        return []
    fix = {"set": {"port_filter": ctx.enable_security_group}, "remove": []}
    return [new_finding(
        "VD103", b,
        f"port_filter={_shown_key(details, 'port_filter')} although {b.host} enforces "
        f"security groups ({source})",
        expected_details=apply_correction(details, fix), correction=fix, **fields)]


def corrections(code: str, details: dict, needs: HostNeeds, ctx: RuleContext) -> dict:
    """What a repairable finding changes, as the mechanism driver writes the details.

    ``{"set": {key: value}, "remove": [key]}``; every other stored key is kept.
    """
    if code == "VD101":
        fix: dict = {}
        if "port_filter" not in details:
            fix["port_filter"] = ctx.enable_security_group
        fix["ovs_hybrid_plug"] = True  # after port_filter, in the mechanism driver's order
        # Neutron writes ovs_create_tap only for direct plugs (_pre_get_vif_details), and
        # os-vif refuses a hybrid port that asks for it (TapCreationNotSupported).
        remove = ["ovs_create_tap"] if "ovs_create_tap" in details else []
        return {"set": fix, "remove": remove}
    if code == "VD102":
        return {"set": {"ovs_hybrid_plug": False}, "remove": []}
    if code == "VD103":
        return {"set": {"port_filter": ctx.enable_security_group}, "remove": []}
    if code == "VD110" and needs.datapath_type is not None:
        return {"set": {"datapath_type": needs.datapath_type}, "remove": []}
    return {}


def apply_correction(details: dict, correction: dict | None) -> dict:
    """The stored object with a correction applied: keys set in place, others kept."""
    after = dict(details)
    if correction:
        after.update(correction.get("set", {}))
        for key in correction.get("remove", []):
            after.pop(key, None)
    return after


def _shown_key(details: dict, key: str) -> str:
    if key not in details:
        return "(missing)"
    return json.dumps(details[key])


def plugs(b: Binding, judgement: Judgement, ctx: RuleContext) -> tuple[str, str]:
    """(Nova's next plug from the stored details, the plug the host needs or "")."""
    details = parse_json_column(b.vif_details)
    current = details.as_dict() if details.ok else {}
    next_plug = nova_plug(b.vif_type, current, ctx.nova_generation,
                          ctx.nova_firewall_driver).value
    needed = next((f.needed_plug for f in judgement.findings if f.needed_plug), "")
    if not needed and judgement.category == JUDGED and b.vif_type == VIF_OVS:
        needed = next_plug  # judged and no plug finding: the stored plug is what it needs
    return next_plug, needed
