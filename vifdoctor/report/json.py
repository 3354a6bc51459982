"""The whole document as JSON (docs/output.md).

Top-level keys are indented for reading; row lists (findings, changes, steps,
instances) stand one compact object per line, streamed from their spool when
they have one, so a million-finding document never sits in memory whole.
"""

from __future__ import annotations

import codecs
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import IO, AnyStr

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
            text = _over_bytes(out)
            if text is not None:
                _write_byte_lines(value.lines(), text)
            else:
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


def _over_bytes(out: IO[str]) -> io.TextIOWrapper | None:
    """``out``, where a spool's lines can go to its binary stream as they are:
    they are ASCII (strict JSON, non-ASCII escaped), which every one of these encodings
    writes as the same bytes, and "\n" is not translated here. Skipping the decode and
    the encode of every line was a third of the render of a million-port audit's 350 MB
    document, written while the other core idles (issue 14)."""
    if not isinstance(out, io.TextIOWrapper) or os.linesep != "\n":
        return None
    try:
        if codecs.lookup(out.encoding).name not in ("utf-8", "ascii", "iso8859-1"):
            return None
    except LookupError:
        return None
    return out


def _write_byte_lines(lines: Iterable[bytes], out: io.TextIOWrapper, chunk: int = 1000) -> None:
    """``_write_lines`` for a spool's lines, straight to ``out``'s binary stream: the
    same bytes. A chunk that is not ASCII (never, by construction) goes through ``out``'s
    own encoding and error handler, as the text path would write it."""
    out.flush()  # what was written as text goes first
    raw = out.buffer
    errors = out.errors or "strict"

    def write(data: bytes) -> None:
        raw.write(data if data.isascii() else data.decode("utf-8").encode(out.encoding, errors))

    _chunked(lines, write, _BYTE_MARKS, chunk)
    raw.flush()  # before ``out`` writes on


def _write_lines(lines: Iterable[str], out: IO[str], chunk: int = 1000) -> None:
    """One compact object per line, written a chunk at a time (no giant string)."""
    _chunked(lines, out.write, _TEXT_MARKS, chunk)


# a line's indent, the list's opening, the separator, its closing, an empty list
_TEXT_MARKS = ("    ", "[\n", ",\n", "\n  ]", "[]")
_BYTE_MARKS = tuple(mark.encode() for mark in _TEXT_MARKS)


def _chunked(
    lines: Iterable[AnyStr],
    write: Callable[[AnyStr], object],
    marks: Sequence[AnyStr],
    chunk: int,
) -> None:
    indent, opening, separator, closing, empty = marks
    batch: list[AnyStr] = []
    started = False
    for line in lines:
        batch.append(indent + line)
        if len(batch) >= chunk:
            write((opening if not started else separator) + separator.join(batch))
            started, batch = True, []
    if batch:
        write((opening if not started else separator) + separator.join(batch))
        started = True
    write(closing if started else empty)
