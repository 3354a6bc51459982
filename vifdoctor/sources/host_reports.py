"""Host-scan reports from a folder, as the audit joins them to the bindings."""

from __future__ import annotations

import json
import os
import stat

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import HostWiring
from vifdoctor.shell import terminal_safe
from vifdoctor.sources import sosreport
from vifdoctor.sources.host.scan import FORMAT, FORMAT_VERSION
from vifdoctor.sources.host_schema import problem

MAX_REPORT_BYTES = 64 * 1024 * 1024  # a host with thousands of ports writes a few MB


def read_report(path: str) -> dict:
    """A report file's JSON: only a regular file of bounded size (a FIFO never blocks it).

    Raises ValueError with the reason the file cannot be used.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_REPORT_BYTES:
            raise ValueError(f"larger than {MAX_REPORT_BYTES} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_REPORT_BYTES:
        raise ValueError(f"larger than {MAX_REPORT_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None


def _regular(path: str) -> bool:
    """A regular file (a FIFO named like a report must not block the audit)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def load_reports(folder: str) -> tuple[dict[str, HostWiring], list[str]]:
    """Every readable report by host, and one note per file that could not be used."""
    if not os.path.isdir(folder):
        raise VifdoctorError(f"--host-reports {folder} is not a folder")
    reports: dict[str, HostWiring] = {}
    notes: list[str] = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        shown = terminal_safe(name)
        sos = sosreport.is_sosreport(path)  # sos directories and tarballs: docs/hosts.md
        if not (sos or name.endswith(".json")):
            continue
        try:
            if sos:
                if not os.path.isdir(path) and not _regular(path):
                    raise ValueError("not a regular file")
                doc, more = sosreport.host_report(path)
                notes.extend(more)
            else:
                doc = read_report(path)
        except (OSError, ValueError) as exc:
            notes.append(f"host report {shown} skipped: {exc}")
            continue
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            notes.append(f"host report {shown} skipped: not a vifdoctor host-scan report")
            continue
        if doc.get("format_version") != FORMAT_VERSION:
            notes.append(
                f"host report {shown} skipped: format version "
                f"{terminal_safe(repr(doc.get('format_version')))[:40]}, "
                f"expected {FORMAT_VERSION}"
            )
            continue
        bad = problem(doc)
        if bad is not None:
            notes.append(f"host report {shown} skipped: malformed ({terminal_safe(bad)[:200]})")
            continue
        wiring = HostWiring.from_report(doc)
        if wiring.host in reports:
            notes.append(
                f"host report {shown} skipped: a second report for {terminal_safe(wiring.host)}"
            )
            continue
        reports[wiring.host] = wiring
        for err in wiring.errors:
            notes.append(
                f"{wiring.host}: {err.get('source')} could not be read "
                f"({err.get('error')}); findings that need it are not made"
            )
    notes.insert(0, f"live wiring from {len(reports)} host report(s) in {folder}")
    return reports, notes


class HostReportFolder:
    """A folder of host-scan reports: a ``HostWiringSource``."""

    def __init__(self, folder: str):
        self.folder = folder

    def reports(self) -> tuple[dict[str, HostWiring], list[str]]:
        return load_reports(self.folder)
