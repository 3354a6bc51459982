"""The audit with Nova, end to end through the command line, on real schemas.

Neutron rows come from the demo builder, Nova rows from ``write_instances`` with
caches built by ``vif_entry`` (what nova 34.0.0 caches), on nova 34.0.0's real cell
and API schemas (MariaDB) and on the Icehouse-era layout (SQLite and MariaDB).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from testkit import dbfixtures
from testkit.cells import CellMappingSpec
from testkit.cloudfactory import execute, run_cli
from testkit.novakit import (
    HYBRID,
    cli_json,
    codes_by_device,
    dbname_of,
    mariadb_reader,
    one_error_line,
    pairs,
    port_id,
    vif,
    vm_port,
    vm_uuid,
    write_neutron,
    write_nova,
)

from vifdoctor.demo import incident
from vifdoctor.demo.nova import (
    CELL0_UUID,
    InstanceSpec,
    create_nova_schema,
)
from vifdoctor.sources.neutron_db import NeutronDatabase

C1, C2 = "compute1", "compute2"
MALFORMED = '[{"id": "' + port_id(90) + '", "details": {"ovs_hy'


# ----------------------------------------------------------------------------- scenario


@dataclass
class Scenario:
    """Neutron ports, Nova instances, and the Nova findings they must give."""

    ports: list = field(default_factory=list)
    instances: list = field(default_factory=list)
    expected: set = field(default_factory=set)  # (code, device_id, port_id)
    clean: set = field(default_factory=set)  # instances that must have no Nova finding


def faults(prefix: str = "1") -> Scenario:
    """One instance per fault VD201-VD205, plus clean ones next to deleted look-alikes."""
    s = Scenario()
    u = [vm_uuid(n, prefix) for n in range(12)]
    p = [port_id(int(prefix, 16) * 100 + n) for n in range(12)]
    ghost = port_id(int(prefix, 16) * 100 + 99)

    def add(uuid, host, ports, network_info, **kw):
        s.instances.append(
            InstanceSpec(
                uuid=uuid,
                host=host,
                display_name=kw.pop("display_name", f"vm-{uuid[:8]}"),
                network_info=network_info,
                **kw,
            )
        )

    # clean, hybrid on both sides
    s.ports.append(vm_port(p[0], u[0], C1))
    add(u[0], C1, [p[0]], [vif(p[0], HYBRID)], display_name="web")
    s.clean.add(u[0])
    # VD201: Neutron hybrid (repaired), Nova still caches {}
    s.ports.append(vm_port(p[1], u[1], C1))
    add(u[1], C1, [p[1]], [vif(p[1], {})])
    s.expected.add(("VD201", u[1], p[1]))
    # VD202: bound to compute1, Nova has it on compute2, no move under way
    s.ports.append(vm_port(p[2], u[2], C1))
    add(u[2], C2, [p[2]], [vif(p[2], HYBRID)])
    s.expected.add(("VD202", u[2], p[2]))
    # the same, but migrating: no finding
    s.ports.append(vm_port(p[3], u[3], C1))
    add(u[3], C2, [p[3]], [vif(p[3], HYBRID)], task_state="migrating")
    s.clean.add(u[3])
    # VD203 one way: a Neutron port missing from the cache
    s.ports += [vm_port(p[4], u[4], C1), vm_port(p[5], u[4], C1)]
    add(u[4], C1, [p[4]], [vif(p[4], HYBRID)])
    s.expected.add(("VD203", u[4], p[5]))
    # VD203 the other way: a cached port Neutron does not have
    s.ports.append(vm_port(p[6], u[6], C1))
    add(u[6], C1, [p[6]], [vif(p[6], HYBRID), vif(ghost, HYBRID)])
    s.expected.add(("VD203", u[6], ghost))
    # VD204: the port's instance is unknown to Nova
    s.ports.append(vm_port(p[7], u[7], C2))
    s.expected.add(("VD204", u[7], p[7]))
    # VD204: the port's only instance row is soft-deleted (deleted = id)
    s.ports.append(vm_port(p[8], u[8], C2))
    add(
        u[8],
        C2,
        [p[8]],
        [vif(p[8], HYBRID)],
        vm_state="deleted",
        power_state=0,
        deleted=True,
        display_name="web",
    )
    s.expected.add(("VD204", u[8], p[8]))
    # VD205: the cache does not parse
    s.ports.append(vm_port(p[9], u[9], C2))
    add(u[9], C2, [p[9]], MALFORMED)
    s.expected.add(("VD205", u[9], ""))
    # deleted instances named like the clean one, on its host, caching its port: no effect
    add(
        u[10],
        C1,
        [p[0]],
        [vif(p[0], {})],
        vm_state="deleted",
        power_state=0,
        deleted=True,
        display_name="web",
    )
    add(
        u[11],
        C1,
        [],
        [vif(ghost, {})],
        vm_state="deleted",
        power_state=0,
        deleted=True,
        display_name="web",
    )
    return s


def hosts_of(s: Scenario) -> list[str]:
    return [C1, C2]


def check_faults(doc: dict, s: Scenario) -> None:
    assert pairs(doc) == s.expected
    found = codes_by_device(doc)
    for uuid in s.clean:
        assert not {c for c in found.get(uuid, set()) if c.startswith("VD2")}, uuid
    by_device = {i["device_id"]: i for i in doc["instances"]}
    # The soft-deleted look-alikes are never reported, nor mistaken for live instances.
    deleted = {i.uuid for i in s.instances if i.deleted}
    reported_deleted = {
        d for d, i in by_device.items() if i["instance"] and i["instance"]["deleted"]
    }
    assert reported_deleted == {d for (c, d, _) in s.expected if c == "VD204"} & deleted
    for d, inst in by_device.items():
        if d in deleted:
            assert inst["codes"] == ["VD204"]
            assert [st["action"] for st in inst["steps"]] == ["check-orphan"]
    assert doc["summary"]["instances_read"] == len(s.instances)


def audit(neutron: str, *extra: str) -> dict:
    _, doc, _ = cli_json("audit", "--neutron-db", neutron, *extra)
    return doc


# ------------------------------------------------------------------ real nova 34 schema


@pytest.mark.nova_real
def test_faults_on_nova34_cell_and_neutron29(
    nova34_cell_mariadb_url: str, neutron29_mariadb_url: str
) -> None:
    s = faults()
    write_neutron(neutron29_mariadb_url, s.ports, hosts_of(s), layout=None)
    write_nova(nova34_cell_mariadb_url, s.instances)
    doc = audit(neutron29_mariadb_url, "--nova-db", nova34_cell_mariadb_url)
    check_faults(doc, s)
    assert doc["nova"] == [
        {
            "cell": dbname_of(nova34_cell_mariadb_url),
            "url": nova34_cell_mariadb_url,
            "dialect": "mysql",
        }
    ]
    # The audit writes nothing to Nova.
    engine = sa.create_engine(nova34_cell_mariadb_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM instances")).scalar() == len(
                s.instances
            )
    finally:
        engine.dispose()


# ------------------------------------------------------------------ Icehouse-era Nova


def test_faults_on_icehouse_nova(nova_db_url: str, tmp_path: Path) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    s = faults()
    write_neutron(neutron, s.ports, hosts_of(s))
    write_nova(nova_db_url, s.instances, schema=create_nova_schema)
    check_faults(audit(neutron, "--nova-db", nova_db_url), s)


def test_soft_deleted_row_id_is_never_taken_for_live(nova_db_url: str, tmp_path: Path) -> None:
    """deleted = id (1, 2, ...): any non-zero value is gone, however small."""
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    first = vm_uuid(0, "a")
    s = Scenario(
        ports=[vm_port(port_id(1), first, C1)],
        instances=[
            InstanceSpec(
                uuid=first,
                host=C1,
                vm_state="deleted",
                power_state=0,
                deleted=True,
                network_info=[vif(port_id(1), HYBRID)],
            )
        ],
    )
    write_neutron(neutron, s.ports, [C1])
    write_nova(nova_db_url, s.instances, schema=create_nova_schema)
    engine = sa.create_engine(nova_db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id, deleted FROM instances")).all() == [(1, 1)]
    finally:
        engine.dispose()
    doc = audit(neutron, "--nova-db", nova_db_url)
    assert pairs(doc) == {("VD204", first, port_id(1))}
    assert "soft-deleted" in doc["findings"][0]["message"]


# ------------------------------------------------------------------ two cells


def _interleaved_cells() -> tuple[Scenario, Scenario]:
    """Cell 1 holds uuids 1..., 3..., 5...; cell 2 holds 2..., 4..., 6...: they interleave.

    Every instance has a stale cache (VD201), so each must be joined with its port.
    """
    cells = (Scenario(), Scenario())
    for n, prefix in enumerate("123456"):
        s = cells[n % 2]
        for k in range(3):
            uuid = vm_uuid(k, prefix)
            port = port_id(n * 10 + k)
            s.ports.append(vm_port(port, uuid, C1 if k % 2 else C2))
            s.instances.append(
                InstanceSpec(uuid=uuid, host=C1 if k % 2 else C2, network_info=[vif(port, {})])
            )
            s.expected.add(("VD201", uuid, port))
    return cells


def _check_cells(doc: dict, cells: tuple[Scenario, Scenario], names: tuple[str, str]) -> None:
    expected = cells[0].expected | cells[1].expected
    assert pairs(doc) == expected  # no VD204: every port found its instance in some cell
    devices = [i["device_id"] for i in doc["instances"]]
    assert devices == sorted(devices) and len(devices) == 18
    for s, name in zip(cells, names, strict=True):
        for spec in s.instances:
            inst = next(i for i in doc["instances"] if i["device_id"] == spec.uuid)
            assert inst["instance"]["cell"] == name
    assert doc["summary"]["instances_read"] == 18


def test_two_cells_given_as_nova_db(tmp_path: Path, mariadb_url: str) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    cell1 = f"sqlite:///{tmp_path / 'nova_cell1.sqlite'}"
    cells = _interleaved_cells()
    write_neutron(neutron, cells[0].ports + cells[1].ports, [C1, C2])
    write_nova(cell1, cells[0].instances, schema=create_nova_schema)
    write_nova(mariadb_url, cells[1].instances, schema=create_nova_schema)
    doc = audit(neutron, "--nova-db", cell1, "--nova-db", mariadb_url)
    _check_cells(doc, cells, ("nova_cell1", dbname_of(mariadb_url)))
    assert [c["cell"] for c in doc["nova"]] == ["nova_cell1", dbname_of(mariadb_url)]


def test_instance_in_two_cells_the_live_row_wins(tmp_path: Path) -> None:
    """What a cross-cell move leaves behind: the old cell's row soft-deleted."""
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    cell1, cell2 = (f"sqlite:///{tmp_path / f'cell{n}.sqlite'}" for n in (1, 2))
    moved = vm_uuid(1, "5")
    write_neutron(neutron, [vm_port(port_id(1), moved, C2)], [C1, C2])
    write_nova(
        cell1,
        [
            InstanceSpec(
                uuid=moved,
                host=C1,
                vm_state="deleted",
                power_state=0,
                deleted=True,
                network_info=[vif(port_id(1), {})],
            )
        ],
        schema=create_nova_schema,
    )
    write_nova(
        cell2,
        [InstanceSpec(uuid=moved, host=C2, network_info=[vif(port_id(1), HYBRID)])],
        schema=create_nova_schema,
    )
    for order in ((cell1, cell2), (cell2, cell1)):
        doc = audit(neutron, "--nova-db", order[0], "--nova-db", order[1])
        assert pairs(doc) == set()
        assert doc["instances"] == []


