"""A human table (prettytable, as the openstack client uses), then the footer lines.

What reaches the terminal is made inert and bounded: control characters in
any cell or footer line are escaped (an ANSI escape in a host name cannot
rewrite the screen), and a value longer than :data:`MAX_CELL_CHARS` is cut
with a note, so wrapping stays linear in the output's size (``-f json`` keeps
every value whole).
"""

from __future__ import annotations

from typing import IO

from prettytable import PrettyTable

from vifdoctor.report import MAX_CELL_CHARS, Listing, cell, cut
from vifdoctor.shell import terminal_safe

MAX_CELL = 50  # long messages wrap instead of widening the table past a terminal


def table_cell(value: object) -> str:
    """One value as a table shows it: escaped, and cut when long."""
    return terminal_safe(cut(cell(value), MAX_CELL_CHARS))


def render(listing: Listing, out: IO[str]) -> None:
    rows = iter(listing.rows)
    first = next(rows, None)
    if first is not None:
        table = PrettyTable([c.heading for c in listing.columns])
        table.align = "l"
        for col in listing.columns:
            table.max_width[col.heading] = MAX_CELL
        for row in (first, *rows):
            table.add_row([table_cell(row.get(c.key)) for c in listing.columns])
        out.write(table.get_string() + "\n")
    for line in listing.footer:
        out.write(terminal_safe(line) + "\n")
