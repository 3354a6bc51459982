"""SQL literals that yield exactly a text, whatever it holds, on every dialect.

Printable text goes between single quotes (quotes doubled); a backslash, a control or
format character (newline, NUL, ESC, bidi override, ...) is spelled as a character
function (``char(10)``, ``CHAR(10 USING utf8mb4)``, ``chr(10)``) concatenated in. So
a literal holds no raw backslash and no line break, and means the same whatever the
client's ``NO_BACKSLASH_ESCAPES`` or ``standard_conforming_strings`` say. Used by
``plan --sql`` (repair/sql.py) and by the repair's own key lists (repair/apply.py).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence

# Unicode categories spelled out as character functions: controls, format characters
# (bidi overrides, zero-width), line and paragraph separators, surrogates.
_SPELLED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Text that is its own literal between quotes (UUIDs, host names): no quote, no backslash,
# nothing a dialect reads differently.
_PLAIN = re.compile(r"[A-Za-z0-9 ._:@/+=,%~-]*")


def _spelled(ch: str) -> bool:
    return ch == "\\" or unicodedata.category(ch) in _SPELLED_CATEGORIES


def _char_function(ch: str, dialect: str) -> str:
    code = ord(ch)
    if dialect in ("mysql", "mariadb"):
        # CHAR(N) takes bytes: N is the character's UTF-8 encoding read as one integer.
        encoded = ch.encode("utf-8", "surrogatepass")
        return f"CHAR({int.from_bytes(encoded, 'big')} USING utf8mb4)"
    if dialect == "postgresql":
        return f"chr({code})"
    return f"char({code})"


def sql_literal(value: str, dialect: str) -> str:
    """``value`` as an SQL expression of this dialect that yields exactly ``value``."""
    parts: list[str] = []
    run: list[str] = []
    for ch in value:
        if _spelled(ch):
            if run:
                parts.append("'" + "".join(run).replace("'", "''") + "'")
                run = []
            parts.append(_char_function(ch, dialect))
        else:
            run.append(ch)
    if run or not parts:
        parts.append("'" + "".join(run).replace("'", "''") + "'")
    if len(parts) == 1:
        return parts[0]
    if dialect in ("mysql", "mariadb"):
        return "CONCAT(" + ", ".join(parts) + ")"
    return "(" + " || ".join(parts) + ")"


def fast_literal(value: str, dialect: str) -> str:
    """:func:`sql_literal`, without the walk per character for plain text."""
    return f"'{value}'" if _PLAIN.fullmatch(value) else sql_literal(value, dialect)


def key_list(keys: Sequence[tuple[str, str]], dialect: str) -> str:
    """``(p1, h1), (p2, h2), ...``: the keys as :func:`fast_literal` renders each.

    When all of their text is plain (UUIDs and host names, the common case) one match
    over it all proves each key is (a concatenation of plain texts is plain, and only
    of them), and the list is joined at C speed: a match and two f-strings per key were
    most of the key lists' cost, 0.1 s per 100,000 rows twice (issue 14).
    """
    if _PLAIN.fullmatch("".join(itertools.chain.from_iterable(keys))):
        return "('" + "'), ('".join(map("', '".join, keys)) + "')" if keys else ""
    return ", ".join(f"({fast_literal(p, dialect)}, {fast_literal(h, dialect)})" for p, h in keys)
