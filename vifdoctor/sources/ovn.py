"""OVN's Northbound and Southbound databases as a source, strictly read-only.

Connections are given as neutron's ``[ovn] ovn_nb_connection`` /
``ovn_sb_connection`` (``tcp:IP:PORT``, ``ssl:IP:PORT``, ``unix:PATH``, comma
lists for a clustered database), by flag or from the ``[ovn]`` section of the
``--neutron-config-file`` files, with neutron's SSL options
(``ovn_nb_private_key``/``ovn_nb_certificate``/``ovn_nb_ca_cert`` and the
``ovn_sb_*`` ones).

Reading needs ``pip install 'vifdoctor[ovn]'`` (ovsdbapp, the library neutron reads
OVN with, and python-ovs under it): python-ovs's streams carry the JSON-RPC (tcp, ssl,
unix), ovsdbapp's schema helper checks the server's schema, and one ``transact`` of
``select`` operations per table reads only the columns the rules need (a transaction
of selects writes nothing). The rows are copied into small model objects
(``vifdoctor.model_ovn``) as they are parsed, and the connection is closed.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vifdoctor.errors import VifdoctorError

if TYPE_CHECKING:
    from oslo_config import cfg
from vifdoctor.model_ovn import (
    DEFAULT_OVN_BRIDGE,
    OvnChassis,
    OvnPort,
    OvnView,
    chassis_liveness,
    parse_bridge_mappings,
)

NB_SCHEMA = "OVN_Northbound"
SB_SCHEMA = "OVN_Southbound"
# Seconds to wait for a whole reply: neutron's own [ovn] ovsdb_connection_timeout default.
# ovsdb-server builds a select's reply whole before its first byte (23.5 s for 100k LSPs
# on a loaded lab), so a large cloud needs minutes, not the connect timeout.
DEFAULT_TIMEOUT = 180.0
CONNECT_TIMEOUT = 30.0  # seconds to open each remote: an unreachable one fails fast
_SCHEMES = ("tcp:", "ssl:", "unix:")

# What the rules need, table -> columns (read if the server's schema has them).
NB_COLUMNS = {
    "NB_Global": ["nb_cfg"],
    "Logical_Switch": ["name", "ports"],
    "Logical_Switch_Port": ["name", "type", "options", "up", "enabled", "external_ids"],
}
SB_COLUMNS = {
    "Chassis": ["name", "hostname", "other_config"],
    "Chassis_Private": ["name", "chassis", "nb_cfg", "nb_cfg_timestamp", "external_ids"],
    "Port_Binding": ["logical_port", "chassis", "additional_chassis", "up"],
}


@dataclass(frozen=True)
class OvnDb:
    """One database's connection string and SSL files, and where they came from."""

    connection: str
    private_key: str = ""
    certificate: str = ""
    ca_cert: str = ""
    source: str = ""

    def remotes(self) -> list[str]:
        return [c.strip() for c in self.connection.split(",") if c.strip()]


@dataclass(frozen=True)
class OvnSettings:
    nb: OvnDb | None
    sb: OvnDb | None
    timeout: float = DEFAULT_TIMEOUT
    vhost_sock_dir: str = "/var/run/openvswitch"  # [ovn] vhost_sock_dir
    ovs_create_tap: bool = True  # [ovn] ovs_create_tap (neutron 2025.1+)
    notes: list[str] = field(default_factory=list)

    @property
    def given(self) -> bool:
        return self.nb is not None or self.sb is not None


def _ovn_opts() -> list[cfg.Opt]:
    from oslo_config import cfg  # only where a config file is read (start-up, issue 14)

    opts: list[cfg.Opt] = []
    for db in ("nb", "sb"):
        opts += [
            cfg.ListOpt(f"ovn_{db}_connection"),
            cfg.StrOpt(f"ovn_{db}_private_key", default=""),
            cfg.StrOpt(f"ovn_{db}_certificate", default=""),
            cfg.StrOpt(f"ovn_{db}_ca_cert", default=""),
        ]
    return opts + [
        cfg.IntOpt("ovsdb_connection_timeout"),
        cfg.StrOpt("vhost_sock_dir"),
        cfg.BoolOpt("ovs_create_tap"),
    ]


