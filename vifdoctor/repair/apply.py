"""Writing a plan: bounded transactions, guarded UPDATEs, retries, pacing, verification.

Every UPDATE is guarded on the exact text the plan read (byte for byte, even
on MySQL's case-insensitive collations; ``IS NULL`` where it read NULL), so a
row that changed since the plan is skipped and reported, never overwritten.
One transaction per batch: a batch is all or nothing, whatever stops the process.
"""

from __future__ import annotations

import gc
import itertools
import operator
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import Change, Layout
from vifdoctor.repair.literal import key_list
from vifdoctor.results import Results
from vifdoctor.sources.database import column_bytes, column_text, db_error, is_binary
from vifdoctor.sources.neutron_schema import only_live, reflect_bindings

# MySQL/MariaDB: lock wait timeout, deadlock (also how Galera reports a certification failure)
RETRYABLE_MYSQL = {1205, 1213}
# PostgreSQL: serialization failure, deadlock detected
RETRYABLE_PG = {"40001", "40P01"}

T = TypeVar("T")

CHANGED, SKIPPED, FAILED, PENDING = "changed", "skipped", "failed", "pending"
# A row whose batch was sent but whose value could not be re-read afterwards: maybe written.
UNKNOWN = "unknown"
_WRITTEN = "written"  # the batch committed but matched fewer rows: the re-read decides
# Rows per UPDATE statement inside a batch: SQLite caps bound parameters (2 per row here).
_STATEMENT_ROWS = {"sqlite": 400}
_DEFAULT_STATEMENT_ROWS = 1000
#: Rows per transaction when the operator gives no --batch-size (issue 14): batches start
#: at ADAPTIVE_START and grow, at most twice as large each time and up to ADAPTIVE_MAX,
#: toward ADAPTIVE_TARGET_S per transaction (half the 200 ms bound: room for a server
#: that slows down); a transaction that takes longer sends them back to ADAPTIVE_START
#: at once. Fewer, larger transactions save a COMMIT (an fsync) and a round trip per
#: 500 rows; never below 500, the fixed default before, because under load a smaller
#: batch took as long as one of 500 (docs/benchmarks.md). A --batch-size given is the
#: size of every batch.
ADAPTIVE_START = 500
ADAPTIVE_MAX = 2000
ADAPTIVE_TARGET_S = 0.1
#: --batch-size where a fixed size is needed and none was given (plan --sql, VD206).
DEFAULT_BATCH_SIZE = 500
#: Servers whose COUNT proof runs on a second connection while the next batch is written
#: (:class:`Prover`). Not SQLite: one writer locks the file, and an in-memory database
#: hands every checkout the same connection.
CONCURRENT_PROOF = frozenset({"mysql", "mariadb", "postgresql"})


@dataclass
class Outcome:
    """What happened to each planned row, plus the figures a DBA asks for.

    ``status`` lists every row, unless the write was streamed (:func:`apply_sorted`):
    then the rows proved changed are only counted (``implicit``), and ``status`` lists
    the others, so a 400,000-row repair holds no dict of 400,000 keys (issue 14).
    """

    status: dict[tuple[str, str], str] = field(default_factory=dict)
    current: dict[tuple[str, str], str | None] = field(default_factory=dict)  # for skipped rows
    errors: list[str] = field(default_factory=list)
    batches: int = 0
    retries: int = 0
    longest_transaction_s: float = 0.0
    interrupted: bool = False
    implicit: int = 0  # rows proved changed that ``status`` does not list
    implicit_state: str = CHANGED  # theirs: UNKNOWN once a re-read failed

    def count(self, state: str) -> int:
        # at C speed: a report asks for several counts over 100,000 rows (issue 14)
        listed = operator.countOf(self.status.values(), state)
        return listed + self.implicit if state == self.implicit_state else listed

    def all_changed(self) -> bool:
        """Every planned row is proved changed (the common case: no row to look at)."""
        return self.count(CHANGED) == len(self.status) + self.implicit

    def state(self, key: tuple[str, str]) -> str:
        return self.status.get(key, self.implicit_state) if self.implicit else self.status[key]

    def set_state(self, key: tuple[str, str], state: str) -> None:
        """A row's state, listed from now on (one only counted leaves the count)."""
        if self.implicit and key not in self.status:
            self.implicit -= 1
        self.status[key] = state

    def results(self) -> Results:
        """Each row's state and, where it was re-read, what it holds."""
        current = self.current
        found = ((k, (v, current.get(k))) for k, v in self.status.items())
        if not current:  # every row as written: no per-row look-up
            states = zip(self.status.values(), itertools.repeat(None), strict=False)
            found = zip(self.status, states, strict=True)  # type: ignore[assignment]
        return Results(found, default=(self.implicit_state, None) if self.implicit else None)


