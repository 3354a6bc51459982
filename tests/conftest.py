"""Shared pytest fixtures: one fresh, uniquely named database per test.

The logic lives in ``tests/dbfixtures.py``; see docs/testing.md for what the
fixtures need (MariaDB, PostgreSQL, the OpenStack venv) and how to start it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dbfixtures
import pytest


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
    """DDL dumped from neutron 29.0.0's real migrations on MariaDB (cached in .cache/)."""
    return dbfixtures.build_neutron29_mariadb_ddl()


@pytest.fixture
def neutron29_mariadb_url(neutron29_mariadb_ddl: Path) -> Iterator[str]:
    """Private MariaDB database holding the real neutron 29.0.0 schema (no rows but alembic's)."""
    with dbfixtures.mariadb_database() as dbname:
        dbfixtures.load_mariadb_sql(dbname, neutron29_mariadb_ddl)
        yield dbfixtures.mariadb_url(dbname)


@pytest.fixture(scope="session")
def neutron29_postgresql_template() -> Iterator[str]:
    """Database migrated once per session by neutron 29.0.0, cloned for each test."""
    template = dbfixtures.build_neutron29_postgresql_template()
    try:
        yield template
    finally:
        dbfixtures.postgresql_drop_database(template)


@pytest.fixture
def neutron29_postgresql_url(neutron29_postgresql_template: str) -> Iterator[str]:
    """Private PostgreSQL database holding the real neutron 29.0.0 schema."""
    with dbfixtures.postgresql_database(template=neutron29_postgresql_template) as dbname:
        yield dbfixtures.postgresql_url(dbname)


@pytest.fixture
def neutron29_sqlite_url(tmp_path: Path) -> str:
    """SQLite file with neutron 29.0.0's schema from its ORM models (shared/reference)."""
    path = dbfixtures.build_neutron29_sqlite(tmp_path / "neutron29.sqlite")
    return f"sqlite:///{path}"
