"""Packed rows (sources/packed.py): the server joins a row's values into one binary
string for PyMySQL to decode once; what the source yields must not change.

Each case reads the same database twice, packed and column by column
(``VIFDOCTOR_PACKED_ROWS=0``), and compares every Binding; the statements sent are
captured to prove the packed read really ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from testkit.cloudfactory import execute
from testkit.repairkit import install_nullable_details

from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
)
from vifdoctor.demo.schemas import LAYOUTS
from vifdoctor.errors import VifdoctorError
from vifdoctor.model import VERDICT_FIELDS, Binding
from vifdoctor.sources import neutron_db
from vifdoctor.sources.interface import EVERYTHING
from vifdoctor.sources.neutron_db import NeutronDatabase
from vifdoctor.sources.packed import ENV_PACKED_ROWS, Packing, packing_for

HOSTILE = [
    "",
    "plain",
    "emoji \U0001f600 and \u00e9\u00e8 and \u4e2d\u6587",
    "nul \x00 byte, tab \t, newline \n, cr \r",
    "quotes ' \" ` and backslash \\ and %s %% {}",
    "\u00ff\u00fe looks like the markers, as characters",
    "x" * 4000,
]


def _cloud(layout: str) -> CloudSpec:
    ports = []
    for n, text in enumerate(HOSTILE):
        extra = (
            [BindingSpec(host=f"dest-{n}", vif_type="ovs", vif_details=text, status="INACTIVE")]
            if layout == "ocata"
            else []
        )
        ports.append(
            PortSpec(
                id=f"port-{n:02d}",
                network_id=f"net-{text[:30]}",
                device_owner="compute:nova" if n % 2 else "network:dhcp",
                device_id=f"vm {text[:20]}",
                project_id=text[:200],
                binding=BindingSpec(
                    host=f"host {text[:40]}",
                    vif_type="ovs" if n % 3 else "binding_failed",
                    vif_details=None if n == 1 else text,  # NULL where the schema allows it
                    vnic_type="normal",
                    profile=text,
                    driver=None if n == 2 else "openvswitch",  # no level row: NULL driver
                    segment_id=None if n == 3 else f"seg-{n}",
                ),
                extra_bindings=extra,
            )
        )
    # VM ports whose byte order is not their collation's (case, accents), several on one
    # instance, one with an INACTIVE row too: the read ahead must keep the server's order
    shared = [
        ("port-Zeta", "vm shared \u00c9"),
        ("Port-beta", "vm shared \u00c9"),
        ("port-alpha", "vm shared \u00c9"),
        ("port-b2", "VM shared \u00e9"),
        ("port-b1", "VM shared \u00e9"),
    ]
    for port_id, device in shared:
        n = len(ports)
        ports.append(
            PortSpec(
                id=port_id,
                network_id=f"net-{n}",
                device_owner="compute:nova",
                device_id=device,
                project_id="p",
                binding=BindingSpec(
                    host=f"host {n % 2}",
                    vif_type="ovs",
                    vif_details="{}",
                    driver="openvswitch",
                    segment_id=f"seg-{n}",
                ),
                extra_bindings=[
                    BindingSpec(host="dest", vif_type="ovs", vif_details="{}", status="INACTIVE")
                ]
                if layout == "ocata" and port_id == "port-alpha"
                else [],
            )
        )
    return CloudSpec(
        networks=[
            NetworkSpec(
                id=p.network_id,
                name="",
                project_id="",
                segments=[SegmentSpec(id=f"seg-{n}", segmentation_id=100 + n)],
            )
            for n, p in enumerate(ports)
        ],
        agents=[AgentSpec(host="host plain", agent_type="Open vSwitch agent")],
        ports=ports,
    )


def _read(url: str, monkeypatch: pytest.MonkeyPatch, packed: bool) -> tuple[list[Binding], bool]:
    """Every binding the source streams, and whether a packed statement was sent."""
    monkeypatch.setenv(ENV_PACKED_ROWS, "1" if packed else "0")
    engine = sa.create_engine(url)
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    try:
        with NeutronDatabase(engine) as source:
            rows = list(source.bindings()) + list(source.compute_bindings_by_device())
    finally:
        engine.dispose()
    return rows, any("concat_ws" in s.lower() for s in sent)


@pytest.fixture
def hostile_db(mariadb_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    install_nullable_details(mariadb_url, _cloud(request.param), request.param)
    yield mariadb_url


@pytest.mark.parametrize("hostile_db", LAYOUTS, indirect=True)
def test_packed_rows_equal_column_reads_on_every_layout(
    hostile_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed, used = _read(hostile_db, monkeypatch, packed=True)
    plain, unused = _read(hostile_db, monkeypatch, packed=False)
    assert used and not unused
    assert len(plain) >= len(HOSTILE) + len(HOSTILE) // 2  # VM ports read twice
    assert packed == plain
    # the hostile values came through, NULL as None
    assert {b.vif_details for b in plain} >= {None, HOSTILE[2], HOSTILE[3], HOSTILE[6]}
    assert None in {b.driver for b in plain} and None in {b.segment for b in plain}


@pytest.mark.parametrize("hostile_db", ["icehouse", "ocata"], indirect=True)
def test_vm_ports_read_ahead_are_the_vm_ports_streamed(
    hostile_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``read_ahead`` (beside a Nova worker) reads the VM ports with no ORDER BY and sorts
    them here (sort_ahead), every row before the first binding is used: the same bindings
    in the same byte-wise (device_id, port_id, host) order as the server's sort."""
    monkeypatch.setenv(ENV_PACKED_ROWS, "1")
    monkeypatch.setattr(neutron_db, "SORT_RUN_ROWS", 3)  # spill runs, and merge them
    monkeypatch.setattr(neutron_db, "SORT_BLOCK_ROWS", 2)
    ahead: list[bool] = []  # per read ahead: whether the server's result was done
    real = neutron_db.sort_ahead

    def spy(result: sa.CursorResult, *at: int) -> Iterator[bytes]:
        rows = real(result, *at)
        first = next(rows)
        ahead.append(result.closed)
        yield first
        yield from rows

    monkeypatch.setattr(neutron_db, "sort_ahead", spy)
    engine = sa.create_engine(hostile_db)
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    try:
        with NeutronDatabase(engine) as source:
            streamed = list(source.compute_bindings_by_device())
            assert not ahead
            sent.clear()
            first = source.compute_bindings_by_device(read_ahead=True)
            read = [next(first)]
            # every row is on this side before the first is used: the server is done
            assert ahead == [True]
            read.extend(first)
    finally:
        engine.dispose()
    assert read == streamed and len(read) >= len(HOSTILE) // 2 + 5
    keys = [(b.device_id, b.port_id, b.host) for b in read]
    assert keys == sorted(keys)  # code point order, which is UTF-8's byte order
    assert [k[1] for k in keys if k[0] == "vm shared \u00c9"][:3] == [
        "Port-beta",
        "port-Zeta",
        "port-alpha",
    ]
    (statement,) = [s for s in sent if "concat_ws" in s.lower()]
    assert "order by" not in statement.lower()  # the server did not sort them