def exact_equals(column: sa.ColumnElement, value: sa.ColumnElement, dialect: str):
    """Byte-exact comparison: MySQL's default collations ignore case and trailing spaces."""
    if dialect in ("mysql", "mariadb"):
        return sa.cast(column, mysql.BINARY()) == sa.cast(value, mysql.BINARY())
    return column == value


def stored_guard(
    column: sa.ColumnElement, value: sa.ColumnElement | None, dialect: str
) -> sa.ColumnElement:
    """The guard on what the plan read: ``IS NULL`` for NULL (``= NULL`` never matches)."""
    if value is None:
        return column.is_(None)
    return exact_equals(column, value, dialect)


def guarded_update(
    table: sa.Table,
    layout: Layout,
    dialect: str,
    change: Change | None = None,
    *,
    literal: Callable[[str], sa.ColumnElement] | None = None,
) -> sa.Update:
    """UPDATE ... SET vif_details=:new WHERE port_id=:p AND host=:h AND vif_details=:stored.

    With ``change`` the values are literals (for ``plan --sql``, rendered by
    ``literal``; a stored NULL is guarded ``IS NULL``, a NULL to write is ``NULL``);
    without, bound parameters named as :func:`params` names them.
    """
    values = params(change) if change is not None else {}

    def value(name: str) -> sa.ColumnElement:
        if change is None:
            return sa.bindparam(name, type_=sa.String())
        if values[name] is None:
            return sa.null()
        if literal is not None:
            return literal(values[name])
        return sa.literal(values[name], sa.String())

    stored = None if change is not None and change.stored is None else value("b_stored")
    cond = [
        table.c.port_id == value("b_port_id"),
        table.c.host == value("b_host"),
        stored_guard(table.c.vif_details, stored, dialect),
    ]
    if layout.has_status:
        cond.append(table.c.status == "ACTIVE")
    return sa.update(table).where(*cond).values(vif_details=value("b_new"))


def key_rows(table: sa.Table, keys: Sequence[tuple[str, str]], dialect: str):
    """``(port_id, host) IN ((p1, h1), (p2, h2), ...)`` with the keys as SQL literals.

    Rendered here, not bound: SQLAlchemy's expanding tuple parameters and the driver's
    escaping of each cost 0.45 s of CPU per 100,000 keys, about a quarter of the write
    path, twice (the UPDATEs and the COUNTs; issue 14). The literals are ``plan --sql``'s
    (repair/literal.py): whatever a key holds stays inside its literal and means the
    same under any sql_mode; PyMySQL and psycopg2 render bound text as literals too.
    """
    rows = key_list(keys, dialect)
    if dialect == "sqlite":  # row values on the right of IN: a VALUES list (SQLAlchemy's too)
        rows = "VALUES " + rows
    return sa.tuple_(table.c.port_id, table.c.host).op("IN")(sa.literal_column(f"({rows})"))


#: Statements whose key list is literal SQL are compiled once each: kept out of
#: SQLAlchemy's statement cache, which would hold up to 500 of them.
_UNCACHED = {"compiled_cache": None}


