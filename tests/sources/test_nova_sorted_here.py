"""Nova's instances sorted by vifdoctor, not the server (issue 14), as one sorted LEFT JOIN.

``NovaCellDatabase.instances`` has the server run the LEFT JOIN of instances and their
caches with no ORDER BY, and sorts the rows itself through runs on disk, so no server
ever sorts the ``network_info`` blobs. The answer must not move: the same instances, in
byte-wise uuid order, each with the cache rows the server's own ``instance_uuid = uuid``
join matches. The traps are where databases disagree: MariaDB's default collation
(utf8mb4_general_ci) matches case- and trailing-space-insensitively, PostgreSQL and
SQLite compare bytes. The run size is cut so the rows straddle many runs on disk.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from vifdoctor import spool
from vifdoctor.errors import VifdoctorError
from vifdoctor.sources import nova_db
from vifdoctor.sources.nova_db import CellSource, NovaCellDatabase
from vifdoctor.sources.packed import ENV_PACKED_ROWS, Packing


def _tables(md: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """The columns vifdoctor reads, as nova names them; the uuid indexes are not unique so
    that every database can hold the same look-alike rows (a LEFT JOIN fans out)."""
    instances = sa.Table(
        "instances",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("uuid", sa.String(36)),
        sa.Column("display_name", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("node", sa.String(255)),
        sa.Column("vm_state", sa.String(255)),
        sa.Column("power_state", sa.Integer),
        sa.Column("task_state", sa.String(255)),
        sa.Column("deleted", sa.Integer),
        sa.Column("hidden", sa.Boolean),
        sa.Index("instances_uuid", "uuid"),
    )
    caches = sa.Table(
        "instance_info_caches",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("network_info", sa.Text),
        sa.Column("instance_uuid", sa.String(36), nullable=False),
        sa.Column("deleted", sa.Integer),
        sa.Index("caches_instance_uuid", "instance_uuid"),
    )
    return instances, caches


INSTANCES = [
    (1, "ABC-1"),  # uppercase: MariaDB matches the lowercase cache, the others do not
    (2, "abc-1"),
    (3, "tail-2 "),  # trailing space: MariaDB pads, the others do not
    (4, "dup-3"),  # two live cache rows: a LEFT JOIN gives the instance twice
    (5, "gone-4"),  # its cache row is soft-deleted
    (6, "none-5"),  # no cache row at all
    (7, "Z-6"),  # byte order puts it before every lowercase uuid
    *((10 + n, f"u-{n:02d}") for n in range(10)),
]
CACHES = [
    (1, "L", "abc-1", 0),
    (2, "T", "tail-2", 0),
    (3, "D1", "dup-3", 0),
    (4, "D2", "dup-3", 0),
    (5, "X", "gone-4", 5),
    (6, "Z", "Z-6", 0),
    *((10 + n, f"I{n}", f"u-{n:02d}", 0) for n in range(10)),
]


def _load(url: str) -> None:
    engine = sa.create_engine(url)
    md = sa.MetaData()
    instances, caches = _tables(md)
    try:
        md.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                instances.insert(),
                [
                    {
                        "id": i,
                        "uuid": u,
                        "display_name": f"vm{i}" if i != 4 else None,
                        "host": "c1",
                        "node": "c1",
                        "vm_state": "active",
                        "power_state": 1 if i != 2 else None,  # types: packed rows are text
                        "task_state": None if i != 3 else "migrating",
                        "deleted": 0 if i != 6 else 6,
                        "hidden": {1: True, 3: None}.get(i, False),
                    }
                    for i, u in INSTANCES
                ],
            )
            conn.execute(
                caches.insert(),
                [
                    {"id": i, "network_info": info, "instance_uuid": u, "deleted": d}
                    for i, info, u, d in CACHES
                ],
            )
    finally:
        engine.dispose()


def _rows(found) -> list[tuple[str, str | None]]:
    return [(inst.uuid, inst.network_info) for inst in found]


# What each database's own join matches, beyond the rows every database agrees on.
COMMON = {
    ("abc-1", "L"),
    ("dup-3", "D1"),
    ("dup-3", "D2"),
    ("gone-4", None),
    ("none-5", None),
    ("Z-6", "Z"),
    *((f"u-{n:02d}", f"I{n}") for n in range(10)),
}
BY_DIALECT = {
    "mariadb": {("ABC-1", "L"), ("tail-2 ", "T")},
    "postgresql": {("ABC-1", None), ("tail-2 ", None)},
    "sqlite": {("ABC-1", None), ("tail-2 ", None)},
}


@pytest.mark.parametrize("backend", ["sqlite", "mariadb", "postgresql"])
def test_read_sorted_here_is_the_sorted_left_join(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    _load(url)
    monkeypatch.setattr(nova_db, "STREAM_CHUNK", 3)
    monkeypatch.setattr(nova_db, "RUN_BYTES", 450)  # three rows a run: six runs merged
    monkeypatch.setattr(nova_db, "SPILL_BLOCK", 250)  # a run written in records of 1-2 rows
    spilled: list[int] = []
    real_spill = spool.spill_run
    monkeypatch.setattr(
        spool, "spill_run", lambda batch, *a: (spilled.append(len(batch)), real_spill(batch, *a))[1]
    )
    cell = NovaCellDatabase(CellSource("cell1", url))
    sent: list[str] = []
    sa.event.listen(
        cell.engine, "before_cursor_execute", lambda c, cur, stmt, *a: sent.append(stmt)
    )
    try:
        read = list(cell.instances())
        reads = [s for s in sent if "network_info" in s]
        reference = list(cell._instance_rows())
    finally:
        cell.close()
    chunked, one_query = _rows(read), _rows(reference)
    # every field as the server-sorted read gives it, on MariaDB from packed rows
    assert sorted(map(repr, read)) == sorted(map(repr, reference))
    assert ("concat_ws" in reads[0].lower()) == (backend == "mariadb")
    # byte-wise uuid order (as Python sorts str), the same rows as the single LEFT JOIN
    uuids = [u for u, _ in chunked]
    assert uuids == sorted(uuids)
    assert sorted(chunked, key=repr) == sorted(one_query, key=repr)
    assert [u for u, _ in chunked] == [u for u, _ in one_query]
    assert set(chunked) == COMMON | BY_DIALECT[backend]
    assert len(chunked) == len(INSTANCES) + 1  # dup-3 twice
    # one query, which the server does not sort; the rows went through runs on disk
    assert len(reads) == 1 and "ORDER BY" not in reads[0].upper()
    assert spilled == [3] * 6  # all 18 rows: the last run was spilled too, none left over


def test_a_layout_without_instances_id(sqlite_url: str) -> None:
    """Without an id column, rows are ordered by uuid alone."""
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE instances (uuid VARCHAR(36), display_name TEXT, host TEXT, "
                "node TEXT, vm_state TEXT, power_state INT, task_state TEXT, deleted INT)"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TABLE instance_info_caches (id INTEGER PRIMARY KEY, "
                "network_info TEXT, instance_uuid VARCHAR(36), deleted INT)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO instances VALUES ('b', 'vm', 'c1', 'c1', "
                "'active', 1, NULL, 0), ('a', 'vm', 'c1', 'c1', 'active', 1, "
                "NULL, 0)"
            )
        )
        conn.execute(sa.text("INSERT INTO instance_info_caches VALUES (1, 'B', 'b', 0)"))
    engine.dispose()
    cell = NovaCellDatabase(CellSource("cell1", sqlite_url))
    try:
        assert _rows(cell.instances()) == [("a", None), ("b", "B")]
    finally:
        cell.close()


def test_a_packed_row_is_keyed_as_its_values_key_it() -> None:
    """Packed Nova rows are sorted unsplit, by a key read from their first two values
    (``_packed_key``): the key the split row gives, and the same refusals as the split."""
    packing = Packing("utf8mb4", "utf-8")
    width = 10

    def packed(uuid: bytes, iid: bytes) -> bytes:
        return b"\xff".join([uuid, iid, b"vm", b"h", b"n", b"active", b"1", b"\xfe", b"0", b"0"])

    for uuid, iid in [(b"abc", b"7"), (b"\xfe", b"3"), (b"Z-\xc3\xa9", b"\xfe"), (b"", b"0")]:
        value = packed(uuid, iid)
        fields = packing.unpack(value, width)
        typed = nova_db._typed(fields, None)
        expected = (typed[0] is not None, typed[0] or "", typed[1] if typed[1] is not None else -1)
        assert nova_db._packed_key(value, packing, width) == expected
    with pytest.raises(VifdoctorError, match="max_allowed_packet"):
        nova_db._packed_key(None, packing, width)
    with pytest.raises(VifdoctorError, match=f"{ENV_PACKED_ROWS}=0"):
        nova_db._packed_key(packed(b"a\xffb", b"1"), packing, width)  # a stray 0xFF
