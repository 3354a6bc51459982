"""The audit: stream every binding from a source through the rules, count what was seen.

Memory stays flat however many ports there are: bindings are streamed and
judged one at a time; only the findings (and the small agents table) are kept.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import ChainMap, Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from vifdoctor.collector import no_cyclic_gc
from vifdoctor.model import Agent, Binding, Finding, Instance, parse_json_column
from vifdoctor.options import AuditOptions
from vifdoctor.ovn_join import OvnJoin
from vifdoctor.results import AuditReport
from vifdoctor.rules import wiring as wiring_rules
from vifdoctor.rules.binding import BindingJudge, Judgement, plugs
from vifdoctor.rules.migration import (
    DEFAULT_STUCK_AFTER,
    judge_moves,
    visible_row,
    with_moves,
)
from vifdoctor.rules.nova import PortTemplate, impact, instance_is_quiet, judge_instance
from vifdoctor.rules.ovn import sync_command
from vifdoctor.rules.ovn_remedy import OvnRemedy, instance_steps
from vifdoctor.rules.plug import RuleContext
from vifdoctor.rules.registry import AGENT, rules_for
from vifdoctor.session import neutron_session
from vifdoctor.settings import resolve_cells
from vifdoctor.sources.host_index import HostReportIndex
from vifdoctor.sources.interface import HostWiringSource, InstanceSource
from vifdoctor.sources.neutron_db import KnownPort, agent_summary
from vifdoctor.sources.nova_api import open_from_neutron_api
from vifdoctor.sources.nova_worker import WorkerNovaCells

LOG = logging.getLogger(__name__)
NOVA_ASSUMPTION = (
    "VD204 takes an instance that is in none of the Nova cells read as unknown: "
    "give every cell (or --nova-api-db)"
)
NO_MIGRATIONS = (
    "Nova's migration records were not read (no migrations table in a cell, "
    "or API mode): moves are judged by task_state, INACTIVE rows stay VD109"
)

INACTIVE_SCOPE_NOTE = (
    "API mode: INACTIVE bindings were read only for ports where one can exist (instances "
    "Nova's os-migrations shows moved, binding:profile migrating_to, a binding host other "
    "than Nova's); --all-inactive-bindings reads every VM port's"
)


def judge_all(
    bindings: Iterable[Binding],
    agents: dict[str, list[Agent]],
    ctx: RuleContext,
    ovn_join: OvnJoin | None = None,
    shapes: bool = False,
) -> Iterator[tuple[Binding, Judgement]]:
    """Each binding with its judgement, in the source's order (OVN's by the OVN rules).

    ``shapes``: rows alike share one (read-only) Judgement; for callers that read only
    codes and corrections (the repair's plan), see BindingJudge.
    """
    empty: list[Agent] = []
    judge = BindingJudge(ctx, shapes)
    for binding in bindings:
        host_agents = agents.get(binding.host, empty)
        if ovn_join is not None and ovn_join.claims(binding, host_agents):
            yield binding, ovn_join.judge(binding)
        else:
            yield binding, judge(binding, host_agents)


@dataclass
class NovaJoin:
    """Nova's side of an audit: VM ports and instances, both in uuid order.

    ``known_ports``: the dict the VM ports' source was given to hand back a row of a
    known shape as a KnownPort (``NeutronDatabase.compute_bindings_known``): filled
    by run_audit with the first row of that shape and its clean verdict where a clean
    VM port needs nothing else (no joins, no OVN), so left empty otherwise.
    """

    compute_bindings: Iterable[Binding | KnownPort[Any]]
    instances: Iterable[Instance]
    cells: list[dict]
    # Instances with no selected Neutron port are judged only in a full audit (or, with
    # --host, when Nova places them on a selected host): otherwise a selector would make
    # every other instance look as if Neutron lacked its ports.
    full: bool = True
    hosts: frozenset[str] = frozenset()
    known_ports: dict[bytes, PortTemplate] | None = None
    now: datetime.datetime | None = None  # the cells' clock, for VD208's age
    stuck_after: float = DEFAULT_STUCK_AFTER
    # where ``now`` comes from when only the stream knows it (an API's HTTP Date)
    clock: Callable[[], datetime.datetime | None] = lambda: None

    @property
    def time(self) -> datetime.datetime | None:
        return self.now or self.clock()


class BindingJoin(Protocol):
    """Another family of facts judged beside each binding (host wiring, OVN, ...).

    ``judge`` sees each binding after the binding rules; ``finish`` reports what no
    binding explained; ``live`` maps port ids to how the port is wired now, when the
    join knows it (Nova's view of an instance uses it).
    """

    live: dict[str, str]

    def judge(
        self, b: Binding, judgement: Judgement, agents: list[Agent], ctx: RuleContext
    ) -> list[Finding]: ...

    def finish(self) -> list[Finding]: ...


@dataclass
class HostJoin:
    """Host-scan reports by host, and a way to ask Neutron where other ports are bound."""

    reports: Mapping[str, wiring_rules.HostWiring]
    bound_hosts: Callable[[list[str]], dict[str, str]]
    bound_here: dict[str, set[str]] = field(default_factory=dict)
    live: dict[str, str] = field(default_factory=dict)  # port id -> wiring kind
    seen: dict[str, dict] = field(default_factory=dict)  # ports with findings: for reports
    failures: Mapping[str, str] = field(default_factory=dict)  # host -> why no report
    missing: dict[str, int] = field(default_factory=dict)  # host with VM ports, no report
    no_scan: dict[str, str] = field(default_factory=dict)  # port id -> why no live wiring
    track_live: bool = False  # only the Nova join reads live/no_scan, one instance at a time
    ovn: OvnJoin | None = None  # OVN's view, when read: OVN ports' wiring follows OVN
    agents: Mapping[str, list[Agent]] = field(default_factory=dict)  # by host

    def judge(
        self, b: Binding, judgement: Judgement, agents: list[Agent], ctx: RuleContext
    ) -> list[Finding]:
        if b.status not in (None, "ACTIVE"):
            return []
        w = self.reports.get(b.host)
        if w is None:
            if b.host and b.is_compute_port:
                self.missing[b.host] = self.missing.get(b.host, 0) + 1
                if self.track_live:
                    self.no_scan[b.port_id] = self.why_no_report(b.host)
            return []
        self.bound_here.setdefault(b.host, set()).add(b.port_id)
        if not b.is_compute_port:
            return []
        details = parse_json_column(b.vif_details).as_dict()
        bridge = (
            details.get("bridge_name")
            or next(
                (
                    a.configurations.get("integration_bridge")
                    for a in agents
                    if a.configurations.get("integration_bridge")
                ),
                None,
            )
            or "br-int"
        )
        found = wiring_rules.classify(b.port_id, w, str(bridge))
        if self.track_live:
            self.live[b.port_id] = found.kind
            if found.kind == wiring_rules.UNKNOWN:
                self.no_scan[b.port_id] = "; ".join(found.problems)
        next_plug, needed = plugs(b, judgement, ctx)
        ovn = self.ovn is not None and self.ovn.serves(b)
        out = wiring_rules.judge_wiring(b, w, found, needed, next_plug, ovn=ovn)
        if ovn and self.ovn is not None:
            out.extend(self.ovn.judge_wired(b, w, found.kind, next_plug))
            if out:
                self.ovn.found_on_host(b)
        if out or judgement.findings:
            self.seen[b.port_id] = {
                "kind": found.kind,
                "problems": list(found.problems),
                "next_plug": next_plug,
                "needed_plug": needed,
            }
        return out

    def finish(self) -> list[Finding]:
        """Per host, what no binding explains: foreign iface-ids, leftovers, domains."""
        out: list[Finding] = []
        for host in sorted(self.reports):  # one host's wiring at a time
            w = self.reports[host]
            here = self.bound_here.get(host, set())
            unknown = wiring_rules.unknown_iface_ids(w, here)
            where = self.bound_hosts(unknown) if unknown else {}
            out.extend(wiring_rules.vd304(w, i, where.get(i)) for i in unknown)
            prefixes = {p[:11] for p in here}
            out.extend(wiring_rules.leftovers(w, prefixes))
            if w.readable.get("libvirt"):
                out.extend(wiring_rules.foreign_domain_interfaces(w, prefixes))
            if self.ovn is not None:
                out.extend(self.ovn.judge_host(w, here, self.agents.get(host, [])))
        return out

    def why_no_report(self, host: str) -> str:
        return f"no host report for {host}: {self.failures.get(host, 'not in the folder')}"

    def forget(self, ports: Iterable[Binding]) -> None:
        """Drop what the Nova join has used: memory stays flat over the instances."""
        for b in ports:
            self.live.pop(b.port_id, None)
            self.no_scan.pop(b.port_id, None)

    def coverage(self) -> dict:
        """Which hosts Neutron binds VM ports to have no usable report, and why."""
        return {
            "hosts": len(self.reports),
            "missing": {
                h: {"reason": self.failures.get(h, "not in the folder"), "vm_ports": n}
                for h, n in sorted(self.missing.items())
            },
        }


Port = Binding | KnownPort[Any]


def join_by_instance(
    compute: Iterable[Port], instances: Iterable[Instance]
) -> Iterator[tuple[str, list[Port], Instance | None]]:
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
        return rows[0] if len(rows) == 1 else visible_row(rows)

    while port is not None or inst is not None:
        if port is None or (inst is not None and inst.uuid < port.device_id):
            assert inst is not None
            uuid = inst.uuid
            yield uuid, [], rows_of(uuid)
            continue
        device = port.device_id
        group: list[Port] = []
        while port is not None and port.device_id == device:
            group.append(port)
            port = next(ports, None)
        yield device, group, rows_of(device)


def remember_templates(
    templates: dict[bytes, PortTemplate], judged: list[tuple[Binding, Judgement]]
) -> None:
    """Each clean ACTIVE row with a shape as the template of its shape, for the source
    to hand back the rows like it as KnownPorts (their verdict is the same: equal shapes
    are equal in VERDICT_FIELDS). Bounded as BindingJudge's memo is."""
    for b, judgement in judged:
        if b.shape is None or judgement.findings or b.shape in templates:
            continue
        if len(templates) >= BindingJudge.MAX_CLEAN:
            templates.clear()
        templates[b.shape] = PortTemplate.of(b, judgement)


# Rows, judgements and findings are made and dropped by the million, with no reference
# cycles: the collector's passes were a sixth of the CPU of a 300k-port audit with Nova
# (issue 14), and the garbage it finds after one is the same at 100k and 300k ports.
@no_cyclic_gc()
def run_audit(
    bindings: Iterable[Binding | Judgement],
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
    joins: Sequence[BindingJoin] = (),
    ovn_join: OvnJoin | None = None,
    ovn_remedy: OvnRemedy | None = None,
    networks: tuple[str, ...] = (),
    orphans: bool = True,
    bound_hosts: Callable[[list[str]], dict[str, str]] | None = None,
    clean_shapes: dict[bytes, Judgement] | None = None,
) -> AuditReport:
    """Judge every binding (and, with Nova, every instance); keep the selected codes.

    ``clean_shapes``: the dict a source was given to hand back rows of a shape judged
    clean as that Judgement (``NeutronDatabase.bindings_known``); filled here only where
    a clean row needs nothing else (no joins, no OVN), so left empty otherwise, and the
    source then builds every row.
    """
    report = AuditReport(schema=schema, assumptions=assumptions, agents=agent_rows or [])
    for join in joins:  # host scans of OVN hosts are judged against OVN's view too
        if isinstance(join, HostJoin) and ovn_join is not None:
            join.ovn, join.agents = ovn_join, agents
    keep = (lambda f: f.code in codes) if codes else (lambda f: True)
    seen_hosts: set[str] = set()
    shapes_only = not joins and ovn_join is None  # a clean row is only counted
    judge_row = BindingJudge(ctx, by_shape=clean_shapes if shapes_only else None)

    no_agents: list[Agent] = []

    def judge(binding: Binding, moves_of: Instance | None = None) -> Judgement:
        host_agents = agents.get(binding.host, no_agents)
        if ovn_join is not None and ovn_join.claims(binding, host_agents):
            judgement = ovn_join.judge(binding)  # instead of the OVS agents' rules
        else:
            judgement = judge_row(binding, host_agents)  # clean verdicts are shared: no edits
        if moves_of is not None:  # a VM port's INACTIVE row, with its instance's moves
            judgement = Judgement(
                judgement.category, with_moves(binding, judgement.findings, moves_of)
            )
        for join in joins:
            more = join.judge(binding, judgement, host_agents, ctx)
            if more:
                judgement = Judgement(judgement.category, [*judgement.findings, *more])
        seen_hosts.add(binding.host)
        report.rows += 1
        report.categories[judgement.category] += 1
        for f in judgement.findings:
            if keep(f):
                report.add(f)
        return judgement

    shared: Counter[str] = Counter()  # rows given back as their shape's clean verdict
    for row in bindings:
        if isinstance(row, Judgement):
            # judged clean on an earlier row of its shape, on its host: seen_hosts has it
            shared[row.category] += 1
        else:
            judge(row)
    report.rows += shared.total()
    report.categories.update(shared)
    # A live view: the joins learn each VM port's wiring as the Nova merge judges it.
    live = ChainMap(*(join.live for join in joins))
    host_joins = [join for join in joins if isinstance(join, HostJoin)]
    no_scan = ChainMap(*(join.no_scan for join in host_joins))  # why a port has no scan
    if nova is not None:
        report.nova = nova.cells
        for host_join in host_joins:
            host_join.track_live = True
        # VM ports of a shape judged clean come back as KnownPorts (shapes_only: nothing
        # else reads a clean row), judged with their instance at once when it is quiet
        templates = nova.known_ports if shapes_only else None

        def quiet(ports: list[Port], instance: Instance | None) -> bool:
            """Counted as judge() counts them, if the instance is quiet (else not)."""
            for p in ports:
                if not isinstance(p, KnownPort):
                    return False
            # the type as text: subscripting a generic at each call cost about 1 % of the join
            shaped = cast("list[KnownPort[PortTemplate]]", ports)
            if not instance_is_quiet(instance, shaped, check_missing_ports=nova.full):
                return False
            for p in shaped:
                report.categories[p.value.judgement.category] += 1
            report.rows += len(shaped)  # their hosts are in seen_hosts: each template's
            return True

        for device_id, ports, instance in join_by_instance(nova.compute_bindings, nova.instances):
            if instance is not None:
                report.instances_read += 1
            in_scope = (
                bool(ports) or nova.full or (instance is not None and instance.host in nova.hosts)
            )
            if not in_scope or (ports and templates is not None and quiet(ports, instance)):
                continue
            group = [p.binding() if isinstance(p, KnownPort) else p for p in ports]
            active = [b for b in group if b.status in (None, "ACTIVE")]
            judged = [(b, judge(b)) for b in active]
            if templates is not None:
                remember_templates(templates, judged)
            stale = [
                f
                for b in group
                if b.status not in (None, "ACTIVE")
                for f in judge(b, moves_of=instance).findings
                if f.code == "VD206"
            ]
            found, view = judge_instance(
                device_id,
                instance,
                judged,
                ctx,
                # with selectors, an instance's other ports
                # may be filtered out: judge only full audits
                check_missing_ports=nova.full,
                live=live,
                no_scan=no_scan,
            )
            if instance is not None:
                found.extend(judge_moves(instance, group, nova.time, nova.stuck_after))
            if ovn_join is not None:
                found.extend(ovn_join.judge_instance(instance, group))
            for host_join in host_joins:
                host_join.forget(group)
            for f in found:
                if keep(f):
                    report.add(f)
            found_here = found + stale  # stale rows were reported as they were judged
            codes_here = view.codes | {f.code for f in found_here}
            if codes_here and (not codes or codes_here & codes):
                report.instances.add(
                    {
                        "device_id": device_id,
                        "instance": instance.as_dict() if instance else None,
                        "codes": sorted(codes_here),
                        "ports": [p.as_dict() for p in view.ports],
                        "impact": impact(view),
                        "steps": [
                            s.as_dict()
                            for s in instance_steps(
                                view,
                                # the ports' own findings too: the OVN steps act on them
                                found_here + [f for _, j in judged for f in j.findings],
                                ovn_remedy,
                            )
                        ],
                    }
                )
    for join in joins:  # what a host scan saw of ports with findings: for the HTML report
        report.live_wiring.update(getattr(join, "seen", {}))
    for join in joins if not ports_narrowed else ():
        for f in join.finish():
            if keep(f) and (not hosts or f.host in hosts):
                report.add(f)
    for host_join in host_joins[:1]:
        report.host_reports = host_join.coverage()
        missing = report.host_reports["missing"]
        if missing:
            shown = ", ".join(f"{h} ({m['reason']})" for h, m in list(missing.items())[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            report.assumptions.append(
                f"no host report for {len(missing)} host(s) with VM ports: {shown}{more}; "
                "their ports' wiring comes from Nova's cache (each row's basis says so)"
            )
    if ovn_join is not None:
        if orphans and bound_hosts is not None:
            for f in ovn_join.finish(bound_hosts, networks):
                if keep(f):
                    report.add(f)
        wiring = {
            h: w
            for join in joins
            if isinstance(join, HostJoin)
            for h, w in join.reports.items()
            if not hosts or h in hosts
        }
        report.ovn = ovn_join.document(
            {h: a for h, a in agents.items() if not hosts or h in hosts}, wiring
        )
    # Agent findings are about hosts: those selected, else those of the selected ports.
    for host_agents in agents.values():
        for agent in host_agents:
            if hosts and agent.host not in hosts:
                continue
            if ports_narrowed and agent.host not in seen_hosts:
                continue
            for agent_rule in rules_for(AGENT):
                f = agent_rule.check(agent)  # type: ignore[misc]
                if f is not None and keep(f):
                    report.add(f)
    return report


def audit_cloud(options: AuditOptions, host_source: HostWiringSource | None = None) -> AuditReport:
    """Open every source the options name, stream them through the rules, close them."""
    cells = resolve_cells(options)
    if host_source is None and options.host_reports:
        host_source = HostReportIndex(options.host_reports)
    with neutron_session(options) as s:
        hosts = frozenset(options.host)
        nova_cells: InstanceSource | None = WorkerNovaCells(cells) if cells else None
        nova_notes = [NOVA_ASSUMPTION] if nova_cells is not None else []
        if nova_cells is None and s.engine is None and not options.no_nova_api:
            # API mode without Nova databases: Nova's API of the same cloud
            nova_cells, nova_notes = open_from_neutron_api(s.source)
            if nova_cells is not None:
                # Neutron lists the ports while Nova lists the servers, not after (issue 14)
                s.source.prefetch_ports(s.selectors)  # type: ignore[attr-defined]
            if (
                nova_cells is not None
                and not options.all_inactive_bindings
                and getattr(s.source, "read_inactive", False)
            ):
                # One GET per port only where an INACTIVE binding can exist (issue 14).
                scope = nova_cells.inactive_scope()
                if scope is not None:
                    s.source.inactive_scope = scope  # type: ignore[attr-defined]
                    nova_notes.append(INACTIVE_SCOPE_NOTE)
        try:
            nova = None
            # rows of a shape judged clean come back as that verdict (issue 14)
            clean_shapes: dict[bytes, Judgement] = {}
            known = getattr(s.source, "bindings_known", None)
            bindings: Iterable[Binding | Judgement] = (
                known(s.selectors, clean_shapes)
                if known is not None
                else s.source.bindings(s.selectors)
            )
            ovn_join, ovn_notes = s.open_ovn(options)
            assumptions = list(s.settings.assumptions)
            joins: list[BindingJoin] = []
            if host_source is not None:
                reports, notes = host_source.reports()
                joins.append(
                    HostJoin(
                        reports, s.source.bound_hosts, failures=getattr(host_source, "failures", {})
                    )
                )
                assumptions.extend(notes)
            if nova_cells is not None:
                # a worker sorts Nova meanwhile: this process would only wait
                read_ahead = getattr(nova_cells, "use_worker", False)
                known_ports: dict[bytes, PortTemplate] = {}
                known_vm = getattr(s.source, "compute_bindings_known", None)
                split = getattr(s.source, "split_bindings_known", None)
                both = None
                if read_ahead and split is not None and not joins and ovn_join is None:
                    # one read of every binding, the VM ports sorted meanwhile (issue 14)
                    both = split(s.selectors, clean_shapes, known_ports)
                vm_ports: Iterable[Binding | KnownPort[Any]]
                if both is not None:
                    bindings, vm_ports = both
                else:  # two reads: the other ports, then the VM ports
                    bindings = (
                        known(s.selectors, clean_shapes, others=True)
                        if known is not None
                        else s.source.other_bindings(s.selectors)
                    )
                    vm_ports = (
                        known_vm(s.selectors, known_ports, read_ahead=read_ahead)
                        if known_vm is not None
                        else s.source.compute_bindings_by_device(s.selectors, read_ahead=read_ahead)
                    )
                nova = NovaJoin(
                    compute_bindings=vm_ports,
                    known_ports=known_ports,
                    instances=nova_cells.instances(),
                    cells=nova_cells.describe(),
                    full=options.full,
                    hosts=hosts,
                    stuck_after=options.stuck_after,
                    clock=lambda: getattr(nova_cells, "now", None),
                )
            assumptions.extend(nova_notes)
            assumptions.extend(ovn_notes)
            started = time.monotonic()
            report = run_audit(
                bindings,  # consumed before the Nova join starts: one stream at a time
                s.agents,
                s.settings.context,
                schema=s.source.describe(),
                assumptions=assumptions,
                codes=frozenset(options.code),
                hosts=hosts,
                agent_rows=agent_summary(
                    {h: a for h, a in s.agents.items() if not hosts or h in hosts}
                ),
                nova=nova,
                ports_narrowed=options.narrowed_to_ports,
                joins=joins,
                ovn_join=ovn_join,
                ovn_remedy=OvnRemedy(
                    sync_command(ovn_join.octx) if ovn_join is not None else "",
                    api=s.settings.api,
                    cloud=s.settings.cloud,
                ),
                networks=options.network,
                # orphan LSPs are judged on a whole cloud, or on whole networks
                orphans=not (options.host or options.port or options.project),
                bound_hosts=s.source.bound_hosts,
                clean_shapes=clean_shapes,
            )
            # known once the instances were read (the API lists the moves with them)
            if nova_cells is not None and not getattr(nova_cells, "reads_migrations", False):
                report.assumptions.append(
                    getattr(nova_cells, "migrations_note", "") or NO_MIGRATIONS
                )
            LOG.info(
                "audit: %d binding(s) read, %d finding(s) %s in %.2f s",
                report.rows,
                len(report.findings),
                dict(report.by_severity),
                time.monotonic() - started,
            )
            return report
        finally:
            if nova_cells is not None:
                nova_cells.close()
            if isinstance(host_source, HostReportIndex):
                host_source.close()


__all__ = ["AuditReport", "audit_cloud", "run_audit", "judge_all"]
