"""The writing commands as library calls: plan, repair and rollback, start to end.

Each returns a :class:`ChangeReport` that any front end renders. What only a
front end can do reaches these functions as callbacks in :class:`Hooks`: a
progress bar, and a way to stop after the running batch (Ctrl-C on the CLI).
"""

from __future__ import annotations

import base64
import datetime
import functools
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import sqlalchemy as sa

from vifdoctor.collector import no_cyclic_gc
from vifdoctor.errors import VifdoctorError
from vifdoctor.limits import check_max_rate
from vifdoctor.model import VERDICT_FIELDS, Agent, Binding, Change
from vifdoctor.options import RepairOptions, RollbackOptions, WriteOptions
from vifdoctor.ovn_join import OvnJoin
from vifdoctor.repair import apply as writer
from vifdoctor.repair import stale
from vifdoctor.repair.backup import (
    BackupWriter,
    RowEncoder,
    check_header,
    check_restorable,
    check_row,
    default_dir,
    read_backup,
    scan_backup,
)
from vifdoctor.repair.changespool import (
    FIELDS,
    ChangeSpool,
    Record,
    change_of,
    plan_key_of,
    record,
)
from vifdoctor.repair.hooks import Hooks
from vifdoctor.repair.plan import Planner, repair_codes
from vifdoctor.repair.sql import render_sql
from vifdoctor.results import ChangeReport, Results
from vifdoctor.rules.binding import BindingJudge
from vifdoctor.rules.registry import repair_vif_types
from vifdoctor.session import NeutronSession, neutron_session
from vifdoctor.settings import resolve
from vifdoctor.sources.database import column_bytes, column_text, connect, is_binary, redact
from vifdoctor.sources.neutron_db import KnownPort, NeutronDatabase
from vifdoctor.sources.neutron_schema import BINDING_COLUMNS, only_live, reflect_bindings
from vifdoctor.spool import sort_on_disk

#: Changes per sorted run of the plan, and per record of a run (vifdoctor.spool). Up
#: to a run's size a sort is done in memory, nothing written: runs of 25,000 cost
#: 0.35 s of CPU per 100,000 changes to write and merge (issue 14), for 70 MB of
#: peak memory less; past it, memory stays as flat as before, a run higher. 120,000:
#: a repair of 100,000 rows (issue 14's benchmark) is sorted in memory, and the peak
#: at the bound stays near 200 MB.
PLAN_RUN, PLAN_BLOCK = 120_000, 500
#: Rows per run and record of the writer's (port_id, host) sort.
WRITE_RUN, WRITE_BLOCK = 120_000, 1000
#: The key of a (key, record) pair, in C.
_first = operator.itemgetter(0)


