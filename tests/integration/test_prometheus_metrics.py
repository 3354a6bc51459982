"""``audit --metrics-file`` read by the real Debian node_exporter, and the shipped rules.

The textfile collector of ``prometheus-node-exporter`` reads a private folder and
serves on 127.0.0.1; the scrape is parsed with prometheus_client's own parser and
compared with the same audit's JSON document. Then the audit is made to fail:
the file must still say so (``vifdoctor_up 0``), keep the last success time and
carry no password. The alert rules and the systemd units under
``contrib/prometheus`` are checked with ``promtool`` and ``systemd-analyze``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from testkit.cloudfactory import run_cli

from vifdoctor.demo.incident import build_demo as build

REPO = Path(__file__).resolve().parents[2]
CONTRIB = REPO / "contrib" / "prometheus"
PASSWORD = "s3cretPW"
UNREACHABLE = f"mysql+pymysql://neutron:{PASSWORD}@127.0.0.1:1/neutron"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} missing: apt-get install {package} (or run .ci/run)", pytrace=False)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeExporter:
    def __init__(self, textfile_dir: Path):
        self.dir = textfile_dir
        self.url = f"http://127.0.0.1:{_free_port()}/metrics"

    def scrape(self) -> tuple[str, dict[str, list]]:
        """The raw scrape and its samples by metric name."""
        with urllib.request.urlopen(self.url, timeout=10) as r:
            text = r.read().decode()
        samples: dict[str, list] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples.setdefault(s.name, []).append(s)
        return text, samples


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[NodeExporter]:
    """node_exporter with only the textfile collector, on a free loopback port."""
    binary = _tool("prometheus-node-exporter", "prometheus-node-exporter")
    folder = tmp_path / "textfile"
    folder.mkdir()
    exporter = NodeExporter(folder)
    listen = exporter.url.split("//")[1].split("/")[0]
    proc = subprocess.Popen(
        [
            binary,
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={folder}",
            f"--web.listen-address={listen}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"node_exporter exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                exporter.scrape()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("node_exporter did not answer in 20 s")
                time.sleep(0.1)
        yield exporter
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _value(samples: dict, name: str, **labels: str) -> float:
    found = [
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


def test_node_exporter_serves_the_audit_and_the_failure(node_exporter, tmp_path):
    neutron, nova = build(str(tmp_path / "demo"))
    metrics = node_exporter.dir / "vifdoctor.prom"
    before = time.time()
    code, out, err = run_cli(
        [
            "audit",
            "--neutron-db",
            neutron,
            "--nova-db",
            nova,
            "--metrics-file",
            str(metrics),
            "-f",
            "json",
        ]
    )
    after = time.time()
    assert code == 2, err
    doc = json.loads(out)
    text, samples = node_exporter.scrape()
    assert _value(samples, "node_textfile_scrape_error") == 0
    assert _value(samples, "vifdoctor_up") == 1
    last_success = _value(samples, "vifdoctor_audit_last_success_timestamp_seconds")
    assert before <= last_success <= after
    assert 0 < _value(samples, "vifdoctor_audit_duration_seconds") < after - before + 1

    # Every (code, severity, host) count equals the JSON document's findings.
    expected: dict[tuple, int] = {}
    for f in doc["findings"]:
        key = (f["code"], f["severity"], f["host"] or "")
        expected[key] = expected.get(key, 0) + 1
    scraped = {
        (s.labels["code"], s.labels["severity"], s.labels["host"]): s.value
        for s in samples["vifdoctor_findings"]
    }
    assert scraped == expected
    assert scraped[("VD101", "failure", "compute000")] == 2
    summary = doc["summary"]
    bindings = {s.labels["category"]: s.value for s in samples["vifdoctor_bindings"]}
    assert bindings["judged"] == summary["judged"]
    assert {k: v for k, v in bindings.items() if k != "judged"} == summary["skipped"]
    assert {s.labels["layout"] for s in samples["vifdoctor_bindings"]} == {"icehouse"}
    assert sum(bindings.values()) == summary["bindings"]
    assert _value(samples, "vifdoctor_instances_affected") == summary["instances_affected"] > 0

    # The audit cannot run: the file says so, keeps the last success, names no password.
    code, out, err = run_cli(["audit", "--neutron-db", UNREACHABLE, "--metrics-file", str(metrics)])
    assert code == 3 and "cannot connect" in err and PASSWORD not in err
    text, samples = node_exporter.scrape()
    assert _value(samples, "node_textfile_scrape_error") == 0
    assert _value(samples, "vifdoctor_up") == 0
    assert _value(samples, "vifdoctor_audit_last_success_timestamp_seconds") == last_success
    assert "vifdoctor_findings" not in samples and "vifdoctor_bindings" not in samples
    assert PASSWORD not in text and PASSWORD not in metrics.read_text()
    # Written by rename: no temporary file left beside it.
    assert sorted(p.name for p in node_exporter.dir.iterdir()) == ["vifdoctor.prom"]


def test_a_first_run_that_fails_says_never(tmp_path):
    metrics = tmp_path / "vifdoctor.prom"
    code, _, err = run_cli(["audit", "--neutron-db", UNREACHABLE, "--metrics-file", str(metrics)])
    assert code == 3, err
    samples = {
        s.name: s.value
        for f in text_string_to_metric_families(metrics.read_text())
        for s in f.samples
    }
    assert samples["vifdoctor_up"] == 0
    assert samples["vifdoctor_audit_last_success_timestamp_seconds"] == 0


def test_unwritable_metrics_file_is_one_line(tmp_path):
    neutron, _ = build(str(tmp_path / "demo"))
    code, out, err = run_cli(
        [
            "audit",
            "--neutron-db",
            neutron,
            "--metrics-file",
            str(tmp_path / "no" / "such" / "dir" / "x.prom"),
        ]
    )
    assert code == 3
    assert err.startswith("vifdoctor: error: cannot write metrics file") and err.count("\n") == 1


def test_alert_rules_pass_promtool():
    promtool = _tool("promtool", "prometheus")
    rules = CONTRIB / "vifdoctor-alerts.yml"
    check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 4 rules found" in check.stdout
    # The alerts fire on the series vifdoctor writes (and not before their `for:`).
    test = subprocess.run(
        [promtool, "test", "rules", "vifdoctor-alerts.test.yml"],
        capture_output=True,
        text=True,
        cwd=CONTRIB,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_systemd_units_verify(tmp_path):
    """The timer/service pair as systemd parses them, with ExecStart on a real vifdoctor."""
    analyze = _tool("systemd-analyze", "systemd")
    vifdoctor = Path(sys.executable).with_name("vifdoctor")
    assert vifdoctor.exists(), vifdoctor
    service = (CONTRIB / "vifdoctor-audit.service").read_text()
    assert "ExecStart=/usr/local/bin/vifdoctor audit" in service
    (tmp_path / "vifdoctor-audit.service").write_text(
        service.replace("/usr/local/bin/vifdoctor", str(vifdoctor))
    )
    shutil.copy(CONTRIB / "vifdoctor-audit.timer", tmp_path)
    result = subprocess.run(
        [analyze, "verify", "--man=no", "vifdoctor-audit.timer", "vifdoctor-audit.service"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr
