"""Helpers for the migration tests: INACTIVE rows as the field leaves them, Nova cells
with instances and migrations, and full-table dumps to compare byte for byte."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from testkit.novakit import HYBRID, HYBRID_TEXT, port_id, vif, vm_port, vm_uuid
from vifdoctor.demo.builder import BindingSpec
from vifdoctor.demo.nova import (
    InstanceSpec,
    MigrationSpec,
    create_nova_schema,
    write_instances,
    write_migrations,
)


@dataclass
class Cloud:
    """Neutron ports, Nova rows, and what the test expects of them."""

    ports: list = field(default_factory=list)
    instances: list[InstanceSpec] = field(default_factory=list)
    moves: list[MigrationSpec] = field(default_factory=list)
    expected: set = field(default_factory=set)  # (code, device_id, port_id)
    inactive: set = field(default_factory=set)  # (device_id, port_id) of INACTIVE rows


def inactive_row(host: str, *, bound: bool = True) -> BindingSpec:
    """A failed move's destination row (bound, with a level), or a finished move's source
    row whose cleanup failed (unbound, empty details, no level)."""
    if bound:
        return BindingSpec(
            host=host,
            vif_type="ovs",
            vif_details=HYBRID_TEXT,
            status="INACTIVE",
            profile='{"migrating_to": "' + host + '"}',
        )
    return BindingSpec(
        host=host, vif_type="unbound", vif_details="", status="INACTIVE", driver=None
    )


def write_cell(
    url: str, instances: Sequence[InstanceSpec], moves: Sequence[MigrationSpec], *, icehouse: bool
) -> None:
    engine = sa.create_engine(url)
    try:
        if icehouse:
            create_nova_schema(engine)
        write_instances(engine, instances)
        write_migrations(engine, moves)
    finally:
        engine.dispose()


def dump(url: str, table: str) -> list[tuple]:
    """Every row of a table, every column, in primary-key order."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            t = sa.Table(table, sa.MetaData(), autoload_with=conn)
            return [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))]
    finally:
        engine.dispose()


SRC, DST = "compute1", "compute2"
FAILED, RUNNING, ONLY, LATE, CLEANUP, FINISHED = range(1, 7)


def cloud() -> tuple[list, list, list]:
    """Six instances, each with one INACTIVE row:

    FAILED   live migration failed: bound row on the destination (VD206, deleted)
    RUNNING  live migration running: its destination row (kept)
    ONLY     failed move, but the port has no ACTIVE row (VD206, never deleted)
    LATE     failed move; another move starts after the plan (kept by the re-check)
    CLEANUP  completed move, unbound row left on the source (VD206, deleted)
    FINISHED resize awaiting confirmation: its source row (kept, a revert needs it)
    """
    ports, instances, moves = [], [], []
    for n in range(1, 7):
        u, p = vm_uuid(n), port_id(n)
        here = DST if n in (CLEANUP, FINISHED) else SRC
        there = SRC if here == DST else DST
        port = vm_port(p, u, here)
        port.extra_bindings = [inactive_row(there, bound=n != CLEANUP)]
        if n == ONLY:
            port.binding, port.extra_bindings = port.extra_bindings[0], []
        ports.append(port)
        instances.append(InstanceSpec(u, here, network_info=[vif(p, HYBRID)]))
        status = {RUNNING: "running", CLEANUP: "completed", FINISHED: "finished"}.get(n, "failed")
        moves.append(
            MigrationSpec(
                u,
                SRC,
                DST,
                status,
                migration_type="resize" if n == FINISHED else "live-migration",
                old_flavor=1,
                new_flavor=2 if n == FINISHED else 1,
            )
        )
    return ports, instances, moves