def _plan(
    s: NeutronSession,
    codes: frozenset[str],
    options: RepairOptions | None = None,
    backup: bool = False,
) -> tuple[ChangeSpool, list[dict]]:
    """The changes that fit the column, spooled in plan order (with what the backup
    needs of each row when ``backup``: a repair that writes), and one note per row whose
    new value would not (issue 14: the plan is never held whole)."""
    # A source may narrow the read to the rows a repairable rule can flag.
    ovn_join = None
    if options is not None:  # OVN's bindings are judged (and rewritten) as OVN's
        ovn_join, notes = s.open_ovn(options)
        s.settings.assumptions.extend(notes)
    database = s.engine is not None and isinstance(s.source, NeutronDatabase)
    fields: list[tuple[str, str, bool]] | None = None
    limit = None
    if database:
        assert isinstance(s.source, NeutronDatabase)
        table = reflect_bindings(s.source.conn)
        s.source.conn.rollback()
        limit = getattr(table.c.vif_details.type, "length", None)
        fields = _backup_fields(table) if backup else None
    vif_types = repair_vif_types(codes)
    # A row of a shape already planned is not built (issue 14): see _planned.
    known: dict[bytes, _Shape | object] | None = None
    if database and ovn_join is None:  # OVN judges a row by its ids too
        assert isinstance(s.source, NeutronDatabase)
        known = {}
        # what no binding rule, change or backup reads (the rules' findings name the
        # network and project; the plan keeps none): a third of a candidate's bytes
        unread = {"network_id", "project_id", "port_status", "segment"}
        if fields is not None:
            unread -= {attr for _, attr, _ in fields}
        rows: Iterable[Binding | KnownPort] = s.source.repair_candidates_known(
            s.selectors, vif_types, known, _UNPLANNED, frozenset(unread)
        )
    else:
        rows = s.source.repair_candidates(s.selectors, vif_types)
    too_long: list[dict] = []
    # The plan only grows (no reference cycles): cyclic GC passes over its heap cost a
    # fifth of the planning time at 100,000 changes (issue 14), for nothing to free.
    with no_cyclic_gc():
        records = _planned(rows, s, codes, ovn_join, limit, too_long, fields, known)
        if database:
            # The candidates come unordered (the server's sort of every candidate before
            # its first row cost more than sorting the changes here): the plan keeps its
            # device_id order (plan_order), sorted on disk. Each record goes with its key
            # in front, taken by a C getter: a key function was a Python call per row in
            # the sort and in the merge of its runs, and (key, record) pairs compared
            # whole cost twice the sort's time (each comparison tested the keys' equality
            # first). The key ends with the host: with the port id, the primary key, so
            # no two are equal and no comparison reaches the record.
            keyed = sort_on_disk(
                ((plan_key_of(rec), rec) for rec in records), _first, PLAN_RUN, PLAN_BLOCK
            )
            records = map(operator.itemgetter(1), keyed)
        return ChangeSpool(records), too_long


#: What a shape planned to no change stands for among the candidates: they are dropped.
_UNPLANNED = object()
#: Distinct shapes remembered; a cloud of unique texts stays bounded (as BindingJudge's).
MAX_SHAPES = 65536
_PORT_AT, _DEVICE_AT = FIELDS.index("port_id"), FIELDS.index("device_id")


class _Shape:
    """The record of every row of one packed shape (``Binding.shape``: the row's
    VERDICT_FIELDS, which decide its judgement, change and plugs) but its port and
    device ids: the record the first such row planned to, with its ids taken out.

    Only where the backup's columns are all VERDICT_FIELDS but the port id (``at``: its
    place among them), so two rows' records differ in their ids alone."""

    __slots__ = ("head", "middle", "tail", "kept", "before", "after")

    def __init__(self, rec: Record, at: int):
        fields, original = rec
        assert _PORT_AT < _DEVICE_AT
        self.head = fields[:_PORT_AT]
        self.middle = fields[_PORT_AT + 1 : _DEVICE_AT]
        self.tail = fields[_DEVICE_AT + 1 :]
        self.kept = original is not None  # the backup's columns of the row
        self.before: tuple = ()
        self.after: tuple = ()
        if original is not None:
            assert at >= 0
            self.before, self.after = original[:at], original[at + 1 :]

    def record(self, port_id: str, device_id: str) -> Record:
        fields = (*self.head, port_id, *self.middle, device_id, *self.tail)
        if not self.kept:
            return fields, None
        return fields, (*self.before, port_id, *self.after)


def _shape_place(fields: list[tuple[str, str, bool]] | None) -> int | None:
    """Where the port id sits in the backup's columns when they are all VERDICT_FIELDS
    but it (a row's record is then its shape's but for its ids), else None."""
    if fields is None:
        return -1  # nothing kept: any shape will do
    attrs = [attr for _, attr, _ in fields]
    if attrs.count("port_id") != 1 or not set(attrs) - {"port_id"} <= set(VERDICT_FIELDS):
        return None
    return attrs.index("port_id")


