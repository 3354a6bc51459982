"""VD206's repair: delete the INACTIVE bindings failed moves left, never a moving port's.

Like the details repair: the same selectors, a plan, ``--sql``, a backup of every
column of every deleted row (the binding and its ``ml2_port_binding_levels`` rows)
before any write, one transaction per batch, and a rollback that re-inserts the rows
byte for byte. On top of that:

* each DELETE is guarded on the row still being INACTIVE with the text the plan read,
  and on its port still having an ACTIVE binding (a port is never left without one);
* levels go only where their binding row is gone (same transaction);
* Nova is read again right before each batch: a port whose instance started a move
  since the plan is skipped, and reported as skipped for that reason.

Without Nova it refuses, unless ``--without-nova``: it then deletes every INACTIVE row
of a port that has an ACTIVE one, as neutron-remove-duplicated-port-bindings does,
and says so; the backup and guards still apply.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from vifdoctor.audit import audit_cloud
from vifdoctor.errors import VifdoctorError
from vifdoctor.model import Change, Instance
from vifdoctor.options import AuditOptions, RepairOptions, RollbackOptions
from vifdoctor.repair import apply as writer
from vifdoctor.repair.backup import Backup, default_dir, write_backup
from vifdoctor.repair.hooks import Hooks
from vifdoctor.repair.sql import comment_text, literal_dialect, preamble, sql_literal
from vifdoctor.results import ChangeReport
from vifdoctor.rules.migration import describe, moves_in_progress, moving, visible_row
from vifdoctor.session import selectors_of
from vifdoctor.settings import resolve_cells
from vifdoctor.sources.database import db_error, redact
from vifdoctor.sources.neutron_db import BINDINGS, LEVELS, NeutronDatabase
from vifdoctor.sources.nova_db import NovaCells

CODE = "VD206"
KIND = "delete-inactive"  # the backup's kind: rollback re-inserts
DELETED, RESTORED = "deleted", "restored"
WITHOUT_NOVA = (
    "--without-nova: Nova was not read. Every INACTIVE row of a port that also "
    "has an ACTIVE one is deleted, as neutron-remove-duplicated-port-bindings "
    "does: a live migration under way loses its destination binding and fails. "
    "Backed up and guarded all the same."
)
NEEDS_NOVA = (
    "repairing VD206 reads Nova's migration records so that no moving port loses "
    "its binding: pass --nova-db URL (per cell), --nova-api-db URL or "
    "--nova-config-file FILE; or --without-nova to delete every INACTIVE row of "
    "a port that has an ACTIVE one, as neutron-remove-duplicated-port-bindings does"
)


def moving_reason(instance: Instance | None) -> str | None:
    """Why a port of this instance must not be touched now, or None."""
    if instance is None or instance.deleted:
        return None
    moves = moves_in_progress(instance)
    if moves:
        return f"migration in progress: {describe(moves[-1])}"
    if moving(instance):
        return f"migration in progress: task_state {instance.task_state}"
    return None


def moving_instances(cells: Any, device_ids: Iterable[str]) -> dict[str, str]:
    """device_id -> why its ports are left alone, read from Nova now."""
    wanted = sorted({d for d in device_ids if d})
    if cells is None or not wanted:
        return {}
    rows: dict[str, list[Instance]] = {}
    for start in range(0, len(wanted), 500):
        for inst in cells.lookup(wanted[start : start + 500]):
            rows.setdefault(inst.uuid, []).append(inst)
    out = {}
    for uuid, found in rows.items():
        reason = moving_reason(visible_row(found))
        if reason:
            out[uuid] = reason
    return out


def open_cells(options: RepairOptions) -> NovaCells | None:
    """The Nova cells the repair's --nova-db/--nova-api-db/--nova-config-file name."""
    cells = resolve_cells(
        AuditOptions(
            nova_db=options.nova_db,
            nova_api_db=options.nova_api_db,
            nova_config_file=options.nova_config_file,
        )
    )
    return NovaCells(cells) if cells else None


def skip_moving(changes: list[Change], cells: Any) -> tuple[list[Change], list[dict]]:
    """Any repair: drop the rows of VM ports whose instance is moving; say why."""
    reasons = moving_instances(
        cells, (c.device_id for c in changes if c.device_owner.startswith("compute:"))
    )
    kept, skipped = [], []
    for c in changes:
        reason = moving_reason_of(c, reasons)
        if reason:
            skipped.append(
                {"port_id": c.port_id, "host": c.host, "device_id": c.device_id, "reason": reason}
            )
        else:
            kept.append(c)
    return kept, skipped


