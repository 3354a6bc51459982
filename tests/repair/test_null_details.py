"""``vif_details`` holding SQL NULL, as vendor and hand-altered schemas allow.

Neutron's own migrations make the column NOT NULL DEFAULT '' in every release
(vifdoctor/demo/schemas.py, and the neutron 29.0.0 dumps in .cache/schemas), so
these tests drop the NOT NULL first (testkit.repairkit.install_nullable_details).

Issue 13 asked for NULL to be backed up and restored exactly. The reader used to
turn NULL into '', so the row was judged like empty details (right) but its UPDATE
was guarded ``vif_details = ''`` and never matched: the row was reported skipped,
never repaired, and a backup could not have restored it as NULL. Now NULL is a
value of its own: judged as empty details, guarded ``IS NULL``, backed up as JSON
null and restored as NULL (not ''), by ``--apply`` and by ``plan --sql`` alike.
"""

from __future__ import annotations

import json

import pytest
from testkit.repairkit import (
    HYBRID,
    bindings,
    cli,
    drifted_cloud,
    execute,
    install_nullable_details,
    port_uuid,
    rollback_apply,
)

NULL_PORTS = (0, 3)  # of drifted_cloud(8): their details are NULL, the others ''


def _cloud():
    cloud = drifted_cloud(8)
    for n in NULL_PORTS:
        assert cloud.ports[n].binding is not None
        cloud.ports[n].binding.vif_details = None
    return cloud


def _key(rows: dict, n: int) -> tuple[str, str]:
    return next(k for k in rows if k[0] == port_uuid(n))


