"""The repair's plan, backup and rollback streamed through disk (issue 14: memory flat).

The plan is spooled in sorted runs, the backup written as its rows are read, the
writer fed a batch at a time from a sort on disk, and rollback reads its backup line
by line. What must not change: the same rows and output as a plan held whole, batches
that span records and runs, a backup restored byte for byte, and a backup whose seal
is broken at its very end refused before any write.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testkit.repairkit import checksum, cli, details, drifted_cloud, install, one_error_line

from vifdoctor.repair import backup as backup_module
from vifdoctor.repair import changespool, workflow

ROWS = 30


def _repair(capsys, url: str, folder, *extra: str) -> tuple[int, dict, str]:
    code, out, err = cli(
        capsys, "repair", "--neutron-db", url, "--apply", "--backup-dir", str(folder), *extra
    )
    return code, (json.loads(out) if "json" in extra else {}), err


def _rollback(capsys, url: str, path, folder, *extra: str) -> tuple[int, str, str]:
    return cli(
        capsys, "rollback", str(path), "--neutron-db", url, "--apply", "--backup-dir",
        str(folder), *extra,
    )  # fmt: skip


def _repaired(capsys, tmp_path) -> tuple[str, Path, list[str]]:
    """A drifted SQLite cloud repaired: its URL, its backup and the backup's lines."""
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install(url, drifted_cloud(ROWS), "ocata")
    code, _, err = _repair(capsys, url, tmp_path / "bk")
    assert code == 0, err
    [path] = sorted((tmp_path / "bk").glob("repair-*.json"))
    return url, path, path.read_text().splitlines(keepends=True)


@pytest.fixture
def tiny_runs(monkeypatch):
    """Runs, records and batches of a few rows, so that 30 rows cross every boundary."""
    monkeypatch.setattr(workflow, "PLAN_RUN", 7)
    monkeypatch.setattr(workflow, "PLAN_BLOCK", 2)
    monkeypatch.setattr(workflow, "WRITE_RUN", 5)
    monkeypatch.setattr(workflow, "WRITE_BLOCK", 2)
    monkeypatch.setattr(changespool, "BLOCK", 3)
    monkeypatch.setattr(changespool, "MEMORY_ROWS", 4)  # the spools on disk too


def _spooled(n: int) -> changespool.ChangeSpool:
    return changespool.ChangeSpool(((f"p{i}", "h", i), {"i": i}) for i in range(n))


@pytest.mark.parametrize("held", [100, 4])
def test_a_spool_reads_the_same_held_in_memory_or_written_past_its_bound(monkeypatch, held):
    monkeypatch.setattr(changespool, "BLOCK", 3)
    monkeypatch.setattr(changespool, "MEMORY_ROWS", held)
    spool = _spooled(10)
    want = [((f"p{i}", "h", i), {"i": i}) for i in range(10)]
    assert list(spool.records()) == want
    assert list(spool.records()) == want  # read again, in order
    assert [len(c) for c in spool.chunks()] == [3, 3, 3, 1]
    assert len(spool.filtered(lambda rec: rec[0][2] % 2 == 0)) == 5
    # past the bound nothing is held in memory: every record is in the file
    written = spool._file.seek(0, 2)
    assert (written > 0, spool._held is None) == ((True, True) if held < 10 else (False, False))


def test_batches_spanning_spooled_runs_write_and_list_as_one_plan(tmp_path, capsys, tiny_runs):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install(url, drifted_cloud(ROWS), "ocata")
    before = details(url)
    code, plan_out, err = cli(capsys, "plan", "--neutron-db", url, "-f", "json")
    assert code == 0, err
    planned = json.loads(plan_out)["changes"]
    assert len(planned) == ROWS
    # the plan's order: device_id, then port_id (vifdoctor.repair.plan.plan_order)
    assert [(c["device_id"], c["port_id"]) for c in planned] == sorted(
        (c["device_id"], c["port_id"]) for c in planned
    )

    code, doc, err = _repair(capsys, url, tmp_path / "bk", "--batch-size", "4", "-f", "json")
    assert code == 0, err
    assert doc["outcome"]["changed"] == ROWS and doc["outcome"]["batches"] == 8  # 7 x 4 + 2
    assert [c["port_id"] for c in doc["changes"]] == [c["port_id"] for c in planned]
    assert {c["result"] for c in doc["changes"]} == {"changed"}
    assert set(details(url).values()) != set(before.values())
    [path] = sorted((tmp_path / "bk").glob("repair-*.json"))
    rows = json.loads(path.read_text())["rows"]
    assert [r["original"]["port_id"] for r in rows] == [c["port_id"] for c in planned]

    code, out, err = _rollback(
        capsys, url, path, tmp_path / "rb", "--batch-size", "4", "-f", "json"
    )
    assert code == 0, err
    assert json.loads(out)["outcome"]["changed"] == ROWS
    assert details(url) == before  # restored byte for byte


