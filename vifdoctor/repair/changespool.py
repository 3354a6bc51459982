"""A plan kept on disk: the changes of a repair or rollback, in order, memory flat.

A repair of 400,000 rows held its plan as 400,000 :class:`Change` objects, each with
the :class:`Binding` it came from, about 1.8 KB apiece: a gigabyte (issue 14). Here
each change goes to a temporary file as it is planned, with what the backup needs of
its row, in ``marshal`` records of BLOCK changes (C speed, exact types; strings shared
by many changes, such as the texts of one drifted shape, are written once per record).
Only each record's place in the file is held. Up to MEMORY_ROWS changes the records
stay in memory and nothing is written (a plan of 100,000 changes paid 0.4 s of CPU to
write and read its records back, for a memory bound no smaller than its sort's run);
past it they all go to the file. Reading gives back Change objects
(without their Binding), one record at a time; a spool can be read many times, and
by several readers at once.
"""

from __future__ import annotations

import dataclasses
import marshal
import operator
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

from vifdoctor.model import Change

#: Changes per record: one record is held by each reader.
BLOCK = 1000
#: Changes held in memory, unwritten, until the spool holds more (then all are written):
#: the plan's and the writer's sorts hold as many in a run (vifdoctor.repair.workflow).
MEMORY_ROWS = 120_000

#: A change as spooled: its fields, then what its owner keeps with it (the backup's
#: original columns, a rollback's result), or None.
Record = tuple[tuple, Any]


#: The fields a record keeps, in order: every field of a Change but its Binding.
FIELDS = tuple(f.name for f in dataclasses.fields(Change) if f.name != "binding")
_fields_of = operator.attrgetter(*FIELDS)


def record(change: Change, extra: Any = None) -> Record:
    """The change's fields (not its Binding) and ``extra`` (marshal-able)."""
    return (_fields_of(change), extra)


def change_of(fields: tuple) -> Change:
    """The Change a record's fields stand for.

    Its attributes are set in its ``__dict__``: a frozen dataclass's ``__init__`` sets
    each through ``object.__setattr__``, twice the cost, for every row of every read.
    """
    change = _new(Change)
    attributes = change.__dict__
    attributes.update(zip(FIELDS, fields, strict=False))  # a record of ours: one per field
    attributes["binding"] = None
    return change


_new = object.__new__


def plan_key_of(rec: Record) -> tuple[str, str, str]:
    """:func:`vifdoctor.repair.plan.plan_order` of a record, (device_id, port_id), then
    its host: the key of one row only."""
    return rec[0][7], rec[0][0], rec[0][1]


class ChangeSpool(Sequence[Change]):
    """Changes appended once, then read in the order they were appended."""

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._file = tempfile.TemporaryFile(buffering=2**20)  # noqa: SIM115 - lives with it
        self._blocks: list[tuple[int, int]] = []  # each record's offset and length
        self._held: list[list[Record]] | None = []  # the records, while in memory
        self._pending: list[Record] = []
        self._end = 0
        self._count = 0
        for rec in records:
            self.add(rec)

    def add(self, rec: Record) -> None:
        self._pending.append(rec)
        self._count += 1
        if len(self._pending) >= BLOCK:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._held is not None:
            self._held.append(self._pending)
            self._pending = []
            if self._count <= MEMORY_ROWS:
                return
            held, self._held = self._held, None  # past the bound: every record to disk
            for block in held:
                self._write(block)
            return
        self._write(self._pending)
        self._pending = []

    def _write(self, block: list[Record]) -> None:
        data = marshal.dumps(block)
        self._file.write(data)
        self._blocks.append((self._end, len(data)))
        self._end += len(data)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return bool(self._count)

    def records(self) -> Iterator[Record]:
        """Every change's record, in order."""
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[Record]]:
        """The records a block at a time (pread: readers do not move each other); a
        block held in memory is given as it is held: not to be changed."""
        self._flush()
        if self._held is not None:
            yield from self._held
            return
        self._file.flush()
        fd = self._file.fileno()
        for offset, length in self._blocks:
            yield marshal.loads(os.pread(fd, length, offset))  # noqa: S302 - our own file

    def columns(self, *names: str) -> Iterator[tuple]:
        """These fields (two or more) of every change, as tuples, in order, with no Change
        made per row (a report's passes over 100,000 rows spent 0.2 s on making them)."""
        fields = operator.itemgetter(*(FIELDS.index(name) for name in names))
        first = operator.itemgetter(0)
        for chunk in self.chunks():
            yield from map(fields, map(first, chunk))

    def __iter__(self) -> Iterator[Change]:
        for fields, _ in self.records():
            yield change_of(fields)

    @overload
    def __getitem__(self, index: int) -> Change: ...
    @overload
    def __getitem__(self, index: slice) -> list[Change]: ...

    def __getitem__(self, index: int | slice) -> Change | list[Change]:
        """One change (the library's callers index a plan as they did a list)."""
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        self._flush()
        if self._held is not None:
            return change_of(self._held[index // BLOCK][index % BLOCK][0])
        self._file.flush()
        offset, length = self._blocks[index // BLOCK]
        block = marshal.loads(os.pread(self._file.fileno(), length, offset))  # noqa: S302
        return change_of(block[index % BLOCK][0])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, ChangeSpool)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def filtered(self, keep: Callable[[Record], bool]) -> ChangeSpool:
        """A new spool of the records ``keep`` accepts, in order."""
        return ChangeSpool(rec for rec in self.records() if keep(rec))

    def close(self) -> None:
        self._file.close()


__all__ = ["BLOCK", "MEMORY_ROWS", "ChangeSpool", "Record", "change_of", "plan_key_of", "record"]