def read_ovn_config(files: list[str]) -> dict:
    """The ``[ovn]`` options neutron's OVN driver reads, from ml2_conf.ini and friends."""
    if not files:
        return {}
    from oslo_config import cfg  # only where a config file is read (start-up, issue 14)

    conf = cfg.ConfigOpts()
    conf.register_opts(_ovn_opts(), group="ovn")
    try:
        conf(args=[], project="neutron", default_config_files=list(files), use_env=False)
        section = conf.ovn
        return {opt.dest: section[opt.dest] for opt in _ovn_opts()}
    except cfg.ConfigFilesNotFoundError as exc:
        raise VifdoctorError(
            f"config file not found or unreadable: {', '.join(exc.config_files)}"
        ) from None
    except (cfg.Error, ValueError) as exc:
        raise VifdoctorError(f"bad [ovn] value in config files: {exc}") from None


def resolve_ovn(
    nb_connection: str | None, sb_connection: str | None, config_files: list[str]
) -> OvnSettings:
    """Flags win over ``[ovn]`` in the config files; nothing given means no OVN source."""
    conf = read_ovn_config(config_files)
    dbs: dict[str, OvnDb | None] = {}
    for db, flag in (("nb", nb_connection), ("sb", sb_connection)):
        from_conf = conf.get(f"ovn_{db}_connection")
        text = flag or (",".join(from_conf) if from_conf else None)
        if not text:
            dbs[db] = None
            continue
        where = f"--ovn-{db}-connection" if flag else f"[ovn] ovn_{db}_connection"
        for remote in (r.strip() for r in text.split(",")):
            if not remote.startswith(_SCHEMES) or len(remote) <= 4:
                raise VifdoctorError(
                    f"{where}: {remote!r} is not tcp:IP:PORT, ssl:IP:PORT or unix:PATH"
                )
        ssl = {
            k: conf.get(f"ovn_{db}_{k}") or "" for k in ("private_key", "certificate", "ca_cert")
        }
        if "ssl:" in text and not all(ssl.values()):
            missing = [f"ovn_{db}_{k}" for k, v in ssl.items() if not v]
            raise VifdoctorError(
                f"{where} uses ssl: but [ovn] {', '.join(missing)} "
                "is not set in the --neutron-config-file files"
            )
        dbs[db] = OvnDb(text, source=where, **ssl)
    if (dbs["nb"] is None) != (dbs["sb"] is None):
        have, lack = ("nb", "sb") if dbs["nb"] else ("sb", "nb")
        raise VifdoctorError(
            f"OVN {have.upper()} given without the {lack.upper()}: pass "
            f"--ovn-{lack}-connection too (or [ovn] ovn_{lack}_connection)"
        )
    timeout = float(conf.get("ovsdb_connection_timeout") or DEFAULT_TIMEOUT)
    return OvnSettings(
        nb=dbs["nb"],
        sb=dbs["sb"],
        timeout=timeout,
        vhost_sock_dir=conf.get("vhost_sock_dir") or "/var/run/openvswitch",
        ovs_create_tap=True
        if conf.get("ovs_create_tap") is None
        else bool(conf.get("ovs_create_tap")),
    )


# ---------------------------------------------------------------------- reading


def _libraries():
    """python-ovs (its streams) and ovsdbapp (the schema helper), or one line naming the
    extra."""
    try:
        import ovs.poller
        import ovs.stream
        from ovsdbapp.backend.ovs_idl import idlutils
    except ImportError:
        raise VifdoctorError("reading OVN needs ovsdbapp: pip install 'vifdoctor[ovn]'") from None
    logging.getLogger("ovsdbapp").setLevel(logging.CRITICAL)
    return ovs, idlutils


