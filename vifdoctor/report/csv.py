"""Rows as CSV with a header line; nested values as compact JSON."""

from __future__ import annotations

import csv
from typing import IO

from vifdoctor.report import Listing, cell


def render(listing: Listing, out: IO[str]) -> None:
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow([c.heading for c in listing.columns])
    for row in listing.rows:
        writer.writerow([cell(row.get(c.key)) for c in listing.columns])
