"""A folder of host-scan reports, streamed into an on-disk index: flat memory for any fleet.

``audit --host-reports DIR`` on 1,000 hosts used to hold every report as
Python objects at once (a compute host's report is 50-500 KB of JSON: its OVS
tunnel ports alone grow with the fleet). Here each file is read, checked and
indexed one at a time into a private temporary SQLite database (deleted when
it is closed); the audit then asks for one port's devices at a time and gets
small :class:`~vifdoctor.model.HostWiring`-shaped views whose tables are
looked up on disk. Memory stays that of one report plus SQLite's page cache.

The folder may also hold failure records, written by the Ansible collection
(``vifdoctor.openstack``) for a host that was unreachable or could not run
host-scan: the host then has no report, and the audit says why.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections import OrderedDict
from collections.abc import Iterator, Mapping

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import HostWiring, OvsIface
from vifdoctor.sources import sosreport
from vifdoctor.sources.host.scan import FORMAT, FORMAT_VERSION
from vifdoctor.sources.host_schema import problem

FAILURE_FORMAT = "vifdoctor-host-scan-failure"  # written by the collection's action plugin
# Nova's per-port device names: prefix + port id, cut to 14 (sources do not import rules)
NIC_NAME_LEN = 14
PREFIXES = ("tap", "qbr", "qvb", "qvo")
MAX_REPORT_BYTES = 64 * 1024 * 1024  # a host with thousands of ports writes a few MB
_CACHE_HOSTS = 8  # host views kept (each holds only its host row: readable, chains, errors)

_SCHEMA = """
CREATE TABLE host (host TEXT PRIMARY KEY, readable TEXT, chains TEXT, errors TEXT,
                   domains TEXT, system TEXT);
CREATE TABLE link (host TEXT, name TEXT, data TEXT, PRIMARY KEY (host, name));
CREATE TABLE ovs (host TEXT, name TEXT, bridge TEXT, type TEXT, ofport INTEGER,
                  iface_id TEXT, external_ids TEXT, PRIMARY KEY (host, name));
CREATE INDEX ovs_iface_id ON ovs (host, iface_id);
"""


def _read(path: str) -> dict | str:
    """The file's JSON document, or why it cannot be used.

    Only a regular file of bounded size is read (opened non-blocking: a FIFO named
    ``*.json`` cannot hang the audit), the checks host_reports.py's loader makes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size > MAX_REPORT_BYTES:
            return f"larger than {MAX_REPORT_BYTES} bytes"
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        os.close(fd)
    if len(data) > MAX_REPORT_BYTES:
        return f"larger than {MAX_REPORT_BYTES} bytes"
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8"
    except RecursionError:
        return "nested too deeply"
    except ValueError as exc:
        return f"not valid JSON: {str(exc)[:160]}"
    if not isinstance(doc, dict):
        return "not a vifdoctor host-scan report"
    return doc


def failure_reason(doc: dict) -> str:
    """One line for a failure record: the reason and the message Ansible gave."""
    reason = str(doc.get("reason") or "no report")
    message = " ".join(str(doc.get("message") or "").split())[:160]
    return f"{reason}: {message}" if message else reason


