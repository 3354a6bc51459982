"""The database fixtures do what conftest.py promises: private, empty, dropped, real schemas."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dbfixtures
import pytest
import sqlalchemy as sa

NEUTRON_TABLES = ("ml2_port_bindings", "ml2_port_binding_levels", "agents", "standardattributes")


def _dbname(url: str) -> str:
    return sa.engine.make_url(url).database or ""


def _exists_checker(url: str) -> Callable[[str], bool]:
    backend = sa.engine.make_url(url).get_backend_name()
    return {
        "mysql": dbfixtures.mariadb_database_exists,
        "postgresql": dbfixtures.postgresql_database_exists,
    }[backend]


@pytest.fixture
def dropped_afterwards() -> Iterator[list[str]]:
    """Collects URLs; after the test's other fixtures are torn down, checks they are gone.

    Requested *before* the database fixture, so pytest tears it down *after* it.
    """
    urls: list[str] = []
    yield urls
    for url in urls:
        assert not _exists_checker(url)(_dbname(url)), f"{url} still exists after teardown"


def _write_and_read(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            assert sa.inspect(conn).get_table_names() == []
            conn.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY, v VARCHAR(10))"))
            conn.execute(sa.text("INSERT INTO probe VALUES (1, 'x')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT v FROM probe")).scalar_one() == "x"
    finally:
        engine.dispose()


def test_sqlite_url_is_empty_and_writable(sqlite_url: str) -> None:
    assert sqlite_url.startswith("sqlite:///")
    _write_and_read(sqlite_url)


@pytest.mark.parametrize("fixture", ["mariadb_url", "postgresql_url"])
def test_server_database_is_private_empty_writable_and_dropped(
    dropped_afterwards: list[str], fixture: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(fixture)
    dropped_afterwards.append(url)
    name = _dbname(url)
    assert name.startswith("vd_")
    assert _exists_checker(url)(name)
    _write_and_read(url)


def test_db_url_runs_on_each_backend(db_url: str, request: pytest.FixtureRequest) -> None:
    backend = sa.engine.make_url(db_url).get_backend_name()
    assert backend == {"sqlite": "sqlite", "mariadb": "mysql"}[request.node.callspec.id]
    _write_and_read(db_url)


_seen_names: set[str] = set()


@pytest.mark.parametrize("round_", [1, 2])
def test_two_tests_get_different_databases(round_: int, mariadb_url: str) -> None:
    name = _dbname(mariadb_url)
    assert name not in _seen_names
    _seen_names.add(name)


@pytest.mark.parametrize("manager", ["mariadb_database", "postgresql_database"])
def test_database_context_manager_drops_even_on_error(manager: str) -> None:
    exists = {
        "mariadb_database": dbfixtures.mariadb_database_exists,
        "postgresql_database": dbfixtures.postgresql_database_exists,
    }[manager]
    with pytest.raises(RuntimeError), getattr(dbfixtures, manager)() as name:
        assert exists(name)
        raise RuntimeError("boom")
    assert not exists(name)


def _assert_real_neutron_schema(url: str, *, alembic: bool) -> None:
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        tables = set(insp.get_table_names())
        missing = [t for t in NEUTRON_TABLES if t not in tables]
        assert not missing, f"missing tables {missing}"
        binding_cols = {c["name"] for c in insp.get_columns("ml2_port_bindings")}
        assert {"port_id", "host", "status", "vif_type", "vif_details"} <= binding_cols
        assert "project_id" in {c["name"] for c in insp.get_columns("ports")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM ports")).scalar_one() == 0
            if alembic:
                versions = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                assert len(versions.all()) >= 1
    finally:
        engine.dispose()


def test_neutron29_mariadb_schema_is_real(
    dropped_afterwards: list[str], neutron29_mariadb_url: str
) -> None:
    dropped_afterwards.append(neutron29_mariadb_url)
    _assert_real_neutron_schema(neutron29_mariadb_url, alembic=True)


@pytest.mark.xfail(
    raises=dbfixtures.NeutronSchemaError,
    strict=True,
    reason="neutron 29.0.0 migration d553edeb540f (2025.2 expand) runs MySQL-only "
    "'ALTER TABLE tags CONVERT TO CHARACTER SET utf8mb4' on PostgreSQL and aborts",
)
def test_neutron29_postgresql_schema_is_real(
    dropped_afterwards: list[str], neutron29_postgresql_url: str
) -> None:
    dropped_afterwards.append(neutron29_postgresql_url)
    _assert_real_neutron_schema(neutron29_postgresql_url, alembic=True)


def test_neutron29_sqlite_schema_matches_models(neutron29_sqlite_url: str) -> None:
    _assert_real_neutron_schema(neutron29_sqlite_url, alembic=False)
