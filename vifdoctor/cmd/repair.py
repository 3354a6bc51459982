"""``vifdoctor plan``, ``repair`` and ``rollback``: flags in, vifdoctor.api, a listing out.

Only what a terminal adds lives here: Ctrl-C turned into "stop after this
batch", the progress bar, and the rendering.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from vifdoctor import api
from vifdoctor.cmd.args import options_from
from vifdoctor.collector import keep_until_exit, no_cyclic_gc
from vifdoctor.errors import VifdoctorError
from vifdoctor.options import RepairOptions, RollbackOptions
from vifdoctor.repair.hooks import Hooks, Progress
from vifdoctor.report import renderer
from vifdoctor.report.changes import change_listing
from vifdoctor.results import ChangeReport


@contextmanager
def finish_batch_on_ctrl_c() -> Iterator[Callable[[], bool]]:
    """Ctrl-C sets a flag: the running batch commits, then the write stops cleanly."""
    flag = [False]

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True
        print(
            "\nvifdoctor: stopping after the current batch (Ctrl-C again to abort it)",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: flag[0]
    finally:
        signal.signal(signal.SIGINT, previous)


def progress_bar(total: int) -> Progress | None:
    """tqdm on stderr, shown only on a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, unit="row", file=sys.stderr, disable=None, leave=False)


TERMINAL = Hooks(progress=progress_bar, writing=finish_batch_on_ctrl_c)


def _show(report: ChangeReport, args: argparse.Namespace, out: IO[str]) -> int:
    keep_until_exit(report)  # a command that ends here need not free it row by row
    # A table summarizes a large change list unless every row is asked for (-c or --all-rows).
    summary = args.format == "table" and not args.column and not args.all_rows
    listing = change_listing(report, summary=summary, footer=args.format == "table")
    renderer(args.format)(listing.select(args.column), out)
    return report.exit_code


def run_plan(args: argparse.Namespace, out: IO[str]) -> int:
    options = options_from(RepairOptions, args)
    if args.sql and (args.format is not None or args.column):
        raise VifdoctorError(
            "plan --sql prints SQL only: -f/--format and -c/--column do not apply to it"
        )
    args.format = args.format or "table"  # plan's -f defaults to None to tell it was given
    with no_cyclic_gc():
        if args.sql:
            for line in api.plan_sql(options):
                out.write(line + "\n")
            return 0
        return _show(api.plan(options), args, out)


def run_repair(args: argparse.Namespace, out: IO[str]) -> int:
    with no_cyclic_gc():
        return _show(api.repair(options_from(RepairOptions, args), hooks=TERMINAL), args, out)


def run_rollback(args: argparse.Namespace, out: IO[str]) -> int:
    with no_cyclic_gc():
        report = api.rollback(args.backup, options_from(RollbackOptions, args), hooks=TERMINAL)
        return _show(report, args, out)