def _set_ssl(ovs, db: OvnDb) -> None:
    if any(r.startswith("ssl:") for r in db.remotes()):
        for path in (db.private_key, db.certificate, db.ca_cert):
            if not os.access(path, os.R_OK):
                raise VifdoctorError(f"{db.source}: SSL file {path} is not readable")
        ovs.stream.Stream.ssl_set_private_key_file(db.private_key)
        ovs.stream.Stream.ssl_set_certificate_file(db.certificate)
        ovs.stream.Stream.ssl_set_ca_cert_file(db.ca_cert)


class _Session:
    """JSON-RPC over a python-ovs stream (tcp, ssl or unix), parsed by Python's own json.

    python-ovs's IDL (what ovsdbapp wraps) parses JSON in pure Python unless its C
    extension was built against libopenvswitch, which a pip install does not do: 17 s
    for 10,000 ports here against 0.15 s for ``ovsdb-client dump``. Each request is
    followed by an ``echo`` carrying a random token; the server answers in order, so a
    reply is complete once the token arrives. :meth:`call` parses a reply whole;
    :meth:`rows` parses a select's rows one by one as they arrive.
    """

    RECV_BYTES = 1 << 20  # per read; a select's rows are parsed as each read arrives

    def __init__(self, ovs, remote: str, timeout: float):
        self.ovs = ovs
        self.remote = remote
        self.timeout = timeout
        error, self.stream = ovs.stream.Stream.open_block(
            ovs.stream.Stream.open(remote), int(min(timeout, CONNECT_TIMEOUT) * 1000)
        )
        self.error = os.strerror(error) if error else None
        self._pending = b""  # read past the last reply: the next reply's first bytes

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def _wait(self, deadline: float, sending: bool) -> None:
        if time.monotonic() > deadline:
            raise TimeoutError
        poller = self.ovs.poller.Poller()
        self.stream.run_wait(poller)
        (self.stream.send_wait if sending else self.stream.recv_wait)(poller)
        poller.timer_wait(200)
        poller.block()

    def _send(self, method: str, params: list) -> tuple[bytes, float]:
        """Send a request and its trailing ``echo``; the echo's token and the deadline."""
        token = secrets.token_hex(16)
        data = (
            json.dumps({"id": 0, "method": method, "params": params})
            + json.dumps({"id": f"vd-{token}", "method": "echo", "params": [token]})
        ).encode()
        deadline = time.monotonic() + self.timeout
        while data:
            self.stream.run()
            sent = self.stream.send(data)
            if sent > 0:
                data = data[sent:]
            elif sent == -errno.EAGAIN or sent == 0:
                self._wait(deadline, sending=True)
            else:
                raise OSError(-sent, os.strerror(-sent))
        return token.encode(), deadline

    def _chunks(self, deadline: float) -> Iterator[bytes]:
        """What the server sends, as it arrives."""
        if self._pending:
            chunk, self._pending = self._pending, b""
            yield chunk
        while True:
            self.stream.run()
            error, chunk = self.stream.recv(self.RECV_BYTES)
            if error == errno.EAGAIN:
                self._wait(deadline, sending=False)
                continue
            if error:
                raise OSError(error, os.strerror(error))
            if not chunk:
                raise OSError(errno.ECONNRESET, "the server closed the connection")
            yield chunk

    def _reply(self, method: str, text: str) -> Any:
        reply = json.loads(text)
        if reply.get("error"):
            raise VifdoctorError(f"{self.remote}: {method}: {reply['error']}")
        return reply.get("result")

    def call(self, method: str, params: list) -> Any:
        """One request; its result, or VifdoctorError with the server's error."""
        mark, deadline = self._send(method, params)
        chunks = self._chunks(deadline)
        buf = bytearray()
        for chunk in chunks:
            tail = max(0, len(buf) - len(mark))
            buf += chunk
            at = buf.find(mark, tail)
            if at >= 0:
                start = buf.rfind(b"{", 0, at)
                self._read_echo(chunks, bytes(buf[start:]))
                return self._reply(method, bytes(buf[:start]).decode())
        raise AssertionError("unreachable")  # _chunks ends only by raising

    def _read_echo(self, chunks: Iterator[bytes], echo: bytes) -> None:
        """Read the echo's reply to its end (its token may arrive before the rest); what
        follows it is the next reply's, kept for it."""
        while True:
            try:  # the echo's reply is ASCII: one latin-1 character per byte
                end = _SCAN(echo.decode("latin-1"), 0)[1]
                self._pending = echo[end:]
                return
            except json.JSONDecodeError:
                echo += next(chunks)

    def request(self, schema: str, table: str, columns: list[str]) -> bytes:
        """Send one ``select`` without waiting: its reply's mark, for :meth:`rows`.

        Requests can be sent ahead (the server answers them in order while the client
        parses earlier replies, and an NB and an SB server work side by side).
        """
        op = {"op": "select", "table": table, "where": [], "columns": columns}
        return self._send("transact", [schema, op])[0]

    def select(self, schema: str, table: str, columns: list[str]) -> Iterator[dict]:
        return self.rows(self.request(schema, table, columns), table)

    def rows(self, mark: bytes, table: str) -> Iterator[dict]:
        """The rows of a requested ``select``, each parsed (C json) as soon as its bytes
        arrive; requests must be read in the order they were sent.

        OVSDB has no paging: the server answers a select whole. Streaming it keeps one
        row and the unparsed tail in memory instead of the whole reply and its parse.
        The reply minus its rows is parsed at the end, so that a malformed reply or a
        server error is still caught.
        """
        deadline = time.monotonic() + self.timeout
        token = mark.decode()
        decoder = codecs.getincrementaldecoder("utf-8")()
        decode = decoder.decode
        head: str | None = None  # the reply up to its rows' "[", to check the envelope
        text, pos, rows_done = "", 0, False
        chunks = self._chunks(deadline)
        for chunk in chunks:
            text = text[pos:] + decode(chunk)
            pos = 0
            if head is None:
                at = text.find(_ROWS)
                if at < 0:
                    if token in text:
                        break  # a reply without rows: the server's error
                    continue
                head, pos = text[: at + len(_ROWS)], at + len(_ROWS)
            while not rows_done:
                pos = _SEPARATORS.match(text, pos).end()  # type: ignore[union-attr]
                if pos == len(text):
                    break
                if text[pos] == "]":
                    rows_done = True
                    break
                try:
                    row, pos = _SCAN(text, pos)
                except json.JSONDecodeError:
                    if len(text) - pos > _MAX_ROW or token in text[pos:]:
                        raise  # not a row cut short: the reply is broken
                    break  # the rest of the row has not arrived yet
                yield row
            if rows_done and token in text:
                break
        rest = text[pos:]  # from the rows' "]" on (or the whole reply, if it has none)
        end = rest.rfind("{", 0, rest.find(token))
        self._read_echo(chunks, rest[end:].encode() + decoder.getstate()[0])
        (result,) = self._reply("transact", (head or "") + rest[:end])
        if "error" in result:
            raise VifdoctorError(f"{self.remote}: select {table}: {result['error']}")


