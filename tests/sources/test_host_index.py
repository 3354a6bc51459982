"""HostReportIndex: the same verdicts as reports held in memory, in flat memory.

The audit runs once with the in-memory loader (HostReportFolder, every report at
once) and once with the on-disk index over the same folder and Neutron database;
their findings must be the same, row for row. Then the index's peak memory is
measured (tracemalloc) over 40 and over 400 host reports.
"""

from __future__ import annotations

import json
import os
import tracemalloc
import uuid
from pathlib import Path

import pytest
from testkit.cloudfactory import write
from testkit.fleetkit import dev, synthetic_report

from vifdoctor import api
from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
)
from vifdoctor.errors import VifdoctorError
from vifdoctor.sources.host_index import HostReportIndex
from vifdoctor.sources.host_reports import HostReportFolder

NET, SEG, PROJECT = str(uuid.UUID(int=1)), str(uuid.UUID(int=2)), "p" * 32
HYBRID = json.dumps({"bridge_name": "br-int", "ovs_hybrid_plug": True, "port_filter": True})


def _ids(n: int, salt: int) -> list[tuple[str, str]]:
    """(port id, VM uuid) pairs, stable per salt; distinct in their first 11 characters
    (the device names)."""
    return [
        (
            str(uuid.uuid5(uuid.NAMESPACE_OID, f"port-{salt}-{i}")),
            str(uuid.uuid5(uuid.NAMESPACE_OID, f"vm-{salt}-{i}")),
        )
        for i in range(n)
    ]


def _cloud(url: str, ports: dict[str, list[tuple[str, str]]]) -> None:
    specs = [
        PortSpec(
            id=p,
            network_id=NET,
            device_owner="compute:nova",
            device_id=vm,
            project_id=PROJECT,
            binding=BindingSpec(host=h, vif_type="ovs", vif_details=HYBRID, segment_id=SEG),
        )
        for h, items in ports.items()
        for p, vm in items
    ]
    agents = [
        AgentSpec(host=h, agent_type="Open vSwitch agent", configurations={"ovs_hybrid_plug": True})
        for h in ports
    ]
    write(
        url,
        CloudSpec([NetworkSpec(NET, "n", PROJECT, [SegmentSpec(SEG)])], agents, specs),
        layout="ocata",
    )


def _audit(url: str, source) -> tuple[list[dict], list[str]]:
    report = api.audit(neutron_db=url, host_source=source)
    return list(report.findings), report.assumptions


