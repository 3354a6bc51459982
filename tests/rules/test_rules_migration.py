"""VD206/VD207/VD208 and VD202's use of migration records: pure rules, every status.

Statuses are the ones nova 34.0.0 writes (compute/manager.py, conductor/): the
rules must read each the way docs/rules.md says.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from testkit.novakit import HYBRID, cache, instance, judged, vif

from vifdoctor.model import Binding, Migration
from vifdoctor.rules.binding import judge_binding
from vifdoctor.rules.migration import (
    TERMINAL_STATUSES,
    in_progress,
    judge_inactive,
    judge_moves,
    merge_cell_copies,
    sql_literal,
    with_moves,
)
from vifdoctor.rules.nova import judge_instance, remediation
from vifdoctor.rules.plug import RuleContext

NOW = datetime(2026, 11, 30, 12, 0, 0)
UUID = "11111111-0000-4000-8000-000000000000"
PORT = "00000000-0000-4000-8000-000000000001"
SRC, DST = "compute1", "compute2"
TYPES = ["live-migration", "migration", "evacuation", "resize"]
#: nova 34.0.0's statuses and how the rules must read them
IN_PROGRESS = [
    "queued",
    "preparing",
    "accepted",
    "pre-migrating",
    "running",
    "migrating",
    "post-migrating",
    "finished",
    "confirming",
    "reverting",
]
TERMINAL = ["completed", "done", "error", "failed", "cancelled", "reverted", "confirmed"]


def move(
    status: str | None,
    mtype: str = "live-migration",
    *,
    mid: int = 7,
    src: str = SRC,
    dst: str = DST,
    age: timedelta = timedelta(minutes=5),
    cell: str = "cell1",
    uuid: str = "",
    updated: timedelta | None = None,
) -> Migration:
    created = NOW - age
    return Migration(
        id=mid,
        instance_uuid=UUID,
        cell=cell,
        uuid=uuid,
        migration_type=mtype,
        status=status,
        source_compute=src,
        dest_compute=dst,
        source_node=src,
        dest_node=dst,
        created_at=created,
        updated_at=NOW - updated if updated is not None else created,
    )


def inactive(
    host: str = DST,
    *,
    vif_type: str = "ovs",
    details: str = "{}",
    driver: str | None = "openvswitch",
    profile: str = "",
    has_active: bool = True,
) -> Binding:
    return Binding(
        port_id=PORT,
        host=host,
        vif_type=vif_type,
        vif_details=details,
        status="INACTIVE",
        driver=driver,
        device_owner="compute:nova",
        device_id=UUID,
        profile=profile,
        has_active_row=has_active,
    )


def active(host: str = SRC) -> Binding:
    return Binding(
        port_id=PORT,
        host=host,
        vif_type="ovs",
        vif_details='{"port_filter": true, "ovs_hybrid_plug": true}',
        status="ACTIVE",
        driver="openvswitch",
        device_owner="compute:nova",
        device_id=UUID,
    )


def vm(*moves: Migration, host: str = SRC, **kw) -> object:
    return instance(UUID, host=host, migrations=list(moves), **kw)


def test_terminal_statuses_are_novas() -> None:
    # nova/db/main/api.py::migration_get_in_progress_by_host_and_node, nova 34.0.0
    assert set(TERMINAL) == TERMINAL_STATUSES
    assert all(in_progress(move(s)) for s in IN_PROGRESS)
    assert not any(in_progress(move(s)) for s in TERMINAL)
    assert in_progress(move(None))  # unknown never unlocks a delete


@pytest.mark.parametrize("mtype", TYPES)
@pytest.mark.parametrize(
    "status",
    ["running", "finished", "completed", "error", "failed", "cancelled", "reverted", "confirmed"],
)
def test_vd206_only_without_a_move_in_progress(mtype: str, status: str) -> None:
    inst = vm(move(status, mtype, mid=42))
    found = judge_inactive(inactive(DST), inst)
    if status in ("running", "finished"):
        assert found is None  # the row is the move's own binding
        return
    assert found is not None and found.code == "VD206"
    assert f"migration 42 ({mtype}, {status}, {SRC} -> {DST}, " in found.message
    assert found.extra["migration"]["id"] == 42
    assert found.extra["deletable"] is True


def test_vd206_shapes() -> None:
    inst = vm(move("completed"), host=DST)
    bound = judge_inactive(inactive(DST), inst)
    unbound = judge_inactive(inactive(SRC, vif_type="unbound", details="", driver=None), inst)
    assert bound.extra["shape"].startswith("bound row")
    assert unbound.extra["shape"].startswith("unbound row on the source")
    assert unbound.extra["migration"]["id"] == 7  # it touched the source host too


def test_vd206_without_any_record_and_for_a_deleted_instance() -> None:
    f = judge_inactive(inactive(DST), vm())
    assert f.code == "VD206" and "no migration record names this host" in f.message
    gone = judge_inactive(inactive(DST), vm(move("running"), deleted=True))
    assert gone is not None and "soft-deleted" in gone.message


def test_a_moving_task_state_protects_without_a_record() -> None:
    assert judge_inactive(inactive(DST), vm(move("error"), task_state="migrating")) is None


def test_migrating_to_is_a_hint_not_proof() -> None:
    row = inactive(DST, profile='{"migrating_to": "compute2"}')
    f = judge_inactive(row, vm(move("completed")))
    assert f is not None and "migrating_to compute2 (a hint only)" in f.message


def test_only_inactive_row_is_reported_but_not_deletable() -> None:
    f = judge_inactive(inactive(DST, has_active=False), vm(move("failed")))
    assert f.extra["deletable"] is False and "re-bind it" in f.message


def test_vd109_stays_without_migration_records() -> None:
    row = inactive(DST)
    base = judge_binding(row, [], RuleContext()).findings
    assert [f.code for f in base] == ["VD109"]
    assert [f.code for f in with_moves(row, base, instance(UUID, host=SRC))] == ["VD109"]
    assert [f.code for f in with_moves(row, base, vm(move("failed")))] == ["VD206"]
    assert with_moves(row, base, vm(move("running"))) == []


def test_vd207_host_not_moved() -> None:
    found = judge_moves(vm(move("completed", mid=9), host=SRC), [active(DST)], NOW)
    assert [f.code for f in found] == ["VD207"]
    f = found[0]
    assert f.extra["statement"] == (
        f"UPDATE instances SET host = '{DST}', node = '{DST}' WHERE uuid = '{UUID}' "
        f"AND host = '{SRC}' AND deleted = 0;"
    )
    assert f.extra["check_first"].startswith(f"virsh domstate {UUID}")
    assert f.extra["nova_manage"].startswith("nova-manage placement audit")
    # VD202 does not also send the port back to the source
    codes = [
        g.code
        for g in judge_instance(
            UUID, vm(move("completed"), host=SRC), [judged(active(DST))], RuleContext()
        )[0]
    ]
    assert "VD202" not in codes


def test_vd207_binding_left_on_source() -> None:
    found = judge_moves(vm(move("done", "evacuation"), host=DST), [active(SRC)], NOW)
    assert [(f.code, f.port_id) for f in found] == [("VD207", PORT)]
    assert found[0].extra["statement"] == f"openstack port set --host {DST} {PORT}"


@pytest.mark.parametrize("status", ["reverted", "error", "failed", "cancelled", "running"])
def test_no_vd207_unless_the_move_completed(status: str) -> None:
    assert [
        f.code
        for f in judge_moves(vm(move(status), host=SRC), [active(SRC)], NOW)
        if f.code == "VD207"
    ] == []


def test_vd207_is_not_guessed_after_an_unshelve_elsewhere() -> None:
    """Unshelve makes no migration record: a host that is neither end is not VD207."""
    assert judge_moves(vm(move("completed"), host="compute9"), [active("compute9")], NOW) == []


@pytest.mark.parametrize("mtype", TYPES)
def test_vd208_stuck(mtype: str) -> None:
    stuck = move(
        "running" if mtype == "live-migration" else "migrating", mtype, age=timedelta(hours=7)
    )
    found = judge_moves(vm(stuck), [active(SRC), inactive(DST)], NOW)
    assert [f.code for f in found] == ["VD208"]
    assert found[0].extra["age_seconds"] == 7 * 3600
    assert f"{PORT} on {SRC} and {DST} (INACTIVE)" in found[0].message
    assert found[0].extra["ports"] == {PORT: [SRC, f"{DST} (INACTIVE)"]}
    # within the limit, or with a larger --stuck-after: not stuck
    assert judge_moves(vm(stuck), [active(SRC)], NOW, stuck_after=8 * 3600) == []


@pytest.mark.parametrize("mtype", ["resize", "migration"])
def test_finished_awaiting_confirmation_is_not_stuck(mtype: str) -> None:
    waiting = move("finished", mtype, age=timedelta(days=3))
    assert judge_moves(vm(waiting, host=DST), [active(DST)], NOW) == []
    # ...and its source binding is not stale: a revert needs it
    assert judge_inactive(inactive(SRC), vm(waiting, host=DST)) is None


def test_vd202_uses_migration_records() -> None:
    ctx = RuleContext()
    info = cache(vif(PORT, HYBRID))
    running = vm(move("running"), network_info=info)
    assert judge_instance(UUID, running, [judged(active(DST))], ctx)[0] == []
    # bound to a third host while moving between two others: still wrong
    third = [f.code for f in judge_instance(UUID, running, [judged(active("compute7"))], ctx)[0]]
    assert third == ["VD202"]
    # the move failed: the port on the destination is VD202 now, whatever task_state says
    failed = vm(move("failed"), network_info=info)
    f = judge_instance(UUID, failed, [judged(active(DST))], ctx)[0]
    assert [x.code for x in f] == ["VD202"]
    assert "no move in progress, the last was migration 7 (live-migration, failed" in f[0].message


def test_cross_cell_copies_merge_by_uuid() -> None:
    u = "aaaaaaaa-0000-4000-8000-000000000000"
    visible = vm(host=DST, cell="cell2")
    hidden = vm(host=SRC, cell="cell1", hidden=True)
    visible.migrations = [move("confirmed", "resize", cell="cell2", uuid=u, mid=3)]
    hidden.migrations = [
        move("finished", "resize", cell="cell1", uuid=u, mid=8, updated=timedelta(seconds=1)),
        move("error", mid=2, cell="cell1", age=timedelta(days=9)),
    ]
    merged = merge_cell_copies(visible, [hidden, visible])
    assert [(m.cell, m.id, m.status) for m in merged] == [
        ("cell1", 2, "error"),
        ("cell2", 3, "confirmed"),
    ]


def test_sql_literal_refuses_what_dialects_read_differently() -> None:
    assert sql_literal("compute-1.example.org") == "'compute-1.example.org'"
    assert sql_literal("a\\b") is None and sql_literal("a'b") is None
    assert sql_literal("a\nb") is None


def test_remediation_steps_for_moves() -> None:
    inst = vm(move("completed"), host=SRC, network_info=cache(vif(PORT, HYBRID)))
    found, view = judge_instance(UUID, inst, [judged(active(DST))], RuleContext())
    found += judge_moves(inst, [active(DST)], NOW)
    stale = judge_inactive(inactive(SRC, vif_type="unbound", details="", driver=None), inst)
    steps = [(s.order, s.action, s.command) for s in remediation(view, found + [stale])]
    assert steps[:2] == [
        (1, "delete-stale-binding", f"vifdoctor repair --code VD206 --port {PORT} --apply"),
        (2, "check-first", f"virsh domstate {UUID}  # on {SRC} and on {DST}, as root"),
    ]
    assert steps[2][1] == "operator-sql" and steps[2][2].startswith("UPDATE instances SET")
    assert steps[3][1] == "nova-manage"
