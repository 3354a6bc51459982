"""OVN's Northbound and Southbound databases as a source, strictly read-only.

Connections are given as neutron's ``[ovn] ovn_nb_connection`` /
``ovn_sb_connection`` (``tcp:IP:PORT``, ``ssl:IP:PORT``, ``unix:PATH``, comma
lists for a clustered database), by flag or from the ``[ovn]`` section of the
``--neutron-config-file`` files, with neutron's SSL options
(``ovn_nb_private_key``/``ovn_nb_certificate``/``ovn_nb_ca_cert`` and the
``ovn_sb_*`` ones).

Reading uses ovsdbapp (``pip install 'vifdoctor[ovn]'``), the library neutron
itself reads OVN with: its schema helper, an IDL registered for only the
columns the rules need (no transaction is ever built), one wait for the
initial dump, then the rows are copied into small model objects
(``vifdoctor.model_ovn``) and the connection is closed.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import time
from dataclasses import dataclass, field

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
        opts += [cfg.ListOpt(f"ovn_{db}_connection"),
                 cfg.StrOpt(f"ovn_{db}_private_key", default=""),
                 cfg.StrOpt(f"ovn_{db}_certificate", default=""),
                 cfg.StrOpt(f"ovn_{db}_ca_cert", default="")]
    return opts + [cfg.IntOpt("ovsdb_connection_timeout"),
                   cfg.StrOpt("vhost_sock_dir"), cfg.BoolOpt("ovs_create_tap")]


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
            f"config file not found or unreadable: {', '.join(exc.config_files)}") from None
    except (cfg.Error, ValueError) as exc:
        raise VifdoctorError(f"bad [ovn] value in config files: {exc}") from None


def resolve_ovn(nb_connection: str | None, sb_connection: str | None,
                config_files: list[str]) -> OvnSettings:
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
                    f"{where}: {remote!r} is not tcp:IP:PORT, ssl:IP:PORT or unix:PATH")
        ssl = {k: conf.get(f"ovn_{db}_{k}") or "" for k in ("private_key", "certificate",
                                                            "ca_cert")}
        if "ssl:" in text and not all(ssl.values()):
            missing = [f"ovn_{db}_{k}" for k, v in ssl.items() if not v]
            raise VifdoctorError(f"{where} uses ssl: but [ovn] {', '.join(missing)} "
                                 "is not set in the --neutron-config-file files")
        dbs[db] = OvnDb(text, source=where, **ssl)
    if (dbs["nb"] is None) != (dbs["sb"] is None):
        have, lack = ("nb", "sb") if dbs["nb"] else ("sb", "nb")
        raise VifdoctorError(f"OVN {have.upper()} given without the {lack.upper()}: pass "
                             f"--ovn-{lack}-connection too (or [ovn] ovn_{lack}_connection)")
    timeout = float(conf.get("ovsdb_connection_timeout") or DEFAULT_TIMEOUT)
    return OvnSettings(
        nb=dbs["nb"], sb=dbs["sb"], timeout=min(timeout, DEFAULT_TIMEOUT),
        vhost_sock_dir=conf.get("vhost_sock_dir") or "/var/run/openvswitch",
        ovs_create_tap=True if conf.get("ovs_create_tap") is None
        else bool(conf.get("ovs_create_tap")))


# ---------------------------------------------------------------------- reading


def _libraries():
    """ovsdbapp and python-ovs, or one clear line naming the extra."""
    try:
        import ovs.jsonrpc
        import ovs.poller
        import ovs.stream
        from ovs.db import idl
        from ovsdbapp.backend.ovs_idl import idlutils
    except ImportError:
        raise VifdoctorError("reading OVN needs ovsdbapp: pip install 'vifdoctor[ovn]'") \
            from None
    # python-ovs logs through its vlog module; one line of ours says what went wrong.
    logging.getLogger("ovsdbapp").setLevel(logging.CRITICAL)
    return ovs, idl, idlutils


def _set_ssl(ovs, db: OvnDb) -> None:
    if any(r.startswith("ssl:") for r in db.remotes()):
        for path in (db.private_key, db.certificate, db.ca_cert):
            if not os.access(path, os.R_OK):
                raise VifdoctorError(f"{db.source}: SSL file {path} is not readable")
        ovs.stream.Stream.ssl_set_private_key_file(db.private_key)
        ovs.stream.Stream.ssl_set_certificate_file(db.certificate)
        ovs.stream.Stream.ssl_set_ca_cert_file(db.ca_cert)


def _rpc(ovs, conn, method: str, params: list, deadline: float):
    """One JSON-RPC request with a deadline: (error text or None, result)."""
    msg = ovs.jsonrpc.Message.create_request(method, params)
    error = conn.send(msg)
    while not error:
        conn.run()
        error, reply = conn.recv()
        if error == errno.EAGAIN:
            if time.monotonic() > deadline:
                return "timed out", None
            poller = ovs.poller.Poller()
            conn.wait(poller)
            conn.recv_wait(poller)
            poller.timer_wait(200)
            poller.block()
            error = 0
            continue
        if error:
            break
        if reply.id == msg.id:
            if reply.error:
                return str(reply.error), None
            return None, reply.result
    return os.strerror(error) if isinstance(error, int) else str(error), None


def fetch_schema(ovs, db: OvnDb, schema: str, timeout: float) -> tuple[str, dict]:
    """Find a remote of ``db`` that answers and serves ``schema``; return it and the schema.

    Every failure ends in one line: unreachable (each remote's reason) or not OVN
    (the databases the server does serve).
    """
    reasons = []
    for remote in db.remotes():
        deadline = time.monotonic() + timeout
        error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote),
                                                     int(timeout * 1000))
        if error:
            reasons.append(f"{remote}: {os.strerror(error)}")
            continue
        conn = ovs.jsonrpc.Connection(stream)
        try:
            err, dbs = _rpc(ovs, conn, "list_dbs", [], deadline)
            if err:
                reasons.append(f"{remote}: {err}")
                continue
            if schema not in dbs:
                served = ", ".join(d for d in dbs if not d.startswith("_")) or "no database"
                raise VifdoctorError(
                    f"{db.source} {remote} is not an OVN {schema.split('_')[1]} database "
                    f"(it serves {served})")
            err, found = _rpc(ovs, conn, "get_schema", [schema], deadline)
            if err:
                reasons.append(f"{remote}: {err}")
                continue
            return remote, found
        finally:
            conn.close()
    raise VifdoctorError(f"cannot reach the OVN {schema.split('_')[1]} database "
                         f"({db.source}): {'; '.join(reasons)}")


def _read(db: OvnDb, schema: str, columns: dict[str, list[str]], timeout: float):
    """An IDL of the wanted columns, synced once; the caller copies what it needs."""
    ovs, idl, idlutils = _libraries()
    _set_ssl(ovs, db)
    remote, schema_json = fetch_schema(ovs, db, schema, timeout)
    helper = idlutils.create_schema_helper(schema_json)
    tables = schema_json.get("tables", {})
    for table, cols in columns.items():
        if table not in tables:
            raise VifdoctorError(f"{db.source}: {schema} has no {table} table (OVN older than "
                                 "20.06, which neutron's OVN driver no longer supports)")
        have = tables[table].get("columns", {})
        helper.register_columns(table, [c for c in cols if c in have])
    # All remotes: the IDL fails over between the cluster's members as neutron's does.
    reader = idl.Idl(db.connection, helper, leader_only=False)
    try:
        idlutils.wait_for_change(reader, timeout)
    except Exception as exc:  # ovsdbapp raises its TimeoutException, python-ovs others
        reader.close()
        raise VifdoctorError(f"the OVN {schema.split('_')[1]} database at {remote} did not "
                             f"send its tables within {timeout:g} s ({type(exc).__name__})"
                             ) from None
    return reader, remote


def _one(value):
    """An optional OVSDB column (a list of zero or one item) as the item or None."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def read_ovn(settings: OvnSettings, down_time: float, now_s: float | None = None) -> OvnView:
    """Read NB and SB once (never writing) into an :class:`OvnView`."""
    assert settings.nb is not None and settings.sb is not None
    nb, nb_remote = _read(settings.nb, NB_SCHEMA, NB_COLUMNS, settings.timeout)
    try:
        g = next(iter(nb.tables["NB_Global"].rows.values()), None)
        nb_cfg = int(g.nb_cfg) if g is not None else 0
        switch_of: dict = {}
        for ls in nb.tables["Logical_Switch"].rows.values():
            for lsp in ls.ports:
                switch_of[lsp.uuid] = ls.name
        ports: dict[str, OvnPort] = {}
        for uuid, lsp in nb.tables["Logical_Switch_Port"].rows.items():
            ext = lsp.external_ids
            up, enabled = _one(lsp.up), _one(lsp.enabled)
            ports[lsp.name] = OvnPort(
                name=lsp.name, switch=switch_of.get(uuid, ""), type=lsp.type,
                requested_chassis=lsp.options.get("requested-chassis", ""),
                up=None if up is None else bool(up),
                enabled=None if enabled is None else bool(enabled),
                has_port_name="neutron:port_name" in ext,
                device_owner=ext.get("neutron:device_owner", ""),
                host_id=ext.get("neutron:host_id", ""))
        lsp_count = len(ports)
    finally:
        nb.close()
    sb, sb_remote = _read(settings.sb, SB_SCHEMA, SB_COLUMNS, settings.timeout)
    now = time.time() if now_s is None else now_s
    try:
        chassis: list[OvnChassis] = []
        private_of = {}
        for cp in sb.tables["Chassis_Private"].rows.values():
            ch = _one(getattr(cp, "chassis", []))
            if ch is not None:
                private_of[ch.uuid] = cp
        for uuid, ch in sb.tables["Chassis"].rows.items():
            chassis.append(_chassis(ch, private_of.get(uuid), nb_cfg, now, down_time))
        claimed = 0
        pb_table = sb.tables["Port_Binding"]
        has_additional = "additional_chassis" in pb_table.columns
        for pb in pb_table.rows.values():
            port = ports.get(pb.logical_port)
            if port is None:
                continue
            owner = _one(pb.chassis)
            extra = tuple(c.name for c in pb.additional_chassis) if has_additional else ()
            claimed += owner is not None
            ports[pb.logical_port] = dataclasses.replace(
                port, claimed_by=owner.name if owner is not None else None,
                additional_chassis=extra, has_port_binding=True)
    finally:
        sb.close()
    return OvnView(nb_cfg=nb_cfg, chassis=chassis, ports=ports, source={
        "nb": nb_remote, "sb": sb_remote, "nb_cfg": nb_cfg,
        "logical_switch_ports": lsp_count, "chassis": len(chassis),
        "port_bindings_claimed": claimed})


def _chassis(ch, private, nb_cfg: int, now: float, down_time: float) -> OvnChassis:
    other = ch.other_config
    mappings = other.get("ovn-bridge-mappings", "")
    physnets, error = parse_bridge_mappings(mappings)
    cms = [o.strip() for o in other.get("ovn-cms-options", "").split(",")]
    iface = other.get("iface-types", "")
    if private is not None:
        cfg_seen = int(private.nb_cfg)
        stamp = int(getattr(private, "nb_cfg_timestamp", 0) or 0)
        alive, why = chassis_liveness(nb_cfg, cfg_seen, stamp, now, down_time)
        bridge = private.external_ids.get("neutron:ovn-bridge") or DEFAULT_OVN_BRIDGE
    else:
        cfg_seen = stamp = 0
        alive, why = False, "no Chassis_Private row: neutron lists no agent for it"
        bridge = DEFAULT_OVN_BRIDGE
    return OvnChassis(
        name=ch.name, hostname=ch.hostname, alive=alive, liveness=why,
        gateway="enable-chassis-as-gw" in cms, bridge_mappings=mappings,
        physnets=physnets, mappings_error=error,
        datapath_type=other.get("datapath-type", ""),
        iface_types=tuple(t for t in iface.split(",") if t),
        ovn_bridge=bridge, has_private=private is not None,
        nb_cfg=cfg_seen, nb_cfg_timestamp_ms=stamp)
