"""Inputs that ended in "internal error ... please report it" now end in one clear line,
exit 3, before anything is written (issue 13, item 9)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from testkit.repairkit import checksum, cli, install_demo, one_error_line


@pytest.fixture
def demo(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install_demo(url)
    return url


def _refused(capsys, *argv: str) -> str:
    code, out, err = cli(capsys, *argv)
    assert code == 3, (out, err)
    line = one_error_line(err) if err.startswith("vifdoctor: error") else err.strip()
    assert "internal error" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return line


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "NaN"])
def test_agent_down_time_out_of_range(demo, capsys, value):
    assert "--agent-down-time" in _refused(
        capsys, "audit", "--neutron-db", demo, "--agent-down-time", value
    )


@pytest.mark.parametrize("value", ["1e-300", "nan", "inf"])
def test_max_rate_refused_before_any_write(demo, tmp_path, capsys, value):
    before = checksum(demo)
    assert "--max-rate" in _refused(
        capsys,
        "repair",
        "--neutron-db",
        demo,
        "--apply",
        "--backup-dir",
        str(tmp_path / "bk"),
        "--max-rate",
        value,
    )
    assert checksum(demo) == before
    assert not (tmp_path / "bk").exists()


def test_max_rate_through_the_library_refused_before_any_write(demo, tmp_path):
    from vifdoctor import api
    from vifdoctor.errors import VifdoctorError

    before = checksum(demo)
    with pytest.raises(VifdoctorError, match="max-rate"):
        api.repair(neutron_db=demo, apply=True, max_rate=1e-300, backup_dir=str(tmp_path / "bk"))
    assert checksum(demo) == before
    assert not (tmp_path / "bk").exists()


@pytest.mark.parametrize("query", ["foo=bar", "charset=nosuch"])
def test_bad_url_options(capsys, mariadb_url, query):
    url = mariadb_url.split("?")[0] + "?" + query
    _refused(capsys, "audit", "--neutron-db", url)


def test_config_path_that_is_a_directory_or_a_loop(tmp_path, capsys):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    for path in (tmp_path, tmp_path / "a"):
        _refused(capsys, "audit", "--neutron-config-file", str(path))
        _refused(capsys, "audit", "--neutron-db", "sqlite:///x", "--nova-config-file", str(path))


def test_nova_config_without_connection(demo, tmp_path, capsys):
    conf = tmp_path / "nova.conf"
    conf.write_text("[DEFAULT]\nhost = compute1\n")
    assert "connection" in _refused(
        capsys, "audit", "--neutron-db", demo, "--nova-config-file", str(conf)
    )


@pytest.mark.parametrize("extra", [["-f", "json"], ["-c", "Port"], ["-f", "table"]])
def test_plan_sql_refuses_format_and_columns(demo, capsys, extra):
    assert "--sql" in _refused(capsys, "plan", "--neutron-db", demo, "--sql", *extra)


def test_plan_without_sql_still_defaults_to_a_table(demo, capsys):
    code, out, err = cli(capsys, "plan", "--neutron-db", demo)
    assert code == 0 and "| Port" in out, err
