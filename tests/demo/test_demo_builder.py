"""The demo schemas and builder write what a real Neutron database would hold.

Everything is read back with plain SQL, never through the builder, so a
builder that wrote the wrong table or column (or reformatted a string) fails.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
    agent_id,
    write_cloud,
)
from vifdoctor.demo.incident import (
    EMPTY_DETAIL_PORT_IDS,
    INCIDENT_PORT_IDS,
    MALFORMED_DETAILS,
    MALFORMED_PORT_ID,
    incident_cloud,
    install_incident,
)
from vifdoctor.demo.schemas import LAYOUTS, build_metadata, create_schema

NET = "11111111-1111-4111-8111-111111111111"
SEG = "22222222-2222-4222-8222-222222222222"
P_OVS = "33333333-3333-4333-8333-333333333301"
P_FAILED = "33333333-3333-4333-8333-333333333302"
P_LB = "33333333-3333-4333-8333-333333333303"
PROJECT = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
HYBRID = '{"port_filter": true, "ovs_hybrid_plug": true}'

# The eight ports of seed/incident-en.md, copied from its SELECT output.
SEED_PORTS = {
    "0cc863d2-adf4-49b7-9c28-1d0cf0ffd7d4": "",
    "2f2782dd-cb6b-4a37-a384-8c4883e7243d": "",
    "30cb2d41-62df-44db-9faf-d6638438e71c": "",
    "901b564b-5250-4215-bcad-2630b7701a85": "",
    "c157a2bb-0a42-4e2a-8354-ec0560d9e28b": "",
    "c5ab2b09-b8cb-4381-83d4-a14a7207fdeb": HYBRID,
    "c8e328fd-0279-46ff-ba45-177b95b97103": "",
    "e14dbfd5-670e-405f-aaec-3796d1df1c34": HYBRID,
}


def small_cloud(extra_inactive: bool = False) -> CloudSpec:
    """Three ports covering bound OVS, binding_failed (no driver) and linuxbridge."""
    ovs = BindingSpec(host="compute000", vif_type="ovs", vif_details=HYBRID, segment_id=SEG)
    extra = (
        [
            BindingSpec(
                host="compute001", vif_type="ovs", vif_details="", status="INACTIVE", segment_id=SEG
            )
        ]
        if extra_inactive
        else []
    )
    return CloudSpec(
        networks=[
            NetworkSpec(
                id=NET,
                name="net0",
                project_id=PROJECT,
                segments=[SegmentSpec(id=SEG, segmentation_id=1234)],
            )
        ],
        agents=[
            AgentSpec(
                host="compute000",
                agent_type="Open vSwitch agent",
                configurations={"tunnel_types": ["vxlan"]},
            ),
            AgentSpec(host="compute001", agent_type="Open vSwitch agent", alive=False),
            AgentSpec(
                host="compute-lb000",
                agent_type="Linux bridge agent",
                configurations='{"interface_mappings": {}, not json',
            ),
        ],
        ports=[
            PortSpec(
                id=P_OVS,
                network_id=NET,
                device_owner="compute:nova",
                device_id="44444444-4444-4444-8444-444444444401",
                project_id=PROJECT,
                binding=ovs,
                extra_bindings=extra,
            ),
            PortSpec(
                id=P_FAILED,
                network_id=NET,
                device_owner="compute:nova",
                device_id="44444444-4444-4444-8444-444444444402",
                project_id=PROJECT,
                binding=BindingSpec(host="compute001", vif_type="binding_failed", driver=None),
            ),
            PortSpec(
                id=P_LB,
                network_id=NET,
                device_owner="compute:nova",
                device_id="44444444-4444-4444-8444-444444444403",
                project_id=PROJECT,
                binding=BindingSpec(
                    host="compute-lb000",
                    vif_type="bridge",
                    vif_details='{"port_filter": true}',
                    driver="linuxbridge",
                    segment_id=SEG,
                ),
            ),
        ],
    )


def q(engine: sa.Engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def columns(engine: sa.Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def as_dt(value: datetime | str) -> datetime:
    """SQLite hands DATETIME columns back as text through plain SQL."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def naive_utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_written_and_read_back(db_url: str, layout: str) -> None:
    engine = sa.create_engine(db_url)
    create_schema(engine, layout)
    write_cloud(engine, small_cloud())
    tables = set(sa.inspect(engine).get_table_names())

    owner = "tenant_id" if layout in ("icehouse", "kilo") else "project_id"
    other = "project_id" if owner == "tenant_id" else "tenant_id"
    for t in ("ports", "networks"):
        assert owner in columns(engine, t) and other not in columns(engine, t)
    assert q(engine, f"SELECT {owner} FROM ports WHERE id = :p", p=P_OVS) == [(PROJECT,)]

    seg_table = "ml2_network_segments" if layout in ("icehouse", "kilo") else "networksegments"
    assert seg_table in tables
    assert q(engine, f"SELECT network_id, network_type, segmentation_id FROM {seg_table}") == [
        (NET, "vxlan", 1234)
    ]

    assert q(
        engine,
        "SELECT host, vif_type, vif_details, vnic_type, profile "
        "FROM ml2_port_bindings WHERE port_id = :p",
        p=P_OVS,
    ) == [("compute000", "ovs", HYBRID, "normal", "")]

    if layout == "icehouse":
        assert "ml2_port_binding_levels" not in tables
        rows = q(engine, "SELECT port_id, driver, segment FROM ml2_port_bindings ORDER BY port_id")
        assert rows == [
            (P_OVS, "openvswitch", SEG),
            (P_FAILED, None, None),
            (P_LB, "linuxbridge", SEG),
        ]
    else:
        assert {"driver", "segment"}.isdisjoint(columns(engine, "ml2_port_bindings"))
        rows = q(
            engine,
            "SELECT port_id, host, level, driver, segment_id "
            "FROM ml2_port_binding_levels ORDER BY port_id",
        )
        # binding_failed: no mechanism driver bound it, so no level row.
        assert rows == [
            (P_OVS, "compute000", 0, "openvswitch", SEG),
            (P_LB, "compute-lb000", 0, "linuxbridge", SEG),
        ]

    if layout == "ocata":
        assert q(engine, "SELECT DISTINCT status FROM ml2_port_bindings") == [("ACTIVE",)]
        pk = sa.inspect(engine).get_pk_constraint("ml2_port_bindings")["constrained_columns"]
        assert sorted(pk) == ["host", "port_id"]
    else:
        assert "status" not in columns(engine, "ml2_port_bindings")

    if layout in ("newton", "ocata"):
        rows = q(
            engine,
            "SELECT s.resource_type FROM ports p JOIN standardattributes s "
            "ON s.id = p.standard_attr_id ORDER BY p.id",
        )
        assert rows == [("ports",)] * 3
        assert q(
            engine,
            "SELECT s.resource_type FROM networksegments g JOIN "
            "standardattributes s ON s.id = g.standard_attr_id",
        ) == [("networksegments",)]
        assert "ml2_distributed_port_bindings" in tables
    else:
        assert "standardattributes" not in tables


