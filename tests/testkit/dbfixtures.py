"""Database helpers behind the pytest fixtures in ``conftest.py``.

Every test that touches a server gets its own freshly created database
(``vd_<hex>``) that is dropped afterwards, so tests never see each other's rows
and can run in any order.  The "real schema" helpers build neutron 29.0.0's
schema with neutron's own code, run from a separate virtualenv
(``.cache/openstack-venv``, built by ``scripts/openstack-venv``), because a
hand-written copy of the schema would drift from what production databases
really look like: on MariaDB with neutron's migrations (``neutron-db-manage
upgrade heads``), on PostgreSQL with ``create_all()`` on neutron's ORM models
plus ``neutron-db-manage stamp heads``, because neutron 29.0.0's migrations
abort on PostgreSQL (see ``run_neutron_migrations`` and docs/testing.md).
The dumps replayed per test (neutron on MariaDB and SQLite, nova's cell and api
databases on MariaDB) come from ``scripts/build-schemas``, which makes them the
same way once and caches them in ``.cache/schemas/``.

Missing servers or a failing neutron build make the test fail, never skip:
a skipped database test hides exactly the bugs these tests exist to catch.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"
OPENSTACK_VENV = CACHE_DIR / "openstack-venv"
OPENSTACK_VENV_SCRIPT = REPO_ROOT / "scripts" / "openstack-venv"
#: Builds (once, cached in .cache/schemas/) the real neutron/nova schema dumps.
BUILD_SCHEMAS_SCRIPT = REPO_ROOT / "scripts" / "build-schemas"
NEUTRON_DB_MANAGE = OPENSTACK_VENV / "bin" / "neutron-db-manage"
OPENSTACK_PYTHON = OPENSTACK_VENV / "bin" / "python"
NOVA_VENV = CACHE_DIR / "nova-venv"
NOVA_MANAGE = NOVA_VENV / "bin" / "nova-manage"
NOVA_PYTHON = NOVA_VENV / "bin" / "python"

MARIADB_HOST = "127.0.0.1"
MARIADB_PORT = 3306
MARIADB_USER = "root"
MARIADB_START = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"

POSTGRESQL_HOST = "127.0.0.1"
POSTGRESQL_PORT = 5432
POSTGRESQL_USER = "postgres"
POSTGRESQL_START = (
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -n1) main start"
)

#: Seconds spent in the slow steps, printed in pytest's terminal summary so
#: regressions in fixture cost are visible (key -> list of durations).
TIMINGS: dict[str, list[float]] = {}


class NeutronSchemaError(RuntimeError):
    """neutron's own tooling could not build the real schema (not a vifdoctor bug)."""


#: The neutron 29.0.0 migration that runs MySQL-only SQL on every backend
#: (``versions/2025.2/expand/d553edeb540f_tag_case_sensitive.py``):
#: ``ALTER TABLE tags CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin``.
NEUTRON29_POSTGRESQL_BROKEN_MIGRATION = "d553edeb540f"

#: Run by the OpenStack venv's python: ``create_all()`` on neutron's full model set
#: (``neutron.db.migration.models.head`` imports every model the migrations track).
_NEUTRON_CREATE_ALL = """
import sys

import sqlalchemy as sa
from neutron.db.migration.models import head

engine = sa.create_engine(sys.argv[1])
try:
    metadata = head.get_metadata()
    metadata.create_all(engine)
    print(len(metadata.tables))
finally:
    engine.dispose()
"""


def _record(key: str, seconds: float) -> None:
    TIMINGS.setdefault(key, []).append(seconds)


def unique_db_name(prefix: str = "vd_") -> str:
    """Return a fresh database name; random so parallel runs cannot collide."""
    return f"{prefix}{secrets.token_hex(6)}"


# --------------------------------------------------------------------------- MariaDB


def mariadb_url(dbname: str) -> str:
    """SQLAlchemy URL for database ``dbname`` on the test MariaDB server."""
    return f"mysql+pymysql://{MARIADB_USER}@{MARIADB_HOST}:{MARIADB_PORT}/{dbname}?charset=utf8mb4"