def moving_reason_of(change: Change, reasons: dict[str, str]) -> str | None:
    """Why a row is left alone (its VM is moving), from :func:`moving_instances`."""
    return reasons.get(change.device_id) if change.device_owner.startswith("compute:") else None


# ------------------------------------------------------------------------------- plan


@dataclass
class StalePlan:
    changes: list[Change]
    assumptions: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def _audit_options(options: RepairOptions) -> AuditOptions:
    names = {f.name for f in dataclasses.fields(AuditOptions)}
    given = {
        f.name: getattr(options, f.name) for f in dataclasses.fields(options) if f.name in names
    }
    return AuditOptions(**{**given, "code": (CODE,), "host_reports": None})


def _change(
    port_id: str, host: str, stored: str, device_owner: str, device_id: str, vif_type: str
) -> Change:
    return Change(
        port_id=port_id,
        host=host,
        status="INACTIVE",
        stored=stored,
        new="",
        codes=(CODE,),
        device_owner=device_owner,
        device_id=device_id,
        vif_type=vif_type,
        plug_before="",
        plug_after="",
        action="delete",
    )


def plan_stale(options: RepairOptions, source: Any, cells: Any) -> StalePlan:
    """The rows to delete: VD206 findings that may be deleted (Nova read), or with
    --without-nova every INACTIVE row whose port has an ACTIVE one."""
    assert source.layout is not None
    if not source.layout.has_status:
        return StalePlan(
            [], [f"layout {source.layout.name}: one binding per port, no INACTIVE rows to delete"]
        )
    if cells is None:
        if not options.without_nova:
            raise VifdoctorError(NEEDS_NOVA)
        rows = [b for b in _inactive_rows(source, options) if b.has_active_row]
        return StalePlan(
            [
                _change(
                    b.port_id,
                    b.host,
                    _stored(source, b.vif_details),
                    b.device_owner,
                    b.device_id,
                    b.vif_type,
                )
                for b in rows
            ],
            [WITHOUT_NOVA],
        )
    report = audit_cloud(_audit_options(options))
    changes, kept_back = [], []
    for f in report.findings:
        if f["code"] != CODE:
            continue
        if not (f.get("extra") or {}).get("deletable"):
            kept_back.append(
                {
                    "port_id": f["port_id"],
                    "host": f["host"],
                    "device_id": f["device_id"],
                    "reason": "the port has no ACTIVE binding: re-bind it",
                }
            )
            continue
        changes.append(
            _change(
                f["port_id"],
                f["host"],
                _canonical(f["stored_details"]),
                f["device_owner"],
                f["device_id"],
                f["vif_type"],
            )
        )
    if not isinstance(source, NeutronDatabase):  # API: guarded on the details as shown
        return StalePlan(changes, [], kept_back)
    # the stored text the DELETE is guarded on comes from the rows themselves
    current = _read_rows(source.conn, [(c.port_id, c.host) for c in changes])
    planned = []
    for c in changes:
        row = current.get((c.port_id, c.host))
        if row is not None:
            # NULL stays None: the DELETE is guarded IS NULL, as the repair's UPDATE is
            planned.append(dataclasses.replace(c, stored=row[0]["vif_details"]))
    return StalePlan(planned, [], kept_back)


def _inactive_rows(source: Any, options: RepairOptions) -> Iterable:
    selectors = selectors_of(options)
    if isinstance(source, NeutronDatabase):
        return source.inactive_bindings(selectors)
    return (b for b in source.bindings(selectors) if b.status not in (None, "ACTIVE"))


def _canonical(details: Any) -> str:
    """Details as the API shows them, in one spelling: what an API delete is guarded on."""
    if isinstance(details, str):
        try:
            details = json.loads(details) if details else {}
        except ValueError:
            return details
    return json.dumps(details, sort_keys=True)


def _stored(source: Any, text: str) -> str:
    return text if isinstance(source, NeutronDatabase) else _canonical(text)


def _tables(conn: Connection) -> tuple[sa.Table, sa.Table | None]:
    md = sa.MetaData()
    names = set(sa.inspect(conn).get_table_names())
    md.reflect(bind=conn, only=[BINDINGS] + ([LEVELS] if LEVELS in names else []))
    return md.tables[BINDINGS], md.tables.get(LEVELS)


