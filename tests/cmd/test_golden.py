"""Golden outputs: every command's bytes on fixed clouds, so a refactor cannot change them.

Issue 10 ("Nothing changes for a user") reshapes the code under the command line;
these files, captured before that work, prove the outputs did not move. Each cloud
is rebuilt from scratch (fixed uuids; agents' heartbeats relative to the database's
clock, so alive and dead agents stay so) and every command runs in-process through
``vifdoctor.cmd.main.main``. Its stdout, stderr and exit code must equal the files
under ``tests/golden/`` byte for byte after ``normalize`` (both sides), which only
replaces what legitimately differs between runs: the temporary folder, timestamps,
durations and backup file names.

The clouds: the demo's (built by ``vifdoctor demo`` itself, Neutron and Nova), and
for each legacy schema layout (icehouse, kilo, newton, ocata; SQLite) the incident
cloud plus a few ports and agents that reach the other VD1xx rules, with the
incident's Nova database. ``VIFDOCTOR_UPDATE_GOLDENS=1`` (or ``scripts/update-goldens``)
rewrites the files instead of comparing; without it a difference fails the test.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from testkit.cloudfactory import run_cli

from vifdoctor.demo.builder import AgentSpec, BindingSpec, CloudSpec, PortSpec, write_cloud
from vifdoctor.demo.incident import (
    NETWORK_ID,
    PROJECT_ID,
    SEGMENT_ID,
    incident_cloud,
    install_incident_nova,
)
from vifdoctor.demo.schemas import create_schema

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("VIFDOCTOR_UPDATE_GOLDENS") == "1"

LAYOUTS = ("icehouse", "kilo", "newton", "ocata")
OVS = "Open vSwitch agent"
FORMATS = ("json", "table")
AUDIT_FORMATS = ("json", "table", "yaml", "csv", "value")

# ---------------------------------------------------------------------- normalizing

#: (pattern, replacement), applied in order after the temporary folder is replaced.
#: Each covers one thing that differs from run to run and nothing else.
_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    # Backup files: repair-/rollback-<UTC time with microseconds>Z.json (repair/backup.py).
    (re.compile(r"\b(repair|rollback)-\d{8}T\d{6,12}Z\.json"), r"\1-<STAMP>.json"),
    # Wall-clock times: the database's clock in the schema block, the backup's time.
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<TIME>"),
    # How long a repair's transactions took (text and JSON).
    (re.compile(r"longest transaction \d+(?:\.\d+)? ms"), "longest transaction <N> ms"),
    (re.compile(r'("(?:longest_transaction_ms|elapsed_s|seconds)": )\d+(?:\.\d+)?'), r"\1<N>"),
)


def normalize(text: str, tmp: Path) -> str:
    """Replace the temporary folder by ``<TMP>``, then each volatile value (``_VOLATILE``)."""
    text = text.replace(str(tmp), "<TMP>")
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


# --------------------------------------------------------------------------- clouds


def _extra_ports(layout: str) -> tuple[list[AgentSpec], list[PortSpec]]:
    """Agents and VM ports beside the incident that reach VD102/106/107/109/110/111/112."""

    def vm(n: int, binding: BindingSpec | None, extra: list[BindingSpec] | None = None) -> PortSpec:
        return PortSpec(
            id=f"9d000000-0000-4000-8000-{n:012d}",
            network_id=NETWORK_ID,
            device_owner="compute:nova",
            device_id=f"9e000000-0000-4000-8000-{n:012d}",
            project_id=PROJECT_ID,
            binding=binding,
            extra_bindings=extra or [],
        )

    def ovs(host: str, details: str, **kw) -> BindingSpec:
        return BindingSpec(
            host=host, vif_type="ovs", vif_details=details, segment_id=SEGMENT_ID, **kw
        )

    hybrid = '{"port_filter": true, "ovs_hybrid_plug": true}'
    agents = [
        AgentSpec(
            "compute-ovsfw",
            OVS,
            {"ovs_hybrid_plug": False, "datapath_type": "system", "integration_bridge": "br-int"},
        ),
        AgentSpec(
            "compute-dpdk",
            OVS,
            {
                "ovs_hybrid_plug": False,
                "datapath_type": "netdev",
                "integration_bridge": "br-int",
                "vhostuser_socket_dir": "/var/run/openvswitch",
            },
        ),
        AgentSpec(
            "compute-dead", OVS, {"bridge_mappings": {}, "tunnel_types": ["vxlan"]}, alive=False
        ),
        AgentSpec("compute-broken", OVS, '{"bridge_mappings": {"physnet1": "br-'),
    ]
    ports = [
        vm(1, ovs("compute-ovsfw", hybrid)),  # VD102
        vm(
            2,
            ovs(
                "compute-dpdk",
                '{"port_filter": true, "ovs_hybrid_plug": false, "datapath_type": "system"}',
            ),
        ),  # VD110
        vm(3, ovs("compute-dead", hybrid)),  # VD107
        vm(4, BindingSpec(host="", vif_type="unbound", driver=None)),  # VD106
        vm(5, BindingSpec(host="compute000", vif_type="midonet-custom", driver=None)),  # VD112
    ]
    if layout == "ocata":  # a failed live migration left an INACTIVE row: VD109
        ports.append(
            vm(6, ovs("compute000", hybrid), [ovs("compute001", hybrid, status="INACTIVE")])
        )
    return agents, ports


def build_layout_cloud(folder: Path, layout: str) -> tuple[str, str]:
    """The incident plus ``_extra_ports`` in ``layout`` and its Nova: (neutron, nova) URLs."""
    cloud = incident_cloud()
    agents, ports = _extra_ports(layout)
    cloud = CloudSpec(cloud.networks, cloud.agents + agents, cloud.ports + ports)
    urls = f"sqlite:///{folder / 'neutron.sqlite'}", f"sqlite:///{folder / 'nova.sqlite'}"
    neutron, nova = (sa.create_engine(url) for url in urls)
    try:
        create_schema(neutron, layout)
        write_cloud(neutron, cloud)
        install_incident_nova(nova)
    finally:
        neutron.dispose()
        nova.dispose()
    return urls


# ---------------------------------------------------------------------------- cases


def cloud_cases(db: str, nova: str, backups: str) -> Iterator[tuple[str, list[str]]]:
    """(case name, argv) of every command on one cloud, in an order that leaves it as found.

    repair --apply and rollback --apply alternate so that both formats of each are
    captured on the same rows, and the cloud ends as it started.
    """
    src = ["--neutron-db", db]
    with_nova = [*src, "--nova-db", nova]
    for fmt in AUDIT_FORMATS:
        yield f"audit.{fmt}", ["audit", *with_nova, "-f", fmt]
    yield "audit-neutron-only.json", ["audit", *src, "-f", "json"]
    yield (
        "audit-columns.value",
        ["audit", *src, "--code", "VD101", "-c", "Port", "-c", "Code", "-f", "value"],
    )
    yield "audit-openvswitch.table", ["audit", *src, "--firewall-driver", "openvswitch"]
    yield "audit-legacy.json", ["audit", *src, "--nova-generation", "legacy", "-f", "json"]
    for fmt in FORMATS:
        yield f"remediation.{fmt}", ["remediation", *with_nova, "-f", fmt]
        yield f"plan.{fmt}", ["plan", *src, "-f", fmt]
    yield "plan.sql", ["plan", *src, "--sql"]
    yield "plan-vd102-vd110.sql", ["plan", *src, "--code", "VD102", "--code", "VD110", "--sql"]
    for fmt in FORMATS:
        yield f"repair-dry-run.{fmt}", ["repair", *src, "-f", fmt]
    backup = f"{backups}/repair-<STAMP>.json"  # resolved by the runner to the newest backup
    apply = ["--apply", "--backup-dir", backups]
    yield "repair-apply.table", ["repair", *src, *apply, "-f", "table"]
    yield "audit-after-repair.json", ["audit", *src, "-f", "json"]
    for fmt in FORMATS:
        yield f"rollback-dry-run.{fmt}", ["rollback", backup, *src, "-f", fmt]
    yield "rollback-apply.json", ["rollback", backup, *src, *apply, "-f", "json"]
    yield "repair-apply.json", ["repair", *src, *apply, "-f", "json"]
    yield "rollback-apply.table", ["rollback", backup, *src, *apply, "-f", "table"]
    yield "audit-after-rollback.json", ["audit", *src, "-f", "json"]


def _newest_backup(folder: Path) -> str:
    found = sorted(folder.glob("repair-*.json"), key=lambda p: p.stat().st_mtime_ns)
    return str(found[-1]) if found else str(folder / "missing-backup.json")


def run_case(argv: list[str], tmp: Path) -> dict[str, str]:
    """Run one command in-process; its normalized stdout, stderr and exit code."""
    argv = [
        _newest_backup(Path(a).parent) if a.endswith("/repair-<STAMP>.json") else a for a in argv
    ]
    code, out, err = run_cli(argv)
    return {"stdout": normalize(out, tmp), "stderr": normalize(err, tmp), "exit": str(code)}


# --------------------------------------------------------------------------- checking


def check(cloud: str, cases: list[tuple[str, list[str]]], tmp: Path) -> None:
    """Compare (or with VIFDOCTOR_UPDATE_GOLDENS=1 rewrite) one cloud's golden folder.

    Files: ``<case>.stdout``, ``<case>.stderr`` when not empty, and ``cases.json``
    with each case's normalized argv and exit code (in run order).
    """
    folder = GOLDEN_DIR / cloud
    got: dict[str, bytes] = {}
    index = {}
    for name, argv in cases:
        result = run_case(argv, tmp)
        got[f"{name}.stdout"] = result["stdout"].encode()
        if result["stderr"]:
            got[f"{name}.stderr"] = result["stderr"].encode()
        index[name] = {"argv": [normalize(a, tmp) for a in argv], "exit": int(result["exit"])}
    got["cases.json"] = (json.dumps(index, indent=2) + "\n").encode()

    if UPDATE:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in got.items():
            (folder / name).write_bytes(data)
        return

    if not folder.is_dir():
        pytest.fail(f"no golden files in {folder}: run scripts/update-goldens", pytrace=False)
    want = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    problems = [f"missing golden file {name}" for name in sorted(set(got) - set(want))]
    problems += [
        f"golden file {name} not produced any more" for name in sorted(set(want) - set(got))
    ]
    for name in sorted(set(got) & set(want)):
        if got[name] != want[name]:
            diff = difflib.unified_diff(
                want[name].decode(errors="replace").splitlines(keepends=True),
                got[name].decode(errors="replace").splitlines(keepends=True),
                f"golden/{cloud}/{name}",
                "now",
                n=1,
            )
            problems.append("".join(list(diff)[:40]))
    assert not problems, (
        f"{len(problems)} output(s) of cloud {cloud!r} differ from tests/golden/{cloud}/ "
        "(if the change is intended: scripts/update-goldens, and review the diff):\n"
        + "\n".join(problems[:8])
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_cloud_outputs_unchanged(layout: str, tmp_path: Path) -> None:
    db, nova = build_layout_cloud(tmp_path, layout)
    backups = tmp_path / "backups"
    check(layout, list(cloud_cases(db, nova, str(backups))), tmp_path)


def test_demo_outputs_unchanged(tmp_path: Path) -> None:
    """``vifdoctor demo`` in both formats, then every command on the cloud it built."""
    demo = tmp_path / "demo"
    cases = [(f"demo.{fmt}", ["demo", "--dir", str(demo), "-f", fmt]) for fmt in ("json", "table")]
    db, nova = f"sqlite:///{demo / 'neutron.sqlite'}", f"sqlite:///{demo / 'nova.sqlite'}"
    cases += cloud_cases(db, nova, str(tmp_path / "backups"))
    check("demo", cases, tmp_path)


def test_explain_outputs_unchanged(tmp_path: Path) -> None:
    """``explain`` of every code, of one, and a refused unknown code (exit 3)."""
    cases = [
        ("explain-all", ["explain"]),
        ("explain-vd101-vd204", ["explain", "VD101", "VD204"]),
        ("explain-unknown", ["explain", "VD999"]),
    ]
    check("explain", cases, tmp_path)


def test_normalize_touches_only_volatile_text(tmp_path: Path) -> None:
    """The normalizer must not hide real changes: codes, counts, ids and paths stay."""
    text = (
        f"Backup: {tmp_path}/b/repair-20261130T014239912212Z.json VD101 6 changed, "
        '"database_time_utc": "2026-11-30 01:42:37.047000", longest transaction 2 ms, '
        "port 0cc863d2-adf4-49b7-9c28-1d0cf0ffd7d4 batch 500"
    )
    assert normalize(text, tmp_path) == (
        "Backup: <TMP>/b/repair-<STAMP>.json VD101 6 changed, "
        '"database_time_utc": "<TIME>", longest transaction <N> ms, '
        "port 0cc863d2-adf4-49b7-9c28-1d0cf0ffd7d4 batch 500"
    )
