"""Rules about moves (live/cold migrations, evacuations, resizes): VD206, VD207, VD208.

Pure functions over Nova's migration records (``Instance.migrations``) and
Neutron's bindings. A move is *in progress* unless its status is terminal;
the terminal statuses are nova 34.0.0's own, from
``nova/db/main/api.py::migration_get_in_progress_by_host_and_node`` (docs/rules.md
says why that reading and not the two others Nova has).
"""

from __future__ import annotations

import datetime
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from vifdoctor.model import Binding, Finding, Instance, Migration, Severity, parse_json_column
from vifdoctor.rules.finding import declared_finding, new_finding, shown_details
from vifdoctor.rules.plug import VIF_UNBOUND
from vifdoctor.rules.registry import MIGRATION, Scope, declare

#: nova/db/main/api.py::migration_get_in_progress_by_host_and_node, nova 34.0.0.
TERMINAL_STATUSES = frozenset(
    {"confirmed", "reverted", "error", "failed", "completed", "cancelled", "done"}
)
#: A resize or cold migration on the destination, waiting for confirm or revert.
AWAITING_CONFIRMATION = "finished"
#: Terminal statuses after which the instance lives on the destination.
MOVED_STATUSES = frozenset({"completed", "done", "confirmed"})
#: nova.compute.task_states during which a binding legitimately sits on another host;
#: a belt to the migration records' braces (rebuild and unshelve make no record).
MOVING_TASK_STATES = frozenset(
    {
        "resize_prep",
        "resize_migrating",
        "resize_migrated",
        "resize_finish",
        "resize_reverting",
        "resize_confirming",
        "migrating",
        "rebuilding",
        "rebuild_block_device_mapping",
        "rebuild_spawning",
        "unshelving",
        "shelving_offloading",
        "spawning",
        "scheduling",
    }
)
DEFAULT_STUCK_AFTER = 6 * 3600.0
_VM = ("compute:",)

declare(
    "VD206",
    Severity.WARNING,
    "binding left by a failed move",
    summary="an INACTIVE binding no move in progress needs: left by a failed or aborted move "
    "(bound, on the destination) or a finished one whose cleanup failed (`unbound`, "
    "on the source); names the migration; `repair --code VD206` deletes it",
    why=(
        "An INACTIVE binding row of a VM port whose instance has no migration in progress "
        "(Nova's migration records, judged with nova's own terminal statuses): a live "
        "migration that failed or was aborted left a bound row on the destination, or a "
        "finished move whose cleanup failed left an `unbound` row with empty details on the "
        "source."
    ),
    impact=(
        "The port cannot be live-migrated to that host again (Neutron refuses a second "
        "binding for the same host), and tools that read the first binding row may read "
        "this one."
    ),
    remedy=(
        "Delete the row and its binding levels (`vifdoctor repair --code VD206 --apply`: "
        "backed up, guarded on the row still being INACTIVE, Nova re-checked before each "
        "batch), or `DELETE /v2.0/ports/PORT/bindings/HOST`."
    ),
    applies_to=Scope(MIGRATION, device_owners=_VM),
    deletes_row=True,
)
declare(
    "VD207",
    Severity.FAILURE,
    "move finished half-way",
    summary="the last move completed, but `instances.host` still names its source, or the "
    "port's ACTIVE binding is still on the source while the instance moved; never "
    "written: the finding gives the check and the statement",
    why=(
        "The instance's last migration has completed (completed, done or confirmed), but "
        "instances.host still names its source_compute; or the instance is on the "
        "destination while its port's ACTIVE binding is still on the source."
    ),
    impact=(
        "Nova acts on the wrong host: reboots, further moves and deletes go to a host "
        "where the VM is not, or the VM on the destination has no network on this port."
    ),
    remedy=(
        "Nova owns instances.host: vifdoctor never writes it. Check where the domain runs "
        "first (`virsh domstate UUID` on both hosts), then review and run the scoped "
        "statement the finding gives (its extra.statement), and afterwards `nova-manage "
        "placement audit --verbose`; for a binding left on the source, `openstack port "
        "set --host DEST PORT`."
    ),
    applies_to=Scope(MIGRATION, device_owners=_VM),
)
declare(
    "VD208",
    Severity.WARNING,
    "move stuck",
    summary="a live/cold migration, evacuation or resize not finished after `--stuck-after` "
    "(6 h); a resize awaiting confirmation is not stuck",
    why=(
        "A live migration, cold migration, evacuation or resize has not reached a terminal "
        "status within --stuck-after (default 6 h) of its creation. A resize or cold "
        "migration in `finished` is awaiting confirmation, not stuck."
    ),
    impact=(
        "The instance's ports stay bound for two hosts (an INACTIVE row or migrating_to), "
        "the instance cannot be moved again, and the move's resources stay claimed on "
        "both hosts."
    ),
    remedy=(
        "Look at the migration (`openstack server migration list --server UUID`, "
        "nova-compute logs on both hosts); abort a live migration (`openstack server "
        "migration abort`) or reset the instance once nothing runs it. vifdoctor never "
        "removes a moving port's binding."
    ),
    applies_to=Scope(MIGRATION, device_owners=_VM),
)
_SAFE_LITERAL = re.compile(r"[A-Za-z0-9 ._:@+=/,()-]*")


