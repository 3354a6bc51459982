"""vifdoctor.api: the library the command line stands on, called as automation would."""

from __future__ import annotations

import contextlib
import dataclasses
import json

import pytest
from testkit.repairkit import cli_json, drifted_cloud, install, install_demo

from vifdoctor import api
from vifdoctor.demo.incident import EMPTY_DETAIL_PORT_IDS, MALFORMED_PORT_ID
from vifdoctor.errors import VifdoctorError
from vifdoctor.options import AuditOptions, RepairOptions
from vifdoctor.repair.hooks import Hooks
from vifdoctor.settings import ENV_NEUTRON_DB, resolve


def _codes(report) -> list[tuple[str, str]]:
    return sorted((f["code"], f["port_id"]) for f in report.findings)


def test_audit_by_keywords_is_the_cli_audit(sqlite_url, capsys):
    install_demo(sqlite_url)
    report = api.audit(neutron_db=sqlite_url)
    code, doc = cli_json(capsys, "audit", "--neutron-db", sqlite_url)
    assert report.exit_code == code == 2
    assert _codes(report) == sorted((f["code"], f["port_id"]) for f in doc["findings"])
    assert report.summary() == doc["summary"]
    vd101 = {p for c, p in _codes(report) if c == "VD101"}
    assert vd101 == {*EMPTY_DETAIL_PORT_IDS, MALFORMED_PORT_ID}  # the malformed one as {}


def test_options_dataclass_and_keywords_ask_the_same(sqlite_url):
    install_demo(sqlite_url)
    opts = AuditOptions(neutron_db=sqlite_url, code=["VD101"], host=["compute000"])
    assert opts.code == ("VD101",) and opts.host == ("compute000",)  # lists become tuples
    by_options = _codes(api.audit(opts))
    assert by_options == _codes(
        api.audit(neutron_db=sqlite_url, code=("VD101",), host=["compute000"])
    )
    assert by_options and {c for c, _ in by_options} == {"VD101"}
    # keywords given beside a dataclass replace its fields
    assert _codes(api.audit(opts, host=[])) != by_options
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.host = ()  # type: ignore[misc]


def test_unknown_keyword_and_missing_source_are_one_clear_error(monkeypatch):
    monkeypatch.delenv(ENV_NEUTRON_DB, raising=False)
    monkeypatch.delenv("OS_CLOUD", raising=False)
    monkeypatch.delenv("OS_AUTH_URL", raising=False)
    with pytest.raises(VifdoctorError, match="unknown option.*neutron_database"):
        api.audit(neutron_database="sqlite://")
    with pytest.raises(VifdoctorError, match="no Neutron database"):
        api.audit()


def test_settings_say_where_each_value_came_from(tmp_path, monkeypatch, sqlite_url):
    conf = tmp_path / "neutron.conf"
    conf.write_text(
        f"[database]\nconnection = {sqlite_url}\n[securitygroup]\nfirewall_driver = openvswitch\n"
    )
    monkeypatch.setenv(ENV_NEUTRON_DB, "sqlite:///elsewhere")
    s = resolve(AuditOptions(neutron_config_file=(str(conf),), agent_down_time=30))
    assert s.neutron_url == sqlite_url  # the config file beats the environment
    assert s.origins["source"].startswith("[database] connection")
    assert s.origins["firewall_driver"].startswith("[securitygroup] firewall_driver in")
    assert s.origins["agent_down_time"] == "--agent-down-time"
    s = resolve(AuditOptions(neutron_db="sqlite:///flag"))
    assert s.neutron_url == "sqlite:///flag" and s.origins["source"] == "--neutron-db"
    monkeypatch.delenv(ENV_NEUTRON_DB)
    s = resolve(AuditOptions(os_cloud="mycloud"))
    assert s.api and s.cloud == "mycloud" and s.neutron_url is None
    assert any("Neutron API server's clock" in a for a in s.assumptions)


def test_plan_repair_and_rollback_round_trip(sqlite_url, tmp_path):
    install(sqlite_url, drifted_cloud(30), "ocata")
    plan = api.plan(neutron_db=sqlite_url)
    assert plan.kind == "plan" and len(plan.changes) == 30 and not plan.applied
    dry = api.repair(neutron_db=sqlite_url)
    assert not dry.applied and dry.backup is None and len(dry.changes) == 30
    done = api.repair(
        RepairOptions(neutron_db=sqlite_url, apply=True, backup_dir=str(tmp_path), batch_size=7)
    )
    assert done.applied and done.exit_code == 0 and len(done.done) == 30
    assert done.outcome["changed"] == 30 and done.outcome["batches"] == 5
    assert api.plan(neutron_db=sqlite_url).changes == []
    back = api.rollback(done.backup, neutron_db=sqlite_url, apply=True, backup_dir=str(tmp_path))
    assert back.outcome["changed"] == 30
    assert [c.port_id for c in api.plan(neutron_db=sqlite_url).changes] == [
        c.port_id for c in plan.changes
    ]
    sql = api.plan_sql(neutron_db=sqlite_url, batch_size=10)
    assert sum(line.startswith("UPDATE") for line in sql) >= 1


def test_hooks_stop_after_the_running_batch_and_see_progress(sqlite_url, tmp_path):
    install(sqlite_url, drifted_cloud(30), "ocata")
    asked: list[int] = []
    seen: list[int] = []

    class Bar:
        def update(self, n: int) -> None:
            seen.append(n)

        def close(self) -> None:
            seen.append(-1)

    @contextlib.contextmanager
    def writing():
        def stop() -> bool:
            asked.append(1)
            return len(asked) > 2  # let two batches run, then stop

        yield stop

    report = api.repair(
        neutron_db=sqlite_url,
        apply=True,
        backup_dir=str(tmp_path),
        batch_size=10,
        hooks=Hooks(progress=lambda total: Bar(), writing=writing),
    )
    assert report.exit_code == 130 and report.outcome["interrupted"]
    assert report.outcome["changed"] == 20 and report.outcome["pending"] == 10
    assert seen == [10, 10, -1]
    left = api.plan(neutron_db=sqlite_url)
    assert len(left.changes) == 10  # rerunning finishes the job
    assert json.loads(left.changes[0].new)["ovs_hybrid_plug"] is True


def test_remediation_needs_nova(sqlite_url):
    install_demo(sqlite_url)
    with pytest.raises(VifdoctorError, match="needs Nova"):
        api.remediation(neutron_db=sqlite_url)