@pytest.mark.parametrize("layout", LAYOUTS)
def test_agents_heartbeat_and_configurations(db_url: str, layout: str) -> None:
    engine = sa.create_engine(db_url)
    create_schema(engine, layout)
    before = naive_utcnow().replace(microsecond=0)
    write_cloud(engine, small_cloud())
    rows = {
        r[0]: r[1:]
        for r in q(
            engine,
            "SELECT host, heartbeat_timestamp, configurations, admin_state_up, id FROM agents",
        )
    }
    alive_beat, conf, admin, aid = rows["compute000"]
    alive_beat = as_dt(alive_beat)
    assert alive_beat.tzinfo is None
    assert before - timedelta(seconds=1) <= alive_beat <= naive_utcnow() + timedelta(seconds=1)
    assert json.loads(conf) == {"tunnel_types": ["vxlan"]}
    assert bool(admin) is True
    assert aid == agent_id(AgentSpec(host="compute000", agent_type="Open vSwitch agent"))
    dead_beat = as_dt(rows["compute001"][0])
    assert timedelta(minutes=59) <= alive_beat - dead_beat <= timedelta(minutes=61)
    # A str configuration is raw text: stored as given, even when it is not JSON.
    assert rows["compute-lb000"][1] == '{"interface_mappings": {}, not json'