def in_progress(m: Migration) -> bool:
    """Not in a terminal status. A NULL status (Nova's SQL drops it by three-valued
    logic) is taken as in progress here: unknown must never unlock a delete."""
    return m.status is None or m.status not in TERMINAL_STATUSES


def merge_cell_copies(visible: Instance, rows: Sequence[Instance]) -> list[Migration] | None:
    """One record per move when a cross-cell resize copied the instance's migrations
    into a second cell: the copy in the visible instance's cell wins, else the latest."""
    known = [r.migrations for r in rows if r.migrations is not None]
    if not known:
        return None
    chosen: dict[str, Migration] = {}
    for moves in known:
        for m in moves:
            had = chosen.get(m.key)
            if had is None or _rank(m, visible) > _rank(had, visible):
                chosen[m.key] = m
    return sorted(chosen.values(), key=_order)


def visible_row(rows: Sequence[Instance]) -> Instance | None:
    """Of one uuid's rows in several cells, the one Nova shows: live before soft-deleted,
    visible before hidden (a cross-cell resize), with one record per move merged in."""
    if not rows:
        return None
    match = min(rows, key=lambda r: (r.deleted, r.hidden))
    if len(rows) > 1:
        match.migrations = merge_cell_copies(match, rows)
    return match


def _rank(m: Migration, visible: Instance) -> tuple:
    return (m.cell == visible.cell, _stamp(m.updated_at), m.id)


def _stamp(value: Any) -> datetime.datetime:
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            value = None
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    return datetime.datetime.min


def _order(m: Migration) -> tuple:
    return (_stamp(m.created_at), m.id)


def moves_in_progress(instance: Instance | None) -> list[Migration]:
    if instance is None or not instance.migrations:
        return []
    return [m for m in instance.migrations if in_progress(m)]


def moving(instance: Instance) -> bool:
    """A move under way: a migration record in progress, else Nova's task_state."""
    return bool(moves_in_progress(instance)) or ((instance.task_state or "") in MOVING_TASK_STATES)


def host_mismatch_explained(instance: Instance, host: str) -> bool:
    """Whether a port bound to ``host`` while the instance is elsewhere is accounted for:
    a move in progress that touches ``host`` (or, without one, a moving task_state or a
    resize awaiting confirmation), or a finished move that VD207 reports instead."""
    moves = moves_in_progress(instance)
    if any(host in (m.source_compute, m.dest_compute) for m in moves):
        return True
    if not moves and (
        (instance.task_state or "") in MOVING_TASK_STATES or instance.vm_state == "resized"
    ):
        return True
    last = last_migration(instance)
    if last is not None and last.status in MOVED_STATUSES:
        ends = {last.source_compute, last.dest_compute}
        return {host, instance.host} == ends and host != instance.host
    return False


def last_migration(instance: Instance | None) -> Migration | None:
    if instance is None or not instance.migrations:
        return None
    return max(instance.migrations, key=_order)


