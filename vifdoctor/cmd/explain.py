"""``vifdoctor explain CODE``: a code's catalog entry."""

from __future__ import annotations

import argparse
import textwrap
from typing import IO

from vifdoctor.rules.catalog import CATALOG


def run(args: argparse.Namespace, out: IO[str]) -> int:
    for code in args.codes or sorted(CATALOG):
        info = CATALOG[code]
        out.write(f"{info.code} {info.title} ({info.severity.value})\n")
        for label, text in (("What", info.why), ("Impact", info.impact), ("Remedy", info.remedy)):
            out.write(
                textwrap.fill(
                    text, width=88, initial_indent=f"  {label}: ", subsequent_indent="    "
                )
                + "\n"
            )
        repair = (
            "repaired by default"
            if info.repair_by_default
            else "repaired when named with --code"
            if info.repairable
            else "never written by the repair"
        )
        out.write(f"  Repair: {repair}\n\n")
    return 0
