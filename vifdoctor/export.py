"""``vifdoctor export``: copy exactly what the audit reads into one SQLite bundle.

For a support engineer who gets data, not access: the operator runs ``export``
against the live databases and sends one file; ``vifdoctor audit --bundle FILE``
then gives the findings the live audit gives. Only the columns the audit reads are
copied (no password hashes, tokens, IPs, names of anything but hosts and instances),
rows are streamed (flat memory at a million ports), and the file appears only once
complete.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vifdoctor import __version__
from vifdoctor.errors import VifdoctorError
from vifdoctor.options import AuditOptions
from vifdoctor.settings import resolve, resolve_cells
from vifdoctor.sources.bundle import FORMAT, FORMAT_VERSION, MANIFEST
from vifdoctor.sources.database import connect, utc_now
from vifdoctor.sources.neutron_db import BINDINGS, LEVELS, detect_layout

CHUNK = 5000


@dataclass(frozen=True)
class ExportOptions(AuditOptions):
    """Where to read (as ``audit``), and the bundle to write."""

    output: str = ""


def _columns(layout) -> dict[str, list[str]]:
    """Per Neutron table, the columns the audit reads in this layout (sources/neutron_db.py)."""
    bindings = ["port_id", "host", "vif_type", "vif_details", "vnic_type", "profile"]
    if layout.has_status:
        bindings.append("status")
    if layout.name == "icehouse":
        bindings += ["driver", "segment"]
    tables = {
        BINDINGS: bindings,
        "ports": ["id", "network_id", "device_id", "device_owner", layout.project_column],
        "agents": [
            "id",
            "agent_type",
            "host",
            "admin_state_up",
            "heartbeat_timestamp",
            "configurations",
        ],
    }
    if layout.has_levels:
        tables[LEVELS] = ["port_id", "host", "level", "driver", "segment_id"]
    if layout.segments_table:
        tables[layout.segments_table] = ["id"]  # only its name is read: the layout's description
    if layout.alembic_versions:
        tables["alembic_version"] = ["version_num"]
    return tables


_PRIMARY = {
    BINDINGS: None,
    "ports": ["id"],
    "agents": ["id"],
    LEVELS: ["port_id", "host", "level"],
    "alembic_version": ["version_num"],
    "instances": None,
    "instance_info_caches": None,
}


def _generic(col: sa.Column) -> sa.types.TypeEngine:
    """The column's type as SQLite keeps it (strings stay byte-exact text)."""
    try:
        generic = col.type.as_generic()
    except NotImplementedError:
        return sa.Text()
    if isinstance(generic, sa.String):
        return sa.Text()
    if isinstance(generic, sa.Boolean):
        return sa.Integer()  # tinyint(1) and boolean alike, as 0/1
    return generic


def _copy(
    src: Connection,
    dst: Connection,
    table: str,
    columns: list[str],
    *,
    target: str | None = None,
    primary: list[str] | None = None,
    where: Callable[[sa.Table], sa.ColumnElement] | None = None,
) -> int:
    """Stream the columns of one table into the bundle; the number of rows copied."""
    md = sa.MetaData()
    source = sa.Table(table, md, autoload_with=src)
    missing = [c for c in columns if c not in source.c]
    if missing:
        raise VifdoctorError(f"table {table} lacks column(s) {', '.join(missing)}")
    out = sa.Table(
        target or table,
        sa.MetaData(),
        *(
            sa.Column(
                c, _generic(source.c[c]), primary_key=c in (primary or []), autoincrement=False
            )
            for c in columns
        ),
    )
    out.create(dst)
    query = sa.select(*(source.c[c] for c in columns))
    if where is not None:
        query = query.where(where(source))
    rows = 0
    result = src.execution_options(yield_per=CHUNK).execute(query)
    for batch in result.partitions(CHUNK):
        dst.execute(out.insert(), [dict(zip(columns, r, strict=True)) for r in batch])
        rows += len(batch)
    return rows


def _cell_prefix(name: str, index: int) -> str:
    return f"nova_{index + 1}_{re.sub(r'[^A-Za-z0-9_]', '_', name)[:40]}__"


