"""``vifdoctor demo``: build the incident's cloud in SQLite, audit it, show what to try next."""

from __future__ import annotations

import argparse
import shlex
from typing import IO

from vifdoctor import api
from vifdoctor.demo.incident import LAYOUT, build_demo
from vifdoctor.report import Column, Listing, renderer
from vifdoctor.report.findings import audit_listing
from vifdoctor.report.remediation import remediation_listing


def run_ovn(args: argparse.Namespace, out: IO[str]) -> int:
    """The ML2/OVN demo: NB, SB and ovn-northd live only while it runs."""
    from vifdoctor.demo import ovn
    from vifdoctor.demo.ovnlab import ovn_lab_running

    ovn.check_tools()
    url = ovn.build_neutron(args.dir)
    with ovn_lab_running() as lab:
        ovn.build_ovn(lab)
        report = api.audit(neutron_db=url, ovn_nb_connection=lab.nb, ovn_sb_connection=lab.sb)
        listing = audit_listing(report).select(args.column)
        if args.format != "table":
            renderer(args.format)(listing, out)
            return 0
        out.write(
            f"Demo ML2/OVN cloud, half-way out of an OVS -> OVN migration:\n"
            f"  Neutron {url}\n  OVN NB  {lab.nb}\n  OVN SB  {lab.sb} "
            "(a private ovsdb-server pair and ovn-northd, stopped when the demo "
            "ends)\n\n"
        )
        renderer("table")(listing, out)
    out.write(
        f"\nThe audit exits with code {report.exit_code} here. "
        "`vifdoctor explain VD406` (or any code) says more.\n"
    )
    return 0


def run(args: argparse.Namespace, out: IO[str]) -> int:
    if getattr(args, "ovn", False):
        return run_ovn(args, out)
    url, nova_url = build_demo(args.dir)
    report = api.audit(neutron_db=url, nova_db=[nova_url])
    listing = audit_listing(report).select(args.column)
    if args.format != "table":
        renderer(args.format)(listing, out)
        return 0
    out.write(
        f"Demo cloud (the Havana -> Icehouse incident, {LAYOUT} layout):\n"
        f"  Neutron {url}\n  Nova    {nova_url}\n\n"
    )
    renderer("table")(listing, out)
    out.write(
        "\nPer instance: what Nova has, what it will do, what it needs (`vifdoctor remediation`):\n"
    )
    renderer("table")(_instances_listing(report), out)
    renderer("table")(remediation_listing(report), out)
    db, nova = shlex.quote(url), shlex.quote(nova_url)
    out.write(
        "\nThe audit exits with code "
        f"{report.exit_code} here (0 clean, 1 warnings, 2 failures). Try next:\n"
        f"  vifdoctor audit --neutron-db {db} --code VD101\n"
        f"  vifdoctor audit --neutron-db {db} --nova-db {nova} -f json\n"
        f"  vifdoctor audit --neutron-db {db} --host compute000 -c Port -c Code -f value\n"
        f"  vifdoctor audit --neutron-db {db} --firewall-driver openvswitch\n"
        "  vifdoctor explain VD101\n"
        f"  vifdoctor plan --neutron-db {db}          # the exact changes, read-only\n"
        f"  vifdoctor plan --neutron-db {db} --sql    # the same as guarded SQL\n"
        f"  vifdoctor repair --neutron-db {db} --apply   # backed up, guarded\n"
        f"  vifdoctor remediation --neutron-db {db} --nova-db {nova}\n"
        "  vifdoctor rollback vifdoctor-backup-*/repair-*.json "
        f"--neutron-db {db} --apply\n"
    )
    return 0


def _instances_listing(report) -> Listing:
    rows = []
    for inst in report.instances:
        info = inst["instance"] or {}
        impact = inst["impact"]
        rows.append(
            {
                "instance": inst["device_id"],
                "host": info.get("host", ""),
                "state": impact["state"],
                "codes": " ".join(inst["codes"]),
                "security_groups": impact["security_groups"],
                "next": impact["next_stop_start_or_hard_reboot"],
            }
        )
    columns = [
        Column("instance", "Instance"),
        Column("host", "Host"),
        Column("state", "State"),
        Column("codes", "Codes"),
        Column("security_groups", "Security Groups"),
        Column("next", "Next Stop/Start or Hard Reboot"),
    ]
    return Listing(columns, rows, {"instances": rows}, rows_key="instances")
