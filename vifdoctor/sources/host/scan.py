"""``host-scan``: read every source on this host into one JSON report, written whole or not at all.

Format (version 1): ``format``, ``format_version``, ``tool_version``, ``host``,
``scanned_at``, ``sources`` (per source: ``ok`` and how it was read),
``errors`` (what could not be read and why), ``domains``, ``ovs_bridges``,
``links``, ``iptables_chains`` (null when not asked for or not readable),
``open_vswitch`` (the ``Open_vSwitch`` row's ``external_ids``: ML2/OVN's chassis
settings; null when not readable; absent from reports of vifdoctor before it).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import tempfile
from typing import IO

from vifdoctor import __version__
from vifdoctor.errors import VifdoctorError
from vifdoctor.sources.host import CollectError
from vifdoctor.sources.host import iptables as iptables_source
from vifdoctor.sources.host import libvirt as libvirt_source
from vifdoctor.sources.host import links as links_source
from vifdoctor.sources.host import ovs as ovs_source

FORMAT = "vifdoctor-host-scan"
FORMAT_VERSION = 1


def scan(
    host: str | None = None,
    libvirt_uri: str | None = None,
    ovsdb: str | None = None,
    with_iptables: bool = False,
) -> dict:
    report: dict = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "host": host or socket.gethostname(),
        "scanned_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "sources": {},
        "errors": [],
        "domains": [],
        "ovs_bridges": [],
        "links": [],
        "iptables_chains": None,
        "open_vswitch": None,
    }

    def attempt(name: str, key: str, func, **info) -> None:
        try:
            result = func()
        except CollectError as exc:
            report["sources"][name] = {"ok": False, **info}
            report["errors"].append({"source": name, "error": str(exc)})
            return
        if isinstance(result, tuple):
            result, via = result
            info = {**info, "via": via}
        report[key] = result
        report["sources"][name] = {"ok": True, **info}

    attempt(
        "libvirt",
        "domains",
        lambda: libvirt_source.collect(libvirt_uri),
        uri=libvirt_uri or "(default)",
    )
    attempt("ovs", "ovs_bridges", lambda: ovs_source.collect(ovsdb), db=ovsdb or "(default)")
    if report["sources"]["ovs"]["ok"]:
        attempt(
            "open_vswitch",
            "open_vswitch",
            lambda: ovs_source.collect_system(ovsdb),
            db=ovsdb or "(default)",
        )
    else:  # the same database: its error is said once, under ovs
        report["sources"]["open_vswitch"] = {"ok": False, "db": ovsdb or "(default)"}
    attempt("links", "links", links_source.collect)
    if with_iptables:
        attempt("iptables", "iptables_chains", iptables_source.collect)
    return report


def write_report(report: dict, path: str | None, out: IO[str]) -> None:
    """To stdout, or to a file that appears only once it is complete."""
    text = json.dumps(report, indent=1, sort_keys=False) + "\n"
    if not path or path == "-":
        out.write(text)
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".host-scan-", dir=folder)
    except OSError as exc:
        raise VifdoctorError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise VifdoctorError(f"cannot write {path}: {exc.strerror or exc}") from None
