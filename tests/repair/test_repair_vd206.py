"""``repair --code VD206``: stale INACTIVE rows deleted with their levels, never a moving
port's; plan, --sql, backup and byte-exact rollback; Nova re-checked before each batch.

Real schemas: neutron 29.0.0's (MariaDB) with nova 34.0.0's cell, and an Ocata-layout
Neutron (SQLite) with the Icehouse-era Nova layout.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from testkit.cloudfactory import run_cli
from testkit.migrationkit import (
    CLEANUP,
    DST,
    FAILED,
    FINISHED,
    LATE,
    ONLY,
    RUNNING,
    SRC,
    cloud,
    dump,
    write_cell,
)
from testkit.novakit import (
    cli_json,
    one_error_line,
    port_id,
    vm_port,
    vm_uuid,
    write_neutron,
)

from vifdoctor import api
from vifdoctor.demo.nova import InstanceSpec, MigrationSpec, write_migrations
from vifdoctor.repair.hooks import Hooks


@pytest.fixture(params=["nova34", "icehouse", "postgresql"])
def clouds(request, tmp_path: Path) -> tuple[str, str]:
    """(neutron URL, nova URL) holding cloud()."""
    ports, instances, moves = cloud()
    if request.param == "nova34":
        neutron = request.getfixturevalue("neutron29_mariadb_url")
        nova = request.getfixturevalue("nova34_cell_mariadb_url")
        write_neutron(neutron, ports, [SRC, DST], layout=None)
        write_cell(nova, instances, moves, icehouse=False)
    elif request.param == "postgresql":  # neutron 29.0.0's schema on PostgreSQL
        neutron = request.getfixturevalue("neutron29_postgresql_url")
        nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
        write_neutron(neutron, ports, [SRC, DST], layout=None)
        write_cell(nova, instances, moves, icehouse=True)
    else:
        neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
        nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
        write_neutron(neutron, ports, [SRC, DST], layout="ocata")
        write_cell(nova, instances, moves, icehouse=True)
    return neutron, nova


def inactive_keys(url: str) -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in rows(url) if "INACTIVE" in r}


def rows(url: str) -> list[tuple]:
    return dump(url, "ml2_port_bindings")


def test_plan_lists_only_what_no_move_needs(clouds) -> None:
    neutron, nova = clouds
    code, doc, _ = cli_json("plan", "--neutron-db", neutron, "--nova-db", nova, "--code", "VD206")
    assert code == 0
    assert {(c["port_id"], c["action"]) for c in doc["changes"]} == {
        (port_id(n), "delete") for n in (FAILED, LATE, CLEANUP)
    }
    assert [(s["port_id"], s["reason"]) for s in doc["skipped_moving"]] == [
        (port_id(ONLY), "the port has no ACTIVE binding: re-bind it")
    ]
    # --sql: guarded DELETEs, levels only where their binding row is gone
    code, sql, err = run_cli(
        ["plan", "--neutron-db", neutron, "--nova-db", nova, "--code", "VD206", "--sql"]
    )
    assert code == 0, err
    deletes = [line for line in sql.splitlines() if line.startswith("DELETE")]
    assert len(deletes) == 6
    assert all("status = 'INACTIVE'" in d for d in deletes[0::2])
    assert all("NOT (EXISTS" in d for d in deletes[1::2])


def test_refuses_without_nova_unless_asked(clouds) -> None:
    neutron, _ = clouds
    code, _, err = run_cli(["repair", "--neutron-db", neutron, "--code", "VD206", "--apply"])
    assert code == 3 and "--without-nova" in one_error_line(err)
    code, doc, _ = cli_json("plan", "--neutron-db", neutron, "--code", "VD206", "--without-nova")
    # the peer's rule: every INACTIVE row of a port that has an ACTIVE one, in-flight too
    assert {c["port_id"] for c in doc["changes"]} == {
        port_id(n) for n in (FAILED, RUNNING, LATE, CLEANUP, FINISHED)
    }
    assert any(a.startswith("--without-nova") for a in doc["assumptions"])


def test_repair_backup_and_byte_exact_rollback(clouds, tmp_path: Path) -> None:
    neutron, nova = clouds
    before_b, before_l = rows(neutron), dump(neutron, "ml2_port_binding_levels")
    code, doc, err = cli_json(
        "repair",
        "--neutron-db",
        neutron,
        "--nova-db",
        nova,
        "--code",
        "VD206",
        "--apply",
        "--backup-dir",
        str(tmp_path),
        "--batch-size",
        "1",
    )
    assert code == 0, err
    assert doc["outcome"]["deleted"] == 3 and doc["outcome"]["nova_rechecks"] == 3
    left = inactive_keys(neutron)
    assert left == {
        (port_id(n), DST if n in (RUNNING, ONLY) else SRC) for n in (RUNNING, ONLY, FINISHED)
    }
    levels = dump(neutron, "ml2_port_binding_levels")
    assert not [
        lv for lv in levels if (lv[0], lv[1]) in {(port_id(FAILED), DST), (port_id(LATE), DST)}
    ]
    assert len(levels) == len(before_l) - 2  # the unbound CLEANUP row had none
    backup = json.loads(Path(doc["backup"]).read_text())
    assert backup["kind"] == "delete-inactive"
    got = {(r["original"]["port_id"], r["original"]["host"]): r for r in backup["rows"]}
    full = {(r[0], r[1]): r for r in before_b}
    for key, row in got.items():
        assert set(row["original"]) == {
            "port_id",
            "host",
            "profile",
            "vif_type",
            "vif_details",
            "vnic_type",
            "status",
        }
        assert tuple(row["original"][c] for c in ("port_id", "host")) == key
        assert row["original"]["vif_details"] in full[key]
    # rollback: every deleted row and level comes back byte for byte
    rolled_back = str(Path(doc["backup"]).parent / "rollback")
    code, _, err = cli_json(
        "rollback", doc["backup"], "--neutron-db", neutron, "--apply", "--backup-dir", rolled_back
    )
    assert code == 0, err
    assert rows(neutron) == before_b
    assert dump(neutron, "ml2_port_binding_levels") == before_l
    # a second rollback finds the rows there and touches nothing
    code, again, _ = cli_json("rollback", doc["backup"], "--neutron-db", neutron)
    assert {c["result"] for c in again["changes"]} == {"not touched (a binding row is there again)"}


def test_a_move_started_after_the_plan_keeps_its_binding(clouds, tmp_path: Path) -> None:
    """The write re-reads Nova right before each batch: a migration that starts between
    the plan and the batch protects its port, which is reported as skipped for it."""
    neutron, nova = clouds

    @contextlib.contextmanager
    def a_move_starts() -> object:
        engine = sa.create_engine(nova)
        try:
            write_migrations(engine, [MigrationSpec(vm_uuid(LATE), SRC, DST, "queued")])
        finally:
            engine.dispose()
        yield lambda: False

    report = api.repair(
        neutron_db=neutron,
        nova_db=[nova],
        code=["VD206"],
        apply=True,
        backup_dir=str(tmp_path),
        hooks=Hooks(writing=a_move_starts),
    )
    assert report.outcome["deleted"] == 2 and report.outcome["skipped"] == 1
    state, why = report.results[(port_id(LATE), DST)]
    assert state == "skipped" and why.startswith("migration in progress: migration 7 (")
    assert (port_id(LATE), DST) in inactive_keys(neutron)
    assert {s["port_id"] for s in report.extra["skipped_moving"]} >= {port_id(LATE)}


def test_the_guard_keeps_a_row_changed_since_the_plan(clouds, tmp_path: Path) -> None:
    neutron, nova = clouds

    @contextlib.contextmanager
    def rebound() -> object:
        engine = sa.create_engine(neutron)
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE ml2_port_bindings SET vif_details = '{}' "
                        "WHERE port_id = :p AND host = :h"
                    ),
                    {"p": port_id(FAILED), "h": DST},
                )
        finally:
            engine.dispose()
        yield lambda: False

    report = api.repair(
        neutron_db=neutron,
        nova_db=[nova],
        code=["VD206"],
        apply=True,
        backup_dir=str(tmp_path),
        hooks=Hooks(writing=rebound),
    )
    assert report.results[(port_id(FAILED), DST)][0] == "skipped"
    assert (port_id(FAILED), DST) in inactive_keys(neutron)
    assert report.outcome["deleted"] == 2


def test_details_repair_skips_ports_of_moving_instances(tmp_path: Path) -> None:
    """VD101 on a port whose instance is live-migrating: with Nova it is left alone and
    reported; without Nova the old behaviour stays."""
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    ports = [vm_port(port_id(n), vm_uuid(n), SRC, details="{}") for n in (1, 2)]
    write_neutron(neutron, ports, [SRC, DST], layout="ocata")
    write_cell(
        nova,
        [InstanceSpec(vm_uuid(n), SRC) for n in (1, 2)],
        [MigrationSpec(vm_uuid(2), SRC, DST, "running")],
        icehouse=True,
    )
    code, doc, _ = cli_json("plan", "--neutron-db", neutron, "--nova-db", nova)
    assert {c["port_id"] for c in doc["changes"]} == {port_id(1)}
    assert [s["port_id"] for s in doc["skipped_moving"]] == [port_id(2)]
    assert doc["skipped_moving"][0]["reason"].startswith("migration in progress: migration 1")
    code, doc, _ = cli_json(
        "repair",
        "--neutron-db",
        neutron,
        "--nova-db",
        nova,
        "--apply",
        "--backup-dir",
        str(tmp_path),
    )
    assert [c["port_id"] for c in doc["changes"]] == [port_id(1)]
    engine = sa.create_engine(neutron)
    with engine.connect() as conn:
        details = dict(
            conn.execute(sa.text("SELECT port_id, vif_details FROM ml2_port_bindings")).all()
        )
    engine.dispose()
    assert details[port_id(2)] == "{}" and details[port_id(1)] != "{}"
    _, bare, _ = cli_json("plan", "--neutron-db", neutron)
    assert {c["port_id"] for c in bare["changes"]} == {port_id(2)}