def _mariadb_connect() -> Any:
    """Open an admin connection (no database selected); fail the test if the server is down."""
    import pymysql

    try:
        return pymysql.connect(
            host=MARIADB_HOST,
            port=MARIADB_PORT,
            user=MARIADB_USER,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=5,
        )
    except pymysql.err.OperationalError as exc:
        pytest.fail(
            f"MariaDB is not reachable on {MARIADB_HOST}:{MARIADB_PORT} as {MARIADB_USER} "
            f"({exc}). Start it with: {MARIADB_START}",
            pytrace=False,
        )


def _mariadb_execute(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = _mariadb_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall())
    finally:
        conn.close()


def mariadb_create_database(dbname: str) -> None:
    _mariadb_execute(f"CREATE DATABASE `{dbname}` CHARACTER SET utf8mb4")


def mariadb_drop_database(dbname: str) -> None:
    _mariadb_execute(f"DROP DATABASE IF EXISTS `{dbname}`")


def mariadb_database_exists(dbname: str) -> bool:
    rows = _mariadb_execute(
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (dbname,)
    )
    return bool(rows)


@contextlib.contextmanager
def mariadb_database() -> Iterator[str]:
    """Create a uniquely named MariaDB database, yield its name, always drop it."""
    dbname = unique_db_name()
    mariadb_create_database(dbname)
    try:
        yield dbname
    finally:
        mariadb_drop_database(dbname)


# ------------------------------------------------------------------------ PostgreSQL


def postgresql_url(dbname: str) -> str:
    """SQLAlchemy URL for ``dbname`` on the test PostgreSQL.

    The driver is named explicitly: SQLAlchemy 2.1 maps a bare ``postgresql://`` to
    psycopg 3, while the project (``[test]``/``[postgresql]`` extras) installs psycopg2.
    """
    return f"postgresql+psycopg2://{POSTGRESQL_USER}@{POSTGRESQL_HOST}:{POSTGRESQL_PORT}/{dbname}"


def _postgresql_connect(dbname: str = "postgres") -> Any:
    """Open an autocommit connection (CREATE/DROP DATABASE cannot run in a transaction)."""
    import psycopg2

    try:
        conn = psycopg2.connect(
            host=POSTGRESQL_HOST,
            port=POSTGRESQL_PORT,
            user=POSTGRESQL_USER,
            dbname=dbname,
            connect_timeout=5,
        )
    except psycopg2.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable on {POSTGRESQL_HOST}:{POSTGRESQL_PORT} as "
            f"{POSTGRESQL_USER} ({str(exc).strip()}). Start it with: {POSTGRESQL_START}",
            pytrace=False,
        )
    conn.autocommit = True
    return conn


def _postgresql_execute(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = _postgresql_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def postgresql_create_database(dbname: str, template: str | None = None) -> None:
    sql = f'CREATE DATABASE "{dbname}"'
    if template:
        sql += f' TEMPLATE "{template}"'
    start = time.monotonic()
    _postgresql_execute(sql)
    if template:
        _record("per-test CREATE DATABASE ... TEMPLATE (PostgreSQL)", time.monotonic() - start)


def postgresql_drop_database(dbname: str) -> None:
    """Drop even if a leaked connection is still open (WITH (FORCE), PostgreSQL 13+)."""
    _postgresql_execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def postgresql_database_exists(dbname: str) -> bool:
    return bool(_postgresql_execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)))


@contextlib.contextmanager
def postgresql_database(template: str | None = None) -> Iterator[str]:
    """Create a uniquely named PostgreSQL database, yield its name, always drop it."""
    dbname = unique_db_name()
    postgresql_create_database(dbname, template)
    try:
        yield dbname
    finally:
        postgresql_drop_database(dbname)


# ------------------------------------------------------------- neutron 29.0.0 schemas


