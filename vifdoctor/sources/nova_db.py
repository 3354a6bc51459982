"""Nova's databases as a source of instances and their network info caches, read-only.

Cells come from ``--nova-db`` (one URL per cell, or an Icehouse-era database
without cells) or from the API database's ``cell_mappings`` (cell0 holds no
instances and is skipped). Instances are streamed in uuid order, byte-wise,
so the audit can merge-join them with Neutron's compute ports without holding
either side in memory.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy.engine import Engine

from vifdoctor.errors import UnsupportedSchema, VifdoctorError
from vifdoctor.model import Instance
from vifdoctor.sources.config import check_config_files
from vifdoctor.sources.database import bytewise, connect, redact, scrub

CELL0_UUID = "00000000-0000-0000-0000-000000000000"
ENV_NOVA_DB = "VIFDOCTOR_NOVA_DB"
ENV_NOVA_API_DB = "VIFDOCTOR_NOVA_API_DB"
STREAM_CHUNK = 2000
_INSTANCE_COLUMNS = ("uuid", "host", "node", "vm_state", "power_state", "task_state", "deleted")


@dataclass(frozen=True)
class CellSource:
    name: str
    url: str
    prefix: str = ""  # of its table names: one cell of an export bundle (sources/bundle.py)


def read_nova_config(files: list[str]) -> tuple[str | None, str | None]:
    """``[api_database] connection`` and ``[database] connection`` (later files win)."""
    if not files:
        return None, None
    check_config_files(files, "Nova config file")
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("connection", secret=True)], group="api_database")
    conf.register_opts([cfg.StrOpt("connection", secret=True)], group="database")
    try:
        conf(args=[], project="nova", default_config_files=list(files), use_env=False)
        return conf.api_database.connection, conf.database.connection
    except cfg.ConfigFilesNotFoundError as exc:
        raise VifdoctorError(
            f"Nova config file not found or unreadable: {', '.join(exc.config_files)}") from None
    except (cfg.Error, ValueError) as exc:
        raise VifdoctorError(f"cannot read Nova config files: {scrub(str(exc))}") from None


def format_cell_url(template: str, local: str | None) -> str:
    """Fill a templated ``database_connection`` as nova's CellMapping._format_url does."""
    if "{" not in template:
        return template
    if not local:
        raise VifdoctorError(
            "a cell's database_connection is a template; give --nova-config-file with "
            "[database] connection to fill it")
    parts = urlparse(local)
    subs = {"username": parts.username, "password": parts.password, "hostname": parts.hostname,
            "port": parts.port, "scheme": parts.scheme, "query": parts.query,
            "fragment": parts.fragment, "path": parts.path.lstrip("/")}
    try:
        return template.format(**subs)
    except (KeyError, IndexError, ValueError) as exc:
        raise VifdoctorError(f"cannot fill the cell URL template: {exc}") from None


def discover_cells(api_url: str, local_db: str | None) -> list[CellSource]:
    """The cells of a nova_api database, cell0 left out."""
    engine = connect(api_url, what="Nova API database")
    try:
        with engine.connect() as conn:
            if "cell_mappings" not in sa.inspect(conn).get_table_names():
                raise UnsupportedSchema("no cell_mappings table: not a nova_api database")
            rows = conn.execute(sa.text(
                "SELECT uuid, name, database_connection FROM cell_mappings ORDER BY id")).all()
    finally:
        engine.dispose()
    cells = []
    for uuid, name, connection in rows:
        if uuid == CELL0_UUID or not connection:
            continue
        cells.append(CellSource(name or uuid, format_cell_url(connection, local_db)))
    if not cells:
        raise VifdoctorError("the Nova API database maps no cell besides cell0")
    return cells


def cell_name(url: str, index: int) -> str:
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        return f"cell{index + 1}"
    name = parsed.database or ""
    if parsed.get_backend_name() == "sqlite":
        name = os.path.splitext(os.path.basename(name))[0]
    return name or f"cell{index + 1}"


class NovaCellDatabase:
    """One cell database: its instances with their live cache rows."""

    def __init__(self, cell: CellSource):
        self.cell = cell
        self.engine: Engine = connect(cell.url, what=f"Nova cell {cell.name}")
        instances, caches = f"{cell.prefix}instances", f"{cell.prefix}instance_info_caches"
        with self.engine.connect() as conn:
            insp = sa.inspect(conn)
            tables = set(insp.get_table_names())
            for table in (instances, caches):
                if table not in tables:
                    hint = " (it looks like a Neutron database)" if "ports" in tables else ""
                    raise UnsupportedSchema(
                        f"Nova cell {cell.name}: no {table} table: not a Nova cell database"
                        f"{hint}")
            cols = {c["name"] for c in insp.get_columns(instances)}
            missing = set(_INSTANCE_COLUMNS) - cols
            if missing:
                raise UnsupportedSchema(f"Nova cell {cell.name}: instances lacks "
                                        f"{', '.join(sorted(missing))}")
            md = sa.MetaData()
            md.reflect(bind=conn, only=[instances, caches])
        self._instances = md.tables[instances]
        self._caches = md.tables[caches]
        self._has_name = "display_name" in cols

    def describe(self) -> dict:
        return {"cell": self.cell.name, "url": redact(self.engine.url),
                "dialect": self.engine.dialect.name}

    def close(self) -> None:
        self.engine.dispose()

    def instances(self) -> Iterator[Instance]:
        """Every instance, deleted ones included, in byte-wise uuid order."""
        i, c = self._instances, self._caches
        query = (
            sa.select(i.c.uuid, i.c.display_name if self._has_name else sa.null(), i.c.host,
                      i.c.node, i.c.vm_state, i.c.power_state, i.c.task_state, i.c.deleted,
                      c.c.network_info)
            .select_from(i.outerjoin(c, sa.and_(c.c.instance_uuid == i.c.uuid,
                                                c.c.deleted == 0)))
            .order_by(bytewise(i.c.uuid, self.engine.dialect.name))
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=STREAM_CHUNK).execute(query)
            for uuid, name, host, node, vm_state, power, task, deleted, info in result:
                yield Instance(
                    uuid=uuid, cell=self.cell.name, name=name or "", host=host or "",
                    node=node or "", vm_state=vm_state or "", power_state=power,
                    task_state=task, deleted=bool(deleted), network_info=info,
                )


class NovaCells:
    """All the cells read, merged into one uuid-ordered stream of instances."""

    def __init__(self, cells: list[CellSource]):
        self.cells: list[NovaCellDatabase] = []
        try:
            for cell in cells:
                self.cells.append(NovaCellDatabase(cell))
        except Exception:
            self.close()
            raise

    def describe(self) -> list[dict]:
        return [c.describe() for c in self.cells]

    def instances(self) -> Iterator[Instance]:
        return heapq.merge(*(c.instances() for c in self.cells), key=lambda inst: inst.uuid)

    def close(self) -> None:
        for cell in self.cells:
            cell.close()