def describe(m: Migration) -> str:
    """``migration 42 (live-migration, error, cmp1 -> cmp2, 2026-11-30 01:00:00)``"""
    when = _stamp(m.updated_at or m.created_at)
    stamp = when.isoformat(sep=" ") if when != datetime.datetime.min else "time unknown"
    return (
        f"migration {m.id} ({m.migration_type}, {m.status or 'no status'}, "
        f"{m.source_compute or '?'} -> {m.dest_compute or '?'}, {stamp})"
    )


def migrating_to(b: Binding) -> str | None:
    """``binding:profile`` ``migrating_to``: Nova's hint that a live migration targets a
    host. A completed migration whose cleanup failed leaves it behind: a hint only."""
    value = parse_json_column(b.profile).as_dict().get("migrating_to")
    return str(value) if value else None


def inactive_shape(b: Binding) -> str:
    """The two field shapes of a stale INACTIVE binding."""
    if (
        b.vif_type == VIF_UNBOUND
        and not parse_json_column(b.vif_details).as_dict()
        and not b.driver
    ):
        return "unbound row on the source (cleanup of a finished move failed)"
    return "bound row (a failed or aborted move's destination)"


def instance_finding(code: str, instance: Instance, message: str, **fields: Any) -> Finding:
    """A finding about an instance rather than one binding row."""
    return declared_finding(
        code,
        message,
        device_id=instance.uuid,
        host=instance.host,
        instance=instance.as_dict(),
        **fields,
    )


def left_by(instance: Instance | None, host: str) -> Migration | None:
    """The latest finished move of the instance that touched ``host``."""
    if instance is None or not instance.migrations:
        return None
    touched = [
        m
        for m in instance.migrations
        if not in_progress(m) and host in (m.dest_compute, m.source_compute)
    ]
    return max(touched, key=_order) if touched else None


def judge_inactive(b: Binding, instance: Instance | None) -> Finding | None:
    """VD206 for one INACTIVE row of a VM port, judged with Nova's migration records.

    None when a move of the instance is under way (the row is its binding), when the
    instance is in no cell read (its cell may be moving it), or when the cells have no
    migration records: the caller then keeps VD109.
    """
    if instance is None or instance.migrations is None:
        return None
    if not instance.deleted and moving(instance):
        return None
    m = left_by(instance, b.host)
    shape = inactive_shape(b)
    hint = migrating_to(b)
    state = "soft-deleted" if instance.deleted else "not moving"
    text = (
        f"INACTIVE binding on {b.host} of port {b.port_id}; instance {instance.uuid} is "
        f"{state} (no migration in progress); {shape}"
    )
    text += f"; left by {describe(m)}" if m else "; no migration record names this host"
    if hint:
        text += f"; profile still says migrating_to {hint} (a hint only)"
    if not b.has_active_row:
        text += "; the port has no ACTIVE binding: re-bind it, vifdoctor does not delete it"
    return new_finding(
        "VD206",
        b,
        text,
        instance=instance.as_dict(),
        stored_details=shown_details(parse_json_column(b.vif_details)),
        extra={
            "shape": shape,
            "migration": m.as_dict() if m else None,
            "migrating_to": hint,
            "deletable": b.has_active_row,
        },
    )


def with_moves(b: Binding, findings: list[Finding], instance: Instance) -> list[Finding]:
    """An INACTIVE row's findings once its instance's moves are known: VD109 becomes
    VD206, or goes when a move is under way. Without migration records VD109 stays."""
    if b.status in (None, "ACTIVE") or instance.migrations is None:
        return findings
    kept = [f for f in findings if f.code != "VD109"]
    stale = judge_inactive(b, instance)
    return kept + [stale] if stale is not None else kept