def _read_rows(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[dict, list[dict]]]:
    """Every column of the INACTIVE rows at these keys, and of their binding levels."""
    bindings, levels = _tables(conn)
    out: dict[tuple[str, str], tuple[dict, list[dict]]] = {}
    for start in range(0, len(keys), 500):
        part = list(keys[start : start + 500])
        query = sa.select(bindings).where(
            sa.tuple_(bindings.c.port_id, bindings.c.host).in_(part), bindings.c.status != "ACTIVE"
        )
        for row in conn.execute(query).mappings():
            out[(row["port_id"], row["host"])] = (dict(row), [])
        if levels is not None and part:
            query = (
                sa.select(levels)
                .where(sa.tuple_(levels.c.port_id, levels.c.host).in_(part))
                .order_by(levels.c.level)
            )
            for row in conn.execute(query).mappings():
                key = (row["port_id"], row["host"])
                if key in out:
                    out[key][1].append(dict(row))
    conn.rollback()
    return out


# ---------------------------------------------------------------------------- statements


def _keys(table: sa.Table, keys, literal=None) -> sa.ColumnElement:
    """The rows at ``keys``; with ``literal`` (the --sql script) one key spelled inline."""
    if literal is None:
        return sa.tuple_(table.c.port_id, table.c.host).in_(keys)
    ((port_id, host),) = keys
    return sa.and_(table.c.port_id == literal(port_id), table.c.host == literal(host))


def _delete_bindings(bindings: sa.Table, dialect: str, keys, stored, literal=None) -> sa.Delete:
    """DELETE the INACTIVE rows at ``keys`` still holding ``stored``, of ports that keep
    an ACTIVE row (a derived table: MySQL refuses a DELETE reading its own table)."""
    active = (
        sa.select(bindings.c.port_id).where(bindings.c.status == "ACTIVE").subquery("active_ports")
    )
    return sa.delete(bindings).where(
        _keys(bindings, keys, literal),
        bindings.c.status == "INACTIVE",
        writer.stored_guard(bindings.c.vif_details, stored, dialect),
        bindings.c.port_id.in_(sa.select(active.c.port_id)),
    )


def _delete_levels(levels: sa.Table, bindings: sa.Table, keys, literal=None) -> sa.Delete:
    """DELETE the levels at ``keys`` whose binding row is gone (never a live one's)."""
    still = sa.select(sa.literal(1)).where(
        bindings.c.port_id == levels.c.port_id, bindings.c.host == levels.c.host
    )
    return sa.delete(levels).where(_keys(levels, keys, literal), ~sa.exists(still))


def render_sql(
    changes: Sequence[Change], conn: Connection, dialect, batch_size: int | None
) -> Iterable[str]:
    """The guarded DELETEs for a DBA, batch by batch; Nova is to be checked first."""
    bindings, levels = _tables(conn)
    conn.rollback()
    dialect = literal_dialect(dialect)
    begin = "BEGIN;" if dialect.name in ("postgresql", "sqlite") else "START TRANSACTION;"
    # A comment naming a count and table names only: S608 checked.
    yield (
        f"-- vifdoctor VD206 plan: {len(changes)} stale INACTIVE binding(s) to delete "  # noqa: S608
        f"from {bindings.name}, with their {LEVELS} rows; each DELETE removes 1 row, or 0 "
        "if the row changed since the plan, is no longer INACTIVE, or its port lost its "
        "ACTIVE binding"
    )
    yield (
        "-- Before each batch, check that no instance named below started a move: "
        "openstack server migration list --server UUID (nothing in progress)"
    )

    yield from preamble(dialect.name)

    def literal(value: str) -> sa.ColumnElement:
        return sa.literal_column(sql_literal(value, dialect.name), sa.String())

    def text(stmt) -> str:
        # Literals hold no line break (spelled as functions, as in repair/sql.py): only
        # the compiler's own layout is joined, every byte of the data is kept.
        compiled = stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        return str(compiled).replace("\n", " ") + ";"

    for batch in writer.batches(changes, batch_size):
        yield begin
        for c in batch:
            key = [(c.port_id, c.host)]
            yield (
                f"-- {comment_text(c.port_id)} on {comment_text(c.host)} (instance "
                f"{comment_text(c.device_id) if c.device_id else 'none'}): VD206"
            )
            stored = None if c.stored is None else literal(c.stored)
            yield text(_delete_bindings(bindings, dialect.name, key, stored, literal))
            if levels is not None:
                yield text(_delete_levels(levels, bindings, key, literal))
        yield "COMMIT;"


