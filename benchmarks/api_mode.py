"""Time the audit through the real Neutron and Nova APIs against the database path.

    .venv/bin/python benchmarks/api_mode.py --ports 20000 [--reuse] [--all-inactive-bindings]
        [--keep] [--save DIR]

1. generate ``vifdoctor_api_N`` (Neutron) and ``vifdoctor_api_N_nova`` (Nova cell)
   with ``benchmarks/generate.py`` (skipped with ``--reuse`` when they exist), plus
   a nova_api database ``vifdoctor_api_N_novaapi`` (nova 34.0.0's schema dump) mapping
   every live instance to the cell, and the ``instance_extra`` flavor rows nova's
   server views need;
   and one ``migrations`` record (status error, live-migration) for each instance whose
   port has an INACTIVE binding: generate.py's INACTIVE rows are failed live migrations;
2. start the real neutron 29.0.0 API (tests/neutron_server.py) and nova 34.0.0 compute
   API (tests/nova_server.py), one gunicorn worker each, on those databases;
3. time ``vifdoctor audit --os-cloud vdtest -f json`` (Neutron and Nova through their
   APIs; INACTIVE bindings read only where Nova shows a move, issue 14) and the database
   path ``vifdoctor audit --neutron-db URL --nova-db URL -f json``, each in a child under
   ``/usr/bin/time`` (wall, peak RSS); the API runs count their HTTP requests by kind
   (benchmarks/_http_count.py: how many, seconds waited on the servers, span), unless
   ``VIFDOCTOR_BENCH_COMMAND`` names another checkout to run (then uncounted);
4. compare the findings both paths can see: every finding's (code, port, host), less
   the codes the APIs cannot show (VD104, VD111: text that does not parse; VD201, VD203,
   VD205: Nova's cache; VD204 soft-deleted vs unknown is the same code either way).
   ``--save DIR`` keeps each run's JSON (and request counts) to diff port by port.

The servers and the API databases are stopped and dropped at the end; the generated
Neutron/Nova databases are kept only with ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import connect, url, vifdoctor_command  # noqa: E402

from vifdoctor.sources.neutron_api import UNSEEN_CODES  # noqa: E402
from vifdoctor.sources.nova_api import CACHE_CODES  # noqa: E402

#: What the APIs cannot show (docs/api-mode.md): left out of the comparison.
API_BLIND = UNSEEN_CODES | CACHE_CODES


def sql(database: str | None, *statements: str) -> None:
    conn = connect(database, autocommit=True)
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()


def exists(database: str) -> bool:
    conn = connect(None)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (database,))
            return cur.fetchone() is not None
    finally:
        conn.close()


class Run(NamedTuple):
    wall: float
    rss_mb: float
    exit_code: int
    doc: dict
    requests: dict  # shape -> count, seconds (summed over threads), span, starts_at


def run(argv: list[str], env: dict, work: Path, requests: Path | None = None) -> Run:
    """One audit in a child under /usr/bin/time (wall, peak RSS); API runs count their
    HTTP requests into ``requests`` (benchmarks/_http_count.py)."""
    measured = work / "time.txt"
    command = (
        [sys.executable, str(Path(__file__).with_name("_http_count.py")), str(requests)]
        if requests is not None
        else vifdoctor_command()
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", "-o", str(measured), *command, *argv, "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1, 2):
        sys.exit(f"{' '.join(argv[:3])} failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    rss_mb = int(measured.read_text().split()[-1]) / 1024
    counted = json.loads(requests.read_text())["requests"] if requests is not None else {}
    return Run(wall, rss_mb, proc.returncode, json.loads(proc.stdout), counted)


def keyed(doc: dict) -> set[tuple[str, str, str]]:
    return {
        (f["code"], f["port_id"], f["host"]) for f in doc["findings"] if f["code"] not in API_BLIND
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, default=20000)
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the generated databases")
    p.add_argument("--save", type=Path, help="write each run's JSON document into this folder")
    p.add_argument(
        "--all-inactive-bindings",
        action="store_true",
        help="also time the API audit reading every VM port's bindings",
    )
    args = p.parse_args(argv)

    from generate import generate
    from testkit import dbfixtures
    from testkit.neutron_server import running_server as running_neutron
    from testkit.nova_server import FLAVOR_JSON
    from testkit.nova_server import running_server as running_nova

    db = f"vifdoctor_api_{args.ports}"
    cell, api = f"{db}_nova", f"{db}_novaapi"
    if not (args.reuse and exists(db) and exists(cell)):
        generate(args.ports, db, 0.1, 1, nova=True)
    sql(None, f"DROP DATABASE IF EXISTS `{api}`", f"CREATE DATABASE `{api}` CHARACTER SET utf8mb4")
    _, api_ddl = dbfixtures.build_nova34_mariadb_ddl()
    dbfixtures.load_mariadb_sql(api, api_ddl, "nova api DDL")
    # Each INACTIVE binding is a failed live migration (generate.py): Nova logs one record
    # per such move, which is what API mode reads (os-migrations) to choose its ports.
    sql(
        cell,
        "DELETE FROM migrations",
        "INSERT INTO migrations (created_at, source_compute, dest_compute, status, "
        "instance_uuid, migration_type, hidden, deleted, uuid) SELECT UTC_TIMESTAMP(), "
        "a.host, b.host, 'error', p.device_id, 'live-migration', 0, 0, UUID() "
        f"FROM `{db}`.ml2_port_bindings b JOIN `{db}`.ports p ON p.id = b.port_id "
        f"JOIN `{db}`.ml2_port_bindings a ON a.port_id = b.port_id AND a.status = 'ACTIVE' "
        "WHERE b.status = 'INACTIVE' AND p.device_owner LIKE 'compute:%'",
    )
    sql(
        cell,
        "DELETE FROM instance_extra",
        "INSERT INTO instance_extra (created_at, deleted, instance_uuid, flavor) "
        f"SELECT UTC_TIMESTAMP(), 0, uuid, '{FLAVOR_JSON}' FROM instances WHERE deleted = 0",
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OS_")
        and k
        not in (
            "VIFDOCTOR_NEUTRON_DB",
            "VIFDOCTOR_NOVA_DB",
            "VIFDOCTOR_NOVA_API_DB",
            "PYTHONUNBUFFERED",
        )
    }
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "neutron").mkdir()
            with (
                running_neutron(url(db), work / "neutron") as neutron,
                running_nova(url(api), url(cell), neutron.url, work / "nova") as nova,
            ):
                nova.add_clouds_entry(neutron.clouds_yaml)
                sql(
                    api,
                    "INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, "
                    "project_id, user_id, queued_for_delete) SELECT UTC_TIMESTAMP(), "
                    "i.uuid, (SELECT id FROM cell_mappings LIMIT 1), i.project_id, "
                    f"i.user_id, 0 FROM `{cell}`.instances i WHERE i.deleted = 0",
                )
                env["OS_CLIENT_CONFIG_FILE"] = str(neutron.clouds_yaml)
                runs = [
                    ("api", ["audit", "--os-cloud", "vdtest"]),
                    ("db", ["audit", "--neutron-db", url(db), "--nova-db", url(cell)]),
                ]
                if args.all_inactive_bindings:
                    runs.insert(
                        1, ("api-all", ["audit", "--os-cloud", "vdtest", "--all-inactive-bindings"])
                    )
                for name, command in runs:
                    sql(db, "UPDATE agents SET heartbeat_timestamp = UTC_TIMESTAMP()")
                    # VIFDOCTOR_BENCH_COMMAND (another checkout) runs uncounted
                    counted = (
                        work / f"{name}-requests.json"
                        if name != "db" and not os.environ.get("VIFDOCTOR_BENCH_COMMAND")
                        else None
                    )
                    try:
                        results[name] = r = run(command, env, work, counted)
                    except SystemExit:
                        print("nova API log:", nova.log.read_text()[-3000:], file=sys.stderr)
                        raise
                    if args.save:
                        args.save.mkdir(parents=True, exist_ok=True)
                        (args.save / f"{name}.json").write_text(json.dumps(r.doc, indent=1))
                        if counted is not None:
                            (args.save / counted.name).write_text(counted.read_text())
                    print(
                        f"   {name:<8} {r.wall:8.1f} s, peak RSS {r.rss_mb:.0f} MB (exit "
                        f"{r.exit_code}), {len(r.doc['findings'])} findings"
                        + (
                            f", {sum(c['count'] for c in r.requests.values())} requests"
                            if counted
                            else ""
                        ),
                        flush=True,
                    )
                    for shape, c in r.requests.items():
                        print(
                            f"      {c['count']:6d} x {shape:<40} {c['seconds']:7.1f} s waited, "
                            f"{c['span']:7.1f} s from t={c['starts_at']:.1f} s"
                        )
    finally:
        sql(None, f"DROP DATABASE IF EXISTS `{api}`")
        if not args.keep:
            sql(None, f"DROP DATABASE IF EXISTS `{db}`", f"DROP DATABASE IF EXISTS `{cell}`")
    db_keys = keyed(results["db"].doc)
    same = True
    for name in results:
        if name == "db":
            continue
        got = keyed(results[name].doc)
        print(
            f"{name}: {len(got)} comparable findings, database path {len(db_keys)}; "
            f"only through the API {len(got - db_keys)}, only in the database "
            f"{len(db_keys - got)}"
        )
        for k in sorted(got ^ db_keys)[:10]:
            print("   differs:", k)
        same = same and got == db_keys
    print(f"same findings (less {', '.join(sorted(API_BLIND))}): {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