class _Table(Mapping):
    """One host's rows of one table, looked up on disk by key.

    Keyed by device name, a lookup of ``tap``/``qbr``/``qvb``/``qvo`` + port reads
    the port's four devices at once: the wiring rules ask for them in a row.
    """

    def __init__(self, conn: sqlite3.Connection, host: str, table: str, key: str, build):
        self._conn, self._host, self._build = conn, host, build
        self._by_device = key == "name"
        # S608: table and key are this module's constants (see below), values are bound
        self._four = f"SELECT * FROM {table} WHERE host = ? AND name IN (?, ?, ?, ?)"  # noqa: S608
        self._suffix: str | None = None
        self._memo: dict[str, tuple] = {}
        self._one = f"SELECT * FROM {table} WHERE host = ? AND {key} = ? ORDER BY rowid"  # noqa: S608
        self._keys = (
            f"SELECT DISTINCT {key} FROM {table} WHERE host = ? "  # noqa: S608
            f"AND {key} IS NOT NULL AND {key} != '' ORDER BY {key}"
        )

    def __getitem__(self, key: str):
        if self._by_device and len(key) == NIC_NAME_LEN and key[:3] in PREFIXES:
            suffix = key[3:]
            if suffix != self._suffix:
                names = [p + suffix for p in PREFIXES]
                self._memo = {
                    row[1]: row for row in self._conn.execute(self._four, (self._host, *names))
                }
                self._suffix = suffix
            if key not in self._memo:
                raise KeyError(key)
            return self._build([self._memo[key]])
        rows = self._conn.execute(self._one, (self._host, key)).fetchall()
        if not rows:
            raise KeyError(key)
        return self._build(rows)

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self._conn.execute(self._keys, (self._host,)).fetchall())

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _link(rows: list) -> dict:
    return json.loads(rows[0][2])


def _ovs_iface(row) -> OvsIface:
    _, name, bridge, kind, ofport, iface_id, ext = row
    return OvsIface(bridge, name, kind, ofport, iface_id, json.loads(ext))


class IndexedHostWiring:
    """A :class:`HostWiring` whose links and OVS interfaces stay on disk until asked for."""

    def __init__(self, conn: sqlite3.Connection, row: tuple):
        host, readable, chains, errors, self._domains, system = row
        self._conn = conn
        self.host: str = host
        self.readable: dict[str, bool] = json.loads(readable)
        loaded = json.loads(chains)
        self.chains: set[str] | None = set(loaded) if loaded is not None else None
        self.errors: list[dict] = json.loads(errors)
        self.system: dict[str, str] | None = json.loads(system)
        self.links = _Table(conn, host, "link", "name", _link)
        self.ovs = _Table(conn, host, "ovs", "name", lambda rows: _ovs_iface(rows[0]))
        self.ovs_by_iface_id = _Table(
            conn, host, "ovs", "iface_id", lambda rows: [_ovs_iface(r) for r in rows]
        )

    @property
    def domains(self) -> list[dict]:
        return json.loads(self._domains)

    def running_devices(self) -> set[str]:
        return HostWiring.running_devices(self)  # type: ignore[arg-type]


