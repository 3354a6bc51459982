"""The whole document as JSON (docs/output.md).

Top-level keys are indented for reading; row lists (findings, changes, steps,
instances) stand one compact object per line, streamed from their spool when
they have one, so a million-finding document never sits in memory whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import IO

from vifdoctor.report import Listing
from vifdoctor.spool import Spool
from vifdoctor.strictjson import dumps, encoder


def render(listing: Listing, out: IO[str]) -> None:
    doc = listing.document
    out.write("{\n")
    last = len(doc) - 1
    for n, (key, value) in enumerate(doc.items()):
        out.write(f"  {json.dumps(key)}: ")
        if isinstance(value, Spool):
            _write_lines((line.decode("utf-8") for line in value.lines()), out)
        elif key == listing.rows_key and not isinstance(value, (dict, str)):
            _write_lines(map(_row_encoder(), value), out)
        else:
            out.write(dumps(value, indent=2).replace("\n", "\n  "))
        out.write(",\n" if n < last else "\n")
    out.write("}\n")


def _row_encoder() -> Callable[[object], str]:
    """One strict encoder for every row (json.dumps builds one per call: a tenth of a
    100,000-change listing, and JSONEncoder.encode its C encoder per call: about half of
    what was left); a row it refuses goes through strictjson's walk."""
    encode = encoder(allow_nan=False)

    def row(value: object) -> str:
        try:
            return encode(value)
        except (ValueError, RecursionError):
            return dumps(value)

    return row


def _write_lines(lines: Iterable[str], out: IO[str], chunk: int = 1000) -> None:
    """One compact object per line, written a chunk at a time (no giant string)."""
    batch: list[str] = []
    started = False
    for line in lines:
        batch.append("    " + line)
        if len(batch) >= chunk:
            out.write(("[\n" if not started else ",\n") + ",\n".join(batch))
            started, batch = True, []
    if batch:
        out.write(("[\n" if not started else ",\n") + ",\n".join(batch))
        started = True
    out.write("\n  ]" if started else "[]")