def _moved_without_port(tmp_path: Path) -> tuple[str, str, str, str]:
    """A uuid soft-deleted in cell1, live in cell2; Neutron has no port for it."""
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    cell1, cell2 = (f"sqlite:///{tmp_path / f'cell{n}.sqlite'}" for n in (1, 2))
    moved = vm_uuid(1, "5")
    write_neutron(neutron, [], [C1, C2])
    write_nova(
        cell1,
        [
            InstanceSpec(
                uuid=moved,
                host=C1,
                vm_state="deleted",
                power_state=0,
                deleted=True,
                network_info=[vif(port_id(1), {})],
            )
        ],
        schema=create_nova_schema,
    )
    write_nova(
        cell2,
        [InstanceSpec(uuid=moved, host=C2, network_info=[vif(port_id(1), HYBRID)])],
        schema=create_nova_schema,
    )
    return neutron, cell1, cell2, moved


def test_instance_in_two_cells_without_ports_is_judged_once(tmp_path: Path) -> None:
    neutron, cell1, cell2, moved = _moved_without_port(tmp_path)
    doc = audit(neutron, "--nova-db", cell1, "--nova-db", cell2)
    assert pairs(doc) == {("VD203", moved, port_id(1))}  # only from the live row
    assert [i["instance"]["cell"] for i in doc["instances"]] == ["cell2"]