# ------------------------------------------------------------------------------ writing


@dataclass
class Recheck:
    """Nova, asked again right before each batch."""

    cells: Any

    def __call__(self, batch: Sequence[Change]) -> dict[str, str]:
        return moving_instances(
            self.cells, (c.device_id for c in batch if c.device_owner.startswith("compute:"))
        )


def delete_rows(
    engine: Engine,
    changes: Sequence[Change],
    opts: writer.WriteOptions,
    recheck: Callable[[Sequence[Change]], dict[str, str]],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] = lambda n: None,
    sleep: Callable[[float], None] = time.sleep,
) -> writer.Outcome:
    """Delete batch by batch, each in one transaction, Nova re-checked before it; then
    re-read every planned key to report what really happened."""
    outcome = writer.Outcome(status={(c.port_id, c.host): writer.PENDING for c in changes})
    dialect = engine.dialect.name
    started = time.monotonic()
    done = 0
    with engine.connect() as conn:
        bindings, levels = _tables(conn)
        conn.rollback()
        for batch in writer.batches(list(changes), opts.batch_size):
            if should_stop():
                outcome.interrupted = True
                break
            moving_now = recheck(batch)
            due = []
            for c in batch:
                reason = moving_now.get(c.device_id) if c.device_id else None
                if reason:
                    outcome.status[(c.port_id, c.host)] = writer.SKIPPED
                    outcome.current[(c.port_id, c.host)] = reason
                else:
                    due.append(c)
            if due and not _delete_batch(
                conn, bindings, levels, dialect, due, opts, outcome, sleep
            ):
                for c in due:
                    outcome.status[(c.port_id, c.host)] = writer.FAILED
                break
            for c in due:
                outcome.status[(c.port_id, c.host)] = "written"
            outcome.batches += 1
            done += len(batch)
            progress(len(batch))
            if opts.max_rate:
                ahead = done / opts.max_rate - (time.monotonic() - started)
                if ahead > 0:
                    sleep(ahead)
        left = _read_rows(conn, [k for k, s in outcome.status.items() if s == "written"])
        for key, state in list(outcome.status.items()):
            if state != "written":
                continue
            if key in left:
                row = left[key][0]
                outcome.status[key] = writer.SKIPPED
                outcome.current[key] = f"{row.get('status')}: {row.get('vif_details')}"
            else:
                outcome.status[key] = DELETED
    return outcome


def _delete_batch(
    conn: Connection,
    bindings: sa.Table,
    levels: sa.Table | None,
    dialect: str,
    batch: Sequence[Change],
    opts: writer.WriteOptions,
    outcome: writer.Outcome,
    sleep: Callable[[float], None],
) -> bool:
    groups: dict[str | None, list[tuple[str, str]]] = {}
    for c in batch:
        groups.setdefault(c.stored, []).append((c.port_id, c.host))
    keys = [(c.port_id, c.host) for c in batch]
    for attempt in range(opts.retries + 1):
        gc.disable()
        began = time.monotonic()
        try:
            with conn.begin():
                for stored, part in groups.items():
                    guard = None if stored is None else sa.literal(stored, sa.String())
                    conn.execute(_delete_bindings(bindings, dialect, part, guard))
                if levels is not None:
                    conn.execute(_delete_levels(levels, bindings, keys))
            outcome.longest_transaction_s = max(
                outcome.longest_transaction_s, time.monotonic() - began
            )
            return True
        except DBAPIError as exc:
            if writer.is_retryable(exc) and attempt < opts.retries:
                outcome.retries += 1
                jitter = random.random() / 2  # noqa: S311 - backoff jitter, not a secret
                sleep(opts.backoff_s * (2**attempt) * (1 + jitter))
                continue
            outcome.errors.append(db_error(exc))
            return False
        finally:
            gc.enable()
    return False  # pragma: no cover - the loop always returns


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _header(source: NeutronDatabase) -> dict:
    return {
        "kind": KIND,
        "database": {
            "url": redact(source.engine.url),
            "name": source.engine.url.database,
            "dialect": source.engine.dialect.name,
        },
        "schema": source.describe(),
        "table": BINDINGS,
        "levels_table": LEVELS,
    }


