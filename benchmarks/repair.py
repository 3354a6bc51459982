"""Time `vifdoctor repair --apply` against the incident's blanket UPDATE, on copies of one DB.

    .venv/bin/python benchmarks/repair.py --rows 100000 [--ports 250000]
        [--batch-size 0 --batch-size 500 --batch-size 2000] [--repeat 3] [--profile]

1. generate a cloud (benchmarks/generate.py, no Nova, no other drift) of
   ``--ports`` ports into ``vifdoctor_repair_src``, with exactly ``--rows`` ACTIVE
   VM bindings on hosts that need hybrid plugging (iptables_hybrid Newton+ agents
   and pre-Newton agents) holding empty ``vif_details``: the Havana -> Icehouse
   incident, VD101, repairable;
2. for each ``--batch-size`` and each repeat, copy it to ``vifdoctor_repair_a``
   (``CREATE TABLE ... LIKE`` + ``INSERT ... SELECT`` per table), time the dry run
   ``vifdoctor plan -f json`` (read, judge, plan, render: the repair's read side),
   then ``vifdoctor repair --apply --backup-dir TMP -f json [--batch-size B]`` (wall
   time under /usr/bin/time: backup, batches, verification re-read and output),
   and read ``outcome`` from its JSON (batches, retries, longest transaction);
   after the comparisons of step 4, the last repair of each repeat is undone by
   ``vifdoctor rollback BACKUP --apply`` (timed), and the copy must be the source
   again, byte for byte;
3. copy it to ``vifdoctor_repair_b`` and time, with the ``mariadb`` client, the
   incident's UPDATE of the same rows
   (``SET vif_details='{"port_filter": true, "ovs_hybrid_plug": true}' WHERE
   vif_details='' AND status='ACTIVE'``, one autocommit statement: its run time
   is its transaction); then the same on ``vifdoctor_repair_c`` with no WHERE at
   all (every row: the truly blanket UPDATE, for reference);
4. check that the repaired rows of A hold byte for byte what B's blanket
   UPDATE wrote, and that exactly ``--rows`` rows differ from the source in each;
5. unless ``--no-table``: copy it once more and time ``repair --apply`` with its
   default output (a table, summarized past 1,000 rows) instead of ``-f json``
   (every row listed), its counts read from the table's footer.

The read floor is the ``mariadb`` client reading the repair's own candidate query
(unordered since issue 14's sixth pass); the same query ordered by device_id (the
repair's query before it) is timed too, for the earlier passes' figures.

``--profile`` runs one more repair (first batch size) under cProfile on a fresh
copy and prints the top entries.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import connect, mariadb_args, url, vifdoctor_command  # noqa: E402

TIME = "/usr/bin/time"
# VIFDOCTOR_BENCH_REPAIR_PREFIX: other names, so two checkouts can be timed side by side.
_PREFIX = os.environ.get("VIFDOCTOR_BENCH_REPAIR_PREFIX", "vifdoctor_repair")
SOURCE, COPY_A, COPY_B, COPY_C = (f"{_PREFIX}_src", f"{_PREFIX}_a", f"{_PREFIX}_b", f"{_PREFIX}_c")
BLANKET_VALUE = '{"port_filter": true, "ovs_hybrid_plug": true}'
TARGETED = (
    f"UPDATE ml2_port_bindings SET vif_details='{BLANKET_VALUE}' "
    "WHERE vif_details='' AND status='ACTIVE'"
)
EVERY_ROW = f"UPDATE ml2_port_bindings SET vif_details='{BLANKET_VALUE}'"


@dataclass
class Timed:
    wall: float
    rss_mb: float
    rc: int
    stdout: str
    cpu: float = float("nan")  # user + system s of the child: steadier than wall when loaded


def timed(args: list[str], env: dict | None = None) -> Timed:
    """Run ``args``; wall time (perf_counter) and peak RSS (GNU time) of the child."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t, tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [TIME, "-f", "%U %S %M", "-o", t.name, *args],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - t0
        fields = t.read().split()
        out.seek(0)
        text = out.read()
    if proc.returncode not in (0, 1, 2):
        sys.exit(
            f"{' '.join(args[:3])}... failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}"
        )
    rss = float(fields[-1]) / 1024 if fields else float("nan")
    cpu = float(fields[-3]) + float(fields[-2]) if len(fields) >= 3 else float("nan")
    return Timed(wall, rss, proc.returncode, text, cpu)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)  # see benchmarks/audit.py child_env
    return env


