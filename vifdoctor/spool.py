"""Rows kept on disk as JSON lines, so that memory stays flat however many there are.

A drifted cloud of a million ports makes a hundred thousand findings; held as
Python objects they cost more than the whole stream of bindings. A spool
writes each row once, as compact JSON (Python's C encoder), and keeps in
memory only a short sort key with the row's place in the file; past
INDEX_RUN rows those keys too go to disk, as sorted runs merged when read.
"""

from __future__ import annotations

import heapq
import itertools
import json
import marshal
import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from vifdoctor.strictjson import dumps, encoder

WRITE_BUFFER = 2**20
READ_BYTES = 2**20  # of lines next to each other in the file, read at once
_SEP = b"\x00"  # sorts below every character, so joined keys sort like tuples
_PLACE = struct.Struct(">QI").pack  # a row's offset and length, after its key
# One encoder for every row, its C encoder built once: json.dumps(row, default=str)
# builds a new JSONEncoder per call, and JSONEncoder.encode a new C encoder (issue 14).
_ENCODE = encoder()


def _encode(row: dict) -> str:
    """Strict JSON for one row: the fast encoder, else the walk that makes it strict."""
    try:
        return _ENCODE(row)
    except (ValueError, RecursionError):
        return dumps(row)


class Spool:
    """An append-only, re-iterable sequence of dict rows, optionally sorted by a key."""

    # Keys held in memory; beyond, they are sorted and written out as a run (issue 14:
    # 130,000 findings' keys were most of what a million-port audit's memory grew by).
    INDEX_RUN = 8192
    RUN_BLOCK = 256  # keys per marshal record of a run: one record per run is held in a merge

    def __init__(self) -> None:
        # lives as long as the spool; a large buffer: 8 KB (the default) was a write
        # system call every few findings (issue 14)
        self._file = tempfile.TemporaryFile(buffering=WRITE_BUFFER)  # noqa: SIM115
        self._index: list[bytes] = []
        self._runs: list[IO[bytes]] = []  # sorted runs of keys on disk
        self._count = 0
        self._sorted = True
        self._end = 0  # where the next line goes (no seek(0, 2) syscall per row)

    def add(self, row: dict, key: tuple[str, ...] = ()) -> None:
        line = _encode(row).encode("utf-8")  # strict JSON: the renderer copies lines
        offset = self._end
        self._file.write(line)
        self._end += len(line)
        # surrogatepass: a lone surrogate in a host or port id still sorts, never raises;
        # one encode of the joined key, the same bytes as each part's (0.8 -> 0.2 us)
        entry = "\0".join(key).encode("utf-8", "surrogatepass") + _SEP + _PLACE(offset, len(line))
        if self._index and entry < self._index[-1]:
            self._sorted = False
        self._index.append(entry)
        self._count += 1
        if len(self._index) >= self.INDEX_RUN:
            self._spill()

    def _spill(self) -> None:
        """Write the keys in memory out as one sorted run (every key is unique: it ends
        with the row's offset, so runs merge into insertion order for equal keys)."""
        self._runs.append(spill_run(self._index, None, self.RUN_BLOCK))  # closed with the spool
        self._index = []
        self._sorted = True

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return bool(self._count)

    def _keys(self) -> Iterable[bytes]:
        """Every key, sorted: the runs on disk merged with the ones in memory."""
        if not self._sorted:
            self._index.sort()
            self._sorted = True
        if not self._runs:
            return self._index
        return heapq.merge(*(_read_run(run) for run in self._runs), list(self._index))

    def lines(self) -> Iterator[bytes]:
        """Each row's JSON text, in key order (insertion order for equal keys)."""
        if not self._count:
            return
        self._file.flush()
        fd = self._file.fileno()
        # pread, not mmap: mapped pages would count as this process's memory. Lines that
        # follow each other in the file (rows added in key order: the affected instances)
        # are read together, up to READ_BYTES at a time, not one system call each.
        start = end = 0
        lengths: list[int] = []
        for entry in self._keys():
            offset = int.from_bytes(entry[-12:-4], "big")
            length = int.from_bytes(entry[-4:], "big")
            if offset != end or end - start + length > READ_BYTES:
                if lengths:
                    yield from _cut(os.pread(fd, end - start, start), lengths)
                    lengths = []
                start = end = offset
            lengths.append(length)
            end += length
        if lengths:
            yield from _cut(os.pread(fd, end - start, start), lengths)

    def __iter__(self) -> Iterator[dict]:
        for line in self.lines():
            yield json.loads(line)

    def close(self) -> None:
        self._file.close()
        for run in self._runs:
            run.close()


def _cut(data: bytes, lengths: list[int]) -> Iterator[bytes]:
    """The lines of one read, by their lengths."""
    at = 0
    for length in lengths:
        yield data[at : at + length]
        at += length


