"""What the benchmark scripts share: where MariaDB is and how to talk to it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "vifdoctor_bench"
HOST = os.environ.get("VIFDOCTOR_BENCH_HOST", "127.0.0.1")
PORT = int(os.environ.get("VIFDOCTOR_BENCH_PORT", "3306"))
USER = os.environ.get("VIFDOCTOR_BENCH_USER", "root")
PASSWORD = os.environ.get("VIFDOCTOR_BENCH_PASSWORD", "")


def schema_dump(name: str, override: str) -> Path:
    """A real schema dump: the file named by env ``override``, else scripts/build-schemas'.

    ``name`` is ``neutron-mariadb`` (neutron 29.0.0's migrations) or ``nova-cell``
    (``nova-manage db sync`` of nova 34.0.0); the script builds them once into
    .cache/schemas/ from the OpenStack venvs scripts/openstack-venv installs.
    """
    if os.environ.get(override):
        return Path(os.environ[override])
    proc = subprocess.run(
        [str(ROOT / "scripts" / "build-schemas"), "--json"],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(
            f"scripts/build-schemas failed (exit {proc.returncode}, see above); "
            f"or point {override} at a {name} dump"
        )
    return Path(json.loads(proc.stdout)[name])


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
        host=HOST,
        port=PORT,
        user=USER,
        password=PASSWORD,
        database=database,
        local_infile=True,
        charset="utf8mb4",
        **kw,
    )


def vifdoctor_command() -> list[str]:
    """``vifdoctor`` from the same virtualenv as this interpreter.

    ``VIFDOCTOR_BENCH_COMMAND`` (split as a shell would) replaces it, to time another
    checkout with the same harness, e.g. ``env PYTHONPATH=/other/checkout
    .venv/bin/python -m vifdoctor``.
    """
    override = os.environ.get("VIFDOCTOR_BENCH_COMMAND")
    if override:
        return shlex.split(override)
    exe = Path(sys.executable).with_name("vifdoctor")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "vifdoctor"]


def run_quiet(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, **kw)


def _tree_rss_kb(pid: int) -> int:
    """Resident KB of ``pid`` and every process under it, now (0 once it is gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(x.split()[1]) for x in f if x.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def server_cpu_seconds() -> float | None:
    """User + system CPU the local database server has used so far (``mariadbd`` or
    ``mysqld`` in /proc), or None when it is not on this machine: a run's share is the
    difference, which shows whether the machine's cores, not the tool, set the pace."""
    for name in ("mariadbd", "mysqld"):
        proc = subprocess.run(["pidof", "-s", name], capture_output=True, text=True, check=False)
        pid = proc.stdout.strip()
        if proc.returncode != 0 or not pid:
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # fields after the command: state is [0], utime [11], stime [12] (proc(5))
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


class TreePeakRss:
    """The peak of the summed RSS of a process tree, sampled every 20 ms: GNU time's %M is
    the largest single process, which undercounts a command with a worker (issue 14)."""

    def __init__(self, pid: int):
        import threading

        self.peak_kb = 0
        self._pid = pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(self._pid))

    def stop(self) -> float:
        """Stop sampling; the peak in MB."""
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024
