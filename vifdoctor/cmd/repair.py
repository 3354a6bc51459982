"""``vifdoctor plan``, ``repair`` and ``rollback``: the writing side, thin over vifdoctor.repair."""

from __future__ import annotations

import argparse
import datetime
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import sqlalchemy as sa

from vifdoctor.audit import judge_all
from vifdoctor.cmd.common import NeutronSession, neutron_session, resolve_args
from vifdoctor.errors import VifdoctorError
from vifdoctor.repair import apply as writer
from vifdoctor.repair.backup import default_dir, read_backup, write_backup
from vifdoctor.repair.plan import Change, plan_changes, repair_codes
from vifdoctor.repair.sql import render_sql
from vifdoctor.report import renderer
from vifdoctor.report.changes import next_steps, plan_listing
from vifdoctor.sources.database import connect, redact
from vifdoctor.sources.neutron_db import NeutronDatabase


def _plan(s: NeutronSession, codes: frozenset[str]) -> list[Change]:
    # A database source can narrow the read to the rows a repairable rule can flag.
    read = getattr(s.source, "repair_candidates", s.source.bindings)
    judged = judge_all(read(s.selectors), s.agents, s.settings.context)
    return list(plan_changes(judged, codes, s.settings.context))


def _show(listing, args: argparse.Namespace, out: IO[str], footer: list[str]) -> None:
    listing = listing.select(args.column)
    listing.footer = footer
    renderer(args.format)(listing, out)


def run_plan(args: argparse.Namespace, out: IO[str]) -> int:
    codes = repair_codes(args.code)
    with neutron_session(args) as s:
        changes = _plan(s, codes)
        if args.sql and s.engine is None:
            raise VifdoctorError("--sql is for the database path; in API mode "
                                 "`vifdoctor repair --os-cloud NAME` re-binds through Neutron")
        if args.sql:
            table = writer.bindings_table(s.source.conn)
            for line in render_sql(changes, table, s.source.layout, s.engine.dialect,
                                   args.batch_size):
                out.write(line + "\n")
            return 0
        listing = plan_listing(changes, s.source.describe(), s.settings.assumptions,
                               {"codes": sorted(codes)})
    footer = [f"{len(changes)} binding row(s) to change ({', '.join(sorted(codes))}). "
              "Nothing was written: `vifdoctor repair --apply` writes them, with a backup."]
    _show(listing, args, out, footer + next_steps(changes))
    return 0


