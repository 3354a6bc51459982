"""Time ``vifdoctor audit`` on generated clouds against the database's own floor.

    .venv/bin/python benchmarks/audit.py --ports 100000 --ports 1000000 [--reuse]
        [--repeat 3] [--profile]

For each ``--ports N`` (database ``vifdoctor_bench_N``):

1. generate the cloud with ``benchmarks/generate.py`` (skipped with ``--reuse``
   when the database is there);
2. time ``vifdoctor audit --neutron-db URL -f json > /dev/null`` under
   ``/usr/bin/time`` (wall time and peak RSS of the child);
3. the same with ``--code VD110`` (no finding in these clouds): the cost of
   streaming and judging every row without the cost of keeping, sorting and
   rendering the findings;
4. the floor: the very SQL the audit sends (compiled from
   ``NeutronDatabase`` itself: agents, deeper binding levels, ACTIVE and
   INACTIVE bindings joined with ports and level 0) run by the ``mariadb``
   client with ``--quick`` (streamed like the audit's ``yield_per``) into
   /dev/null.

With ``--repeat R`` each timing is the best of R runs. ``--profile`` also runs
the audit once under cProfile and prints the top entries.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import ROOT, connect, mariadb_args, url, vifdoctor_command  # noqa: E402

TIME = "/usr/bin/time"


@dataclass
class Run:
    wall: float
    rss_mb: float
    rc: int


def database_for(ports: int) -> str:
    return f"vifdoctor_bench_{ports}"


def child_env(unbuffered: bool) -> dict[str, str]:
    """The environment of the timed commands: PYTHONUNBUFFERED dropped unless asked for.

    With it, every chunk the JSON encoder yields is one write(2): an artefact of
    this sandbox (it sets PYTHONUNBUFFERED=1), not of an operator's shell.
    """
    env = dict(os.environ)
    if not unbuffered:
        env.pop("PYTHONUNBUFFERED", None)
    return env


def refresh_heartbeats(database: str) -> None:
    """Agents are alive when their heartbeat is within 75 s: make it now, before each run."""
    conn = connect(database, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE agents SET heartbeat_timestamp = UTC_TIMESTAMP()")
    finally:
        conn.close()


def timed(args: list[str], stdin_text: str | None = None, env: dict | None = None) -> Run:
    """Run ``args`` with stdout to /dev/null; wall time and peak RSS from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        cmd = [TIME, "-f", "%e %M", "-o", out.name, *args]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              input=stdin_text, text=True, env=env)
        wall = time.perf_counter() - t0
        fields = out.read().split()
    if proc.returncode not in (0, 1, 2):
        sys.exit(f"{' '.join(args[:3])}... failed (exit {proc.returncode}): "
                 f"{proc.stderr.strip()[-500:]}")
    rss_kb = float(fields[-1]) if fields else float("nan")
    return Run(wall=wall, rss_mb=rss_kb / 1024, rc=proc.returncode)


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.wall)


