"""The writing commands as library calls: plan, repair and rollback, start to end.

Each returns a :class:`ChangeReport` that any front end renders. What only a
front end can do reaches these functions as callbacks in :class:`Hooks`: a
progress bar, and a way to stop after the running batch (Ctrl-C on the CLI).
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

import sqlalchemy as sa

from vifdoctor.audit import judge_all
from vifdoctor.collector import no_cyclic_gc
from vifdoctor.errors import VifdoctorError
from vifdoctor.limits import check_max_rate
from vifdoctor.model import Change
from vifdoctor.options import RepairOptions, RollbackOptions, WriteOptions
from vifdoctor.ovn_join import open_ovn
from vifdoctor.repair import apply as writer
from vifdoctor.repair import stale
from vifdoctor.repair.backup import check_restorable, default_dir, read_backup, write_backup
from vifdoctor.repair.hooks import Hooks
from vifdoctor.repair.plan import plan_changes, plan_order, repair_codes
from vifdoctor.repair.sql import render_sql
from vifdoctor.results import ChangeReport
from vifdoctor.rules.registry import repair_vif_types
from vifdoctor.session import NeutronSession, neutron_session
from vifdoctor.settings import resolve
from vifdoctor.sources.database import column_bytes, column_text, connect, is_binary, redact
from vifdoctor.sources.neutron_db import NeutronDatabase
from vifdoctor.sources.neutron_schema import BINDING_COLUMNS, only_live, reflect_bindings


def _plan(
    s: NeutronSession, codes: frozenset[str], options: RepairOptions | None = None
) -> tuple[list[Change], list[dict]]:
    """The changes that fit the column, and one note per row whose new value would not."""
    # A source may narrow the read to the rows a repairable rule can flag.
    ovn_join = None
    if options is not None:  # OVN's bindings are judged (and rewritten) as OVN's
        ovn_join, notes = open_ovn(
            options.ovn_nb_connection,
            options.ovn_sb_connection,
            options.neutron_config_file,
            s.source,
            s.agents,
            s.settings.context,
            s.settings.agent_down_time,
        )
        s.settings.assumptions.extend(notes)
    rows = s.source.repair_candidates(s.selectors, repair_vif_types(codes))
    judged = judge_all(rows, s.agents, s.settings.context, ovn_join, shapes=True)
    # The plan only grows (no reference cycles): cyclic GC passes over its heap cost a
    # fifth of the planning time at 100,000 changes (issue 14), for nothing to free.
    with no_cyclic_gc():
        changes = list(plan_changes(judged, codes, s.settings.context))
    if s.engine is None or not isinstance(s.source, NeutronDatabase):
        return changes, []
    # The candidates come unordered (the server's sort of every candidate before its first
    # row cost more than sorting the changes here): the plan keeps its device_id order.
    changes.sort(key=plan_order)
    table = reflect_bindings(s.source.conn)
    s.source.conn.rollback()
    return split_too_long(changes, getattr(table.c.vif_details.type, "length", None))


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


def _unmoving(changes: list[Change], options: RepairOptions) -> tuple[list[Change], dict]:
    """With Nova given, leave out the ports of instances with a move in progress."""
    cells = stale.open_cells(options)
    if cells is None:
        return changes, {}
    try:
        kept, skipped = stale.skip_moving(changes, cells)
    finally:
        cells.close()
    return kept, {"skipped_moving": skipped}


def split_too_long(changes: list[Change], limit: int | None) -> tuple[list[Change], list[dict]]:
    """Rows whose new value exceeds the column (VARCHAR(4095)) are not planned but named.

    Re-serializing as Neutron does (``json.dumps``) can lengthen a compact value; one
    such row used to fail its whole batch with an error naming no port.
    """
    if not limit:
        return changes, []
    fit, too_long = [], []
    for c in changes:
        if len(c.new or "") > limit:
            too_long.append(
                {
                    "port_id": c.port_id,
                    "host": c.host,
                    "codes": list(c.codes),
                    "new_length": len(c.new or ""),
                    "column_length": limit,
                }
            )
        else:
            fit.append(c)
    return fit, too_long


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


def _originals(
    source: NeutronDatabase,
    changes: list[Change],
    current: dict[tuple[str, str], str | None] | None = None,
) -> dict[tuple[str, str], dict]:
    """Every column of every row about to change, for the backup.

    When the table has only the columns the plan already read, the rows come from the
    plan; a table with other columns (a vendor's), or a rollback's rows, are read again,
    whole. So is one where a column the plan reads as text (NULL as '' or 'normal') may
    hold NULL: the backup keeps NULL as null, never as the text it was judged as.
    ``current``: filled with each row's vif_details as text on the way (what
    :func:`writer.read_current` returns), so a rollback reads its rows once.
    """
    conn = source.conn
    table = reflect_bindings(conn)
    conn.rollback()
    columns = [c.name for c in table.columns]
    binary = {c.name for c in table.columns if is_binary(c)}
    as_read = not any(table.c[n].nullable for n in _NULL_AS_TEXT if n in table.c)
    if (
        current is None
        and as_read
        and set(columns) <= set(BINDING_COLUMNS)
        and all(c.binding is not None for c in changes)
    ):
        fields = [(col, BINDING_COLUMNS[col], col in binary) for col in columns]
        planned: dict[tuple[str, str], dict] = {}
        for c in changes:
            values: dict[str, Any] = {}
            for col, attr, blob in fields:
                value = getattr(c.binding, attr)
                # text of a text column, and NULL, are kept as they are (the common case)
                plain = value is None or (not blob and type(value) is str)
                values[col] = value if plain else backup_value(value, blob)
            planned[(c.port_id, c.host)] = values
        return planned
    found: dict[tuple[str, str], dict] = {}
    keys = [(c.port_id, c.host) for c in changes]
    assert source.layout is not None
    for start in range(0, len(keys), 2000):
        query = only_live(
            sa.select(table).where(
                sa.tuple_(table.c.port_id, table.c.host).in_(keys[start : start + 2000])
            ),
            table,
            source.layout,
        )
        for row in conn.execute(query).mappings():
            key = (row["port_id"], row["host"])
            found[key] = {k: backup_value(v, k in binary) for k, v in row.items()}
            if current is not None:
                current[key] = column_text(row["vif_details"])
    conn.rollback()
    return found


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


def _write(
    source: NeutronDatabase,
    changes: list[Change],
    options: WriteOptions,
    backup_rows: list[dict],
    what: str,
    hooks: Hooks,
) -> tuple[writer.Outcome, str]:
    """Backup first (refuse if it cannot be written), then the guarded batches."""
    write_options = _write_options(options)  # bad settings refused before anything is written
    writer.require_writable(source.engine)
    folder = options.backup_dir or default_dir()
    path = write_backup(
        folder, _backup_header(source, what), backup_rows, name=f"{what}-{_stamp()}.json"
    )
    bar = hooks.progress(len(changes))
    assert source.layout is not None
    try:
        with hooks.writing() as should_stop:
            outcome = writer.apply_changes(
                source.engine,
                source.layout,
                changes,
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
            f"{what} failed, nothing was written: {outcome.errors[0]} (backup kept: {path})"
        )
    return outcome, path


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
        planned, too_long = _plan(s, codes, options)
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
        originals = _originals(s.source, changes)
        # Its keys are some of the changes' keys: as many as the changes means all of them
        # (the common case: no pass over 100,000 keys to keep every one).
        if len(originals) != len(changes):  # rows gone since the plan are not written
            changes = [c for c in changes if (c.port_id, c.host) in originals]
        rows = [
            {"original": originals[(c.port_id, c.host)], "written": c.new, "codes": list(c.codes)}
            for c in changes
        ]
        outcome, path = _write(s.source, changes, options, rows, "repair", hooks)
        report.changes = changes
        report.applied = True
        report.backup = path
        report.outcome = outcome_doc(outcome)
        report.longest_transaction_s = outcome.longest_transaction_s
        report.extra = {**extra, "backup": path, "outcome": report.outcome}
        report.results = outcome.results()
        report.done = (
            list(changes)
            if outcome.all_changed()
            else [c for c in changes if outcome.status[(c.port_id, c.host)] == writer.CHANGED]
        )
        report.exit_code = max(_exit_code(outcome), report.exit_code)
        return report


def _restore(row: dict) -> Change:
    """The write that undoes one backed-up row: guarded on what vifdoctor wrote."""
    original = row["original"]
    return Change(
        port_id=original["port_id"],
        host=original["host"],
        status=original.get("status"),
        stored=row["written"],
        new=restored_value(original.get("vif_details")),  # a NULL is restored as NULL
        codes=("rollback",),
        device_owner="",
        device_id="",
        vif_type=original.get("vif_type", ""),
        plug_before="",
        plug_after="",
    )


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
    backup = read_backup(backup_path)
    check_restorable(backup)
    assert settings.neutron_url is not None
    engine = connect(settings.neutron_url, what="Neutron database")
    try:
        with NeutronDatabase(engine) as source:
            want = backup.header.get("database", {}).get("name")
            if want and want != engine.url.database and not options.any_database:
                raise VifdoctorError(
                    f"backup {backup_path} was taken on database {want!r}, not "
                    f"{engine.url.database!r} (pass --any-database if that is intended)"
                )
            if backup.header.get("kind") == stale.KIND:  # VD206 deleted rows: re-insert
                return stale.restore(backup, source, options, hooks)
            changes = [_restore(row) for row in backup.rows]
            assert source.layout is not None
            # With --apply the rows are read whole once: their text decides what is due,
            # and the due ones are the rollback's own backup.
            current: dict[tuple[str, str], str | None] = {}
            whole = _originals(source, changes, current) if options.apply else {}
            if not options.apply:
                keys = [(c.port_id, c.host) for c in changes]
                current = writer.read_current(source.conn, source.layout, keys)
            # a row gone is not due, even where the backup stored NULL
            due = [
                c
                for c in changes
                if (c.port_id, c.host) in current and current[(c.port_id, c.host)] == c.stored
            ]
            due_keys = {(c.port_id, c.host) for c in due}  # a set: `c in due` was quadratic
            results = {
                (c.port_id, c.host): (
                    "restorable" if (c.port_id, c.host) in due_keys else "not touched",
                    current.get((c.port_id, c.host)),
                )
                for c in changes
            }
            extra = {"backup": backup_path, "applied": bool(options.apply)}
            report = ChangeReport(
                "rollback", changes, source.describe(), [], extra, results, restorable=len(due)
            )
            if not options.apply or not due:
                return report
            originals = {(c.port_id, c.host): whole[(c.port_id, c.host)] for c in due}
            rows = [
                {
                    "original": originals[(c.port_id, c.host)],
                    "written": c.new,
                    "codes": ["rollback"],
                }
                for c in due
                if (c.port_id, c.host) in originals
            ]
            outcome, path = _write(source, due, options, rows, "rollback", hooks)
            for key, state in outcome.status.items():
                results[key] = (state, outcome.current.get(key))
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
