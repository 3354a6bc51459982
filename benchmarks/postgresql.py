"""Time ``vifdoctor audit`` on PostgreSQL (Neutron only) against psql's own floor.

    .venv/bin/python benchmarks/postgresql.py --ports 100000 [--ports 1000000] [--reuse]
        [--repeat 3]

For each ``--ports N`` (database ``vifdoctor_bench_pg_N`` on 127.0.0.1:5432):

1. generate: neutron 29.0.0's PostgreSQL schema (its ORM models' ``create_all()`` and
   ``neutron-db-manage stamp heads``, tests/testkit/dbfixtures.py: neutron's migrations
   abort on PostgreSQL) cloned with ``CREATE DATABASE ... TEMPLATE``, then the rows
   ``benchmarks/generate.py`` builds (same seed, same rows as on MariaDB) loaded with
   ``COPY ... FROM STDIN`` (foreign-key triggers off: ``session_replication_role =
   replica``), then ``ANALYZE``; skipped with ``--reuse`` when the database exists;
2. time ``vifdoctor audit --neutron-db postgresql+psycopg2://... -f json > /dev/null``;
3. the floor: the very SQL the audit sends (compiled from ``NeutronDatabase`` for the
   PostgreSQL dialect) run by ``psql`` as ``\\copy (...) TO '/dev/null'``, one per query.

Each timing is the best of ``--repeat`` runs, under ``/usr/bin/time`` (wall, peak RSS).
``--drop`` drops the databases afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import vifdoctor_command  # noqa: E402
from audit import Run, best, child_env, timed  # noqa: E402

PG = [
    "psql",
    "-h",
    "127.0.0.1",
    "-p",
    "5432",
    "-U",
    "postgres",
    "-X",
    "-q",
    "-v",
    "ON_ERROR_STOP=1",
]


def pg_url(database: str) -> str:
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"


def psql(database: str, sql: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PG, "-d", database, "-c", sql], check=True, text=True, capture_output=True, **kw
    )


def exists(database: str) -> bool:
    out = psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{database}'").stdout
    return "1" in out


def generate_pg(ports: int, database: str, drift: float, seed: int) -> float:
    from generate import build_files
    from testkit import dbfixtures

    t0 = time.perf_counter()
    template = dbfixtures.build_neutron29_postgresql_template()
    folder = Path(tempfile.mkdtemp(prefix="vifdoctor-bench-pg-"))
    try:
        psql("postgres", f'DROP DATABASE IF EXISTS "{database}"')
        psql("postgres", f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
        files, made = build_files(ports, drift, seed, folder, None)
        for tsv in files:
            tsv.write()
        script = ["SET session_replication_role = replica;"]
        for tsv in files:
            cols = ", ".join(f'"{c}"' for c in tsv.columns)
            script.append(f"\\copy {tsv.table} ({cols}) FROM '{tsv.path}'")
        script.append("ANALYZE;")
        subprocess.run([*PG, "-d", database], input="\n".join(script) + "\n", text=True, check=True)
        print(
            f"   {database}: {made.ports} ports, {made.active} ACTIVE + {made.inactive} "
            f"INACTIVE bindings",
            flush=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        dbfixtures.postgresql_drop_database(template)
    return time.perf_counter() - t0


def floor_script(database: str) -> str:
    """The audit's queries (agents, deeper levels, ACTIVE and INACTIVE bindings) for psql."""
    import sqlalchemy as sa

    from vifdoctor.sources.interface import Selectors
    from vifdoctor.sources.neutron_db import NeutronDatabase
    from vifdoctor.sources.neutron_schema import LEVELS

    engine = sa.create_engine(pg_url(database))
    try:
        with NeutronDatabase(engine) as source:
            t = source._t
            agents = t["agents"]
            queries = [
                sa.select(
                    agents.c.id,
                    agents.c.agent_type,
                    agents.c.host,
                    agents.c.admin_state_up,
                    agents.c.heartbeat_timestamp,
                    agents.c.configurations,
                )
            ]
            if source.layout.has_levels:
                lv = t[LEVELS]
                queries.append(
                    sa.select(lv.c.port_id, lv.c.host, lv.c.driver)
                    .where(lv.c.level > 0)
                    .order_by(lv.c.level)
                )
            queries.append(source._binding_query(Selectors(), active=True))
            if source.layout.has_status:
                queries.append(source._binding_query(Selectors(), active=False))
            texts = [
                " ".join(str(q.compile(engine, compile_kwargs={"literal_binds": True})).split())
                for q in queries
            ]
    finally:
        engine.dispose()
    return "\n".join(f"\\copy ({q}) TO '/dev/null'" for q in texts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, action="append", default=[])
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--drop", action="store_true", help="drop the databases afterwards")
    p.add_argument("--drift", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)
    env = child_env(False)
    rows = []
    for n in args.ports or [100000]:
        db = f"vifdoctor_bench_pg_{n}"
        gen = None
        if not (args.reuse and exists(db)):
            gen = generate_pg(n, db, args.drift, args.seed)
            print(f"   generated in {gen:.1f} s", flush=True)
        with tempfile.NamedTemporaryFile("w", suffix=".psql", delete=False) as f:
            f.write(floor_script(db))
        audit_cmd = [*vifdoctor_command(), "audit", "--neutron-db", pg_url(db), "-f", "json"]
        runs: dict[str, list[Run]] = {"audit": [], "floor": []}
        try:
            for _ in range(max(1, args.repeat)):
                runs["floor"].append(timed([*PG, "-d", db, "-f", f.name]))
                psql(db, "UPDATE agents SET heartbeat_timestamp = now() AT TIME ZONE 'UTC'")
                runs["audit"].append(timed(audit_cmd, env=env))
        finally:
            os.unlink(f.name)
        a, fl = best(runs["audit"]), best(runs["floor"])
        rows.append((n, a, fl, runs))
        print(
            f"   {n}: audit {a.wall:.2f} s (exit {a.rc}, RSS {a.rss_mb:.0f} MB), "
            f"floor {fl.wall:.2f} s: x{a.wall / fl.wall:.2f}",
            flush=True,
        )
        if args.drop:
            psql("postgres", f'DROP DATABASE IF EXISTS "{db}"')
    print(f"\n{'ports':>9} {'audit s':>8} {'RSS MB':>7} {'floor s':>8} {'x floor':>7}  runs")
    for n, a, fl, runs in rows:
        print(
            f"{n:>9} {a.wall:>8.2f} {a.rss_mb:>7.0f} {fl.wall:>8.2f} {a.wall / fl.wall:>7.2f}"
            f"  audit {' '.join(f'{r.wall:.2f}' for r in runs['audit'])}; "
            f"floor {' '.join(f'{r.wall:.2f}' for r in runs['floor'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
