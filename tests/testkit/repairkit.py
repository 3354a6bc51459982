"""Helpers for the repair tests: clouds to repair, table snapshots, CLI runs, MariaDB users.

Everything here reads the database on its own connection (never vifdoctor's),
so a test compares what is really stored, column by column, before and after.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pymysql
import sqlalchemy as sa

from testkit import cloudfactory, dbfixtures
from vifdoctor.cmd.main import main
from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
)
from vifdoctor.demo.incident import incident_cloud

REPO_ROOT = Path(__file__).resolve().parents[2]

# What the OVS mechanism driver writes for a hybrid host (the incident's fix).
HYBRID = '{"port_filter": true, "ovs_hybrid_plug": true}'

Key = tuple[str, str]

# ----------------------------------------------------------------------------- clouds


def install(url: str, cloud: CloudSpec, layout: str | None) -> None:
    """Create ``layout``'s tables (None: the schema is already there) and write ``cloud``."""
    cloudfactory.write(url, cloud, layout)


def install_nullable_details(
    url: str, cloud: CloudSpec, layout: str, columns: Sequence[str] = ("vif_details",)
) -> None:
    """``layout``'s tables, but ``ml2_port_bindings.vif_details`` (and ``columns``)
    NULL-able, then ``cloud``.

    Neutron's own migrations make the column NOT NULL DEFAULT '' in every release
    (vifdoctor/demo/schemas.py); vendor and hand-altered schemas drop the NOT NULL,
    and a ``BindingSpec(vif_details=None)`` then stores SQL NULL. The table is
    recreated empty (SQLite cannot ALTER a column's nullability).
    """
    from vifdoctor.demo.builder import write_cloud
    from vifdoctor.demo.schemas import build_metadata, create_schema

    engine = sa.create_engine(url)
    try:
        create_schema(engine, layout)
        table = build_metadata(layout).tables["ml2_port_bindings"]
        for name in columns:
            table.c[name].nullable = True
            table.c[name].server_default = None
        with engine.begin() as conn:
            table.drop(conn)
            table.create(conn)
        write_cloud(engine, cloud)
    finally:
        engine.dispose()


def install_demo(url: str, extra_ports: Sequence[PortSpec] = ()) -> CloudSpec:
    """The incident's demo cloud (icehouse layout), plus ``extra_ports`` on its network."""
    cloud = incident_cloud()
    cloud.ports.extend(extra_ports)
    install(url, cloud, "icehouse")
    return cloud


def demo_vm_port(port_id: str, host: str, details: str, device_id: str = "") -> PortSpec:
    """A compute port on the demo cloud's network, bound ovs on a demo host."""
    from vifdoctor.demo import incident

    return PortSpec(
        id=port_id,
        network_id=incident.NETWORK_ID,
        device_owner="compute:nova",
        device_id=device_id or f"vm-{port_id[:8]}",
        project_id=incident.PROJECT_ID,
        binding=BindingSpec(
            host=host,
            vif_type="ovs",
            vif_details=details,
            driver="openvswitch",
            segment_id=incident.SEGMENT_ID,
        ),
    )


NET_ID = "11111111-2222-4333-8444-555555555555"
SEG_ID = "11111111-2222-4333-8444-666666666666"
PROJECT = "0123456789abcdef0123456789abcdef"


def legacy_ovs_agent(host: str) -> AgentSpec:
    """An OVS agent from before Newton: reports no ovs_hybrid_plug (assumed iptables_hybrid)."""
    return AgentSpec(
        host=host,
        agent_type="Open vSwitch agent",
        configurations={"bridge_mappings": {}, "tunnel_types": ["vxlan"]},
    )


def reporting_ovs_agent(host: str, hybrid: bool) -> AgentSpec:
    """A Newton+ OVS agent: it reports ovs_hybrid_plug (false under the openvswitch firewall)."""
    return AgentSpec(
        host=host,
        agent_type="Open vSwitch agent",
        configurations={
            "bridge_mappings": {},
            "tunnel_types": ["vxlan"],
            "integration_bridge": "br-int",
            "datapath_type": "system",
            "ovs_hybrid_plug": hybrid,
        },
    )


def port_uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def vm_port(n: int, host: str, details: str, *extra: BindingSpec) -> PortSpec:
    return PortSpec(
        id=port_uuid(n),
        network_id=NET_ID,
        device_owner="compute:nova",
        device_id=f"10000000-0000-4000-8000-{n:012d}",
        project_id=PROJECT,
        binding=BindingSpec(host=host, vif_type="ovs", vif_details=details, segment_id=SEG_ID),
        extra_bindings=list(extra),
    )


def network() -> NetworkSpec:
    return NetworkSpec(
        id=NET_ID,
        name="private",
        project_id=PROJECT,
        segments=[SegmentSpec(id=SEG_ID, network_type="vxlan", segmentation_id=1001)],
    )