def test_instance_in_two_cells_without_ports_is_read_once(tmp_path: Path) -> None:
    neutron, cell1, cell2, _ = _moved_without_port(tmp_path)
    doc = audit(neutron, "--nova-db", cell1, "--nova-db", cell2)
    assert doc["summary"]["instances_read"] == 1


@pytest.mark.nova_real
def test_two_cells_through_the_api_database(
    tmp_path: Path, nova34_api_mariadb_url: str, nova34_cell_mariadb_url: str
) -> None:
    """cell_mappings: cell0 skipped, cell1 a plain URL, cell2 templated from [database]."""
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    cells = _interleaved_cells()
    write_neutron(neutron, cells[0].ports + cells[1].ports, [C1, C2])
    write_nova(nova34_cell_mariadb_url, cells[0].instances)
    with dbfixtures.mariadb_database() as cell2_db:
        cell2_url = dbfixtures.mariadb_url(cell2_db)
        write_nova(cell2_url, cells[1].instances, schema=create_nova_schema)
        api_db, cell1_db = dbname_of(nova34_api_mariadb_url), dbname_of(nova34_cell_mariadb_url)
        with mariadb_reader(api_db, cell1_db, cell2_db) as (user, password):
            host = f"{dbfixtures.MARIADB_HOST}:{dbfixtures.MARIADB_PORT}"
            engine = sa.create_engine(nova34_api_mariadb_url)
            try:
                from testkit.cells import write_cell_mappings

                write_cell_mappings(
                    engine,
                    [
                        # cell0 points at a database that does not exist: it must not be read
                        CellMappingSpec(
                            uuid=CELL0_UUID,
                            name="cell0",
                            database_connection=(
                                f"mysql+pymysql://{user}:{password}@{host}/no_such_cell0"
                            ),
                        ),
                        CellMappingSpec(
                            uuid="5c6d2a7e-1f0b-4e8d-9a3c-2b1e0f9d8c7a",
                            name="cell1",
                            database_connection=(
                                f"mysql+pymysql://{user}:{password}@{host}/"
                                f"{cell1_db}?charset=utf8mb4"
                            ),
                        ),
                        CellMappingSpec(
                            uuid="6d7e3b8f-2a1c-4f9e-8b4d-3c2f1a0e9d8b",
                            name="cell2",
                            database_connection=(
                                f"mysql+pymysql://{{username}}:{{password}}@{{hostname}}/{cell2_db}"
                            ),
                        ),
                    ],
                )
            finally:
                engine.dispose()
            conf = tmp_path / "nova.conf"
            conf.write_text(
                "[api_database]\n"
                f"connection = mysql+pymysql://{user}:{password}@{host}/{api_db}\n"
                "[database]\n"
                f"connection = mysql+pymysql://{user}:{password}@{host}/nova_cell_local\n"
            )
            code, out, err = run_cli(
                ["audit", "--neutron-db", neutron, "--nova-config-file", str(conf), "-f", "json"]
            )
            assert code == 1, err
            assert password not in out and password not in err
            doc = json.loads(out)
            _check_cells(doc, cells, ("cell1", "cell2"))
            assert [c["cell"] for c in doc["nova"]] == ["cell1", "cell2"]
            assert all("***" in c["url"] for c in doc["nova"])
            assert doc["nova"][1]["url"].endswith(f"/{cell2_db}")

            # The same through --nova-api-db (the templated cell still needs [database]).
            code, out, err = run_cli(
                [
                    "audit",
                    "--neutron-db",
                    neutron,
                    "-f",
                    "json",
                    "--nova-api-db",
                    f"mysql+pymysql://{user}:{password}@{host}/{api_db}",
                    "--nova-config-file",
                    str(conf),
                ]
            )
            assert code == 1, err
            _check_cells(json.loads(out), cells, ("cell1", "cell2"))
            assert password not in out and password not in err

            # The table never shows it either.
            code, out, err = run_cli(
                ["audit", "--neutron-db", neutron, "--nova-config-file", str(conf)]
            )
            assert code == 1 and password not in out + err

            # Without [database] connection the template cannot be filled: exit 3, one line.
            code, out, err = run_cli(
                [
                    "audit",
                    "--neutron-db",
                    neutron,
                    "--nova-api-db",
                    f"mysql+pymysql://{user}:{password}@{host}/{api_db}",
                ],
                debug=False,
            )
            assert code == 3 and out == ""
            line = one_error_line(err)
            assert "template" in line and "--nova-config-file" in line
            assert password not in err


