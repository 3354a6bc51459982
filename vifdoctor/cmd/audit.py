"""``vifdoctor audit``: judge every binding (and, with Nova, every instance); print the report."""

from __future__ import annotations

import argparse
from typing import IO, Any

from vifdoctor.audit import AuditReport, HostJoin, NovaJoin, run_audit
from vifdoctor.cmd.common import neutron_session
from vifdoctor.report import renderer
from vifdoctor.report.findings import audit_listing
from vifdoctor.sources.host_reports import load_reports
from vifdoctor.sources.neutron_db import agent_summary
from vifdoctor.sources.nova_api import open_from_neutron_api
from vifdoctor.sources.nova_db import NovaCells, resolve_cells

NO_MIGRATIONS = ("Nova's migration records were not read (no migrations table in a cell, "
                 "or API mode): moves are judged by task_state, INACTIVE rows stay VD109")
NOVA_ASSUMPTION = ("VD204 takes an instance that is in none of the Nova cells read as unknown: "
                   "give every cell (or --nova-api-db)")


def audit_from_args(args: argparse.Namespace) -> AuditReport:
    cells = resolve_cells(getattr(args, "nova_db", []), getattr(args, "nova_api_db", None),
                          getattr(args, "nova_config_file", []))
    with neutron_session(args) as s:
        hosts = frozenset(args.host)
        nova_cells: Any = NovaCells(cells) if cells else None
        nova_notes = [NOVA_ASSUMPTION] if nova_cells is not None else []
        via_api = (nova_cells is None and s.engine is None
                   and not getattr(args, "no_nova_api", False))
        if via_api:  # API mode without Nova databases: Nova's API of the same cloud
            nova_cells, nova_notes = open_from_neutron_api(s.source)
        try:
            nova = None
            bindings = s.source.bindings(s.selectors)
            assumptions = list(s.settings.assumptions)
            host_join = None
            if getattr(args, "host_reports", None):
                reports, notes = load_reports(args.host_reports)
                host_join = HostJoin(reports, s.source.bound_hosts)
                assumptions.extend(notes)
            if nova_cells is not None:
                full = not (args.host or args.port or args.network or args.project)
                nova = NovaJoin(
                    compute_bindings=s.source.compute_bindings_by_device(s.selectors),
                    instances=nova_cells.instances(),
                    cells=nova_cells.describe(),
                    full=full,
                    hosts=hosts,
                    now=getattr(nova_cells, "now", None),
                    stuck_after=getattr(args, "stuck_after", 6 * 3600.0),
                )
                if not getattr(nova_cells, "reads_migrations", False):
                    nova_notes.append(NO_MIGRATIONS)
                bindings = s.source.other_bindings(s.selectors)
            assumptions.extend(nova_notes)
            return run_audit(
                bindings,  # consumed before the Nova join starts: one stream at a time
                s.agents,
                s.settings.context,
                schema=s.source.describe(),
                assumptions=assumptions,
                codes=frozenset(args.code),
                hosts=hosts,
                agent_rows=agent_summary({h: a for h, a in s.agents.items()
                                          if not hosts or h in hosts}),
                nova=nova,
                ports_narrowed=bool(args.port or args.network or args.project),
                host_join=host_join,
            )
        finally:
            if nova_cells is not None:
                nova_cells.close()


def run(args: argparse.Namespace, out: IO[str]) -> int:
    report = audit_from_args(args)
    listing = audit_listing(report).select(args.column)
    renderer(args.format)(listing, out)
    return report.exit_code
