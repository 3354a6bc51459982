"""The whole document as YAML, same structure as the JSON output."""

from __future__ import annotations

from typing import IO

import yaml

from vifdoctor.report import Listing
from vifdoctor.spool import Spool
from vifdoctor.strictjson import strict


def render(listing: Listing, out: IO[str]) -> None:
    doc = {k: (list(v) if isinstance(v, Spool) else v) for k, v in listing.document.items()}
    rows = doc.get(listing.rows_key)
    if rows is not None and not isinstance(rows, (list, dict)):
        doc[listing.rows_key] = list(rows)
    # strict(): no recursion past MAX_DEPTH in the emitter, NaN shown as text
    yaml.safe_dump(strict(doc), out, default_flow_style=False, sort_keys=False, allow_unicode=True)