_ROWS = '"rows":['
_SEPARATORS = re.compile(r"[\s,]*")
_SCAN = json.JSONDecoder().raw_decode  # the C scanner
_MAX_ROW = 64 << 20  # an unparsable tail this long is a broken reply, not a partial row


def _open(ovs, db: OvnDb, schema: str, timeout: float) -> tuple[_Session, dict]:
    """A session on the first remote of ``db`` that answers and serves ``schema``.

    Every failure ends in one line: unreachable (each remote's reason) or not OVN
    (the databases the server does serve).
    """
    reasons = []
    for remote in db.remotes():
        session = _Session(ovs, remote, timeout)
        if session.error:
            reasons.append(f"{remote}: {session.error}")
            continue
        try:
            dbs = session.call("list_dbs", [])
            if schema not in dbs:
                served = ", ".join(d for d in dbs if not d.startswith("_")) or "no database"
                raise VifdoctorError(
                    f"{db.source} {remote} is not an OVN {schema.split('_')[1]} database "
                    f"(it serves {served})"
                )
            return session, session.call("get_schema", [schema])
        except (OSError, TimeoutError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or type(exc).__name__
            reasons.append(f"{remote}: {why}")
            session.close()
        except VifdoctorError:
            session.close()
            raise
    raise VifdoctorError(
        f"cannot reach the OVN {schema.split('_')[1]} database ({db.source}): {'; '.join(reasons)}"
    )


@contextlib.contextmanager
def _reading(
    db: OvnDb, schema: str, columns: dict[str, list[str]], timeout: float
) -> Iterator[tuple[Callable[[str], Iterator[dict]], str]]:
    """A function streaming the wanted columns of a table (those the server's schema has),
    by ``transact`` of one ``select``: nothing is ever written. Every select is sent on
    entry, so the server works while earlier replies are parsed; the tables' rows must
    then be consumed whole, in the order of ``columns``. A reply that breaks off or does
    not parse is one line naming the database."""
    ovs, idlutils = _libraries()
    _set_ssl(ovs, db)
    session, schema_json = _open(ovs, db, schema, timeout)

    def late(exc: Exception) -> VifdoctorError:
        return VifdoctorError(
            f"the OVN {schema.split('_')[1]} database at {session.remote} "
            f"did not send its tables within {timeout:g} s "
            f"({type(exc).__name__})"
        )

    try:
        helper = idlutils.create_schema_helper(schema_json)  # refuses a malformed schema
        helper.register_all()
        tables = helper.get_idl_schema().tables
        wanted: dict[str, list[str]] = {}
        for table, cols in columns.items():
            if table not in tables:
                raise VifdoctorError(
                    f"{db.source}: {schema} has no {table} table (OVN older "
                    "than 20.06, which neutron's OVN driver no longer "
                    "supports)"
                )
            wanted[table] = ["_uuid"] + [c for c in cols if c in tables[table].columns]
        try:
            marks = [(t, session.request(schema, t, cols)) for t, cols in wanted.items()]
        except (OSError, TimeoutError) as exc:
            raise late(exc) from None

        def rows(table: str) -> Iterator[dict]:
            expected, mark = marks.pop(0)
            if table != expected:
                raise AssertionError(f"{table} read before {expected}: replies come in order")
            try:
                yield from session.rows(mark, table)
            except (OSError, TimeoutError, ValueError) as exc:
                raise late(exc) from None

        yield rows, session.remote
    finally:
        session.close()


# OVSDB's JSON for values: ["uuid", U], ["set", [...]], ["map", [[k, v], ...]], or an atom.
def _atom(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and value[0] in ("uuid", "named-uuid"):
        return value[1]
    return value


def _set(value: Any) -> list:
    if isinstance(value, list) and len(value) == 2 and value[0] == "set":
        return [_atom(v) for v in value[1]]
    return [_atom(value)]


def _one(value: Any) -> Any:
    """An optional column (a set of zero or one) as the item or None."""
    items = _set(value) if value is not None else []
    return items[0] if items else None


def _map(value: Any) -> dict:
    if isinstance(value, list) and len(value) == 2 and value[0] == "map":
        return {k: v for k, v in value[1]}
    return {}


def read_ovn(settings: OvnSettings, down_time: float, now_s: float | None = None) -> OvnView:
    """Read SB then NB once (never writing) into an :class:`OvnView`.

    Every select goes out first, so the NB and SB servers build their replies side by
    side (OVSDB builds a reply whole before sending it). Rows are streamed and turned
    into small records as they are parsed: the SB claims are kept per logical port as a
    pair, then each LSP becomes one :class:`OvnPort` with its claim. Strings that
    repeat across ports (switch, host, owner, chassis) are shared.
    """
    assert settings.nb is not None and settings.sb is not None
    intern = sys.intern
    with (
        _reading(settings.sb, SB_SCHEMA, SB_COLUMNS, settings.timeout) as (sb_rows, sb_remote),
        _reading(settings.nb, NB_SCHEMA, NB_COLUMNS, settings.timeout) as (nb_rows, nb_remote),
    ):
        raw_chassis = list(sb_rows("Chassis"))
        private_of = {}
        for cp in sb_rows("Chassis_Private"):
            ch = _one(cp.get("chassis"))
            if ch is not None:
                private_of[ch] = cp
        names = {_atom(ch["_uuid"]): intern(ch.get("name", "")) for ch in raw_chassis}
        claims: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        for pb in sb_rows("Port_Binding"):
            owner = _one(pb.get("chassis"))
            extra = pb.get("additional_chassis")
            claims[pb.get("logical_port", "")] = (
                None if owner is None else names.get(owner, owner),
                tuple(names.get(u, u) for u in _set(extra)) if extra else (),
            )
        g = next(iter(list(nb_rows("NB_Global"))), {})
        nb_cfg = int(g.get("nb_cfg", 0))
        switch_of: dict[str, str] = {}
        for ls in nb_rows("Logical_Switch"):
            name = intern(ls.get("name", ""))
            for lsp_uuid in _set(ls.get("ports", ["set", []])):
                switch_of[lsp_uuid] = name
        ports: dict[str, OvnPort] = {}
        claimed = 0
        for lsp in nb_rows("Logical_Switch_Port"):
            ext = _map(lsp.get("external_ids"))
            up, enabled = _one(lsp.get("up")), _one(lsp.get("enabled"))
            name = lsp["name"]
            claim = claims.pop(name, None)
            owner, extra = claim if claim is not None else (None, ())
            claimed += owner is not None
            ports[name] = OvnPort(
                name=name,
                switch=switch_of.pop(_atom(lsp["_uuid"]), ""),
                type=intern(lsp.get("type", "")),
                requested_chassis=intern(_map(lsp.get("options")).get("requested-chassis", "")),
                up=None if up is None else bool(up),
                enabled=None if enabled is None else bool(enabled),
                has_port_name="neutron:port_name" in ext,
                device_owner=intern(ext.get("neutron:device_owner", "")),
                host_id=intern(ext.get("neutron:host_id", "")),
                claimed_by=owner,
                additional_chassis=extra,
                has_port_binding=claim is not None,
            )
    del claims, switch_of
    now = time.time() if now_s is None else now_s
    chassis = [
        _chassis(ch, private_of.get(_atom(ch["_uuid"])), nb_cfg, now, down_time)
        for ch in raw_chassis
    ]
    return OvnView(
        nb_cfg=nb_cfg,
        chassis=chassis,
        ports=ports,
        source={
            "nb": nb_remote,
            "sb": sb_remote,
            "nb_cfg": nb_cfg,
            "logical_switch_ports": len(ports),
            "chassis": len(chassis),
            "port_bindings_claimed": claimed,
        },
    )


def _chassis(
    ch: dict, private: dict | None, nb_cfg: int, now: float, down_time: float
) -> OvnChassis:
    other = _map(ch.get("other_config"))
    mappings = other.get("ovn-bridge-mappings", "")
    physnets, error = parse_bridge_mappings(mappings)
    cms = [o.strip() for o in other.get("ovn-cms-options", "").split(",")]
    iface = other.get("iface-types", "")
    if private is not None:
        cfg_seen = int(private.get("nb_cfg", 0))
        stamp = int(private.get("nb_cfg_timestamp", 0) or 0)
        alive, why = chassis_liveness(nb_cfg, cfg_seen, stamp, now, down_time)
        bridge = _map(private.get("external_ids")).get("neutron:ovn-bridge") or DEFAULT_OVN_BRIDGE
    else:
        cfg_seen = stamp = 0
        alive, why = False, "no Chassis_Private row: neutron lists no agent for it"
        bridge = DEFAULT_OVN_BRIDGE
    return OvnChassis(
        name=ch.get("name", ""),
        hostname=ch.get("hostname", ""),
        alive=alive,
        liveness=why,
        gateway="enable-chassis-as-gw" in cms,
        bridge_mappings=mappings,
        physnets=physnets,
        mappings_error=error,
        datapath_type=other.get("datapath-type", ""),
        iface_types=tuple(t for t in iface.split(",") if t),
        ovn_bridge=bridge,
        has_private=private is not None,
        nb_cfg=cfg_seen,
        nb_cfg_timestamp_ms=stamp,
    )
