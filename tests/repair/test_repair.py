"""``vifdoctor plan`` / ``repair`` / ``rollback``: what is written, what is not, and how safely.

Every test compares the stored rows themselves (every column, read on a
connection of the test's own) before and after; the CLI is driven through
``vifdoctor.cmd.main.main``. The incident (seed/incident-en.md) is the yardstick:
the operator's blanket UPDATE rewrote every row, vifdoctor must rewrite only the
six Havana-era rows, guarded, backed up and reversible.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from testkit import dbfixtures
from testkit.repairkit import (
    HYBRID,
    BindingSpec,
    CloudSpec,
    backups,
    bindings,
    checksum,
    cli,
    cli_json,
    dbname_of,
    demo_vm_port,
    details,
    execute,
    install,
    install_demo,
    key_of,
    legacy_ovs_agent,
    mariadb_url_as,
    mariadb_user,
    network,
    one_error_line,
    port_uuid,
    reporting_ovs_agent,
    same_backend_database,
    vm_port,
)

import vifdoctor
from vifdoctor.audit import judge_all
from vifdoctor.demo.incident import (
    BINDING_FAILED_PORT_ID,
    DHCP_PORT_ID,
    EMPTY_DETAIL_PORT_IDS,
    HYBRID_PORT_IDS,
    LINUXBRIDGE_PORT_ID,
    MALFORMED_PORT_ID,
    ROUTER_PORT_ID,
)
from vifdoctor.model import Agent, Binding
from vifdoctor.repair import apply as apply_mod
from vifdoctor.repair.apply import CHANGED, SKIPPED, WriteOptions, apply_changes
from vifdoctor.repair.plan import plan_change, plan_changes, repair_codes
from vifdoctor.rules.binding import judge_binding
from vifdoctor.rules.plug import RuleContext
from vifdoctor.sources.neutron_db import NeutronDatabase

BYSTANDERS = (
    DHCP_PORT_ID,
    ROUTER_PORT_ID,
    BINDING_FAILED_PORT_ID,
    LINUXBRIDGE_PORT_ID,
    MALFORMED_PORT_ID,
    *HYBRID_PORT_IDS,
)
OTHER_VALUE = '{"port_filter": false}'


def by_port(rows: dict) -> dict[str, dict]:
    """Rows keyed by port id alone (pre-Ocata layouts: one row per port)."""
    out = {k[0]: r for k, r in rows.items()}
    assert len(out) == len(rows)
    return out


def repair(capsys, url: str, backup_dir: Path, *extra: str) -> tuple[int, dict]:
    return cli_json(
        capsys, "repair", "--neutron-db", url, "--apply", "--backup-dir", str(backup_dir), *extra
    )


def results(doc: dict) -> dict[str, str]:
    return {c["port_id"]: c["result"] for c in doc["changes"]}


# ------------------------------------------------------------- 1. the incident, fixed


def test_repair_changes_only_the_six_havana_rows_unlike_the_blanket_update(
    db_url, tmp_path, capsys
):
    install_demo(db_url)
    before = by_port(bindings(db_url))
    assert len(before) == 13

    code, doc = repair(capsys, db_url, tmp_path / "bk")
    assert code == 0
    assert doc["outcome"]["changed"] == 6 and doc["outcome"]["failed"] == 0

    after = by_port(bindings(db_url))
    assert after.keys() == before.keys()
    changed = {p for p in before if after[p] != before[p]}
    assert changed == set(EMPTY_DETAIL_PORT_IDS)
    for port in EMPTY_DETAIL_PORT_IDS:
        assert before[port]["vif_details"] == ""
        # Only vif_details moves, to the mechanism driver's exact text.
        assert after[port] == {**before[port], "vif_details": HYBRID}
    for port in BYSTANDERS:
        assert after[port] == before[port]

    # The operator's fix, on a second database holding the same cloud.
    with same_backend_database(db_url, tmp_path) as copy:
        install_demo(copy)
        assert by_port(bindings(copy)) == before
        engine = sa.create_engine(copy)
        try:
            with engine.begin() as conn:
                matched = conn.execute(
                    sa.text(
                        "UPDATE ml2_port_bindings SET vif_details="
                        '\'{"port_filter": true, "ovs_hybrid_plug": true}\''
                    )
                ).rowcount
        finally:
            engine.dispose()
        blanket = by_port(bindings(copy))
    assert matched == len(before)  # every row, whatever it is
    assert {r["vif_details"] for r in blanket.values()} == {HYBRID}
    blanket_changed = {p for p in before if blanket[p] != before[p]}
    # DHCP and router rows already held the hybrid text: written, but not different.
    assert blanket_changed == set(EMPTY_DETAIL_PORT_IDS) | {
        BINDING_FAILED_PORT_ID,
        LINUXBRIDGE_PORT_ID,
        MALFORMED_PORT_ID,
    }
    assert blanket_changed - changed == {
        BINDING_FAILED_PORT_ID,
        LINUXBRIDGE_PORT_ID,
        MALFORMED_PORT_ID,
    }


# -------------------------------------------- 2. Ocata+ layouts and neutron 29.0.0


DETAILS_29_NO_HYBRID = json.dumps(
    {"bridge_name": "br-int", "connectivity": "l2", "datapath_type": "system", "port_filter": True}
)
DETAILS_29_HYBRID_FALSE = json.dumps(
    {
        "bridge_name": "br-int",
        "connectivity": "l2",
        "datapath_type": "system",
        "port_filter": True,
        "ovs_hybrid_plug": False,
    }
)
HYBRID_29 = json.dumps(
    {
        "bridge_name": "br-int",
        "connectivity": "l2",
        "datapath_type": "system",
        "ovs_hybrid_plug": True,
        "port_filter": True,
    }
)
DIRECT_29 = json.dumps(
    {
        "bridge_name": "br-int",
        "connectivity": "l2",
        "datapath_type": "system",
        "ovs_create_tap": True,
        "ovs_hybrid_plug": False,
        "port_filter": True,
    }
)

# port number -> what it is
P_DUP, P_FALSE, P_OK_A, P_VD102, P_OK_B, P_LEGACY = 1, 2, 3, 4, 5, 6


def ocata_cloud() -> CloudSpec:
    """compute-a: Newton+ agent, hybrid; compute-b: Newton+ agent, openvswitch firewall;
    compute-c: pre-Newton agent (assumed iptables_hybrid)."""
    return CloudSpec(
        networks=[network()],
        agents=[
            reporting_ovs_agent("compute-a", True),
            reporting_ovs_agent("compute-b", False),
            legacy_ovs_agent("compute-c"),
        ],
        ports=[
            # Drifted ACTIVE row, plus an INACTIVE duplicate (a live migration in flight)
            # that is drifted too: it must not be written.
            vm_port(
                P_DUP,
                "compute-a",
                DETAILS_29_NO_HYBRID,
                BindingSpec(host="compute-b", vif_type="ovs", vif_details="", status="INACTIVE"),
            ),
            vm_port(P_FALSE, "compute-a", DETAILS_29_HYBRID_FALSE),
            vm_port(P_OK_A, "compute-a", HYBRID_29),
            vm_port(P_VD102, "compute-b", HYBRID_29),  # left from a firewall migration
            vm_port(P_OK_B, "compute-b", DIRECT_29),
            vm_port(P_LEGACY, "compute-c", ""),
        ],
    )


@pytest.fixture(
    params=[
        "ocata-sqlite",
        pytest.param("ocata-mariadb", marks=pytest.mark.mariadb),
        pytest.param("neutron29-mariadb", marks=[pytest.mark.mariadb, pytest.mark.neutron_real]),
    ]
)
def ocata_url(request) -> str:
    """A database with the Ocata+ binding tables (ours, or neutron 29.0.0's real ones)."""
    if request.param == "neutron29-mariadb":
        url = request.getfixturevalue("neutron29_mariadb_url")
        install(url, ocata_cloud(), None)
    else:
        url = request.getfixturevalue(request.param.split("-")[1] + "_url")
        install(url, ocata_cloud(), "ocata")
    return url


def key(rows: dict, n: int, status: str = "ACTIVE"):
    return key_of(rows, port_uuid(n), status)


def test_ocata_default_repair_writes_only_active_rows_and_keeps_other_keys(
    ocata_url, tmp_path, capsys
):
    before = bindings(ocata_url)
    assert len(before) == 7
    dup_inactive = key(before, P_DUP, "INACTIVE")
    assert before[dup_inactive]["vif_details"] == ""

    code, doc = repair(capsys, ocata_url, tmp_path / "bk")
    assert code == 0, doc

    after = bindings(ocata_url)
    expected_new = {
        key(before, P_DUP): json.dumps(
            {
                "bridge_name": "br-int",
                "connectivity": "l2",
                "datapath_type": "system",
                "port_filter": True,
                "ovs_hybrid_plug": True,
            }
        ),
        key(before, P_FALSE): json.dumps(
            {
                "bridge_name": "br-int",
                "connectivity": "l2",
                "datapath_type": "system",
                "port_filter": True,
                "ovs_hybrid_plug": True,
            }
        ),
        key(before, P_LEGACY): HYBRID,
    }
    for k, row in before.items():
        if k in expected_new:
            assert after[k] == {**row, "vif_details": expected_new[k]}, k
        else:
            assert after[k] == row, k  # INACTIVE duplicate, healthy rows, the VD102 row
    assert {(c["port_id"], c["host"]) for c in doc["changes"]} == set(expected_new)
    assert all(c["status"] == "ACTIVE" for c in doc["changes"])


def test_ocata_vd102_only_when_named(ocata_url, tmp_path, capsys):
    before = bindings(ocata_url)
    vd102 = key(before, P_VD102)

    code, doc = cli_json(capsys, "plan", "--neutron-db", ocata_url)
    assert code == 0 and vd102 not in {(c["port_id"], c["host"]) for c in doc["changes"]}

    code, doc = repair(capsys, ocata_url, tmp_path / "bk", "--code", "VD102")
    assert code == 0, doc
    after = bindings(ocata_url)
    want = json.dumps(
        {
            "bridge_name": "br-int",
            "connectivity": "l2",
            "datapath_type": "system",
            "ovs_hybrid_plug": False,
            "port_filter": True,
        }
    )
    assert after[vd102] == {**before[vd102], "vif_details": want}
    # VD101 rows are not part of a repair restricted to VD102.
    assert {k for k in before if after[k] != before[k]} == {vd102}


def test_ocata_vd104_cannot_be_repaired(ocata_url, tmp_path, capsys):
    before = checksum(ocata_url)
    code, out, err = cli(
        capsys,
        "repair",
        "--neutron-db",
        ocata_url,
        "--apply",
        "--backup-dir",
        str(tmp_path / "bk"),
        "--code",
        "VD104",
    )
    assert code == 3
    assert "VD104" in one_error_line(err)
    assert out == ""
    assert checksum(ocata_url) == before
    assert not (tmp_path / "bk").exists()


def test_ocata_host_selector_limits_the_repair(ocata_url, tmp_path, capsys):
    before = bindings(ocata_url)
    code, doc = repair(capsys, ocata_url, tmp_path / "bk", "--host", "compute-c")
    assert code == 0, doc
    after = bindings(ocata_url)
    legacy = key(before, P_LEGACY)
    assert after[legacy] == {**before[legacy], "vif_details": HYBRID}
    assert {k for k in before if after[k] != before[k]} == {legacy}


# ------------------------------------------------------------------------ 3. dry run


def test_dry_run_and_plan_write_nothing(db_url, tmp_path, monkeypatch, capsys):
    install_demo(db_url)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = checksum(db_url)
    named = tmp_path / "named-backups"

    code, doc = cli_json(capsys, "repair", "--neutron-db", db_url)
    assert code == 0 and doc["applied"] is False
    assert {c["port_id"] for c in doc["changes"]} == set(EMPTY_DETAIL_PORT_IDS)
    code, doc = cli_json(capsys, "repair", "--neutron-db", db_url, "--backup-dir", str(named))
    assert code == 0 and len(doc["changes"]) == 6
    code, doc = cli_json(capsys, "plan", "--neutron-db", db_url)
    assert code == 0 and len(doc["changes"]) == 6
    code, out, _ = cli(capsys, "plan", "--neutron-db", db_url, "--sql")
    assert code == 0 and out.count("UPDATE ml2_port_bindings") == 6

    assert checksum(db_url) == before
    assert not named.exists()
    assert list(cwd.iterdir()) == []  # no default ./vifdoctor-backup-* either


# ---------------------------------------------------------- 4. changed underneath


def _plan(url: str):
    """The repair plan exactly as `vifdoctor repair` builds it: source -> judge -> plan."""
    engine = sa.create_engine(url)
    ctx = RuleContext()
    with NeutronDatabase(engine) as source:
        agents = source.agents(75)
        changes = list(
            plan_changes(judge_all(source.bindings(), agents, ctx), repair_codes([]), ctx)
        )
        layout = source.layout
    return engine, layout, changes


def test_row_changed_after_the_plan_is_skipped_not_overwritten(db_url):
    """Plan, let a second connection rewrite one planned row, then apply.

    Driven through the library (plan_changes, then apply_changes) so the change
    lands deterministically between plan and write.
    """
    install_demo(db_url)
    engine, layout, changes = _plan(db_url)
    try:
        assert [c.port_id for c in changes] == list(EMPTY_DETAIL_PORT_IDS)
        victim = changes[2]
        execute(
            db_url,
            "UPDATE ml2_port_bindings SET vif_details = :v WHERE port_id = :p",
            v=OTHER_VALUE,
            p=victim.port_id,
        )
        before = details(db_url)
        # Batches of two: the skipped row shares its transaction with a row that changes.
        outcome = apply_changes(engine, layout, changes, WriteOptions(batch_size=2))
    finally:
        engine.dispose()

    victim_key = (victim.port_id, victim.host)
    assert outcome.status[victim_key] == SKIPPED
    assert outcome.current[victim_key] == OTHER_VALUE
    assert all(s == CHANGED for k, s in outcome.status.items() if k != victim_key)
    assert outcome.errors == []
    after = details(db_url)
    assert after[victim_key] == OTHER_VALUE
    for c in changes:
        if c is not victim:
            assert after[(c.port_id, c.host)] == HYBRID
    assert {k for k in before if after[k] != before[k]} == {
        (c.port_id, c.host) for c in changes if c is not victim
    }


def test_row_changed_underneath_cli_reports_skipped(db_url, tmp_path, monkeypatch, capsys):
    """Same through the CLI: the row changes after the plan and the backup, before the write.

    The hook is ``require_writable``, which ``repair`` calls right before the first batch.
    """
    install_demo(db_url)
    victim = EMPTY_DETAIL_PORT_IDS[4]
    original = apply_mod.require_writable

    def change_then_check(engine):
        execute(
            db_url,
            "UPDATE ml2_port_bindings SET vif_details = :v WHERE port_id = :p",
            v=OTHER_VALUE,
            p=victim,
        )
        original(engine)

    monkeypatch.setattr(apply_mod, "require_writable", change_then_check)
    code, doc = repair(capsys, db_url, tmp_path / "bk")
    assert code == 0
    assert doc["outcome"]["changed"] == 5 and doc["outcome"]["skipped"] == 1
    res = results(doc)
    assert res.pop(victim) == "skipped"
    assert set(res.values()) == {"changed"}
    skipped = next(c for c in doc["changes"] if c["port_id"] == victim)
    assert skipped["current_details"] == OTHER_VALUE
    after = by_port(bindings(db_url))
    assert after[victim]["vif_details"] == OTHER_VALUE
    assert all(after[p]["vif_details"] == HYBRID for p in EMPTY_DETAIL_PORT_IDS if p != victim)


def test_binding_moved_to_another_host_after_the_plan_is_skipped(db_url):
    """The plan was made for compute000's agent: a binding now on another host is left alone.

    The stored text ('') is unchanged, so only the host in the guard can tell.
    """
    install_demo(db_url)
    engine, layout, changes = _plan(db_url)
    try:
        moved = next(c for c in changes if c.host == "compute000")
        execute(
            db_url,
            "UPDATE ml2_port_bindings SET host = 'compute-lb000' WHERE port_id = :p",
            p=moved.port_id,
        )
        outcome = apply_changes(engine, layout, changes, WriteOptions())
    finally:
        engine.dispose()
    assert outcome.status[(moved.port_id, moved.host)] == SKIPPED
    assert outcome.count(CHANGED) == 5
    row = by_port(bindings(db_url))[moved.port_id]
    assert (row["host"], row["vif_details"]) == ("compute-lb000", "")


def test_row_that_does_not_read_back_the_new_value_is_reported_failed(db_url):
    """The guarded UPDATE matches every row, yet one row ends up holding something else
    (here a trigger rewrites it): the verification's byte-exact COUNT falls short, the
    chunk is re-read, and that row alone is reported failed, with what it holds."""
    install_demo(db_url)
    engine, layout, changes = _plan(db_url)
    victim = changes[3]
    if engine.dialect.name == "sqlite":
        trigger = (
            "CREATE TRIGGER rewrite AFTER UPDATE OF vif_details ON ml2_port_bindings "
            f"WHEN NEW.port_id = '{victim.port_id}' AND NEW.vif_details <> '{OTHER_VALUE}' "
            f"BEGIN UPDATE ml2_port_bindings SET vif_details = '{OTHER_VALUE}' "
            "WHERE port_id = NEW.port_id; END"
        )
    else:
        trigger = (
            "CREATE TRIGGER rewrite BEFORE UPDATE ON ml2_port_bindings FOR EACH ROW "
            f"SET NEW.vif_details = IF(NEW.port_id = '{victim.port_id}', "
            f"'{OTHER_VALUE}', NEW.vif_details)"
        )
    execute(db_url, trigger)
    try:
        outcome = apply_changes(engine, layout, changes, WriteOptions())
    finally:
        engine.dispose()
    key = (victim.port_id, victim.host)
    assert outcome.batches == 1
    assert outcome.status[key] == "failed"
    assert outcome.current[key] == OTHER_VALUE
    assert len(outcome.errors) == 1 and victim.port_id in outcome.errors[0]
    assert all(s == CHANGED for k, s in outcome.status.items() if k != key)
    after = details(db_url)
    assert after[key] == OTHER_VALUE
    assert all(after[(c.port_id, c.host)] == HYBRID for c in changes if c is not victim)


def test_binding_deactivated_after_the_plan_is_skipped(ocata_url):
    """A live migration activates the other host's binding between plan and write.

    The planned row keeps its host and text but is INACTIVE now: it must not be written.
    """
    engine, layout, changes = _plan(ocata_url)
    try:
        dup = next(c for c in changes if c.port_id == port_uuid(P_DUP))
        assert dup.host == "compute-a" and dup.status == "ACTIVE"
        before = bindings(ocata_url)
        execute(
            ocata_url,
            "UPDATE ml2_port_bindings SET status = 'INACTIVE' "
            "WHERE port_id = :p AND host = 'compute-a'",
            "UPDATE ml2_port_bindings SET status = 'ACTIVE' "
            "WHERE port_id = :p AND host = 'compute-b'",
            p=dup.port_id,
        )
        outcome = apply_changes(engine, layout, changes, WriteOptions())
    finally:
        engine.dispose()
    assert outcome.status[(dup.port_id, dup.host)] == SKIPPED
    assert outcome.count(CHANGED) == len(changes) - 1
    after = bindings(ocata_url)
    for host in ("compute-a", "compute-b"):
        k = (dup.port_id, host)
        assert after[k]["vif_details"] == before[k]["vif_details"]


@pytest.mark.parametrize("status", ["INACTIVE", "BINDING"])
def test_plan_never_rewrites_a_row_that_is_not_active(status):
    """plan_change's own guard, whatever findings it is handed (the rules give such rows
    only VD109, so this is defence in depth for the plan)."""
    ctx = RuleContext()
    agent = Agent(
        id="a",
        agent_type="Open vSwitch agent",
        host="compute1",
        alive=True,
        admin_state_up=True,
        configurations={},
    )
    active = Binding(
        port_id="p",
        host="compute1",
        vif_type="ovs",
        vif_details="",
        status="ACTIVE",
        driver="openvswitch",
        device_owner="compute:nova",
    )
    judgement = judge_binding(active, [agent], ctx)
    assert {f.code for f in judgement.findings} == {"VD101", "VD103"}
    codes = repair_codes([])
    assert plan_change(active, judgement, codes, ctx).new == HYBRID
    inactive = dataclasses.replace(active, status=status)
    assert plan_change(inactive, judgement, codes, ctx) is None


CASE_PORT = "cafe0000-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    "underneath",
    ['{"Port_filter": true}', '{"port_filter": true} '],
    ids=["case-differs", "trailing-space"],
)
def test_guard_is_byte_exact_despite_collation(db_url, underneath):
    """MySQL's default collations call these equal to the planned text; the guard must not."""
    stored = '{"port_filter": true}'
    install_demo(db_url, [demo_vm_port(CASE_PORT, "compute000", stored)])
    engine, layout, changes = _plan(db_url)
    try:
        change = next(c for c in changes if c.port_id == CASE_PORT)
        assert change.stored == stored
        execute(
            db_url,
            "UPDATE ml2_port_bindings SET vif_details = :v WHERE port_id = :p",
            v=underneath,
            p=CASE_PORT,
        )
        outcome = apply_changes(engine, layout, [change], WriteOptions())
    finally:
        engine.dispose()
    assert outcome.status[(CASE_PORT, "compute000")] == SKIPPED
    assert by_port(bindings(db_url))[CASE_PORT]["vif_details"] == underneath


