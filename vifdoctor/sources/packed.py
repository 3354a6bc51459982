"""Rows handed over as one packed value by MySQL/MariaDB, for PyMySQL to decode once.

PyMySQL decodes every column of every row in pure Python: for a binding row of
fourteen columns that cost more than judging the row (issue 14). So where the
driver is PyMySQL the server packs each row instead: every value converted to
the connection's character set (exactly what PyMySQL would have been sent),
taken as bytes and joined by the byte 0xFF, a NULL written as the byte 0xFE.
Neither byte ever occurs in UTF-8, so one decode and one split give the values
back exactly; packing is therefore used only over a UTF-8 connection and only
for text, integer and boolean columns (a BLOB's raw bytes could hold either).

With a shape (``Packing.column(columns, shape=n)``), the first ``n`` values are
followed by one more value, the byte 0xFD (no more UTF-8 than the other two): the
bytes before it are the row's shape, taken with one ``partition`` and compared as
they are, with nothing decoded (issue 14; see ``Binding.shape``).

``VIFDOCTOR_PACKED_ROWS=0`` reads column by column, as every other driver does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vifdoctor.errors import VifdoctorError

ENV_PACKED_ROWS = "VIFDOCTOR_PACKED_ROWS"
# The two bytes after ``decode(..., "surrogateescape")``: lone surrogates, which no
# decoded UTF-8 text holds.
_SEPARATOR = "\udcff"
_NULL = "\udcfe"
_MARKER = "\udcfd"  # the value between a row's shape and its other values
SEPARATOR = b"\xff"
NULL = b"\xfe"  # a NULL value, as the packed bytes hold it
# what stands between a shape and the rest: the first of these in a row is the marker
# unless a text column holds the lone byte 0xFD, which split_shaped detects
BOUNDARY = b"\xff\xfd\xff"
_UTF8_CHARSETS = frozenset({"utf8", "utf8mb3", "utf8mb4"})
_PACKABLE_TYPES = (sa.String, sa.Integer, sa.Boolean)


@dataclass(frozen=True)
class Packing:
    """How one connection's rows are packed on the server and split back here."""

    charset: str  # the connection's MySQL character set (what PyMySQL asked for)
    encoding: str  # its Python codec

    def column(self, columns: Sequence[sa.ColumnElement], shape: int = 0) -> sa.ColumnElement:
        """The one packed value that stands for these columns in a SELECT; with ``shape``,
        the marker 0xFD after the first ``shape`` of them."""
        from sqlalchemy.dialects import mysql

        null: sa.ColumnElement = sa.literal_column("X'FE'")
        values: list[sa.ColumnElement] = [
            sa.func.coalesce(
                sa.cast(sa.cast(column, mysql.CHAR(charset=self.charset)), mysql.BINARY()), null
            )
            for column in columns
        ]
        if shape:
            values.insert(shape, sa.literal_column("X'FD'"))
        return sa.func.concat_ws(sa.literal_column("X'FF'"), *values).label("packed")

    def unpack(self, value: bytes | None, width: int) -> list[str | None]:
        """The ``width`` values of one packed row, NULL as None."""
        if value is None:
            # CONCAT_WS gives NULL (and a warning) past max_allowed_packet.
            raise VifdoctorError(
                "the server returned a packed row as NULL (a row longer than its "
                f"max_allowed_packet?); rerun with {ENV_PACKED_ROWS}=0 to read it column by column"
            )
        fields: list[str | None] = value.decode(self.encoding, "surrogateescape").split(_SEPARATOR)  # type: ignore[assignment]
        if len(fields) != width:
            # Only bytes that are not UTF-8 stored in a text column can do this.
            raise VifdoctorError(
                f"a row read from the server holds {len(fields)} values for {width} columns "
                f"(bytes that are not {self.charset} in a text column?); "
                f"rerun with {ENV_PACKED_ROWS}=0 to read it column by column"
            )
        if _NULL in fields:
            fields = [None if f == _NULL else f for f in fields]
        return fields

    def split_shaped(
        self, value: bytes | None, width: int, shape: int
    ) -> tuple[list, bytes | None]:
        """The ``width`` values of a row packed with a ``shape`` (``column(..., shape)``),
        and its shape: the bytes of its first ``shape`` values, None where a text column
        holding the lone byte 0xFD makes the first marker-like bytes not the marker."""
        fields = self.unpack(value, width + 1)
        if fields[shape] != _MARKER:  # a stray 0xFF shifted the values (unpack counted)
            raise VifdoctorError(
                f"a row read from the server has no marker after its first {shape} values; "
                f"rerun with {ENV_PACKED_ROWS}=0 to read it column by column"
            )
        del fields[shape]
        assert value is not None  # unpack refused None
        head = value.partition(BOUNDARY)[0]
        return fields, head if head.count(SEPARATOR) == shape - 1 else None


def packing_for(conn: Connection, columns: Sequence[sa.ColumnElement]) -> Packing | None:
    """A Packing for these columns on this connection, or None to read them as they are."""
    if os.environ.get(ENV_PACKED_ROWS, "1").strip() in ("0", "no", "false", "off"):
        return None
    if conn.dialect.name not in ("mysql", "mariadb") or conn.dialect.driver != "pymysql":
        return None
    if not all(_packable(c) for c in columns):
        return None
    dbapi = conn.connection.dbapi_connection
    charset = str(getattr(dbapi, "charset", "") or "").lower()
    if charset not in _UTF8_CHARSETS or not re.fullmatch(r"[a-z0-9]+", charset):
        return None
    return Packing(charset, "utf-8")


def _packable(column: sa.ColumnElement) -> bool:
    """Text, integers and booleans convert to text exactly; a NULL literal stands in for a
    column an old schema lacks. Anything else (BLOBs, dates, unknown types) is not packed."""
    if isinstance(column.type, sa.types._Binary):
        return False
    if isinstance(column.type, _PACKABLE_TYPES):
        return True
    return isinstance(getattr(column, "element", column), sa.sql.elements.Null)