def test_explicit_heartbeat_kept(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    create_schema(engine, "ocata")
    beat = datetime(2014, 5, 1, 12, 30, 0)
    write_cloud(
        engine,
        CloudSpec(
            [], [AgentSpec(host="h", agent_type="L3 agent", heartbeat_at=beat, alive=True)], []
        ),
    )
    [(stored, topic, binary)] = q(engine, "SELECT heartbeat_timestamp, topic, binary FROM agents")
    assert (as_dt(stored), topic, binary) == (beat, "l3_agent", "neutron-l3-agent")


@pytest.mark.parametrize("layout", ["icehouse", "kilo", "newton"])
def test_pre_ocata_layouts_refuse_second_bindings(sqlite_url: str, layout: str) -> None:
    engine = sa.create_engine(sqlite_url)
    create_schema(engine, layout)
    with pytest.raises(ValueError, match="Ocata"):
        write_cloud(engine, small_cloud(extra_inactive=True))
    # One transaction: nothing of the refused cloud is left behind.
    assert q(engine, "SELECT COUNT(*) FROM ports") == [(0,)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_on_postgresql(postgresql_url: str, layout: str) -> None:
    engine = sa.create_engine(postgresql_url)
    create_schema(engine, layout)
    write_cloud(engine, small_cloud(extra_inactive=layout == "ocata"))
    assert q(
        engine,
        "SELECT vif_details FROM ml2_port_bindings WHERE port_id = :p AND host = 'compute000'",
        p=P_OVS,
    ) == [(HYBRID,)]
    if layout in ("newton", "ocata"):
        # Explicit standardattributes ids must not leave the sequence behind.
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO standardattributes (resource_type, "
                    "revision_number) VALUES ('ports', 0)"
                )
            )


def _check_inactive_duplicates(engine: sa.Engine) -> None:
    write_cloud(engine, small_cloud(extra_inactive=True))
    assert q(
        engine,
        "SELECT host, status, vif_details FROM ml2_port_bindings WHERE port_id = :p ORDER BY host",
        p=P_OVS,
    ) == [("compute000", "ACTIVE", HYBRID), ("compute001", "INACTIVE", "")]
    assert q(
        engine,
        "SELECT host, driver, segment_id FROM ml2_port_binding_levels "
        "WHERE port_id = :p AND level = 0 ORDER BY host",
        p=P_OVS,
    ) == [("compute000", "openvswitch", SEG), ("compute001", "openvswitch", SEG)]
    assert q(engine, "SELECT project_id, ip_allocation FROM ports WHERE id = :p", p=P_OVS) == [
        (PROJECT, "immediate")
    ]
    # 1 network + 1 segment + 3 ports; columns left to their server defaults.
    assert q(
        engine,
        "SELECT resource_type, COUNT(*) FROM standardattributes "
        "GROUP BY resource_type ORDER BY resource_type",
    ) == [("networks", 1), ("networksegments", 1), ("ports", 3)]
    assert q(engine, "SELECT mtu FROM networks") == [(1500,)]
    assert q(
        engine,
        "SELECT COUNT(*) FROM agents WHERE availability_zone IS NULL "
        "AND resources_synced IS NOT NULL",
    ) == [(3,)]


def test_unknown_not_null_columns_get_fillers(db_url: str) -> None:
    """A schema newer than the builder (extra NOT NULL columns) still accepts a cloud."""
    engine = sa.create_engine(db_url)
    md = build_metadata("ocata")
    sa.Table(
        "ports",
        md,
        sa.Column("x_text", sa.String(20), nullable=False),
        sa.Column("x_int", sa.Integer, nullable=False),
        sa.Column("x_flag", sa.Boolean, nullable=False),
        sa.Column("x_when", sa.DateTime, nullable=False),
        sa.Column("x_kind", sa.Enum("alpha", "beta", name="x_kind"), nullable=False),
        extend_existing=True,
    )
    md.create_all(engine)
    write_cloud(engine, small_cloud())
    rows = q(engine, "SELECT x_text, x_int, x_flag, x_kind FROM ports")
    # SQLite reflects an ENUM as plain VARCHAR (no CHECK either), so '' is all it can get.
    kind = "" if engine.dialect.name == "sqlite" else "alpha"
    assert [(t, i, bool(f), k) for t, i, f, k in rows] == [("", 0, False, kind)] * 3
    assert all(when is not None for (when,) in q(engine, "SELECT x_when FROM ports"))


@pytest.mark.parametrize("fixture", ["neutron29_mariadb_url", "neutron29_sqlite_url"])
def test_real_neutron29_schema_accepts_inactive_duplicates(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    _check_inactive_duplicates(sa.create_engine(request.getfixturevalue(fixture)))


def test_real_neutron29_postgresql(neutron29_postgresql_url: str) -> None:
    engine = sa.create_engine(neutron29_postgresql_url)
    _check_inactive_duplicates(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO standardattributes (resource_type, revision_number) "
                "VALUES ('ports', 0)"
            )
        )


def test_real_neutron29_many_ports_one_network(neutron29_sqlite_url: str) -> None:
    """Generated MACs stay unique per network (uniq_ports0network_id0mac_address)."""
    engine = sa.create_engine(neutron29_sqlite_url)
    cloud = small_cloud()
    cloud.ports = [
        PortSpec(
            id=f"55555555-5555-4555-8555-{i:012d}",
            network_id=NET,
            device_owner="compute:nova",
            device_id=f"d{i}",
            project_id=PROJECT,
            binding=BindingSpec(host=f"c{i % 7}", vif_type="ovs", segment_id=SEG),
        )
        for i in range(6000)
    ]
    write_cloud(engine, cloud)
    assert q(engine, "SELECT COUNT(DISTINCT mac_address), COUNT(*) FROM ports") == [(6000, 6000)]
    assert q(engine, "SELECT COUNT(*) FROM ports WHERE mac_address NOT LIKE 'fa:16:3e:%'") == [(0,)]


def test_incident_cloud_has_the_seed_ports() -> None:
    cloud = incident_cloud()
    assert list(INCIDENT_PORT_IDS) == list(SEED_PORTS)
    assert set(EMPTY_DETAIL_PORT_IDS) == {p for p, d in SEED_PORTS.items() if d == ""}
    assert len(EMPTY_DETAIL_PORT_IDS) == 6
    by_id = {p.id: p for p in cloud.ports}
    assert len(by_id) == len(cloud.ports)
    for pid, details in SEED_PORTS.items():
        b = by_id[pid].binding
        assert b is not None
        assert (b.vif_type, b.driver, b.vnic_type, b.vif_details) == (
            "ovs",
            "openvswitch",
            "normal",
            details,
        )
        assert by_id[pid].device_owner == "compute:nova"
    seed_devices = {by_id[p].device_id for p in SEED_PORTS}
    assert len(seed_devices) == 8
    assert {by_id[p].binding.host for p in SEED_PORTS} == {"compute000", "compute001", "compute002"}
    # Icehouse agents never reported ovs_hybrid_plug.
    for a in cloud.agents:
        assert isinstance(a.configurations, dict)
        assert "ovs_hybrid_plug" not in a.configurations
    assert incident_cloud() == cloud


def test_incident_written_to_icehouse(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    install_incident(engine)
    rows = dict(q(engine, "SELECT port_id, vif_details FROM ml2_port_bindings"))
    for pid, details in SEED_PORTS.items():
        assert rows[pid] == details
    assert q(
        engine,
        "SELECT host, vif_type, driver, segment, vnic_type, vif_details, profile "
        "FROM ml2_port_bindings WHERE port_id = :p",
        p="e14dbfd5-670e-405f-aaec-3796d1df1c34",
    ) == [
        (
            "compute000",
            "ovs",
            "openvswitch",
            "d3685732-365f-4a5b-baed-8adb7b2decf3",
            "normal",
            HYBRID,
            "",
        )
    ]
    assert q(
        engine,
        "SELECT vif_type, driver, vif_details FROM ml2_port_bindings b "
        "JOIN ports p ON p.id = b.port_id WHERE p.device_owner = 'network:dhcp'",
    ) == [("ovs", "openvswitch", HYBRID)]
    assert q(
        engine,
        "SELECT vif_type, vif_details, driver FROM ml2_port_bindings WHERE host = 'compute-lb000'",
    ) == [("bridge", '{"port_filter": true}', "linuxbridge")]
    assert q(
        engine, "SELECT host, vif_details FROM ml2_port_bindings WHERE vif_type = 'binding_failed'"
    ) == [("compute001", "")]
    assert q(
        engine, "SELECT agent_type FROM agents WHERE host = 'network000' ORDER BY agent_type"
    ) == [("DHCP agent",), ("L3 agent",), ("Open vSwitch agent",)]
    assert q(engine, "SELECT version_num FROM alembic_version") == [("icehouse",)]


def test_raw_strings_stored_byte_for_byte(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    create_schema(engine, "ocata")
    odd = [
        MALFORMED_DETAILS,
        '{"ovs_hybrid_plug": true,   "port_filter":true}',  # key order, spacing
        '{"port_filter": true, "ovs_hybrid_plug": null}',
        ' {"note": "caf\u00e9 \u2603"} ',  # non-ASCII, leading/trailing spaces
        "{}",
    ]
    cloud = small_cloud()
    cloud.ports = [
        PortSpec(
            id=f"66666666-6666-4666-8666-{i:012d}",
            network_id=NET,
            device_owner="compute:nova",
            device_id=f"vm{i}",
            project_id=PROJECT,
            binding=BindingSpec(
                host="compute000", vif_type="ovs", vif_details=d, profile=d, segment_id=SEG
            ),
        )
        for i, d in enumerate(odd)
    ]
    write_cloud(engine, cloud)
    rows = q(engine, "SELECT vif_details, profile FROM ml2_port_bindings ORDER BY port_id")
    assert rows == [(d, d) for d in odd]


def test_incident_malformed_row_kept(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    install_incident(engine)
    [(details,)] = q(
        engine, "SELECT vif_details FROM ml2_port_bindings WHERE port_id = :p", p=MALFORMED_PORT_ID
    )
    assert details == MALFORMED_DETAILS
    with pytest.raises(json.JSONDecodeError):
        json.loads(details)
