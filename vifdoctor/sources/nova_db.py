"""Nova's databases as a source of instances and their network info caches, read-only.

Cells come from ``--nova-db`` (one URL per cell, or an Icehouse-era database
without cells) or from the API database's ``cell_mappings`` (cell0 holds no
instances and is skipped). Instances are streamed in uuid order, byte-wise,
so the audit can merge-join them with Neutron's compute ports without holding
either side in memory.
"""

from __future__ import annotations

import datetime
import heapq
import operator
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vifdoctor.errors import UnsupportedSchema, VifdoctorError
from vifdoctor.model import Instance, Migration
from vifdoctor.sources.config import check_config_files
from vifdoctor.sources.database import bytewise, connect, redact, scrub, utc_now
from vifdoctor.sources.packed import NULL, SEPARATOR, Packing, packing_for
from vifdoctor.spool import sort_on_disk

CELL0_UUID = "00000000-0000-0000-0000-000000000000"
ENV_NOVA_DB = "VIFDOCTOR_NOVA_DB"
ENV_NOVA_API_DB = "VIFDOCTOR_NOVA_API_DB"
STREAM_CHUNK = 2000
RUN_BYTES = 4 * 2**20  # rows (mostly network_info text) sorted in memory at a time
SPILL_BLOCK = 16 * 2**10  # bytes (about) per marshal record in a run's file: one per run is
# held while merging, and a million-port cloud makes about 200 runs
_INSTANCE_COLUMNS = ("uuid", "host", "node", "vm_state", "power_state", "task_state", "deleted")
#: Every release since Havana has these (216_havana.py); the rest is read where it exists.
_MIGRATION_COLUMNS = ("id", "instance_uuid", "source_compute", "dest_compute", "status", "deleted")
_MIGRATION_OPTIONAL = (
    "uuid",
    "migration_type",
    "source_node",
    "dest_node",
    "created_at",
    "updated_at",
    "hidden",
    "cross_cell_move",
    "old_instance_type_id",
    "new_instance_type_id",
)


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
    from oslo_config import cfg  # only where a config file is read (start-up, issue 14)

    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("connection", secret=True)], group="api_database")
    conf.register_opts([cfg.StrOpt("connection", secret=True)], group="database")
    try:
        conf(args=[], project="nova", default_config_files=list(files), use_env=False)
        return conf.api_database.connection, conf.database.connection
    except cfg.ConfigFilesNotFoundError as exc:
        raise VifdoctorError(
            f"Nova config file not found or unreadable: {', '.join(exc.config_files)}"
        ) from None
    except (cfg.Error, ValueError) as exc:
        raise VifdoctorError(f"cannot read Nova config files: {scrub(str(exc))}") from None


