"""Neutron's network segments (type and physical network), for the OVN bridge-mapping rule.

A small table (one row per network segment), read whole from the database; through
the API, each single-segment network's provider attributes (the API does not say which
segment a binding uses).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from vifdoctor.model_ovn import Segment


def read_segments(source: Any) -> dict[str, Segment]:
    """Segment id -> Segment, from ``networksegments`` (``ml2_network_segments`` before
    Newton); through the API, "net:<network id>" -> the network's single segment."""
    by_network = getattr(source, "network_segments", None)
    if by_network is not None:  # the API: a network's own segment, keyed "net:<id>"
        return {f"net:{n}": Segment(t, p) for n, (t, p) in by_network().items()}
    conn = getattr(source, "conn", None)
    layout = getattr(source, "layout", None)
    table_name = getattr(layout, "segments_table", None)
    if conn is None or not table_name:
        return {}
    table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
    query = sa.select(table.c.id, table.c.network_type, table.c.physical_network)
    found = {str(i): Segment(t or "", p) for i, t, p in conn.execute(query)}
    conn.rollback()
    return found
