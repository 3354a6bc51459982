"""Helpers for the migration tests: INACTIVE rows as the field leaves them, Nova cells
with instances and migrations, and full-table dumps to compare byte for byte."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from novakit import HYBRID_TEXT

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
        return BindingSpec(host=host, vif_type="ovs", vif_details=HYBRID_TEXT,
                           status="INACTIVE", profile='{"migrating_to": "' + host + '"}')
    return BindingSpec(host=host, vif_type="unbound", vif_details="", status="INACTIVE",
                       driver=None)


def write_cell(url: str, instances: Sequence[InstanceSpec], moves: Sequence[MigrationSpec],
               *, icehouse: bool) -> None:
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
