"""Bare values, space-separated, one row a line: for shell loops (openstack -f value).

Control characters are escaped, so a value with a newline cannot split a row
and an escape sequence cannot reach the terminal.
"""

from __future__ import annotations

from typing import IO

from vifdoctor.report import Listing, cell
from vifdoctor.shell import terminal_safe


def render(listing: Listing, out: IO[str]) -> None:
    for row in listing.rows:
        out.write(" ".join(terminal_safe(cell(row.get(c.key))) for c in listing.columns) + "\n")
