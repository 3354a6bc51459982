"""A large plan or repair is summarized in a table past a threshold (issue 14).

Rendering 100,000 changes (and one reboot command per VM) cost more than the
repair's writes; past ``SUMMARY_THRESHOLD`` rows the table counts rows by host
and codes, ``--all-rows`` (or ``-c``) lists each, and -f json keeps every row.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
from testkit.repairkit import HYBRID, cli, drifted_cloud, install, port_uuid

from vifdoctor.model import Change
from vifdoctor.report import changes
from vifdoctor.report.changes import (
    SUMMARY_THRESHOLD,
    change_listing,
    next_steps,
    replug_by_host,
)
from vifdoctor.results import ChangeReport


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> int:
    """The same behaviour at a size a test can build quickly."""
    monkeypatch.setattr(changes, "SUMMARY_THRESHOLD", 5)
    return 5


def test_threshold_is_a_thousand_rows() -> None:
    assert SUMMARY_THRESHOLD == 1000


def test_plan_table_summarizes_past_the_threshold(
    capsys, sqlite_url: str, small_threshold: int
) -> None:
    install(sqlite_url, drifted_cloud(6, hosts=2), "icehouse")
    code, out, err = cli(capsys, "plan", "--neutron-db", sqlite_url)
    assert code == 0, err
    # one row per (host, codes): 3 ports on each of the 2 hosts, no port listed
    assert "| compute000 | VD101,VD103 | 3    |" in out
    assert "| compute001 | VD101,VD103 | 3    |" in out
    assert "port_id" not in out.lower() and "reboot --hard" not in out
    assert "6 rows, summarized by host (more than 5): --all-rows lists each" in out
    assert "compute000: 3 VM(s) to re-plug (hard reboot or stop/start), 0 to refresh" in out


def test_all_rows_and_json_list_every_row(capsys, sqlite_url: str, small_threshold: int) -> None:
    install(sqlite_url, drifted_cloud(6, hosts=2), "icehouse")
    code, out, _ = cli(capsys, "plan", "--neutron-db", sqlite_url, "--all-rows")
    assert code == 0
    assert out.count(HYBRID[:20]) == 6 and "summarized" not in out
    assert out.count("openstack server reboot --hard") == 6
    code, out, _ = cli(capsys, "plan", "--neutron-db", sqlite_url, "-c", "Port")
    assert "summarized" not in out
    assert all(port_uuid(n) in out for n in range(6))
    code, out, _ = cli(capsys, "plan", "--neutron-db", sqlite_url, "-f", "json")
    assert len(json.loads(out)["changes"]) == 6


def test_at_the_threshold_the_table_lists_each_row(
    capsys, sqlite_url: str, small_threshold: int
) -> None:
    install(sqlite_url, drifted_cloud(5, hosts=2), "icehouse")
    code, out, _ = cli(capsys, "plan", "--neutron-db", sqlite_url)
    assert code == 0 and "summarized" not in out
    assert out.count("openstack server reboot --hard") == 5


def test_repair_apply_table_is_summarized_with_results(
    capsys, sqlite_url: str, small_threshold: int, tmp_path
) -> None:
    install(sqlite_url, drifted_cloud(6, hosts=2), "icehouse")
    code, out, err = cli(
        capsys, "repair", "--neutron-db", sqlite_url, "--apply", "--backup-dir", str(tmp_path)
    )
    assert code == 0, err
    assert "| Result " in out and "| changed |" in out
    assert "repair: 6 changed" in out


def _change(n: int, host: str, codes: tuple[str, ...], plug_after: str = "hybrid") -> Change:
    return Change(
        port_id=port_uuid(n),
        host=host,
        status="ACTIVE",
        stored="",
        new=HYBRID,
        codes=codes,
        device_owner="compute:nova",
        device_id=f"10000000-0000-4000-8000-{n:012d}",
        vif_type="ovs",
        plug_before="ovs",
        plug_after=plug_after,
    )


def _mixed_repair() -> ChangeReport:
    """Two hosts, two code sets, and every result: changed, skipped, failed, none (the
    last two rows: pending)."""
    rows = [
        _change(n, f"compute{n % 2}", ("VD101",) if n % 3 else ("VD101", "VD103"), "hybrid")
        for n in range(9)
    ]
    states = ["changed", "skipped", "changed", "failed", "changed", "changed", "skipped"]
    results = {(c.port_id, c.host): (s, None) for c, s in zip(rows[:7], states, strict=True)}
    done = [c for c in rows if results.get((c.port_id, c.host), ("",))[0] == "changed"]
    return ChangeReport(
        "repair",
        rows,
        {},
        [],
        {"codes": ["VD101", "VD103"]},
        results,
        applied=True,
        backup="b.json",
        outcome={"changed": len(done)},
        done=done,
    )


def test_summary_rows_count_what_the_full_listing_lists(small_threshold: int) -> None:
    """Counted from the changes (no row dict each), as the listing's own rows count."""
    for report in (_mixed_repair(), dataclasses.replace(_mixed_repair(), results=None)):
        full = change_listing(report).rows
        counted = Counter((r["host"], ",".join(r["codes"]), r.get("result") or "") for r in full)
        summary = change_listing(report, summary=True).rows
        assert summary == [
            {"host": h, "codes": c, "result": r, "rows": n}
            for (h, c, r), n in sorted(counted.items())
        ]
        assert sum(row["rows"] for row in summary) == 9


def test_rows_are_made_as_read_and_equal_each_change_with_its_result() -> None:
    report = _mixed_repair()
    listing = change_listing(report)
    once, twice = list(listing.rows), list(listing.document["changes"])
    assert once == twice and len(once) == 9
    assert once[1] == {**report.changes[1].as_dict(), "result": "skipped", "current_details": None}
    assert once[8]["result"] == "pending"


def test_repair_footer_names_only_the_vms_whose_rows_changed(small_threshold: int) -> None:
    """The document's replug lists every change's VM; the footer only the done rows'."""
    report = _mixed_repair()
    for summary in (False, True):
        footer = change_listing(report, summary=summary).footer
        steps = next_steps(report.done, summary)
        assert footer[-len(steps) :] == steps
    listing = change_listing(report)
    assert listing.document["replug"] == replug_by_host(report.changes)
    every = dataclasses.replace(report, done=list(report.changes))
    assert change_listing(every).footer[-len(next_steps(every.changes)) :] == next_steps(
        every.changes
    )
