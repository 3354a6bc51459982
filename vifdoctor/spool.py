"""Rows kept on disk as JSON lines, so that memory stays flat however many there are.

A drifted cloud of a million ports makes a hundred thousand findings; held as
Python objects they cost more than the whole stream of bindings. A spool
writes each row once, as compact JSON (Python's C encoder), and keeps in
memory only a short sort key with the row's place in the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator

from vifdoctor.strictjson import dumps

_SEP = b"\x00"  # sorts below every character, so joined keys sort like tuples
# One encoder for every row: json.dumps(row, default=str) builds a new one per call,
# which cost more than encoding a finding (issue 14).
_ENCODE = json.JSONEncoder(default=str, allow_nan=False).encode  # one encoder, reused


def _encode(row: dict) -> str:
    """Strict JSON for one row: the fast encoder, else the walk that makes it strict."""
    try:
        return _ENCODE(row)
    except (ValueError, RecursionError):
        return dumps(row)


class Spool:
    """An append-only, re-iterable sequence of dict rows, optionally sorted by a key."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the spool
        self._index: list[bytes] = []
        self._sorted = True
        self._end = 0  # where the next line goes (no seek(0, 2) syscall per row)

    def add(self, row: dict, key: tuple[str, ...] = ()) -> None:
        line = _encode(row).encode("utf-8")  # strict JSON: the renderer copies lines
        offset = self._end
        self._file.write(line)
        self._end += len(line)
        entry = (
            # surrogatepass: a lone surrogate in a host or port id still sorts, never raises
            _SEP.join(k.encode("utf-8", "surrogatepass") for k in key)
            + _SEP
            + offset.to_bytes(8, "big")
            + len(line).to_bytes(4, "big")
        )
        if self._index and entry < self._index[-1]:
            self._sorted = False
        self._index.append(entry)

    def __len__(self) -> int:
        return len(self._index)

    def __bool__(self) -> bool:
        return bool(self._index)

    def lines(self) -> Iterator[bytes]:
        """Each row's JSON text, in key order (insertion order for equal keys)."""
        if not self._index:
            return
        if not self._sorted:
            self._index.sort()
            self._sorted = True
        self._file.flush()
        fd = self._file.fileno()
        # pread, not mmap: mapped pages would count as this process's memory.
        for entry in self._index:
            offset = int.from_bytes(entry[-12:-4], "big")
            length = int.from_bytes(entry[-4:], "big")
            yield os.pread(fd, length, offset)

    def __iter__(self) -> Iterator[dict]:
        for line in self.lines():
            yield json.loads(line)

    def close(self) -> None:
        self._file.close()