def test_templated_cell_without_config_exits_3(tmp_path: Path) -> None:
    api = f"sqlite:///{tmp_path / 'nova_api.sqlite'}"
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    write_neutron(neutron, [], [C1])
    execute(
        api,
        "CREATE TABLE cell_mappings (id INTEGER PRIMARY KEY, uuid VARCHAR(36), "
        "name VARCHAR(255), transport_url TEXT, database_connection TEXT, "
        "disabled BOOLEAN)",
        f"INSERT INTO cell_mappings VALUES (1, '{CELL0_UUID}', 'cell0', 'none:///', "
        "'sqlite:////nonexistent/cell0.sqlite', 0)",
        "INSERT INTO cell_mappings VALUES (2, 'c1', 'cell1', 'none:///', "
        "'mysql+pymysql://{username}:{password}@{hostname}/nova_cell1', 0)",
    )
    code, out, err = run_cli(["audit", "--neutron-db", neutron, "--nova-api-db", api], debug=False)
    assert code == 3 and out == ""
    assert "template" in one_error_line(err)


def test_api_database_with_only_cell0_exits_3(tmp_path: Path) -> None:
    api = f"sqlite:///{tmp_path / 'nova_api.sqlite'}"
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    write_neutron(neutron, [], [C1])
    execute(
        api,
        "CREATE TABLE cell_mappings (id INTEGER PRIMARY KEY, uuid VARCHAR(36), "
        "name VARCHAR(255), database_connection TEXT)",
        f"INSERT INTO cell_mappings VALUES (1, '{CELL0_UUID}', 'cell0', 'sqlite://')",
    )
    code, out, err = run_cli(["audit", "--neutron-db", neutron, "--nova-api-db", api], debug=False)
    assert code == 3 and "cell0" in one_error_line(err)


# ------------------------------------------------------------------ config file, environment


def test_config_file_api_database_with_password(
    tmp_path: Path, nova34_api_mariadb_url: str, mariadb_url: str
) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    s = faults()
    write_neutron(neutron, s.ports, hosts_of(s))
    write_nova(mariadb_url, s.instances, schema=create_nova_schema)
    api_db, cell_db = dbname_of(nova34_api_mariadb_url), dbname_of(mariadb_url)
    with mariadb_reader(api_db, cell_db) as (user, password):
        host = f"{dbfixtures.MARIADB_HOST}:{dbfixtures.MARIADB_PORT}"
        engine = sa.create_engine(nova34_api_mariadb_url)
        try:
            from testkit.cells import write_cell_mappings

            write_cell_mappings(
                engine,
                [
                    CellMappingSpec(
                        uuid=CELL0_UUID,
                        name="cell0",
                        database_connection="mysql+pymysql://x:y@nowhere/cell0",
                    ),
                    CellMappingSpec(
                        uuid="5c6d2a7e-1f0b-4e8d-9a3c-2b1e0f9d8c7a",
                        name="cell1",
                        database_connection=(f"mysql+pymysql://{user}:{password}@{host}/{cell_db}"),
                    ),
                ],
            )
        finally:
            engine.dispose()
        conf = tmp_path / "nova.conf"
        conf.write_text(
            "[DEFAULT]\ndebug = true\n[api_database]\n"
            f"connection = mysql+pymysql://{user}:{password}@{host}/{api_db}\n"
        )
        code, out, err = run_cli(
            ["audit", "--neutron-db", neutron, "--nova-config-file", str(conf), "-f", "json"]
        )
        assert code == 2, err
        assert password not in out + err
        doc = json.loads(out)
        check_faults(doc, s)
        assert doc["nova"][0]["cell"] == "cell1"

        # remediation and the table: the password is never printed either
        for argv in (
            ["audit"],
            ["remediation"],
            ["remediation", "-f", "json"],
            ["audit", "-f", "yaml"],
        ):
            code, out, err = run_cli(
                [*argv, "--neutron-db", neutron, "--nova-config-file", str(conf)]
            )
            assert code in (0, 2), err
            assert password not in out + err

        # a wrong password: exit 3, one line, no password in it
        bad = tmp_path / "bad.conf"
        bad.write_text(
            f"[api_database]\nconnection = mysql+pymysql://{user}:{password}x@{host}/{api_db}\n"
        )
        code, out, err = run_cli(
            ["audit", "--neutron-db", neutron, "--nova-config-file", str(bad)], debug=False
        )
        assert code == 3 and password not in err
        one_error_line(err)