def _planned(
    rows: Iterable[Binding | KnownPort],
    s: NeutronSession,
    codes: frozenset[str],
    ovn_join: OvnJoin | None,
    limit: int | None,
    too_long: list[dict],
    fields: list[tuple[str, str, bool]] | None,
    known: dict[bytes, _Shape | object] | None,
) -> Iterator[Record]:
    """Each candidate judged and planned: the records of its changes that fit the column
    (with what the backup needs of the row when ``fields``), one note in ``too_long``
    for each that does not, in the candidates' order.

    ``known``: the dict the candidates' source hands rows back by (their shape): filled
    here, for each shape, with _UNPLANNED where its row planned no change, else with
    its record as a _Shape. The rows alike come back as a KnownPort and take that
    record with their own ids, never built, judged or planned (issue 14: reading,
    building and judging 225,000 candidates was three quarters of a repair's CPU).
    Exact: rows of one shape are equal in every field their judgement, change and
    plugs and the backup's other columns are made of (a shape is only learnt where
    the backup's columns are those fields and the port id).
    """
    agents, ctx = s.agents, s.settings.context
    empty: list[Agent] = []
    judge = BindingJudge(ctx, shapes=True)
    planner = Planner(codes, ctx)
    at = _shape_place(fields)
    for row in rows:
        if type(row) is KnownPort:
            yield row.value.record(row.port_id, row.device_id)
            continue
        assert isinstance(row, Binding)
        host_agents = agents.get(row.host, empty)
        if ovn_join is not None and ovn_join.claims(row, host_agents):
            judgement = ovn_join.judge(row)
        else:
            judgement = judge(row, host_agents)
        change = planner(row, judgement)
        rec = None
        if change is not None:
            note = _too_long(change, limit) if limit else None
            if note is not None:
                too_long.append(note)
            else:
                rec = record(change, None if fields is None else _original(change, fields))
        if known is not None and row.shape is not None:
            if len(known) >= MAX_SHAPES:
                known.clear()
            if change is None:
                known[row.shape] = _UNPLANNED
            elif rec is not None and at is not None:  # a change too long: noted row by row
                known[row.shape] = _Shape(rec, at)
        if rec is not None:
            yield rec


def _stale_code(codes: frozenset[str]) -> bool:
    """VD206 deletes rows: it is repaired on its own (vifdoctor.repair.stale)."""
    if stale.CODE not in codes:
        return False
    if codes != {stale.CODE}:
        raise VifdoctorError(
            f"{stale.CODE} deletes rows while the others rewrite them: "
            f"repair it on its own (--code {stale.CODE})"
        )
    return True


def _unmoving(changes: ChangeSpool, options: RepairOptions) -> tuple[ChangeSpool, dict]:
    """With Nova given, leave out the ports of instances with a move in progress."""
    cells = stale.open_cells(options)
    if cells is None:
        return changes, {}
    try:
        reasons = stale.moving_instances(
            cells, (c.device_id for c in changes if c.device_owner.startswith("compute:"))
        )
    finally:
        cells.close()
    if not reasons:
        return changes, {"skipped_moving": []}
    skipped: list[dict] = []

    def keep(rec: Record) -> bool:
        c = change_of(rec[0])
        reason = stale.moving_reason_of(c, reasons)
        if reason:
            skipped.append(
                {"port_id": c.port_id, "host": c.host, "device_id": c.device_id, "reason": reason}
            )
        return not reason

    return changes.filtered(keep), {"skipped_moving": skipped}


def _too_long(c: Change, limit: int) -> dict | None:
    """The note naming a change whose new value exceeds the column (VARCHAR(4095)), or
    None: such a row is not planned but named.

    Re-serializing as Neutron does (``json.dumps``) can lengthen a compact value; one
    such row used to fail its whole batch with an error naming no port.
    """
    if len(c.new or "") <= limit:
        return None
    return {
        "port_id": c.port_id,
        "host": c.host,
        "codes": list(c.codes),
        "new_length": len(c.new or ""),
        "column_length": limit,
    }


def _too_long_extra(too_long: list[dict]) -> dict:
    return {"not_planned_too_long": too_long} if too_long else {}