def test_a_seal_broken_at_the_end_of_the_backup_refuses_before_any_write(
    tmp_path, capsys, tiny_runs
):
    url, path, lines = _repaired(capsys, tmp_path)
    assert lines[-1] == "]}\n" and '"written"' in lines[-2]
    lines[-2] = lines[-2].replace('"vnic_type":"normal"', '"vnic_type":"direct"', 1)
    assert lines[-2] != path.read_text().splitlines(keepends=True)[-2]
    path.write_text("".join(lines))
    repaired = checksum(url)
    code, out, err = _rollback(capsys, url, path, tmp_path / "rb")
    assert code == 3
    assert "checksum" in one_error_line(err)
    assert checksum(url) == repaired
    assert not (tmp_path / "rb").exists()


def test_a_backup_cut_short_is_refused(tmp_path, capsys):
    url, path, lines = _repaired(capsys, tmp_path)
    path.write_text("".join(lines[:-3]))  # rows lost, and the closing bracket
    repaired = checksum(url)
    code, _, err = cli(capsys, "rollback", str(path), "--neutron-db", url, "--apply")
    assert code == 3
    assert "not valid JSON" in one_error_line(err)
    assert checksum(url) == repaired


def test_a_backup_writer_that_fails_leaves_no_file(tmp_path):
    folder = tmp_path / "bk"
    with (
        pytest.raises(RuntimeError),
        backup_module.BackupWriter(str(folder), {"kind": "repair"}, name="x.json") as writer,
    ):
        writer.add({"original": {"port_id": "p", "host": "h"}, "written": "{}"})
        raise RuntimeError("the plan failed half way")
    assert list(folder.iterdir()) == []
    with backup_module.BackupWriter(
        str(folder), {"kind": "rollback"}, name="y.json", keep_empty=False
    ) as empty:
        pass
    assert not empty.sealed and list(folder.iterdir()) == []


def test_a_streamed_backup_is_the_file_a_whole_one_was(tmp_path):
    """Written row by row, sealed at the end: the same bytes as the body sealed whole
    (the checksum over the canonical text of header and rows), read back either way."""
    rows = [
        {"original": {"port_id": f"p{n}", "host": "h", "vif_details": "é" * n}, "written": "{}"}
        for n in range(5)
    ]
    path = backup_module.write_backup(str(tmp_path), {"kind": "repair"}, rows, name="b.json")
    body = json.loads(Path(path).read_text(encoding="utf-8"))
    stated = body.pop("checksum")
    assert stated == backup_module._checksum(body)
    header, streamed = backup_module.scan_backup(path)
    assert list(streamed) == rows and header["kind"] == "repair"
    # A hand-made backup (one line of JSON, a valid seal) is still read, whole.
    body["checksum"] = stated
    hand = tmp_path / "hand.json"
    hand.write_text(json.dumps(body))
    assert backup_module.read_backup(str(hand)).rows == rows


def test_a_spooled_plan_gives_a_report_the_fields_its_changes_hold():
    from vifdoctor.model import Change
    from vifdoctor.report.changes import fields_of, replug_by_host

    kinds = [("compute:nova", "rewrite")] * 6 + [("network:dhcp", "rewrite")]
    kinds.append(("compute:x", "delete"))
    changes = [
        Change(f"p{i}", f"h{i % 3}", "ACTIVE", "", "{}", ("VD101",), owner, f"d{i % 4}",
               "ovs", "bridge", "hybrid" if i % 2 else "bridge", action=action)
        for i, (owner, action) in enumerate(kinds)
    ]  # fmt: skip
    spool = changespool.ChangeSpool(changespool.record(c) for c in changes)
    names = ("host", "codes", "device_id", "plug_after")
    assert list(fields_of(spool, *names)) == list(fields_of(changes, *names))
    assert list(fields_of(spool, *names))[1] == ("h1", ("VD101",), "d1", "hybrid")
    assert replug_by_host(spool) == replug_by_host(changes)
    assert replug_by_host(spool)["h1"] == {"replug": ["d1"], "refresh": ["d0"]}
