"""``vifdoctor export``: the audit's data as one SQLite bundle (docs/output.md)."""

from __future__ import annotations

import argparse
from typing import IO

from vifdoctor.cmd.args import options_from
from vifdoctor.export import ExportOptions, export_bundle, summary_lines


def run(args: argparse.Namespace, out: IO[str]) -> int:
    manifest = export_bundle(options_from(ExportOptions, args))
    for line in summary_lines(manifest):
        out.write(line + "\n")
    return 0