def plan(options: RepairOptions) -> ChangeReport:
    """The exact rows a repair would change (read-only)."""
    codes = repair_codes(options.code)
    if _stale_code(codes):
        return stale.plan_report(options)
    with neutron_session(options) as s:
        planned, too_long = _plan(s, codes, options)
        changes, moving = _unmoving(planned, options)
        return ChangeReport(
            "plan",
            changes,
            s.source.describe(),
            s.settings.assumptions,
            {"codes": sorted(codes), **moving, **_too_long_extra(too_long)},
        )


def plan_sql(options: RepairOptions) -> list[str]:
    """The plan as guarded SQL statements for a DBA, in batches of ``batch_size``."""
    codes = repair_codes(options.code)
    if _stale_code(codes):
        return stale.sql_lines(options)
    with neutron_session(options) as s:
        planned, _ = _plan(s, codes, options)
        changes, _ = _unmoving(planned, options)
        if s.engine is None or not isinstance(s.source, NeutronDatabase):
            raise VifdoctorError(
                "--sql is for the database path; in API mode "
                "`vifdoctor repair --os-cloud NAME` re-binds through Neutron"
            )
        assert s.source.layout is not None
        table = reflect_bindings(s.source.conn)
        return list(
            render_sql(changes, table, s.source.layout, s.engine.dialect, options.batch_size)
        )


def _write_options(options: WriteOptions) -> writer.WriteOptions:
    return writer.WriteOptions(
        batch_size=options.batch_size,
        max_rate=check_max_rate(options.max_rate),
        retries=options.retries,
        lock_wait_timeout=options.lock_wait_timeout,
    )


# Binding fields the reader fills with text where the column holds NULL (neutron_db.py).
_NULL_AS_TEXT = ("host", "vif_type", "vnic_type", "profile")


def _backup_fields(table: sa.Table) -> list[tuple[str, str, bool]] | None:
    """Each column the backup keeps, with the Binding field holding it and whether it is
    a BLOB, when the plan's rows hold them all; else None: the rows are read again.

    A table with other columns (a vendor's) is read again, whole; so is one where a
    column the plan reads as text (NULL as '' or 'normal') may hold NULL: the backup
    keeps NULL as null, never as the text it was judged as.
    """
    columns = [c.name for c in table.columns]
    binary = {c.name for c in table.columns if is_binary(c)}
    as_read = not any(table.c[n].nullable for n in _NULL_AS_TEXT if n in table.c)
    if not as_read or not set(columns) <= set(BINDING_COLUMNS):
        return None
    return [(col, BINDING_COLUMNS[col], col in binary) for col in columns]


def _original(change: Change, fields: list[tuple[str, str, bool]]) -> tuple:
    """The row's columns as the backup keeps them, from the Binding the plan read."""
    values = _getter(tuple(attr for _, attr, _ in fields))(change.binding)
    if len(fields) == 1:
        values = (values,)
    if {*map(type, values)} <= _TEXT_OR_NULL and not any(blob for _, _, blob in fields):
        return values  # text of text columns, and NULL, are kept as they are (the common case)
    return tuple(
        value if value is None or (not blob and type(value) is str) else backup_value(value, blob)
        for value, (_, _, blob) in zip(values, fields, strict=True)
    )


#: The types of a row's values kept as they are (the types' set is made in C, per row).
_TEXT_OR_NULL = frozenset({str, type(None)})


@functools.cache
def _getter(attrs: tuple[str, ...]) -> Callable[[Any], Any]:
    return operator.attrgetter(*attrs)


