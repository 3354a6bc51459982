"""What the benchmark scripts share: where MariaDB is and how to talk to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "vifdoctor_bench"
HOST = os.environ.get("VIFDOCTOR_BENCH_HOST", "127.0.0.1")
PORT = int(os.environ.get("VIFDOCTOR_BENCH_PORT", "3306"))
USER = os.environ.get("VIFDOCTOR_BENCH_USER", "root")
PASSWORD = os.environ.get("VIFDOCTOR_BENCH_PASSWORD", "")
SCHEMA_29 = Path(
    os.environ.get(
        "VIFDOCTOR_BENCH_SCHEMA",
        "/work/shared/reference/schemas/neutron-29.0.0-mariadb.sql",
    )
)


#: nova 34.0.0's cell schema as ``nova-manage db sync`` makes it, dumped by the tests
#: (tests/dbfixtures.py ``build_nova34_mariadb_ddl``, behind the ``nova34_cell_mariadb_url``
#: fixture): run ``scripts/openstack-venv`` and ``.venv/bin/pytest -m nova_real`` once.
NOVA34_CELL_DDL = Path(
    os.environ.get("VIFDOCTOR_BENCH_NOVA_SCHEMA", str(ROOT / ".cache" / "nova-34.0.0-cell-ddl.sql"))
)


def nova_database(database: str) -> str:
    """The Nova cell database that goes with a generated Neutron database."""
    return f"{database}_nova"


DRIVER = os.environ.get("VIFDOCTOR_BENCH_DRIVER", "pymysql")  # or mysqldb (mysqlclient, C)


def url(database: str, driver: str | None = None) -> str:
    """The SQLAlchemy URL vifdoctor is given (mysql+pymysql unless told otherwise)."""
    auth = USER + (f":{PASSWORD}" if PASSWORD else "")
    return f"mysql+{driver or DRIVER}://{auth}@{HOST}:{PORT}/{database}"


def mariadb_args(database: str | None = None) -> list[str]:
    """The ``mariadb`` command line client, pointed at the benchmark server."""
    args = ["mariadb", f"-h{HOST}", f"-P{PORT}", f"-u{USER}"]
    if PASSWORD:
        args.append(f"-p{PASSWORD}")
    if database:
        args.append(database)
    return args


def connect(database: str | None = None, **kw):
    """A PyMySQL connection (autocommit off), LOAD DATA LOCAL allowed."""
    import pymysql

    return pymysql.connect(
        host=HOST, port=PORT, user=USER, password=PASSWORD, database=database,
        local_infile=True, charset="utf8mb4", **kw,
    )


def vifdoctor_command() -> list[str]:
    """``vifdoctor`` from the same virtualenv as this interpreter."""
    exe = Path(sys.executable).with_name("vifdoctor")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "vifdoctor"]


def run_quiet(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, **kw)
