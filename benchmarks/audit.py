"""Time ``vifdoctor audit`` on generated clouds against the database's own floor.

    .venv/bin/python benchmarks/audit.py --ports 100000 --ports 1000000 [--reuse]
        [--repeat 3] [--profile]

For each ``--ports N`` (database ``vifdoctor_bench_N``, or ``$VIFDOCTOR_BENCH_AUDIT_PREFIX_N``):

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
   /dev/null;
5. with Nova (the default when ``vifdoctor_bench_N_nova`` exists; ``--no-nova``
   skips it): ``vifdoctor audit --neutron-db URL --nova-db URL -f json`` and
   its floor, what the same rows cost to read with nothing sorted (issue 14):
   the Neutron floor's SQL above, then on Nova ``instances LEFT JOIN
   instance_info_caches`` with no ORDER BY (captured from
   ``NovaCellDatabase._instance_rows``); the two ``mariadb`` clients run
   one after the other.

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
from _common import (  # noqa: E402
    ROOT,
    TreePeakRss,
    connect,
    mariadb_args,
    nova_database,
    server_cpu_seconds,
    url,
    vifdoctor_command,
)

TIME = "/usr/bin/time"


@dataclass
class Run:
    wall: float
    rss_mb: float
    rc: int
    cpu: float = float("nan")  # user + system of the command and the children it waited for
    server_cpu: float = float("nan")  # the local database server's, during the run

    @property
    def two_core_floor(self) -> float:
        """The shortest wall time two cores could run this CPU in: when the database
        server shares the machine, no overlap beats (command's + server's CPU) / 2."""
        return (self.cpu + self.server_cpu) / 2


# VIFDOCTOR_BENCH_AUDIT_PREFIX: other names (e.g. with an engineer's branch in them), so
# that two people can benchmark on one server without dropping each other's clouds.
_PREFIX = os.environ.get("VIFDOCTOR_BENCH_AUDIT_PREFIX", "vifdoctor_bench")


def database_for(ports: int) -> str:
    return f"{_PREFIX}_{ports}"


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
    """Run ``args`` with stdout to /dev/null; wall time, CPU and peak RSS from GNU time,
    the database server's CPU from /proc."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        cmd = [TIME, "-f", "%e %U %S %M", "-o", out.name, *args]
        server_before = server_cpu_seconds()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        tree = TreePeakRss(proc.pid)
        _, stderr = proc.communicate(stdin_text)
        wall = time.perf_counter() - t0
        server_after = server_cpu_seconds()
        tree_mb = tree.stop()
        fields = out.read().split()
    if proc.returncode not in (0, 1, 2):
        head = " ".join(args[:3])
        sys.exit(f"{head}... failed (exit {proc.returncode}): {stderr.strip()[-500:]}")
    rss_kb = float(fields[-1]) if fields else float("nan")
    cpu = float(fields[-3]) + float(fields[-2]) if len(fields) >= 4 else float("nan")
    server = (
        server_after - server_before
        if server_before is not None and server_after is not None
        else float("nan")
    )
    # the worker's memory counts too: the summed peak where it is the larger
    return Run(
        wall=wall,
        rss_mb=max(rss_kb / 1024, tree_mb),
        rc=proc.returncode,
        cpu=cpu,
        server_cpu=server,
    )


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.wall)