@contextlib.contextmanager
def _cache_lock(name: str) -> Iterator[None]:
    """Serialise cache builders across processes (pytest-xdist workers, parallel runs)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_openstack_venv_script(tool: Path) -> Path:
    """Run ``scripts/openstack-venv`` (builds both OpenStack venvs); fail unless ``tool`` exists."""
    with _cache_lock("openstack-venv"):
        start = time.monotonic()
        proc = subprocess.run(
            [str(OPENSTACK_VENV_SCRIPT)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not tool.exists():
            pytest.fail(
                f"could not build the OpenStack test venvs with {OPENSTACK_VENV_SCRIPT} "
                f"(exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
                pytrace=False,
            )
        if "built" in proc.stdout:
            _record("openstack venv build", time.monotonic() - start)
    return tool


def ensure_openstack_venv() -> Path:
    """Build ``.cache/openstack-venv`` if needed (same script as ``scripts/test``).

    Returns the path of ``neutron-db-manage``; fails the test if it cannot be built.
    """
    return _run_openstack_venv_script(NEUTRON_DB_MANAGE)


def ensure_nova_venv() -> Path:
    """Build ``.cache/nova-venv`` if needed; return ``nova-manage`` (fails the test otherwise)."""
    return _run_openstack_venv_script(NOVA_MANAGE)


def _run_openstack_tool(argv: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (a program of the OpenStack venv); raise NeutronSchemaError if it fails."""
    ensure_openstack_venv()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "Error" in line]
        raise NeutronSchemaError(
            f"{what} failed (exit {proc.returncode}); "
            f"error: {errors[-1] if errors else proc.stderr[-1500:]}"
        )
    return proc


