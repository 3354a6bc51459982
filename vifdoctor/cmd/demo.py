"""``vifdoctor demo``: build the incident's cloud in SQLite, audit it, show what to try next."""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
from typing import IO

import sqlalchemy as sa

from vifdoctor.cmd.audit import audit_from_args
from vifdoctor.demo.builder import utcnow, write_cloud
from vifdoctor.demo.incident import LAYOUT, incident_cloud
from vifdoctor.demo.schemas import create_schema
from vifdoctor.errors import VifdoctorError
from vifdoctor.report import renderer
from vifdoctor.report.findings import audit_listing

NEUTRON_FILE = "neutron.sqlite"


def build(folder: str) -> str:
    """(Re)create the demo Neutron database; returns its SQLAlchemy URL."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise VifdoctorError(f"cannot create demo folder {folder}: {exc.strerror}") from None
    path = os.path.abspath(os.path.join(folder, NEUTRON_FILE))
    if os.path.exists(path):
        os.remove(path)  # only the demo's own file, rebuilt from scratch each time
    url = f"sqlite:///{path}"
    cloud = incident_cloud()
    # The demo's agents "keep reporting": a heartbeat a year ahead keeps them alive for the
    # commands the demo suggests, run minutes or days later, without a live agent process.
    ahead = utcnow() + datetime.timedelta(days=365)
    for agent in cloud.agents:
        if agent.alive:
            agent.heartbeat_at = ahead
    engine = sa.create_engine(url)
    try:
        create_schema(engine, LAYOUT)
        write_cloud(engine, cloud)
    finally:
        engine.dispose()
    return url


def run(args: argparse.Namespace, out: IO[str]) -> int:
    url = build(args.dir)
    audit_args = argparse.Namespace(
        neutron_db=url, neutron_config_file=[], firewall_driver=None,
        nova_generation="modern", nova_firewall_driver=None, agent_down_time=None,
        host=[], port=[], network=[], project=[], code=[],
    )
    report = audit_from_args(audit_args)
    listing = audit_listing(report).select(args.column)
    if args.format != "table":
        renderer(args.format)(listing, out)
        return 0
    out.write(f"Demo cloud (the Havana -> Icehouse incident, {LAYOUT} layout) built in {url}\n\n")
    renderer("table")(listing, out)
    db = shlex.quote(url)
    out.write(
        "\nThe audit exits with code "
        f"{report.exit_code} here (0 clean, 1 warnings, 2 failures). Try next:\n"
        f"  vifdoctor audit --neutron-db {db} --code VD101\n"
        f"  vifdoctor audit --neutron-db {db} -f json\n"
        f"  vifdoctor audit --neutron-db {db} --host compute000 -c Port -c Code -f value\n"
        f"  vifdoctor audit --neutron-db {db} --firewall-driver openvswitch\n"
        "  vifdoctor explain VD101\n"
        f"  vifdoctor plan --neutron-db {db}          # the exact changes, read-only\n"
        f"  vifdoctor plan --neutron-db {db} --sql    # the same as guarded SQL\n"
        f"  vifdoctor repair --neutron-db {db} --apply   # backed up, guarded\n"
        "  vifdoctor rollback vifdoctor-backup-*/repair-*.json "
        f"--neutron-db {db} --apply\n"
    )
    return 0