def _read_whole(
    source: NeutronDatabase,
    table: sa.Table,
    keys: list[tuple[str, str]],
    current: dict[tuple[str, str], str | None] | None = None,
) -> dict[tuple[str, str], tuple]:
    """Every column of these rows (live ones), as the backup keeps them, in the table's
    column order; ``current``: filled with each row's vif_details as text on the way
    (what :func:`writer.read_current` returns), so a rollback reads its rows once.

    The keys go as a literal list (:func:`writer.key_rows`): SQLAlchemy's expanding
    parameters cost a rollback 0.2 s per 100,000 rows (issue 14); a row of text and
    NULL in a table without BLOBs is kept as read (:func:`backup_value` leaves those).
    """
    conn = source.conn
    names = [c.name for c in table.columns]
    binary = [is_binary(c) for c in table.columns]
    as_read = not any(binary)
    port, host, details = (names.index(n) for n in ("port_id", "host", "vif_details"))
    found: dict[tuple[str, str], tuple] = {}
    assert source.layout is not None
    query = only_live(
        sa.select(*table.columns).where(writer.key_rows(table, keys, conn.dialect.name)),
        table,
        source.layout,
    )
    for row in conn.execute(query, execution_options=_UNCACHED):
        values = tuple(row)
        key = (values[port], values[host])
        if not (as_read and {*map(type, values)} <= _TEXT_OR_NULL):
            values = tuple(map(backup_value, values, binary))
        found[key] = values
        if current is not None:
            current[key] = column_text(row[details])
    conn.rollback()
    return found


#: Statements whose key list is literal SQL: compiled once each, kept out of the cache.
_UNCACHED = {"compiled_cache": None}


def _keys(chunk: list[Record]) -> list[tuple[str, str]]:
    return [(fields[0], fields[1]) for fields, _ in chunk]


def _backed_up(
    source: NeutronDatabase, changes: ChangeSpool, kept: list[ChangeSpool]
) -> Iterator[tuple[list[str], list[tuple]]]:
    """The changes' backup rows (canonical text) and what the writer needs of each,
    (port_id, host, stored, new), a chunk at a time, in plan order.

    The columns come from the plan where it holds them all (:func:`_backup_fields`);
    otherwise they are read again a chunk at a time, and a row gone since the plan is
    neither backed up nor written: ``kept`` then receives the changes that are.
    """
    table = reflect_bindings(source.conn)
    source.conn.rollback()
    fields = _backup_fields(table)
    first = next(changes.records(), None)
    if fields is not None and first is not None and first[1] is not None:
        # as the plan kept them (_original): the rows' text made from their values
        encoder = RowEncoder([col for col, _, _ in fields])
        for chunk in changes.chunks():
            planned = list(map(_FIELDS, chunk))
            texts = encoder.encode(
                list(map(_ORIGINAL, chunk)), list(map(_NEW, planned)), list(map(_CODES, planned))
            )
            yield texts, list(map(_WRITES, planned))
        kept.append(changes)
        return
    survivors = ChangeSpool()
    whole_encoder = RowEncoder([c.name for c in table.columns])
    for chunk in changes.chunks():
        whole = _read_whole(source, table, _keys(chunk))
        originals, written, codes, rows = [], [], [], []
        for rec in chunk:
            fields_ = rec[0]
            original = whole.get((fields_[0], fields_[1]))
            if original is None:  # gone since the plan: not written
                continue
            survivors.add(rec)
            originals.append(original)
            written.append(fields_[4])
            codes.append(fields_[5])
            rows.append(_WRITES(fields_))
        yield whole_encoder.encode(originals, written, codes), rows
    kept.append(survivors)


#: A record's fields and original columns; of its fields, the written text, the codes,
#: and what the writer needs: (port_id, host, stored, new). All C getters.
_FIELDS, _ORIGINAL = operator.itemgetter(0), operator.itemgetter(1)
_NEW, _CODES, _WRITES = (
    operator.itemgetter(4),
    operator.itemgetter(5),
    operator.itemgetter(0, 1, 3, 4),
)