def plant_drift(rows: int, seed: int):
    """A generate.py ``tweak``: empty vif_details on exactly ``rows`` ACTIVE VM bindings of
    hosts that need hybrid plugging (so each is VD101 and repairable)."""
    from generate import OVSFW

    def tweak(files, made) -> None:
        bindings = next(t for t in files if t.table == "ml2_port_bindings")
        ports = next(t for t in files if t.table == "ports")
        compute = {line.split("\t", 2)[1] for line in ports.lines if "\tcompute:nova\t" in line}
        hybrid_hosts = {h.name for h in made.hosts if not h.network_node and h.kind != OVSFW}
        lines = bindings.lines
        eligible = []
        for i, line in enumerate(lines):
            pid, host, _rest = line.split("\t", 2)
            if line.endswith("\tACTIVE") and host in hybrid_hosts and pid in compute:
                eligible.append(i)
        if len(eligible) < rows:
            sys.exit(f"only {len(eligible)} VM bindings on hybrid hosts: raise --ports")
        for i in random.Random(seed).sample(eligible, rows):
            pid, host, vif_type, vnic, profile, _details, status = lines[i].split("\t")
            lines[i] = "\t".join((pid, host, vif_type, vnic, profile, "", status))
        made.drift.clear()
        made.drift["empty (planted)"] = rows

    return tweak


