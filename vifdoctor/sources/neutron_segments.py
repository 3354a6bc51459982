"""Neutron's network segments (type and physical network), for the OVN bridge-mapping rule.

A small table (one row per network segment), read whole from the database;
through the API it is not read (VD403 then needs a segment the binding names).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from vifdoctor.model_ovn import Segment


def read_segments(source: Any) -> dict[str, Segment]:
    """Segment id -> Segment, from ``networksegments`` (``ml2_network_segments`` before
    Newton); empty for a source without a database connection."""
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