def format_cell_url(template: str, local: str | None) -> str:
    """Fill a templated ``database_connection`` as nova's CellMapping._format_url does."""
    if "{" not in template:
        return template
    if not local:
        raise VifdoctorError(
            "a cell's database_connection is a template; give --nova-config-file with "
            "[database] connection to fill it"
        )
    parts = urlparse(local)
    subs = {
        "username": parts.username,
        "password": parts.password,
        "hostname": parts.hostname,
        "port": parts.port,
        "scheme": parts.scheme,
        "query": parts.query,
        "fragment": parts.fragment,
        "path": parts.path.lstrip("/"),
    }
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
            rows = conn.execute(
                sa.text("SELECT uuid, name, database_connection FROM cell_mappings ORDER BY id")
            ).all()
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
                        f"Nova cell {cell.name}: no {table} table: not a Nova cell database{hint}"
                    )
            cols = {c["name"] for c in insp.get_columns(instances)}
            missing = set(_INSTANCE_COLUMNS) - cols
            if missing:
                raise UnsupportedSchema(
                    f"Nova cell {cell.name}: instances lacks {', '.join(sorted(missing))}"
                )
            migrations = f"{cell.prefix}migrations"
            has_migrations = migrations in tables and set(_MIGRATION_COLUMNS) <= {
                c["name"] for c in insp.get_columns(migrations)
            }
            md = sa.MetaData()
            md.reflect(
                bind=conn, only=[instances, caches] + ([migrations] if has_migrations else [])
            )
            self.now: datetime.datetime = utc_now(conn)
        self._instances = md.tables[instances]
        self._caches = md.tables[caches]
        self._migrations = md.tables.get(migrations)
        self._has_name = "display_name" in cols
        self._has_id = "id" in cols
        self._has_hidden = "hidden" in cols

    def instance_count(self, limit: int) -> int:
        """How many instance rows there are, counting no further than ``limit``."""
        some = sa.select(sa.literal(1)).select_from(self._instances).limit(limit).subquery()
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(some)).scalar() or 0)

    def describe(self) -> dict:
        return {
            "cell": self.cell.name,
            "url": redact(self.engine.url),
            "dialect": self.engine.dialect.name,
        }

    @property
    def reads_migrations(self) -> bool:
        return self._migrations is not None

    def close(self) -> None:
        self.engine.dispose()

    def instances(self) -> Iterator[Instance]:
        """Every instance, deleted ones included, in byte-wise uuid order, with its moves."""
        moves = self.migrations()
        move = next(moves, None)
        for inst in self._sorted_rows():
            if self._migrations is None:
                yield inst
                continue
            inst.migrations = []
            while move is not None and move.instance_uuid < inst.uuid:
                move = next(moves, None)  # a migration of an instance archived away
            while move is not None and move.instance_uuid == inst.uuid:
                inst.migrations.append(move)
                move = next(moves, None)
            yield inst

    def migrations(self, uuids: Sequence[str] | None = None) -> Iterator[Migration]:
        """Live (not soft-deleted) migrations in byte-wise instance_uuid order, oldest first
        (only those of ``uuids`` when given).

        Streamed on a connection of their own, beside the instances' stream.
        """
        m = self._migrations
        if m is None:
            return
        cols = [m.c[name] for name in _MIGRATION_COLUMNS]
        optional = [name for name in _MIGRATION_OPTIONAL if name in m.c]
        cols += [m.c[name] for name in optional]
        query = (
            sa.select(*cols)
            .where(m.c.deleted == 0, m.c.instance_uuid.is_not(None))
            .order_by(bytewise(m.c.instance_uuid, self.engine.dialect.name), m.c.id)
        )
        if uuids is not None:
            query = query.where(m.c.instance_uuid.in_(list(uuids)))
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=STREAM_CHUNK).execute(query)
            for row in result:
                values = dict(zip(_MIGRATION_COLUMNS + tuple(optional), row, strict=True))
                yield _migration(values, self.cell.name)

    def lookup(self, uuids: Sequence[str]) -> list[Instance]:
        """These instances' rows here (deleted ones too) with their moves, read now: the
        repair's re-check right before a batch."""
        if not uuids:
            return []
        found = list(self._instance_rows(uuids))
        if self._migrations is not None:
            by_uuid: dict[str, list[Migration]] = {}
            for m in self.migrations(uuids):
                by_uuid.setdefault(m.instance_uuid, []).append(m)
            for inst in found:
                inst.migrations = by_uuid.get(inst.uuid, [])
        return found

    def _sorted_rows(self) -> Iterator[Instance]:
        """Every instance row, deleted ones included, in byte-wise uuid order.

        The server runs the one LEFT JOIN of instances and their live cache rows
        with no ORDER BY (its own join, so its collation decides which cache row
        matches: MySQL's case- and trailing-space-insensitive one, PostgreSQL's and
        SQLite's byte equality), and the rows are sorted here, by an external merge
        sort through temporary files: a server sorting the ``network_info`` blobs
        (or fetching them by random index look-ups) was 85 % of a million-port
        audit (issue 14). Memory holds one run of RUN_BYTES at a time.
        """
        i, c = self._instances, self._caches
        query = sa.select(
            i.c.uuid,
            i.c.id if self._has_id else sa.null(),
            i.c.display_name if self._has_name else sa.null(),
            i.c.host,
            i.c.node,
            i.c.vm_state,
            i.c.power_state,
            i.c.task_state,
            i.c.deleted,
            c.c.network_info,
            i.c.hidden if self._has_hidden else sa.null(),
        ).select_from(i.outerjoin(c, sa.and_(c.c.instance_uuid == i.c.uuid, c.c.deleted == 0)))

        # Where the driver is PyMySQL, the short columns as one packed value
        # (sources/packed.py) and network_info as it is: packing the text too made the
        # server copy it twice for no gain here. A packed row is sorted and spilled as
        # it came, keyed by its first two values, and split only once merged: the read
        # and the sort are what the audit waits for (issue 14), the merge is not.
        packed_as: list[Packing] = []  # the Packing used, once the rows are read
        width = len(query.selected_columns) - 1  # the packed values: all but network_info

        def unsorted() -> Iterator[tuple]:
            """Each row as (its sort key, its values, its weight)."""
            with self.engine.connect() as conn:
                selected = list(query.selected_columns)
                small = selected[:9] + selected[10:]  # all but network_info
                packing = packing_for(conn, small)
                if packing is not None:
                    packed_as.append(packing)
                    sent = query.with_only_columns(packing.column(small), c.c.network_info)
                    result = conn.execution_options(yield_per=STREAM_CHUNK).execute(sent)
                    for packed, info in result:
                        key = _packed_key(packed, packing, width)
                        yield (key, packed, info, 200 + len(info or ""))
                    return
                plain = conn.execution_options(yield_per=STREAM_CHUNK).execute(query)
                for uuid, iid, *values, info, hidden in plain:
                    yield (
                        # byte-wise uuid (code point order is UTF-8 byte order), then id
                        (uuid is not None, uuid or "", iid if iid is not None else -1),
                        uuid,
                        *values,
                        info,
                        hidden,
                        200 + len(info or ""),  # about what it costs: mostly its text
                    )

        for row in sort_on_disk(unsorted(), _KEY, RUN_BYTES, SPILL_BLOCK, weight=_WEIGHT):
            if packed_as:
                uuid, _, *values = _typed(packed_as[0].unpack(row[1], width), row[2])
                yield self._instance(uuid, *values)
            else:
                yield self._instance(*row[1:-1])

    def _instance_rows(self, uuids: Sequence[str] | None = None) -> Iterator[Instance]:
        """These rows (all when None), the server sorting them: the repair's re-check, and
        the reference the tests compare the sorted-here read with."""
        i, c = self._instances, self._caches
        query = (
            sa.select(
                i.c.uuid,
                i.c.display_name if self._has_name else sa.null(),
                i.c.host,
                i.c.node,
                i.c.vm_state,
                i.c.power_state,
                i.c.task_state,
                i.c.deleted,
                c.c.network_info,
                i.c.hidden if self._has_hidden else sa.null(),
            )
            .select_from(i.outerjoin(c, sa.and_(c.c.instance_uuid == i.c.uuid, c.c.deleted == 0)))
            .order_by(bytewise(i.c.uuid, self.engine.dialect.name))
        )
        if uuids is not None:
            query = query.where(i.c.uuid.in_(list(uuids)))
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=STREAM_CHUNK).execute(query)
            for uuid, *columns in result:
                yield self._instance(uuid, *columns)

    def _instance(
        self,
        uuid: str,
        name: str | None,
        host: str | None,
        node: str | None,
        vm_state: str | None,
        power: int | None,
        task: str | None,
        deleted: Any,
        info: str | None,
        hidden: Any,
    ) -> Instance:
        """One instances row (with its cache), in the column order both reads select."""
        # by position, in Instance's field order: keywords cost twice as much (a million rows)
        return Instance(
            uuid,
            self.cell.name,
            name or "",
            host or "",
            node or "",
            vm_state or "",
            power,  # power_state
            task,  # task_state
            bool(deleted),
            info,  # network_info
            True,  # cache_known
            bool(hidden),
        )


