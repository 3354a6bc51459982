"""The whole document as JSON (docs/output.md)."""

from __future__ import annotations

import json
from typing import IO

from vifdoctor.report import Listing


def render(listing: Listing, out: IO[str]) -> None:
    json.dump(listing.document, out, indent=2, default=str)
    out.write("\n")
