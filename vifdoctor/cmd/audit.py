"""``vifdoctor audit``: read one Neutron database, judge every binding, print the report."""

from __future__ import annotations

import argparse
from typing import IO

from vifdoctor.audit import AuditReport, run_audit
from vifdoctor.report import renderer
from vifdoctor.report.findings import audit_listing
from vifdoctor.settings import resolve
from vifdoctor.sources.database import connect
from vifdoctor.sources.neutron_db import NeutronDatabase, Selectors, agent_summary


def audit_from_args(args: argparse.Namespace) -> AuditReport:
    """Resolve settings, read the database and judge: shared by audit and the repair."""
    settings = resolve(
        neutron_db=args.neutron_db,
        neutron_config_files=args.neutron_config_file,
        firewall_driver=args.firewall_driver,
        nova_generation=args.nova_generation,
        nova_firewall_driver=args.nova_firewall_driver,
        agent_down_time=args.agent_down_time,
    )
    engine = connect(settings.neutron_url, what="Neutron database")
    try:
        with NeutronDatabase(engine) as source:
            agents = source.agents(settings.agent_down_time)
            selectors = Selectors(tuple(args.host), tuple(args.port), tuple(args.network),
                                  tuple(args.project))
            return run_audit(
                source.bindings(selectors),
                agents,
                settings.context,
                schema=source.describe(),
                assumptions=settings.assumptions,
                codes=frozenset(args.code),
                hosts=frozenset(args.host),
                agent_rows=agent_summary(
                    {h: a for h, a in agents.items() if not args.host or h in args.host}
                ),
            )
    finally:
        engine.dispose()


def run(args: argparse.Namespace, out: IO[str]) -> int:
    report = audit_from_args(args)
    listing = audit_listing(report).select(args.column)
    renderer(args.format)(listing, out)
    return report.exit_code