@pytest.mark.parametrize("hostile_db", ["ocata"], indirect=True)
def test_packed_rows_follow_the_connection_charset(
    hostile_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a utf8mb3 connection the server turns a 4-byte character into '?' for
    PyMySQL; the packed read must give the same, and a latin1 column is converted."""
    execute(
        hostile_db,
        "ALTER TABLE ports MODIFY device_owner VARCHAR(255) CHARACTER SET latin1",
        "UPDATE ports SET device_owner = 'compute:n\u00e9va' WHERE id = 'port-05'",
    )
    url = hostile_db.replace("charset=utf8mb4", "charset=utf8")
    packed, used = _read(url, monkeypatch, packed=True)
    plain, _ = _read(url, monkeypatch, packed=False)
    assert used and packed == plain
    assert any("?" in b.vif_details for b in plain if b.vif_details and "emoji" in b.vif_details)
    assert "compute:n\u00e9va" in {b.device_owner for b in plain}


def test_packing_is_not_used_where_it_cannot_be_exact(
    mariadb_url: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_PACKED_ROWS, raising=False)
    text = sa.column("t", sa.String)
    blob = sa.column("b", sa.LargeBinary)
    for url, columns, expected in (
        (mariadb_url, [text], True),
        (mariadb_url, [text, sa.null().label("x"), sa.true().label("y")], True),
        (mariadb_url, [text, blob], False),  # raw bytes may hold 0xFF
        (mariadb_url, [text, sa.column("d", sa.DateTime)], False),
        (mariadb_url.replace("charset=utf8mb4", "charset=latin1"), [text], False),
        (sqlite_url, [text], False),  # a C driver: nothing to gain
    ):
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert (packing_for(conn, columns) is not None) is expected, (url, columns)
        finally:
            engine.dispose()


def test_a_row_that_does_not_split_is_one_clear_error() -> None:
    packing = Packing("utf8mb4", "utf-8")
    assert packing.unpack(b"a\xff\xfe\xffc", 3) == ["a", None, "c"]
    with pytest.raises(VifdoctorError, match=f"{ENV_PACKED_ROWS}=0"):
        packing.unpack(b"a\xff\xffb\xffc", 3)  # an 0xFF stored in a text column
    with pytest.raises(VifdoctorError, match="max_allowed_packet"):
        packing.unpack(None, 3)  # CONCAT_WS past max_allowed_packet


def _known(url: str, known: dict[bytes, str]) -> list[Binding | str]:
    """What ``bindings_known`` streams with this table of shapes (packed rows)."""
    engine = sa.create_engine(url)
    try:
        with NeutronDatabase(engine) as source:
            return list(source.bindings_known(EVERYTHING, known))
    finally:
        engine.dispose()


@pytest.mark.parametrize("hostile_db", LAYOUTS, indirect=True)
def test_rows_of_a_known_shape_come_back_as_its_value(
    hostile_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: with the VERDICT_FIELDS packed first, a row whose shape the caller knows
    is given as the caller's value; every other row is the Binding ``bindings`` gives,
    with its shape; equal shapes mean equal VERDICT_FIELDS."""
    plain, _ = _read(hostile_db, monkeypatch, packed=False)
    monkeypatch.setenv(ENV_PACKED_ROWS, "1")
    first = _known(hostile_db, {})
    expected = plain[: len(first)]  # _read adds the VM ports again after bindings()
    assert first == expected and all(isinstance(b, Binding) for b in first)
    shapes: dict[bytes, tuple] = {}
    for b in first:
        assert isinstance(b, Binding) and b.shape is not None
        fields = tuple(getattr(b, name) for name in VERDICT_FIELDS)
        assert shapes.setdefault(b.shape, fields) == fields
    known = {b.shape: f"verdict {n}" for n, b in enumerate(first) if n % 2 and b.shape}
    second = _known(hostile_db, known)
    assert [known.get(b.shape or b"", b) for b in first] == second  # type: ignore[union-attr]
    assert sum(isinstance(v, str) for v in second) >= len(known) > 0


@pytest.mark.parametrize("hostile_db", ["ocata"], indirect=True)
def test_no_shape_where_a_deeper_level_names_the_driver(
    hostile_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hierarchical binding: the bottom level's driver replaces level 0's, per port, so
    the packed level-0 bytes do not say what the row's driver is: no shapes at all."""
    monkeypatch.setenv(ENV_PACKED_ROWS, "1")
    first = _known(hostile_db, {})
    port = next(b for b in first if isinstance(b, Binding) and b.driver == "openvswitch")
    execute(
        hostile_db,
        "INSERT INTO ml2_port_binding_levels (port_id, host, level, driver, segment_id) "
        f"VALUES ('{port.port_id}', '{port.host}', 1, 'vendor_tor', NULL)",
    )
    known = {b.shape: "clean" for b in first if isinstance(b, Binding) and b.shape}
    again = _known(hostile_db, known)
    assert all(isinstance(b, Binding) and b.shape is None for b in again)
    bottom = [b for b in again if (b.port_id, b.host) == (port.port_id, port.host)]  # type: ignore[union-attr]
    assert [b.driver for b in bottom] == ["vendor_tor"]  # type: ignore[union-attr]


def test_a_lone_0xfd_value_before_the_marker_gives_no_shape() -> None:
    packing = Packing("utf8mb4", "utf-8")
    assert packing.split_shaped(b"a\xffb\xff\xfd\xffc", 3, 2) == (["a", "b", "c"], b"a\xffb")
    # a text column holding the lone byte 0xFD: the values are exact, the shape is unknown
    fields, shape = packing.split_shaped(b"a\xff\xfd\xffb\xff\xfd\xffc", 4, 3)
    assert fields == ["a", "\udcfd", "b", "c"] and shape is None
    with pytest.raises(VifdoctorError, match=f"{ENV_PACKED_ROWS}=0"):
        packing.split_shaped(b"a\xff\xffb\xff\xfd\xffc", 3, 2)  # an 0xFF in a text column
    with pytest.raises(VifdoctorError, match="max_allowed_packet"):
        packing.split_shaped(None, 3, 2)


@pytest.mark.parametrize("hostile_db", ["icehouse", "ocata"], indirect=True)
@pytest.mark.parametrize("read_ahead", [False, True])
def test_vm_ports_of_a_known_shape_come_back_as_known_ports(
    hostile_db: str, monkeypatch: pytest.MonkeyPatch, read_ahead: bool
) -> None:
    """Issue 14, the Nova join: ``compute_bindings_known`` gives the VM ports in the order
    ``compute_bindings_by_device`` gives them (sorted by the server, or here beside a
    worker); a row of a known shape as a KnownPort with the caller's value, the row's
    own port and device ids, and the very Binding (with its shape) when asked."""
    monkeypatch.setenv(ENV_PACKED_ROWS, "1")
    monkeypatch.setattr(neutron_db, "SORT_RUN_ROWS", 3)  # spill runs, and merge them
    engine = sa.create_engine(hostile_db)
    try:
        with NeutronDatabase(engine) as source:
            streamed = list(source.compute_bindings_by_device(read_ahead=read_ahead))
            first = list(source.compute_bindings_known(EVERYTHING, {}, read_ahead=read_ahead))
            assert first == streamed and all(isinstance(b, Binding) for b in first)
            shaped = [b for b in first if isinstance(b, Binding) and b.shape is not None]
            known = {b.shape: f"verdict {n}" for n, b in enumerate(shaped) if n % 2}
            assert known and len(known) < len({b.shape for b in shaped})
            second = list(source.compute_bindings_known(EVERYTHING, known, read_ahead=read_ahead))
    finally:
        engine.dispose()
    hits = 0
    for got, want in zip(second, first, strict=True):
        assert isinstance(want, Binding)
        if want.shape in known:
            hits += 1
            assert isinstance(got, neutron_db.KnownPort)
            assert got.value == known[want.shape]
            assert (got.port_id, got.device_id) == (want.port_id, want.device_id)
            built = got.binding()
            assert built == want and built.shape == want.shape
        else:
            assert isinstance(got, Binding) and got == want and got.shape == want.shape
    assert hits >= len(known)


@pytest.mark.parametrize("hostile_db", ["ocata"], indirect=True)
def test_the_deeper_levels_are_read_once_per_opened_source(hostile_db: str) -> None:
    """Issue 14: the deeper binding levels are a full scan of their table; an audit with
    Nova streams the other ports, then the VM ports, from one source: one scan. A source
    opened again reads them again (a level added meanwhile names the driver)."""
    engine = sa.create_engine(hostile_db)
    scans: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "ml2_port_binding_levels.level >" in statement:
            scans.append(statement)

    try:
        with NeutronDatabase(engine) as source:
            others = list(source.other_bindings(EVERYTHING))
            vm_ports = list(source.compute_bindings_by_device(EVERYTHING))
            assert others and vm_ports and len(scans) == 1
            port = vm_ports[0]
            assert port.driver == "openvswitch"
        execute(
            hostile_db,
            "INSERT INTO ml2_port_binding_levels (port_id, host, level, driver, segment_id) "
            f"VALUES ('{port.port_id}', '{port.host}', 1, 'vendor_tor', NULL)",
        )
        with NeutronDatabase(engine) as source:
            again = [
                b
                for b in source.compute_bindings_by_device(EVERYTHING)
                if (b.port_id, b.host) == (port.port_id, port.host)
            ]
        assert [b.driver for b in again] == ["vendor_tor"] and len(scans) == 2
    finally:
        engine.dispose()


def _as_read(rows: list) -> list[tuple]:
    """A stream's items, comparable: KnownPorts by their value, ids and Binding."""
    return [
        (r.value, r.port_id, r.device_id, r.binding()) if isinstance(r, neutron_db.KnownPort) else r
        for r in rows
    ]


def _verdict(b: Binding) -> str:
    return repr(tuple(getattr(b, name) for name in VERDICT_FIELDS))


def _values_for(rows: list, pick: Callable[[Binding], bool]) -> dict[bytes, str]:
    """Values for the shapes of the picked rows, each named by its VERDICT_FIELDS (a
    shape's bytes depend on the read: each read gets its own table, as in the audit)."""
    return {b.shape: _verdict(b) for b in rows if isinstance(b, Binding) and b.shape and pick(b)}


def _ovs(b: Binding) -> bool:
    return b.vif_type == "ovs"


def _on_host_1(b: Binding) -> bool:
    return b.host.endswith("1")


@pytest.mark.parametrize("hostile_db", LAYOUTS, indirect=True)
def test_one_split_read_gives_what_the_two_reads_give(
    hostile_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: ``split_bindings_known`` reads every binding once: the other ports as
    ``bindings_known(others=True)`` gives them (in the server's order: compared as a
    set), the VM ports as ``compute_bindings_known(read_ahead=True)`` gives them, in the
    same order; which port is a VM port is the server's LIKE, as in the two reads (a
    device owner 'COMPUTE:nova' is one under MariaDB's collation)."""
    monkeypatch.setenv(ENV_PACKED_ROWS, "1")
    monkeypatch.setattr(neutron_db, "SORT_RUN_ROWS", 3)  # spill runs, and merge them
    monkeypatch.setattr(neutron_db, "SORT_BLOCK_ROWS", 2)
    execute(hostile_db, "UPDATE ports SET device_owner = 'COMPUTE:nova' WHERE id = 'port-02'")
    engine = sa.create_engine(hostile_db)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        with NeutronDatabase(engine) as source:
            plain = list(source.bindings_known(EVERYTHING, {}, others=True))
            known = _values_for(plain, _ovs)
            others = list(source.bindings_known(EVERYTHING, known, others=True))
            plain_vm = list(source.compute_bindings_known(EVERYTHING, {}, True))
            known_vm = _values_for(plain_vm, _on_host_1)
            vm = _as_read(list(source.compute_bindings_known(EVERYTHING, known_vm, True)))
            unread = source.split_bindings_known(EVERYTHING, {}, {})
            assert unread is not None
            with pytest.raises(RuntimeError, match="not all read"):
                next(unread[1])
            split = source.split_bindings_known(EVERYTHING, {}, {})
            assert split is not None
            one, two = split
            first = list(one)
            first_vm = list(two)
            known, known_vm = _values_for(first, _ovs), _values_for(first_vm, _on_host_1)
            del statements[:]
            one, two = source.split_bindings_known(EVERYTHING, known, known_vm) or split
            split_others = list(one)
            split_vm = _as_read(list(two))
    finally:
        engine.dispose()
    assert sum("concat_ws" in s.lower() for s in statements) == 1  # one read
    assert sorted(map(repr, first)) == sorted(map(repr, plain))
    assert first_vm == plain_vm
    assert sorted(map(repr, split_others)) == sorted(map(repr, others))
    assert split_vm == vm
    assert any(isinstance(r, str) for r in split_others)  # known shapes came as values
    assert any(isinstance(r, tuple) for r in split_vm)
    # the LIKE's answer, not startswith's
    assert "port-02" in {b.port_id for b in first_vm if isinstance(b, Binding)}


@pytest.mark.parametrize("hostile_db", ["ocata"], indirect=True)
def test_no_split_read_where_a_deeper_level_names_the_driver(
    hostile_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hierarchical binding gives rows no shape: the caller reads twice, as before."""
    monkeypatch.setenv(ENV_PACKED_ROWS, "1")
    engine = sa.create_engine(hostile_db)
    try:
        with NeutronDatabase(engine) as source:
            assert source.split_bindings_known(EVERYTHING, {}, {}) is not None
        execute(
            hostile_db,
            "INSERT INTO ml2_port_binding_levels (port_id, host, level, driver, segment_id) "
            "SELECT port_id, host, 1, 'vendor_tor', NULL FROM ml2_port_bindings LIMIT 1",
        )
        with NeutronDatabase(engine) as source:
            assert source.split_bindings_known(EVERYTHING, {}, {}) is None
        monkeypatch.setenv(ENV_PACKED_ROWS, "0")
        execute(hostile_db, "DELETE FROM ml2_port_binding_levels WHERE level = 1")
        with NeutronDatabase(engine) as source:  # rows not packed
            assert source.split_bindings_known(EVERYTHING, {}, {}) is None
    finally:
        engine.dispose()
