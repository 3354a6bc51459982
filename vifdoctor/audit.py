"""The audit: stream every binding from a source through the rules, count what was seen.

Memory stays flat however many ports there are: bindings are streamed and
judged one at a time; only the findings (and the small agents table) are kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from vifdoctor import __version__
from vifdoctor.errors import EXIT_CANNOT_RUN, EXIT_FAILURE, EXIT_OK, EXIT_WARNING
from vifdoctor.model import Agent, Binding, Finding, Severity
from vifdoctor.rules.binding import JUDGED, Judgement, agent_finding, judge_binding
from vifdoctor.rules.plug import RuleContext

_SEVERITY_ORDER = {Severity.FAILURE: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass
class AuditReport:
    """What an audit found, ready for any output format."""

    schema: dict
    assumptions: list[str]
    findings: list[Finding] = field(default_factory=list)
    rows: int = 0
    categories: Counter = field(default_factory=Counter)
    agents: list[dict] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        severities = {f.severity for f in self.findings}
        if Severity.FAILURE in severities:
            return EXIT_FAILURE
        if Severity.WARNING in severities:
            return EXIT_WARNING
        return EXIT_OK

    def summary(self) -> dict:
        by_code = Counter(f.code for f in self.findings)
        by_severity = Counter(f.severity.value for f in self.findings)
        by_host = Counter(f.host for f in self.findings if f.host)
        skipped = {k: v for k, v in sorted(self.categories.items()) if k != JUDGED}
        return {
            "bindings": self.rows,
            "judged": self.categories.get(JUDGED, 0),
            "skipped": skipped,
            "findings": len(self.findings),
            "by_code": dict(sorted(by_code.items())),
            "by_severity": {s.value: by_severity.get(s.value, 0) for s in Severity},
            "by_host": dict(sorted(by_host.items())),
            "exit_code": self.exit_code,
        }

    def document(self) -> dict:
        """The JSON/YAML document (docs/output.md describes it)."""
        return {
            "tool": {"name": "vifdoctor", "version": __version__},
            "schema": self.schema,
            "assumptions": self.assumptions,
            "summary": self.summary(),
            "agents": self.agents,
            "findings": [f.as_dict() for f in self.findings],
        }


def judge_all(
    bindings: Iterable[Binding],
    agents: dict[str, list[Agent]],
    ctx: RuleContext,
) -> Iterator[tuple[Binding, Judgement]]:
    """Each binding with its judgement, in the source's order."""
    empty: list[Agent] = []
    for binding in bindings:
        yield binding, judge_binding(binding, agents.get(binding.host, empty), ctx)


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
) -> AuditReport:
    """Judge every binding; keep the findings whose code is selected (all when empty)."""
    report = AuditReport(schema=schema, assumptions=assumptions, agents=agent_rows or [])
    keep = (lambda f: f.code in codes) if codes else (lambda f: True)
    for host_agents in agents.values():
        for agent in host_agents:
            if hosts and agent.host not in hosts:
                continue
            f = agent_finding(agent)
            if f is not None and keep(f):
                report.findings.append(f)
    for _binding, judgement in judge_all(bindings, agents, ctx):
        report.rows += 1
        report.categories[judgement.category] += 1
        report.findings.extend(f for f in judgement.findings if keep(f))
    report.findings.sort(key=lambda f: (_SEVERITY_ORDER[f.severity], f.code, f.host, f.port_id))
    return report


__all__ = ["AuditReport", "run_audit", "judge_all", "EXIT_CANNOT_RUN"]