def floor_sql(database: str, nova: bool = False) -> str:
    """The SQL the audit sends to Neutron, compiled from vifdoctor's own source with literal
    values; with ``nova``, as it reads Neutron when Nova is given too (VM ports by
    device_id, then the others)."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    from vifdoctor.sources.interface import Selectors
    from vifdoctor.sources.neutron_db import NeutronDatabase
    from vifdoctor.sources.neutron_schema import LEVELS

    engine = sa.create_engine(url(database))
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
                ),
            ]
            if source.layout.has_levels:
                lv = t[LEVELS]
                queries.append(
                    sa.select(lv.c.port_id, lv.c.host, lv.c.driver)
                    .where(lv.c.level > 0)
                    .order_by(lv.c.level)
                )
            if nova:
                queries.append(source._binding_query(Selectors(), active=True, compute=False))
                # the VM ports, by device_id: read after the others, merged with Nova
                queries.append(source._binding_query(Selectors(), active=True, compute=True))
            else:
                queries.append(source._binding_query(Selectors(), active=True))
            if source.layout.has_status:
                queries.append(source._binding_query(Selectors(), active=False))
            dialect = mysql.dialect()
            return (
                ";\n".join(
                    str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
                    for q in queries
                )
                + ";"
            )
    finally:
        engine.dispose()


class _Captured(Exception):
    pass


def nova_floor_sql(database: str) -> str:
    """What Nova's rows cost to read: the one LEFT JOIN of instances and their caches
    (``NovaCellDatabase._instance_rows``, captured as the server receives it, the
    statement intercepted and never run) without its ORDER BY, so the server sorts nothing
    (issue 14: the sorted query's 96 s at 1M ports was the server's filesort of blobs)."""
    import sqlalchemy as sa

    from vifdoctor.sources.nova_db import CellSource, NovaCellDatabase

    cell = NovaCellDatabase(CellSource(database, url(database, "pymysql")))
    sent: list[str] = []

    def grab(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        sent.append(cursor.mogrify(statement, parameters))
        raise _Captured

    sa.event.listen(cell.engine, "before_cursor_execute", grab)
    try:
        next(iter(cell._instance_rows()), None)
    except _Captured:
        pass
    except sa.exc.StatementError as exc:
        if not isinstance(exc.orig, _Captured):
            raise
    finally:
        cell.close()
    if not sent:
        sys.exit("could not capture the Nova query")
    head, sep, _ = sent[0].rpartition(" ORDER BY ")
    if not sep:
        sys.exit("the Nova query has no ORDER BY to drop")
    return head + ";"


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


def count_instances(database: str) -> int:
    conn = connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM instances")
            return cur.fetchone()[0]
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
            [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                out,
                "-m",
                "vifdoctor",
                "audit",
                "--neutron-db",
                url(database),
                "-f",
                "json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        if proc.returncode not in (0, 1, 2):
            sys.exit(f"profiled audit failed (exit {proc.returncode}): {proc.stderr.strip()}")
        text = io.StringIO()
        stats = pstats.Stats(out, stream=text)
        stats.strip_dirs().sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        return text.getvalue()


def py_spy(
    exe: str, database: str, top: int, env: dict | None = None, extra: tuple[str, ...] = ()
) -> str:
    """One audit under ``py-spy record`` (sampling, low overhead): the functions with the
    largest share of samples, inclusive (anywhere on the stack) and own (the leaf).
    ``extra`` is appended to the audit's arguments (e.g. the OVN connections)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "audit.txt")
        proc = subprocess.run(
            [
                exe,
                "record",
                "-r",
                "250",
                "-f",
                "raw",
                "-o",
                raw,
                "--",
                *vifdoctor_command(),
                "audit",
                "--neutron-db",
                url(database),
                "-f",
                "json",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
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
                frames = [
                    fr.replace(str(ROOT) + "/", "").replace(prefix, "") for fr in stack.split(";")
                ]
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
    p.add_argument(
        "--ports",
        type=int,
        action="append",
        default=[],
        help="cloud size; repeatable (default 100000)",
    )
    p.add_argument(
        "--reuse", action="store_true", help="use vifdoctor_bench_N as it is when it exists"
    )
    p.add_argument(
        "--drift",
        type=float,
        default=0.1,
        help="generate.py --drift: share of drifted bindings (default 0.1)",
    )
    p.add_argument("--seed", type=int, default=1, help="generate.py --seed (default 1)")
    p.add_argument("--repeat", type=int, default=1, help="best of R runs (default 1)")
    p.add_argument(
        "--driver",
        choices=("pymysql", "mysqldb"),
        default=None,
        help="the audit's MySQL driver: pymysql (default, pure Python) or mysqldb "
        "(mysqlclient, C: pip install 'vifdoctor[mysqlclient]')",
    )
    p.add_argument(
        "--nova",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the audit with --nova-db vifdoctor_bench_N_nova (default: "
        "yes, when generate.py built it)",
    )
    p.add_argument(
        "--few-findings-code",
        default="VD110",
        help="the --code of the streaming-only run (default VD110)",
    )
    p.add_argument(
        "--profile", action="store_true", help="also profile one audit with cProfile (smallest N)"
    )
    p.add_argument(
        "--py-spy",
        metavar="EXE",
        help="also sample one audit with this py-spy executable (smallest N)",
    )
    p.add_argument("--top", type=int, default=25, help="profile entries shown (default 25)")
    p.add_argument(
        "--unbuffered",
        action="store_true",
        help="keep PYTHONUNBUFFERED in the audit's environment (dropped by default)",
    )
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
            generate(n, db, args.drift, args.seed, nova=args.nova)
            gen_s = time.perf_counter() - t0
        ports, bindings = count_rows(db)
        ndb = nova_database(db)
        with_nova = args.nova and database_exists(ndb)
        instances = count_instances(ndb) if with_nova else 0
        audit_cmd = [*vifdoctor_command(), "audit", "--neutron-db", url(db), "-f", "json"]
        sql = floor_sql(db)
        runs: dict[str, list[Run]] = {k: [] for k in ("full", "few", "floor", "nova", "nova_floor")}
        if with_nova:
            with (
                tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f1,
                tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f2,
            ):
                f1.write(sql)  # the same Neutron columns, unordered: what they cost to read
                f2.write(nova_floor_sql(ndb))
            temps = [f1.name, f2.name]
            client = " ".join([*mariadb_args(), "-N", "-B", "--quick"])
            nova_floor_cmd = [
                "sh",
                "-c",
                f"{client} {db} < {f1.name} && {client} {ndb} < {f2.name}",
            ]
            nova_cmd = [*audit_cmd, "--nova-db", url(ndb)]
        for _ in range(max(1, args.repeat)):
            runs["floor"].append(timed([*mariadb_args(db), "-N", "-B", "--quick"], stdin_text=sql))
            refresh_heartbeats(db)
            runs["full"].append(timed(audit_cmd, env=env))
            refresh_heartbeats(db)
            runs["few"].append(timed([*audit_cmd, "--code", args.few_findings_code], env=env))
            if with_nova:
                runs["nova_floor"].append(timed(nova_floor_cmd))
                refresh_heartbeats(db)
                runs["nova"].append(timed(nova_cmd, env=env))
        if with_nova:
            for name in temps:
                os.unlink(name)
        row = {
            "n": n,
            "ports": ports,
            "bindings": bindings,
            "gen": gen_s,
            "instances": instances,
            "all": runs,
            **{k: best(v) for k, v in runs.items() if v},
        }
        results.append(row)
        print(
            f"   audit {row['full'].wall:.2f} s (exit {row['full'].rc}), "
            f"--code {args.few_findings_code} {row['few'].wall:.2f} s, "
            f"floor {row['floor'].wall:.2f} s"
            + (
                f"; with Nova: audit {row['nova'].wall:.2f} s (exit {row['nova'].rc}), "
                f"floor {row['nova_floor'].wall:.2f} s"
                if with_nova
                else ""
            ),
            flush=True,
        )

    print()
    head = (
        f"{'ports':>9} {'bindings':>9} {'gen s':>6} {'run':<19} {'wall s':>7} "
        f"{'rows/s':>8} {'peak RSS MB':>11} {'x floor':>7} {'CPU s':>6} {'server CPU s':>12} "
        f"{'2-core bound s':>14}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        lines = [
            ("audit -f json", r["full"], r["floor"], r["bindings"]),
            (f"audit --code {args.few_findings_code}", r["few"], r["floor"], r["bindings"]),
            ("floor (mariadb)", r["floor"], r["floor"], r["bindings"]),
        ]
        if "nova" in r:
            rows = r["bindings"] + r["instances"]  # rows/s: bindings plus instances read
            lines += [
                ("+nova audit -f json", r["nova"], r["nova_floor"], rows),
                ("+nova floor", r["nova_floor"], r["nova_floor"], rows),
            ]
        for label, run, floor_run, rows in lines:
            gen = f"{r['gen']:.1f}" if r["gen"] is not None and label.startswith("audit -f") else ""
            print(
                f"{r['ports']:>9} {r['bindings']:>9} {gen:>6} {label:<19} {run.wall:>7.2f} "
                f"{rows / run.wall:>8.0f} {run.rss_mb:>11.1f} "
                f"{run.wall / floor_run.wall:>7.2f} {run.cpu:>6.2f} {run.server_cpu:>12.2f} "
                f"{run.two_core_floor:>14.2f}"
            )
    print("\nevery run (wall s), to judge the noise:")
    for r in results:
        for key, label in (
            ("full", "audit"),
            ("few", "--code"),
            ("floor", "floor"),
            ("nova", "+nova audit"),
            ("nova_floor", "+nova floor"),
        ):
            if r["all"][key]:
                print(
                    f"  {r['n']:>9} {label:<12} "
                    + " ".join(f"{x.wall:.2f}" for x in r["all"][key])
                    + "   RSS MB "
                    + " ".join(f"{x.rss_mb:.0f}" for x in r["all"][key])
                    + "   CPU s tool/server "
                    + " ".join(f"{x.cpu:.1f}/{x.server_cpu:.1f}" for x in r["all"][key])
                )
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(
            f"\npeak RSS growth {a['n']} -> {b['n']} ports: "
            f"audit x{b['full'].rss_mb / a['full'].rss_mb:.2f}, "
            f"--code x{b['few'].rss_mb / a['few'].rss_mb:.2f}"
            + (
                f", +nova audit x{b['nova'].rss_mb / a['nova'].rss_mb:.2f}"
                if "nova" in a and "nova" in b
                else ""
            )
        )
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
