"""Helpers for the Nova tests: bindings judged as the audit does, instances, caches, clouds.

Pure helpers build :class:`vifdoctor.rules.nova.Instance` objects with caches
written by ``vif_entry`` (key for key what nova 34.0.0 caches); DB helpers write
a Neutron cloud and Nova cells, and run the real command line.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

import pymysql
import sqlalchemy as sa

from testkit import dbfixtures
from testkit.cloudfactory import legacy_ovs, run_cli
from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
    write_cloud,
)
from vifdoctor.demo.nova import InstanceSpec, vif_entry, write_instances
from vifdoctor.demo.schemas import create_schema
from vifdoctor.model import Agent, Binding, Instance
from vifdoctor.rules.binding import Judgement, judge_binding
from vifdoctor.rules.plug import RuleContext

CTX = RuleContext()
HYBRID = {"port_filter": True, "ovs_hybrid_plug": True}
HYBRID_TEXT = '{"port_filter": true, "ovs_hybrid_plug": true}'
NET_ID = "7a0c1d2e-3f40-4152-8364-758697a8b9c0"
SEG_ID = "7a0c1d2e-3f40-4152-8364-758697a8b9c1"
PROJECT = "0123456789abcdef0123456789abcdef"


def port_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def vm_uuid(n: int, prefix: str = "1") -> str:
    """Instance uuids; ``prefix`` (one hex digit) decides where they sort."""
    return f"{prefix}{n:07d}-0000-4000-8000-000000000000"


def vif(port: str, details: dict | None = None, vif_type: str = "ovs", **kw: Any) -> dict:
    mac = f"fa:16:3e:{port[-6:-4]}:{port[-4:-2]}:{port[-2:]}"
    return vif_entry(
        port, vif_type, details if details is not None else {}, network_id=NET_ID, mac=mac, **kw
    )


def cache(*vifs: dict) -> str:
    return json.dumps(list(vifs))


def instance(
    uuid: str = "vm-1", *, host: str = "compute1", network_info: str | None = None, **kw: Any
) -> Instance:
    values: dict[str, Any] = {"cell": "cell1", "vm_state": "active", "power_state": 1}
    values.update(kw)
    return Instance(uuid=uuid, host=host, network_info=network_info, **values)


def judged(
    b: Binding, agents: Sequence[Agent] | None = None, ctx: RuleContext = CTX
) -> tuple[Binding, Judgement]:
    """The binding with its judgement, as run_audit hands them to judge_instance."""
    host_agents = [legacy_ovs(b.host)] if agents is None else list(agents)
    return b, judge_binding(b, host_agents, ctx)


# ----------------------------------------------------------------------------- clouds


def network() -> NetworkSpec:
    return NetworkSpec(
        id=NET_ID,
        name="private",
        project_id=PROJECT,
        segments=[SegmentSpec(id=SEG_ID, network_type="vxlan", segmentation_id=1001)],
    )


def legacy_agent(host: str) -> AgentSpec:
    """An OVS agent from before Newton: no ovs_hybrid_plug in its report (iptables_hybrid)."""
    return AgentSpec(
        host=host,
        agent_type="Open vSwitch agent",
        configurations={"bridge_mappings": {}, "tunnel_types": ["vxlan"]},
    )


def vm_port(
    port: str, device: str, host: str, details: str = HYBRID_TEXT, vif_type: str = "ovs"
) -> PortSpec:
    return PortSpec(
        id=port,
        network_id=NET_ID,
        device_owner="compute:nova",
        device_id=device,
        project_id=PROJECT,
        binding=BindingSpec(
            host=host,
            vif_type=vif_type,
            vif_details=details,
            driver="openvswitch",
            segment_id=SEG_ID,
        ),
    )


def write_neutron(
    url: str, ports: Sequence[PortSpec], hosts: Sequence[str], layout: str | None = "icehouse"
) -> None:
    """A cloud of ``ports`` on one network, a legacy OVS agent on every host."""
    engine = sa.create_engine(url)
    try:
        if layout is not None:
            create_schema(engine, layout)
        write_cloud(
            engine,
            CloudSpec(
                networks=[network()], agents=[legacy_agent(h) for h in hosts], ports=list(ports)
            ),
        )
    finally:
        engine.dispose()


def write_nova(url: str, specs: Sequence[InstanceSpec], *, schema=None) -> None:
    """``schema(engine)`` first when given (e.g. create_nova_schema), then the instances."""
    engine = sa.create_engine(url)
    try:
        if schema is not None:
            schema(engine)
        write_instances(engine, specs)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------- CLI


def cli_json(*argv: str) -> tuple[int, dict, str]:
    """``vifdoctor ARGV -f json``: (exit code, parsed document, stderr); it must have run."""
    code, out, err = run_cli([*argv, "-f", "json"])
    assert code in (0, 1, 2), f"exit {code}: {err}"
    return code, json.loads(out), err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("vifdoctor: error:"), err
    assert "Traceback" not in err
    return lines[0]


def codes_by_device(doc: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in doc["findings"]:
        if f["device_id"]:
            out.setdefault(f["device_id"], set()).add(f["code"])
    return out


def pairs(doc: dict, prefix: str = "VD2") -> set[tuple[str, str, str]]:
    """(code, device_id, port_id) of every Nova finding."""
    return {
        (f["code"], f["device_id"], f["port_id"])
        for f in doc["findings"]
        if f["code"].startswith(prefix)
    }


# ----------------------------------------------------------------------------- MariaDB


def mariadb_root(sql: str) -> None:
    conn = pymysql.connect(
        host=dbfixtures.MARIADB_HOST,
        port=dbfixtures.MARIADB_PORT,
        user=dbfixtures.MARIADB_USER,
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@contextlib.contextmanager
def mariadb_reader(*dbnames: str) -> Iterator[tuple[str, str]]:
    """A throwaway user with SELECT on ``dbnames`` and a password: (name, password)."""
    user = f"vdn_{secrets.token_hex(4)}"
    password = f"Pw{secrets.token_hex(10)}"
    mariadb_root(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
    try:
        for name in dbnames:
            mariadb_root(f"GRANT SELECT ON `{name}`.* TO '{user}'@'127.0.0.1'")
        yield user, password
    finally:
        mariadb_root(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def dbname_of(url: str) -> str:
    return sa.engine.make_url(url).database
