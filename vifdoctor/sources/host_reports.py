"""Host-scan reports from a folder, as the audit joins them to the bindings."""

from __future__ import annotations

import json
import os

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import HostWiring
from vifdoctor.sources import sosreport
from vifdoctor.sources.host.scan import FORMAT, FORMAT_VERSION


def load_reports(folder: str) -> tuple[dict[str, HostWiring], list[str]]:
    """Every readable report by host, and one note per file that could not be used."""
    if not os.path.isdir(folder):
        raise VifdoctorError(f"--host-reports {folder} is not a folder")
    reports: dict[str, HostWiring] = {}
    notes: list[str] = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        sos = sosreport.is_sosreport(path)  # sos directories and tarballs: docs/hosts.md
        if not (sos or name.endswith(".json")):
            continue
        try:
            if sos:
                doc, more = sosreport.host_report(path)
                notes.extend(more)
            else:
                with open(path, encoding="utf-8") as fh:
                    doc = json.load(fh)
        except (OSError, ValueError) as exc:
            notes.append(f"host report {name} skipped: {exc}")
            continue
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            notes.append(f"host report {name} skipped: not a vifdoctor host-scan report")
            continue
        if doc.get("format_version") != FORMAT_VERSION:
            notes.append(f"host report {name} skipped: format version "
                         f"{doc.get('format_version')!r}, expected {FORMAT_VERSION}")
            continue
        wiring = HostWiring.from_report(doc)
        if wiring.host in reports:
            notes.append(f"host report {name} skipped: a second report for {wiring.host}")
            continue
        reports[wiring.host] = wiring
        for err in wiring.errors:
            notes.append(f"{wiring.host}: {err.get('source')} could not be read "
                         f"({err.get('error')}); findings that need it are not made")
    notes.insert(0, f"live wiring from {len(reports)} host report(s) in {folder}")
    return reports, notes


class HostReportFolder:
    """A folder of host-scan reports: a ``HostWiringSource``."""

    def __init__(self, folder: str):
        self.folder = folder

    def reports(self) -> tuple[dict[str, HostWiring], list[str]]:
        return load_reports(self.folder)