class IndexedReports(Mapping):
    """Host name -> its wiring, for every report indexed; iterates in host order."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        self._cache: OrderedDict[str, IndexedHostWiring | None] = OrderedDict()

    def get(self, host, default=None):  # the audit asks once per binding: keep it cheap
        if host in self._cache:
            self._cache.move_to_end(host)
            found = self._cache[host]
        else:
            row = self._conn.execute("SELECT * FROM host WHERE host = ?", (host,)).fetchone()
            found = IndexedHostWiring(self._conn, row) if row else None
            self._cache[host] = found
            if len(self._cache) > _CACHE_HOSTS:
                self._cache.popitem(last=False)
        return default if found is None else found

    def __getitem__(self, host: str) -> IndexedHostWiring:
        found = self.get(host)
        if found is None:
            raise KeyError(host)
        return found

    def __iter__(self) -> Iterator[str]:
        return (r[0] for r in self._conn.execute("SELECT host FROM host ORDER BY host"))

    def __len__(self) -> int:
        return self._conn.execute("SELECT count(*) FROM host").fetchone()[0]


class HostReportIndex:
    """A folder of host-scan reports as a ``HostWiringSource`` that streams them.

    After :meth:`reports`, :attr:`failures` holds each host that has a failure
    record and no report, with the reason.
    """

    def __init__(self, folder: str):
        self.folder = folder
        self.failures: dict[str, str] = {}
        self.conn: sqlite3.Connection | None = None

    def reports(self) -> tuple[Mapping[str, HostWiring], list[str]]:
        if not os.path.isdir(self.folder):
            raise VifdoctorError(f"--host-reports {self.folder} is not a folder")
        # "": a private temporary database on disk, deleted when the connection closes
        conn = sqlite3.connect("", check_same_thread=False)
        conn.executescript("PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF;" + _SCHEMA)
        self.conn = conn
        notes: list[str] = []
        failures: dict[str, str] = {}
        count = 0
        for name in sorted(os.listdir(self.folder)):
            path = os.path.join(self.folder, name)
            if sosreport.is_sosreport(path):  # sos directories and tarballs: docs/hosts.md
                doc = sosreport.read(path, notes)
            elif not name.endswith(".json"):
                continue
            else:
                doc = _read(path)
            note = self._check(name, doc)
            if note is None and isinstance(doc, dict):
                if doc.get("format") == FAILURE_FORMAT:
                    failures.setdefault(str(doc.get("host") or name[:-5]), failure_reason(doc))
                    continue
                note = self._add(name, doc, notes)
            if note is not None:
                notes.append(note)
            else:
                count += 1
        self.failures = {h: r for h, r in failures.items() if not self._has(h)}
        notes.insert(0, f"live wiring from {count} host report(s) in {self.folder}")
        return IndexedReports(conn), notes

    @staticmethod
    def _check(name: str, doc: dict | str) -> str | None:
        if isinstance(doc, str):
            return f"host report {name} skipped: {doc}"
        if doc.get("format") not in (FORMAT, FAILURE_FORMAT):
            return f"host report {name} skipped: not a vifdoctor host-scan report"
        if doc.get("format_version") != FORMAT_VERSION:
            return (
                f"host report {name} skipped: format version "
                f"{doc.get('format_version')!r}, expected {FORMAT_VERSION}"
            )
        bad = problem(doc) if doc.get("format") == FORMAT else None  # the schema (issue 13)
        if bad is not None:
            return f"host report {name} skipped: malformed ({bad})"[:300]
        return None

    def _add(self, name: str, doc: dict, notes: list[str]) -> str | None:
        """Index one report (its rows all or nothing); why it was skipped, if it was."""
        try:
            wiring = HostWiring.from_report(doc)
        except (AttributeError, TypeError, ValueError) as exc:
            return f"host report {name} skipped: malformed ({exc})"[:300]
        if self._has(wiring.host):
            return f"host report {name} skipped: a second report for {wiring.host}"
        assert self.conn is not None
        try:
            with self.conn:
                self._insert(wiring)
        except (TypeError, ValueError, sqlite3.Error) as exc:
            return f"host report {name} skipped: malformed ({exc})"[:300]
        for err in wiring.errors:
            if isinstance(err, dict):
                notes.append(
                    f"{wiring.host}: {err.get('source')} could not be read "
                    f"({err.get('error')}); findings that need it are not made"
                )
        return None

    def _has(self, host: str) -> bool:
        assert self.conn is not None
        return (
            self.conn.execute("SELECT 1 FROM host WHERE host = ?", (host,)).fetchone() is not None
        )

    def _insert(self, w: HostWiring) -> None:
        assert self.conn is not None
        self.conn.execute(
            "INSERT INTO host VALUES (?, ?, ?, ?, ?, ?)",
            (
                w.host,
                json.dumps(w.readable),
                json.dumps(sorted(w.chains) if w.chains is not None else None),
                json.dumps(w.errors),
                json.dumps(w.domains),
                json.dumps(w.system),
            ),
        )
        self.conn.executemany(
            "INSERT OR REPLACE INTO link VALUES (?, ?, ?)",
            ((w.host, n, json.dumps(link)) for n, link in w.links.items()),
        )
        self.conn.executemany(
            "INSERT OR REPLACE INTO ovs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (w.host, i.name, i.bridge, i.type, i.ofport, i.iface_id, json.dumps(i.external_ids))
                for i in w.ovs.values()
            ),
        )

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