def _typed(fields: list[str | None], info: str | None) -> tuple:
    """A packed row's values (all but network_info) with its network_info, as the driver
    gives them: id, power_state, deleted and hidden are numbers ("0" would be true)."""
    uuid, iid, name, host, node, vm_state, power, task, deleted, hidden = fields
    return (
        uuid,
        None if iid is None else int(iid),
        name,
        host,
        node,
        vm_state,
        None if power is None else int(power),
        task,
        None if deleted is None else int(deleted),
        info,
        None if hidden is None else int(hidden),
    )


def _packed_key(packed: bytes | None, packing: Packing, width: int) -> tuple[bool, str, int]:
    """A packed row's sort key, the one its unpacked values make (``_sorted_rows``): whether
    its uuid is not NULL, the uuid, its id (-1 for NULL), from its first two values only.
    A row ``Packing.unpack`` would refuse is refused here, as it is read."""
    if packed is None or packed.count(SEPARATOR) != width - 1:
        packing.unpack(packed, width)  # raises: NULL, or values that do not fit
    uuid, iid, _ = packed.split(SEPARATOR, 2)  # type: ignore[union-attr]
    return (
        uuid != NULL,
        uuid.decode(packing.encoding, "surrogateescape") if uuid != NULL else "",
        int(iid) if iid != NULL else -1,
    )


