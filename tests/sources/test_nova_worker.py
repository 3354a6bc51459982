"""The Nova worker process (issue 14): the instances the audit's own read gives, or one
clear error.

The worker runs NovaCells in another process and sends back each instance with its
cache already parsed, cut to what the rules read (``model.VIF_KEYS``). Whatever the
cache holds -- valid, malformed, empty, a look-alike uuid in another case -- the rules
must see the same instance either way, on every database.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from testkit.novakit import (
    HYBRID_TEXT,
    cli_json,
    port_id,
    vif,
    vm_port,
    write_neutron,
    write_nova,
)

import vifdoctor.audit as audit_module
from vifdoctor.demo.nova import (
    InstanceSpec,
    MigrationSpec,
    create_nova_schema,
    write_instances,
    write_migrations,
)
from vifdoctor.errors import VifdoctorError
from vifdoctor.model import VIF_KEYS, CachedVifs, Instance
from vifdoctor.sources import nova_worker
from vifdoctor.sources.nova_db import CellSource, NovaCellDatabase, NovaCells
from vifdoctor.sources.nova_worker import ENV_WORKER, WorkerNovaCells
from vifdoctor.sources.packed import ENV_PACKED_ROWS

HYBRID = {"port_filter": True, "ovs_hybrid_plug": True, "bridge_name": "br-int"}
UUIDS = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(1, 13)]
CACHES: list[list[dict] | str | None] = [
    [vif("00000000-0000-4000-8000-000000000001", HYBRID)],
    [  # two VIFs, one with no devname and no details at all
        vif("00000000-0000-4000-8000-000000000002", {"port_filter": False}),
        {"id": "00000000-0000-4000-8000-000000000003", "type": "ovs"},
    ],
    [  # the same port twice: the last one is Nova's
        vif("00000000-0000-4000-8000-000000000004", {}),
        vif("00000000-0000-4000-8000-000000000004", {"big": 2**70, "f": 1.5e300, "s": "\u00e9"}),
    ],
    '[{"id": "00000000-0000-4000-8000-000000000005", "details": {"ovs_hy',  # cut short
    '{"id": "x"}',  # an object, not a list
    "",  # empty text: Nova cannot read it
    "{}",  # iterates to nothing: an empty cache
    "[1, 2]",  # not VIF objects
    None,  # no cache row
    [vif("00000000-0000-4000-8000-000000000006", {"details": None}, "vhostuser")],
    [  # what VD201 compares, each wrong once
        {**vif("00000000-0000-4000-8000-000000000008", HYBRID), "devname": "tapwrong"},
        {**vif("00000000-0000-4000-8000-000000000009", HYBRID), "ovs_interfaceid": None},
    ],
    [{**vif("00000000-0000-4000-8000-000000000007", HYBRID), "meta": {"x": "y" * 10_000}}],
]


def _cloud(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        create_nova_schema(engine)
        write_instances(
            engine,
            [
                InstanceSpec(
                    uuid=uuid.upper() if n == 3 else uuid,  # sorts before every lowercase one
                    host=f"compute{n % 3}",
                    deleted=n == 5,
                    task_state="migrating" if n == 2 else None,
                    display_name=f"vm {n} \u00e9",
                    network_info=cache,
                )
                for n, (uuid, cache) in enumerate(zip(UUIDS, CACHES, strict=True))
            ],
        )
        write_migrations(
            engine,
            [
                MigrationSpec(UUIDS[2], "compute1", "compute2", "running"),
                MigrationSpec(
                    UUIDS[2],
                    "compute2",
                    "compute0",
                    "error",
                    created_at=datetime(2026, 1, 2, 3, 4, 5),
                ),
            ],
        )
    finally:
        engine.dispose()


def _as_the_rules_see_it(inst: Instance) -> tuple:
    """Everything a rule can read of an instance (its cache's VIFs by VIF_KEYS)."""
    cache = inst.cached_vifs()
    vifs = {pid: tuple(v.get(k) for k in VIF_KEYS) for pid, v in cache.vifs.items()}
    quoted = inst.network_info if cache.error else None  # VD205 quotes the raw text
    fields = {k: v for k, v in vars(inst).items() if k not in ("network_info", "cache")}
    return repr(fields), json.dumps(vifs, sort_keys=True), cache.error, quoted


def _read(url: str, monkeypatch: pytest.MonkeyPatch, worker: str) -> list[tuple]:
    monkeypatch.setenv(ENV_WORKER, worker)
    cells = WorkerNovaCells([CellSource("cell1", url)])
    try:
        assert cells.use_worker == (worker == "1")
        return [_as_the_rules_see_it(i) for i in cells.instances()]
    finally:
        cells.close()


@pytest.mark.parametrize("backend", ["sqlite", "mariadb", "postgresql"])
def test_the_worker_gives_what_the_audits_own_read_gives(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    _cloud(url)
    started: list[list[CellSource]] = []
    real = nova_worker._start
    monkeypatch.setattr(
        nova_worker, "_start", lambda cells: (started.append(cells), real(cells))[1]
    )
    here = _read(url, monkeypatch, "0")
    assert not started
    there = _read(url, monkeypatch, "1")
    assert len(started) == 1
    assert there == here
    assert len(here) == len(UUIDS)
    errors = [error for _, _, error, _ in here]
    # cut short, an object, not VIFs ("" belongs to the soft-deleted instance: no live row)
    assert sum(e is not None for e in errors) == 3
    # the duplicate port kept its last VIF, with a number past 64 bits intact
    assert sum("1180591620717411303424" in vifs for _, vifs, _, _ in here) == 1
    # both migrations crossed over with their instance, dates and all
    assert sum(fields.count("Migration(") for fields, *_ in here) == 2
    assert sum("datetime.datetime(2026, 1, 2, 3, 4, 5)" in fields for fields, *_ in here) == 1


def test_the_worker_reads_every_cell_in_one_uuid_order(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell1 = f"sqlite:///{tmp_path / 'cell1.sqlite'}"
    _cloud(cell1)
    _cloud(mariadb_url)  # the same uuids: each appears once per cell
    monkeypatch.setenv(ENV_WORKER, "1")
    sources = [CellSource("cell1", cell1), CellSource("cell2", mariadb_url)]
    worker = WorkerNovaCells(sources)
    here = NovaCells(sources)
    try:
        there = [(i.uuid, i.cell) for i in worker.instances()]
        assert there == [(i.uuid, i.cell) for i in here.instances()]
    finally:
        worker.close()
        here.close()
    assert len(there) == 2 * len(UUIDS)
    assert [u for u, _ in there] == sorted(u for u, _ in there)


def test_the_worker_is_used_where_it_pays(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _cloud(sqlite_url)
    cell = [CellSource("cell1", sqlite_url)]
    for setting, used in (("0", False), ("1", True), ("auto", False), ("", False)):
        monkeypatch.setenv(ENV_WORKER, setting)
        cells = WorkerNovaCells(cell)
        assert cells.use_worker is used, setting
        cells.close()
    monkeypatch.setattr(nova_worker, "WORKER_MIN_INSTANCES", len(UUIDS))
    monkeypatch.setattr(nova_worker, "_usable_cpus", lambda: 2)  # whatever runs the tests
    monkeypatch.setenv(ENV_WORKER, "auto")
    cells = WorkerNovaCells(cell)
    assert cells.use_worker
    assert cells.instance_count(5) == 5  # counting stops at the limit
    cells.close()
    # one usable core: the two processes would only take turns
    monkeypatch.setattr(nova_worker, "_usable_cpus", lambda: 1)
    cells = WorkerNovaCells(cell)
    assert not cells.use_worker
    cells.close()
    monkeypatch.setattr(nova_worker, "_usable_cpus", lambda: 2)
    # embedded in a server (uWSGI, ...), sys.executable is no interpreter to start
    monkeypatch.setattr(nova_worker.sys, "executable", "/usr/bin/uwsgi")
    cells = WorkerNovaCells(cell)
    assert not cells.use_worker
    cells.close()


def test_database_urls_never_reach_the_workers_arguments(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cloud(mariadb_url)
    secret = mariadb_url.replace("root@", "root:@")  # the same account, a password field
    monkeypatch.setenv(ENV_WORKER, "1")
    cells = WorkerNovaCells([CellSource("cell1", secret)])
    try:
        stream = cells.instances()
        assert cells._proc is not None
        assert not any("mysql" in str(arg) for arg in cells._proc.args)  # type: ignore[union-attr]
        assert len(list(stream)) == len(UUIDS)
    finally:
        cells.close()


def test_a_cell_gone_before_the_worker_opens_it_is_one_error(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cloud(mariadb_url)
    monkeypatch.setenv(ENV_WORKER, "1")
    cells = WorkerNovaCells([CellSource("cell1", mariadb_url)])
    try:
        engine = sa.create_engine(mariadb_url)
        with engine.begin() as conn:
            name = conn.execute(sa.text("SELECT DATABASE()")).scalar()
            conn.execute(sa.text(f"DROP DATABASE `{name}`"))
        engine.dispose()
        with pytest.raises(VifdoctorError, match=r"^Nova cell cell1: cannot connect.*Unknown"):
            list(cells.instances())
    finally:
        cells.close()


def test_a_worker_that_dies_is_one_error(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _cloud(sqlite_url)
    monkeypatch.setenv(ENV_WORKER, "1")
    monkeypatch.setattr(nova_worker.sys, "executable", "/bin/false")  # exits 1, says nothing
    cells = WorkerNovaCells([CellSource("cell1", sqlite_url)])
    try:
        with pytest.raises(
            VifdoctorError, match=r"stopped \(exit code 1\).*VIFDOCTOR_NOVA_WORKER=0"
        ):
            list(cells.instances())
    finally:
        cells.close()
    monkeypatch.setattr(nova_worker.sys, "executable", "/nonexistent/python")
    cells = WorkerNovaCells([CellSource("cell1", sqlite_url)])
    try:
        with pytest.raises(VifdoctorError, match="cannot start the Nova worker process"):
            cells.instances()
    finally:
        cells.close()


def test_the_audit_through_the_worker_is_the_audit_in_process(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: every port of those caches in Neutron, some bound elsewhere or with other
    details, the whole JSON document the same whichever process read Nova."""
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    _cloud(mariadb_url)
    # port -> the cache that holds it (port 10: none does, VD203)
    owner = {1: 0, 2: 1, 3: 1, 4: 2, 5: 3, 6: 9, 8: 10, 9: 10, 7: 11, 10: 0}
    ports = [
        vm_port(
            port_id(p),
            UUIDS[n].upper() if n == 3 else UUIDS[n],
            f"compute{(n + (p == 2)) % 3}",  # port 2 bound away from its instance: VD202
            HYBRID_TEXT if p % 2 else "{}",
        )
        for p, n in owner.items()
    ]
    write_neutron(neutron, ports, ["compute0", "compute1", "compute2"])
    docs = []
    for setting in ("0", "1"):
        monkeypatch.setenv(ENV_WORKER, setting)
        _, doc, _ = cli_json("audit", "--neutron-db", neutron, "--nova-db", mariadb_url)
        doc["schema"].pop("database_time_utc")
        docs.append(doc)
    assert docs[0] == docs[1]
    messages = [f["message"] for f in docs[0]["findings"] if f["code"] == "VD201"]
    for key in ("devname", "ovs_interfaceid", "details", "type"):
        assert any(key in m for m in messages), key
    assert {f["code"] for f in docs[0]["findings"]} >= {"VD201", "VD202", "VD203", "VD205"}


def test_frames_stay_small_whatever_the_caches_hold(tmp_path: Path) -> None:
    """Huge caches (valid, or malformed ones whose text crosses over for VD205) go a few
    to a frame: the audit's process never holds many of them at once."""
    url = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    engine = sa.create_engine(url)
    try:
        create_nova_schema(engine)
        write_instances(
            engine,
            [
                InstanceSpec(
                    uuid=f"{n:08x}-0000-4000-8000-000000000000",
                    host="compute1",
                    network_info=("[" + "x" * 700_000)  # malformed: the raw text crosses
                    if n % 2
                    else [{**vif(f"00000000-0000-4000-8000-{n:012d}", HYBRID), "m": "y" * 700_000}],
                )
                for n in range(8)
            ],
        )
    finally:
        engine.dispose()
    source = io.BytesIO(json.dumps([["cell1", url, ""]]).encode())
    sink = io.BytesIO()
    assert nova_worker.serve(source, sink) == 0
    sink.seek(0)
    frames = []
    while (frame := nova_worker._read_frame(sink)) is not None:
        frames.append(frame)
    assert frames[-1][0] == "end" and frames[-1][1]["peak_rss_kb"] > 0
    assert frames[-1][1]["cpu_s"] > 0
    rows = [f[1] for f in frames[:-1]]
    assert all(kind == "rows" for kind, _ in frames[:-1])
    assert sum(map(len, rows)) == 8
    assert max(map(len, rows)) <= 2  # about 1 MB of cache text a frame
    assert sum(row[10] is not None for frame in rows for row in frame) == 4  # VD205's text


def test_quiet_instances_counted_by_their_ports_shape_are_the_audit_in_full(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: VM ports of a clean shape come back as KnownPorts (packed rows on
    MariaDB) and a quiet instance is counted without judge_instance. Instances that each
    differ from a quiet one in one thing (a cached VIF's devname, interface id, details
    or type, another host, a port too many or too few, a migration record) must be judged
    in full: the whole JSON is the one read with no packed rows (no shapes, every row
    built and judged), beside a worker (VM ports sorted here) and without one."""
    n = 13  # 0 and 1 judged in full (the first port makes the template, the second
    # is read before it is made), 2-9 each with one change, 10-12 quiet
    uuids = [f"{k:08x}-0000-4000-8000-00000000000{k % 10}" for k in range(1, n + 1)]
    ports = [f"{k:02x}{k:06x}-0000-4000-8000-000000000001" for k in range(1, n + 2)]
    caches = [[vif(ports[k], HYBRID)] for k in range(n)]
    caches[2][0]["devname"] = "tap" + ports[0][:11]  # the template's port's
    caches[3][0]["ovs_interfaceid"] = ports[0]
    caches[4][0]["details"] = {**HYBRID, "port_filter": False}
    caches[5][0]["type"] = "bridge"
    caches[6].append(vif(ports[n], HYBRID))  # a port Neutron does not attach to it
    caches[7] = []  # its port is missing from the cache
    hosts = ["compute1"] * n
    hosts[8] = "compute2"  # Neutron binds its port on compute1
    write_nova(
        mariadb_url,
        [
            InstanceSpec(uuid=u, host=h, network_info=c)
            for u, h, c in zip(uuids, hosts, caches, strict=True)
        ],
        schema=create_nova_schema,
    )
    engine = sa.create_engine(mariadb_url)
    try:
        write_migrations(engine, [MigrationSpec(uuids[9], "compute2", "compute1", "completed")])
    finally:
        engine.dispose()
    name = f"{sa.engine.make_url(mariadb_url).database}_neutron"  # beside it, dropped below
    _create_or_drop(mariadb_url, f"CREATE DATABASE `{name}`")
    neutron = sa.engine.make_url(mariadb_url).set(database=name).render_as_string(False)
    try:
        write_neutron(
            neutron,
            [
                vm_port(p, u, "compute1", json.dumps(HYBRID))
                for p, u in zip(ports, uuids, strict=False)
            ],
            ["compute1", "compute2"],
        )
        quiet: list[bool] = []
        real = audit_module.instance_is_quiet
        monkeypatch.setattr(
            audit_module,
            "instance_is_quiet",
            lambda *a, **kw: (quiet.append(real(*a, **kw)), quiet[-1])[1],
        )
        docs = []
        for packed, worker in (("0", "0"), ("1", "0"), ("1", "1")):
            monkeypatch.setenv(ENV_PACKED_ROWS, packed)
            monkeypatch.setenv(ENV_WORKER, worker)
            quiet.clear()
            _, doc, _ = cli_json("audit", "--neutron-db", neutron, "--nova-db", mariadb_url)
            doc["schema"].pop("database_time_utc")
            docs.append(doc)
            # the first port is judged in full (its shape's template); then KnownPorts
            assert quiet.count(True) == (0 if packed == "0" else 3), quiet
    finally:
        _create_or_drop(mariadb_url, f"DROP DATABASE `{name}`")
    assert docs[0] == docs[1] == docs[2]
    affected = {i["device_id"]: i["codes"] for i in docs[0]["instances"]}
    # the moved instance (9) has nothing to say, but was judged in full (3 quiet above)
    assert set(affected) == set(uuids[2:9]), affected


def _create_or_drop(url: str, statement: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def test_instances_built_by_position_have_each_value_in_its_field() -> None:
    """The worker's rows and a cell's rows build Instances by position (issue 14): every
    value distinct, so a field out of order shows."""
    cell = SimpleNamespace(cell=SimpleNamespace(name="cell9"))
    built = NovaCellDatabase._instance(
        cell,  # type: ignore[arg-type]
        "uuid-1", "name-1", "host-1", "node-1", "state-1", 4, "task-1", 7, "info-1", 1,
    )  # fmt: skip
    assert built == Instance(
        uuid="uuid-1",
        cell="cell9",
        name="name-1",
        host="host-1",
        node="node-1",
        vm_state="state-1",
        power_state=4,
        task_state="task-1",
        deleted=True,
        network_info="info-1",
        cache_known=True,
        hidden=True,
    )
    moves: list = []
    sent = nova_worker._instance(
        ("u", "c", "n", "h", "nd", "vs", 3, "t", False, True, "raw", {"p": {}}, "err", moves)
    )
    assert sent == Instance(
        uuid="u",
        cell="c",
        name="n",
        host="h",
        node="nd",
        vm_state="vs",
        power_state=3,
        task_state="t",
        deleted=False,
        network_info="raw",
        cache_known=True,
        hidden=True,
        migrations=moves,
        cache=CachedVifs({"p": {}}, "err"),
    )