def batch_statement(
    table: sa.Table,
    layout: Layout,
    dialect: str,
    keys: Sequence[tuple[str, str]],
    *,
    null: bool = False,
) -> sa.Update:
    """One guarded UPDATE for every row of a batch that goes from one text to another.

    ``SET vif_details=:new WHERE (port_id, host) IN (keys) AND vif_details=:stored``
    (byte-exact, and ``status='ACTIVE'`` where the column exists): the IN list uses
    the primary key (range access on MariaDB), so the statement locks exactly the
    planned rows (:func:`key_rows`).
    ``null``: the statement for rows read as NULL, guarded ``vif_details IS NULL``.
    """
    stored = None if null else sa.bindparam("b_stored", type_=sa.String())
    stmt = sa.update(table).where(
        key_rows(table, keys, dialect),
        stored_guard(table.c.vif_details, stored, dialect),
    )
    if layout.has_status:
        stmt = stmt.where(table.c.status == "ACTIVE")
    return stmt.values(vif_details=sa.bindparam("b_new", type_=sa.String()))


def batch_params(batch: Sequence[Row], size: int, binary: bool = False) -> list[dict]:
    """The batch's rows grouped by (stored, new) text: a drifted cloud has few such pairs.

    ``binary``: the column is a BLOB, so the values go over as the exact bytes read.
    A group read as NULL has ``b_stored`` None: it goes through the ``IS NULL`` statement.
    ``b_keys`` is not a bound parameter: :func:`batch_statement` renders it.
    """
    groups: dict[tuple[str | None, str | None], list[tuple[str, str]]] = {}
    pairs = {*map(_pair, batch)}
    if len(pairs) == 1:  # one pair (the usual batch): its keys taken at C speed
        groups[pairs.pop()] = list(map(_key, batch))
    else:
        for c in batch:
            groups.setdefault((c.stored, c.new), []).append((c.port_id, c.host))
    out = []
    for (stored, new), keys in groups.items():
        b_stored, b_new = (_bytes(stored), _bytes(new)) if binary else (stored, new)
        for start in range(0, len(keys), size):
            out.append({"b_keys": keys[start : start + size], "b_stored": b_stored, "b_new": b_new})
    return out


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else column_bytes(value)


def params(change: Change) -> dict:
    return {
        "b_port_id": change.port_id,
        "b_host": change.host,
        "b_stored": change.stored,
        "b_new": change.new,
    }


