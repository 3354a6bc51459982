"""Bare values, space-separated, one row a line: for shell loops (openstack -f value)."""

from __future__ import annotations

from typing import IO

from vifdoctor.report import Listing, cell


def render(listing: Listing, out: IO[str]) -> None:
    for row in listing.rows:
        out.write(" ".join(cell(row.get(c.key)) for c in listing.columns) + "\n")
