"""Shared pytest fixtures: one fresh, uniquely named database per test.

The logic lives in ``tests/testkit/dbfixtures.py``; see docs/testing.md for what the
fixtures need (MariaDB, PostgreSQL, the OpenStack venv) and how to start it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import dbfixtures


def pytest_configure(config: pytest.Config) -> None:
    """Register ``nova_real`` here (pyproject lists the others) for ``--strict-markers``."""
    config.addinivalue_line(
        "markers", "nova_real: needs the real nova 34.0.0 schema built from PyPI's nova"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag tests by the servers they use, so e.g. ``-m 'not postgresql'`` selects them."""
    for item in items:
        for marker in sorted(dbfixtures.markers_for(item)):
            item.add_marker(marker)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show how long the expensive schema steps took, to keep an eye on fixture cost."""
    lines = dbfixtures.timing_summary()
    if lines:
        terminalreporter.section("database fixture timings")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of an empty SQLite file private to this test."""
    return f"sqlite:///{tmp_path / 'neutron.sqlite'}"


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """URL of an empty MariaDB database private to this test, dropped afterwards."""
    with dbfixtures.mariadb_database() as dbname:
        yield dbfixtures.mariadb_url(dbname)


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database private to this test, dropped afterwards."""
    with dbfixtures.postgresql_database() as dbname:
        yield dbfixtures.postgresql_url(dbname)


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once per backend (ids ``sqlite`` / ``mariadb``) with an empty database."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def neutron29_mariadb_ddl() -> Path:
    """DDL dumped from neutron 29.0.0's real migrations on MariaDB (.cache/schemas/)."""
    return dbfixtures.build_neutron29_mariadb_ddl()


@pytest.fixture
def neutron29_mariadb_url(neutron29_mariadb_ddl: Path) -> Iterator[str]:
    """Private MariaDB database holding the real neutron 29.0.0 schema (no rows but alembic's)."""
    with dbfixtures.mariadb_database() as dbname:
        dbfixtures.load_mariadb_sql(dbname, neutron29_mariadb_ddl)
        yield dbfixtures.mariadb_url(dbname)


@pytest.fixture(scope="session")
def neutron29_postgresql_template() -> Iterator[str]:
    """Database with neutron 29.0.0's schema, built once per session and cloned for each test.

    Built by ``create_all()`` on neutron's ORM models plus ``neutron-db-manage stamp
    heads``, because neutron 29.0.0's migrations abort on PostgreSQL (docs/testing.md).
    """
    template = dbfixtures.build_neutron29_postgresql_template()
    try:
        yield template
    finally:
        dbfixtures.postgresql_drop_database(template)


@pytest.fixture
def neutron29_postgresql_url(neutron29_postgresql_template: str) -> Iterator[str]:
    """Private PostgreSQL database with neutron 29.0.0's schema (models + alembic heads)."""
    with dbfixtures.postgresql_database(template=neutron29_postgresql_template) as dbname:
        yield dbfixtures.postgresql_url(dbname)


@pytest.fixture
def neutron29_sqlite_url(tmp_path: Path) -> str:
    """SQLite file with neutron 29.0.0's schema from its ORM models (scripts/build-schemas)."""
    path = dbfixtures.build_neutron29_sqlite(tmp_path / "neutron29.sqlite")
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "mariadb"])
def nova_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Empty database per backend (ids ``sqlite`` / ``mariadb``) for a legacy Nova layout.

    Tests create the tables themselves (``vifdoctor.demo.nova.create_nova_schema``).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nova.sqlite'}"
    return request.getfixturevalue("mariadb_url")


@pytest.fixture(scope="session")
def nova34_mariadb_ddl() -> tuple[Path, Path]:
    """(cell, api) DDL dumped from nova 34.0.0's real migrations on MariaDB (.cache/schemas/)."""
    return dbfixtures.build_nova34_mariadb_ddl()


@pytest.fixture
def nova34_cell_mariadb_url(nova34_mariadb_ddl: tuple[Path, Path]) -> Iterator[str]:
    """Private MariaDB database with nova 34.0.0's real cell schema (``nova-manage db sync``)."""
    with dbfixtures.mariadb_database() as dbname:
        dbfixtures.load_mariadb_sql(
            dbname, nova34_mariadb_ddl[0], "per-test load of nova cell DDL (MariaDB)"
        )
        yield dbfixtures.mariadb_url(dbname)


@pytest.fixture
def nova34_api_mariadb_url(nova34_mariadb_ddl: tuple[Path, Path]) -> Iterator[str]:
    """Private MariaDB database with nova 34.0.0's real nova_api schema (``api_db sync``)."""
    with dbfixtures.mariadb_database() as dbname:
        dbfixtures.load_mariadb_sql(
            dbname, nova34_mariadb_ddl[1], "per-test load of nova api DDL (MariaDB)"
        )
        yield dbfixtures.mariadb_url(dbname)
