"""No password in any output, whatever the input path and whatever the password holds.

Issue 13: config-file parse errors echoed the line (URL included), an unparseable
URL was masked only up to the first '@' or space, and ``?password=`` was never
masked. Inputs here: --neutron-db, VIFDOCTOR_NEUTRON_DB, --neutron-config-file,
--nova-config-file, --nova-db, nova_api cell_mappings; outputs: stdout in every
format, stderr, the backup file and ``plan --sql``.
"""

from __future__ import annotations

import string
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from testkit import dbfixtures
from testkit.repairkit import cli, install_demo, mariadb_root

# Every printable ASCII character but whitespace, each next to a rare capital so that
# any six characters of it are unlikely to occur in output by chance.
PUNCT = string.punctuation + string.digits + string.ascii_lowercase
PASSWORD = "".join(f"{c}{'QZXJVWKY'[i % 8]}" for i, c in enumerate(PUNCT)) + " sp"


def leaks(text: str, password: str = PASSWORD) -> list[str]:
    """Any form or 6-character piece of the password found in ``text``."""
    forms = {password, quote(password, safe=""), quote_plus(password, safe="")}
    found = [f for f in forms if f in text]
    found += [password[i : i + 6] for i in range(len(password) - 5) if password[i : i + 6] in text]
    return found


@pytest.fixture
def hostile_user(mariadb_url):
    """(url with the hostile password, database name) for a user with all rights on it."""
    from testkit.repairkit import dbname_of

    name = dbname_of(mariadb_url)
    install_demo(mariadb_url)
    user = f"vdpw{name[-6:]}"
    mariadb_root(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", PASSWORD)
    try:
        mariadb_root(f"GRANT ALL ON `{name}`.* TO '{user}'@'127.0.0.1'")
        url = (
            f"mysql+pymysql://{user}:{quote(PASSWORD, safe='')}@{dbfixtures.MARIADB_HOST}:"
            f"{dbfixtures.MARIADB_PORT}/{name}?charset=utf8mb4"
        )
        yield url, name
    finally:
        mariadb_root(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def _conf(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def test_every_output_of_a_working_run(hostile_user, tmp_path, capsys, monkeypatch):
    url, _ = hostile_user
    oslo_url = url.replace("$", "$$")  # oslo.config interpolates '$'
    conf = _conf(tmp_path, "neutron.conf", f"[database]\nconnection = {oslo_url}\n")
    sources = [["--neutron-db", url], ["--neutron-config-file", conf], []]
    monkeypatch.setenv("VIFDOCTOR_NEUTRON_DB", url)
    seen = []
    for source in sources:
        for fmt in ("table", "json", "yaml", "csv", "value"):
            code, out, err = cli(capsys, "audit", *source, "-f", fmt)
            assert code in (0, 1, 2), err
            seen.append(out + err)
        code, out, err = cli(capsys, "plan", *source, "--sql")
        assert code == 0, err
        seen.append(out + err)
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
    seen.append(out + err)
    [backup] = sorted((tmp_path / "bk").glob("*.json"))
    seen.append(backup.read_text())
    assert '"url": "mysql+pymysql://' in backup.read_text()
    code, out, err = cli(capsys, "rollback", str(backup), "--neutron-db", url)
    seen.append(out + err)
    for text in seen:
        assert not leaks(text), leaks(text)


BAD_URLS = [
    # unparseable: a port that is not a number, spaces and '@' in the password
    f"mysql+pymysql://u:{PASSWORD}@127.0.0.1:abc/db",
    # the password in the query string, the server refuses the login
    f"mysql+pymysql://u@127.0.0.1:{dbfixtures.MARIADB_PORT}/db?password={quote(PASSWORD)}",
    # an unknown option beside a query password
    f"mysql+pymysql://u@127.0.0.1/db?foo=1&password={quote(PASSWORD)}",
    # wrong password, percent-encoded
    f"mysql+pymysql://root:{quote(PASSWORD, safe='')}@127.0.0.1:{dbfixtures.MARIADB_PORT}/db",
    # nothing listens there
    f"postgresql://u:{quote(PASSWORD, safe='')}@127.0.0.1:1/db?sslmode=disable",
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("via", ["flag", "env", "neutron-conf", "nova-db", "nova-conf"])
def test_every_error_path(url, via, tmp_path, capsys, monkeypatch):
    neutron = ["--neutron-db", f"sqlite:///{tmp_path / 'none.sqlite'}"]
    oslo_url = url.replace("$", "$$")
    if via == "flag":
        argv = ["--neutron-db", url]
    elif via == "env":
        monkeypatch.setenv("VIFDOCTOR_NEUTRON_DB", url)
        argv = []
    elif via == "neutron-conf":
        argv = [
            "--neutron-config-file",
            _conf(tmp_path, "n.conf", f"[database]\nconnection = {oslo_url}\n"),
        ]
    elif via == "nova-db":
        argv = [*neutron, "--nova-db", url]
    else:
        argv = [
            *neutron,
            "--nova-config-file",
            _conf(tmp_path, "nova.conf", f"[database]\nconnection = {oslo_url}\n"),
        ]
    code, out, err = cli(capsys, "audit", *argv)
    assert code == 3
    assert "internal error" not in err
    assert not leaks(out + err), (leaks(out + err), err)


@pytest.mark.parametrize("section", ["database", "api_database"])
def test_config_parse_error_does_not_echo_the_line(section, tmp_path, capsys):
    body = f"[{section}]\n  connection = mysql+pymysql://u:{PASSWORD}@h/n\n"  # indented
    path = _conf(tmp_path, "x.conf", body)
    for argv in (
        ["--neutron-config-file", path],
        ["--neutron-db", "sqlite:///x", "--nova-config-file", path],
    ):
        code, out, err = cli(capsys, "audit", *argv)
        assert code == 3 and "line 2" in err, err
        assert not leaks(out + err)


def test_cell_mapping_url_is_masked(mariadb_url, tmp_path, capsys):
    """A cell whose database_connection holds the password, unreachable: the error masks it."""
    from testkit.repairkit import execute

    execute(
        mariadb_url,
        "CREATE TABLE cell_mappings (id INT PRIMARY KEY, uuid VARCHAR(36), "
        "name VARCHAR(255), database_connection TEXT)",
    )
    cell = f"mysql+pymysql://nova:{quote(PASSWORD, safe='')}@127.0.0.1:1/nova?password=x{PASSWORD}"
    execute(mariadb_url, "INSERT INTO cell_mappings VALUES (1, 'c1', 'cell1', :c)", c=cell)
    code, out, err = cli(
        capsys, "audit", "--neutron-db", f"sqlite:///{tmp_path / 'n'}", "--nova-api-db", mariadb_url
    )
    assert code == 3 and "internal error" not in err
    assert not leaks(out + err), err