def run_neutron_migrations(url: str) -> None:
    """Run neutron 29.0.0's real ``neutron-db-manage upgrade heads`` against ``url``.

    Works on MariaDB.  On PostgreSQL it raises NeutronSchemaError at migration
    ``d553edeb540f`` (MySQL-only ``ALTER TABLE tags CONVERT TO ...``), an upstream bug.
    """
    db_manage = ensure_openstack_venv()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [str(db_manage), "--database-connection", url, "upgrade", "heads"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        ran = [line for line in proc.stderr.splitlines() if "Running upgrade" in line]
        last = ran[-1].split("Running upgrade", 1)[1].strip() if ran else "(none)"
        errors = [line for line in proc.stderr.splitlines() if "Error" in line]
        raise NeutronSchemaError(
            f"neutron-db-manage upgrade heads failed on {url} (exit {proc.returncode}); "
            f"last migration started: {last}; "
            f"error: {errors[-1] if errors else proc.stderr[-1500:]}"
        )


def create_neutron_schema_from_models(url: str) -> int:
    """``create_all()`` neutron 29.0.0's ORM models (``models.head``) on ``url``.

    Runs in the OpenStack venv, where neutron is installed.  Returns the number of
    tables created.  Creates no ``alembic_version``; see ``stamp_neutron_heads``.
    """
    proc = _run_openstack_tool(
        [str(OPENSTACK_PYTHON), "-c", _NEUTRON_CREATE_ALL, url],
        f"create_all() on neutron's models against {url}",
    )
    return int(proc.stdout.strip().splitlines()[-1])


def stamp_neutron_heads(url: str) -> None:
    """Write neutron's head revisions into ``alembic_version`` (``neutron-db-manage stamp``)."""
    db_manage = ensure_openstack_venv()
    _run_openstack_tool(
        [str(db_manage), "--database-connection", url, "stamp", "heads"],
        f"neutron-db-manage stamp heads on {url}",
    )


_SCHEMA_DUMPS: dict[str, Path] = {}


def schema_dumps() -> dict[str, Path]:
    """The real schema dumps by name (``scripts/build-schemas --json``), built once if missing.

    Names: ``neutron-mariadb``, ``neutron-sqlite``, ``nova-cell``, ``nova-api``. The
    script caches them in .cache/schemas/ and serialises parallel builders with a lock.
    """
    if not _SCHEMA_DUMPS:
        start = time.monotonic()
        proc = subprocess.run(
            [str(BUILD_SCHEMAS_SCRIPT), "--json"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            pytest.fail(
                f"{BUILD_SCHEMAS_SCRIPT} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}",
                pytrace=False,
            )
        _SCHEMA_DUMPS.update({k: Path(v) for k, v in json.loads(proc.stdout).items()})
        if "build-schemas: built" in proc.stderr:
            _record("scripts/build-schemas (built missing dumps)", time.monotonic() - start)
    return _SCHEMA_DUMPS


def build_neutron29_mariadb_ddl() -> Path:
    """neutron 29.0.0's DDL on MariaDB: its migrations, dumped with the alembic rows."""
    return schema_dumps()["neutron-mariadb"]


def load_mariadb_sql(
    dbname: str, sql_file: Path, label: str = "per-test load of neutron DDL (MariaDB)"
) -> None:
    """Load a mariadb-dump file with the ``mariadb`` client (handles its /*! */ syntax)."""
    start = time.monotonic()
    with open(sql_file, "rb") as fh:
        proc = subprocess.run(
            [
                "mariadb",
                f"-h{MARIADB_HOST}",
                f"-P{MARIADB_PORT}",
                f"-u{MARIADB_USER}",
                f"--database={dbname}",
            ],
            stdin=fh,
            capture_output=True,
            check=False,
        )
    if proc.returncode != 0:
        pytest.fail(
            f"loading {sql_file} into {dbname} failed: {proc.stderr.decode(errors='replace')}",
            pytrace=False,
        )
    _record(label, time.monotonic() - start)


def build_neutron29_postgresql_template() -> str:
    """Create a database with neutron 29.0.0's schema to clone with ``CREATE ... TEMPLATE``.

    Built from neutron's ORM models (``create_all()``) and stamped with the
    migration heads, not migrated: neutron 29.0.0's migrations abort on PostgreSQL
    (``test_neutron29_postgresql_migrations_fail_upstream`` keeps that visible).
    The caller owns the returned database and must drop it at the end of the session.
    """
    ensure_openstack_venv()
    template = unique_db_name("vd_tpl_")
    postgresql_create_database(template)
    url = postgresql_url(template)
    try:
        start = time.monotonic()
        tables = create_neutron_schema_from_models(url)
        _record("neutron models create_all (PostgreSQL)", time.monotonic() - start)
        start = time.monotonic()
        stamp_neutron_heads(url)
        _record("neutron-db-manage stamp heads (PostgreSQL)", time.monotonic() - start)
        if tables < 100 or not _postgresql_template_is_stamped(template):
            raise NeutronSchemaError(
                f"neutron schema on {template} looks incomplete "
                f"({tables} tables, or no alembic_version rows)"
            )
    except BaseException:
        postgresql_drop_database(template)
        raise
    return template


def _postgresql_template_is_stamped(dbname: str) -> bool:
    conn = _postgresql_connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM alembic_version")
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def build_neutron29_sqlite(path: Path) -> Path:
    """Create a SQLite file from the models' DDL (neutron's migrations cannot run on SQLite)."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(schema_dumps()["neutron-sqlite"].read_text())
    finally:
        conn.close()
    return path


def build_nova34_mariadb_ddl() -> tuple[Path, Path]:
    """(cell, api) DDL of nova 34.0.0 on MariaDB: ``nova-manage db sync`` / ``api_db sync``."""
    dumps = schema_dumps()
    return dumps["nova-cell"], dumps["nova-api"]


# ----------------------------------------------------------------- pytest integration


#: fixture name -> markers it implies (declared in pyproject's [tool.pytest.ini_options]).
FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "mariadb_url": ("mariadb",),
    "postgresql_url": ("postgresql",),
    "neutron29_mariadb_url": ("mariadb", "neutron_real"),
    "neutron29_postgresql_url": ("postgresql", "neutron_real"),
    "nova34_cell_mariadb_url": ("mariadb", "nova_real"),
    "nova34_api_mariadb_url": ("mariadb", "nova_real"),
}

#: Fixtures parametrized over backends: the param picks the ``<param>_url`` markers.
BACKEND_PARAM_FIXTURES = ("db_url", "nova_db_url")


def markers_for(item: pytest.Item) -> set[str]:
    """Markers a test needs from the fixtures it uses, so ``-m 'not postgresql'`` works."""
    names = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    for fixture in BACKEND_PARAM_FIXTURES:
        if fixture in names and callspec is not None and fixture in callspec.params:
            names.add(f"{callspec.params[fixture]}_url")
    return {marker for name in names for marker in FIXTURE_MARKERS.get(name, ())}


def timing_summary() -> list[str]:
    """One line per slow step measured in this session."""
    lines = []
    for key, values in TIMINGS.items():
        if len(values) == 1:
            lines.append(f"{key}: {values[0]:.2f} s")
        else:
            avg = sum(values) / len(values)
            lines.append(f"{key}: {len(values)}x, avg {avg:.2f} s, max {max(values):.2f} s")
    return lines