def floor_sql(database: str) -> str:
    """The SQL the audit sends, compiled from vifdoctor's own source with literal values."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    from vifdoctor.sources.neutron_db import LEVELS, NeutronDatabase, Selectors

    engine = sa.create_engine(url(database))
    try:
        with NeutronDatabase(engine) as source:
            t = source._t
            agents = t["agents"]
            queries = [
                sa.select(agents.c.id, agents.c.agent_type, agents.c.host,
                          agents.c.admin_state_up, agents.c.heartbeat_timestamp,
                          agents.c.configurations),
            ]
            if source.layout.has_levels:
                lv = t[LEVELS]
                queries.append(sa.select(lv.c.port_id, lv.c.host, lv.c.driver)
                               .where(lv.c.level > 0).order_by(lv.c.level))
            queries.append(source._binding_query(Selectors(), active=True))
            if source.layout.has_status:
                queries.append(source._binding_query(Selectors(), active=False))
            dialect = mysql.dialect()
            return ";\n".join(
                str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
                for q in queries
            ) + ";"
    finally:
        engine.dispose()


def count_rows(database: str) -> tuple[int, int]:
    conn = connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM ports")
            ports = cur.fetchone()[0]
            cur.execute("SELECT COUNT(*) FROM ml2_port_bindings")
            return ports, cur.fetchone()[0]
    finally:
        conn.close()


def database_exists(database: str) -> bool:
    conn = connect(None)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (database,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def profile(database: str, top: int, env: dict | None = None) -> str:
    """One audit under cProfile (``python -m cProfile -m vifdoctor``): the top entries
    by cumulative and by own time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "audit.prof")
        proc = subprocess.run(
            [sys.executable, "-m", "cProfile", "-o", out, "-m", "vifdoctor", "audit",
             "--neutron-db", url(database), "-f", "json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )
        if proc.returncode not in (0, 1, 2):
            sys.exit(f"profiled audit failed (exit {proc.returncode}): {proc.stderr.strip()}")
        text = io.StringIO()
        stats = pstats.Stats(out, stream=text)
        stats.strip_dirs().sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        return text.getvalue()


def py_spy(exe: str, database: str, top: int, env: dict | None = None) -> str:
    """One audit under ``py-spy record`` (sampling, low overhead): the functions with the
    largest share of samples, inclusive (anywhere on the stack) and own (the leaf)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "audit.txt")
        proc = subprocess.run(
            [exe, "record", "-r", "250", "-f", "raw", "-o", raw, "--",
             *vifdoctor_command(), "audit", "--neutron-db", url(database), "-f", "json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )
        if not os.path.exists(raw):
            sys.exit(f"py-spy failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
        inclusive: Counter = Counter()
        own: Counter = Counter()
        total = 0
        prefix = str(Path(sys.prefix) / "lib")
        with open(raw) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not stack:
                    continue
                n = int(count)
                total += n
                frames = [fr.replace(str(ROOT) + "/", "").replace(prefix, "")
                          for fr in stack.split(";")]
                for name in {fr.rsplit(":", 1)[0] + ")" for fr in frames}:
                    inclusive[name] += n
                own[frames[-1]] += n
    lines = [f"{total} samples; inclusive share (function anywhere on the stack):"]
    lines += [f"  {100 * v / total:5.1f}%  {k}" for k, v in inclusive.most_common(top)]
    lines.append("own share (the sampled line itself):")
    lines += [f"  {100 * v / total:5.1f}%  {k}" for k, v in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, action="append", default=[],
                   help="cloud size; repeatable (default 100000)")
    p.add_argument("--reuse", action="store_true",
                   help="use vifdoctor_bench_N as it is when it exists")
    p.add_argument("--drift", type=float, default=0.1,
                   help="generate.py --drift: share of drifted bindings (default 0.1)")
    p.add_argument("--seed", type=int, default=1, help="generate.py --seed (default 1)")
    p.add_argument("--repeat", type=int, default=1, help="best of R runs (default 1)")
    p.add_argument("--driver", choices=("pymysql", "mysqldb"), default=None,
                   help="the audit's MySQL driver: pymysql (default, pure Python) or mysqldb "
                        "(mysqlclient, C: pip install 'vifdoctor[mysqlclient]')")
    p.add_argument("--few-findings-code", default="VD110",
                   help="the --code of the streaming-only run (default VD110)")
    p.add_argument("--profile", action="store_true",
                   help="also profile one audit with cProfile (smallest N)")
    p.add_argument("--py-spy", metavar="EXE",
                   help="also sample one audit with this py-spy executable (smallest N)")
    p.add_argument("--top", type=int, default=25, help="profile entries shown (default 25)")
    p.add_argument("--unbuffered", action="store_true",
                   help="keep PYTHONUNBUFFERED in the audit's environment (dropped by default)")
    args = p.parse_args(argv)
    if args.driver:
        _common.DRIVER = args.driver
    sizes = args.ports or [100000]

    from generate import generate

    env = child_env(args.unbuffered)

    results = []
    for n in sizes:
        db = database_for(n)
        gen_s = None
        if args.reuse and database_exists(db):
            print(f"== {n} ports: reusing {db}", flush=True)
        else:
            print(f"== {n} ports: generating {db}", flush=True)
            t0 = time.perf_counter()
            generate(n, db, args.drift, args.seed)
            gen_s = time.perf_counter() - t0
        ports, bindings = count_rows(db)
        audit_cmd = [*vifdoctor_command(), "audit", "--neutron-db", url(db), "-f", "json"]
        sql = floor_sql(db)
        full, few, floor = [], [], []
        for _ in range(max(1, args.repeat)):
            floor.append(timed([*mariadb_args(db), "-N", "-B", "--quick"], stdin_text=sql))
            refresh_heartbeats(db)
            full.append(timed(audit_cmd, env=env))
            refresh_heartbeats(db)
            few.append(timed([*audit_cmd, "--code", args.few_findings_code], env=env))
        row = {"n": n, "ports": ports, "bindings": bindings, "gen": gen_s,
               "full": best(full), "few": best(few), "floor": best(floor)}
        results.append(row)
        print(f"   audit {row['full'].wall:.2f} s (exit {row['full'].rc}), "
              f"--code {args.few_findings_code} {row['few'].wall:.2f} s, "
              f"floor {row['floor'].wall:.2f} s", flush=True)

    print()
    head = (f"{'ports':>9} {'bindings':>9} {'gen s':>6} {'run':<19} {'wall s':>7} "
            f"{'rows/s':>8} {'peak RSS MB':>11} {'x floor':>7}")
    print(head)
    print("-" * len(head))
    for r in results:
        floor_wall = r["floor"].wall
        for label, run in (("audit -f json", r["full"]),
                           (f"audit --code {args.few_findings_code}", r["few"]),
                           ("floor (mariadb)", r["floor"])):
            gen = f"{r['gen']:.1f}" if r["gen"] is not None and label.startswith("audit -f") \
                else ""
            print(f"{r['ports']:>9} {r['bindings']:>9} {gen:>6} {label:<19} {run.wall:>7.2f} "
                  f"{r['bindings'] / run.wall:>8.0f} {run.rss_mb:>11.1f} "
                  f"{run.wall / floor_wall:>7.2f}")
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"\npeak RSS growth {a['n']} -> {b['n']} ports: "
              f"audit x{b['full'].rss_mb / a['full'].rss_mb:.2f}, "
              f"--code x{b['few'].rss_mb / a['few'].rss_mb:.2f}")
    if args.profile:
        refresh_heartbeats(database_for(sizes[0]))
        print(f"\n== cProfile of the audit at {sizes[0]} ports\n")
        print(profile(database_for(sizes[0]), args.top, env))
    if args.py_spy:
        refresh_heartbeats(database_for(sizes[0]))
        print(f"\n== py-spy of the audit at {sizes[0]} ports\n")
        print(py_spy(args.py_spy, database_for(sizes[0]), args.top, env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
