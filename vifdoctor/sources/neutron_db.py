"""Neutron's database as a source of bindings and agents, read-only and streamed.

The tables' layout (icehouse, kilo, ocata) comes from
:mod:`vifdoctor.sources.neutron_schema`; this module only reads.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vifdoctor.model import Agent, Binding, Layout, parse_json_column
from vifdoctor.sources.bundle import recorded_time
from vifdoctor.sources.database import bytewise, column_text, redact, utc_now
from vifdoctor.sources.interface import EVERYTHING, Selectors
from vifdoctor.sources.neutron_schema import BINDINGS, LEVELS, detect_layout, only_live

STREAM_CHUNK = 2000


class NeutronDatabase:
    """Bindings and agents read from a Neutron database (read-only)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._conn: Connection | None = None
        self.layout: Layout | None = None
        self.now: datetime.datetime | None = None

    # -- lifecycle -------------------------------------------------------
    def open(self) -> NeutronDatabase:
        self._conn = self.engine.connect()
        self.layout = detect_layout(self._conn)
        # an export bundle carries its source's clock at export (sources/bundle.py)
        self.now = recorded_time(self._conn) or utc_now(self._conn)
        md = sa.MetaData()
        names = [BINDINGS, "ports", "agents"] + ([LEVELS] if self.layout.has_levels else [])
        md.reflect(bind=self._conn, only=names)
        self._t = md.tables
        return self

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> NeutronDatabase:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def assumptions(self) -> list[str]:
        """The database shows everything the rules read: nothing to add."""
        return []

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "open() first"
        return self._conn

    def describe(self) -> dict:
        assert self.layout is not None
        return {
            "source": "neutron-db",
            "url": redact(self.engine.url),
            "dialect": self.engine.dialect.name,
            "database_time_utc": self.now.isoformat(sep=" ") if self.now else None,
            **self.layout.as_dict(),
        }

    # -- agents ----------------------------------------------------------
    def agents(self, down_time: float) -> dict[str, list[Agent]]:
        """Every agent by host; alive means a heartbeat within ``down_time`` of the DB clock."""
        t = self._t["agents"]
        query = sa.select(
            t.c.id, t.c.agent_type, t.c.host, t.c.admin_state_up,
            t.c.heartbeat_timestamp, t.c.configurations,
        )
        limit = self.now - datetime.timedelta(seconds=down_time) if self.now else None
        by_host: dict[str, list[Agent]] = {}
        for aid, atype, host, admin_up, heartbeat, raw in self.conn.execute(query):
            parsed = parse_json_column(raw)
            config = parsed.as_dict()
            error = parsed.error
            alive = heartbeat is not None and limit is not None and _naive(heartbeat) >= limit
            agent = Agent(
                id=str(aid),
                agent_type=atype or "",
                host=host or "",
                alive=alive,
                admin_state_up=bool(admin_up),
                configurations=config,
                heartbeat_timestamp=heartbeat,
                configurations_error=error,
                configurations_raw=raw or "",
            )
            by_host.setdefault(agent.host, []).append(agent)
        return by_host

    # -- bindings --------------------------------------------------------
    def _binding_query(self, selectors: Selectors, *, active: bool,
                       compute: bool | None = None) -> sa.Select:
        assert self.layout is not None
        b, p = self._t[BINDINGS], self._t["ports"]
        project = p.c[self.layout.project_column]
        # Labelled as the Binding fields they fill: rows are read by name.
        cols = [
            b.c.port_id, b.c.host, b.c.vif_type, b.c.vif_details, b.c.vnic_type, b.c.profile,
            (b.c.status if self.layout.has_status else sa.null()).label("status"),
        ]
        frm = b.join(p, p.c.id == b.c.port_id)
        if self.layout.has_levels:
            lv = self._t[LEVELS]
            frm = frm.outerjoin(
                lv, sa.and_(lv.c.port_id == b.c.port_id, lv.c.host == b.c.host, lv.c.level == 0)
            )
            cols += [lv.c.driver.label("driver"), lv.c.segment_id.label("segment")]
        else:
            cols += [b.c.driver, b.c.segment]
        cols += [p.c.device_owner, p.c.device_id, p.c.network_id, project.label("project_id")]
        if not active:
            other = b.alias("active_binding")
            cols.append(
                sa.exists()
                .where(other.c.port_id == b.c.port_id, other.c.status == "ACTIVE")
                .label("has_active_row")
            )
        query = sa.select(*cols).select_from(frm)
        if self.layout.has_status:
            query = query.where(b.c.status == "ACTIVE" if active else b.c.status != "ACTIVE")
        elif not active:
            query = query.where(sa.false())
        if selectors.hosts:
            query = query.where(b.c.host.in_(selectors.hosts))
        if selectors.ports:
            query = query.where(b.c.port_id.in_(selectors.ports))
        if selectors.networks:
            query = query.where(p.c.network_id.in_(selectors.networks))
        if selectors.projects:
            query = query.where(project.in_(selectors.projects))
        if compute is not None:
            is_compute = p.c.device_owner.like("compute:%")
            query = query.where(is_compute if compute else sa.not_(is_compute))
            if compute:
                query = query.order_by(bytewise(p.c.device_id, self.conn.dialect.name),
                                       b.c.port_id)
        return query

    def bound_hosts(self, port_ids: list[str]) -> dict[str, str]:
        """The host each of these ports is bound to (its live binding), for the host join."""
        b = self._t[BINDINGS]
        found: dict[str, str] = {}
        for start in range(0, len(port_ids), 500):
            assert self.layout is not None
            query = only_live(sa.select(b.c.port_id, b.c.host).where(
                b.c.port_id.in_(port_ids[start:start + 500])), b, self.layout)
            found.update({p: h for p, h in self.conn.execute(query)})
        self.conn.rollback()
        return found

    def _deeper_drivers(self) -> dict[tuple[str, str], str]:
        """Drivers of binding levels below 0 (hierarchical binding): the bottom one binds."""
        if not self.layout or not self.layout.has_levels:
            return {}
        lv = self._t[LEVELS]
        query = (
            sa.select(lv.c.port_id, lv.c.host, lv.c.driver)
            .where(lv.c.level > 0)
            .order_by(lv.c.level)
        )
        return {(port, host): driver for port, host, driver in self.conn.execute(query)}

    def bindings(self, selectors: Selectors = EVERYTHING) -> Iterator[Binding]:
        """Stream the live bindings (ACTIVE rows from Ocata on), then the inactive ones."""
        yield from self._stream(selectors, [(True, None), (False, None)])

    def repair_candidates(self, selectors: Selectors = EVERYTHING,
                          vif_types: frozenset[str] = frozenset()) -> Iterator[Binding]:
        """Live VM-port bindings (of these vif_types, when given): all a repair can write.

        Reading just these keeps the repair's read close to the rows it may write.
        """
        yield from self._stream(selectors, [(True, True)], vif_types=tuple(sorted(vif_types)))

    def other_bindings(self, selectors: Selectors = EVERYTHING) -> Iterator[Binding]:
        """Live bindings of ports that are not VM ports, then every inactive binding."""
        yield from self._stream(selectors, [(True, False), (False, None)])

    def compute_bindings_by_device(self, selectors: Selectors = EVERYTHING
                                   ) -> Iterator[Binding]:
        """Live bindings of VM ports in byte-wise device_id order, for a merge with Nova."""
        yield from self._stream(selectors, [(True, True)])

    def _stream(self, selectors: Selectors, parts: list[tuple[bool, bool | None]],
                vif_types: tuple[str, ...] = ()) -> Iterator[Binding]:
        deeper = self._deeper_drivers()
        for active, compute in parts:
            if not active and not (self.layout and self.layout.has_status):
                continue
            query = self._binding_query(selectors, active=active, compute=compute)
            if vif_types:
                query = query.where(self._t[BINDINGS].c.vif_type.in_(vif_types))
            result = self.conn.execution_options(yield_per=STREAM_CHUNK).execute(query)
            for row in result.mappings():
                host = row["host"] or ""
                yield Binding(
                    port_id=row["port_id"],
                    host=host,
                    vif_type=row["vif_type"] or "",
                    vif_details=column_text(row["vif_details"]) or "",
                    vnic_type=row["vnic_type"] or "normal",
                    profile=column_text(row["profile"]) or "",
                    status=row["status"],
                    driver=deeper.get((row["port_id"], host), row["driver"]),
                    segment=row["segment"],
                    device_owner=row["device_owner"] or "",
                    device_id=row["device_id"] or "",
                    network_id=row["network_id"] or "",
                    project_id=row["project_id"] or "",
                    has_active_row=bool(row["has_active_row"]) if not active else True,
                )
            result.close()
        # End the read transaction: no snapshot or SQLite read lock outlives the stream.
        self.conn.rollback()


def _naive(value: datetime.datetime | str) -> datetime.datetime:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def agent_summary(agents: dict[str, list[Agent]]) -> list[dict]:
    """Agents as shown in JSON output (no raw configurations beyond what rules use)."""
    out = []
    for host in sorted(agents):
        for a in agents[host]:
            cfg = a.configurations
            out.append({
                "host": host,
                "agent_type": a.agent_type,
                "alive": a.alive,
                "admin_state_up": a.admin_state_up,
                "ovs_hybrid_plug": cfg.get("ovs_hybrid_plug") if "ovs_hybrid_plug" in cfg
                else "(not reported)",
                "datapath_type": cfg.get("datapath_type"),
                "integration_bridge": cfg.get("integration_bridge"),
                "configurations_error": a.configurations_error,
            })
    return out


def dumps(value: object) -> str:
    """Serialize as Neutron does (``jsonutils.dumps`` is ``json.dumps``)."""
    return json.dumps(value)
