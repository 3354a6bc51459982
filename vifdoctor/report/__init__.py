"""Output formats, one module each, as the openstack client offers them.

A command builds a :class:`Listing` (columns, rows and the whole document);
each format renders it: ``table``, ``csv`` and ``value`` show the rows (``-c``
picks columns), ``json`` and ``yaml`` show the document, ``html`` draws the
whole report behind the listing (``Listing.report``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from vifdoctor.errors import VifdoctorError

FORMATS = ("table", "json", "yaml", "csv", "value", "html")


@dataclass(frozen=True)
class Column:
    key: str
    heading: str


@dataclass
class Listing:
    """What a command shows: rows under columns, plus the full document."""

    columns: list[Column]
    rows: Iterable[dict]  # a list, or a Spool streamed from disk
    document: dict
    rows_key: str = "findings"  # where the rows sit in the document
    footer: list[str] = field(default_factory=list)  # shown after a table only
    available: list[Column] = field(default_factory=list)  # what -c may name; default: columns
    # The report the listing was made from (an AuditReport), for formats that draw more
    # than the document's rows: the HTML report's charts and wiring diagrams.
    report: Any = None

    def select(self, wanted: list[str]) -> Listing:
        """Keep only the named columns (by heading or key, any case), in that order."""
        if not wanted:
            return self
        index: dict[str, Column] = {}
        for col in self.available or self.columns:
            index[col.key.lower()] = col
            index[col.heading.lower()] = col
        chosen = []
        for name in wanted:
            found = index.get(name.lower())
            if found is None:
                known = ", ".join(c.heading for c in self.available or self.columns)
                raise VifdoctorError(f"no column {name!r} (columns: {known})")
            chosen.append(found)
        keys = [c.key for c in chosen]
        doc = dict(self.document)
        if self.rows_key in doc:
            doc[self.rows_key] = Projection(self.rows, keys)
        return Listing(
            chosen, self.rows, doc, self.rows_key, self.footer, self.available, self.report
        )


class Projection:
    """Rows cut down to some keys, lazily: re-iterable, never held whole."""

    def __init__(self, rows: Iterable[dict], keys: list[str]):
        self.rows, self.keys = rows, keys

    def __iter__(self) -> Iterator[dict]:
        for row in self.rows:
            yield {k: row.get(k) for k in self.keys}


def cell(value: Any) -> str:
    """One value as text in a table, CSV or value row."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        from vifdoctor.strictjson import dumps

        return dumps(value, sort_keys=True)
    return str(value)


MAX_CELL_CHARS = 1000  # longer values are cut where a person reads them (table, HTML page)


def cut(text: str, limit: int = MAX_CELL_CHARS) -> str:
    """``text``, or its start and a note when longer than ``limit`` (-f json keeps it whole).

    Wrapping a 1 MB value in a table took minutes; drawn on every chart of the HTML
    page it multiplied the page's size: what a person reads is bounded.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut: {len(text)} characters; -f json shows it whole]"


def renderer(fmt: str) -> Callable[[Listing, IO[str]], None]:
    if fmt == "table":
        from vifdoctor.report.table import render
    elif fmt == "json":
        from vifdoctor.report.json import render
    elif fmt == "yaml":
        from vifdoctor.report.yaml import render
    elif fmt == "csv":
        from vifdoctor.report.csv import render
    elif fmt == "value":
        from vifdoctor.report.value import render
    elif fmt == "html":
        from vifdoctor.report.html import render
    else:
        raise VifdoctorError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    return render
