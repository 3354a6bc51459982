"""Time ``vifdoctor audit`` with OVN's NB/SB against the floor of reading the same tables.

    .venv/bin/python benchmarks/ovn.py --ports 10000 [--reuse] [--repeat 3]

1. generate a Neutron cloud of N ports (``benchmarks/generate.py --no-nova``, database
   ``vifdoctor_bench_ovn_N``) and make it a migrated one: every OVS agent dead (its
   bindings still name the openvswitch driver, as after the real migration);
2. a private NB/SB with a real ovn-northd (vifdoctor/demo/ovnlab.py); one chassis per host; every
   port an LSP on ``neutron-<network>`` (requested-chassis = its host, neutron's
   external_ids), loaded in bulk by OVSDB ``transact`` (JSON-RPC); northd makes the
   Port_Bindings (``ovn-nbctl --wait=sb sync``); each is claimed by its host's chassis;
3. time (wall, peak RSS): the audit without OVN, the audit with OVN, the OVN read alone
   (``read_ovn`` in a child), and the floor: ``ovsdb-client dump`` of the tables the audit
   reads (NB Logical_Switch_Port, Logical_Switch, NB_Global; SB Port_Binding, Chassis,
   Chassis_Private) into /dev/null.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import ROOT, connect, url, vifdoctor_command  # noqa: E402
from audit import best, timed  # noqa: E402

from vifdoctor.demo.ovnlab import OvnLab  # noqa: E402
from vifdoctor.sources.ovn import NB_COLUMNS, SB_COLUMNS  # noqa: E402

CHUNK = 5000


def say(text: str) -> None:
    print(f"[ovn-bench] {text}", flush=True)


def database_exists(database: str) -> bool:
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (database,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def migrated(database: str) -> tuple[list[str], dict[str, str], list[tuple]]:
    """Kill the OVS agents (migrated cloud); hosts, networks, ports to mirror in NB."""
    conn = connect(database, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE agents SET heartbeat_timestamp = UTC_TIMESTAMP() - INTERVAL 1 DAY")
            cur.execute("SELECT DISTINCT host FROM agents")
            hosts = sorted(h for (h,) in cur.fetchall())
            cur.execute("SELECT id, network_id FROM ports")
            nets = {}
            cur.execute(
                "SELECT p.id, p.network_id, p.device_owner, b.host FROM ports p "
                "JOIN ml2_port_bindings b ON b.port_id = p.id "
                "AND b.status = 'ACTIVE'"
            )
            ports = list(cur.fetchall())
            for _pid, net, _owner, _host in ports:
                nets[net] = f"neutron-{net}"
    finally:
        conn.close()
    return hosts, nets, ports


def transact(lab: OvnLab, sock: str, schema: str, ops: list) -> None:
    """One OVSDB transaction over JSON-RPC (python-ovs, as ovsdb-client transact sends it;
    a 5000-port transaction is too long for a command-line argument)."""
    import ovs.jsonrpc
    import ovs.stream

    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(sock))
    if error:
        sys.exit(f"cannot open {sock}: error {error}")
    conn = ovs.jsonrpc.Connection(stream)
    try:
        error, reply = conn.transact_block(
            ovs.jsonrpc.Message.create_request("transact", [schema, *ops])
        )
    finally:
        conn.close()
    if error or reply.error or any("error" in r for r in reply.result if r):
        sys.exit(f"transact failed: {error or reply.error or reply.result[-3:]}")


def load_ovn(lab: OvnLab, hosts: list[str], nets: dict[str, str], ports: list[tuple]) -> None:
    t0 = time.monotonic()
    for host in hosts:
        lab.add_chassis(f"ch-{host}", host)
    say(f"{len(hosts)} chassis in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    transact(
        lab,
        lab.nb,
        "OVN_Northbound",
        [
            {"op": "insert", "table": "Logical_Switch", "row": {"name": name}}
            for name in nets.values()
        ],
    )
    for start in range(0, len(ports), CHUNK):
        ops: list = []
        by_switch: dict[str, list] = {}
        for i, (pid, net, owner, host) in enumerate(ports[start : start + CHUNK]):
            ref = f"p{i}"
            ops.append(
                {
                    "op": "insert",
                    "table": "Logical_Switch_Port",
                    "uuid-name": ref,
                    "row": {
                        "name": pid,
                        "options": ["map", [["requested-chassis", host]]],
                        "external_ids": [
                            "map",
                            [
                                ["neutron:port_name", ""],
                                ["neutron:device_owner", owner],
                                ["neutron:host_id", host],
                                ["neutron:revision_number", "1"],
                            ],
                        ],
                    },
                }
            )
            by_switch.setdefault(nets[net], []).append(["named-uuid", ref])
        for name, refs in by_switch.items():
            ops.append(
                {
                    "op": "mutate",
                    "table": "Logical_Switch",
                    "where": [["name", "==", name]],
                    "mutations": [["ports", "insert", ["set", refs]]],
                }
            )
        transact(lab, lab.nb, "OVN_Northbound", ops)
    say(f"{len(ports)} LSPs on {len(nets)} switches in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    lab._run(["ovn-nbctl", f"--db={lab.nb}", "--timeout=600", "--wait=sb", "sync"], timeout=900)
    say(f"ovn-northd made the Port_Bindings in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    uuids = {}
    for host in hosts:
        uuids[host] = lab.sbctl("--bare", "--columns=_uuid", "find", "Chassis", f"name=ch-{host}")
    for start in range(0, len(ports), CHUNK):
        transact(
            lab,
            lab.sb,
            "OVN_Southbound",
            [
                {
                    "op": "update",
                    "table": "Port_Binding",
                    "where": [["logical_port", "==", pid]],
                    "row": {"chassis": ["uuid", uuids[host]], "up": True},
                }
                for pid, _net, _owner, host in ports[start : start + CHUNK]
                if host in uuids
            ],
        )
    say(f"claims in {time.monotonic() - t0:.1f} s")


READ_ONLY = """
import sys, time
from vifdoctor.sources.ovn import read_ovn, resolve_ovn
t0 = time.monotonic()
view = read_ovn(resolve_ovn(sys.argv[1], sys.argv[2], []), 75)
print(len(view.ports), round(time.monotonic() - t0, 2))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, required=True)
    p.add_argument("--reuse", action="store_true", help="keep an existing generated database")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)
    database = f"vifdoctor_bench_ovn_{args.ports}"
    if not (args.reuse and database_exists(database)):
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate.py"),
                "--ports",
                str(args.ports),
                "--database",
                database,
                "--no-nova",
            ],
            check=True,
        )
    hosts, nets, ports = migrated(database)
    lab = OvnLab()
    try:
        lab.start()
        load_ovn(lab, hosts, nets, ports)
        neutron = [*vifdoctor_command(), "audit", "--neutron-db", url(database), "-f", "json"]
        ovn = ["--ovn-nb-connection", lab.nb, "--ovn-sb-connection", lab.sb]
        env = {"PYTHONPATH": str(ROOT)}
        import os

        env = {**os.environ, **env}
        runs = {
            "audit, Neutron only": best([timed(neutron, env=env) for _ in range(args.repeat)]),
            "audit with NB/SB": best([timed(neutron + ovn, env=env) for _ in range(args.repeat)]),
            "OVN read alone (read_ovn)": best(
                [
                    timed([sys.executable, "-c", READ_ONLY, lab.nb, lab.sb], env=env)
                    for _ in range(args.repeat)
                ]
            ),
        }
        # ovsdb-client dump takes one table (and its columns) per run: one run per table.
        floor = [
            ["ovsdb-client", "-f", "json", "dump", sock, schema, table, *columns]
            for sock, schema, tables in (
                (lab.nb, "OVN_Northbound", NB_COLUMNS),
                (lab.sb, "OVN_Southbound", SB_COLUMNS),
            )
            for table, columns in tables.items()
        ]
        floor_runs = [best([timed(cmd) for _ in range(args.repeat)]) for cmd in floor]
        for cmd in floor:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)  # it really ran
        runs["Python start + imports (no read)"] = best(
            [
                timed(
                    [sys.executable, "-c", "import vifdoctor.sources.ovn, ovsdbapp, ovs.stream"],
                    env=env,
                )
                for _ in range(args.repeat)
            ]
        )
        say(f"ports: {len(ports)}, hosts/chassis: {len(hosts)}, switches: {len(nets)}")
        for name, run in runs.items():
            say(f"{name}: {run.wall:.2f} s, peak RSS {run.rss_mb:.0f} MB")
        say(
            f"floor, ovsdb-client dump of the same tables and columns ({len(floor)} runs): "
            f"{sum(r.wall for r in floor_runs):.2f} s, largest peak RSS "
            f"{max(r.rss_mb for r in floor_runs):.0f} MB"
        )
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
