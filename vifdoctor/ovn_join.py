"""OVN's side of an audit: the NB/SB view read once, and the OVN rules applied per binding.

Like the host join, this sits between the audit's stream and the rules: the
audit asks :meth:`OvnJoin.claims` whether OVN serves a binding, then has it
judged here instead of by the agent-based rules; at the end, :meth:`finish`
reports the LSPs no Neutron port explains (VD407) and :meth:`document` the
migration view ("N of M VM ports fully on OVN").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vifdoctor.model import Agent, Binding, Finding, HostWiring, Instance
from vifdoctor.model_ovn import (
    AGENT_CONTROLLER,
    AGENT_CONTROLLER_GW,
    DEFAULT_OVN_BRIDGE,
    OVN_SWITCH_PREFIX,
    OvnChassis,
    OvnView,
    Segment,
    chassis_list,
    parse_bridge_mappings,
)
from vifdoctor.rules.binding import Judgement
from vifdoctor.rules.ovn import (
    MigrationTally,
    OvnContext,
    is_orphan_candidate,
    is_ovn_binding,
    judge_ovn_binding,
    orphan_finding,
    unclaimed_findings,
)
from vifdoctor.rules.ovn_host import (
    OvnHost,
    judge_hybrid,
    judge_port_interfaces,
    judge_system_id,
    ovn_host,
    stale_chains,
)
from vifdoctor.rules.plug import AGENT_OVS, RuleContext

TRUNK_BRIDGE_PREFIX = "tbr-"  # neutron's OVS trunk driver: one bridge per trunk

OVN_ASSUMPTIONS = (
    "OVN: a binding is OVN's when its driver is ovn, or when it is ovs/vhostuser on a host "
    "with no live Open vSwitch agent that has an OVN chassis (or on a cloud with no live OVS "
    "agent at all): the OVS -> OVN migration keeps the openvswitch binding levels",
    "OVN: chassis liveness is neutron's AgentCache rule (nb_cfg within one round of "
    "NB_Global, else nb_cfg_timestamp within agent_down_time), by this machine's clock",
    "OVN: details without bridge_name are plugged by Nova into its [neutron] ovs_bridge, "
    "taken to be br-int",
)


AGENTS_ONLY_NOTE = (
    "OVN: judged from the OVN agents Neutron lists (GET /v2.0/agents, neutron's AgentCache): "
    "VD401-VD403 only, on single-segment networks for VD403; the details, the LSPs and "
    "the claims (VD404-VD410) need --ovn-nb-connection and --ovn-sb-connection"
)


def view_from_agents(agents: dict[str, list[Agent]]) -> OvnView | None:
    """Chassis as the API shows OVN's synthesized agents; None when it shows none."""
    chassis = []
    for host, rows in agents.items():
        for a in rows:
            if a.agent_type not in (AGENT_CONTROLLER, AGENT_CONTROLLER_GW):
                continue
            mappings = str(a.configurations.get("bridge-mappings") or "")
            physnets, error = parse_bridge_mappings(mappings)
            chassis.append(
                OvnChassis(
                    name=str(a.configurations.get("chassis_name") or a.id),
                    hostname=host,
                    alive=a.alive,
                    liveness="Neutron's API says the agent is "
                    + ("alive" if a.alive else "dead (AgentCache: nb_cfg and nb_cfg_timestamp)"),
                    gateway=a.agent_type == AGENT_CONTROLLER_GW,
                    bridge_mappings=mappings,
                    physnets=physnets,
                    mappings_error=error,
                    datapath_type="",
                    iface_types=(),
                    ovn_bridge=DEFAULT_OVN_BRIDGE,
                )
            )
    if not chassis:
        return None
    return OvnView(
        nb_cfg=0,
        chassis=chassis,
        ports={},
        source={"from": "GET /v2.0/agents", "chassis": len(chassis)},
    )


