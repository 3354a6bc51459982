"""The plan as SQL for a DBA: the same guarded UPDATEs ``repair --apply`` runs.

Values are rendered by SQLAlchemy's own literal quoting for the connected
dialect (which knows, for MySQL, whether backslashes escape), never by string
pasting. Batches are wrapped in transactions, as the repair writes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from vifdoctor.model import Change, Layout
from vifdoctor.repair.apply import batches, guarded_update


def literal_dialect(dialect: Dialect) -> Dialect:
    """The connected dialect, but with a paramstyle that leaves '%' alone in literals.

    pymysql's 'format' paramstyle doubles every '%' when values are rendered inline,
    which would make the guard compare against the wrong text. What the server
    told the connected dialect (MySQL's backslash escaping) is kept.
    """
    if dialect.paramstyle not in ("format", "pyformat"):
        return dialect
    plain = cast(Any, type(dialect))(paramstyle="named")
    for attr in ("_backslash_escapes", "server_version_info", "_server_ansiquotes",
                 "is_mariadb", "default_schema_name"):
        if hasattr(dialect, attr):
            setattr(plain, attr, getattr(dialect, attr))
    return plain


def render_sql(changes: Sequence[Change], table: sa.Table, layout: Layout, dialect: Dialect,
               batch_size: int) -> Iterator[str]:
    dialect = literal_dialect(dialect)
    begin = "BEGIN;" if dialect.name in ("postgresql", "sqlite") else "START TRANSACTION;"
    yield (f"-- vifdoctor repair plan: {len(changes)} guarded UPDATE(s) on {table.name}; "
           "each changes 1 row, or 0 if the row changed since the plan")
    for batch in batches(changes, batch_size):
        yield begin
        for change in batch:
            yield f"-- {change.port_id} on {change.host}: {', '.join(change.codes)}"
            stmt = guarded_update(table, layout, dialect.name, change)
            text = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            yield " ".join(text.split()) + ";"
        yield "COMMIT;"