# ------------------------------------------------------------- 7. read-only user


@pytest.mark.mariadb
def test_read_only_user_can_audit_and_plan_but_repair_is_refused(mariadb_url, tmp_path, capsys):
    install_demo(mariadb_url)
    before = checksum(mariadb_url)
    dbname = dbname_of(mariadb_url)
    with mariadb_user(dbname, "SELECT") as (user, password):
        url = mariadb_url_as(dbname, user, password)
        code, doc = cli_json(capsys, "audit", "--neutron-db", url)
        # 7 VD101: the empty rows and the malformed one (as {}), which is never planned
        assert code == 2 and doc["summary"]["by_code"]["VD101"] == 7
        code, doc = cli_json(capsys, "plan", "--neutron-db", url)
        assert code == 0 and len(doc["changes"]) == 6

        code, out, err = cli(
            capsys, "repair", "--neutron-db", url, "--apply", "--backup-dir", str(tmp_path / "bk")
        )
    assert code == 3
    line = one_error_line(err)
    assert "denied" in line
    assert password not in err + out
    assert checksum(mariadb_url) == before


# ------------------------------------------------------ 8. unwritable backup dir


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_unwritable_backup_dir_is_refused_before_any_write(db_url, tmp_path, capsys, where):
    install_demo(db_url)
    before = checksum(db_url)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    target = blocker / "backups" if where == "under-a-file" else blocker
    code, out, err = cli(
        capsys, "repair", "--neutron-db", db_url, "--apply", "--backup-dir", str(target)
    )
    assert code == 3
    line = one_error_line(err)
    assert "cannot write the backup" in line and "nothing was changed" in line
    assert checksum(db_url) == before
    assert blocker.read_text() == "x"