def export_bundle(options: ExportOptions) -> dict:
    """Write the bundle; return its manifest."""
    if not options.output:
        raise VifdoctorError("export needs -o FILE")
    if options.bundle:
        raise VifdoctorError("export reads databases: --bundle is for audit and remediation")
    settings = resolve(options)
    if settings.neutron_url is None:
        raise VifdoctorError("export reads Neutron's database, not its API (--os-cloud)")
    cells = resolve_cells(options)
    output = os.path.abspath(options.output)
    if os.path.lexists(output):
        raise VifdoctorError(f"{options.output} exists: export never overwrites a file")
    folder = os.path.dirname(output)
    if not os.path.isdir(folder):
        raise VifdoctorError(f"cannot write {options.output}: no folder {folder}")
    tmp = os.path.join(folder, f".{os.path.basename(output)}.{os.getpid()}.part")
    started = time.monotonic()
    manifest: dict = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "tables": {},
    }
    dst_engine = sa.create_engine(f"sqlite:///{tmp}")
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        with dst_engine.begin() as dst:
            dst.exec_driver_sql("PRAGMA journal_mode=OFF")
            dst.exec_driver_sql("PRAGMA synchronous=OFF")
            src_engine = connect(settings.neutron_url, what="Neutron database")
            try:
                with src_engine.connect() as src:
                    layout = detect_layout(src)
                    manifest["source"] = {
                        "what": "neutron",
                        "dialect": src_engine.dialect.name,
                        "database_time_utc": utc_now(src).isoformat(sep=" "),
                        **layout.as_dict(),
                    }
                    for table, columns in _columns(layout).items():
                        primary = (
                            (["port_id", "host"] if layout.has_status else ["port_id"])
                            if table == BINDINGS
                            else _PRIMARY.get(table, ["id"])
                        )
                        manifest["tables"][table] = {
                            "columns": columns,
                            "rows": _copy(src, dst, table, columns, primary=primary),
                        }
            finally:
                src_engine.dispose()
            manifest["nova"] = []
            for i, cell in enumerate(cells):
                manifest["nova"].append(_copy_cell(cell, i, dst, manifest["tables"]))
            _write_manifest(dst, manifest)
        dst_engine.dispose()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.rename(tmp, output)
    except BaseException:
        dst_engine.dispose()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    manifest["seconds"] = round(time.monotonic() - started, 2)
    manifest["bytes"] = os.path.getsize(output)
    return manifest


def _copy_cell(cell, index: int, dst: Connection, tables: dict) -> dict:
    prefix = _cell_prefix(cell.name, index)
    engine: Engine = connect(cell.url, what=f"Nova cell {cell.name}")
    try:
        with engine.connect() as src:
            names = set(sa.inspect(src).get_table_names())
            if "instances" not in names or "instance_info_caches" not in names:
                raise VifdoctorError(f"Nova cell {cell.name}: not a Nova cell database")
            cols = {c["name"] for c in sa.inspect(src).get_columns("instances")}
            inst: list[str] = [
                c
                for c in (
                    "uuid",
                    "display_name",
                    "host",
                    "node",
                    "vm_state",
                    "power_state",
                    "task_state",
                    "deleted",
                )
                if c in cols
            ]
            cache: list[str] = ["instance_uuid", "network_info", "deleted"]
            for table, columns, where in (
                ("instances", inst, None),
                # only the live cache rows: the audit joins no other
                ("instance_info_caches", cache, lambda t: t.c.deleted == 0),
            ):
                tables[prefix + table] = {
                    "columns": columns,
                    "rows": _copy(
                        src,
                        dst,
                        table,
                        columns,
                        target=prefix + table,
                        primary=_PRIMARY.get(table),
                        where=where,
                    ),
                }
            return {
                "cell": cell.name,
                "dialect": engine.dialect.name,
                "prefix": prefix,
                "database_time_utc": utc_now(src).isoformat(sep=" "),
            }
    finally:
        engine.dispose()


def _write_manifest(dst: Connection, manifest: dict) -> None:
    table = sa.Table(
        MANIFEST,
        sa.MetaData(),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    table.create(dst)
    dst.execute(
        table.insert(),
        [{"key": k, "value": json.dumps(v, default=str)} for k, v in manifest.items()],
    )


def summary_lines(manifest: dict) -> Iterator[str]:
    """What the command prints: where the bundle came from and what it holds."""
    src = manifest["source"]
    yield (
        f"bundle written: {manifest['bytes']} bytes in {manifest['seconds']} s; "
        f"{src['dialect']} Neutron database, layout {src['layout']}, clock "
        f"{src['database_time_utc']} UTC"
    )
    for table, info in manifest["tables"].items():
        yield f"  {table}: {info['rows']} rows ({', '.join(info['columns'])})"