@contextmanager
def _finish_batch_on_ctrl_c() -> Iterator[list[bool]]:
    """Ctrl-C sets a flag: the running batch commits, then the repair stops cleanly."""
    flag = [False]

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True
        print("\nvifdoctor: stopping after the current batch (Ctrl-C again to abort it)",
              file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_options(args: argparse.Namespace) -> writer.WriteOptions:
    return writer.WriteOptions(batch_size=args.batch_size, max_rate=args.max_rate,
                               retries=args.retries, lock_wait_timeout=args.lock_wait_timeout)


# ml2_port_bindings' columns in every layout vifdoctor knows, as the plan read them.
_KNOWN_COLUMNS = {
    "port_id": "port_id", "host": "host", "vif_type": "vif_type",
    "vif_details": "vif_details", "vnic_type": "vnic_type", "profile": "profile",
    "status": "status", "driver": "driver", "segment": "segment",
}


def _originals(conn: sa.Connection, changes: list[Change]) -> dict[tuple[str, str], dict]:
    """Every column of every row about to change, for the backup.

    When the table has only the columns the plan already read, the rows come from the
    plan; a table with other columns (a vendor's) is read again, whole.
    """
    table = writer.bindings_table(conn)
    conn.rollback()
    columns = [c.name for c in table.columns]
    if set(columns) <= set(_KNOWN_COLUMNS) and all(c.binding is not None for c in changes):
        return {(c.port_id, c.host): {col: getattr(c.binding, _KNOWN_COLUMNS[col])
                                      for col in columns} for c in changes}
    found: dict[tuple[str, str], dict] = {}
    keys = [(c.port_id, c.host) for c in changes]
    for start in range(0, len(keys), 2000):
        query = sa.select(table).where(
            sa.tuple_(table.c.port_id, table.c.host).in_(keys[start:start + 2000]))
        if "status" in table.c:
            query = query.where(table.c.status == "ACTIVE")
        for row in conn.execute(query).mappings():
            found[(row["port_id"], row["host"])] = {k: _jsonable(v) for k, v in row.items()}
    conn.rollback()
    return found


def _jsonable(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _backup_header(source: NeutronDatabase, what: str) -> dict:
    return {"kind": what, "database": {"url": redact(source.engine.url),
                                       "name": source.engine.url.database,
                                       "dialect": source.engine.dialect.name},
            "schema": source.describe(), "table": "ml2_port_bindings"}


def _progress(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="row", file=sys.stderr, disable=None, leave=False)


def _write(source: NeutronDatabase, changes: list[Change], args: argparse.Namespace,
           backup_rows: list[dict], what: str) -> tuple[writer.Outcome, str]:
    """Backup first (refuse if it cannot be written), then the guarded batches."""
    writer.require_writable(source.engine)
    folder = args.backup_dir or default_dir()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = write_backup(folder, _backup_header(source, what), backup_rows,
                        name=f"{what}-{stamp}.json")
    bar = _progress(len(changes))
    try:
        with _finish_batch_on_ctrl_c() as stop:
            outcome = writer.apply_changes(
                source.engine, source.layout, changes, _write_options(args),
                should_stop=lambda: stop[0],
                progress=(bar.update if bar is not None else (lambda n: None)),
            )
    finally:
        if bar is not None:
            bar.close()
    if outcome.errors and outcome.count(writer.CHANGED) == 0:
        raise VifdoctorError(f"{what} failed, nothing was written: {outcome.errors[0]} "
                             f"(backup kept: {path})")
    return outcome, path


def _outcome_footer(outcome: writer.Outcome, path: str, what: str) -> list[str]:
    lines = [
        f"{what}: {outcome.count(writer.CHANGED)} changed, "
        f"{outcome.count(writer.SKIPPED)} skipped (changed underneath, left as found), "
        f"{outcome.count(writer.FAILED)} failed, {outcome.count(writer.PENDING)} not attempted; "
        f"{outcome.batches} batch(es), {outcome.retries} retried, longest transaction "
        f"{outcome.longest_transaction_s * 1000:.0f} ms",
        f"Backup: {path}  (restore: vifdoctor rollback {path} --apply)",
    ]
    lines += [f"error: {e}" for e in outcome.errors[:5]]
    if outcome.interrupted:
        lines.append("Interrupted: every finished batch is committed; run the same command "
                     "again to finish (it re-plans from the database).")
    return lines


def _exit_code(outcome: writer.Outcome) -> int:
    if outcome.interrupted:
        return 130
    return 2 if outcome.count(writer.FAILED) else 0


def run_repair(args: argparse.Namespace, out: IO[str]) -> int:
    from vifdoctor.cmd.common import api_cloud

    if api_cloud(args)[0]:  # API mode: Neutron re-binds the ports itself
        from vifdoctor.repair.api_rebind import run_api_repair

        return run_api_repair(args, out)
    codes = repair_codes(args.code)
    with neutron_session(args) as s:
        changes = _plan(s, codes)
        extra = {"codes": sorted(codes), "applied": bool(args.apply)}
        if not args.apply or not changes:
            listing = plan_listing(changes, s.source.describe(), s.settings.assumptions, extra)
            note = ("Dry run: nothing was written. Add --apply to write, with a backup."
                    if changes else "Nothing to repair.")
            _show(listing, args, out, [f"{len(changes)} binding row(s) to change.", note]
                  + next_steps(changes))
            return 0
        originals = _originals(s.source.conn, changes)
        rows = [{"original": originals[(c.port_id, c.host)], "written": c.new,
                 "codes": list(c.codes)} for c in changes if (c.port_id, c.host) in originals]
        changes = [c for c in changes if (c.port_id, c.host) in originals]
        outcome, path = _write(s.source, changes, args, rows, "repair")
        results = {k: (v, outcome.current.get(k)) for k, v in outcome.status.items()}
        done = [c for c in changes if outcome.status[(c.port_id, c.host)] == writer.CHANGED]
        listing = plan_listing(changes, s.source.describe(), s.settings.assumptions,
                               {**extra, "backup": path, "outcome": _outcome_doc(outcome)},
                               results)
    _show(listing, args, out, _outcome_footer(outcome, path, "repair") + next_steps(done))
    return _exit_code(outcome)


def _outcome_doc(outcome: writer.Outcome) -> dict:
    return {state: outcome.count(state) for state in
            (writer.CHANGED, writer.SKIPPED, writer.FAILED, writer.PENDING)} | {
        "batches": outcome.batches, "retries": outcome.retries,
        "longest_transaction_ms": round(outcome.longest_transaction_s * 1000, 1),
        "interrupted": outcome.interrupted, "errors": outcome.errors}


def run_rollback(args: argparse.Namespace, out: IO[str]) -> int:
    from vifdoctor.cmd.common import api_cloud

    if api_cloud(args)[0]:
        raise VifdoctorError("rollback works on the database only; an API repair's backup "
                             "lists every port's attributes before the re-bind")
    backup = read_backup(args.backup)
    settings = resolve_args(args)
    engine = connect(settings.neutron_url, what="Neutron database")
    try:
        with NeutronDatabase(engine) as source:
            want = backup.header.get("database", {}).get("name")
            if want and want != engine.url.database and not args.any_database:
                raise VifdoctorError(
                    f"backup {args.backup} was taken on database {want!r}, not "
                    f"{engine.url.database!r} (pass --any-database if that is intended)")
            changes = [_restore(row) for row in backup.rows]
            current = writer.read_current(source.conn, [(c.port_id, c.host) for c in changes])
            due = [c for c in changes if current.get((c.port_id, c.host)) == c.stored]
            due_keys = {(c.port_id, c.host) for c in due}  # a set: `c in due` was quadratic
            results = {(c.port_id, c.host): ("restorable" if (c.port_id, c.host) in due_keys
                                             else "not touched",
                                             current.get((c.port_id, c.host))) for c in changes}
            extra = {"backup": args.backup, "applied": bool(args.apply)}
            if not args.apply or not due:
                listing = plan_listing(changes, source.describe(), [], extra, results)
                _show(listing, args, out, [
                    f"{len(due)} of {len(changes)} row(s) still hold the value vifdoctor wrote "
                    "and can be restored; the others changed since and are not touched.",
                    "Dry run: nothing was written. Add --apply to restore." if not args.apply
                    else "Nothing to restore."])
                return 0
            originals = _originals(source.conn, due)
            rows = [{"original": originals[(c.port_id, c.host)], "written": c.new,
                     "codes": ["rollback"]} for c in due if (c.port_id, c.host) in originals]
            outcome, path = _write(source, due, args, rows, "rollback")
            for key, state in outcome.status.items():
                results[key] = (state, outcome.current.get(key))
            listing = plan_listing(changes, source.describe(), [],
                                   {**extra, "outcome": _outcome_doc(outcome)}, results)
    finally:
        engine.dispose()
    _show(listing, args, out, _outcome_footer(outcome, path, "rollback"))
    return _exit_code(outcome)


def _restore(row: dict) -> Change:
    """The write that undoes one backed-up row: guarded on what vifdoctor wrote."""
    original = row["original"]
    return Change(
        port_id=original["port_id"], host=original["host"], status=original.get("status"),
        stored=row["written"], new=original.get("vif_details") or "", codes=("rollback",),
        device_owner="", device_id="", vif_type=original.get("vif_type", ""),
        plug_before="", plug_after="",
    )
