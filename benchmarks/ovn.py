"""Time ``vifdoctor audit`` with OVN's NB/SB against the floor of reading the same tables.

    .venv/bin/python benchmarks/ovn.py --ports 10000 [--ports 100000 ...] [--repeat 3]
        [--reuse] [--drop] [--py-spy .venv/bin/py-spy] [--serve]

For each ``--ports N``:

1. generate a Neutron cloud of N ports (``benchmarks/generate.py``'s ``generate``, no
   Nova, database ``vifdoctor_bench_ovn_N``) and make it a migrated one: every OVS agent
   dead (its bindings still name the openvswitch driver, as after the real migration);
2. a private NB/SB with a real ovn-northd (vifdoctor/demo/ovnlab.py), loaded in bulk
   JSON-RPC ``transact``s from that database (see :func:`load_ovn`): chassis, then every
   port an LSP as neutron's driver writes it, switch by switch with northd paused; northd
   makes the Port_Bindings in one recompute; each is claimed by its host's chassis, by
   ``_uuid``;
3. time (wall, peak RSS; best of ``--repeat``, runs interleaved): the audit without OVN,
   the audit with OVN, the OVN read alone (``read_ovn`` in a child), and two floors:
   ``ovsdb-client dump`` of every table and column the audit reads (NB then SB) and the
   audit's Neutron SQL run by ``mariadb --quick``; then what each select costs the server
   alone (read raw from the socket), and with ``--py-spy`` a sampled profile of the audit
   with OVN at the largest N.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import ROOT, connect, mariadb_args, url, vifdoctor_command  # noqa: E402
from audit import Run, best, child_env, database_exists, floor_sql, py_spy, timed  # noqa: E402
from generate import generate  # noqa: E402

from vifdoctor.demo.ovnlab import OvnLab  # noqa: E402
from vifdoctor.sources.ovn import NB_COLUMNS, SB_COLUMNS  # noqa: E402

CHUNK = 20000  # operations per transaction


def say(text: str) -> None:
    print(f"[ovn-bench] {text}", flush=True)


def migrated(database: str) -> tuple[list[str], list[tuple]]:
    """Kill the OVS agents (migrated cloud); the hosts, and the bound ports to mirror in NB
    (id, network, device owner, host, device id, project, MAC), by network."""
    conn = connect(database, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE agents SET heartbeat_timestamp = UTC_TIMESTAMP() - INTERVAL 1 DAY")
            cur.execute("SELECT DISTINCT host FROM agents")
            hosts = sorted(h for (h,) in cur.fetchall())
            cur.execute(
                "SELECT p.id, p.network_id, p.device_owner, b.host, p.device_id, p.project_id, "
                "p.mac_address FROM ports p JOIN ml2_port_bindings b ON b.port_id = p.id "
                "AND b.status = 'ACTIVE' ORDER BY p.network_id"
            )
            ports = list(cur.fetchall())
    finally:
        conn.close()
    return hosts, ports


class Rpc:
    """OVSDB JSON-RPC on one connection, with the audit's own session (Python's C json;
    python-ovs's ``jsonrpc`` would encode and parse 100,000-row transactions in pure Python).
    """

    def __init__(self, remote: str, schema: str):
        import ovs.poller
        import ovs.stream

        from vifdoctor.sources.ovn import _Session

        self.schema = schema
        self.session = _Session(ovs, remote, timeout=900)
        if self.session.error:
            sys.exit(f"cannot open {remote}: {self.session.error}")

    def transact(self, ops: list) -> list:
        result = self.session.call("transact", [self.schema, *ops])
        bad = [r for r in result if r and "error" in r]
        if bad:
            sys.exit(f"transact failed: {bad[:3]}")
        return result

    def select(self, table: str, columns: list[str], where: list | None = None) -> list[dict]:
        op = {"op": "select", "table": table, "where": where or [], "columns": columns}
        return self.transact([op])[0]["rows"]

    def close(self) -> None:
        self.session.close()


def _map(values: dict[str, str]) -> list:
    return ["map", [[k, v] for k, v in values.items()]]


def lsp_row(port: tuple) -> dict:
    """The NB Logical_Switch_Port neutron 29.0.0's OVN driver writes for a bound port
    (``ovn_client.get_external_ids_from_port`` and ``_get_port_options``, trimmed of
    what needs IPs)."""
    pid, net, owner, host, device, project, mac = port
    return {
        "name": pid,
        "addresses": mac,
        "port_security": mac,
        "enabled": True,
        "options": _map({"requested-chassis": host, "mcast_flood_reports": "true"}),
        "external_ids": _map(
            {
                "neutron:port_name": "",
                "neutron:device_id": device,
                "neutron:project_id": project,
                "neutron:cidrs": "",
                "neutron:device_owner": owner,
                "neutron:subnet_pool_addr_scope4": "",
                "neutron:subnet_pool_addr_scope6": "",
                "neutron:network_name": f"neutron-{net}",
                "neutron:security_group_ids": "",
                "neutron:revision_number": "2",
                "neutron:vnic_type": "normal",
                "neutron:port_capabilities": "",
                "neutron:mtu": "",
                "neutron:host_id": host,
            }
        ),
    }


def northd(lab: OvnLab, command: str) -> None:
    """``ovn-appctl -t ovn-northd pause|resume``: one recompute for the whole load."""
    lab._run(["ovn-appctl", "-t", str(lab.dir / "ovn-northd.ctl"), command])


def load_ovn(lab: OvnLab, hosts: list[str], ports: list[tuple]) -> dict[str, float]:
    """NB, then SB, in bulk transactions; the seconds of each step."""
    took: dict[str, float] = {}
    nb, sb = Rpc(lab.nb, "OVN_Northbound"), Rpc(lab.sb, "OVN_Southbound")
    try:
        t0 = time.monotonic()
        # Chassis as ``ovn-sbctl chassis-add`` makes them (Chassis + Encap), with the
        # Chassis_Private an ovn-controller keeps: one transaction.
        ops: list = []
        for i, host in enumerate(hosts):
            name = f"ch-{host}"
            ops += [
                {
                    "op": "insert",
                    "table": "Encap",
                    "uuid-name": f"e{i}",
                    "row": {
                        "type": "geneve",
                        "ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                        "chassis_name": name,
                        "options": _map({"csum": "true"}),
                    },
                },
                {
                    "op": "insert",
                    "table": "Chassis",
                    "uuid-name": f"c{i}",
                    "row": {"name": name, "hostname": host, "encaps": ["named-uuid", f"e{i}"]},
                },
                {
                    "op": "insert",
                    "table": "Chassis_Private",
                    "row": {"name": name, "chassis": ["named-uuid", f"c{i}"]},
                },
            ]
        sb.transact(ops)
        took["chassis"] = time.monotonic() - t0
        say(f"{len(ports)} ports: chassis {took['chassis']:.1f} s")

        # NB with ovn-northd paused: each switch inserted with its ports, CHUNK ports a
        # transaction; northd then makes every Port_Binding in one recompute.
        t0 = time.monotonic()
        northd(lab, "pause")
        by_net: dict[str, list[tuple]] = {}
        for port in ports:
            by_net.setdefault(port[1], []).append(port)
        ops, n = [], 0
        for net, members in by_net.items():
            refs = []
            for port in members:
                ref = f"p{n}"
                n += 1
                ops.append(
                    {
                        "op": "insert",
                        "table": "Logical_Switch_Port",
                        "uuid-name": ref,
                        "row": lsp_row(port),
                    }
                )
                refs.append(["named-uuid", ref])
            ops.append(
                {
                    "op": "insert",
                    "table": "Logical_Switch",
                    "row": {
                        "name": f"neutron-{net}",
                        "ports": ["set", refs],
                        "external_ids": _map({"neutron:network_name": ""}),
                    },
                }
            )
            if len(ops) >= CHUNK:
                nb.transact(ops)
                ops = []
        if ops:
            nb.transact(ops)
        took["NB load"] = time.monotonic() - t0
        say(f"{len(ports)} ports: NB load {took['NB load']:.1f} s")
        t0 = time.monotonic()
        northd(lab, "resume")
        lab._run(["ovn-nbctl", f"--db={lab.nb}", "--timeout=900", "--wait=sb", "sync"], timeout=960)
        took["northd"] = time.monotonic() - t0
        say(f"{len(ports)} ports: northd {took['northd']:.1f} s")

        # Claims, as each host's ovn-controller makes them: by Port_Binding _uuid.
        t0 = time.monotonic()
        chassis = {r["hostname"]: r["_uuid"] for r in sb.select("Chassis", ["_uuid", "hostname"])}
        host_of = {p[0]: p[3] for p in ports}
        ops = []
        for pb in sb.select("Port_Binding", ["_uuid", "logical_port"]):
            owner = chassis.get(host_of.get(pb["logical_port"], ""))
            if owner is None:
                continue
            ops.append(
                {
                    "op": "update",
                    "table": "Port_Binding",
                    "where": [["_uuid", "==", pb["_uuid"]]],
                    "row": {"chassis": owner, "up": True},
                }
            )
            if len(ops) >= CHUNK:
                sb.transact(ops)
                ops = []
        if ops:
            sb.transact(ops)
        took["claims"] = time.monotonic() - t0
        say(f"{len(ports)} ports: claims {took['claims']:.1f} s")

        # northd copies Port_Binding.up into the LSPs; then every chassis reports the
        # NB_Global nb_cfg it has seen (alive, as ovn-controller keeps it).
        t0 = time.monotonic()
        lab._run(["ovn-nbctl", f"--db={lab.nb}", "--timeout=900", "--wait=sb", "sync"], timeout=960)
        deadline = time.monotonic() + 600
        while nb.select("Logical_Switch_Port", ["_uuid"], [["up", "!=", True]]):
            if time.monotonic() > deadline:
                sys.exit("ovn-northd did not set the LSPs up within 600 s")
            time.sleep(0.5)
        (g,) = nb.select("NB_Global", ["nb_cfg"])
        sb.transact(
            [
                {
                    "op": "update",
                    "table": "Chassis_Private",
                    "where": [],
                    "row": {
                        "nb_cfg": g["nb_cfg"],
                        "nb_cfg_timestamp": int(time.time() * 1000),
                    },
                }
            ]
        )
        took["LSPs up"] = time.monotonic() - t0
        say(f"{len(ports)} ports: LSPs up {took['LSPs up']:.1f} s")
    finally:
        nb.close()
        sb.close()
    return took


READ_ONLY = """
import sys, time
from vifdoctor.sources.ovn import read_ovn, resolve_ovn
t0 = time.monotonic()
view = read_ovn(resolve_ovn(sys.argv[1], sys.argv[2], []), 75)
print(len(view.ports), round(time.monotonic() - t0, 2))
"""

ROWS = (
    ("audit", "audit, Neutron only"),
    ("audit_ovn", "audit with NB/SB"),
    ("read_ovn", "OVN read alone (read_ovn)"),
    ("imports", "of which start + imports"),
    ("floor_ovn", "floor: ovsdb-client dump NB + SB"),
    ("floor_neutron", "floor: Neutron SQL (mariadb)"),
)


def floor_command(lab: OvnLab) -> list[str]:
    """``ovsdb-client dump`` of each table and column the audit reads (one table per run),
    NB then SB, one after the other in one shell: GNU time reports their total wall time
    and the largest peak RSS among them."""
    runs = [
        ["ovsdb-client", "-f", "json", "dump", sock, schema, table, *columns]
        for sock, schema, tables in (
            (lab.nb, "OVN_Northbound", NB_COLUMNS),
            (lab.sb, "OVN_Southbound", SB_COLUMNS),
        )
        for table, columns in tables.items()
    ]
    return ["sh", "-ec", " && ".join(shlex.join(r) + " >/dev/null" for r in runs)]


def server_reads(lab: OvnLab) -> list[tuple[str, int, float, float]]:
    """Per table the audit reads: the reply's bytes, the seconds to its first byte and to
    its last, read raw from the socket (no parse): what the server alone costs."""
    out = []
    for sock, schema, tables in (
        (lab.nb, "OVN_Northbound", NB_COLUMNS),
        (lab.sb, "OVN_Southbound", SB_COLUMNS),
    ):
        for table, columns in tables.items():
            op = {"op": "select", "table": table, "where": [], "columns": ["_uuid", *columns]}
            request = {"id": 0, "method": "transact", "params": [schema, op]}
            echo = {"id": "end", "method": "echo", "params": ["vd-end-of-reply"]}
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(sock.removeprefix("unix:"))
                t0 = time.monotonic()
                s.sendall((json.dumps(request) + json.dumps(echo)).encode())
                size, first, last = 0, None, b""
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        sys.exit(f"{sock} closed the connection")
                    first = time.monotonic() - t0 if first is None else first
                    size += len(chunk)
                    if b"vd-end-of-reply" in last + chunk:
                        break
                    last = chunk[-32:]
            out.append((table, size, first, time.monotonic() - t0))
    return out


def measure(n: int, args: argparse.Namespace) -> dict:
    """Generate (or reuse) the cloud of ``n`` ports, load NB/SB, time every row of ROWS."""
    database = f"vifdoctor_bench_ovn_{n}"
    if not (args.reuse and database_exists(database)):
        t0 = time.monotonic()
        generate(n, database, 0.1, args.seed, nova=False)
        say(f"{n} ports: Neutron generated in {time.monotonic() - t0:.1f} s")
    hosts, ports = migrated(database)
    lab = OvnLab()
    try:
        lab.start()
        took = load_ovn(lab, hosts, ports)
        say(f"{n} ports: " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()))
        if args.serve:
            say(
                f"--neutron-db {url(database)} --ovn-nb-connection {lab.nb} "
                f"--ovn-sb-connection {lab.sb}  (Ctrl-C stops)"
            )
            signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill: stop the lab too
            signal.signal(signal.SIGINT, signal.default_int_handler)  # even in a background job
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return {}
        env = {**child_env(False), "PYTHONPATH": str(ROOT)}
        neutron = [*vifdoctor_command(), "audit", "--neutron-db", url(database), "-f", "json"]
        ovn = ("--ovn-nb-connection", lab.nb, "--ovn-sb-connection", lab.sb)
        commands = {
            "audit": (neutron, None),
            "audit_ovn": ([*neutron, *ovn], None),
            "read_ovn": ([sys.executable, "-c", READ_ONLY, lab.nb, lab.sb], None),
            "imports": (
                [sys.executable, "-c", "import vifdoctor.sources.ovn, ovsdbapp, ovs.stream"],
                None,
            ),
            "floor_ovn": (floor_command(lab), None),
            "floor_neutron": (
                [*mariadb_args(database), "-N", "-B", "--quick"],
                floor_sql(database),
            ),
        }
        subprocess.run(commands["floor_ovn"][0], check=True)  # it really runs
        runs: dict[str, list[Run]] = {k: [] for k in commands}
        for _ in range(max(1, args.repeat)):  # interleaved: the load hits every row alike
            for key, (cmd, stdin) in commands.items():
                runs[key].append(timed(cmd, stdin_text=stdin, env=env))
        reads = server_reads(lab)
        spied = ""
        if args.py_spy and n == max(args.ports):
            spied = py_spy(args.py_spy, database, args.top, env, ovn)
    finally:
        lab.stop()
        if args.drop:
            drop(database)
    return {
        "n": n,
        "hosts": len(hosts),
        "switches": len({p[1] for p in ports}),
        "took": took,
        "runs": runs,
        "py_spy": spied,
        "server": reads,
        "load": os.getloadavg(),
    }


def drop(database: str) -> None:
    conn = connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, action="append", required=True, help="repeatable")
    p.add_argument(
        "--reuse", action="store_true", help="use vifdoctor_bench_ovn_N as it is when it exists"
    )
    p.add_argument("--seed", type=int, default=1, help="generate.py --seed (default 1)")
    p.add_argument("--repeat", type=int, default=1, help="best of R runs (default 1)")
    p.add_argument("--drop", action="store_true", help="drop each Neutron database when done")
    p.add_argument(
        "--py-spy", metavar="EXE", help="also sample one audit with NB/SB at the largest N"
    )
    p.add_argument("--top", type=int, default=25, help="py-spy entries shown (default 25)")
    p.add_argument(
        "--serve",
        action="store_true",
        help="load the first N, print the connections, keep NB/SB up until Ctrl-C",
    )
    args = p.parse_args(argv)
    results = []
    for n in args.ports:
        result = measure(n, args)
        if args.serve:
            return 0
        results.append(result)
        best_of = {k: best(v) for k, v in result["runs"].items()}
        for key, label in ROWS:
            say(f"{n} ports: {label}: {best_of[key].wall:.2f} s, {best_of[key].rss_mb:.0f} MB")
    print()
    head = f"{'ports':>7} {'chassis':>7} {'run':<34} {'wall s':>7} {'peak RSS MB':>11}"
    print(head)
    print("-" * len(head))
    for r in results:
        b = {k: best(v) for k, v in r["runs"].items()}
        for key, label in ROWS:
            run = b[key]
            print(f"{r['n']:>7} {r['hosts']:>7} {label:<34} {run.wall:>7.2f} {run.rss_mb:>11.0f}")
        print(
            f"{r['n']:>7} {'':>7} {'audit with NB/SB / OVN floor':<34} "
            f"{b['audit_ovn'].wall / b['floor_ovn'].wall:>6.2f}x"
        )
        both = b["floor_ovn"].wall + b["floor_neutron"].wall
        print(
            f"{r['n']:>7} {'':>7} {'... / (OVN + Neutron floors)':<34} "
            f"{b['audit_ovn'].wall / both:>6.2f}x"
        )
    print("\nevery run (wall s; RSS MB), to judge the noise; load average after each size:")
    for r in results:
        print(f"  {r['n']} ports: load {' '.join(f'{x:.2f}' for x in r['load'])}")
        for key, label in ROWS:
            runs = r["runs"][key]
            print(
                f"    {label:<34} "
                + " ".join(f"{x.wall:.2f}" for x in runs)
                + "; "
                + " ".join(f"{x.rss_mb:.0f}" for x in runs)
            )
    print("\nwhat the servers alone cost, per select (read raw, no parse; one run):")
    for r in results:
        for table, size, first, last in r["server"]:
            print(
                f"  {r['n']:>7} {table:<20} {size / 1e6:7.1f} MB, first byte {first:6.2f} s, "
                f"last {last:6.2f} s"
            )
    for r in results:
        if r["py_spy"]:
            print(f"\n== py-spy of the audit with NB/SB at {r['n']} ports\n\n{r['py_spy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