@dataclass
class OvnJoin:
    view: OvnView
    ctx: RuleContext
    octx: OvnContext
    segments: dict[str, Segment]
    live_ovs_anywhere: bool
    chassis_only: bool = False  # the API's agents, no NB/SB: VD401-VD403 only
    tally: MigrationTally = field(default_factory=MigrationTally)
    seen: set[str] = field(default_factory=set)  # every port id the stream carried
    ovn_vm_ports: set[str] = field(default_factory=set)  # VM ports judged as OVN's
    _hosts: dict[str, OvnHost | None] = field(default_factory=dict)  # host scans, as OVN sees
    _claims: dict[str, list[str]] | None = None  # chassis name -> VM ports it claims (SB)
    # The port the tally just counted fully on OVN: a host scan's finding on it, judged
    # right after (HostJoin), takes it back. One port, not a set: memory stays flat.
    _last_fully: str | None = None

    def claims(self, b: Binding, host_agents: Sequence[Agent]) -> bool:
        self.seen.add(b.port_id)
        return is_ovn_binding(b, host_agents, self.view, self.live_ovs_anywhere)

    def judge(self, b: Binding) -> Judgement:
        segment = self.segments.get(b.segment or "") or self.segments.get(f"net:{b.network_id}")
        if b.is_compute_port:
            self.ovn_vm_ports.add(b.port_id)
        judged = judge_ovn_binding(
            b,
            self.view,
            self.ctx,
            self.octx,
            segment=segment,
            port_status=b.port_status or None,
            chassis_only=self.chassis_only,
        )
        fully = self.tally.add(b, judged)
        self._last_fully = b.port_id if fully else None
        return Judgement(judged.category, judged.findings)

    def found_on_host(self, b: Binding) -> None:
        """A host scan found something on this port, just judged: it is not fully on OVN
        ("none of these and no finding", docs/ovn.md), whatever its binding says."""
        if self._last_fully == b.port_id:
            self.tally.take_back(b.host)
            self._last_fully = None

    def judge_instance(self, instance: Instance | None, group: Sequence[Binding]) -> list[Finding]:
        """An instance's OVN ports that no chassis claims while its VIFs are plugged."""
        if self.chassis_only:
            return []
        return unclaimed_findings(
            instance, [b for b in group if b.port_id in self.ovn_vm_ports], self.view
        )

    def serves(self, b: Binding) -> bool:
        """Whether the port was judged as OVN's (its host wiring then follows OVN)."""
        return b.port_id in self.ovn_vm_ports

    def host(self, w: HostWiring) -> OvnHost | None:
        """The scanned host as OVN sees it, once per host (None: OVN does not serve it)."""
        if w.host not in self._hosts:
            self._hosts[w.host] = ovn_host(w, self.view)
        return self._hosts[w.host]

    def judge_wired(
        self, b: Binding, w: HostWiring, wiring_kind: str, next_plug: str
    ) -> list[Finding]:
        """VD412-VD415 for one OVN VM port bound to a scanned host."""
        out = judge_hybrid(b, wiring_kind, next_plug)
        here = self.host(w)
        if here is not None:
            lsp = self.view.ports.get(b.port_id)
            out.extend(
                judge_port_interfaces(b.port_id, w, here, lsp.claimed_by if lsp else None, b)
            )
        return out

    def judge_host(
        self, w: HostWiring, bound_here: set[str], agents: Sequence[Agent]
    ) -> list[Finding]:
        """Per scanned host: VD411, the interfaces of VM ports its chassis claims that
        Neutron binds elsewhere (VD412/VD413), and VD416."""
        here = self.host(w)
        if here is None:
            return []
        out = judge_system_id(w, here)
        if self._claims is None:
            self._claims = {}
            for p in self.view.ports.values():
                if p.claimed_by and not p.type and p.device_owner.startswith("compute:"):
                    self._claims.setdefault(p.claimed_by, []).append(p.name)
        for name in sorted(here.names):
            for port in sorted(self._claims.get(name, [])):
                if port not in bound_here:
                    out.extend(judge_port_interfaces(port, w, here, name))
        out.extend(stale_chains(w, agents))
        return out

    def finish(
        self, neutron_has: Callable[[list[str]], dict[str, str]], networks: Sequence[str] = ()
    ) -> list[Finding]:
        """VD407: LSPs on neutron switches whose name no Neutron port has."""
        if self.chassis_only:
            return []
        wanted = {OVN_SWITCH_PREFIX + n for n in networks}
        candidates = [
            p
            for p in self.view.ports.values()
            if is_orphan_candidate(p)
            and p.name not in self.seen
            and (not wanted or p.switch in wanted)
        ]
        known = neutron_has([p.name for p in candidates]) if candidates else {}
        return [
            orphan_finding(p, self.octx)
            for p in sorted(candidates, key=lambda p: p.name)
            if p.name not in known
        ]

    def document(
        self, agents: dict[str, list[Agent]], wiring: dict[str, HostWiring] | None = None
    ) -> dict:
        self.tally.add_agents(agents)
        for host, w in sorted((wiring or {}).items()):  # host-scan reports, when given
            self.tally.add_trunk_bridges(host, len(trunk_bridges(w)))
        return {
            "source": self.view.source,
            "chassis": chassis_list(self.view.chassis),
            "migration": self.tally.as_dict(),
        }


