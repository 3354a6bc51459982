"""``vifdoctor audit``: judge every binding (and, with Nova, every instance); print the report."""

from __future__ import annotations

import argparse
from typing import IO

from vifdoctor import api
from vifdoctor.cmd.args import options_from
from vifdoctor.options import AuditOptions
from vifdoctor.report import renderer
from vifdoctor.report.findings import audit_listing


def run(args: argparse.Namespace, out: IO[str]) -> int:
    options = options_from(AuditOptions, args)
    if args.metrics_file:
        from vifdoctor.integrations.prometheus import audit_with_metrics

        report = audit_with_metrics(args.metrics_file, lambda: api.audit(options))
    else:
        report = api.audit(options)
    listing = audit_listing(report).select(args.column)
    renderer(args.format)(listing, out)
    return report.exit_code
