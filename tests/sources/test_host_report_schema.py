"""A bad host-scan report is skipped with a note naming the file and why; a FIFO never
hangs the audit (issue 13: 12 of 22 wrong-type variants ended in "internal error").
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from testkit.repairkit import cli, install_demo

GOOD = {
    "format": "vifdoctor-host-scan",
    "format_version": 1,
    "host": "compute000",
    "sources": {"ovs": {"ok": True}, "links": {"ok": True}, "libvirt": {"ok": True}},
    "errors": [],
    "domains": [],
    "ovs_bridges": [],
    "links": [],
    "iptables_chains": None,
}

VARIANTS = {
    "bridges-a-string": {"ovs_bridges": "abc"},
    "bridges-of-ints": {"ovs_bridges": [1, 2]},
    "ports-a-dict": {"ovs_bridges": [{"name": "br-int", "ports": {"a": 1}}]},
    "ifaces-strings": {"ovs_bridges": [{"name": "br-int", "ports": [{"interfaces": ["x"]}]}]},
    "external-ids-list": {
        "ovs_bridges": [
            {
                "name": "br-int",
                "ports": [{"interfaces": [{"name": "tap1", "external_ids": ["iface-id"]}]}],
            }
        ]
    },
    "domains-a-dict": {"domains": {"a": 1}},
    "domain-ifaces-int": {"domains": [{"name": "d", "state": "running", "interfaces": 3}]},
    "domain-iface-strs": {"domains": [{"name": "d", "state": "running", "interfaces": ["x"]}]},
    "links-a-number": {"links": 7},
    "links-no-name": {"links": [{"kind": "veth"}]},
    "sources-a-list": {"sources": ["ovs"]},
    "source-a-string": {"sources": {"ovs": "ok"}},
    "errors-a-string": {"errors": "boom"},
    "chains-a-dict": {"iptables_chains": {"a": 1}},
    "host-a-number": {"host": 5},
    "host-missing": {"host": None},
    "state-a-list": {"domains": [{"name": "d", "state": ["running"]}]},
}


def _audit(capsys, url: str, folder: Path) -> tuple[int, dict, str]:
    code, out, err = cli(
        capsys, "audit", "--neutron-db", url, "--host-reports", str(folder), "-f", "json"
    )
    return code, (json.loads(out) if out else {}), err


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_wrong_types_skip_the_report_with_a_reason(name, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install_demo(url)
    folder = tmp_path / "reports"
    folder.mkdir()
    report = {**GOOD, **VARIANTS[name]}
    if report["host"] is None:
        del report["host"]
    (folder / f"{name}.json").write_text(json.dumps(report))
    code, doc, err = _audit(capsys, url, folder)
    assert code in (0, 1, 2), err
    notes = [a for a in doc["assumptions"] if a.startswith(f"host report {name}.json skipped")]
    assert notes, doc["assumptions"]


def test_deep_nesting_and_huge_files_are_skipped(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install_demo(url)
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    code, doc, err = _audit(capsys, url, folder)
    assert code in (0, 1, 2), err
    assert any("deep.json skipped: nested too deeply" in a for a in doc["assumptions"])


def test_a_fifo_does_not_hang_the_audit(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install_demo(url)
    folder = tmp_path / "reports"
    folder.mkdir()
    os.mkfifo(folder / "pipe.json")
    (folder / "dir.json").mkdir()
    result: dict = {}

    def run() -> None:
        result["r"] = _audit(capsys, url, folder)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # unblock the reader so the test process can end
        fd = os.open(folder / "pipe.json", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("the audit hung on a FIFO")
    code, doc, err = result["r"]
    assert code in (0, 1, 2), err
    assert any("pipe.json skipped: not a regular file" in a for a in doc["assumptions"])
    assert any("dir.json skipped" in a for a in doc["assumptions"])
