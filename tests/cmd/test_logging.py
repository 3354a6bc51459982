"""``--debug`` / ``--log-file``: oslo.log's line format, and no password anywhere in it."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator

import pytest
from testkit import dbfixtures
from testkit.cloudfactory import run_cli, write

from vifdoctor.demo.incident import incident_cloud
from vifdoctor.integrations.logs import setup_logging

#: oslo.log's logging_default_format_string, as a line.
OSLO_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \d+ "
    r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+ \[-\] \S"
)


@pytest.fixture
def secret_url(mariadb_url: str) -> Iterator[tuple[str, str]]:
    """(URL with a password, the password) of a MariaDB user reading the incident's cloud."""
    write(mariadb_url, incident_cloud(), "icehouse")
    dbname = mariadb_url.rsplit("/", 1)[1].split("?")[0]
    user, password = f"vdlog_{secrets.token_hex(4)}", f"Pw-{secrets.token_hex(8)}"
    dbfixtures._mariadb_execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    dbfixtures._mariadb_execute(f"GRANT SELECT ON `{dbname}`.* TO '{user}'@'%'")
    try:
        yield f"mysql+pymysql://{user}:{password}@127.0.0.1:3306/{dbname}", password
    finally:
        dbfixtures._mariadb_execute(f"DROP USER IF EXISTS '{user}'@'%'")


def test_log_file_in_oslo_format_without_the_password(secret_url, tmp_path):
    url, password = secret_url
    log = tmp_path / "vifdoctor.log"
    code, out, err = run_cli(
        ["--log-file", str(log), "audit", "--neutron-db", url, "--debug", "-f", "json"]
    )
    assert code == 2, err
    assert json.loads(out)["summary"]["bindings"] == 13  # stdout is still the report only
    assert err == ""
    text = log.read_text()
    lines = text.splitlines()
    assert lines and all(OSLO_LINE.match(line) for line in lines), text
    user = url.split("//")[1].split(":")[0]
    assert (
        f"INFO vifdoctor.session [-] reading Neutron's database mysql+pymysql://{user}:***@" in text
    )
    assert "DEBUG vifdoctor.session [-] settings from: {" in text
    assert re.search(
        r"INFO vifdoctor.audit \[-\] audit: 13 binding\(s\) read, 16 finding\(s\)", text
    )
    assert password not in text + out + err


def test_info_without_debug_and_appending(secret_url, tmp_path):
    url, password = secret_url
    log = tmp_path / "vifdoctor.log"
    for _ in range(2):
        code, _, err = run_cli(["audit", "--neutron-db", url, "--log-file", str(log)])
        assert code == 2, err
    text = log.read_text()
    assert text.count("reading Neutron's database") == 2  # appended, as oslo.log does
    assert " DEBUG " not in text and password not in text


def test_debug_alone_logs_to_stderr_and_errors_stay_masked(secret_url):
    url, password = secret_url
    bad = url.replace("127.0.0.1:3306", "127.0.0.1:1")
    code, out, err = run_cli(["audit", "--neutron-db", bad, "--debug"])
    assert code == 3
    assert "INFO vifdoctor.session [-] reading Neutron's database" in err
    assert err.splitlines()[-1].startswith("vifdoctor: error: Neutron database: cannot connect")
    assert password not in out + err


def test_without_flags_nothing_is_logged(secret_url):
    url, _ = secret_url
    code, _, err = run_cli(["audit", "--neutron-db", url, "-f", "value", "-c", "code"])
    assert code == 2 and err == ""


def test_any_line_is_masked_even_from_other_libraries(tmp_path):
    log = tmp_path / "other.log"
    handler = setup_logging(debug=True, log_file=str(log))
    try:
        logging.getLogger("some.library").warning(
            "connecting to %s with password=%s", "postgresql://neutron:Hush-1@db/neutron", "Hush-1"
        )
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
        handler.close()
    text = log.read_text()
    assert "postgresql://neutron:***@db/neutron" in text and "Hush-1" not in text
    assert OSLO_LINE.match(text)


def test_unwritable_log_file_is_one_line(tmp_path):
    code, out, err = run_cli(
        ["explain", "VD101", "--log-file", str(tmp_path / "no" / "dir" / "x.log")]
    )
    assert code == 3 and out == ""
    assert err.startswith("vifdoctor: error: cannot open log file") and err.count("\n") == 1