def drifted_cloud(count: int, hosts: int = 4) -> CloudSpec:
    """``count`` Havana-era compute ports (empty vif_details) on legacy OVS hosts."""
    names = [f"compute{h:03d}" for h in range(hosts)]
    ports = [vm_port(n, names[n % hosts], "") for n in range(count)]
    return CloudSpec(networks=[network()], agents=[legacy_ovs_agent(h) for h in names], ports=ports)


# ------------------------------------------------------------------------- snapshots


def bindings(url: str) -> dict[Key, dict]:
    """Every column of every ml2_port_bindings row, keyed by (port_id, host)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            table = sa.Table("ml2_port_bindings", sa.MetaData(), autoload_with=conn)
            rows = conn.execute(sa.select(table)).mappings().all()
    finally:
        engine.dispose()
    out = {(r["port_id"], r["host"]): dict(r) for r in rows}
    assert len(out) == len(rows)
    return out


def details(url: str) -> dict[Key, str]:
    return {k: r["vif_details"] for k, r in bindings(url).items()}


def checksum(url: str) -> str:
    """SHA-256 over every column of every binding row, in key order."""
    rows = bindings(url)
    text = json.dumps([[list(k), rows[k]] for k in sorted(rows)], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def key_of(rows: dict[Key, dict], port_id: str, status: str | None = None) -> Key:
    """The one key of ``port_id`` (with the given status where the column exists)."""
    keys = [
        k
        for k, r in rows.items()
        if k[0] == port_id and (status is None or r.get("status") == status)
    ]
    assert len(keys) == 1, (port_id, keys)
    return keys[0]


def execute(url: str, *statements: str, **params) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ CLI


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``vifdoctor ARGV`` in-process through main(): (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def rollback_apply(capsys, backup: Path, url: str, backup_dir: Path | str) -> tuple[int, str, str]:
    """``vifdoctor rollback BACKUP --apply -f json``, its own backup in ``backup_dir``."""
    return cli(
        capsys,
        "rollback",
        str(backup),
        "--neutron-db",
        url,
        "--apply",
        "--backup-dir",
        str(backup_dir),
        "-f",
        "json",
    )


def cli_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, err = cli(capsys, *argv, "-f", "json")
    assert code != 3, err
    return code, json.loads(out)


def subprocess_argv(*argv: str) -> list[str]:
    return [sys.executable, "-m", "vifdoctor", *argv]


def spawn(*argv: str, cwd: Path, log: Path) -> subprocess.Popen:
    """``vifdoctor ARGV`` in its own process; stdout/stderr go to ``log``.out/.err."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("VIFDOCTOR_DEBUG", None)
    return subprocess.Popen(
        subprocess_argv(*argv),
        cwd=cwd,
        env=env,
        stdout=open(f"{log}.out", "w"),
        stderr=open(f"{log}.err", "w"),
    )  # noqa: SIM115


def one_error_line(err: str) -> str:
    """The single stderr line of a refused command (exit 3), checked to be one clean line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("vifdoctor: error:"), err
    assert "Traceback" not in err
    return lines[0]


def backups(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.exists() else []


# -------------------------------------------------------------------------- MariaDB


def dbname_of(url: str) -> str:
    return sa.engine.make_url(url).database


def mariadb_root(sql: str, *params) -> list[tuple]:
    conn = pymysql.connect(
        host=dbfixtures.MARIADB_HOST,
        port=dbfixtures.MARIADB_PORT,
        user=dbfixtures.MARIADB_USER,
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall())
    finally:
        conn.close()


@contextlib.contextmanager
def mariadb_user(dbname: str, privileges: str) -> Iterator[tuple[str, str]]:
    """A throwaway user with ``privileges`` on ``dbname``.* and a password: (name, password)."""
    user = f"vd_{secrets.token_hex(4)}"
    password = f"pw{secrets.token_hex(8)}"
    mariadb_root(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
    try:
        mariadb_root(f"GRANT {privileges} ON `{dbname}`.* TO '{user}'@'127.0.0.1'")
        yield user, password
    finally:
        mariadb_root(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def mariadb_url_as(dbname: str, user: str, password: str) -> str:
    return (
        f"mysql+pymysql://{user}:{password}@{dbfixtures.MARIADB_HOST}:"
        f"{dbfixtures.MARIADB_PORT}/{dbname}?charset=utf8mb4"
    )


@contextlib.contextmanager
def same_backend_database(url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database on the same backend as ``url`` (dropped afterwards)."""
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / f'copy-{secrets.token_hex(3)}.sqlite'}"
        return
    with dbfixtures.mariadb_database() as name:
        yield dbfixtures.mariadb_url(name)
