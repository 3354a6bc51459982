"""A large plan or repair is summarized in a table past a threshold (issue 14).

Rendering 100,000 changes (and one reboot command per VM) cost more than the
repair's writes; past ``SUMMARY_THRESHOLD`` rows the table counts rows by host
and codes, ``--all-rows`` (or ``-c``) lists each, and -f json keeps every row.
"""

from __future__ import annotations

import json

import pytest
from testkit.repairkit import HYBRID, cli, drifted_cloud, install, port_uuid

from vifdoctor.report import changes
from vifdoctor.report.changes import SUMMARY_THRESHOLD


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
