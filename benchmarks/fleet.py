"""The fleet path at scale: merging 1,000 host reports, and the playbook on 200 hosts.

    .venv/bin/python benchmarks/fleet.py merge --hosts 250 --hosts 1000 [--ports-per-host 30]
    .venv/bin/python benchmarks/fleet.py playbook --hosts 200 --forks 50

``merge``: writes N synthetic host-scan reports (format version 1, shaped like a
real compute host's: per VM port the hybrid qbr/qvb/qvo/tap or the direct tap,
br-int, br-tun with one vxlan port per peer, br-ex, base links, one domain per
VM; about 5 % of ports wired direct on hybrid hosts) and a SQLite Neutron
database binding the same ports, then times ``audit --host-reports`` in a child
process (wall time and peak RSS from ``wait4``) three ways: without reports,
with the on-disk index (``HostReportIndex``, the default), and with the
in-memory loader it replaced (``HostReportFolder``, every report held at once).

``playbook``: one real lab host (tests/testkit/hostlab.py: a namespace with its own OVS,
VMs plugged by nova/os-vif, a br-tun with tunnel ports) is scanned for real; the
tool outputs it gave (virsh, ovs-vsctl, ip) are recorded, and N local hosts
replay them through stand-in commands (a namespace and two OVS daemons per
host is too heavy for N=200 on a shared 2-core machine). ansible-core then runs
the collection's host_scan playbook on the N hosts with ``ansible_connection:
local``: every host really runs the module and ``vifdoctor host-scan``, and its
report is written on the controller. Measured: wall time, the CPU of
ansible-playbook and everything under it, and apart the CPU of the "host side"
(module + host-scan, timed by /usr/bin/time around each host's Python).
docs/benchmarks.md turns the figures into a 1,000-host estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vifdoctor.demo.builder import (  # noqa: E402
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
    write_cloud,
)
from vifdoctor.demo.schemas import create_schema  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from testkit.fleetkit import synthetic_report  # noqa: E402

COLLECTIONS = ROOT / "contrib" / "ansible" / "collections"
NET, SEG, PROJECT = str(uuid.UUID(int=1)), str(uuid.UUID(int=2)), "p" * 32
HYBRID = {
    "bridge_name": "br-int",
    "connectivity": "l2",
    "datapath_type": "system",
    "ovs_hybrid_plug": True,
    "port_filter": True,
}


def make_fleet(
    folder: Path, hosts: int, per_host: int, tunnels: int, seed: int = 1
) -> tuple[str, int]:
    """Reports in folder/reports, Neutron in folder/neutron.sqlite; the URL and port count."""
    import sqlalchemy as sa

    rng = random.Random(seed)
    reports = folder / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    specs, agents = [], []
    for h in range(hosts):
        host = f"compute{h:04d}"
        ports = [
            (
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                rng.random() > 0.05,
            )
            for _ in range(per_host)
        ]
        (reports / f"{host}.json").write_text(
            json.dumps(synthetic_report(host, ports, tunnels), indent=1)
        )
        agents.append(
            AgentSpec(
                host=host,
                agent_type="Open vSwitch agent",
                configurations={
                    "ovs_hybrid_plug": True,
                    "integration_bridge": "br-int",
                    "tunnel_types": ["vxlan"],
                    "bridge_mappings": {},
                },
            )
        )
        specs += [
            PortSpec(
                id=p,
                network_id=NET,
                device_owner="compute:nova",
                device_id=vm,
                project_id=PROJECT,
                binding=BindingSpec(
                    host=host, vif_type="ovs", vif_details=json.dumps(HYBRID), segment_id=SEG
                ),
            )
            for p, vm, _ in ports
        ]
    url = f"sqlite:///{folder / 'neutron.sqlite'}"
    engine = sa.create_engine(url)
    try:
        create_schema(engine, "ocata")
        write_cloud(
            engine,
            CloudSpec(
                networks=[NetworkSpec(NET, "net", PROJECT, [SegmentSpec(SEG, "vxlan", None, 7)])],
                agents=agents,
                ports=specs,
            ),
        )
    finally:
        engine.dispose()
    return url, len(specs)


AUDIT_SNIPPET = r"""
import sys, time
from vifdoctor import api
from vifdoctor.sources.host_reports import HostReportFolder
from vifdoctor.sources.host_index import HostReportIndex
url, folder, how = sys.argv[1:4]
source = {"none": None, "index": HostReportIndex, "memory": HostReportFolder}[how]
t0 = time.monotonic()
report = api.audit(neutron_db=url, host_source=source(folder) if source else None)
n = sum(1 for _ in report.findings)
print(time.monotonic() - t0, n, report.summary()["by_code"])
"""


def timed_child(argv: list[str], env: dict | None = None) -> tuple[float, float, float, str]:
    """Run a child under /usr/bin/time: (wall s, CPU s of it and its children, peak RSS MiB,
    stdout). Not wait4 on a child of this process: a child's peak RSS starts from its
    parent's at fork, and this process holds the generated cloud."""
    with tempfile.NamedTemporaryFile("r") as timing, tempfile.TemporaryFile() as out:
        done = subprocess.run(
            ["/usr/bin/time", "-o", timing.name, "-f", "%e %U %S %M", *argv],
            stdout=out,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{argv[:4]} exited {done.returncode}")
        wall, user, system, rss_kib = timing.read().split()[-4:]
        out.seek(0)
        return float(wall), float(user) + float(system), int(rss_kib) / 1024, out.read().decode()


def merge(args: argparse.Namespace) -> None:
    for hosts in args.hosts:
        with tempfile.TemporaryDirectory(prefix="vifdoctor-fleet-") as tmp:
            folder = Path(tmp)
            t0 = time.monotonic()
            url, ports = make_fleet(folder, hosts, args.ports_per_host, args.tunnels)
            size = sum(p.stat().st_size for p in (folder / "reports").iterdir())
            print(
                f"\n{hosts} hosts, {ports} VM ports, reports {size / 2**20:.0f} MiB "
                f"(made in {time.monotonic() - t0:.0f} s)"
            )
            for how in ("none", "index", "memory"):
                wall, cpu, rss, out = timed_child(
                    [sys.executable, "-c", AUDIT_SNIPPET, url, str(folder / "reports"), how]
                )
                inner, findings, codes = out.split(" ", 2)
                print(
                    f"  reports={how:6} wall {wall:6.1f} s  audit {float(inner):6.1f} s  "
                    f"cpu {cpu:6.1f} s  peak RSS {rss:6.0f} MiB  findings {findings} "
                    f"{codes.strip()}"
                )


# ---------------------------------------------------------------------- the playbook

STANDIN = {
    "virsh": """#!/bin/sh
for last; do :; done
case "$*" in
  *" list --all --name") exec cat "{d}/virsh-list" ;;
  *" domstate "*) exec cat "{d}/virsh-domstate-$last" ;;
  *" dumpxml "*) exec cat "{d}/virsh-dumpxml-$last" ;;
esac
exit 1
""",
    "ovs-vsctl": """#!/bin/sh
for last; do :; done
exec cat "{d}/ovs-$last.json"
""",
    "ip": """#!/bin/sh
exec cat "{d}/ip-link.json"
""",
}


def record_lab_host(canned: Path, vms: int, tunnels: int) -> dict:
    """Wire a real lab host, time host-scan on it, record its tools' outputs."""
    from testkit.hostlab import ComputeHost

    from vifdoctor.demo.nova import vif_entry

    lab = ComputeHost("bench-lab").start()
    try:
        t0 = time.monotonic()
        for n in range(vms):
            port, vm = str(uuid.uuid4()), str(uuid.uuid4())
            details = (
                dict(HYBRID, datapath_type="netdev")
                if n % 2
                else {
                    **HYBRID,
                    "datapath_type": "netdev",
                    "ovs_hybrid_plug": False,
                    "ovs_create_tap": True,
                }
            )
            lab.plug(
                vm,
                [
                    vif_entry(
                        port,
                        "ovs",
                        details,
                        network_id=NET,
                        mac=f"fa:16:3e:00:01:{n:02x}",
                        tenant_id=PROJECT,
                        mtu=1450,
                    )
                ],
            )
        lab.vsctl("add-br", "br-tun", "--", "set", "Bridge", "br-tun", "datapath_type=netdev")
        for t in range(tunnels):  # loopback remote_ip: nothing leaves the machine
            name = f"vxlan-7f{t:06x}"
            lab.vsctl(
                "add-port",
                "br-tun",
                name,
                "--",
                "set",
                "Interface",
                name,
                "type=vxlan",
                f"options:remote_ip=127.0.{t // 250}.{t % 250 + 1}",
            )
        wired = time.monotonic() - t0
        scans = []
        for _ in range(5):
            t0 = time.monotonic()
            code, report, _ = lab.scan(canned / "real-report.json")
            scans.append(time.monotonic() - t0)
        uri = ["virsh", "-r", "-c", lab.libvirt_uri]
        (canned / "virsh-list").write_text(lab.ns(uri + ["list", "--all", "--name"]).stdout)
        for d in report["domains"]:
            for what in ("domstate", "dumpxml"):
                (canned / f"virsh-{what}-{d['name']}").write_text(
                    lab.ns(uri + [what, d["name"]]).stdout
                )
        for table, cols in (
            ("Bridge", "_uuid,name,datapath_type,ports"),
            ("Port", "_uuid,name,interfaces,tag"),
            ("Interface", "_uuid,name,type,ofport,external_ids,error"),
        ):
            (canned / f"ovs-{table}.json").write_text(
                lab.ns(
                    [
                        "ovs-vsctl",
                        f"--db={lab.ovsdb}",
                        "--format=json",
                        f"--columns={cols}",
                        "list",
                        table,
                    ]
                ).stdout
            )
        (canned / "ip-link.json").write_text(lab.ns(["ip", "-j", "-d", "link", "show"]).stdout)
        return {
            "wired_s": wired,
            "scan_s": sorted(scans),
            "report_bytes": (canned / "real-report.json").stat().st_size,
            "domains": len(report["domains"]),
            "ovs_interfaces": sum(
                len(p["interfaces"]) for b in report["ovs_bridges"] for p in b["ports"]
            ),
            "links": len(report["links"]),
        }
    finally:
        lab.stop()


def playbook(args: argparse.Namespace) -> None:
    import yaml

    with tempfile.TemporaryDirectory(prefix="vifdoctor-fleet-pb-") as tmp:
        tmpdir = Path(tmp)
        canned = tmpdir / "canned"
        bindir = canned / "bin"
        bindir.mkdir(parents=True)
        lab = record_lab_host(canned, args.vms, args.tunnels)
        print(
            f"real lab host: {lab['domains']} domains, {lab['ovs_interfaces']} OVS interfaces,"
            f" {lab['links']} links, report {lab['report_bytes'] / 1024:.0f} KiB; wired in "
            f"{lab['wired_s']:.0f} s; host-scan in the namespace "
            f"{', '.join(f'{s:.2f}' for s in lab['scan_s'])} s"
        )
        for tool, text in STANDIN.items():
            (bindir / tool).write_text(text.replace("{d}", str(canned)))
            (bindir / tool).chmod(0o755)
        hostcpu = tmpdir / "host-cpu.log"
        python = tmpdir / "host-python"
        python.write_text(
            f"#!/bin/sh\nexport PATH={bindir}:$PATH\nexec /usr/bin/time -a -o "
            f"{hostcpu} -f '%e %U %S' {sys.executable} \"$@\"\n"
        )
        python.chmod(0o755)
        vifdoctor = tmpdir / "vifdoctor"
        vifdoctor.write_text(f'#!/bin/sh\nexec {sys.executable} -m vifdoctor "$@"\n')
        vifdoctor.chmod(0o755)
        hosts = {f"sim{n:04d}": {} for n in range(args.hosts[0])}
        inventory = tmpdir / "inventory.yml"
        inventory.write_text(
            yaml.safe_dump(
                {
                    "compute": {
                        "vars": {
                            "ansible_connection": "local",
                            "ansible_become": False,
                            "ansible_python_interpreter": str(python),
                            "vifdoctor_bin": str(vifdoctor),
                        },
                        "hosts": hosts,
                    }
                }
            )
        )
        home = tmpdir / "home"
        env = {
            **os.environ,
            "HOME": str(home),
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_NOCOLOR": "1",
            "PYTHONPATH": str(ROOT),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        }
        reports = tmpdir / "reports"
        wall, cpu, rss, _ = timed_child(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                "-i",
                str(inventory),
                "vifdoctor.openstack.host_scan",
                "-f",
                str(args.forks),
                "-e",
                f"vifdoctor_reports_dir={reports}",
            ],
            env=env,
        )
        rows = [
            list(map(float, line.split()[-3:]))
            for line in hostcpu.read_text().splitlines()
            if line.strip() and line[0].isdigit()
        ]
        host_cpu = sum(u + s for _, u, s in rows)
        host_wall = sorted(e for e, _, _ in rows)
        written = len(list(reports.glob("*.json")))
        sample = json.loads(next(reports.glob("*.json")).read_text())
        if sample.get("errors") or len(sample.get("domains", [])) != lab["domains"]:
            raise SystemExit(f"the stand-in tools did not replay the lab host: {sample}")
        n = args.hosts[0]
        print(
            f"\nplaybook on {n} hosts, forks {args.forks}: wall {wall:.1f} s, "
            f"reports written {written}"
        )
        print(
            f"  CPU, ansible-playbook and all under it: {cpu:.1f} s; of it the host side "
            f"(module + host-scan, {len(rows)} runs): {host_cpu:.1f} s; controller: "
            f"{cpu - host_cpu:.1f} s = {(cpu - host_cpu) / n * 1000:.0f} ms per host"
        )
        print(
            f"  host side wall per host: median {host_wall[len(host_wall) // 2]:.2f} s, "
            f"max {host_wall[-1]:.2f} s; peak RSS of ansible-playbook {rss:.0f} MiB"
        )
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("merge", help="audit --host-reports over N synthetic reports")
    m.add_argument("--hosts", type=int, action="append", required=True)
    m.add_argument("--ports-per-host", type=int, default=30)
    m.add_argument("--tunnels", type=int, default=200, help="vxlan ports on br-tun per host")
    b = sub.add_parser("playbook", help="the host_scan playbook on N simulated hosts")
    b.add_argument("--hosts", type=int, action="append", required=True)
    b.add_argument("--forks", type=int, default=50)
    b.add_argument("--vms", type=int, default=10, help="VMs on the real lab host")
    b.add_argument("--tunnels", type=int, default=200, help="vxlan ports on its br-tun")
    args = p.parse_args(argv)
    {"merge": merge, "playbook": playbook}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
