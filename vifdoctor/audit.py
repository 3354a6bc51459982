"""The audit: stream every binding from a source through the rules, count what was seen.

Memory stays flat however many ports there are: bindings are streamed and
judged one at a time; only the findings (and the small agents table) are kept.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from vifdoctor import __version__
from vifdoctor.errors import EXIT_CANNOT_RUN, EXIT_FAILURE, EXIT_OK, EXIT_WARNING
from vifdoctor.model import Agent, Binding, Finding, Severity
from vifdoctor.rules import wiring as wiring_rules
from vifdoctor.rules.binding import JUDGED, Judgement, agent_finding, judge_binding, plugs
from vifdoctor.rules.migration import (
    DEFAULT_STUCK_AFTER,
    judge_moves,
    merge_cell_copies,
    with_moves,
)
from vifdoctor.rules.nova import Instance, impact, judge_instance, remediation
from vifdoctor.rules.plug import RuleContext, parse_json_column
from vifdoctor.spool import Spool

_SEVERITY_ORDER = {Severity.FAILURE: "0", Severity.WARNING: "1", Severity.INFO: "2"}


@dataclass
class AuditReport:
    """What an audit found, ready for any output format.

    Findings and affected instances are spooled to disk as they come (see
    vifdoctor.spool); only their counts are kept in memory.
    """

    schema: dict
    assumptions: list[str]
    findings: Spool = field(default_factory=Spool)
    rows: int = 0
    categories: Counter = field(default_factory=Counter)
    agents: list[dict] = field(default_factory=list)
    nova: list[dict] | None = None  # the cells read; None when Nova was not read
    instances: Spool = field(default_factory=Spool)  # affected instances, with steps
    instances_read: int = 0
    by_code: Counter = field(default_factory=Counter)
    by_severity: Counter = field(default_factory=Counter)
    by_host: Counter = field(default_factory=Counter)

    def add(self, f: Finding) -> None:
        self.by_code[f.code] += 1
        self.by_severity[f.severity.value] += 1
        if f.host:
            self.by_host[f.host] += 1
        self.findings.add(f.as_dict(), (_SEVERITY_ORDER[f.severity], f.code, f.host,
                                        f.port_id))

    @property
    def exit_code(self) -> int:
        if self.by_severity[Severity.FAILURE.value]:
            return EXIT_FAILURE
        if self.by_severity[Severity.WARNING.value]:
            return EXIT_WARNING
        return EXIT_OK

    def summary(self) -> dict:
        skipped = {k: v for k, v in sorted(self.categories.items()) if k != JUDGED}
        return {
            "bindings": self.rows,
            "judged": self.categories.get(JUDGED, 0),
            "skipped": skipped,
            "findings": len(self.findings),
            "by_code": dict(sorted(self.by_code.items())),
            "by_severity": {s.value: self.by_severity.get(s.value, 0) for s in Severity},
            "by_host": dict(sorted(self.by_host.items())),
            "exit_code": self.exit_code,
            **({"instances_read": self.instances_read,
                "instances_affected": len(self.instances)} if self.nova is not None else {}),
        }

    def document(self) -> dict:
        """The JSON/YAML document (docs/output.md describes it); rows stay spooled."""
        return {
            "tool": {"name": "vifdoctor", "version": __version__},
            "schema": self.schema,
            "assumptions": self.assumptions,
            "summary": self.summary(),
            "agents": self.agents,
            **({"nova": self.nova, "instances": self.instances}
               if self.nova is not None else {}),
            "findings": self.findings,
        }


def judge_all(
    bindings: Iterable[Binding],
    agents: dict[str, list[Agent]],
    ctx: RuleContext,
) -> Iterator[tuple[Binding, Judgement]]:
    """Each binding with its judgement, in the source's order."""
    empty: list[Agent] = []
    needs_memo: dict = {}
    for binding in bindings:
        yield binding, judge_binding(binding, agents.get(binding.host, empty), ctx, needs_memo)


@dataclass
class NovaJoin:
    """Nova's side of an audit: VM ports and instances, both in uuid order."""

    compute_bindings: Iterable[Binding]
    instances: Iterable[Instance]
    cells: list[dict]
    # Instances with no selected Neutron port are judged only in a full audit (or, with
    # --host, when Nova places them on a selected host): otherwise a selector would make
    # every other instance look as if Neutron lacked its ports.
    full: bool = True
    hosts: frozenset[str] = frozenset()
    now: datetime.datetime | None = None  # the cells' clock, for VD208's age
    stuck_after: float = DEFAULT_STUCK_AFTER


@dataclass
class HostJoin:
    """Host-scan reports by host, and a way to ask Neutron where other ports are bound."""

    reports: dict[str, wiring_rules.HostWiring]
    bound_hosts: Callable[[list[str]], dict[str, str]]
    bound_here: dict[str, set[str]] = field(default_factory=dict)
    live: dict[str, str] = field(default_factory=dict)  # port id -> wiring kind

    def judge(self, b: Binding, judgement: Judgement, agents: list[Agent],
              ctx: RuleContext) -> list[Finding]:
        w = self.reports.get(b.host)
        if w is None or b.status not in (None, "ACTIVE"):
            return []
        self.bound_here.setdefault(b.host, set()).add(b.port_id)
        if not b.is_compute_port:
            return []
        details = parse_json_column(b.vif_details).as_dict()
        bridge = details.get("bridge_name") or next(
            (a.configurations.get("integration_bridge") for a in agents
             if a.configurations.get("integration_bridge")), None) or "br-int"
        found = wiring_rules.classify(b.port_id, w, str(bridge))
        self.live[b.port_id] = found.kind
        next_plug, needed = plugs(b, judgement, ctx)
        return wiring_rules.judge_wiring(b, w, found, needed, next_plug)

    def finish(self) -> list[Finding]:
        """Per host, what no binding explains: foreign iface-ids, leftovers, domains."""
        out: list[Finding] = []
        for host, w in sorted(self.reports.items()):
            here = self.bound_here.get(host, set())
            unknown = wiring_rules.unknown_iface_ids(w, here)
            where = self.bound_hosts(unknown) if unknown else {}
            out.extend(wiring_rules.vd304(w, i, where.get(i)) for i in unknown)
            prefixes = {p[:11] for p in here}
            out.extend(wiring_rules.leftovers(w, prefixes))
            if w.readable.get("libvirt"):
                out.extend(wiring_rules.foreign_domain_interfaces(w, prefixes))
        return out


