"""Shared helpers for the rule, audit and CLI tests: rows, agents, clouds, CLI runs.

Pure helpers build :class:`vifdoctor.model.Binding`/:class:`Agent` objects the
way the Neutron source does; DB helpers write a ``CloudSpec`` with the demo
builder (which adapts to every layout) and run the real command line.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Sequence
from datetime import datetime
from unittest import mock

import sqlalchemy as sa

from vifdoctor.cmd.main import main
from vifdoctor.demo.builder import CloudSpec, write_cloud
from vifdoctor.demo.schemas import create_schema
from vifdoctor.model import Agent, Binding, parse_json_column
from vifdoctor.rules.plug import AGENT_LINUXBRIDGE, AGENT_OVS

# What the Icehouse..Juno OVS mechanism driver wrote (seed/incident-en.md).
HYBRID = '{"port_filter": true, "ovs_hybrid_plug": true}'
# neutron 29.0.0 OpenvswitchMechanismDriver output for an iptables_hybrid agent (domain.md 3).
HYBRID_29 = json.dumps(
    {
        "bridge_name": "br-int",
        "connectivity": "l2",
        "datapath_type": "system",
        "ovs_hybrid_plug": True,
        "port_filter": True,
    }
)
# ... and for an openvswitch-firewall agent.
DIRECT_29 = json.dumps(
    {
        "bridge_name": "br-int",
        "connectivity": "l2",
        "datapath_type": "system",
        "ovs_create_tap": True,
        "ovs_hybrid_plug": False,
        "port_filter": True,
    }
)
LINUXBRIDGE = '{"port_filter": true, "connectivity": "l2"}'


def binding(**kw) -> Binding:
    """A live compute-port ovs binding on compute1, overridable field by field."""
    values = {
        "port_id": "p-1",
        "host": "compute1",
        "vif_type": "ovs",
        "vif_details": HYBRID,
        "driver": "openvswitch",
        "device_owner": "compute:nova",
        "device_id": "vm-1",
        "network_id": "net-1",
        "project_id": "proj-1",
    }
    values.update(kw)
    return Binding(**values)


def agent(
    host: str = "compute1",
    agent_type: str = AGENT_OVS,
    *,
    alive: bool = True,
    admin_state_up: bool = True,
    raw: str | None = None,
    **config,
) -> Agent:
    """An agent as NeutronDatabase.agents builds it: ``raw`` is the configurations text."""
    text = json.dumps(config) if raw is None else raw
    parsed = parse_json_column(text)
    return Agent(
        id=f"agent-{agent_type}-{host}",
        agent_type=agent_type,
        host=host,
        alive=alive,
        admin_state_up=admin_state_up,
        configurations=parsed.as_dict(),
        configurations_error=parsed.error,
        configurations_raw=text,
    )


def legacy_ovs(host: str = "compute1", **kw) -> Agent:
    """An OVS agent from before Newton: it reports no ovs_hybrid_plug."""
    return agent(host, AGENT_OVS, bridge_mappings={}, tunnel_types=["vxlan"], **kw)


def reporting_ovs(hybrid, host: str = "compute1", **kw) -> Agent:
    """A Newton+ OVS agent reporting ovs_hybrid_plug (True only under iptables_hybrid)."""
    return agent(host, AGENT_OVS, ovs_hybrid_plug=hybrid, integration_bridge="br-int", **kw)


def lb_agent(host: str = "compute1", **kw) -> Agent:
    return agent(host, AGENT_LINUXBRIDGE, interface_mappings={"physnet1": "eth1"}, **kw)


# ----------------------------------------------------------------------------- databases


def write(url: str, cloud: CloudSpec, layout: str | None = None) -> None:
    """Create ``layout``'s tables (unless None: the schema is already there) and write."""
    engine = sa.create_engine(url)
    try:
        if layout is not None:
            create_schema(engine, layout)
        write_cloud(engine, cloud)
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.execute(sa.text(sql))
    finally:
        engine.dispose()


def run_cli(argv: Sequence[str], *, debug: bool = True) -> tuple[int, str, str]:
    """Run ``vifdoctor ARGV`` in-process: (exit code, stdout, stderr).

    argparse errors end in SystemExit; that is turned into its code here. With
    ``debug`` (VIFDOCTOR_DEBUG=1) an unexpected exception is not hidden behind
    main()'s one-line "internal error" but propagates and fails the calling test.
    """
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ):  # restored afterwards
        if debug:
            os.environ["VIFDOCTOR_DEBUG"] = "1"
        else:
            os.environ.pop("VIFDOCTOR_DEBUG", None)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def audit_json(url: str, *extra: str) -> tuple[int, dict]:
    """``vifdoctor audit --neutron-db URL -f json EXTRA``: (exit code, parsed document)."""
    code, out, err = run_cli(["audit", "--neutron-db", url, "-f", "json", *extra])
    assert code in (0, 1, 2), f"audit could not run (exit {code}): {err}"
    return code, json.loads(out)


def pairs(doc: dict) -> set[tuple[str, str]]:
    """(code, port_id) of every finding; agent findings (no port) give (code, host)."""
    return {(f["code"], f["port_id"] or f["host"]) for f in doc["findings"]}


def ago(now: datetime, seconds: float) -> datetime:
    from datetime import timedelta

    return now - timedelta(seconds=seconds)