def test_config_file_database_connection_is_a_single_cell(nova_db_url: str, tmp_path: Path) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    s = faults()
    write_neutron(neutron, s.ports, hosts_of(s))
    write_nova(nova_db_url, s.instances, schema=create_nova_schema)
    conf = tmp_path / "nova.conf"
    conf.write_text(f"[database]\nconnection = {nova_db_url}\n")
    check_faults(audit(neutron, "--nova-config-file", str(conf)), s)


def test_missing_config_file_exits_3(tmp_path: Path) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    write_neutron(neutron, [], [C1])
    code, _, err = run_cli(
        ["audit", "--neutron-db", neutron, "--nova-config-file", str(tmp_path / "nope.conf")],
        debug=False,
    )
    assert code == 3 and "nope.conf" in one_error_line(err)


def test_environment_fallbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    s = faults()
    write_neutron(neutron, s.ports, hosts_of(s))
    write_nova(nova, s.instances, schema=create_nova_schema)
    api = f"sqlite:///{tmp_path / 'nova_api.sqlite'}"
    execute(
        api,
        "CREATE TABLE cell_mappings (id INTEGER PRIMARY KEY, uuid VARCHAR(36), "
        "name VARCHAR(255), database_connection TEXT)",
        f"INSERT INTO cell_mappings VALUES (1, '{CELL0_UUID}', 'cell0', 'sqlite://')",
        f"INSERT INTO cell_mappings VALUES (2, 'c1', 'envcell', '{nova}')",
    )
    monkeypatch.delenv("VIFDOCTOR_NOVA_API_DB", raising=False)

    monkeypatch.setenv("VIFDOCTOR_NOVA_DB", nova)
    doc = audit(neutron)
    check_faults(doc, s)
    assert doc["nova"][0]["cell"] == "nova"

    monkeypatch.setenv("VIFDOCTOR_NOVA_API_DB", api)  # the API database goes first
    doc = audit(neutron)
    check_faults(doc, s)
    assert doc["nova"][0]["cell"] == "envcell"

    # a flag beats the environment
    monkeypatch.setenv("VIFDOCTOR_NOVA_API_DB", f"sqlite:///{tmp_path / 'nope' / 'x.db'}")
    monkeypatch.setenv("VIFDOCTOR_NOVA_DB", f"sqlite:///{tmp_path / 'nope' / 'y.db'}")
    doc = audit(neutron, "--nova-db", nova)
    check_faults(doc, s)

    # and without any of them Nova is not read
    monkeypatch.delenv("VIFDOCTOR_NOVA_API_DB")
    monkeypatch.delenv("VIFDOCTOR_NOVA_DB")
    doc = audit(neutron)
    assert "nova" not in doc and "instances_read" not in doc["summary"]


# ------------------------------------------------------------------ malformed, huge caches


