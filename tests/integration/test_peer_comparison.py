"""neutron 29.0.0's real ``neutron-remove-duplicated-port-bindings`` against
``vifdoctor repair --code VD206`` on two copies of the same cloud (docs/rules.md).

The peer deletes every INACTIVE row of a port that has two rows, in-flight ones
included, and names no port; vifdoctor deletes only what no move needs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from testkit import dbfixtures
from testkit.migrationkit import (
    CLEANUP,
    DST,
    FAILED,
    FINISHED,
    LATE,
    ONLY,
    RUNNING,
    SRC,
    cloud,
    dump,
    write_cell,
)
from testkit.novakit import cli_json, port_id, write_neutron

PEER = dbfixtures.OPENSTACK_VENV / "bin" / "neutron-remove-duplicated-port-bindings"


def inactive(url: str) -> set[tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(
                conn.execute(
                    sa.text("SELECT port_id, host FROM ml2_port_bindings WHERE status = 'INACTIVE'")
                ).all()
            )
    finally:
        engine.dispose()


def run_peer(url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    dbfixtures.ensure_openstack_venv()
    conf = workdir / "neutron.conf"
    conf.write_text(f"[database]\nconnection = {url}\n")
    return subprocess.run(
        [str(PEER), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.nova_real
def test_peer_and_vifdoctor_on_copies_of_one_cloud(
    neutron29_mariadb_url: str,
    mariadb_url: str,
    neutron29_mariadb_ddl: Path,
    nova34_cell_mariadb_url: str,
    tmp_path: Path,
) -> None:
    dbfixtures.load_mariadb_sql(sa.engine.make_url(mariadb_url).database, neutron29_mariadb_ddl)
    peer_db, ours_db = neutron29_mariadb_url, mariadb_url
    ports, instances, moves = cloud()
    for url in (peer_db, ours_db):
        write_neutron(url, ports, [SRC, DST], layout=None)
    write_cell(nova34_cell_mariadb_url, instances, moves, icehouse=False)
    assert dump(peer_db, "ml2_port_bindings") == dump(ours_db, "ml2_port_bindings")
    before = inactive(peer_db)

    proc = run_peer(peer_db, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    code, doc, err = cli_json(
        "repair",
        "--neutron-db",
        ours_db,
        "--nova-db",
        nova34_cell_mariadb_url,
        "--code",
        "VD206",
        "--apply",
        "--backup-dir",
        str(tmp_path),
    )
    assert code == 0, err

    peer_deleted = before - inactive(peer_db)
    ours_deleted = before - inactive(ours_db)
    key = {n: (port_id(n), SRC if n in (CLEANUP, FINISHED) else DST) for n in range(1, 7)}
    # where they agree: the failed moves' rows go, the lone INACTIVE row stays
    assert peer_deleted & ours_deleted == {key[FAILED], key[LATE], key[CLEANUP]}
    assert key[ONLY] not in peer_deleted | ours_deleted
    # what the peer deleted and vifdoctor kept: the bindings of moves in flight
    assert peer_deleted - ours_deleted == {key[RUNNING], key[FINISHED]}
    assert ours_deleted - peer_deleted == set()
    # the peer names no port (it logs at INFO without setting up logging)...
    assert not any(port_id(n) in proc.stdout + proc.stderr for n in range(1, 7))
    # ...vifdoctor names each, with its backup
    assert {c["port_id"] for c in doc["changes"]} == {port_id(n) for n in (FAILED, LATE, CLEANUP)}
    assert Path(doc["backup"]).exists()
    # both removed the levels of what they deleted, and only those
    for url, deleted in ((peer_db, peer_deleted), (ours_db, ours_deleted)):
        levels = {(r[0], r[1]) for r in dump(url, "ml2_port_binding_levels")}
        assert not levels & deleted