def judge_moves(
    instance: Instance,
    rows: Iterable[Binding],
    now: datetime.datetime | None,
    stuck_after: float = DEFAULT_STUCK_AFTER,
) -> list[Finding]:
    """VD207 and VD208 for one live instance and its VM ports' binding rows."""
    if instance.deleted or instance.migrations is None:
        return []
    rows = list(rows)
    ports = [b for b in rows if b.status in (None, "ACTIVE")]
    out: list[Finding] = []
    last = last_migration(instance)
    if last is not None and last.status in MOVED_STATUSES and last.dest_compute:
        out.extend(_vd207(instance, last, ports))
    for m in moves_in_progress(instance):
        if m.status == AWAITING_CONFIRMATION or now is None:
            continue
        started = _stamp(m.created_at)
        if started == datetime.datetime.min:
            continue
        age = (now - started).total_seconds()
        if age > stuck_after:
            held: dict[str, list[str]] = {}
            for b in sorted(rows, key=lambda r: r.status != "ACTIVE"):
                held.setdefault(b.port_id, []).append(
                    b.host + ("" if b.status in (None, "ACTIVE") else f" ({b.status})")
                )
            out.append(
                instance_finding(
                    "VD208",
                    instance,
                    f"{describe(m)} of {instance.uuid} started {_hours(age)} ago and is not "
                    f"finished (--stuck-after {_hours(stuck_after)}); its ports are bound to "
                    + (
                        "; ".join(f"{p} on {' and '.join(h)}" for p, h in sorted(held.items()))
                        or "nothing"
                    ),
                    extra={"migration": m.as_dict(), "age_seconds": int(age), "ports": held},
                )
            )
    return out


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _vd207(instance: Instance, m: Migration, ports: list[Binding]) -> list[Finding]:
    """A finished move Nova or Neutron did not follow through."""
    out: list[Finding] = []
    dest, source = m.dest_compute, m.source_compute
    if instance.host and instance.host != dest and instance.host == source:
        check = f"virsh domstate {instance.uuid}  # on {source} and on {dest}, as root"
        out.append(
            instance_finding(
                "VD207",
                instance,
                f"{describe(m)} is {m.status}, but instances.host of {instance.uuid} still "
                f"names {instance.host}, not {dest}",
                extra={
                    "migration": m.as_dict(),
                    "shape": "instances.host",
                    "check_first": check,
                    "statement": host_statement(instance, m),
                    "nova_manage": "nova-manage placement audit --verbose  # afterwards: "
                    "allocations left on the wrong compute node",
                },
            )
        )
    elif instance.host == dest:
        for b in ports:
            if b.host == source and source != dest:
                out.append(
                    new_finding(
                        "VD207",
                        b,
                        f"{describe(m)} is {m.status} and instance {instance.uuid} is on {dest}, "
                        f"but the ACTIVE binding of port {b.port_id} is still on {source}",
                        instance=instance.as_dict(),
                        extra={
                            "migration": m.as_dict(),
                            "shape": "active binding on the source",
                            "check_first": f"openstack port show {b.port_id} -c binding:host_id"
                            f" -c binding:profile",
                            "statement": f"openstack port set --host {_shell(dest)} "
                            f"{_shell(b.port_id)}",
                            "nova_manage": None,
                        },
                    )
                )
    return out


def sql_literal(value: str) -> str | None:
    """A string literal every SQL dialect reads the same (no backslash, no control
    characters, quotes doubled); None when the value holds anything else."""
    if not _SAFE_LITERAL.fullmatch(value):
        return None
    return "'" + value.replace("'", "''") + "'"


def _shell(value: str) -> str:
    return shlex.quote(value)


def host_statement(instance: Instance, m: Migration) -> str | None:
    """The scoped UPDATE an operator may run in the instance's cell database, once the
    check shows the domain runs on the destination. None when a value cannot be quoted."""
    values = [
        sql_literal(v)
        for v in (m.dest_compute, m.dest_node or m.dest_compute, instance.uuid, m.source_compute)
    ]
    if any(v is None for v in values):
        return None
    dest, node, uuid, source = values
    # Every value passed sql_literal (quotes doubled, nothing else allowed): S608 checked.
    return (
        f"UPDATE instances SET host = {dest}, node = {node} WHERE uuid = {uuid} "  # noqa: S608
        f"AND host = {source} AND deleted = 0;"
    )