def trunk_bridges(w: HostWiring) -> set[str]:
    """ML2/OVS trunk bridges (tbr-<trunk id>) a host scan found; OVN uses none."""
    return {i.bridge for i in w.ovs.values() if i.bridge.startswith(TRUNK_BRIDGE_PREFIX)}


def live_ovs_agents(agents: dict[str, list[Agent]]) -> bool:
    return any(a.agent_type == AGENT_OVS and a.alive for rows in agents.values() for a in rows)


def migration_footer(ovn: dict) -> list[str]:
    """The migration view as lines for the table output."""
    mig = ovn["migration"]
    src = ovn["source"]
    if "from" in src:
        lines = [f"OVN: {src.get('chassis', 0)} agents from {src['from']} (no NB/SB read)"]
    else:
        lines = [
            f"OVN: {src.get('chassis', 0)} chassis, "
            f"{src.get('logical_switch_ports', 0)} logical switch ports read"
        ]
    for host, row in mig["hosts"].items():
        left = {k: v for k, v in row.items() if k not in ("vm_ports", "fully_on_ovn") and v}
        if left:
            lines.append(
                f"  ML2/OVS left on {host}: " + ", ".join(f"{v} {k}" for k, v in left.items())
            )
    lines.append(mig["summary"])
    return lines


def open_ovn(
    nb: str | None,
    sb: str | None,
    config_files: Sequence[str],
    source: object,
    agents: dict[str, list[Agent]],
    ctx: RuleContext,
    down_time: float,
) -> tuple[OvnJoin | None, list[str]]:
    """Read NB/SB when they are named (flags or [ovn]); None when they are not."""
    from vifdoctor.sources.neutron_segments import read_segments
    from vifdoctor.sources.ovn import read_ovn, resolve_ovn

    settings = resolve_ovn(nb, sb, list(config_files))
    if not settings.given:
        view = view_from_agents(agents)
        if view is None:
            return None, []
        octx = OvnContext(
            enable_security_group=ctx.enable_security_group, config_files=tuple(config_files)
        )
        join = OvnJoin(
            view, ctx, octx, read_segments(source), live_ovs_agents(agents), chassis_only=True
        )
        return join, [AGENTS_ONLY_NOTE, OVN_ASSUMPTIONS[0]]
    assert settings.nb is not None and settings.sb is not None  # given: both (resolve_ovn)
    view = read_ovn(settings, down_time)
    octx = OvnContext(
        enable_security_group=ctx.enable_security_group,
        vhost_sock_dir=settings.vhost_sock_dir,
        ovs_create_tap=settings.ovs_create_tap,
        config_files=tuple(config_files),
    )
    join = OvnJoin(view, ctx, octx, read_segments(source), live_ovs_agents(agents))
    notes = [
        f"OVN NB {view.source['nb']} ({settings.nb.source}), SB {view.source['sb']} "
        f"({settings.sb.source}); read once, never written",
        *OVN_ASSUMPTIONS,
    ]
    return join, notes