@pytest.mark.parametrize("backend", ["sqlite", "mariadb34"])
def test_malformed_and_huge_caches_never_crash(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    if backend == "sqlite":
        nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
        schema = create_nova_schema
    else:
        nova = request.getfixturevalue("nova34_cell_mariadb_url")
        schema = None
    big_ok = [{**vif(port_id(1), HYBRID), "meta": {"blob": "x" * 2_000_000}}]
    values = {
        vm_uuid(1): big_ok,  # 2 MB, valid: no finding
        vm_uuid(2): "[" + '{"id": "x", ' * 180_000,  # 2 MB, cut short: VD205
        vm_uuid(3): "[" * 1_000_000 + "]" * 1_000_000,  # 2 MB of nesting: VD205
        vm_uuid(4): '{"id": "' + port_id(4) + '"}',  # an object: VD205
        vm_uuid(5): "[1, 2, 3]",  # not VIF objects: VD205
        vm_uuid(6): "\x00\xff not json",  # VD205
    }
    ports = [vm_port(port_id(n), vm_uuid(n), C1) for n in range(1, 7)]
    write_neutron(neutron, ports, [C1])
    write_nova(
        nova,
        [InstanceSpec(uuid=u, host=C1, network_info=v) for u, v in values.items()],
        schema=schema,
    )
    code, doc, _ = cli_json("audit", "--neutron-db", neutron, "--nova-db", nova)
    assert code == 2
    assert pairs(doc) == {("VD205", vm_uuid(n), "") for n in range(2, 7)}
    for f in doc["findings"]:
        assert len(f["message"]) < 1000
    code, out, err = run_cli(["remediation", "--neutron-db", neutron, "--nova-db", nova])
    assert code == 0, err
    assert len(out) < 20_000


# ------------------------------------------------------------------ selectors


def _selector_cloud(tmp_path: Path) -> tuple[str, str, Scenario]:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    s = faults()
    write_neutron(neutron, s.ports, hosts_of(s))
    write_nova(nova, s.instances, schema=create_nova_schema)
    return neutron, nova, s


def test_host_selector(tmp_path: Path) -> None:
    """--host compute1: the findings of the full audit on compute1, nothing else."""
    neutron, nova, s = _selector_cloud(tmp_path)
    full = audit(neutron, "--nova-db", nova)
    doc = audit(neutron, "--nova-db", nova, "--host", C1)
    assert {f["host"] for f in doc["findings"]} == {C1}
    assert pairs(doc) <= pairs(full)  # no false VD203 for instances elsewhere
    bound_c1 = {p.device_id for p in s.ports if p.binding.host == C1}
    on_c1 = {i.uuid for i in s.instances if i.host == C1 and not i.deleted}
    for code, device, port in s.expected:
        cached_only = code == "VD203" and port not in {p.id for p in s.ports}
        if device in bound_c1 and not cached_only:
            assert (code, device, port) in pairs(doc)
    for inst in doc["instances"]:
        assert inst["device_id"] in bound_c1 | on_c1
    # A cached-only port is not judged for an instance whose ports were narrowed.
    ghost = {(c, d, p) for c, d, p in s.expected if c == "VD203" and d == vm_uuid(6)}
    assert not ghost & pairs(doc)
    assert doc["summary"]["instances_read"] == full["summary"]["instances_read"]


def test_host_selector_no_false_vd203_for_a_port_bound_elsewhere(tmp_path: Path) -> None:
    neutron, nova, s = _selector_cloud(tmp_path)
    moved = vm_uuid(2)  # Nova: compute2, bound to compute1, no move (VD202)
    migrating = vm_uuid(3)  # Nova: compute2, bound to compute1, task_state migrating
    doc = audit(neutron, "--nova-db", nova, "--host", C2)
    vd203 = {d for c, d, _ in pairs(doc) if c == "VD203"}
    assert moved not in vd203 and migrating not in vd203


def test_port_selector(tmp_path: Path) -> None:
    neutron, nova, s = _selector_cloud(tmp_path)
    missing = vm_uuid(4)  # ports 104 and 105; only 104 is cached
    # The instance with two Neutron ports, one not cached: select the cached one.
    doc = audit(neutron, "--nova-db", nova, "--port", port_id(104))
    assert pairs(doc) == set()
    assert [i["device_id"] for i in doc["instances"]] == []
    # Select the uncached one: VD203 for it, nothing for any other instance.
    doc = audit(neutron, "--nova-db", nova, "--port", port_id(105))
    assert pairs(doc) == {("VD203", missing, port_id(105))}
    # The ghost-VIF instance: no cached-only VD203 when its port is selected.
    doc = audit(neutron, "--nova-db", nova, "--port", port_id(106))
    assert pairs(doc) == set()
    assert doc["summary"]["instances_affected"] == 0


def test_code_selector(tmp_path: Path) -> None:
    neutron, nova, s = _selector_cloud(tmp_path)
    doc = audit(neutron, "--nova-db", nova, "--code", "VD204")
    assert pairs(doc) == {t for t in s.expected if t[0] == "VD204"}
    assert {tuple(i["codes"]) for i in doc["instances"]} == {("VD204",)}


# ------------------------------------------------------------------ remediation


def _remediation_cloud(tmp_path: Path) -> tuple[str, str, dict[str, str]]:
    """Havana-era '' details everywhere, as after the incident, and what each VM is."""
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    vm = {
        name: vm_uuid(n, prefix)
        for n, (name, prefix) in enumerate(
            [
                ("run2", "1"),
                ("run1", "2"),
                ("stopped1", "3"),
                ("wired_hybrid1", "4"),
                ("extra2", "5"),
                ("moved", "6"),
            ]
        )
    }
    ports = [
        vm_port(port_id(1), vm["run2"], C2, ""),
        vm_port(port_id(2), vm["run1"], C1, ""),
        vm_port(port_id(3), vm["stopped1"], C1, ""),
        vm_port(port_id(4), vm["wired_hybrid1"], C1, ""),
        vm_port(port_id(5), vm["extra2"], C2),
        vm_port(port_id(6), vm["moved"], C1),
    ]
    specs = [
        InstanceSpec(uuid=vm["run2"], host=C2, network_info=[vif(port_id(1), {})]),
        InstanceSpec(uuid=vm["run1"], host=C1, network_info=[vif(port_id(2), {})]),
        InstanceSpec(
            uuid=vm["stopped1"],
            host=C1,
            vm_state="stopped",
            power_state=4,
            network_info=[vif(port_id(3), {})],
        ),
        # booted before the drift: its cache still says hybrid (stale), and so is its wiring
        InstanceSpec(uuid=vm["wired_hybrid1"], host=C1, network_info=[vif(port_id(4), HYBRID)]),
        InstanceSpec(
            uuid=vm["extra2"],
            host=C2,
            network_info=[vif(port_id(5), HYBRID), vif(port_id(55), HYBRID)],
        ),
        InstanceSpec(uuid=vm["moved"], host=C2, network_info=[vif(port_id(6), HYBRID)]),
    ]
    write_neutron(neutron, ports, [C1, C2])
    write_nova(nova, specs, schema=create_nova_schema)
    return neutron, nova, vm


def _remediation(neutron: str, nova: str) -> dict:
    _, doc, _ = cli_json("remediation", "--neutron-db", neutron, "--nova-db", nova)
    return doc


def test_remediation_plan(tmp_path: Path) -> None:
    neutron, nova, vm = _remediation_cloud(tmp_path)
    doc = _remediation(neutron, nova)
    steps = [(s["host"], s["action"], s["instance"], s["command"]) for s in doc["steps"]]
    refresh = (
        "nova refresh-network {}  # or POST /v2.1/os-server-external-events "
        '{{"events": [{{"name": "network-changed", "server_uuid": "{}"}}]}}'
    )
    assert steps == [
        ("(all hosts)", "repair-binding", "", "vifdoctor repair --apply"),
        (C1, "hard-reboot", vm["run1"], f"openstack server reboot --hard {vm['run1']}"),
        (
            C1,
            "refresh-network",
            vm["wired_hybrid1"],
            refresh.format(vm["wired_hybrid1"], vm["wired_hybrid1"]),
        ),
        (C1, "none", vm["stopped1"], ""),
        (C2, "rebind-host", vm["moved"], f"openstack port set --host {C2} {port_id(6)}"),
        (C2, "hard-reboot", vm["run2"], f"openstack server reboot --hard {vm['run2']}"),
        (C2, "hard-reboot", vm["moved"], f"openstack server reboot --hard {vm['moved']}"),
        (C2, "refresh-network", vm["extra2"], refresh.format(vm["extra2"], vm["extra2"])),
    ]
    assert "4 instance(s)" in doc["steps"][0]["reason"]
    assert list(doc["hosts"]) == ["(all hosts)", C1, C2]
    assert doc["summary"] == {
        "instances_affected": 6,
        "steps": 8,
        "hosts": 3,
        "by_action": {
            "hard-reboot": 3,
            "none": 1,
            "rebind-host": 1,
            "refresh-network": 2,
            "repair-binding": 1,
        },
    }
    # selectors go into the one repair command
    _, doc, _ = cli_json("remediation", "--neutron-db", neutron, "--nova-db", nova, "--host", C1)
    assert doc["steps"][0]["command"] == f"vifdoctor repair --host {C1} --apply"
    # the instances with a port bound on compute1; the moved VM's steps are on its own host
    assert {s["instance"] for s in doc["steps"][1:]} == {
        vm["run1"],
        vm["wired_hybrid1"],
        vm["stopped1"],
        vm["moved"],
    }
    assert {s["host"] for s in doc["steps"][1:] if s["instance"] == vm["moved"]} == {C2}


def test_remediation_after_the_repair(tmp_path: Path) -> None:
    neutron, nova, vm = _remediation_cloud(tmp_path)
    code, out, err = run_cli(
        [
            "repair",
            "--neutron-db",
            neutron,
            "--apply",
            "--backup-dir",
            str(tmp_path / "backup"),
            "-f",
            "json",
        ]
    )
    assert code == 0, err
    doc = _remediation(neutron, nova)
    steps = [(s["host"], s["action"], s["instance"]) for s in doc["steps"]]
    assert "repair-binding" not in {a for _, a, _ in steps}
    assert steps == [
        (C1, "hard-reboot", vm["run1"]),
        (C1, "none", vm["stopped1"]),
        (C2, "rebind-host", vm["moved"]),
        (C2, "hard-reboot", vm["run2"]),
        (C2, "hard-reboot", vm["moved"]),
        (C2, "refresh-network", vm["extra2"]),
    ]
    by_device = {i["device_id"]: i for i in doc["instances"]}
    for name in ("run1", "run2", "stopped1"):
        assert by_device[vm[name]]["codes"] == ["VD201"]  # the cache still has {}
    # the hybrid-cached VM now matches Neutron: nothing to do at all
    assert vm["wired_hybrid1"] not in by_device
    audit_doc = audit(neutron, "--nova-db", nova)
    assert {c for c, _, _ in pairs(audit_doc)} == {"VD201", "VD202", "VD203"}
    assert not [f for f in audit_doc["findings"] if f["code"] in ("VD101", "VD103")]


def test_remediation_needs_nova(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    write_neutron(neutron, [], [C1])
    monkeypatch.delenv("VIFDOCTOR_NOVA_DB", raising=False)
    monkeypatch.delenv("VIFDOCTOR_NOVA_API_DB", raising=False)
    code, out, err = run_cli(["remediation", "--neutron-db", neutron], debug=False)
    assert code == 3 and "--nova-db" in one_error_line(err)


# ------------------------------------------------------------------ demo


def test_demo_shows_instances_and_remediation(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    code, out, err = run_cli(["demo", "--dir", str(folder)])
    assert code == 0, err
    assert "Per instance: what Nova has, what it will do, what it needs" in out
    assert "| Instance" in out and "Security Groups" in out and "Next Stop/Start" in out
    assert "| Action" in out and "openstack server reboot --hard" in out
    assert "repair-binding" in out and "check-orphan" in out
    neutron = f"sqlite:///{folder / 'neutron.sqlite'}"
    nova = f"sqlite:///{folder / 'nova.sqlite'}"
    assert f"--nova-db {nova}" in out

    doc = audit(neutron, "--nova-db", nova)
    found = codes_by_device(doc)
    assert "VD202" in found[incident.HOST_MISMATCH_INSTANCE]
    assert "VD203" in found[incident.EXTRA_VIF_INSTANCE]
    assert "VD204" in found[incident.ORPHAN_INSTANCE]
    assert "VD201" in found[incident.STALE_CACHE_INSTANCE]
    extra = [f for f in doc["findings"] if f["code"] == "VD203"]
    assert [f["port_id"] for f in extra] == [incident.EXTRA_VIF_PORT_ID]
    orphan = next(i for i in doc["instances"] if i["device_id"] == incident.ORPHAN_INSTANCE)
    assert orphan["instance"]["deleted"] is True
    stopped = next(i for i in doc["instances"] if i["device_id"] == incident.STOPPED_INSTANCE)
    assert [s["action"] for s in stopped["steps"]] == ["repair-binding", "none"]
    assert stopped["impact"]["running"] is False
    error = next(i for i in doc["instances"] if i["device_id"] == incident.ERROR_INSTANCE)
    assert error["codes"] == ["VD105"]
    assert {c for c, _, _ in pairs(doc)} == {"VD201", "VD202", "VD203", "VD204"}
    assert doc["summary"]["instances_read"] == len(incident.incident_instances())


# ------------------------------------------------------------------ wrong database


def test_neutron_database_given_as_nova_db(tmp_path: Path) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    write_neutron(neutron, [vm_port(port_id(1), vm_uuid(1), C1)], [C1])
    code, out, err = run_cli(["audit", "--neutron-db", neutron, "--nova-db", neutron], debug=False)
    assert code == 3 and out == ""
    line = one_error_line(err)
    assert "not a Nova cell database" in line and "Neutron database" in line


def test_neutron29_given_as_nova_db(neutron29_mariadb_url: str) -> None:
    code, out, err = run_cli(
        ["audit", "--neutron-db", neutron29_mariadb_url, "--nova-db", neutron29_mariadb_url],
        debug=False,
    )
    assert code == 3 and "not a Nova cell database" in one_error_line(err)


def test_nova_api_database_given_as_nova_db(tmp_path: Path) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    api = f"sqlite:///{tmp_path / 'nova_api.sqlite'}"
    write_neutron(neutron, [], [C1])
    execute(api, "CREATE TABLE cell_mappings (id INTEGER PRIMARY KEY, uuid VARCHAR(36))")
    code, _, err = run_cli(["audit", "--neutron-db", neutron, "--nova-db", api], debug=False)
    assert code == 3 and "no instances table" in one_error_line(err)
    # and a cell database given as the API database
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    write_nova(nova, [], schema=create_nova_schema)
    code, _, err = run_cli(["audit", "--neutron-db", neutron, "--nova-api-db", nova], debug=False)
    assert code == 3 and "cell_mappings" in one_error_line(err)


def test_unreachable_nova_db_exits_3(tmp_path: Path) -> None:
    neutron = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    write_neutron(neutron, [], [C1])
    url = "mysql+pymysql://nova:S3cretPw@127.0.0.1:1/nova"
    code, out, err = run_cli(["audit", "--neutron-db", neutron, "--nova-db", url], debug=False)
    assert code == 3 and "S3cretPw" not in err
    one_error_line(err)


# ------------------------------------------------------------------ one read of Neutron


@pytest.mark.parametrize("layout", ["icehouse", "ocata"])
def test_one_read_of_every_binding_beside_the_worker_gives_the_same_audit(
    layout: str, tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: beside a Nova worker, on packed rows, the audit reads every binding once
    (``split_bindings_known``), sorting the VM ports as the other ports are judged. The
    document is the one the audit gives with Nova read in its own process (two reads):
    VM and other ports with findings, drifted and clean, and a port whose device owner
    only the server's LIKE takes for a VM port."""
    s = faults()
    drifted = vm_port(port_id(500), vm_uuid(500), C1, details="{}")
    dhcp = replace(vm_port(port_id(501), "dhcp-1", C2, details="{}"), device_owner="network:dhcp")
    shouting = replace(vm_port(port_id(502), vm_uuid(502), C2), device_owner="COMPUTE:nova")
    write_neutron(mariadb_url, [*s.ports, drifted, dhcp, shouting], hosts_of(s), layout=layout)
    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    write_nova(
        nova,
        [
            *s.instances,
            InstanceSpec(uuid=vm_uuid(500), host=C1, network_info=[vif(port_id(500), {})]),
        ],
        schema=create_nova_schema,
    )
    split_reads: list[bool] = []
    real = NeutronDatabase.split_bindings_known

    def spy(self, *args):  # type: ignore[no-untyped-def]
        both = real(self, *args)
        split_reads.append(both is not None)
        return both

    monkeypatch.setattr(NeutronDatabase, "split_bindings_known", spy)
    docs = []
    for worker in ("1", "0"):
        monkeypatch.setenv("VIFDOCTOR_NOVA_WORKER", worker)
        doc = audit(mariadb_url, "--nova-db", nova)
        doc["schema"].pop("database_time_utc")
        docs.append(doc)
    assert split_reads == [True]  # the worker's audit read once; the other, twice
    assert docs[0] == docs[1]
    found = {(f["code"], f["port_id"]) for f in docs[0]["findings"]}
    assert ("VD101", port_id(500)) in found or ("VD103", port_id(500)) in found
    assert any(f["port_id"] == port_id(502) for f in docs[0]["findings"])  # VD204: no VM
    assert docs[0]["summary"]["skipped"]["network:dhcp (Nova plugs nothing)"] == 1
    assert docs[0]["summary"]["bindings"] == len(s.ports) + 3
    assert s.expected <= pairs(docs[0])
