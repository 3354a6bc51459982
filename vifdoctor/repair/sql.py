"""The plan as SQL for a DBA: the same guarded UPDATEs ``repair --apply`` runs.

The script is fed to a database client (sqlite3, mariadb, psql), so what the
data holds must never become SQL or a client command:

* literals are rendered here, per dialect, keeping every byte: printable text
  goes between single quotes (quotes doubled); a backslash, a control or
  format character (newline, NUL, ESC, bidi override, ...) is spelled as a
  character function (``char(10)``, ``CHAR(10 USING utf8mb4)``, ``chr(10)``)
  concatenated in. So the script holds no raw backslash and no line break
  inside a literal, and means the same whatever the client's
  ``NO_BACKSLASH_ESCAPES`` or ``standard_conforming_strings`` say;
* comments name ports and hosts percent-encoded (``%0A`` for a newline), so a
  host name cannot end a ``--`` comment.

Batches are wrapped in transactions, as the repair writes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from vifdoctor.model import Change, Layout
from vifdoctor.repair.apply import batches, guarded_update
from vifdoctor.repair.literal import sql_literal

# What a comment may show as it is; everything else is percent-encoded.
_COMMENT_SAFE = "-._~:@/+=,"


def literal_dialect(dialect: Dialect) -> Dialect:
    """The connected dialect, but with a paramstyle that leaves '%' alone in literals.

    pymysql's 'format' paramstyle doubles every '%' when SQL text is rendered
    inline, which would make the guard compare against the wrong text.
    """
    if dialect.paramstyle not in ("format", "pyformat"):
        return dialect
    plain = cast(Any, type(dialect))(paramstyle="named")
    for attr in (
        "_backslash_escapes",
        "server_version_info",
        "_server_ansiquotes",
        "is_mariadb",
        "default_schema_name",
    ):
        if hasattr(dialect, attr):
            setattr(plain, attr, getattr(dialect, attr))
    return plain


def comment_text(value: str) -> str:
    """Data shown in a ``--`` comment: percent-encoded, so it stays one inert line."""
    return quote(value, safe=_COMMENT_SAFE)


def preamble(dialect: str) -> list[str]:
    """Make the client read the script as UTF-8, as it was written."""
    if dialect in ("mysql", "mariadb"):
        return ["SET NAMES utf8mb4;"]
    if dialect == "postgresql":
        return ["SET client_encoding = 'UTF8';"]
    return []


def render_sql(
    changes: Sequence[Change],
    table: sa.Table,
    layout: Layout,
    dialect: Dialect,
    batch_size: int | None,
) -> Iterator[str]:
    dialect = literal_dialect(dialect)
    name = dialect.name
    begin = "BEGIN;" if name in ("postgresql", "sqlite") else "START TRANSACTION;"
    yield (
        f"-- vifdoctor repair plan: {len(changes)} guarded UPDATE(s) on {table.name}; "
        "each changes 1 row, or 0 if the row changed since the plan"
    )
    yield from preamble(name)

    def literal(value: str) -> sa.ColumnElement:
        return sa.literal_column(sql_literal(value, name), sa.String())

    for batch in batches(changes, batch_size):
        yield begin
        for change in batch:
            yield (
                f"-- {comment_text(change.port_id)} on {comment_text(change.host)}: "
                f"{', '.join(change.codes)}"
            )
            stmt = guarded_update(table, layout, name, change, literal=literal)
            text = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            # Literals hold no line break (they are spelled as functions): only the
            # compiler's own layout is joined here, every byte of the data is kept.
            yield text.replace("\n", " ") + ";"
        yield "COMMIT;"
