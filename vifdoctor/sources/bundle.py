"""Export bundles: one SQLite file holding exactly what the audit reads (docs/output.md).

The bundle keeps the source's own table and column names (only the columns the audit
reads), so the Neutron and Nova sources read it as they read the live databases: the
layout is found by the same reflection. Nova cells' tables carry a prefix per cell
(``nova_cell1__instances``). The manifest table ``vifdoctor_bundle`` says where the
data came from and, above all, the source database's clock at export time: agents
are judged alive against that clock, not the reader's.
"""

from __future__ import annotations

import datetime
import json
import os
import sqlite3

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vifdoctor.errors import VifdoctorError
from vifdoctor.sources.nova_db import CellSource

MANIFEST = "vifdoctor_bundle"
FORMAT = "vifdoctor-bundle"
FORMAT_VERSION = 1


def read_manifest(path: str) -> dict:
    """The manifest of a bundle file; one clear error when it is not one."""
    if not os.path.isfile(path):
        raise VifdoctorError(f"--bundle {path}: no such file")
    try:
        with sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True) as db:
            rows = db.execute(f"SELECT key, value FROM {MANIFEST}").fetchall()  # noqa: S608
    except sqlite3.Error as exc:
        raise VifdoctorError(f"--bundle {path}: not a vifdoctor bundle ({exc})") from None
    manifest = {key: json.loads(value) for key, value in rows}
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise VifdoctorError(
            f"--bundle {path}: not a vifdoctor bundle of format version {FORMAT_VERSION}"
        )
    return manifest


def url(path: str) -> str:
    """The bundle as a SQLAlchemy URL (checked to be a bundle first; only ever read)."""
    read_manifest(path)
    return f"sqlite:///{os.path.abspath(path)}"


def cells(path: str) -> list[CellSource]:
    """The Nova cells the bundle holds, each read from its prefixed tables."""
    return [
        CellSource(c["cell"], url(path), prefix=c["prefix"])
        for c in read_manifest(path).get("nova") or []
    ]


def recorded_time(conn: Connection) -> datetime.datetime | None:
    """The source database's clock at export, when ``conn`` is a bundle; else None."""
    if conn.dialect.name != "sqlite" or not sa.inspect(conn).has_table(MANIFEST):
        return None
    value = conn.execute(
        sa.text(f"SELECT value FROM {MANIFEST} WHERE key = 'source'")  # noqa: S608
    ).scalar()
    when = json.loads(value or "{}").get("database_time_utc") if value else None
    return datetime.datetime.fromisoformat(when) if when else None


def describe(path: str) -> str:
    """One line for the assumptions: what the bundle is a copy of, and when."""
    m = read_manifest(path)
    src = m.get("source") or {}
    cells_ = ", ".join(c["cell"] for c in m.get("nova") or []) or "none"
    return (
        f"read from the bundle {os.path.basename(path)} (exported {m.get('created_at')} "
        f"by vifdoctor {m.get('tool_version')} from a {src.get('dialect')} Neutron "
        f"database, layout {src.get('layout')}; Nova cells: {cells_}); agents are judged "
        f"alive against the source database's clock at export, "
        f"{src.get('database_time_utc')}"
    )