_KEY = operator.itemgetter(0)  # C calls, not Python ones, for each row sorted and merged
_WEIGHT = operator.itemgetter(-1)


def _migration(values: dict, cell: str) -> Migration:
    """A row as Nova's Migration object reads it (``_from_db_object``)."""
    mtype = values.get("migration_type")
    if not mtype:  # nova.objects.migration.determine_migration_type
        old, new = values.get("old_instance_type_id"), values.get("new_instance_type_id")
        mtype = "resize" if old != new else "migration"
    return Migration(
        id=int(values["id"]),
        instance_uuid=values["instance_uuid"],
        cell=cell,
        uuid=values.get("uuid") or "",
        migration_type=str(mtype),
        status=values["status"],
        source_compute=values["source_compute"] or "",
        dest_compute=values["dest_compute"] or "",
        source_node=values.get("source_node") or "",
        dest_node=values.get("dest_node") or "",
        created_at=values.get("created_at"),
        updated_at=values.get("updated_at"),
        hidden=bool(values.get("hidden")),
        cross_cell_move=bool(values.get("cross_cell_move")),
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

    def instance_count(self, limit: int) -> int:
        """How many instances the cells hold, counting no further than ``limit``."""
        total = 0
        for cell in self.cells:
            total += cell.instance_count(limit - total)
            if total >= limit:
                break
        return total

    @property
    def reads_migrations(self) -> bool:
        """Whether every cell read has a migrations table (else moves are judged by
        task_state only)."""
        return bool(self.cells) and all(c.reads_migrations for c in self.cells)

    def lookup(self, uuids: Sequence[str]) -> list[Instance]:
        """Every cell's rows of these instances, with their moves, read now."""
        return [inst for cell in self.cells for inst in cell.lookup(uuids)]

    @property
    def now(self) -> datetime.datetime | None:
        """The first cell's clock, naive UTC: what migration ages are measured against."""
        return self.cells[0].now if self.cells else None

    def instances(self) -> Iterator[Instance]:
        if len(self.cells) == 1:  # the usual case: nothing to merge, no key per row
            return self.cells[0].instances()
        return heapq.merge(*(c.instances() for c in self.cells), key=lambda inst: inst.uuid)

    def close(self) -> None:
        for cell in self.cells:
            cell.close()