# --------------------------------------------------------------- 9. backup file


def _own_checksum(body: dict) -> str:
    body = {k: v for k, v in body.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_backup_file_is_private_complete_and_sealed(db_url, tmp_path, capsys):
    install_demo(db_url)
    before = bindings(db_url)
    folder = tmp_path / "bk"
    if db_url.startswith("sqlite"):
        code, doc = repair(capsys, db_url, folder)
        password = None
    else:  # a user with a password, to see it kept out of the file
        dbname = dbname_of(db_url)
        with mariadb_user(dbname, "SELECT, UPDATE") as (user, password):
            code, doc = repair(capsys, mariadb_url_as(dbname, user, password), folder)
    assert code == 0
    [path] = backups(folder)
    assert doc["backup"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    body = json.loads(text)

    assert body["tool_version"] == vifdoctor.__version__
    assert body["schema"]["layout"] == "icehouse"
    assert body["checksum"] == _own_checksum(body)
    url = body["database"]["url"]
    if password is None:
        assert url == db_url
    else:
        assert password not in text
        assert url.startswith(f"mysql+pymysql://{user}:***@")
    # Every column of every affected row, as it was; and what was written instead.
    originals = {(r["original"]["port_id"], r["original"]["host"]): r for r in body["rows"]}
    assert set(originals) == {k for k in before if k[0] in EMPTY_DETAIL_PORT_IDS}
    for k, r in originals.items():
        assert r["original"] == before[k]
        assert r["written"] == HYBRID

    # The untouched file is accepted...
    code, _, err = cli(capsys, "rollback", str(path), "--neutron-db", db_url)
    assert code == 0, err
    # ...one byte changed in a value is not.
    assert text.count('"compute001"') >= 1
    path.write_text(text.replace('"compute001"', '"compute00l"', 1))
    repaired = checksum(db_url)
    for extra in ([], ["--apply", "--backup-dir", str(tmp_path / "rb")]):
        code, out, err = cli(capsys, "rollback", str(path), "--neutron-db", db_url, *extra)
        assert code == 3
        assert "checksum" in one_error_line(err)
    assert checksum(db_url) == repaired
    assert not (tmp_path / "rb").exists()


# ------------------------------------------------------- 10. plan --sql == repair


QUOTED_PORT = "feed0000-0000-4000-8000-000000000001"
# a'b\c and q"r inside JSON: the stored text holds a quote, a backslash pair, and \".
QUOTED = '{"port_filter": true, "x": "a\'b\\\\c", "y": "q\\"r"}'


def _run_sql(url: str, sql: str) -> None:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sa.engine.make_url(url).database)
        try:
            conn.executescript(sql)
        finally:
            conn.close()
        return
    proc = subprocess.run(
        [
            "mariadb",
            f"-h{dbfixtures.MARIADB_HOST}",
            f"-P{dbfixtures.MARIADB_PORT}",
            f"-u{dbfixtures.MARIADB_USER}",
            dbname_of(url),
        ],
        input=sql.encode(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()


def _sql_vs_repair(db_url, tmp_path, capsys, extra_details: str) -> tuple[dict, dict, dict]:
    """(before, after plan --sql fed to the database, after repair --apply on a copy)."""
    extra = [demo_vm_port(QUOTED_PORT, "compute001", extra_details)]
    install_demo(db_url, extra)
    before = bindings(db_url)
    code, sql, err = cli(capsys, "plan", "--neutron-db", db_url, "--sql", "--batch-size", "3")
    assert code == 0, err
    assert sql.count("COMMIT;") == 3  # 7 rows in batches of 3
    _run_sql(db_url, sql)
    by_sql = bindings(db_url)
    with same_backend_database(db_url, tmp_path) as copy:
        install_demo(copy, extra)
        assert bindings(copy) == before
        code, doc = repair(capsys, copy, tmp_path / "bk")
        assert code == 0, doc
        by_repair = bindings(copy)
    return before, by_sql, by_repair


def test_plan_sql_does_what_repair_does(db_url, tmp_path, capsys):
    before, by_sql, by_repair = _sql_vs_repair(db_url, tmp_path, capsys, QUOTED)
    assert by_sql == by_repair
    quoted = key_of(before, QUOTED_PORT)
    want = json.dumps({**json.loads(QUOTED), "ovs_hybrid_plug": True})
    assert by_sql[quoted]["vif_details"] == want
    assert {k for k in before if by_sql[k] != before[k]} == {
        k for k in before if k[0] in (*EMPTY_DETAIL_PORT_IDS, QUOTED_PORT)
    }


def test_plan_sql_with_a_percent_sign(db_url, tmp_path, capsys):
    """pymysql's 'format' paramstyle doubles '%' in inline literals unless sql.py avoids it."""
    percent = '{"port_filter": true, "rate": "100%"}'
    before, by_sql, by_repair = _sql_vs_repair(db_url, tmp_path, capsys, percent)
    quoted = key_of(before, QUOTED_PORT)
    assert by_repair[quoted]["vif_details"] == json.dumps(
        {**json.loads(percent), "ovs_hybrid_plug": True}
    )
    assert by_sql == by_repair


@pytest.mark.parametrize(
    "underneath",
    ['{"Port_filter": true}', '{"port_filter": true} '],
    ids=["case-differs", "trailing-space"],
)
def test_plan_sql_is_guarded_byte_exactly(db_url, capsys, underneath):
    """The DBA's script skips a row changed since the plan, even by case or a trailing space."""
    install_demo(db_url, [demo_vm_port(CASE_PORT, "compute000", '{"port_filter": true}')])
    code, sql, err = cli(capsys, "plan", "--neutron-db", db_url, "--sql")
    assert code == 0, err
    assert CASE_PORT in sql
    execute(
        db_url,
        "UPDATE ml2_port_bindings SET vif_details = :v WHERE port_id = :p",
        v=underneath,
        p=CASE_PORT,
    )
    _run_sql(db_url, sql)
    after = by_port(bindings(db_url))
    assert after[CASE_PORT]["vif_details"] == underneath
    assert all(after[p]["vif_details"] == HYBRID for p in EMPTY_DETAIL_PORT_IDS)


# ----------------------------------------------------------- 11. rollback guard


def test_rollback_leaves_rows_changed_since_the_repair(db_url, tmp_path, capsys):
    install_demo(db_url)
    before = by_port(bindings(db_url))
    code, doc = repair(capsys, db_url, tmp_path / "bk")
    assert code == 0
    [path] = backups(tmp_path / "bk")
    hand = EMPTY_DETAIL_PORT_IDS[1]
    hand_value = '{"port_filter": true, "ovs_hybrid_plug": true, "by": "hand"}'
    execute(
        db_url,
        "UPDATE ml2_port_bindings SET vif_details = :v WHERE port_id = :p",
        v=hand_value,
        p=hand,
    )

    code, doc = cli_json(
        capsys,
        "rollback",
        str(path),
        "--neutron-db",
        db_url,
        "--apply",
        "--backup-dir",
        str(tmp_path / "rb"),
    )
    assert code == 0
    res = results(doc)
    assert res.pop(hand) == "not touched"
    assert set(res.values()) == {"changed"} and len(res) == 5
    after = by_port(bindings(db_url))
    assert after[hand] == {**before[hand], "vif_details": hand_value}
    assert {p: r for p, r in after.items() if p != hand} == {
        p: r for p, r in before.items() if p != hand
    }


# -------------------------------------------------------------- 12. idempotence


def test_second_repair_finds_nothing_and_writes_nothing(db_url, tmp_path, capsys):
    install_demo(db_url)
    code, doc = repair(capsys, db_url, tmp_path / "bk1")
    assert code == 0 and doc["outcome"]["changed"] == 6
    repaired = checksum(db_url)
    code, doc = repair(capsys, db_url, tmp_path / "bk2")
    assert code == 0
    assert doc["changes"] == []
    assert checksum(db_url) == repaired


def test_helpers_see_byte_differences(db_url):
    """The snapshot helpers the tests above rest on tell apart what MySQL collations do not."""
    install_demo(db_url)
    before = checksum(db_url)
    execute(
        db_url,
        "UPDATE ml2_port_bindings SET vif_details = :v WHERE port_id = :p",
        v='{"port_filter": TRUE, "ovs_hybrid_plug": true}',
        p=HYBRID_PORT_IDS[0],
    )
    assert checksum(db_url) != before