def sql(database: str | None, statement: str, verbose: bool = False) -> str:
    args = [*mariadb_args(database), "-N", "-B", "-e", statement]
    if verbose:
        args.insert(-2, "-vvv")
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def copy_database(src: str, dst: str) -> float:
    """dst := src, table by table (CREATE TABLE LIKE + INSERT SELECT); seconds taken."""
    t0 = time.perf_counter()
    conn = connect(None, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{dst}`")
            cur.execute(f"CREATE DATABASE `{dst}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
            cur.execute(
                "SELECT table_name, table_rows FROM information_schema.tables "
                "WHERE table_schema=%s AND table_type='BASE TABLE'",
                (src,),
            )
            tables = cur.fetchall()
            cur.execute("SET SESSION foreign_key_checks=0, unique_checks=0")
            for name, _rows in tables:
                cur.execute(f"CREATE TABLE `{dst}`.`{name}` LIKE `{src}`.`{name}`")
            for name, rows in tables:
                if rows or name == "alembic_version":
                    cur.execute(f"INSERT INTO `{dst}`.`{name}` SELECT * FROM `{src}`.`{name}`")
            # the copy must be read like the source: fresh statistics, agents alive
            cur.execute(
                f"ANALYZE TABLE `{dst}`.ports, `{dst}`.ml2_port_bindings, "
                f"`{dst}`.ml2_port_binding_levels, `{dst}`.agents"
            )
            cur.fetchall()
            cur.execute(f"UPDATE `{dst}`.agents SET heartbeat_timestamp = UTC_TIMESTAMP()")
    finally:
        conn.close()
    return time.perf_counter() - t0


def differing(a: str, b: str) -> int:
    """Bindings whose vif_details differ (byte-wise) between databases a and b."""
    out = sql(
        None,
        f"SELECT COUNT(*) FROM `{a}`.ml2_port_bindings x JOIN "
        f"`{b}`.ml2_port_bindings y USING (port_id, host) "
        "WHERE CAST(x.vif_details AS BINARY) <> CAST(y.vif_details AS BINARY)",
    )
    return int(out.strip())


def repaired_match(a: str, b: str, src: str) -> int:
    """Rows drifted in the source whose vif_details differ between a and b (0 expected)."""
    out = sql(
        None,
        f"SELECT COUNT(*) FROM `{src}`.ml2_port_bindings s "
        f"JOIN `{a}`.ml2_port_bindings x USING (port_id, host) "
        f"JOIN `{b}`.ml2_port_bindings y USING (port_id, host) "
        "WHERE s.vif_details = '' AND s.status = 'ACTIVE' "
        "AND CAST(x.vif_details AS BINARY) <> CAST(y.vif_details AS BINARY)",
    )
    return int(out.strip())


_SEC = re.compile(r"\((\d+(?:\.\d+)?) sec\)")


def blanket(database: str, statement: str) -> tuple[Timed, float | None, str]:
    """The UPDATE through the mariadb client (-vvv): wall, the server's own time, the
    'Rows matched' line."""
    run = timed([*mariadb_args(database), "-vvv", "-e", statement])
    secs = _SEC.findall(run.stdout)
    info = next((line.strip() for line in run.stdout.splitlines() if "Rows matched" in line), "")
    return run, float(secs[0]) if secs else None, info


def read_floor_sql(database: str, ordered: bool = False) -> str:
    """What the repair must read at least: its candidate rows (live VM-port bindings of
    the vif_types a repairable rule can flag), compiled from ``NeutronDatabase`` itself.

    ``ordered``: by device_id, as the repair read them before issue 14's sixth pass."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    from vifdoctor.repair.plan import repair_codes
    from vifdoctor.rules.registry import repair_vif_types
    from vifdoctor.sources.interface import Selectors
    from vifdoctor.sources.neutron_db import BINDINGS, NeutronDatabase

    engine = sa.create_engine(url(database))
    try:
        with NeutronDatabase(engine) as source:
            query = source._binding_query(Selectors(), active=True, compute=True)
            if not ordered:  # as _stream reads the candidates
                query = query.order_by(None)
            types = sorted(repair_vif_types(repair_codes([])))
            if types:
                query = query.where(source._t[BINDINGS].c.vif_type.in_(types))
            return (
                str(query.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True}))
                + ";"
            )
    finally:
        engine.dispose()


def read_floor(database: str, statement: str) -> Timed:
    """The candidate rows read by the ``mariadb`` client with --quick into /dev/null."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as f:
        f.write(statement)
        f.flush()
        return timed(
            [
                "sh",
                "-c",
                " ".join([*mariadb_args(database), "-N", "-B", "--quick"])
                + f" < {f.name} > /dev/null",
            ]
        )


def size_flag(batch: int) -> list[str]:
    """``--batch-size B``; none for 0 (vifdoctor's own default: adaptive since issue 14)."""
    return ["--batch-size", str(batch)] if batch else []


def label(batch: int) -> str:
    return f"--batch-size {batch}" if batch else "(no --batch-size)"


def repair_cmd(database: str, backup: str, batch: int, json_output: bool = True) -> list[str]:
    """``json_output=False``: the default output (a table, summarized past 1,000 rows)."""
    return [
        "repair",
        "--neutron-db",
        url(database),
        "--apply",
        "--backup-dir",
        backup,
        *(["-f", "json"] if json_output else []),
        *size_flag(batch),
    ]


_FOOTER = re.compile(
    r"^repair: (?P<changed>\d+) changed, .*; (?P<batches>\d+) batch\(es\), "
    r"(?P<retries>\d+) retried, longest transaction (?P<longest>\d+) ms$",
    re.M,
)


def table_outcome(text: str) -> dict:
    """The outcome a table's footer states (``-f json`` has it as a document)."""
    m = _FOOTER.search(text)
    if m is None:
        sys.exit(f"no outcome line in the table's footer: {text[-600:]}")
    return {
        "changed": int(m["changed"]),
        "batches": int(m["batches"]),
        "retries": int(m["retries"]),
        "longest_transaction_ms": float(m["longest"]),
    }


def profile_repair(batch: int, top: int, env: dict) -> str:
    copy_database(SOURCE, COPY_A)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "repair.prof")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                out,
                "-m",
                "vifdoctor",
                *repair_cmd(COPY_A, os.path.join(tmp, "backup"), batch),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        if proc.returncode not in (0, 1, 2):
            sys.exit(f"profiled repair failed (exit {proc.returncode}): {proc.stderr[-800:]}")
        text = io.StringIO()
        stats = pstats.Stats(out, stream=text)
        stats.strip_dirs().sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        return text.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--rows",
        type=int,
        default=100000,
        help="drifted (VD101, empty vif_details) rows to repair (default 100000)",
    )
    p.add_argument(
        "--ports", type=int, default=250000, help="ports in the cloud around them (default 250000)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        action="append",
        default=[],
        help="repair --batch-size; repeatable; 0: none given, vifdoctor's default (the default)",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs of each (default 1)")
    p.add_argument("--seed", type=int, default=1, help="generate.py --seed (default 1)")
    p.add_argument("--reuse", action="store_true", help=f"use {SOURCE} as it is when it exists")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also run one repair under cProfile and print its top entries",
    )
    p.add_argument("--top", type=int, default=25, help="profile entries shown (default 25)")
    p.add_argument("--keep", action="store_true", help="keep the copies afterwards")
    p.add_argument(
        "--no-table",
        action="store_true",
        help="do not also time repair --apply with its default output (the summary table)",
    )
    args = p.parse_args(argv)
    sizes = args.batch_size or [0]
    env = child_env()

    from generate import generate

    exists = sql(None, f"SHOW DATABASES LIKE '{SOURCE}'").strip()
    if args.reuse and exists:
        print(f"== reusing {SOURCE}", flush=True)
    else:
        print(f"== generating {SOURCE}: {args.ports} ports, {args.rows} drifted", flush=True)
        generate(
            args.ports,
            SOURCE,
            drift=0.0,
            seed=args.seed,
            nova=False,
            tweak=plant_drift(args.rows, args.seed),
        )
    drifted = int(
        sql(
            SOURCE,
            "SELECT COUNT(*) FROM ml2_port_bindings WHERE vif_details='' AND status='ACTIVE'",
        ).strip()
    )
    total = int(sql(SOURCE, "SELECT COUNT(*) FROM ml2_port_bindings").strip())
    print(f"   {total} binding rows, {drifted} ACTIVE with empty vif_details", flush=True)

    vd = vifdoctor_command()
    floor_statement = read_floor_sql(SOURCE)
    ordered_statement = read_floor_sql(SOURCE, ordered=True)
    reads: list[Timed] = []
    ordered_reads: list[Timed] = []
    tables: list[dict] = []
    repairs: dict[int, list[dict]] = {b: [] for b in sizes}
    blankets: list[dict] = []
    copies: list[float] = []
    backup_root = Path(tempfile.mkdtemp(prefix="vifdoctor-repair-bench-"))
    try:
        for rep in range(max(1, args.repeat)):
            for batch in sizes:
                copies.append(copy_database(SOURCE, COPY_A))
                plan = timed([*vd, "plan", "--neutron-db", url(COPY_A), "-f", "json"], env=env)
                planned = len(json.loads(plan.stdout)["changes"])
                backup = backup_root / f"r{rep}-b{batch}"
                run = timed([*vd, *repair_cmd(COPY_A, str(backup), batch)], env=env)
                doc = json.loads(run.stdout)
                outcome = doc["outcome"]
                backup_mb = sum(f.stat().st_size for f in backup.iterdir()) / 2**20
                changed = differing(SOURCE, COPY_A)
                repairs[batch].append(
                    {
                        "plan": plan,
                        "run": run,
                        "outcome": outcome,
                        "planned": planned,
                        "changed_rows": changed,
                        "backup_mb": backup_mb,
                        "backup": backup,
                    }
                )
                print(
                    f"   [{rep + 1}] {label(batch)}: plan {plan.wall:.2f} s (CPU {plan.cpu:.2f} s, "
                    f"{planned} rows), repair --apply {run.wall:.2f} s (CPU {run.cpu:.2f} s, "
                    f"exit {run.rc}, "
                    f"{outcome['changed']} changed, {outcome['batches']} batches, "
                    f"{outcome['retries']} retries, longest transaction "
                    f"{outcome['longest_transaction_ms']} ms, peak RSS {run.rss_mb:.0f} MB, "
                    f"backup {backup_mb:.1f} MB); rows now differing from the source: "
                    f"{changed}",
                    flush=True,
                )
            reads.append(read_floor(SOURCE, floor_statement))
            ordered_reads.append(read_floor(SOURCE, ordered_statement))
            print(
                f"   [{rep + 1}] read floor (mariadb --quick): the repair's query "
                f"{reads[-1].wall:.2f} s, ordered by device_id (before the sixth pass) "
                f"{ordered_reads[-1].wall:.2f} s",
                flush=True,
            )
            copies.append(copy_database(SOURCE, COPY_B))
            b_run, b_secs, b_info = blanket(COPY_B, TARGETED)
            copies.append(copy_database(SOURCE, COPY_C))
            c_run, c_secs, c_info = blanket(COPY_C, EVERY_ROW)
            mismatch = repaired_match(COPY_A, COPY_B, SOURCE)
            mismatch_c = repaired_match(COPY_A, COPY_C, SOURCE)
            # Then undo the last repair of A with its own backup, and time that.
            last = repairs[sizes[-1]][-1]
            [backup_file] = sorted(last["backup"].glob("repair-*.json"))
            undo = timed(
                [
                    *vd,
                    "rollback",
                    str(backup_file),
                    "--neutron-db",
                    url(COPY_A),
                    "--apply",
                    "--backup-dir",
                    str(last["backup"] / "rb"),
                    "-f",
                    "json",
                    *size_flag(sizes[-1]),
                ],
                env=env,
            )
            last["rollback"], last["restored"] = undo, differing(SOURCE, COPY_A) == 0
            print(
                f"   [{rep + 1}] rollback --apply of the {label(sizes[-1])} repair: "
                f"{undo.wall:.2f} s (CPU {undo.cpu:.2f} s, exit {undo.rc}, peak RSS "
                f"{undo.rss_mb:.0f} MB); source "
                f"restored byte for byte: {'yes' if last['restored'] else 'NO'}",
                flush=True,
            )
            blankets.append(
                {
                    "targeted": (b_run, b_secs, b_info),
                    "every": (c_run, c_secs, c_info),
                    "b_changed": differing(SOURCE, COPY_B),
                    "mismatch": mismatch,
                    "mismatch_c": mismatch_c,
                }
            )
            print(
                f"   [{rep + 1}] blanket UPDATE WHERE vif_details='': {b_run.wall:.2f} s "
                f"(server {b_secs} s; {b_info}); every row: {c_run.wall:.2f} s "
                f"(server {c_secs} s; {c_info}); repaired rows differing A vs B: {mismatch}, "
                f"A vs C: {mismatch_c}",
                flush=True,
            )
            # After A's checks and rollback: A repaired again, with the default output.
            if not args.no_table:
                copies.append(copy_database(SOURCE, COPY_A))
                backup = backup_root / f"r{rep}-table"
                run = timed([*vd, *repair_cmd(COPY_A, str(backup), sizes[0], False)], env=env)
                t_outcome = table_outcome(run.stdout)
                t_changed = differing(SOURCE, COPY_A)
                tables.append({"run": run, "outcome": t_outcome, "changed_rows": t_changed})
                print(
                    f"   [{rep + 1}] {label(sizes[0])}, default output (table): repair --apply "
                    f"{run.wall:.2f} s (CPU {run.cpu:.2f} s, exit {run.rc}, "
                    f"{t_outcome['changed']} changed, {t_outcome['batches']} batches, longest "
                    f"transaction {t_outcome['longest_transaction_ms']:.0f} ms, peak RSS "
                    f"{run.rss_mb:.0f} MB); rows now differing from the source: {t_changed}",
                    flush=True,
                )
    finally:
        shutil.rmtree(backup_root, ignore_errors=True)

    best_b = min(blankets, key=lambda b: b["targeted"][0].wall)
    best_c = min(blankets, key=lambda b: b["every"][0].wall)
    floor = best_b["targeted"][0].wall
    read = min(r.wall for r in reads)
    target_floor = read + floor
    print(
        f"\n{drifted} drifted rows among {total} bindings; copy of the database "
        f"{min(copies):.1f}-{max(copies):.1f} s (not timed)"
    )
    ordered_read = min(r.wall for r in ordered_reads)
    print(
        f"floor: read of the candidate rows (mariadb --quick, the repair's own query) "
        f"{read:.2f} s (runs: {' '.join(f'{r.wall:.2f}' for r in reads)}; client CPU "
        f"{' '.join(f'{r.cpu:.2f}' for r in reads)}) + blanket UPDATE {floor:.2f} s "
        f"= {target_floor:.2f} s"
    )
    print(
        f"       (the same rows ordered by device_id, the query before the sixth pass: "
        f"{ordered_read:.2f} s, runs {' '.join(f'{r.wall:.2f}' for r in ordered_reads)}; "
        f"with it the floor is {ordered_read + floor:.2f} s)\n"
    )
    head = (
        f"{'run':<34} {'wall s':>7} {'x blanket':>9} {'x floor':>7} {'longest txn ms':>14} "
        f"{'batches':>7} {'retries':>7} {'RSS MB':>7}"
    )
    print(head)
    print("-" * len(head))
    for batch in sizes:
        runs = repairs[batch]
        r = min(runs, key=lambda x: x["run"].wall)
        longest = max(x["outcome"]["longest_transaction_ms"] for x in runs)
        print(
            f"{'repair --apply ' + label(batch):<34} {r['run'].wall:>7.2f} "
            f"{r['run'].wall / floor:>9.2f} {r['run'].wall / target_floor:>7.2f} "
            f"{longest:>14.1f} {r['outcome']['batches']:>7} "
            f"{max(x['outcome']['retries'] for x in runs):>7} {r['run'].rss_mb:>7.0f}"
        )
        p_best = min(x["plan"].wall for x in runs)
        print(
            f"{'  (plan -f json, read side)':<34} {p_best:>7.2f} {p_best / floor:>9.2f} "
            f"{p_best / read:>7.2f}  (x the read floor)"
        )
        undone = [x["rollback"].wall for x in runs if "rollback" in x]
        if undone:
            rb = min(undone)
            print(f"{'  rollback --apply of its backup':<34} {rb:>7.2f} {rb / floor:>9.2f}")
    if tables:
        t = min(tables, key=lambda x: x["run"].wall)
        print(
            f"{'repair --apply, default output':<34} {t['run'].wall:>7.2f} "
            f"{t['run'].wall / floor:>9.2f} {t['run'].wall / target_floor:>7.2f} "
            f"{max(x['outcome']['longest_transaction_ms'] for x in tables):>14.1f} "
            f"{t['outcome']['batches']:>7} "
            f"{max(x['outcome']['retries'] for x in tables):>7} {t['run'].rss_mb:>7.0f}"
        )
    b = best_b["targeted"]
    c = best_c["every"]
    print(
        f"{'blanket UPDATE, same rows':<34} {b[0].wall:>7.2f} {1:>9.2f} "
        f"{(b[1] or b[0].wall) * 1000:>14.1f} {1:>7}"
    )
    print(
        f"{'blanket UPDATE, every row':<34} {c[0].wall:>7.2f} {c[0].wall / floor:>9.2f} "
        f"{(c[1] or c[0].wall) * 1000:>14.1f} {1:>7}"
    )
    print("\nevery run (wall s / longest transaction ms):")
    for batch in sizes:
        print(
            f"  repair {label(batch):<20} "
            + "  ".join(
                f"{x['run'].wall:.2f}/{x['outcome']['longest_transaction_ms']}"
                for x in repairs[batch]
            )
            + "   plan "
            + " ".join(f"{x['plan'].wall:.2f}" for x in repairs[batch])
        )
    if tables:
        print(
            "  repair, default output      "
            + "  ".join(
                f"{x['run'].wall:.2f}/{x['outcome']['longest_transaction_ms']:.0f}" for x in tables
            )
        )
    print("  read floor (its own query)  " + "  ".join(f"{r.wall:.2f}" for r in reads))
    print("  read floor, ordered         " + "  ".join(f"{r.wall:.2f}" for r in ordered_reads))
    print(
        "  blanket, same rows          "
        + "  ".join(f"{x['targeted'][0].wall:.2f}" for x in blankets)
    )
    print(
        "  blanket, every row          " + "  ".join(f"{x['every'][0].wall:.2f}" for x in blankets)
    )
    ok = (
        all(x["mismatch"] == 0 and x["b_changed"] == drifted for x in blankets)
        and all(
            x["changed_rows"] == drifted
            and x["outcome"]["changed"] == drifted
            and x.get("restored", True)
            for runs in repairs.values()
            for x in runs
        )
        and all(x["changed_rows"] == drifted and x["outcome"]["changed"] == drifted for x in tables)
    )
    print(
        f"\nsame vif_details for the {drifted} rows after repair and after the blanket "
        f"UPDATE, and no other row changed by either: {'yes' if ok else 'NO'}"
    )
    if args.profile:
        print(f"\n== cProfile of repair --apply {label(sizes[0])}\n")
        print(profile_repair(sizes[0], args.top, env))
    if not args.keep:
        conn = connect(None, autocommit=True)
        try:
            with conn.cursor() as cur:
                for name in (COPY_A, COPY_B, COPY_C):
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
