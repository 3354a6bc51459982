"""``plan --sql`` fed to the database's own client == ``repair --apply``, byte for byte.

Issue 13: a newline in a host ended the ``--`` comment (the rest ran as SQL),
and whitespace inside literals was collapsed, so guards never matched and
"a  b" was rewritten as "a b". The script now keeps every byte and nothing
from the data can leave its literal or comment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import dbfixtures
from testkit.hostilekit import dump, hostile_cloud, run_client
from testkit.repairkit import cli, install, install_nullable_details


@contextlib.contextmanager
def two_databases(backend: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'a.sqlite'}", f"sqlite:///{tmp_path / 'b.sqlite'}"
    elif backend == "mariadb":
        with dbfixtures.mariadb_database() as a, dbfixtures.mariadb_database() as b:
            yield dbfixtures.mariadb_url(a), dbfixtures.mariadb_url(b)
    else:
        with dbfixtures.postgresql_database() as a, dbfixtures.postgresql_database() as b:
            yield dbfixtures.postgresql_url(a), dbfixtures.postgresql_url(b)


@pytest.mark.parametrize(
    "layout", ["icehouse", "ocata", "ocata-null"]
)  # -null: vif_details NULL-able, NULL on one port per host
@pytest.mark.parametrize("backend", ["sqlite", "mariadb", "postgresql"])
def test_sql_through_the_client_equals_apply(backend, layout, tmp_path, capsys):
    null = layout.endswith("-null")
    cloud = hostile_cloud(nul=backend != "postgresql", null=null)
    with two_databases(backend, tmp_path) as (by_sql, by_apply):
        for url in (by_sql, by_apply):
            if null:
                install_nullable_details(url, cloud, layout.removesuffix("-null"))
            else:
                install(url, cloud, layout)
        before = dump(by_sql)
        assert before == dump(by_apply)
        code, script, err = cli(
            capsys, "plan", "--neutron-db", by_sql, "--sql", "--batch-size", "7"
        )
        assert code == 0, err
        if null:  # a NULL is guarded IS NULL (``= NULL`` would never match)
            hosts = len(hostile_cloud(nul=backend != "postgresql").agents)
            assert script.count("vif_details IS NULL") == hosts
        run_client(by_sql, script)
        code, out, err = cli(
            capsys,
            "repair",
            "--neutron-db",
            by_apply,
            "--apply",
            "--backup-dir",
            str(tmp_path / "bk"),
            "-f",
            "json",
        )
        assert code == 0, err
        after_sql, after_apply = dump(by_sql), dump(by_apply)
        assert after_sql == after_apply
        changed = [
            r for r in after_sql["ml2_port_bindings"] if r not in before["ml2_port_bindings"]
        ]
        # every planned row was written by the script: the guards matched exact bytes
        assert len(changed) == len(cloud.ports)
        assert after_sql["agents"] == before["agents"]
        # the rollback reads these rows by their hostile keys (literal key lists) and
        # backs them up as it found them: the copy comes back byte for byte
        (backup,) = (tmp_path / "bk").glob("repair-*.json")
        code, out, err = cli(
            capsys, "rollback", str(backup), "--neutron-db", by_apply, "--apply",
            "--backup-dir", str(tmp_path / "bk2"),
        )  # fmt: skip
        assert code == 0, err
        assert dump(by_apply) == before


def test_script_holds_no_line_break_or_backslash_from_the_data(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install(url, hostile_cloud(nul=True), "icehouse")
    code, script, err = cli(capsys, "plan", "--neutron-db", url, "--sql")
    assert code == 0, err
    assert "\\" not in script and "\r" not in script and "\x1b" not in script
    for line in script.splitlines():
        assert line.startswith(("--", "BEGIN;", "COMMIT;", "UPDATE ")), line


@pytest.mark.parametrize("dialect", ["sqlite", "mysql", "postgresql"])
def test_literals_keep_every_character(dialect):
    from vifdoctor.repair.sql import sql_literal

    assert sql_literal("a  b", dialect) == "'a  b'"
    assert sql_literal("", dialect) == "''"
    assert sql_literal("it's", dialect) == "'it''s'"
    text = sql_literal("a\nb\\c", dialect)
    assert "\n" not in text and "\\" not in text
    assert "10" in text and "92" in text


def test_comments_cannot_end_early():
    from vifdoctor.repair.sql import comment_text

    assert comment_text("h\nDELETE FROM agents; --") == "h%0ADELETE%20FROM%20agents%3B%20--"
