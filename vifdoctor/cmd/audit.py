"""``vifdoctor audit``: read one Neutron database, judge every binding, print the report."""

from __future__ import annotations

import argparse
from typing import IO

from vifdoctor.audit import AuditReport, run_audit
from vifdoctor.cmd.common import neutron_session
from vifdoctor.report import renderer
from vifdoctor.report.findings import audit_listing
from vifdoctor.sources.neutron_db import agent_summary


def audit_from_args(args: argparse.Namespace) -> AuditReport:
    with neutron_session(args) as s:
        hosts = frozenset(args.host)
        return run_audit(
            s.source.bindings(s.selectors),
            s.agents,
            s.settings.context,
            schema=s.source.describe(),
            assumptions=s.settings.assumptions,
            codes=frozenset(args.code),
            hosts=hosts,
            agent_rows=agent_summary({h: a for h, a in s.agents.items()
                                      if not hosts or h in hosts}),
        )


def run(args: argparse.Namespace, out: IO[str]) -> int:
    report = audit_from_args(args)
    listing = audit_listing(report).select(args.column)
    renderer(args.format)(listing, out)
    return report.exit_code
