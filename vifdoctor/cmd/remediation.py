"""``vifdoctor remediation``: per host, what each affected instance needs, with the commands."""

from __future__ import annotations

import argparse
from typing import IO

from vifdoctor import api
from vifdoctor.cmd.args import options_from
from vifdoctor.options import AuditOptions
from vifdoctor.report import renderer
from vifdoctor.report.remediation import remediation_listing


def run(args: argparse.Namespace, out: IO[str]) -> int:
    report = api.remediation(options_from(AuditOptions, args))
    selectors = " ".join(
        f"--{name} {value}"
        for name in ("host", "port", "network", "project")
        for value in getattr(args, name)
    )
    command = " ".join(filter(None, ["vifdoctor repair", selectors, "--apply"]))
    listing = remediation_listing(report, command).select(args.column)
    renderer(args.format)(listing, out)
    return 0