def is_retryable(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    code = orig.args[0] if getattr(orig, "args", None) else None
    if isinstance(code, int) and code in RETRYABLE_MYSQL:
        return True
    if getattr(orig, "pgcode", None) in RETRYABLE_PG:
        return True
    return "database is locked" in str(orig)  # SQLite's busy writer


def batches(items: Iterable[T], size: int | None) -> Iterator[list[T]]:
    """Fixed-size batches (``None``: DEFAULT_BATCH_SIZE), read as they are given."""
    rows = iter(items)
    while batch := list(itertools.islice(rows, size or DEFAULT_BATCH_SIZE)):
        yield batch


def next_batch_size(size: int, seconds: float) -> int:
    """The adaptive size after a batch of ``size`` rows committed in ``seconds``.

    Over ADAPTIVE_TARGET_S: ADAPTIVE_START. Under it: proportional toward it, at most
    doubling, up to ADAPTIVE_MAX.
    """
    if seconds > ADAPTIVE_TARGET_S:
        return ADAPTIVE_START
    wanted = size * 2 if seconds <= 0 else int(size * ADAPTIVE_TARGET_S / seconds)
    return max(ADAPTIVE_START, min(ADAPTIVE_MAX, size * 2, wanted))


@dataclass
class WriteOptions:
    batch_size: int | None = None  # rows per transaction; None: adaptive (ADAPTIVE_START..)
    max_rate: float | None = None  # rows per second
    retries: int = 5
    backoff_s: float = 0.2
    lock_wait_timeout: int | None = None  # MySQL innodb_lock_wait_timeout for this session


def apply_changes(
    engine: Engine,
    layout: Layout,
    changes: Sequence[Change],
    opts: WriteOptions,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] = lambda n: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Write the changes batch by batch; then prove what every row holds (:func:`verify`).

    Rows go in (port_id, host) order, whatever the order of ``changes``; the outcome
    lists every row, in the order of ``changes``. See :func:`apply_sorted`.
    """
    outcome = Outcome(status=dict.fromkeys(map(_key, changes), PENDING))
    # Written (and verified) in primary-key order, not the plan's (the read's device_id
    # order): a batch then holds neighbouring rows on few pages, each page changed once.
    # In the plan's order every batch dirtied rows all over the table: 100,000 rows took
    # 25-28 s instead of 10-13 s, 5.4-6.7 s of server CPU instead of 2.8-3.4 s (issue 14).
    ordered = sorted(changes, key=_key)
    return apply_sorted(
        engine,
        layout,
        ordered,
        opts,
        outcome=outcome,
        should_stop=should_stop,
        progress=progress,
        sleep=sleep,
        clock=clock,
    )


def apply_sorted(
    engine: Engine,
    layout: Layout,
    changes: Iterable[Row],
    opts: WriteOptions,
    *,
    outcome: Outcome | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] = lambda n: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Write rows given in (port_id, host) order, read as they are written: one batch
    is held at a time, so memory stays flat however many rows there are (issue 14).

    Batches are ``opts.batch_size`` rows each, or sized by :func:`next_batch_size` from
    the last transaction's time (``clock``) when no size is given. Each batch that
    committed and matched every row is proved by a COUNT (:class:`Prover`) right after;
    the rows no count proves, and those of batches that matched fewer rows, failed, or
    were never sent, are re-read (:func:`verify`). ``outcome``: one listing every row
    as PENDING; without, rows proved changed are only counted (:class:`Outcome`).
    """
    streamed = outcome is None
    outcome = Outcome() if outcome is None else outcome
    rows = iter(changes)
    first = next(rows, None)
    if first is None:
        return outcome
    rows = itertools.chain((first,), rows)
    dialect = engine.dialect.name
    started = time.monotonic()
    written = 0
    doubtful: list[Row] = []  # rows of batches not proved by their row counts
    with engine.connect() as conn:
        if opts.lock_wait_timeout and dialect in ("mysql", "mariadb"):
            conn.execute(
                sa.text(f"SET SESSION innodb_lock_wait_timeout = {int(opts.lock_wait_timeout)}")
            )
            conn.commit()
        table = reflect_bindings(conn)
        binary = is_binary(table.c.vif_details)
        conn.rollback()  # end the reflection's implicit transaction: batches begin their own
        gc.freeze()  # the plan's objects are long-lived: keep the collector off them
        prover: Prover | InlineProver = (
            Prover(engine, layout, table, binary)
            if dialect in CONCURRENT_PROOF
            else InlineProver(conn, layout, table, binary)
        )
        try:
            size = opts.batch_size or ADAPTIVE_START
            while True:
                if should_stop():
                    outcome.interrupted = True
                    break
                batch = list(itertools.islice(rows, size))
                if not batch:
                    break
                done = _write_batch(
                    conn, (table, layout), batch, opts, outcome, sleep, binary, clock
                )
                if done is None:
                    outcome.status.update(dict.fromkeys(map(_key, batch), FAILED))
                    doubtful += batch
                    break  # an error that retries did not clear: stop, report, write no more
                matched, seconds = done
                if not opts.batch_size:
                    size = next_batch_size(len(batch), seconds)
                if matched == len(batch):
                    if streamed:
                        outcome.implicit += len(batch)
                    else:
                        outcome.status.update(dict.fromkeys(map(_key, batch), CHANGED))
                    prover.submit(batch)  # committed: proved while the next batch is written
                else:
                    outcome.status.update(dict.fromkeys(map(_key, batch), _WRITTEN))
                    doubtful += batch
                outcome.batches += 1
                written += len(batch)
                progress(len(batch))
                if opts.max_rate:
                    ahead = written / opts.max_rate - (time.monotonic() - started)
                    if ahead > 0:
                        sleep(ahead)
        finally:
            prover.close()
        left = list(rows)  # never sent (stopped): re-read, to report what they hold
        if streamed:
            outcome.status.update(dict.fromkeys(map(_key, left), PENDING))
        verify(conn, layout, doubtful + left, outcome, binary, table, prover)
    gc.unfreeze()
    return outcome


class Row(Protocol):
    """What the writer reads of a planned row: its key, the text it is guarded on, and
    the text it writes (a :class:`Change`, or a lighter record with those fields)."""

    @property
    def port_id(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def stored(self) -> str | None: ...
    @property
    def new(self) -> str | None: ...


#: A change's row: (port_id, host), the primary key (a C getter: it runs per row).
_key: Callable[[Row], tuple[str, str]] = operator.attrgetter("port_id", "host")
#: Its guard and new text, and its new text alone (C getters).
_pair: Callable[[Row], tuple[str | None, str | None]] = operator.attrgetter("stored", "new")
_new: Callable[[Row], str | None] = operator.attrgetter("new")


def _write_batch(
    conn: Connection,
    target: tuple[sa.Table, Layout],
    batch: Sequence[Row],
    opts: WriteOptions,
    outcome: Outcome,
    sleep: Callable[[float], None],
    binary: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, float] | None:
    """One transaction for the batch, retried on lock waits and deadlocks; rows matched
    and the seconds the transaction that committed took (None: it failed).

    Everything is prepared before the transaction opens, and the garbage collector
    waits until it is closed, so locks are held only for the statements themselves.
    ``target``: the table and its layout, for the guarded statements.
    """
    table, layout = target
    dialect = conn.dialect.name
    groups = batch_params(batch, _STATEMENT_ROWS.get(dialect, _DEFAULT_STATEMENT_ROWS), binary)
    statements = [
        (
            batch_statement(table, layout, dialect, g.pop("b_keys"), null=g["b_stored"] is None),
            g,
        )
        for g in groups
    ]
    collecting = gc.isenabled()  # a caller may have stopped it for the whole run
    for attempt in range(opts.retries + 1):
        gc.disable()
        began = clock()
        try:
            with conn.begin():
                matched = sum(
                    conn.execute(stmt, p, execution_options=_UNCACHED).rowcount
                    for stmt, p in statements
                )
            took = clock() - began
            outcome.longest_transaction_s = max(outcome.longest_transaction_s, took)
            return matched, took
        except DBAPIError as exc:
            if is_retryable(exc) and attempt < opts.retries:
                outcome.retries += 1
                jitter = random.random() / 2  # noqa: S311 - backoff jitter, not a secret
                sleep(opts.backoff_s * (2**attempt) * (1 + jitter))
                continue
            outcome.errors.append(db_error(exc))
            return None
        finally:
            if collecting:
                gc.enable()
    return None  # pragma: no cover - the loop always returns


def read_current(
    conn: Connection, layout: Layout, keys: Sequence[tuple[str, str]], chunk: int = 2000
) -> dict[tuple[str, str], str | None]:
    """vif_details of the live (ACTIVE where the column exists) rows for these keys."""
    table = reflect_bindings(conn)
    found: dict[tuple[str, str], str | None] = {}
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        query = only_live(
            sa.select(table.c.port_id, table.c.host, table.c.vif_details).where(
                sa.tuple_(table.c.port_id, table.c.host).in_(part)
            ),
            table,
            layout,
        )
        for port_id, host, details in conn.execute(query):
            found[(port_id, host)] = column_text(details)
    conn.rollback()
    return found


def verify(
    conn: Connection,
    layout: Layout,
    doubtful: list[Row],
    outcome: Outcome,
    binary: bool = False,
    table: sa.Table | None = None,
    prover: Prover | InlineProver | None = None,
) -> None:
    """Prove what each planned row holds now: changed only if it reads back the new text.

    A batch whose guarded UPDATEs matched every row wrote exactly those rows (each key
    is the primary key, each guard the old text, byte for byte). What is left to prove
    is that they read back as the new text (a trigger or a lax server could make them
    hold something else): the ``prover`` counted them, one COUNT of the rows holding it,
    byte-exact, per new text and chunk of keys, as each batch committed. Only the rows
    no count proves are re-read one by one, with ``doubtful``: those of a batch that
    matched fewer rows than planned (which were skipped?), of a batch that failed (did
    its commit go through despite the error? then it is reported changed), and rows
    never sent. If the re-read fails, every row a batch was sent for is reported
    unknown, never as "nothing was written".
    """
    try:
        if prover is not None:
            proved_doubtful, unproved = prover.result()
            doubtful = doubtful + proved_doubtful
            if unproved:  # its connection failed: counted here, as without it
                table = table if table is not None else reflect_bindings(conn)
                doubtful += prove_counts(conn, layout, table, unproved, binary)
        current = (
            read_current(conn, layout, [(c.port_id, c.host) for c in doubtful]) if doubtful else {}
        )
    except DBAPIError as exc:
        outcome.errors.append(f"could not re-read the rows: {db_error(exc)}")
        outcome.implicit_state = UNKNOWN  # the rows only counted were sent too
        for key, state in outcome.status.items():
            if state in (CHANGED, _WRITTEN, FAILED):
                outcome.status[key] = UNKNOWN
        return
    for c in doubtful:
        key = (c.port_id, c.host)
        now = current.get(key)
        # A row gone (or no longer live) is not one that holds the new value, even NULL.
        holds_new = key in current and now == c.new
        state = outcome.state(key)
        if state == _WRITTEN:  # its batch matched fewer rows than planned: which ones?
            state = CHANGED if holds_new else SKIPPED
            outcome.set_state(key, state)
        if state == FAILED and holds_new and c.new != c.stored:
            state = CHANGED  # committed, though the driver said no
            outcome.set_state(key, state)
        if state == CHANGED and not holds_new:
            outcome.set_state(key, FAILED)
            outcome.errors.append(f"{c.port_id}@{c.host}: reads back {now!r}, not the new value")
        if state in (SKIPPED, FAILED) or not holds_new:
            outcome.current[key] = now


def prove_counts(
    conn: Connection,
    layout: Layout,
    table: sa.Table,
    rows: Sequence[Row],
    binary: bool = False,
    chunk: int = 2000,
) -> list[Row]:
    """The rows of fully matched batches that one COUNT per chunk does not prove.

    Grouped by new text: ``SELECT COUNT(*) ... WHERE (port_id, host) IN :keys AND
    vif_details = :new`` (byte-exact, live rows only). A count equal to the chunk's rows
    proves each holds the new text (a key matches one row at most: it is the primary
    key); a chunk that falls short is returned whole, to be re-read, and so are rows
    restored to NULL. Ends its read transaction: the next proof sees later commits.
    """
    doubtful: list[Row] = []
    groups: dict[str, list[Row]] = {}
    texts = {*map(_new, rows)}
    only = texts.pop() if len(texts) == 1 else None
    if only is not None:  # one new text (the usual batch)
        groups[only] = list(rows)
    else:
        for c in rows:
            if c.new is None:
                doubtful.append(c)
            else:
                groups.setdefault(c.new, []).append(c)
    if not groups:
        return doubtful
    dialect = conn.dialect.name
    held = exact_equals(table.c.vif_details, sa.bindparam("b_new", type_=sa.String()), dialect)
    for new, part_rows in groups.items():
        value = column_bytes(new) if binary else new
        for start in range(0, len(part_rows), chunk):
            part = part_rows[start : start + chunk]
            keys = list(map(_key, part))
            query = only_live(
                sa.select(sa.func.count())
                .select_from(table)
                .where(key_rows(table, keys, dialect), held),
                table,
                layout,
            )
            counted = conn.execute(query, {"b_new": value}, execution_options=_UNCACHED).scalar()
            if counted != len(part):
                doubtful.extend(part)
    conn.rollback()
    return doubtful


class InlineProver:
    """The COUNT proof of each committed batch on the writer's own connection, right
    after its COMMIT (SQLite: one writer locks the file): the rows are proved as they
    are written, so none is held until the end of the run (issue 14)."""

    def __init__(self, conn: Connection, layout: Layout, table: sa.Table, binary: bool):
        self._args = (conn, layout, table)
        self._binary = binary
        self._doubtful: list[Row] = []

    def submit(self, rows: Sequence[Row]) -> None:
        conn, layout, table = self._args
        self._doubtful += prove_counts(conn, layout, table, rows, self._binary)

    def close(self) -> None:
        """Nothing runs beside the writer."""

    def result(self) -> tuple[list[Row], list[Row]]:
        return self._doubtful, []


class Prover:
    """The COUNT proof of each committed batch, on a connection of its own, while the
    writer goes on with the next batch (issue 14).

    Proving after the last batch waited on the server for about 0.9 s per 100,000 rows,
    with the client idle; here the server counts one batch while it writes the next,
    and the client waits on both sockets at once (PyMySQL and psycopg2 release the GIL
    while they wait). A proof runs only after its batch's COMMIT returned, in a read
    transaction begun after it, so it proves what it proved before: the row holds the
    new text once committed. One connection per thread, never shared.
    """

    #: Batches submitted and not yet proved, at most: a writer ahead of its proofs waits
    #: (the queue held every batch the server had not counted yet: memory grew with
    #: the rows, 91 to 232 MB from 40,000 to 400,000; issue 14).
    AHEAD = 4

    def __init__(self, engine: Engine, layout: Layout, table: sa.Table, binary: bool):
        self._queue: queue.Queue[Sequence[Row] | None] = queue.Queue(self.AHEAD)
        self._doubtful: list[Row] = []
        self._unproved: list[Row] = []  # submitted, but the proofs stopped before them
        self._thread = threading.Thread(
            target=self._run, args=(engine, layout, table, binary), name="vifdoctor-prover"
        )
        self._thread.daemon = True  # a second Ctrl-C must not wait for it
        self._thread.start()

    def submit(self, rows: Sequence[Row]) -> None:
        """Rows of a batch that committed and matched every row (waits while AHEAD
        batches are not proved yet)."""
        if not self._put(rows):
            self._unproved += rows  # the proofs stopped: counted on the writer's connection

    def _put(self, item: Sequence[Row] | None) -> bool:
        """Queued, waiting for room as long as the proofs go on (False: they stopped)."""
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        """No more batches: wait for the proofs under way (idempotent)."""
        if self._put(None):
            self._thread.join()

    def result(self) -> tuple[list[Row], list[Row]]:
        """The submitted rows no count proved (to re-read), and those it never counted
        because its connection failed (to count on the writer's, as without it)."""
        self.close()
        while not self._queue.empty():  # left behind by a proof that failed
            rows = self._queue.get()
            if rows is not None:
                self._unproved += rows
        return self._doubtful, self._unproved

    def _run(self, engine: Engine, layout: Layout, table: sa.Table, binary: bool) -> None:
        rows: Sequence[Row] | None = None
        try:
            with engine.connect() as conn:
                while (rows := self._queue.get()) is not None:
                    self._doubtful += prove_counts(conn, layout, table, rows, binary)
        except Exception:  # noqa: BLE001 - a failed proof is left to the writer's connection
            self._unproved += rows or []


def require_writable(engine: Engine) -> None:
    """Refuse early on a read-only server rather than fail in the middle of a plan."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return
    with engine.connect() as conn:
        read_only = conn.execute(sa.text("SELECT @@global.read_only")).scalar()
    if read_only:
        raise VifdoctorError("the database server is read-only (read_only=ON): nothing written")


__all__ = [
    "apply_changes",
    "Outcome",
    "WriteOptions",
    "guarded_update",
    "read_current",
    "CHANGED",
    "SKIPPED",
    "FAILED",
    "PENDING",
    "UNKNOWN",
    "db_error",
]