def backup_value(value: Any, binary: bool = False) -> Any:
    """A column's value as the backup keeps it: exact bytes of a BLOB as tagged base64.

    ``binary``: the column is a BLOB whose value the plan read as text
    (:func:`column_text`); its exact bytes are stored, whatever they are.
    """
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, str) and binary:
        value = column_bytes(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"type": "bytes", "base64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def restored_value(value: Any) -> Any:
    """The column value a backup entry stands for (str, None, or text of a BLOB's bytes)."""
    if isinstance(value, dict) and value.get("type") == "bytes":
        return column_text(base64.b64decode(value["base64"], validate=True))
    return value


def _backup_header(source: NeutronDatabase, what: str) -> dict:
    return {
        "kind": what,
        "database": {
            "url": redact(source.engine.url),
            "name": source.engine.url.database,
            "dialect": source.engine.dialect.name,
        },
        "schema": source.describe(),
        "table": "ml2_port_bindings",
    }


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


class _Write(NamedTuple):
    """A row as the writer reads it (vifdoctor.repair.apply.Row)."""

    port_id: str
    host: str
    stored: str | None
    new: str | None


#: The writer's order: the primary key. The sort is stable, so equal keys (a hand-made
#: backup's) keep the backup's order.
_PRIMARY_KEY = operator.itemgetter(0, 1)


def _write(
    source: NeutronDatabase,
    entries: Iterable[tuple[list[str], list[tuple]]],
    options: WriteOptions,
    what: str,
    hooks: Hooks,
    keep_empty: bool = True,
) -> tuple[writer.Outcome, str]:
    """Backup first (refuse if it cannot be written), then the guarded batches.

    ``entries``: the rows a chunk at a time, their backup rows' canonical text and the
    writer's (port_id, host, stored, new) of each.
    The backup is written as they are read, and the writer's rows sorted on disk by
    key on the way; every row is read (the backup sealed, fsync-ed and in place) before
    the first write. No row to back up (a rollback with nothing due): no file, no write.
    """
    write_options = _write_options(options)  # bad settings refused before anything is written
    writer.require_writable(source.engine)
    folder = options.backup_dir or default_dir()
    backup = BackupWriter(
        folder, _backup_header(source, what), name=f"{what}-{_stamp()}.json", keep_empty=keep_empty
    )

    def backed_up() -> Iterator[list[tuple]]:
        with backup:
            for texts, rows in entries:
                backup.add_encoded(texts)
                yield rows

    ordered = sort_on_disk(
        itertools.chain.from_iterable(backed_up()), _PRIMARY_KEY, WRITE_RUN, WRITE_BLOCK
    )
    first = next(ordered, None)  # every entry read: the backup is sealed, or this raised
    if not backup.sealed:  # nothing to back up, nothing to write
        return writer.Outcome(), backup.path
    # each row made a _Write in C (its four fields are ours: _make's check is not needed)
    made = functools.partial(tuple.__new__, _Write)
    rows = map(made, itertools.chain(() if first is None else (first,), ordered))
    bar = hooks.progress(backup.rows)
    assert source.layout is not None
    try:
        with hooks.writing() as should_stop:
            outcome = writer.apply_sorted(
                source.engine,
                source.layout,
                rows,
                write_options,
                should_stop=should_stop,
                progress=(bar.update if bar is not None else (lambda n: None)),
            )
    finally:
        if bar is not None:
            bar.close()
    # "Nothing was written" only when the re-read proves it; otherwise every row is
    # reported as it reads back (changed / skipped / failed / unknown).
    if outcome.errors and not (outcome.count(writer.CHANGED) or outcome.count(writer.UNKNOWN)):
        raise VifdoctorError(
            f"{what} failed, nothing was written: {outcome.errors[0]} (backup kept: {backup.path})"
        )
    return outcome, backup.path


def outcome_doc(outcome: writer.Outcome) -> dict:
    """The write's counts and figures, as the JSON document and the footer show them."""
    return (
        {
            state: outcome.count(state)
            for state in (writer.CHANGED, writer.SKIPPED, writer.FAILED, writer.PENDING)
        }
        | {
            "batches": outcome.batches,
            "retries": outcome.retries,
            "longest_transaction_ms": round(outcome.longest_transaction_s * 1000, 1),
            "interrupted": outcome.interrupted,
            "errors": outcome.errors,
        }
        | ({writer.UNKNOWN: outcome.count(writer.UNKNOWN)} if outcome.count(writer.UNKNOWN) else {})
    )


def _exit_code(outcome: writer.Outcome) -> int:
    """130 when stopped; 2 when a row failed, is unknown, or was never sent.

    A batch whose COMMIT raised is re-read: its rows may prove changed ("committed
    despite an error"), but the write stopped there and later batches stay pending,
    which must not exit 0.
    """
    if outcome.interrupted:
        return 130
    unfinished = (writer.FAILED, writer.UNKNOWN, writer.PENDING)
    return 2 if any(outcome.count(state) for state in unfinished) else 0


def repair(options: RepairOptions, hooks: Hooks | None = None) -> ChangeReport:
    """Rewrite the flagged rows: a dry run unless ``options.apply``; backed up and guarded."""
    hooks = hooks or Hooks()
    settings = resolve(options)
    codes = repair_codes(options.code, rebind=settings.api)
    if _stale_code(codes):  # database or API: deletes, Nova re-checked before each
        return stale.repair_report(options, hooks)
    if settings.api:  # API mode: Neutron re-binds the ports itself
        from vifdoctor.repair.api_rebind import repair_via_api

        return repair_via_api(options, settings, hooks)
    with neutron_session(options, settings) as s:
        assert isinstance(s.source, NeutronDatabase)
        planned, too_long = _plan(s, codes, options, backup=bool(options.apply))
        changes, moving = _unmoving(planned, options)
        extra: dict = {
            "codes": sorted(codes),
            "applied": bool(options.apply),
            **moving,
            **_too_long_extra(too_long),
        }
        report = ChangeReport("repair", changes, s.source.describe(), s.settings.assumptions, extra)
        if too_long:  # rows left as they are, which the operator must fix by hand
            report.exit_code = 2
        if not options.apply or not changes:
            return report
        kept: list[ChangeSpool] = []
        outcome, path = _write(
            s.source, _backed_up(s.source, changes, kept), options, "repair", hooks
        )
        changes = kept[0]
        report.changes = changes
        report.applied = True
        report.backup = path
        report.outcome = outcome_doc(outcome)
        report.longest_transaction_s = outcome.longest_transaction_s
        report.extra = {**extra, "backup": path, "outcome": report.outcome}
        results = report.results = outcome.results()
        report.done = (
            changes
            if outcome.all_changed()
            else changes.filtered(lambda rec: results.of(change_of(rec[0]))[0] == writer.CHANGED)
        )
        report.exit_code = max(_exit_code(outcome), report.exit_code)
        return report


def _restore(row: dict) -> Record:
    """The write that undoes one backed-up row: guarded on what vifdoctor wrote."""
    original = row["original"]
    return record(
        Change(
            port_id=original["port_id"],
            host=original["host"],
            status=original.get("status"),
            stored=row.get("written"),  # checked: text or null (check_row)
            new=restored_value(original.get("vif_details")),  # a NULL is restored as NULL
            codes=("rollback",),
            device_owner="",
            device_id="",
            vif_type=original.get("vif_type", ""),
            plug_before="",
            plug_after="",
        )
    )


def _restores(path: str) -> tuple[dict, ChangeSpool]:
    """The backup's header and its rows as restores, spooled: every row is read and
    checked, and the seal proved, before this returns (so before any write)."""
    header, rows = scan_backup(path)
    check_header(path, header)
    spool = ChangeSpool()
    for n, row in enumerate(rows):
        check_row(path, n, row)
        spool.add(_restore(row))
    return header, spool


def _due(
    source: NeutronDatabase,
    changes: ChangeSpool,
    whole: bool,
    not_touched: dict[tuple[str, str], tuple[str, str | None]],
    due: list[int],
) -> Iterator[tuple[list[str], list[tuple]]]:
    """The rows still holding what vifdoctor wrote, a chunk at a time, with their
    backup rows' canonical text (``whole``: read whole for it; else only their text is
    read) and what the writer needs of each; the others go to ``not_touched`` with
    what they hold, and the count of due rows to ``due``."""
    assert source.layout is not None
    table = reflect_bindings(source.conn)
    source.conn.rollback()
    encoder = RowEncoder([c.name for c in table.columns])
    count = 0
    for chunk in changes.chunks():
        keys = _keys(chunk)
        current: dict[tuple[str, str], str | None] = {}
        if whole:
            originals = _read_whole(source, table, keys, current)
        else:
            current = writer.read_current(source.conn, source.layout, keys)
        due_originals: list[tuple] = []
        written: list[str | None] = []
        rows: list[tuple] = []
        for rec, key in zip(chunk, keys, strict=True):
            fields = rec[0]
            # a row gone is not due, even where the backup stored NULL
            if key in current and current[key] == fields[3]:
                count += 1
                if whole:
                    due_originals.append(originals[key])
                    written.append(fields[4])
                    rows.append(_WRITES(fields))
            else:
                not_touched[key] = ("not touched", current.get(key))
        if rows:
            codes = [_ROLLBACK] * len(rows)
            yield encoder.encode(due_originals, written, codes), rows
    due.append(count)


#: A rollback's rows' codes.
_ROLLBACK = ("rollback",)


def _restorable(change: Change) -> tuple[str, str | None]:
    """A due row's result in a dry run: it holds what vifdoctor wrote."""
    return ("restorable", change.stored)


def rollback(
    backup_path: str, options: RollbackOptions, hooks: Hooks | None = None
) -> ChangeReport:
    """Restore a repair's backup, only on rows still holding what vifdoctor wrote."""
    hooks = hooks or Hooks()
    settings = resolve(options)
    if settings.api:
        raise VifdoctorError(
            "rollback works on the database only; an API repair's backup "
            "lists every port's attributes before the re-bind"
        )
    header, changes = _restores(backup_path)
    assert settings.neutron_url is not None
    engine = connect(settings.neutron_url, what="Neutron database")
    try:
        with NeutronDatabase(engine) as source:
            want = header.get("database", {}).get("name")
            if want and want != engine.url.database and not options.any_database:
                raise VifdoctorError(
                    f"backup {backup_path} was taken on database {want!r}, not "
                    f"{engine.url.database!r} (pass --any-database if that is intended)"
                )
            if header.get("kind") == stale.KIND:  # VD206 deleted rows: re-insert
                backup = read_backup(backup_path)
                check_restorable(backup)
                return stale.restore(backup, source, options, hooks)
            assert source.layout is not None
            not_touched: dict[tuple[str, str], tuple[str, str | None]] = {}
            due: list[int] = []
            extra = {"backup": backup_path, "applied": bool(options.apply)}
            report = ChangeReport("rollback", changes, source.describe(), [], extra)
            # With --apply the rows are read whole once: their text decides what is due,
            # and the due ones are the rollback's own backup, written as they are found.
            entries = _due(source, changes, bool(options.apply), not_touched, due)
            if not options.apply:
                for _ in entries:
                    pass
                report.results = Results(not_touched.items(), default=_restorable)
                report.restorable = due[0]
                return report
            outcome, path = _write(source, entries, options, "rollback", hooks, keep_empty=False)
            report.restorable = due[0]
            if not report.restorable:  # nothing due: nothing written, no backup
                report.results = Results(not_touched.items(), default=_restorable)
                return report
            written = outcome.results()
            report.results = Results(
                itertools.chain(not_touched.items(), written.items()), default=written.default
            )
            report.applied = True
            report.backup = path
            report.outcome = outcome_doc(outcome)
            report.longest_transaction_s = outcome.longest_transaction_s
            report.extra = {**extra, "outcome": report.outcome}
            report.exit_code = _exit_code(outcome)
            return report
    finally:
        engine.dispose()


__all__ = ["ChangeReport", "Hooks", "plan", "plan_sql", "repair", "rollback", "outcome_doc"]