def join_by_instance(
    compute: Iterable[Binding], instances: Iterable[Instance]
) -> Iterator[tuple[str, list[Binding], Instance | None]]:
    """Merge VM ports (by device_id) with instances (by uuid); both sorted the same way."""
    ports = iter(compute)
    insts = iter(instances)
    port = next(ports, None)
    inst = next(insts, None)

    def rows_of(uuid: str) -> Instance | None:
        """Consume every row of one uuid (it may be in two cells): the live one wins,
        and of two live ones the visible one (a cross-cell resize hides the other)."""
        nonlocal inst
        rows = []
        while inst is not None and inst.uuid == uuid:
            rows.append(inst)
            inst = next(insts, None)
        if not rows:
            return None
        match = min(rows, key=lambda r: (r.deleted, r.hidden))
        if len(rows) > 1:
            match.migrations = merge_cell_copies(match, rows)
        return match

    while port is not None or inst is not None:
        if port is None or (inst is not None and inst.uuid < port.device_id):
            assert inst is not None
            uuid = inst.uuid
            yield uuid, [], rows_of(uuid)
            continue
        device = port.device_id
        group = []
        while port is not None and port.device_id == device:
            group.append(port)
            port = next(ports, None)
        yield device, group, rows_of(device)


def run_audit(
    bindings: Iterable[Binding],
    agents: dict[str, list[Agent]],
    ctx: RuleContext,
    *,
    schema: dict,
    assumptions: list[str],
    codes: frozenset[str] = frozenset(),
    hosts: frozenset[str] = frozenset(),
    agent_rows: list[dict] | None = None,
    nova: NovaJoin | None = None,
    ports_narrowed: bool = False,
    host_join: HostJoin | None = None,
) -> AuditReport:
    """Judge every binding (and, with Nova, every instance); keep the selected codes."""
    report = AuditReport(schema=schema, assumptions=assumptions, agents=agent_rows or [])
    keep = (lambda f: f.code in codes) if codes else (lambda f: True)
    seen_hosts: set[str] = set()
    needs_memo: dict = {}

    def judge(binding: Binding, moves_of: Instance | None = None) -> Judgement:
        host_agents = agents.get(binding.host, [])
        judgement = judge_binding(binding, host_agents, ctx, needs_memo)
        if moves_of is not None:  # a VM port's INACTIVE row, with its instance's moves
            judgement.findings = with_moves(binding, judgement.findings, moves_of)
        if host_join is not None:
            judgement.findings.extend(host_join.judge(binding, judgement, host_agents, ctx))
        seen_hosts.add(binding.host)
        report.rows += 1
        report.categories[judgement.category] += 1
        for f in judgement.findings:
            if keep(f):
                report.add(f)
        return judgement

    for binding in bindings:
        judge(binding)
    if nova is not None:
        report.nova = nova.cells
        for device_id, group, instance in join_by_instance(nova.compute_bindings,
                                                           nova.instances):
            if instance is not None:
                report.instances_read += 1
            in_scope = bool(group) or nova.full or (
                instance is not None and instance.host in nova.hosts)
            if not in_scope:
                continue
            active = [b for b in group if b.status in (None, "ACTIVE")]
            judged = [(b, judge(b)) for b in active]
            stale = [f for b in group if b.status not in (None, "ACTIVE")
                     for f in judge(b, moves_of=instance).findings if f.code == "VD206"]
            found, view = judge_instance(device_id, instance, judged, ctx,
                                         # with selectors, an instance's other ports
                                         # may be filtered out: judge only full audits
                                         check_missing_ports=nova.full,
                                         live=host_join.live if host_join else None)
            if instance is not None:
                found.extend(judge_moves(instance, active, nova.now, nova.stuck_after))
            for f in found:
                if keep(f):
                    report.add(f)
            found_here = found + stale  # stale rows were reported as they were judged
            codes_here = view.codes | {f.code for f in found_here}
            if codes_here and (not codes or codes_here & codes):
                report.instances.add({
                    "device_id": device_id,
                    "instance": instance.as_dict() if instance else None,
                    "codes": sorted(codes_here),
                    "ports": [p.as_dict() for p in view.ports],
                    "impact": impact(view),
                    "steps": [s.as_dict() for s in remediation(view, found_here)],
                })
    if host_join is not None and not ports_narrowed:
        for f in host_join.finish():
            if keep(f) and (not hosts or f.host in hosts):
                report.add(f)
    # Agent findings are about hosts: those selected, else those of the selected ports.
    for host_agents in agents.values():
        for agent in host_agents:
            if hosts and agent.host not in hosts:
                continue
            if ports_narrowed and agent.host not in seen_hosts:
                continue
            f = agent_finding(agent)
            if f is not None and keep(f):
                report.add(f)
    return report


__all__ = ["AuditReport", "run_audit", "judge_all", "EXIT_CANNOT_RUN"]