def _read_run(run: IO[bytes]) -> Iterator[bytes]:
    """One run's keys, in order (from the start at each reading: a spool is re-iterable)."""
    run.seek(0)
    yield from (key for block in read_blocks(run, rewind=True) for key in block)


def write_block(f: IO[bytes], values: list) -> None:
    """One record of a temporary file: its length, then ``marshal`` of the values (C
    speed, exact types)."""
    data = marshal.dumps(values)
    f.write(len(data).to_bytes(4, "big") + data)


def read_blocks(f: IO[bytes], rewind: bool = False) -> Iterator[list]:
    """The records ``write_block`` wrote, each read whole then decoded: ``marshal.load``
    on a file object asks the file for every object it decodes, ten times slower.

    ``rewind``: seek back to where this reader was before each record, for files that
    another reader of the same file may have moved meanwhile.
    """
    offset = f.tell()
    while True:
        if rewind:
            f.seek(offset)
        head = f.read(4)
        if len(head) < 4:
            return
        size = int.from_bytes(head, "big")
        data = f.read(size)
        offset += 4 + size
        yield marshal.loads(data)  # noqa: S302 - a temporary file of our own


def sort_on_disk(
    rows: Iterable[tuple],
    key: Callable[[tuple], Any] | None,
    run_size: int,
    block_size: int,
    weight: Callable[[tuple], int] | None = None,
) -> Iterator[tuple]:
    """``rows`` sorted by ``key`` (None: the rows themselves), stable (equal keys keep
    their order), memory flat: :class:`DiskSort` given every row, then read."""
    sorter = DiskSort(key, run_size, block_size, weight)
    try:
        sorter.extend(rows)
        yield from sorter.sorted()
    finally:
        sorter.close()


class DiskSort:
    """An external merge sort that rows are handed to as they come (``extend``), for a
    reader that sorts some of the rows it streams and hands on the others (issue 14).

    Runs of ``run_size`` (in ``weight`` units, rows when None) are sorted in memory and
    written with ``spill_run``, in records of about ``block_size``; ``sorted`` merges
    them with ``heapq.merge``, one record of each held at a time. Rows are ``marshal``-ed:
    tuples of str, bytes, numbers, None, and lists or dicts of those (issue 14: sorted
    here, a server's sort of the same rows was what its plain read did not pay).
    """

    def __init__(
        self,
        key: Callable[[tuple], Any] | None,
        run_size: int,
        block_size: int,
        weight: Callable[[tuple], int] | None = None,
    ) -> None:
        self.key, self.run_size, self.block_size, self.weight = key, run_size, block_size, weight
        self._runs: list[IO[bytes]] = []
        self._batch: list[tuple] = []
        self._size = 0  # of the batch, in weight units

    def extend(self, rows: Iterable[tuple]) -> None:
        if self.weight is None:  # runs of run_size rows, taken at C speed
            rows = iter(rows)
            while True:
                self._batch.extend(itertools.islice(rows, self.run_size - len(self._batch)))
                if len(self._batch) < self.run_size:
                    return
                self._runs.append(spill_run(self._batch, self.key, self.block_size))
                self._batch = []
        for row in rows:
            self._batch.append(row)
            self._size += self.weight(row)
            if self._size >= self.run_size:
                self._runs.append(spill_run(self._batch, self.key, self.block_size, self.weight))
                self._batch, self._size = [], 0

    def sorted(self) -> Iterator[tuple]:
        """Every row handed in, sorted (once: the runs are read as they merge)."""
        batch, self._batch = self._batch, []
        if not self._runs:
            batch.sort(key=self.key)
            yield from batch
            return
        if batch:  # the last run too: merging holds one record per run, no run whole
            self._runs.append(spill_run(batch, self.key, self.block_size, self.weight))
        del batch
        yield from heapq.merge(*(_rows_of(run) for run in self._runs), key=self.key)

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs = []


def spill_run(
    batch: list,
    key: Callable[[Any], Any] | None,
    block_size: int,
    weight: Callable[[Any], int] | None = None,
) -> IO[bytes]:
    """One sorted run on disk, in records of about ``block_size`` (``weight`` units;
    items when None), read back by :func:`read_blocks`; its owner closes it."""
    batch.sort(key=key)  # a list already sorted costs one pass
    f = tempfile.TemporaryFile()  # noqa: SIM115 - closed by its owner
    if weight is None:
        for start in range(0, len(batch), block_size):
            write_block(f, batch[start : start + block_size])
    else:
        block: list[tuple] = []
        size = 0
        for row in batch:
            block.append(row)
            size += weight(row)
            if size >= block_size:
                write_block(f, block)
                block, size = [], 0
        if block:
            write_block(f, block)
    f.seek(0)
    return f


def _rows_of(run: IO[bytes]) -> Iterator[tuple]:
    for block in read_blocks(run):
        yield from block