def apply_plan(
    source: NeutronDatabase, plan: StalePlan, options: RepairOptions, cells: Any, hooks: Hooks
) -> tuple[writer.Outcome, str, list]:
    """Backup (every column of every row to delete), then the guarded batches."""
    writer.require_writable(source.engine)
    rows = _read_rows(source.conn, [(c.port_id, c.host) for c in plan.changes])
    due = [c for c in plan.changes if (c.port_id, c.host) in rows]
    backup_rows = [
        {
            "original": _plain(rows[(c.port_id, c.host)][0]),
            "written": "",
            "levels": [_plain(x) for x in rows[(c.port_id, c.host)][1]],
            "codes": [CODE],
            "device_id": c.device_id,
            "device_owner": c.device_owner,
        }
        for c in due
    ]
    path = write_backup(
        options.backup_dir or default_dir(),
        _header(source),
        backup_rows,
        name=f"repair-vd206-{_stamp()}.json",
    )
    bar = hooks.progress(len(due))
    opts = writer.WriteOptions(
        batch_size=options.batch_size,
        max_rate=options.max_rate,
        retries=options.retries,
        lock_wait_timeout=options.lock_wait_timeout,
    )
    try:
        with hooks.writing() as should_stop:
            outcome = delete_rows(
                source.engine,
                due,
                opts,
                Recheck(cells),
                should_stop=should_stop,
                progress=bar.update if bar is not None else (lambda n: None),
            )
    finally:
        if bar is not None:
            bar.close()
    return outcome, path, due


def _plain(row: dict) -> dict:
    """JSON-safe, byte for byte for text (the binding tables hold text and integers)."""
    out = {}
    for k, v in row.items():
        if isinstance(v, bytes):
            raise VifdoctorError(f"column {k} holds bytes: not backed up faithfully")
        out[k] = v.isoformat() if hasattr(v, "isoformat") else v
    return out


# ----------------------------------------------------------------------------- rollback


def restore(
    backup: Backup, source: NeutronDatabase, options: RollbackOptions, hooks: Hooks
) -> ChangeReport:
    """Re-insert the deleted rows and their levels, where no row took their place since."""
    conn = source.conn
    bindings, levels = _tables(conn)
    ports = sa.Table("ports", sa.MetaData(), autoload_with=conn)
    conn.rollback()
    changes = [
        Change(
            port_id=r["original"]["port_id"],
            host=r["original"]["host"],
            status=r["original"].get("status"),
            stored="",
            new=r["original"].get("vif_details") or "",
            codes=("rollback",),
            device_owner=r.get("device_owner", ""),
            device_id=r.get("device_id", ""),
            vif_type=r["original"].get("vif_type", ""),
            plug_before="",
            plug_after="",
            action="restore",
        )
        for r in backup.rows
    ]

    def state_of(row: dict) -> str:
        o = row["original"]
        taken = conn.execute(
            sa.select(sa.func.count())
            .select_from(bindings)
            .where(bindings.c.port_id == o["port_id"], bindings.c.host == o["host"])
        ).scalar()
        port = conn.execute(
            sa.select(sa.func.count()).select_from(ports).where(ports.c.id == o["port_id"])
        ).scalar()
        return (
            "restorable"
            if not taken and port
            else (
                "not touched (a binding row is there again)"
                if taken
                else "not touched (the port is gone)"
            )
        )

    results = {}
    for c, row in zip(changes, backup.rows, strict=True):
        results[(c.port_id, c.host)] = (state_of(row), None)
    conn.rollback()
    due = [
        row
        for row in backup.rows
        if results[(row["original"]["port_id"], row["original"]["host"])][0] == "restorable"
    ]
    extra = {"backup": backup.path, "applied": bool(options.apply)}
    report = ChangeReport(
        "rollback", changes, source.describe(), [], extra, results, restorable=len(due)
    )
    if not options.apply or not due:
        return report
    writer.require_writable(source.engine)
    outcome = writer.Outcome(status={k: writer.PENDING for k in results})
    for row in due:
        o = row["original"]
        key = (o["port_id"], o["host"])
        try:
            with conn.begin():
                conn.execute(sa.insert(bindings), [_columns(bindings, o)])
                if levels is not None and row.get("levels"):
                    conn.execute(sa.insert(levels), [_columns(levels, x) for x in row["levels"]])
            outcome.status[key] = RESTORED
        except IntegrityError:
            outcome.status[key] = writer.SKIPPED  # a row took its place meanwhile
        except DBAPIError as exc:
            outcome.status[key] = writer.FAILED
            outcome.errors.append(db_error(exc))
            break
        results[key] = (outcome.status[key], None)
    report.applied = True
    report.outcome = {
        RESTORED: outcome.count(RESTORED),
        writer.SKIPPED: outcome.count(writer.SKIPPED),
        writer.FAILED: outcome.count(writer.FAILED),
        "errors": outcome.errors,
    }
    report.extra = {**extra, "outcome": report.outcome}
    report.exit_code = 2 if outcome.count(writer.FAILED) else 0
    return report