def test_index_gives_the_same_findings_as_reports_in_memory(
    sqlite_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    bound = {f"c{h}": _ids(6, h) for h in range(1, 5)}
    # c1: all hybrid; c2: two ports direct (VD301); c3: a qvo on another bridge and a
    # foreign iface-id (VD303, VD304), a leftover (VD305); c4: OVS unreadable (nothing made)
    for h, items in bound.items():
        wired = [(p, vm, not (h == "c2" and i < 2)) for i, (p, vm) in enumerate(items)]
        doc = synthetic_report(h, wired, tunnels=5)
        if h == "c3":
            br_int = doc["ovs_bridges"][1]
            moved = br_int["ports"].pop(0)
            doc["ovs_bridges"][2]["ports"].append(moved)  # qvo of port 0 on br-tun
            stray = str(uuid.uuid5(uuid.NAMESPACE_OID, "stray"))
            br_int["ports"].append(
                {
                    "name": "tapstray",
                    "interfaces": [
                        {
                            "name": "tapstray",
                            "type": "",
                            "ofport": 9,
                            "error": None,
                            "external_ids": {"iface-id": stray},
                        }
                    ],
                }
            )
            gone = str(uuid.uuid5(uuid.NAMESPACE_OID, "gone"))
            doc["links"].append(
                {
                    "name": dev("qbr", gone),
                    "kind": "bridge",
                    "master": None,
                    "peer": None,
                    "operstate": "UP",
                    "mac": None,
                }
            )
        if h == "c4":
            doc["sources"]["ovs"]["ok"] = False
            doc["errors"] = [{"source": "ovs", "error": "ovs-vsctl exited 1"}]
        (folder / f"{h}.json").write_text(json.dumps(doc))
    _cloud(sqlite_url, {**bound, "c5": _ids(2, 5)})  # c5: VM ports, no report

    in_memory, notes_memory = _audit(sqlite_url, HostReportFolder(str(folder)))
    indexed, notes_index = _audit(sqlite_url, HostReportIndex(str(folder)))
    assert indexed == in_memory
    assert {f["code"] for f in indexed} >= {"VD301", "VD303", "VD304", "VD305"}
    assert [n for n in notes_index if "could not be read" in n] == [
        n for n in notes_memory if "could not be read" in n
    ]
    assert any(
        "no host report for 1 host(s) with VM ports: c5 (not in the folder)" in n
        for n in notes_index
    )


def test_failure_records_stale_reports_and_bad_files(sqlite_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    _cloud(sqlite_url, {"c1": _ids(1, 1), "c2": _ids(1, 2), "c3": _ids(1, 3)})
    p1, vm1 = _ids(1, 1)[0]
    (folder / "c1.json").write_text(json.dumps(synthetic_report("c1", [(p1, vm1, True)], 1)))
    failure = {
        "format": "vifdoctor-host-scan-failure",
        "format_version": 1,
        "reason": "no vifdoctor",
        "message": "'vifdoctor' not found",
    }
    (folder / "c2.json").write_text(json.dumps({**failure, "host": "c2"}))
    # a failure record for a host that also has a report (renamed file): the report wins
    (folder / "c1-old.json").write_text(json.dumps({**failure, "host": "c1"}))
    (folder / "broken.json").write_text("{not json")
    os.mkfifo(folder / "fifo.json")  # opened non-blocking: it cannot hang the audit
    (folder / "odd.json").write_text(
        json.dumps(
            {  # a bridge that is not an object
                "format": "vifdoctor-host-scan",
                "format_version": 1,
                "host": "c3",
                "ovs_bridges": ["br-int"],
            }
        )
    )
    (folder / "v2.json").write_text(
        json.dumps({"format": "vifdoctor-host-scan", "format_version": 2, "host": "c3"})
    )
    report = api.audit(neutron_db=sqlite_url, host_source=HostReportIndex(str(folder)))
    doc = report.document()
    assert doc["host_reports"] == {
        "hosts": 1,
        "missing": {
            "c2": {"reason": "no vifdoctor: 'vifdoctor' not found", "vm_ports": 1},
            "c3": {"reason": "not in the folder", "vm_ports": 1},
        },
    }
    assert doc["summary"]["hosts_without_report"] == 2
    notes = "\n".join(doc["assumptions"])
    assert "host report broken.json skipped: not valid JSON" in notes
    assert "host report fifo.json skipped: not a regular file" in notes
    assert "host report odd.json skipped: malformed" in notes
    assert "host report v2.json skipped: format version 2, expected 1" in notes
    with pytest.raises(VifdoctorError, match="is not a folder"):
        HostReportIndex(str(tmp_path / "nope")).reports()


def _index_peak(folder: Path) -> int:
    """Peak traced memory to index the folder and walk every host's wiring."""
    tracemalloc.start()
    try:
        index = HostReportIndex(str(folder))
        reports, _ = index.reports()
        for host in reports:
            w = reports[host]
            assert w.readable["ovs"]
            for name in list(w.links)[-8:]:
                w.links.get(name)
            _ = w.domains
        index.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_index_memory_stays_flat_as_the_fleet_grows(tmp_path: Path) -> None:
    def fleet(hosts: int) -> Path:
        folder = tmp_path / f"r{hosts}"
        folder.mkdir()
        for h in range(hosts):
            ports = [(p, vm, True) for p, vm in _ids(30, h + 1)]
            (folder / f"c{h}.json").write_text(
                json.dumps(synthetic_report(f"c{h}", ports, tunnels=100))
            )
        return folder

    small, large = _index_peak(fleet(40)), _index_peak(fleet(400))
    one_report = (tmp_path / "r40" / "c0.json").stat().st_size
    # ten times the hosts; the peak grows by less than three reports' worth
    assert large - small < 3 * one_report, (small, large, one_report)
