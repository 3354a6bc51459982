"""Commands printed for a person to paste, and text shown on a terminal, made inert.

Ids, hosts and paths come from the database, where a tenant can set some of
them (a port's ``device_id``). Every value put into a printed command is
shell-quoted; an id that must be a UUID and is not gets no command at all
(an option-like or hostile id would still change what the command does), nor
does a value holding a control character (a newline would end a ``#``
comment). Terminal text has its control characters escaped, so an ANSI
escape in a host name cannot rewrite the operator's screen.
"""

from __future__ import annotations

import re
import shlex
import unicodedata

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
    r"-[0-9a-fA-F]{12}\Z"
)
# Control, format (bidi overrides, zero-width), separator and surrogate characters.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def is_uuid(text: object) -> bool:
    """A canonical, hyphenated UUID, as Nova and Neutron store ids."""
    return isinstance(text, str) and _UUID.match(text) is not None


def _unsafe(ch: str) -> bool:
    return ch < " " or ch == "\x7f" or (ch > "~" and unicodedata.category(ch) in _UNSAFE_CATEGORIES)


def has_control(text: str) -> bool:
    return not text.isprintable() and any(_unsafe(ch) for ch in text)


def command(*words: str) -> str | None:
    """The words as one shell command line, each quoted; None if one cannot be shown safely."""
    # one C-speed test for the common case, every printable word (issue 14: a command
    # per affected instance and port)
    if not "".join(words).isprintable() and any(has_control(w) for w in words):
        return None
    return " ".join(map(shlex.quote, words))


def terminal_safe(text: str) -> str:
    r"""``text`` with control characters escaped (``\x1b``, ``\n``, ``\u202e``), else unchanged."""
    if text.isprintable():  # C speed: the common case
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"
