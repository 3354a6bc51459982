"""Hostile values and the helpers that feed them to vifdoctor (issue 13's hardening tests).

A hostile cloud is an ordinary drifted cloud (legacy OVS agents, bindings that
need ``ovs_hybrid_plug``) whose hosts, ids, device ids and details carry what
an attacker or an accident can put there: newlines, quotes, backslashes, '%',
NUL where the database allows it, terminal escapes and non-ASCII.
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import sqlalchemy as sa

from testkit import dbfixtures
from testkit.repairkit import legacy_ovs_agent, network
from vifdoctor.demo.builder import BindingSpec, CloudSpec, PortSpec
from vifdoctor.results import AuditReport

PROJECT = "0123456789abcdef0123456789abcdef"

# Hosts: the first is issue 13's injection, spelled as the attacker would.
HOSTS = [
    "compute000\nDELETE FROM agents; --",
    "o'neil\\'; DROP TABLE ports; --",
    "100%s %d \\N \\0 \\\\",
    "tab\there  two  spaces ",
    "\x1b[31mred\x1b[0m\r\n.shell rm -rf /",
    "ünïcødé-𝄞-\u202emoc",
    "\\! touch PWNED",
]
NUL_HOST = "nul\x00host"  # MariaDB and SQLite hold it; PostgreSQL text cannot

# Stored details: JSON objects that need ovs_hybrid_plug, with raw whitespace between
# tokens (guards must match it byte for byte) and hostile text inside strings.
DETAILS = [
    "",
    '{"port_filter": true}',
    '{"port_filter":  true,\n\t"k": "a  b"}',
    '{"port_filter": true, "q": "it\'s \\"quoted\\" \\\\ back %s %% \\u0000 nul"}',
    '{"port_filter": true, "u": "ünï 𝄞 \\u001b[2J", "s": "x\\ny"}',
    '{\r\n"port_filter": true , "pct": "100%"\r\n}',
]

DEVICE_IDS = [
    "x$(touch PWNED)",
    "`id`; rm -rf ~ #",
    "a'b\"c\\d\ne",
    "--all-projects",
    "\x1b]0;owned\x07",
]


def port_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def hostile_cloud(*, nul: bool, hostile_ids: bool = True, null: bool = False) -> CloudSpec:
    """One VM port per (host, details) pair on legacy OVS hosts with hostile names.

    ``null``: one more port per host whose details are SQL NULL (for a schema whose
    column allows it: repairkit.install_nullable_details).
    """
    hosts = HOSTS + ([NUL_HOST] if nul else [])
    ports = []
    n = 0
    details_list: list[str | None] = [*DETAILS, *([None] if null else [])]
    for h, host in enumerate(hosts):
        for d, details in enumerate(details_list):
            n += 1
            pid = port_id(n)
            if hostile_ids and d == 1:  # ports.id is VARCHAR(36)
                pid = ["p'\n--;x", "p\\%_'", "p é\x1b", "p\tq  r"][h % 4] + f"-{n}"
            ports.append(
                PortSpec(
                    id=pid,
                    network_id=network().id,
                    device_owner="compute:nova",
                    device_id=DEVICE_IDS[(h + d) % len(DEVICE_IDS)],
                    project_id=PROJECT,
                    binding=BindingSpec(
                        host=host,
                        vif_type="ovs",
                        vif_details=details,
                        segment_id=network().segments[0].id,
                    ),
                )
            )
    return CloudSpec(networks=[network()], agents=[legacy_ovs_agent(h) for h in hosts], ports=ports)


def hostile_report(value: object) -> AuditReport:
    """An audit report (what -f html draws) holding ``value`` wherever data goes.

    Text fields get ``value`` when it is text; JSON fields (an agent's configurations,
    a finding's extra, the schema) get it whatever it is.
    """
    text = value if isinstance(value, str) else "compute1"
    report = AuditReport(schema={"source": text, "url": text, "raw": value}, assumptions=[text])
    report.agents = [
        {
            "host": text,
            "agent_type": text,
            "alive": True,
            "admin_state_up": True,
            "ovs_hybrid_plug": value,
            "datapath_type": value,
            "integration_bridge": value,
            "configurations_error": text,
        }
    ]
    finding = {
        "code": "VD101",
        "severity": "failure",
        "port_id": text,
        "host": text,
        "device_id": text,
        "device_owner": "compute:nova",
        "nova_plug": text,
        "needed_plug": text,
        "message": text,
        "extra": value,
    }
    report.findings.add(finding, ("0", "VD101", text, text))  # the key AuditReport.add uses
    report.by_code["VD101"] += 1
    report.by_severity["failure"] += 1
    report.by_host[text] += 1
    return report


def dump(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: two databases are equal iff their dumps are."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            md = sa.MetaData()
            md.reflect(bind=conn)
            out = {}
            for name, table in md.tables.items():
                rows = [tuple(_untimed(v) for v in r) for r in conn.execute(sa.select(table))]
                out[name] = sorted(rows, key=repr)
    finally:
        engine.dispose()
    return out


def _untimed(value: object) -> object:
    """Timestamps differ between two installs of one cloud; the repair never writes them."""
    return "<time>" if isinstance(value, (datetime.datetime, datetime.date)) else value


def run_client(url: str, script: str) -> None:
    """Feed ``script`` to the database's own command-line client, as a DBA would."""
    u = sa.engine.make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        argv = ["sqlite3", "-bail", u.database]
    elif backend in ("mysql", "mariadb"):
        argv = [
            "mariadb",
            f"-h{dbfixtures.MARIADB_HOST}",
            f"-P{dbfixtures.MARIADB_PORT}",
            f"-u{dbfixtures.MARIADB_USER}",
            u.database,
        ]
    else:
        argv = [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            dbfixtures.POSTGRESQL_HOST,
            "-p",
            str(dbfixtures.POSTGRESQL_PORT),
            "-U",
            dbfixtures.POSTGRESQL_USER,
            "-d",
            u.database,
        ]
    proc = subprocess.run(
        argv, input=script.encode("utf-8"), capture_output=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert not proc.stderr.strip(), proc.stderr.decode(errors="replace")


def new_sqlite(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}"
