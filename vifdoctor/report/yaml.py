"""The whole document as YAML, same structure as the JSON output."""

from __future__ import annotations

from typing import IO

import yaml

from vifdoctor.report import Listing


def render(listing: Listing, out: IO[str]) -> None:
    yaml.safe_dump(listing.document, out, default_flow_style=False, sort_keys=False,
                   allow_unicode=True)