def _columns(table: sa.Table, row: dict) -> dict:
    return {k: v for k, v in row.items() if k in table.c}


__all__ = [
    "plan_stale",
    "apply_plan",
    "render_sql",
    "restore",
    "skip_moving",
    "moving_reason_of",
    "open_cells",
    "KIND",
    "CODE",
]


# ------------------------------------------------------------------- the three commands


def _session(options: RepairOptions):
    from vifdoctor.session import neutron_session

    return neutron_session(options)


def _database(s) -> NeutronDatabase:
    if s.engine is None or not isinstance(s.source, NeutronDatabase):
        raise VifdoctorError(
            "--sql is for the database path; in API mode `vifdoctor repair "
            "--os-cloud NAME --code VD206` deletes through Neutron's API"
        )
    return s.source


def nova_for(options: RepairOptions, source: Any) -> Any:
    """Nova's databases when given, else (API mode) Nova's API of the same cloud."""
    cells = open_cells(options)
    if cells is None and not isinstance(source, NeutronDatabase) and not options.no_nova_api:
        from vifdoctor.sources.nova_api import open_from_neutron_api

        return open_from_neutron_api(source)[0]
    return cells


def _report(
    kind: str, plan: StalePlan, source: NeutronDatabase, assumptions: list[str], applied: bool
) -> ChangeReport:
    extra = {"codes": [CODE], "applied": applied, "skipped_moving": plan.skipped}
    return ChangeReport(
        kind, plan.changes, source.describe(), assumptions + plan.assumptions, extra
    )


def plan_report(options: RepairOptions) -> ChangeReport:
    with _session(options) as s:
        cells = nova_for(options, s.source)
        try:
            plan = plan_stale(options, s.source, cells)
            return _report("plan", plan, s.source, s.settings.assumptions, False)
        finally:
            if cells is not None:
                cells.close()


def sql_lines(options: RepairOptions) -> list[str]:
    cells = open_cells(options)
    try:
        with _session(options) as s:
            source = _database(s)
            plan = plan_stale(options, source, cells)
            return [f"-- {a}" for a in plan.assumptions] + list(
                render_sql(plan.changes, source.conn, source.engine.dialect, options.batch_size)
            )
    finally:
        if cells is not None:
            cells.close()


def repair_report(options: RepairOptions, hooks: Hooks) -> ChangeReport:
    """Plan, then (with ``apply``) back up and delete, Nova re-checked per batch."""
    with _session(options) as s:
        cells = nova_for(options, s.source)
        try:
            plan = plan_stale(options, s.source, cells)
            report = _report("repair", plan, s.source, s.settings.assumptions, bool(options.apply))
            if not options.apply or not plan.changes:
                return report
            if isinstance(s.source, NeutronDatabase):
                outcome, path, due = apply_plan(s.source, plan, options, cells, hooks)
            else:
                outcome, path, due = delete_via_api(s.source, plan, options, cells, hooks)
            return _applied(report, plan, outcome, path, due, cells is not None)
        finally:
            if cells is not None:
                cells.close()


