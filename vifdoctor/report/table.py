"""A human table (prettytable, as the openstack client uses), then the footer lines."""

from __future__ import annotations

from typing import IO

from prettytable import PrettyTable

from vifdoctor.report import Listing, cell

MAX_CELL = 50  # long messages wrap instead of widening the table past a terminal


def render(listing: Listing, out: IO[str]) -> None:
    rows = iter(listing.rows)
    first = next(rows, None)
    if first is not None:
        table = PrettyTable([c.heading for c in listing.columns])
        table.align = "l"
        for col in listing.columns:
            table.max_width[col.heading] = MAX_CELL
        for row in (first, *rows):
            table.add_row([cell(row.get(c.key)) for c in listing.columns])
        out.write(table.get_string() + "\n")
    for line in listing.footer:
        out.write(line + "\n")
