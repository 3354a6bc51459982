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
(``vifdoctor.model_ovn``) as they are consumed, and the connection is closed.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from oslo_config import cfg

from vifdoctor.errors import VifdoctorError
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
DEFAULT_TIMEOUT = 30.0  # seconds to connect and read each database
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
        timeout=min(timeout, DEFAULT_TIMEOUT),
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
    followed by an ``echo`` carrying a random token; the server answers in order, so the
    reply is complete once the token arrives, and ``json.loads`` parses it whole.
    """

    def __init__(self, ovs, remote: str, timeout: float):
        self.ovs = ovs
        self.remote = remote
        self.timeout = timeout
        error, self.stream = ovs.stream.Stream.open_block(
            ovs.stream.Stream.open(remote), int(timeout * 1000)
        )
        self.error = os.strerror(error) if error else None

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

    def call(self, method: str, params: list) -> Any:
        """One request; its result, or VifdoctorError with the server's error."""
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
        buf = bytearray()
        mark = token.encode()
        while True:
            self.stream.run()
            error, chunk = self.stream.recv(1 << 20)
            if error == errno.EAGAIN:
                self._wait(deadline, sending=False)
                continue
            if error:
                raise OSError(error, os.strerror(error))
            if not chunk:
                raise OSError(errno.ECONNRESET, "the server closed the connection")
            tail = max(0, len(buf) - len(mark))
            buf += chunk
            at = buf.find(mark, tail)
            if at >= 0:
                break
        reply = json.loads(bytes(buf[: buf.rfind(b"{", 0, at)]))
        if reply.get("error"):
            raise VifdoctorError(f"{self.remote}: {method}: {reply['error']}")
        return reply.get("result")


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


def _read(
    db: OvnDb, schema: str, columns: dict[str, list[str]], timeout: float
) -> tuple[dict[str, list[dict]], str]:
    """The wanted columns of each table (those the server's schema has), by one
    ``transact`` of ``select`` operations only: nothing is ever written."""
    ovs, idlutils = _libraries()
    _set_ssl(ovs, db)
    session, schema_json = _open(ovs, db, schema, timeout)
    try:
        helper = idlutils.create_schema_helper(schema_json)  # refuses a malformed schema
        helper.register_all()
        tables = helper.get_idl_schema().tables
        found: dict[str, list[dict]] = {}
        for table, cols in columns.items():
            if table not in tables:
                raise VifdoctorError(
                    f"{db.source}: {schema} has no {table} table (OVN older "
                    "than 20.06, which neutron's OVN driver no longer "
                    "supports)"
                )
            have = ["_uuid"] + [c for c in cols if c in tables[table].columns]
            (result,) = session.call(
                "transact", [schema, {"op": "select", "table": table, "where": [], "columns": have}]
            )
            if "error" in result:
                raise VifdoctorError(f"{session.remote}: select {table}: {result['error']}")
            found[table] = result["rows"]
        return found, session.remote
    except (OSError, TimeoutError, ValueError) as exc:
        raise VifdoctorError(
            f"the OVN {schema.split('_')[1]} database at {session.remote} "
            f"did not send its tables within {timeout:g} s "
            f"({type(exc).__name__})"
        ) from None
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
    """Read NB and SB once (never writing) into an :class:`OvnView`."""
    assert settings.nb is not None and settings.sb is not None
    nb, nb_remote = _read(settings.nb, NB_SCHEMA, NB_COLUMNS, settings.timeout)
    g = nb["NB_Global"][0] if nb["NB_Global"] else {}
    nb_cfg = int(g.get("nb_cfg", 0))
    switch_of: dict[str, str] = {}
    for ls in nb.pop("Logical_Switch"):
        for lsp_uuid in _set(ls.get("ports", ["set", []])):
            switch_of[lsp_uuid] = ls.get("name", "")
    ports: dict[str, OvnPort] = {}
    rows = nb.pop("Logical_Switch_Port")
    while rows:  # consumed as copied: the raw rows do not outlive their record
        lsp = rows.pop()
        ext = _map(lsp.get("external_ids"))
        up, enabled = _one(lsp.get("up")), _one(lsp.get("enabled"))
        ports[lsp["name"]] = OvnPort(
            name=lsp["name"],
            switch=switch_of.get(_atom(lsp["_uuid"]), ""),
            type=lsp.get("type", ""),
            requested_chassis=_map(lsp.get("options")).get("requested-chassis", ""),
            up=None if up is None else bool(up),
            enabled=None if enabled is None else bool(enabled),
            has_port_name="neutron:port_name" in ext,
            device_owner=ext.get("neutron:device_owner", ""),
            host_id=ext.get("neutron:host_id", ""),
        )
    lsp_count = len(ports)
    del nb, switch_of
    sb, sb_remote = _read(settings.sb, SB_SCHEMA, SB_COLUMNS, settings.timeout)
    now = time.time() if now_s is None else now_s
    private_of = {}
    for cp in sb["Chassis_Private"]:
        ch = _one(cp.get("chassis"))
        if ch is not None:
            private_of[ch] = cp
    chassis: list[OvnChassis] = []
    names: dict[str, str] = {}
    for ch in sb["Chassis"]:
        uuid = _atom(ch["_uuid"])
        names[uuid] = ch.get("name", "")
        chassis.append(_chassis(ch, private_of.get(uuid), nb_cfg, now, down_time))
    claimed = 0
    rows = sb.pop("Port_Binding")
    while rows:
        pb = rows.pop()
        port = ports.get(pb.get("logical_port", ""))
        if port is None:
            continue
        owner = _one(pb.get("chassis"))
        extra = tuple(names.get(u, u) for u in _set(pb.get("additional_chassis", ["set", []])))
        claimed += owner is not None
        ports[port.name] = dataclasses.replace(
            port,
            claimed_by=names.get(owner, owner) if owner is not None else None,
            additional_chassis=extra,
            has_port_binding=True,
        )
    return OvnView(
        nb_cfg=nb_cfg,
        chassis=chassis,
        ports=ports,
        source={
            "nb": nb_remote,
            "sb": sb_remote,
            "nb_cfg": nb_cfg,
            "logical_switch_ports": lsp_count,
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