def _applied(
    report: ChangeReport,
    plan: StalePlan,
    outcome: writer.Outcome,
    path: str,
    due: list[Change],
    rechecked: bool,
) -> ChangeReport:
    """The report of a delete that ran: per-row results, counts, the backup."""
    for key, state in outcome.status.items():
        why = str(outcome.current.get(key, ""))
        if state == writer.SKIPPED and why.startswith("migration in progress"):
            c = next(c for c in due if (c.port_id, c.host) == key)
            plan.skipped.append(
                {"port_id": c.port_id, "host": c.host, "device_id": c.device_id, "reason": why}
            )
    report.changes = due
    report.applied = True
    report.backup = path
    report.outcome = {
        DELETED: outcome.count(DELETED),
        writer.SKIPPED: outcome.count(writer.SKIPPED),
        writer.FAILED: outcome.count(writer.FAILED),
        writer.PENDING: outcome.count(writer.PENDING),
        "batches": outcome.batches,
        "retries": outcome.retries,
        "nova_rechecks": outcome.batches if rechecked else 0,
        "longest_transaction_ms": round(outcome.longest_transaction_s * 1000, 1),
        "interrupted": outcome.interrupted,
        "errors": outcome.errors,
    }
    report.longest_transaction_s = outcome.longest_transaction_s
    report.extra = {**report.extra, "backup": path, "outcome": report.outcome}
    report.results = {k: (v, outcome.current.get(k)) for k, v in outcome.status.items()}
    report.exit_code = 130 if outcome.interrupted else (2 if outcome.count(writer.FAILED) else 0)
    if outcome.errors and not outcome.count(DELETED):
        raise VifdoctorError(
            f"repair failed, nothing was deleted: {outcome.errors[0]} (backup kept: {path})"
        )
    return report


# ---------------------------------------------------------------------------- API mode


def _api_binding(api: Any, port_id: str, host: str) -> tuple[dict | None, list[dict]]:
    """The port's binding on ``host`` as the API shows it, and all its bindings."""
    rows = api._port_bindings_or_none(port_id) or []
    return next((r for r in rows if r.get("host") == host), None), rows


def delete_via_api(
    api: Any, plan: StalePlan, options: RepairOptions, cells: Any, hooks: Hooks
) -> tuple[writer.Outcome, str, list[Change]]:
    """``DELETE /v2.0/ports/{id}/bindings/{host}``, one port at a time, each after the same
    checks as a database batch: Nova read again, the binding still INACTIVE with the
    details planned, and the port keeping an ACTIVE binding."""
    due = list(plan.changes)
    backup_rows = []
    for c in due:
        _, rows = _api_binding(api, c.port_id, c.host)
        backup_rows.append(
            {
                "original": {"port_id": c.port_id, "host": c.host, "bindings": rows},
                "written": "",
                "codes": [CODE],
                "device_id": c.device_id,
            }
        )
    path = write_backup(
        options.backup_dir or default_dir(),
        {"kind": "api-" + KIND, "api": api.describe(), "table": f"{BINDINGS} (through the API)"},
        backup_rows,
        name=f"api-repair-vd206-{_stamp()}.json",
    )
    outcome = writer.Outcome(status={(c.port_id, c.host): writer.PENDING for c in due})
    recheck = Recheck(cells)
    bar = hooks.progress(len(due))
    try:
        with hooks.writing() as should_stop:
            for c in due:
                key = (c.port_id, c.host)
                if should_stop():
                    outcome.interrupted = True
                    break
                outcome.batches += 1
                reason = recheck([c]).get(c.device_id)
                row, rows = _api_binding(api, c.port_id, c.host)
                if reason is None and (
                    row is None
                    or row.get("status") == "ACTIVE"
                    or _canonical(row.get("vif_details")) != c.stored
                    or not any(r.get("status") == "ACTIVE" for r in rows)
                ):
                    reason = "changed since the plan (no longer the INACTIVE row planned)"
                if reason:
                    outcome.status[key] = writer.SKIPPED
                    outcome.current[key] = reason
                else:
                    outcome.status[key], note = _api_delete(api, c)
                    if note:
                        outcome.errors.append(note)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return outcome, path, due


def _api_delete(api: Any, c: Change) -> tuple[str, str]:
    try:
        response = api.connection.network.delete(
            f"/ports/{c.port_id}/bindings/{c.host}", raise_exc=False
        )
    except Exception as exc:
        return writer.FAILED, f"{c.port_id}@{c.host}: {exc}"
    if response.status_code in (200, 204):
        return DELETED, ""
    if response.status_code == 404:
        return writer.SKIPPED, ""
    hint = (
        " (Neutron's policy wants the service role for the bindings API)"
        if response.status_code == 403
        else ""
    )
    return writer.FAILED, f"{c.port_id}@{c.host}: HTTP {response.status_code}{hint}"
