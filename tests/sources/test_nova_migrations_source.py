"""Nova's migration records as a source: every layout, streamed, joined per instance.

Real schemas only: nova 34.0.0's cell database (``nova-manage db sync`` on MariaDB)
and the Icehouse-era layout (216_havana.py's migrations table) on SQLite and MariaDB.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from testkit.dbfixtures import load_mariadb_sql
from testkit.novakit import vm_uuid

from vifdoctor.audit import join_by_instance
from vifdoctor.demo.nova import (
    InstanceSpec,
    MigrationSpec,
    create_nova_schema,
    write_instances,
    write_migrations,
)
from vifdoctor.sources.nova_db import CellSource, NovaCellDatabase, NovaCells

A, B = vm_uuid(1), vm_uuid(2)
T0 = datetime(2026, 1, 2, 3, 4, 5)


def _cell(
    url: str, instances: list[InstanceSpec], moves: list[MigrationSpec], schema: bool
) -> None:
    engine = sa.create_engine(url)
    try:
        if schema:
            create_nova_schema(engine)
        write_instances(engine, instances)
        write_migrations(engine, moves)
    finally:
        engine.dispose()


def _moves() -> list[MigrationSpec]:
    return [
        # Icehouse has no migration_type: Nova derives it from the flavors
        MigrationSpec(
            A,
            "c1",
            "c2",
            "confirmed",
            migration_type=None,
            old_flavor=1,
            new_flavor=2,
            created_at=T0,
        ),
        MigrationSpec(A, "c2", "c3", "error", migration_type=None, created_at=T0.replace(hour=5)),
        MigrationSpec(A, "c2", "c9", "completed", deleted=True),  # soft-deleted: gone
        MigrationSpec(B, "c1", "c2", "running", migration_type=None, created_at=T0),
    ]


def _read(url: str) -> list:
    db = NovaCellDatabase(CellSource("cellX", url))
    try:
        assert db.reads_migrations
        return list(db.instances())
    finally:
        db.close()


def _check(instances: list) -> None:
    by_uuid = {i.uuid: i for i in instances}
    a = by_uuid[A].migrations
    assert [(m.source_compute, m.dest_compute, m.status) for m in a] == [
        ("c1", "c2", "confirmed"),
        ("c2", "c3", "error"),
    ]
    # no column (Icehouse) or a NULL in it (nova 34): nova's determine_migration_type
    assert [m.migration_type for m in a] == ["resize", "migration"]
    assert a[0].created_at == T0 and a[0].cell == "cellX" and a[0].source_node == "c1"
    assert by_uuid[B].migrations[0].status == "running"
    assert by_uuid[vm_uuid(3)].migrations == []


def _instances() -> list[InstanceSpec]:
    return [InstanceSpec(A, "c3"), InstanceSpec(B, "c1"), InstanceSpec(vm_uuid(3), "c1")]


def test_icehouse_layout(nova_db_url: str) -> None:
    _cell(nova_db_url, _instances(), _moves(), schema=True)
    _check(_read(nova_db_url))


def test_nova34_cell_schema(nova34_cell_mariadb_url: str) -> None:
    moves = _moves() + [
        MigrationSpec(
            B,
            "c1",
            "c5",
            "queued",
            migration_type="live-migration",
            uuid="9d1c7a1e-0000-4000-8000-00000000000b",
            created_at=T0.replace(hour=9),
        )
    ]
    _cell(nova34_cell_mariadb_url, _instances(), moves, schema=False)
    got = {i.uuid: i for i in _read(nova34_cell_mariadb_url)}
    _check(list(got.values()))
    last = got[B].migrations[-1]
    assert (last.migration_type, last.status, last.uuid) == (
        "live-migration",
        "queued",
        "9d1c7a1e-0000-4000-8000-00000000000b",
    )


def test_cell_without_migrations_table(tmp_path) -> None:
    """A cell database whose migrations table is gone: instances are still read, their
    moves are unknown (None), not 'none'."""
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    _cell(url, _instances(), [], schema=True)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE migrations"))
    engine.dispose()
    cells = NovaCells([CellSource("c", url)])
    try:
        assert not cells.reads_migrations
        assert all(i.migrations is None for i in cells.instances())
    finally:
        cells.close()


def test_cross_cell_resize_visible_copy_wins(
    nova34_cell_mariadb_url: str, mariadb_url: str, nova34_mariadb_ddl
) -> None:
    """Two cells hold the instance (one hidden) and each a copy of the migration (same
    uuid): one instance comes out, the visible one, with one record per move, the copy
    in the visible instance's cell."""
    mig = "5e0c0f4a-0000-4000-8000-00000000000c"
    # the source cell (Icehouse-style layout has no hidden column: use nova 34 for both)
    _cell(
        nova34_cell_mariadb_url,
        [InstanceSpec(A, "src", hidden=True)],
        [
            MigrationSpec(
                A,
                "src",
                "dst",
                "post-migrating",
                migration_type="resize",
                uuid=mig,
                cross_cell_move=True,
                created_at=T0,
            )
        ],
        schema=False,
    )
    load_mariadb_sql(sa.engine.make_url(mariadb_url).database, nova34_mariadb_ddl[0])
    _cell(
        mariadb_url,
        [InstanceSpec(A, "dst")],
        [
            MigrationSpec(
                A,
                "src",
                "dst",
                "finished",
                migration_type="resize",
                uuid=mig,
                cross_cell_move=True,
                created_at=T0,
            )
        ],
        schema=False,
    )
    cells = NovaCells(
        [CellSource("cell1", nova34_cell_mariadb_url), CellSource("cell2", mariadb_url)]
    )
    try:
        rows = list(join_by_instance([], cells.instances()))
    finally:
        cells.close()
    assert len(rows) == 1
    uuid, ports, inst = rows[0]
    assert (uuid, ports, inst.host, inst.cell, inst.hidden) == (A, [], "dst", "cell2", False)
    assert [(m.uuid, m.status, m.cell) for m in inst.migrations] == [(mig, "finished", "cell2")]
