"""``vifdoctor host-scan``: run on a compute host, no database needed."""

from __future__ import annotations

import argparse
from typing import IO

from vifdoctor.sources.host.scan import scan, write_report


def run(args: argparse.Namespace, out: IO[str]) -> int:
    report = scan(
        host=args.host_name,
        libvirt_uri=args.libvirt_uri,
        ovsdb=args.ovsdb,
        with_iptables=args.iptables,
    )
    write_report(report, args.output, out)
    return 1 if report["errors"] else 0
