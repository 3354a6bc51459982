"""``vifdoctor remediation``: per host, what each affected instance needs, with the commands."""

from __future__ import annotations

import argparse
from typing import IO

from vifdoctor.cmd.audit import audit_from_args
from vifdoctor.errors import VifdoctorError
from vifdoctor.report import renderer
from vifdoctor.report.remediation import remediation_listing


def run(args: argparse.Namespace, out: IO[str]) -> int:
    report = audit_from_args(args)
    if report.nova is None:
        raise VifdoctorError("remediation needs Nova's database: pass --nova-db URL (per cell), "
                             "--nova-api-db URL or --nova-config-file FILE")
    selectors = " ".join(f"--{name} {value}" for name in ("host", "port", "network", "project")
                         for value in getattr(args, name))
    command = " ".join(filter(None, ["vifdoctor repair", selectors, "--apply"]))
    listing = remediation_listing(report, command).select(args.column)
    renderer(args.format)(listing, out)
    return 0