@pytest.mark.parametrize("layout", ["icehouse", "ocata"])
@pytest.mark.parametrize("backend", ["sqlite", "mariadb", "postgresql"])
def test_null_details_are_repaired_backed_up_and_restored_as_null(
    backend, layout, request, tmp_path, capsys
):
    url = request.getfixturevalue(f"{backend}_url")
    install_nullable_details(url, _cloud(), layout)
    before = bindings(url)
    assert [before[_key(before, n)]["vif_details"] for n in NULL_PORTS] == [None, None]

    # judged like empty details (the incident's VD101), planned with a NULL guard
    code, out, err = cli(capsys, "plan", "--neutron-db", url, "-f", "json")
    assert code == 0, err
    planned = {c["port_id"]: c for c in json.loads(out)["changes"]}
    assert len(planned) == 8
    empty = planned[port_uuid(1)]
    assert empty["stored_details"] == "" and "VD101" in empty["codes"]
    for n in NULL_PORTS:  # judged exactly as the row with '' is
        assert planned[port_uuid(n)]["stored_details"] is None
        assert planned[port_uuid(n)]["codes"] == empty["codes"]
        assert planned[port_uuid(n)]["new_details"] == empty["new_details"]

    backup_dir = tmp_path / "bk"
    code, out, err = cli(
        capsys, "repair", "--neutron-db", url, "--apply", "--backup-dir", str(backup_dir)
    )
    assert code == 0, err
    code, out, err = cli(capsys, "repair", "--neutron-db", url, "-f", "json")
    assert json.loads(out)["changes"] == []  # nothing left to repair
    after = bindings(url)
    assert all(r["vif_details"] == HYBRID for r in after.values())

    [backup] = sorted(backup_dir.glob("*.json"))
    rows = {r["original"]["port_id"]: r["original"] for r in json.loads(backup.read_text())["rows"]}
    for n in NULL_PORTS:
        assert rows[port_uuid(n)]["vif_details"] is None  # JSON null, not ""
    assert rows[port_uuid(1)]["vif_details"] == ""

    code, out, err = rollback_apply(capsys, backup, url, str(tmp_path / "rb"))
    assert code == 0, err
    assert json.loads(out)["outcome"]["changed"] == 8
    restored = bindings(url)
    assert restored == before  # byte-exact, every column
    assert [restored[_key(restored, n)]["vif_details"] for n in NULL_PORTS] == [None, None]

    # and the rollback's own backup restores the repair again, guarded IS NULL
    [undo] = sorted((tmp_path / "rb").glob("*.json"))
    code, out, err = cli(
        capsys,
        "rollback",
        str(undo),
        "--neutron-db",
        url,
        "--apply",
        "--backup-dir",
        str(tmp_path / "rb2"),
        "-f",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["outcome"]["changed"] == 8
    assert bindings(url) == after


def test_a_row_set_to_null_after_the_plan_is_not_overwritten(sqlite_url, tmp_path, capsys):
    """The guard is still exact: a row planned from '' that is NULL by now is skipped."""
    from testkit.repairkit import execute

    install_nullable_details(sqlite_url, _cloud(), "icehouse")
    code, script, err = cli(capsys, "plan", "--neutron-db", sqlite_url, "--sql")
    assert code == 0, err
    assert script.count("vif_details IS NULL") == len(NULL_PORTS)
    execute(
        sqlite_url,
        "UPDATE ml2_port_bindings SET vif_details = NULL WHERE port_id = :p",
        p=port_uuid(1),
    )
    from testkit.hostilekit import run_client

    run_client(sqlite_url, script)
    after = bindings(sqlite_url)
    assert after[_key(after, 1)]["vif_details"] is None  # planned from '': left alone
    assert after[_key(after, 0)]["vif_details"] == HYBRID  # planned from NULL: written


def test_a_stale_inactive_row_with_null_details_is_deleted_and_restored(
    sqlite_url, tmp_path, capsys
):
    """VD206's DELETE is guarded on the stored text too: IS NULL for a NULL row."""
    from testkit.hostilekit import run_client
    from testkit.repairkit import network, reporting_ovs_agent, vm_port

    from vifdoctor.demo.builder import BindingSpec, CloudSpec

    stale = BindingSpec(
        host="compute001", vif_type="ovs", vif_details=None, status="INACTIVE", driver=None
    )
    cloud = CloudSpec(
        networks=[network()],
        agents=[reporting_ovs_agent(h, True) for h in ("compute000", "compute001")],
        ports=[vm_port(n, "compute000", HYBRID, *([stale] if n == 0 else [])) for n in (0, 1)],
    )
    install_nullable_details(sqlite_url, cloud, "ocata")
    copy = f"sqlite:///{tmp_path / 'copy.sqlite'}"
    install_nullable_details(copy, cloud, "ocata")
    before = bindings(sqlite_url)
    assert before[(port_uuid(0), "compute001")]["vif_details"] is None

    vd206 = ("--code", "VD206", "--without-nova")
    code, script, err = cli(capsys, "plan", "--neutron-db", copy, *vd206, "--sql")
    assert code == 0, err
    assert "vif_details IS NULL" in script
    run_client(copy, script)
    assert (port_uuid(0), "compute001") not in bindings(copy)

    backup_dir = str(tmp_path / "bk")
    code, out, err = cli(
        capsys, "repair", "--neutron-db", sqlite_url, *vd206, "--apply", "--backup-dir", backup_dir
    )
    assert code == 0, err
    after = bindings(sqlite_url)
    assert after == bindings(copy) and (port_uuid(0), "compute001") not in after

    [backup] = sorted((tmp_path / "bk").glob("*.json"))
    rollback_dir = str(tmp_path / "rb")
    code, out, err = cli(
        capsys,
        "rollback",
        str(backup),
        "--neutron-db",
        sqlite_url,
        "--apply",
        "--backup-dir",
        rollback_dir,
    )
    assert code == 0, err
    assert bindings(sqlite_url) == before  # the row is back, NULL and all


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_backup_keeps_null_in_the_other_columns_too(backend, request, tmp_path, capsys):
    """profile and vnic_type are judged as '' and 'normal' when NULL: the backup still
    says null (it took them from the plan's judged rows, and said '' and 'normal')."""
    url = request.getfixturevalue(f"{backend}_url")
    cloud = _cloud()
    binding = cloud.ports[1].binding
    assert binding is not None
    binding.profile = None
    binding.vnic_type = None
    install_nullable_details(url, cloud, "ocata", ("vif_details", "profile", "vnic_type"))
    before = bindings(url)
    assert before[_key(before, 1)]["profile"] is None

    code, out, err = cli(
        capsys, "repair", "--neutron-db", url, "--apply", "--backup-dir", str(tmp_path / "bk")
    )
    assert code == 0, err
    [backup] = sorted((tmp_path / "bk").glob("*.json"))
    rows = {r["original"]["port_id"]: r["original"] for r in json.loads(backup.read_text())["rows"]}
    assert len(rows) == 8
    assert rows[port_uuid(1)]["profile"] is None and rows[port_uuid(1)]["vnic_type"] is None
    assert rows[port_uuid(0)]["vif_details"] is None and rows[port_uuid(2)]["profile"] == ""
    assert rows[port_uuid(1)] == before[_key(before, 1)]  # every column, as stored


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_a_row_gone_before_the_backup_is_neither_backed_up_nor_written(
    backend, request, tmp_path, capsys, monkeypatch
):
    """A NULL-able column makes the backup re-read the rows whole; a row deleted between
    the plan and that re-read is left out of the backup, the write and the listing
    (the re-read's rows, not the plan's, decide what is written)."""
    from vifdoctor.repair import workflow

    url = request.getfixturevalue(f"{backend}_url")
    install_nullable_details(url, _cloud(), "ocata", ("vif_details", "profile"))
    victim = port_uuid(2)
    planned = workflow._unmoving

    def plan_then_delete(changes, options):  # the end of the plan, before the backup
        execute(url, "DELETE FROM ml2_port_bindings WHERE port_id = :p", p=victim)
        return planned(changes, options)

    monkeypatch.setattr(workflow, "_unmoving", plan_then_delete)
    code, out, err = cli(
        capsys,
        "repair",
        "--neutron-db",
        url,
        "--apply",
        "--backup-dir",
        str(tmp_path / "bk"),
        "-f",
        "json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert victim not in {c["port_id"] for c in doc["changes"]}
    assert doc["outcome"]["changed"] == 7 and len(doc["changes"]) == 7
    [backup] = sorted((tmp_path / "bk").glob("*.json"))
    backed_up = [r["original"]["port_id"] for r in json.loads(backup.read_text())["rows"]]
    assert len(backed_up) == 7 and victim not in backed_up
    assert all(r["vif_details"] == HYBRID for r in bindings(url).values())
