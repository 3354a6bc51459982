"""The binding rules: one binding row and its host's agents in, findings out.

Each code is one pure function, declared once with :func:`~vifdoctor.rules.registry.rule`
(its severity, words, the rows it applies to and, if repairable, its correction).
:func:`judge_binding` asks them in the order a binding is read: the row itself,
an inactive row, a VM port's binding state, then the port against its host's
agent. Every row comes back with exactly one category, "judged" or the reason
no plug rule applies (a DHCP port, an OVN port, ...), so the summary can count
what was not judged instead of dropping it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from vifdoctor.model import (
    JUDGED,
    VERDICT_FIELDS,
    Agent,
    Binding,
    Finding,
    ParsedJson,
    Plug,
    Severity,
    parse_json_column,
)
from vifdoctor.rules.finding import (
    Judgement,
    apply_correction,
    cut,
    declared_finding,
    new_finding,
    shown_details,
)
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
from vifdoctor.rules.registry import (
    AGENT,
    BINDING_ROW,
    INACTIVE_BINDING,
    VM_PORT_PLUG,
    VM_PORT_STATE,
    Scope,
    rule,
    rules_matching,
)

# The mechanism drivers whose bindings an L2 agent on the host must serve.
_AGENT_DRIVERS = {"openvswitch": AGENT_OVS, "linuxbridge": AGENT_LINUXBRIDGE}
_VIF_TYPE_AGENT = {VIF_OVS: AGENT_OVS, VIF_VHOSTUSER: AGENT_OVS, VIF_BRIDGE: AGENT_LINUXBRIDGE}
_VM = ("compute:",)
_L2_DRIVERS = frozenset({"", *_AGENT_DRIVERS})


@dataclass
class BindingCase:
    """One binding row with everything a binding rule may look at."""

    b: Binding
    details: ParsedJson
    profile: ParsedJson
    ctx: RuleContext
    agents: Sequence[Agent] = ()  # every agent on the binding's host
    wanted_agent: str = ""  # the agent type the binding needs
    agent: Agent | None = None  # that agent (a live one first), None when the host has none
    needs: HostNeeds | None = None  # what that OVS agent needs; None when no plug rule applies

    @property
    def stored(self) -> dict:
        return self.details.value

    def plug(self) -> Plug:
        return nova_plug(
            self.b.vif_type, self.stored, self.ctx.nova_generation, self.ctx.nova_firewall_driver
        )

    def plug_fields(self) -> dict:
        """What every finding about an OVS plug shows."""
        assert self.needs is not None
        return {
            "nova_plug": self.plug().value,
            "needed_plug": self.needs.plug.value,
            "stored_details": shown_details(self.details),
        }


def _shown_key(details: dict, key: str) -> str:
    if key not in details:
        return "(missing)"
    return json.dumps(details[key])


def _ovs_plug_rule_applies(case: BindingCase) -> bool:
    """An ``ovs`` VM port on a host whose OVS agent binds ``ovs`` (not DPDK vhost-user)."""
    return case.b.vif_type == VIF_OVS and case.needs is not None and not case.needs.vhostuser


# -- corrections: what the mechanism driver would write ---------------------
def hybrid_plug_correction(details: dict, needs: HostNeeds, ctx: RuleContext) -> dict:
    fix: dict = {}
    if "port_filter" not in details:
        fix["port_filter"] = ctx.enable_security_group
    fix["ovs_hybrid_plug"] = True  # after port_filter, in the mechanism driver's order
    # Neutron writes ovs_create_tap only for direct plugs (_pre_get_vif_details), and
    # os-vif refuses a hybrid port that asks for it (TapCreationNotSupported).
    remove = ["ovs_create_tap"] if "ovs_create_tap" in details else []
    return {"set": fix, "remove": remove}


def direct_plug_correction(details: dict, needs: HostNeeds, ctx: RuleContext) -> dict:
    return {"set": {"ovs_hybrid_plug": False}, "remove": []}


def port_filter_correction(details: dict, needs: HostNeeds | None, ctx: RuleContext) -> dict:
    return {"set": {"port_filter": ctx.enable_security_group}, "remove": []}


def datapath_correction(details: dict, needs: HostNeeds, ctx: RuleContext) -> dict:
    return {"set": {"datapath_type": needs.datapath_type}, "remove": []}


def _repairable(case: BindingCase, fix: dict) -> dict | None:
    """The correction the repair may write: none when the host's agent is not alive.

    A dead agent's last report is no proof of what the host needs today (after an
    ML2/OVS -> OVN migration it is the old OVS agent's): the finding stands, but the
    repair leaves the row alone until a live agent (or a re-bind) says what to write.
    Nor is a row whose stored text does not parse (VD104) ever rewritten.
    """
    return fix if case.details.ok and case.agent is not None and case.agent.alive else None


def _corrected(
    code_fix: Any, case: BindingCase, message: str, code: str, fields: dict | None = None
) -> Finding:
    fix = code_fix(case.stored, case.needs, case.ctx)
    if not case.details.ok:
        message += " (the stored text does not parse, VD104: Neutron hands Nova {})"
    return new_finding(
        code,
        case.b,
        message,
        expected_details=apply_correction(case.stored, fix),
        correction=_repairable(case, fix),
        **(case.plug_fields() if fields is None else fields),
    )


# -- the row itself -----------------------------------------------------------
@rule(
    "VD104",
    Severity.FAILURE,
    "malformed binding column",
    summary="vif_details or profile is not a JSON object (shown raw, cut short)",
    why=(
        "vif_details or profile is not a JSON object: truncated at the column's 4095 "
        "characters, hand-edited text, a list or a scalar. Neutron logs an error and hands "
        "Nova {} for text that does not parse (the other rules then judge the row as that "
        "{}, which is all API mode sees), and the bare value otherwise."
    ),
    impact=(
        "Nova plugs the port with no details at all (direct, no port filter), or fails to "
        "plug it when the value is not an object."
    ),
    remedy=(
        "Inspect the row by hand; vifdoctor never rewrites a malformed row. Re-binding the "
        "port through the API (binding:host_id to '' and back) makes the mechanism driver "
        "write fresh details."
    ),
    applies_to=Scope(BINDING_ROW),
)
def malformed_json(case: BindingCase) -> list[Finding]:
    return [
        new_finding(
            "VD104",
            case.b,
            f"{column} is {parsed.error}: {cut(parsed.raw)!r}",
            stored_details=shown_details(case.details),
            extra={"column": column},
        )
        for column, parsed in (("vif_details", case.details), ("profile", case.profile))
        if not parsed.ok
    ]


@rule(
    "VD109",
    Severity.WARNING,
    "stale inactive binding",
    summary=(
        "stale INACTIVE binding beside the ACTIVE one (Ocata+), when Nova's migration "
        "records were not read"
    ),
    why=(
        "An INACTIVE binding row sits beside the port's ACTIVE one: the remains of a live "
        "migration that failed or was aborted (Ocata+ multiple port bindings)."
    ),
    impact=(
        "The next live migration to that host can fail, and tools that read the first binding"
        " row may read the wrong one."
    ),
    remedy=(
        "If no migration is under way, delete it (`neutron-remove-duplicated-port-bindings`, "
        "or the port bindings API)."
    ),
    applies_to=Scope(INACTIVE_BINDING),
)
def stale_inactive_binding(case: BindingCase) -> list[Finding]:
    b = case.b
    beside = "beside its ACTIVE binding" if b.has_active_row else "with no ACTIVE binding"
    return [
        new_finding(
            "VD109",
            b,
            f"port {b.port_id} has an INACTIVE binding on host {b.host} {beside}",
            stored_details=shown_details(case.details),
        )
    ]


# -- a VM port's binding state: any of these ends its judging -------------------
@rule(
    "VD105",
    Severity.FAILURE,
    "binding failed",
    summary="a VM port whose binding failed",
    why=(
        "No mechanism driver could bind this VM port on its host (vif_type binding_failed): "
        "no live agent of the right type, no segment the agent can reach, or a vnic_type no "
        "driver supports."
    ),
    impact=(
        "Nova refuses to plug the port: the VM has no network on this port, and a boot, start"
        " or migration that needs it fails."
    ),
    remedy=(
        "Fix the agent or mappings on the host (see VD107/VD108), then re-bind the port "
        "(binding:host_id to '' and back, or re-attach the interface)."
    ),
    applies_to=Scope(VM_PORT_STATE, vif_types=frozenset({VIF_BINDING_FAILED}), device_owners=_VM),
)
def binding_failed(case: BindingCase) -> list[Finding]:
    b = case.b
    return [
        new_finding(
            "VD105", b, f"binding failed on host {b.host or '(none)'}", nova_plug=Plug.NONE.value
        )
    ]


@rule(
    "VD106",
    Severity.WARNING,
    "compute port unbound",
    summary="a VM port that is unbound",
    why=("A VM port is not bound to any host (vif_type unbound, or an empty host)."),
    impact=(
        "Nova cannot plug it; the instance shows the port but has no connectivity through it "
        "until it is bound."
    ),
    remedy=(
        "Check the instance's host and re-bind the port by setting binding:host_id to the "
        "instance's host."
    ),
    applies_to=Scope(VM_PORT_STATE, device_owners=_VM),
)
def unbound_vm_port(case: BindingCase) -> list[Finding]:
    b = case.b
    if b.vif_type == VIF_BINDING_FAILED or not (b.vif_type == VIF_UNBOUND or not b.host):
        return []
    return [
        new_finding(
            "VD106",
            b,
            f"not bound (vif_type {b.vif_type or '(empty)'}, host {b.host or '(empty)'})",
            nova_plug=Plug.NONE.value,
        )
    ]


@rule(
    "VD112",
    Severity.FAILURE,
    "vif type Nova cannot plug",
    summary="a VM port with a vif_type Nova cannot plug (none of nova's VIF_TYPE_*)",
    why=(
        "A VM port is bound with a vif_type that Nova does not know (none of "
        "nova.network.model's VIF_TYPE_*): a vendor driver's type on a Nova without its "
        "plugin, a hand edit, or a distributed (DVR) binding on a VM port."
    ),
    impact=(
        "Nova's libvirt driver raises 'Unexpected vif_type' when it plugs the VM: the next "
        "start, hard reboot or migration fails."
    ),
    remedy=(
        "Re-bind the port with a mechanism driver Nova supports on that host (binding:host_id"
        " to '' and back), or install the matching os-vif plugin."
    ),
    applies_to=Scope(VM_PORT_STATE, device_owners=_VM),
)
def vif_type_nova_cannot_plug(case: BindingCase) -> list[Finding]:
    b = case.b
    if not b.host or b.vif_type in NOVA_VIF_TYPES:
        return []
    return [
        new_finding(
            "VD112",
            b,
            f"vif_type {b.vif_type!r} on {b.host}: Nova has no plug for it",
            stored_details=shown_details(case.details),
            nova_plug=Plug.NONE.value,
        )
    ]


# -- a VM port against its host's L2 agent -------------------------------------


def _plug_scope(*vif_types: str) -> Scope:
    """A VM port of these vif_types, bound by an L2-agent driver (or none named)."""
    return Scope(
        VM_PORT_PLUG, vif_types=frozenset(vif_types), drivers=_L2_DRIVERS, device_owners=_VM
    )


@rule(
    "VD107",
    Severity.FAILURE,
    "no live agent",
    summary="no live agent of the binding's type on its host (missing, dead or admin-down)",
    why=(
        "The bound host has no agent of the type the binding needs, or that agent is dead (no"
        " heartbeat within agent_down_time) or administratively down."
    ),
    impact=(
        "The port's flows and firewall are not maintained; any re-bind on this host "
        "(migration, host update) ends in binding_failed."
    ),
    remedy=(
        "Start or repair the agent on the host (`openstack network agent list --host HOST`), "
        "or move the VM."
    ),
    applies_to=_plug_scope(VIF_OVS, VIF_VHOSTUSER, VIF_BRIDGE),
)
def no_live_agent(case: BindingCase) -> list[Finding]:
    b, agent, wanted = case.b, case.agent, case.wanted_agent
    stored = shown_details(case.details)
    if agent is None:
        if any(a.agent_type in L2_AGENT_TYPES for a in case.agents):
            return []  # another L2 agent serves the host: VD108
        return [
            new_finding(
                "VD107", b, f"no {wanted} is registered on host {b.host}", stored_details=stored
            )
        ]
    if agent.alive and agent.admin_state_up:
        return []
    state = "dead (no heartbeat within agent_down_time)" if not agent.alive else ""
    if not agent.admin_state_up:
        state = f"{state} and admin-down" if state else "admin-down"
    return [
        new_finding(
            "VD107",
            b,
            f"the {wanted} on {b.host} is {state}",
            stored_details=stored,
            extra={"agent_id": agent.id},
        )
    ]


@rule(
    "VD108",
    Severity.FAILURE,
    "vif type mismatch",
    summary="vif_type does not match the agents on the host",
    why=(
        "The binding's vif_type is not what any agent on the host serves (for example "
        "vif_type bridge on a host that only runs the Open vSwitch agent): the host's L2 "
        "agent changed since the port was bound."
    ),
    impact=(
        "Nova plugs the VIF for a backend that no longer runs on the host: the VM has no "
        "connectivity through this port after its next plug."
    ),
    remedy=(
        "Re-bind the port so the host's current mechanism driver binds it (binding:host_id to"
        " '' and back), then re-plug the VM."
    ),
    applies_to=_plug_scope(VIF_OVS, VIF_VHOSTUSER, VIF_BRIDGE),
)
def agent_type_mismatch(case: BindingCase) -> list[Finding]:
    b = case.b
    if case.agent is None:
        other_l2 = sorted({a.agent_type for a in case.agents if a.agent_type in L2_AGENT_TYPES})
        if not other_l2:
            return []
        return [
            new_finding(
                "VD108",
                b,
                f"vif_type {b.vif_type} needs a {case.wanted_agent}, but {b.host} runs "
                f"only {', '.join(other_l2)}",
                stored_details=shown_details(case.details),
            )
        ]
    if b.vif_type == VIF_VHOSTUSER and case.needs is not None and not case.needs.vhostuser:
        return [
            new_finding(
                "VD108",
                b,
                f"vif_type vhostuser on {b.host}, whose OVS agent has no DPDK "
                f"vhost-user datapath ({case.needs.source})",
                **case.plug_fields(),
            )
        ]
    return []


@rule(
    "VD101",
    Severity.FAILURE,
    "hybrid plug missing",
    summary=(
        "hybrid plug missing: the host needs hybrid (iptables_hybrid firewall), Nova "
        "will plug direct"
    ),
    why=(
        "The host's OVS agent filters traffic with the iptables_hybrid firewall, which "
        "matches the VM's tap on a qbr Linux bridge. The stored vif_details do not make Nova "
        "plug through that bridge (ovs_hybrid_plug is missing, null or false), so Nova puts "
        "the tap straight on the integration bridge. This is the Havana -> Icehouse incident:"
        " ports bound before vif_details existed kept empty details."
    ),
    impact=(
        "Security groups are not enforced once the VM is plugged this way; a running VM "
        "booted with the old hybrid wiring keeps it until its next stop/start or hard reboot,"
        " which re-plugs it direct and can leave it without network."
    ),
    remedy=(
        "Set ovs_hybrid_plug (and port_filter) as the mechanism driver writes them for this "
        "host (`vifdoctor repair`), then hard-reboot or stop/start each VM whose live wiring "
        "must change."
    ),
    applies_to=_plug_scope(VIF_OVS),
    correction=hybrid_plug_correction,
    repair_by_default=True,
)
def hybrid_plug_missing(case: BindingCase) -> list[Finding]:
    if not _ovs_plug_rule_applies(case):
        return []
    assert case.needs is not None
    if not (case.needs.plug is Plug.HYBRID and case.plug() is Plug.DIRECT):
        return []
    return [
        _corrected(
            hybrid_plug_correction,
            case,
            f"ovs_hybrid_plug={_shown_key(case.stored, 'ovs_hybrid_plug')}: Nova "
            f"plugs direct, the host needs hybrid ({case.needs.source})",
            "VD101",
        )
    ]


@rule(
    "VD102",
    Severity.WARNING,
    "hybrid plug unexpected",
    summary="hybrid plug unexpected: native firewall (openvswitch/noop) but Nova will plug hybrid",
    why=(
        "The host's agent uses a native firewall (openvswitch or noop) that needs no qbr "
        "bridge, but Nova will plug this port hybrid: typically left over from an "
        "iptables_hybrid -> openvswitch firewall migration, since ML2 never rebinds a bound "
        "port on its own."
    ),
    impact=(
        "The VM gets a useless qbr/qvb/qvo chain: extra latency and devices; the openvswitch "
        "firewall still filters on the qvo port. Nothing breaks now."
    ),
    remedy=(
        "Correct ovs_hybrid_plug to false (`vifdoctor repair --code VD102`) and re-plug the "
        "VM at a convenient time (hard reboot, stop/start or a live migration)."
    ),
    applies_to=_plug_scope(VIF_OVS),
    correction=direct_plug_correction,
)
def hybrid_plug_unexpected(case: BindingCase) -> list[Finding]:
    if not _ovs_plug_rule_applies(case):
        return []
    assert case.needs is not None
    if not (case.needs.plug is Plug.DIRECT and case.plug() is Plug.HYBRID):
        return []
    reason = (
        f"ovs_hybrid_plug={_shown_key(case.stored, 'ovs_hybrid_plug')}"
        if case.stored.get("ovs_hybrid_plug")
        else "port_filter off and legacy Nova's firewall_driver is not Noop"
    )
    return [
        _corrected(
            direct_plug_correction,
            case,
            f"{reason}: Nova plugs hybrid, the host needs direct ({case.needs.source})",
            "VD102",
        )
    ]


@rule(
    "VD103",
    Severity.WARNING,
    "port filter off",
    summary="port_filter missing or false where the host enforces security groups",
    why=(
        "port_filter is missing or false although security groups are enabled and the host's "
        "agent enforces them. The mechanism driver writes port_filter = [securitygroup] "
        "enable_security_group; a missing key marks a binding written by an old migration or "
        "by hand."
    ),
    impact=(
        "Legacy Nova (up to Train) with a non-Noop firewall_driver treats the port as "
        "unfiltered and plugs it hybrid with its own iptables rules; API clients and os-vif "
        "see traffic filtering as off."
    ),
    remedy=("Set port_filter as the mechanism driver writes it (`vifdoctor repair`)."),
    applies_to=_plug_scope(VIF_OVS, VIF_BRIDGE),
    correction=port_filter_correction,
    repair_by_default=True,
)
def port_filter_off(case: BindingCase) -> list[Finding]:
    b, ctx = case.b, case.ctx
    if b.vif_type == VIF_BRIDGE:
        if case.agent is None or not ctx.enable_security_group:
            return []
        source = "linuxbridge"
        fields = {
            "nova_plug": Plug.BRIDGE.value,
            "needed_plug": Plug.BRIDGE.value,
            "stored_details": shown_details(case.details),
        }
    else:
        if not _ovs_plug_rule_applies(case):
            return []
        assert case.needs is not None
        if not case.needs.enforces_security_groups:
            return []
        source, fields = case.needs.source, case.plug_fields()
    if case.stored.get("port_filter"):
        return []
    return [
        _corrected(
            port_filter_correction,
            case,
            f"port_filter={_shown_key(case.stored, 'port_filter')} although {b.host} enforces "
            f"security groups ({source})",
            "VD103",
            fields,
        )
    ]


@rule(
    "VD110",
    Severity.WARNING,
    "datapath mismatch",
    summary="datapath_type differs from the agent's, or ovs on a host that binds vhostuser",
    why=(
        "datapath_type in the details differs from the one the host's OVS agent reports, or "
        "an ovs binding sits on a host whose agent would bind vhostuser (netdev datapath with"
        " DPDK vhost-user ports)."
    ),
    impact=(
        "Nova/os-vif create the port for the wrong datapath: on a DPDK host a system datapath"
        " port does not pass traffic."
    ),
    remedy=(
        "Correct datapath_type (`vifdoctor repair --code VD110`) or re-bind the port so the "
        "mechanism driver writes the right vif_type, then re-plug the VM."
    ),
    applies_to=_plug_scope(VIF_OVS),
    correction=datapath_correction,
)
def datapath_mismatch(case: BindingCase) -> list[Finding]:
    b, needs = case.b, case.needs
    if b.vif_type != VIF_OVS or needs is None:
        return []
    if needs.vhostuser:
        return [
            new_finding(
                "VD110",
                b,
                f"vif_type ovs on {b.host}, whose OVS agent binds vhostuser (netdev "
                f"datapath with DPDK vhost-user ports)",
                **case.plug_fields(),
            )
        ]
    stored_dp = case.stored.get("datapath_type") or DATAPATH_SYSTEM
    if needs.datapath_type is None or stored_dp == needs.datapath_type:
        return []
    return [
        _corrected(
            datapath_correction,
            case,
            f"datapath_type={_shown_key(case.stored, 'datapath_type')}, the host's "
            f"OVS agent reports {needs.datapath_type}",
            "VD110",
        )
    ]


# -- agents ----------------------------------------------------------------------
@rule(
    "VD111",
    Severity.WARNING,
    "agent configurations unreadable",
    summary="an agent's configurations column is not a JSON object",
    why=(
        "The agent's configurations column is not a JSON object. Neutron reads it as {} and "
        "binds as if the agent reported nothing (no bridge mappings, no ovs_hybrid_plug)."
    ),
    impact=(
        "New bindings on this host can fail or get the wrong details; vifdoctor falls back to"
        " the firewall-driver assumption for this host."
    ),
    remedy=("Restart the agent so its next report rewrites the column."),
    applies_to=Scope(AGENT),
)
def agent_finding(agent: Agent) -> Finding | None:
    """VD111 for an agent whose configurations column is not a JSON object."""
    if agent.configurations_error is None:
        return None
    return declared_finding(
        "VD111",
        f"{agent.agent_type} {agent.id} on {agent.host}: configurations is "
        f"{agent.configurations_error}: {cut(agent.configurations_raw)!r}",
        host=agent.host,
        extra={"agent_id": agent.id, "agent_type": agent.agent_type},
    )


# -- the engine --------------------------------------------------------------------
def owner_category(device_owner: str) -> str:
    """Summary category of a port Nova does not plug."""
    if not device_owner:
        return "no device_owner (Nova plugs nothing)"
    prefix = device_owner.split(":", 1)[0]
    if prefix == "network":
        return f"{device_owner} (Nova plugs nothing)"
    return f"{prefix}:* (Nova plugs nothing)"


def _ask(subject: str, case: BindingCase) -> list[Finding]:
    """Every rule of one subject that applies to the row, in code order."""
    found: list[Finding] = []
    for r in rules_matching(subject, case.b):
        found.extend(r.check(case))  # type: ignore[misc]
    return found


def _no_plug_rule(b: Binding) -> tuple[str, str | None]:
    """(the agent type the binding needs, or "" and the category saying why none applies)."""
    driver = (b.driver or "").strip()
    if driver and driver not in _AGENT_DRIVERS:
        return "", f"driver {driver} (no agent-based rule)"
    wanted = _AGENT_DRIVERS.get(driver) or _VIF_TYPE_AGENT.get(b.vif_type)
    if wanted is None:
        if b.vif_type in SRIOV_VIF_TYPES:
            return "", f"SR-IOV/macvtap vif_type {b.vif_type} (no plug rule)"
        return "", f"vif_type {b.vif_type} (no plug rule)"
    return wanted, None


def judge_binding(
    b: Binding,
    agents: Sequence[Agent],
    ctx: RuleContext,
    needs_memo: dict[str, HostNeeds] | None = None,
) -> Judgement:
    """Judge one binding row against the agents on its host.

    ``needs_memo`` (agent id -> HostNeeds) saves recomputing a host's needs for
    each of its ports within one run with one context.
    """
    case = BindingCase(
        b, parse_json_column(b.vif_details), parse_json_column(b.profile), ctx, agents
    )
    findings = _ask(BINDING_ROW, case)
    if not isinstance(case.stored, dict):
        # JSON that is not an object: Neutron hands it to Nova as is, and Nova cannot plug it.
        return Judgement("malformed vif_details", findings)
    # Text that does not parse is VD104, and Neutron's API (hence Nova, and API mode)
    # sees {}: the row is judged further as that {}, so both paths find the same.
    if b.status is not None and b.status != "ACTIVE":
        return Judgement("inactive binding", findings + _ask(INACTIVE_BINDING, case))
    if not b.is_compute_port:
        return Judgement(owner_category(b.device_owner), findings)
    state = _ask(VM_PORT_STATE, case)
    if state:
        return Judgement(JUDGED, findings + state)
    wanted, category = _no_plug_rule(b)
    if category is not None:
        return Judgement(category, findings)
    case.wanted_agent = wanted
    of_type = [a for a in agents if a.agent_type == wanted]
    case.agent = next(
        (a for a in of_type if a.alive and a.admin_state_up), of_type[0] if of_type else None
    )
    offload = b.vif_type in (VIF_OVS, VIF_VHOSTUSER) and b.vnic_type != "normal"
    if (
        case.agent is not None
        and wanted == AGENT_OVS
        and not offload
        and b.vif_type in (VIF_OVS, VIF_VHOSTUSER)
    ):
        agent = case.agent
        if needs_memo is None:
            case.needs = host_needs(agent, ctx)
        else:
            case.needs = needs_memo.get(agent.id) or needs_memo.setdefault(
                agent.id, host_needs(agent, ctx)
            )
    findings += _ask(VM_PORT_PLUG, case)
    if offload and case.agent is not None and wanted == AGENT_OVS:
        return Judgement(f"ovs vnic_type {b.vnic_type} (hardware offload, no plug rule)", findings)
    return Judgement(JUDGED, findings)


class BindingJudge:
    """``judge_binding`` for one run (one context, one agents table), with its memos.

    Most rows of a cloud are clean and alike: a rule's verdict depends on the row's
    host (its agents), types, stored texts, status, driver and owner, never on its
    ids (they only appear in findings' messages). So a clean verdict is remembered
    by those fields and a row like one already judged clean is not judged again
    (issue 14: the rules were half of an audit's Python time). Rows with findings
    are always judged in full, so each finding names its own port.

    With ``shapes`` (for callers that read only the findings' codes and corrections,
    as the repair's plan does), every verdict is remembered, findings included: rows
    of one shape then share one Judgement, whose findings name the first such port.
    """

    MAX_CLEAN = 65536  # distinct shapes kept; a cloud of unique texts stays bounded

    def __init__(
        self,
        ctx: RuleContext,
        shapes: bool = False,
        by_shape: dict[bytes, Judgement] | None = None,
    ):
        self.ctx = ctx
        self.shapes = shapes
        self.needs: dict[str, HostNeeds] = {}
        self.clean: dict[tuple, Judgement] = {}  # shared by the rows alike: read-only
        self.verdicts: dict[tuple, Judgement] = {}
        # The clean verdicts again, by the source's bytes of the row (Binding.shape): a
        # source handed this dict gives a row of a known shape back as its verdict,
        # without building it (issue 14: building and keying 900k clean rows of a
        # million-port cloud was a third of the audit's CPU). Only for callers that do
        # nothing else with a clean row (run_audit without joins).
        self.by_shape: dict[bytes, Judgement] = {} if by_shape is None else by_shape

    def __call__(self, b: Binding, agents: Sequence[Agent]) -> Judgement:
        key = _verdict_key(b)
        clean = self.clean.get(key)
        if clean is not None:
            if b.shape is not None:
                self._remember(b.shape, clean)
            return clean
        if self.shapes:
            shared = self.verdicts.get(key)
            if shared is not None:
                return shared
        judgement = judge_binding(b, agents, self.ctx, self.needs)
        if self.shapes and judgement.findings:
            if len(self.verdicts) >= self.MAX_CLEAN:
                self.verdicts.clear()
            self.verdicts[key] = judgement
        if not judgement.findings:
            if len(self.clean) >= self.MAX_CLEAN:
                self.clean.clear()
            self.clean[key] = judgement
            if b.shape is not None:
                self._remember(b.shape, judgement)
        return judgement

    def _remember(self, shape: bytes, judgement: Judgement) -> None:
        if len(self.by_shape) >= self.MAX_CLEAN:
            self.by_shape.clear()
        self.by_shape[shape] = judgement


# The memo's key: every field a verdict depends on, in one C call.
_verdict_key = attrgetter(*VERDICT_FIELDS)


def plugs(b: Binding, judgement: Judgement, ctx: RuleContext) -> tuple[str, str]:
    """(Nova's next plug from the stored details, the plug the host needs or "")."""
    details = parse_json_column(b.vif_details)
    current = details.as_dict() if details.ok else {}
    next_plug = nova_plug(b.vif_type, current, ctx.nova_generation, ctx.nova_firewall_driver).value
    needed = next((f.needed_plug for f in judgement.findings if f.needed_plug), "")
    if not needed and judgement.category == JUDGED and b.vif_type == VIF_OVS:
        needed = next_plug  # judged and no plug finding: the stored plug is what it needs
    return next_plug, needed
