"""Nova API databases' ``cell_mappings``, for the tests of cell discovery.

The demo's Nova is one Icehouse-era database without cells, so this lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from vifdoctor.demo.builder import _insert, utcnow
from vifdoctor.demo.nova import _reflect


@dataclass
class CellMappingSpec:
    """One nova_api ``cell_mappings`` row."""

    uuid: str
    name: str
    database_connection: str
    transport_url: str = "none:///"
    disabled: bool = False


def write_cell_mappings(engine: Engine, cells: Sequence[CellMappingSpec]) -> None:
    """Insert rows into a nova_api database's ``cell_mappings`` (cell0: CELL0_UUID)."""
    now = utcnow()
    with engine.begin() as conn:
        t = _reflect(conn, ("cell_mappings",), "nova_api")["cell_mappings"]
        _insert(
            conn,
            t,
            [
                t.row(
                    {
                        "uuid": c.uuid,
                        "name": c.name,
                        "transport_url": c.transport_url,
                        "database_connection": c.database_connection,
                        "disabled": c.disabled,
                        "created_at": now,
                        "updated_at": None,
                    }
                )
                for c in cells
            ],
        )
