"""What the commands return: the report objects the CLI renders and the API hands back.

They sit below the audit, the repair and the report formats, so each of those
can use them without importing the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vifdoctor import __version__
from vifdoctor.errors import EXIT_FAILURE, EXIT_OK, EXIT_WARNING
from vifdoctor.model import JUDGED, Change, Finding, Severity
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
    ovn: dict | None = None  # OVN's view and the migration tally, when NB/SB were read
    # port -> what a host scan saw of a port with findings (kind, problems) and its plugs
    live_wiring: dict[str, dict] = field(default_factory=dict)
    host_reports: dict | None = None  # with --host-reports: hosts read, hosts without one

    def add(self, f: Finding) -> None:
        self.by_code[f.code] += 1
        self.by_severity[f.severity.value] += 1
        if f.host:
            self.by_host[f.host] += 1
        self.findings.add(f.as_dict(), (_SEVERITY_ORDER[f.severity], f.code, f.host, f.port_id))

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
            **(
                {"instances_read": self.instances_read, "instances_affected": len(self.instances)}
                if self.nova is not None
                else {}
            ),
            **(
                {"hosts_without_report": len(self.host_reports["missing"])}
                if self.host_reports is not None
                else {}
            ),
        }

    def document(self) -> dict:
        """The JSON/YAML document (docs/output.md describes it); rows stay spooled."""
        return {
            "tool": {"name": "vifdoctor", "version": __version__},
            "schema": self.schema,
            "assumptions": self.assumptions,
            "summary": self.summary(),
            "agents": self.agents,
            **({"host_reports": self.host_reports} if self.host_reports is not None else {}),
            **({"nova": self.nova, "instances": self.instances} if self.nova is not None else {}),
            **({"ovn": self.ovn} if self.ovn is not None else {}),
            "findings": self.findings,
        }


#: A row's result: its state, and what it holds where it was re-read.
Result = tuple[str, Any]
PENDING_RESULT: Result = ("pending", None)


class Results(dict):
    """(port_id, host) -> a row's result, listing only the rows whose result is not
    the common one: a streamed repair of 400,000 rows lists the few it skipped or could
    not prove, not the ones it changed (issue 14).

    ``default``: the result of a row not listed, a value or a function of the change
    (a rollback's restorable row holds what it stored); None: not listed is pending.
    """

    def __init__(
        self,
        items: Iterable[tuple[tuple[str, str], Result]] = (),
        default: Result | Callable[[Change], Result] | None = None,
    ) -> None:
        super().__init__(items)
        self.default = default

    def of(self, change: Change) -> Result:
        found = dict.get(self, (change.port_id, change.host))
        if found is not None:
            return found
        default = self.default
        if default is None:
            return PENDING_RESULT
        return default(change) if callable(default) else default


def result_of(results: dict) -> Callable[[Change], Result]:
    """The function giving each change its result, from a dict or :class:`Results`."""
    if isinstance(results, Results):
        return results.of
    get = results.get
    return lambda c: get((c.port_id, c.host), PENDING_RESULT)


@dataclass
class ChangeReport:
    """A plan, a repair or a rollback: the rows, and what happened to each."""

    kind: str  # "plan" | "repair" | "rollback" | "api-repair"
    changes: Sequence[Change]  # a list, or a plan spooled on disk
    schema: dict
    assumptions: list[str]
    extra: dict = field(default_factory=dict)  # the document's other top-level keys
    results: dict | None = None  # (port_id, host) -> (state, current details)
    applied: bool = False
    backup: str | None = None
    outcome: dict | None = None  # counts and figures of the write
    done: Sequence[Change] = field(default_factory=list)  # rows now holding the new value
    messages: list[str] = field(default_factory=list)  # per-port notes (API mode)
    restorable: int = 0  # rollback: rows still holding what vifdoctor wrote; API: ports due
    longest_transaction_s: float = 0.0
    exit_code: int = 0
